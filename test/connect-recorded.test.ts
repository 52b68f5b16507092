// Connects recorded in process (src/native/recorder/recorder.c, "connects"): a connect that
// uwrx-init need not act on (a local server, a Unix socket; src/native/include/
// uwrx_net_rules.h) is recorded by the recorder and made from its gate. The record is the
// one the notification path writes (--no-fast-path), thread ids included; the name
// server and the addresses uwrx hands out stay notified.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';

// A process with a second thread connecting too, to a TCP server on 127.0.0.1 (the run's
// own network namespace: a fixed port is free), to a Unix socket, to a closed port
// (refused) and to the name server (uwrx-init's). The user lookup makes glibc ask nscd
// first: its connects come from inside libc (not through the connect symbol) and take the
// notification path, as a program's environment can make them anywhere (python looks
// the user up itself when HOME is unset).
const SCRIPT = `
import socket, threading, pwd, os
pwd.getpwuid(os.getuid())
srv = socket.socket()
srv.bind(('127.0.0.1', 8123))
srv.listen(64)
usrv = socket.socket(socket.AF_UNIX)
usrv.bind('u.sock')
usrv.listen(64)
def clients(n):
    for i in range(n):
        c = socket.create_connection(('127.0.0.1', 8123))
        c.close()
        u = socket.socket(socket.AF_UNIX)
        u.connect('u.sock')
        u.close()
clients(10)
th = threading.Thread(target=clients, args=(5,))
th.start()
th.join()
try:
    socket.create_connection(('127.0.0.1', 8124))
except ConnectionRefusedError:
    print('refused')
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.connect(('127.0.0.1', 53))
print('done')
`;

interface Event {
  type: string;
  pid: number;
  tid: number;
  family: number;
  addr: string;
  port: number;
}

async function connects(cwd: string, attempt: string): Promise<Array<[number, number, string, number]>> {
  const r = await uwrx(['inspect', 'events', attempt, '--format', 'json'], { cwd });
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as Event[]).filter((e) => e.type === 'connect').map((e) => [e.tid, e.family, e.addr, e.port]);
}

function notified(attemptDir: string): Record<string, number> {
  const s = JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as { notifications?: Record<string, number> };
  return s.notifications ?? {};
}

test('connects to local servers are recorded in process as the notification path records them', async (t) => {
  const cwd = scratchDir('uwrx-connect-');
  const fast = await uwrx(['run', '-q', '--build', 'fast', '--', 'python3', '-c', SCRIPT], { cwd });
  t.is(fast.status, 0, fast.stderr);
  const slow = await uwrx(['run', '-q', '--no-fast-path', '--build', 'slow', '--', 'python3', '-c', SCRIPT], { cwd });
  t.is(slow.status, 0, slow.stderr);
  t.is(fast.stdout, 'refused\ndone\n');
  t.is(slow.stdout, fast.stdout);
  const inProcess = await connects(cwd, 'fast/0/0');
  const slowCalls = notified(path.join(cwd, 'slow/0/0'));
  const fastCalls = notified(path.join(cwd, 'fast/0/0'));
  // Natively the script makes 32 connects (strace -f -e connect): 15 to the Unix socket, 15
  // to the TCP server, one refused, one to the name server, and libc's to nscd's socket
  // (two per lookup where nscd does not run; more where the environment makes python
  // look the user up too): those others are allowed, recorded alike by both paths, and
  // their addresses go into the messages so a failure says what they were.
  const script = (port: number) => inProcess.filter(([, family, , p]) => family === 2 && p === port).length;
  const ownSocket = inProcess.filter(([, family, addr]) => family === 1 && addr === 'u.sock').length;
  const others = inProcess.filter(([, family, addr, port]) => !(family === 1 && addr === 'u.sock') && !(family === 2 && [8123, 8124, 53].includes(port)));
  let context = '';
  if (others.length > 0) {
    const python = spawnSync('python3', ['-c', 'import sys; print(sys.version.split()[0], sys.executable)'], { encoding: 'utf8' }).stdout.trim();
    context = JSON.stringify({ others: others.slice(0, 8), count: others.length, python, LD_PRELOAD: process.env.LD_PRELOAD ?? null, preloadFile: existsSync('/etc/ld.so.preload') });
    t.log(context);
  }
  t.deepEqual(inProcess, await connects(cwd, 'slow/0/0'), 'the same records, thread ids included');
  t.is(inProcess.length, slowCalls.connect ?? 0, `a record per connect the program made ${context}`);
  t.is(ownSocket, 15, `the Unix socket connects ${context}`);
  t.is(script(8123), 15, `the TCP server's connects ${context}`);
  t.is(script(8124), 1, `the refused connect ${context}`);
  t.true(inProcess.some(([tid]) => tid !== inProcess[0]![0]), "the thread's connects carry its id");
  // the name server's connects are notified, and so are libc's own (nscd's) and a
  // thread's first call after a notified timed wait (a contended lock's futex: the
  // thread's start and join), which ends that wait; the script's local connects are not
  const nameServer = inProcess.filter(([, , , port]) => port === 53).length;
  t.true(nameServer >= 1, 'the name server connect is recorded');
  const notifiedConnects = fastCalls.connect ?? 0;
  const allowed = nameServer + others.length + (fastCalls.futex ?? 0);
  t.true(notifiedConnects >= nameServer && notifiedConnects <= allowed, `${notifiedConnects} notified, at most ${allowed}: ${JSON.stringify(fastCalls)} ${context}`);
});
