// Trace events of real runs: uwrx-init writes each process's buffer, the record's
// `perfetto` is decoded with the independent decoder, output is read back with
// `uwrx inspect output`, and a flood of output keeps tmp use bounded.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { decodePerfetto, resolveEvents, type Packet } from './perfetto-schema.js';
import { scratchDir, uwrxBin } from './helpers/uwrx.js';
import { traceAddon } from '../src/native.js';
import { EXEC_LINKS, shmHasRoom } from '../src/record/traces-dir.js';

interface RawResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

const scratch: string[] = [];
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function workDir(): string {
  const dir = scratchDir('uwrx-trace-run-');
  scratch.push(dir);
  return dir;
}

/** `node bin/uwrx ARGS` with stdout kept as bytes; `during` runs while it goes. */
function uwrxRaw(args: string[], cwd: string, during?: () => void, env?: NodeJS.ProcessEnv): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [uwrxBin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = during ? setInterval(during, 10) : undefined;
    child.on('error', reject);
    child.on('close', (status) => {
      if (timer) clearInterval(timer);
      resolve({ status, stdout: Buffer.concat(out), stderr });
    });
  });
}

/** The real interpreter, not a version manager's wrapper script (which forks a lot). */
const python = ((): string | undefined => {
  const r = spawnSync('python3', ['-c', 'import sys; sys.stdout.write(sys.executable)'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout : undefined;
})();

interface ProcRow {
  pid: number;
  ppid: number;
  status?: number;
  signal?: number;
  cmdline: string[];
}

async function procs(cwd: string, attempt: string): Promise<ProcRow[]> {
  const r = await uwrxRaw(['inspect', 'procs', attempt, '--format', 'json'], cwd);
  if (r.status !== 0) throw new Error(`inspect procs: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as ProcRow[];
}

// ---- a known command tree ---------------------------------------------------------------

const INNER = '/bin/echo inner1; /bin/echo inner2 >&2; exit 0';
const OUTER = `echo one > a.txt; mv a.txt b.txt; rm b.txt; sh -c '${INNER}'; cat /dev/null; exit 0`;

interface TreeRun {
  cwd: string;
  attempt: string;
  result: RawResult;
}

let tree: Promise<TreeRun> | undefined;
function treeRun(): Promise<TreeRun> {
  return (tree ??= (async () => {
    const cwd = workDir();
    const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', OUTER], cwd);
    return { cwd, attempt: path.join(cwd, 'b', '0', '0'), result };
  })());
}

test.serial('perfetto of a real command tree: one track per process, tree, cmdlines, ordered sequences, events', async (t) => {
  const { cwd, attempt, result } = await treeRun();
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.toString(), 'inner1\n', 'the real stdout is unchanged');
  t.true(result.stderr.includes('inner2\n'), 'the real stderr is unchanged');

  const { packets } = decodePerfetto(readFileSync(path.join(attempt, 'perfetto')));
  const procTracks = packets.filter((p) => p.track_descriptor?.process).map((p) => p.track_descriptor as Packet);
  const expected: Array<[number, string[]]> = [
    [2, ['sh', '-c', OUTER]],
    [3, ['mv', 'a.txt', 'b.txt']],
    [4, ['rm', 'b.txt']],
    [5, ['sh', '-c', INNER]],
    [6, ['/bin/echo', 'inner1']],
    [7, ['/bin/echo', 'inner2']],
    [8, ['cat', '/dev/null']],
  ];
  t.deepEqual(
    procTracks.map((d) => [d.process.pid, d.process.cmdline] as [number, string[]]).sort((a, b) => a[0] - b[0]),
    expected,
    'one process track per process, logical pids in first-seen order, cmdline from the exec',
  );
  const processTree = packets.find((p) => p.process_tree)!.process_tree.processes as Array<{ pid: number; ppid: number }>;
  t.deepEqual(
    processTree.map((p) => [p.pid, p.ppid]).sort((a, b) => a[0]! - b[0]!),
    [[2, 1], [3, 2], [4, 2], [5, 2], [6, 5], [7, 5], [8, 2]],
    'parent/child structure',
  );

  const last = new Map<number, number>();
  for (const p of packets) {
    const seq = p.trusted_packet_sequence_id as number;
    t.true((p.timestamp as number) >= (last.get(seq) ?? 0), `sequence ${seq} goes forward`);
    last.set(seq, p.timestamp as number);
  }

  const trackPid = new Map<number, number>();
  for (const p of packets) {
    const d = p.track_descriptor;
    if (d) trackPid.set(d.uuid, (d.process ?? d.thread).pid);
  }
  const events = resolveEvents(packets);
  const of = (pid: number, name: string) =>
    events.filter((e) => e.type === 3 && e.name === name && trackPid.get(e.track) === pid).map((e) => e.args);
  t.deepEqual(of(2, 'spawn').map((a) => a.child), [3, 4, 5, 8], 'spawn records in the parent');
  t.deepEqual(of(5, 'spawn').map((a) => a.child), [6, 7]);
  for (const [pid, argv] of expected) {
    t.deepEqual(of(pid, 'exit').map((a) => [a.status ?? 0, a.signal ?? 0]), [[0, 0]], `pid ${pid} exit`);
    const execs = of(pid, 'exec');
    t.deepEqual(execs[0]?.argv, argv, `pid ${pid} exec argv`);
    t.is(events.filter((e) => e.track === procTracks.find((d) => d.process.pid === pid)!.uuid).map((e) => e.type).join(), '1,2', `pid ${pid} lifetime slice`);
  }
  t.deepEqual(of(2, 'output').map((a) => [a.fd, a.text]), [[1, 'one\n']], 'the builtin echo redirected to a file is fd 1');
  t.deepEqual(of(6, 'output').map((a) => [a.fd, a.text]), [[1, 'inner1\n']]);
  t.deepEqual(of(7, 'output').map((a) => [a.fd, a.text]), [[1, 'inner2\n']], 'fd 1 after >&2 is still fd 1');

  // File events come from the file handlers; when they are recorded, they name these paths.
  if (events.some((e) => e.name === 'rename' || e.name === 'unlink')) {
    const real = (p: string) => path.join(cwd, p);
    t.true(of(3, 'rename').some((a) => a.from === real('a.txt') && a.to === real('b.txt')), 'mv renamed a.txt');
    t.true(of(4, 'unlink').some((a) => a.path === real('b.txt')), 'rm removed b.txt');
  }
});

test.serial('uwrx check accepts the trace of a real run', async (t) => {
  const { cwd, attempt } = await treeRun();
  const r = await uwrxRaw(['check', attempt], cwd);
  const problems = r.stdout.toString().trim().split('\n').filter((l) => l && !l.startsWith('ok: '));
  // Until the file store writes files.meta, that one complaint is expected.
  const other = problems.filter((l) => !/^files\.meta: missing, but files\/ exists$/.test(l));
  t.deepEqual(other, [], r.stderr);
  t.true(r.status === 0 || (r.status === 1 && problems.length > 0 && other.length === 0), `check exited ${r.status}`);
});

// ---- threads, connect, a killed process ---------------------------------------------------

const EVENTS_SCRIPT = `
import os, signal, socket, threading
# pwrite64, pwritev, pwritev2 need a file behind fd 1: one for a moment
saved = os.dup(1)
os.dup2(os.open('pw.txt', os.O_RDWR | os.O_CREAT, 0o644), 1)
os.pwrite(1, b'p', 100)
os.pwritev(1, [b'pv', b'!'], 200)
os.pwritev(1, [b'p2'], 300, os.RWF_SYNC)
os.dup2(saved, 1)
def say(i):
    os.write(1, b'thread %d\\n' % i)
for i in range(3):
    th = threading.Thread(target=say, args=(i,))
    th.start()
    th.join()
s = socket.socket()
try:
    s.connect(('127.0.0.1', 9))
except OSError:
    pass
pid = os.fork()
if pid == 0:
    os.write(1, b'child\\n')
    os.kill(os.getpid(), signal.SIGKILL)
os.waitpid(pid, 0)
`;

test.serial('threads get logical tids, connect records its address, a killed process its signal', async (t) => {
  if (!python) return t.fail('python3 is needed');
  const cwd = workDir();
  const result = await uwrxRaw(['run', '--build', 'b', '--', python, '-c', EVENTS_SCRIPT], cwd);
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.toString(), 'thread 0\nthread 1\nthread 2\nchild\n');
  const attempt = path.join(cwd, 'b', '0', '0');
  const r = await uwrxRaw(['inspect', 'events', attempt, '--format', 'json'], cwd);
  t.is(r.status, 0, r.stderr);
  const events = JSON.parse(r.stdout.toString()) as Array<Record<string, unknown>>;
  const of = (pid: number, type: string) => events.filter((e) => e.pid === pid && e.type === type);
  // Threads one after the other: ordinals 1, 2, 3 of process 2.
  t.deepEqual(of(2, 'output').filter((e) => e.tid !== 2).map((e) => [e.tid, e.text]), [
    [1000002, 'thread 0\n'],
    [2000002, 'thread 1\n'],
    [3000002, 'thread 2\n'],
  ]);
  t.deepEqual(of(2, 'output').filter((e) => e.tid === 2).map((e) => e.text), ['p', 'pv!', 'p2'], 'pwrite64, pwritev, pwritev2');
  t.deepEqual(of(2, 'spawn').map((e) => [e.child, e.thread]), [[1000002, 1], [2000002, 1], [3000002, 1], [3, 0]]);
  t.deepEqual(of(2, 'connect').map((e) => [e.family, e.addr, e.port]), [[2, '127.0.0.1', 9]]);
  t.deepEqual(of(3, 'output').map((e) => e.text), ['child\n']);
  t.deepEqual(of(3, 'exit').map((e) => [e.status, e.signal]), [[-1, 9]], 'the killed child carries its signal');
  t.deepEqual(of(2, 'exit').map((e) => [e.status, e.signal]), [[0, 0]]);

  // The perfetto file has a thread track per logical tid, under process 2.
  const { packets } = decodePerfetto(readFileSync(path.join(attempt, 'perfetto')));
  const threads = packets.filter((p) => p.track_descriptor?.thread).map((p) => p.track_descriptor.thread as { pid: number; tid: number });
  t.deepEqual(
    threads.filter((th) => th.pid === 2).map((th) => th.tid).sort((a, b) => a - b),
    [2, 1000002, 2000002, 3000002],
  );
});

// ---- exit times ----------------------------------------------------------------------------

test.serial('a process slice ends when the process ended, not when its exit was reported', async (t) => {
  const cwd = workDir();
  // `:` last, so the shell forks the second sleep instead of becoming it; the inner shell
  // kills itself (no exit_group: its end is when its pidfd said so)
  const script = `/bin/true; /bin/sleep 0.3; /bin/sh -c 'kill -9 $$'; /bin/sleep 0.3; :`;
  const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', script], cwd);
  t.is(result.status, 0, result.stderr);
  const attempt = path.join(cwd, 'b', '0', '0');
  const rows = JSON.parse((await uwrxRaw(['inspect', 'procs', attempt, '--format', 'json'], cwd)).stdout.toString()) as Array<ProcRow & { start: number; end: number }>;
  t.deepEqual(rows.map((r) => [r.pid, r.cmdline[0], r.signal ?? 0]), [[2, 'sh', 0], [3, '/bin/true', 0], [4, '/bin/sleep', 0], [5, '/bin/sh', 9], [6, '/bin/sleep', 0]]);
  const { packets } = decodePerfetto(readFileSync(path.join(attempt, 'perfetto')));
  const trackPid = new Map<number, number>();
  for (const p of packets) if (p.track_descriptor?.process) trackPid.set(p.track_descriptor.uuid, p.track_descriptor.process.pid);
  const slice = (pid: number) => {
    const of = resolveEvents(packets).filter((e) => trackPid.get(e.track) === pid);
    return { begin: of.find((e) => e.type === 1)!.time, end: of.find((e) => e.type === 2)!.time };
  };
  const [, shortOne, sleep1, killed, sleep2] = [2, 3, 4, 5, 6].map(slice);
  // The shell reaps the short process, then forks the sleep: whatever the report of the
  // exit waited for, the process had ended before the sleep began.
  t.true(shortOne!.end <= sleep1!.begin, `/bin/true ended ${shortOne!.end - sleep1!.begin} ns after the next process began`);
  t.true(killed!.end < sleep2!.end - 250e6, 'the killed shell ended before the sleep after it');
  // the slices end at the times the process table has (exit_group's time, or the pidfd's)
  for (const row of rows) t.is(slice(row.pid).end, row.end, `pid ${row.pid}: slice end is the process's end`);
});

// ---- output of two processes interleaved --------------------------------------------------

// Each writer does half its writes, then waits for the other's half: they interleave.
const WRITER = `
import os, sys, time
me, other = sys.argv[1], 'B' if sys.argv[1] == 'A' else 'A'
def halfway():
    open(me + '.half', 'w').close()
    while not os.path.exists(other + '.half'):
        time.sleep(0.002)
for i in range(20):
    if i == 10:
        halfway()
    if me == 'A':
        os.write(1, bytes([i, 0, 255, 10, 13, 128]) * 3 + b'A%d\\n' % i)
    else:
        os.write(1, b'B%d\\n' % i)
        os.write(2, b'E%d\\n' % i)
if me == 'A':
    os.write(1, bytes(range(256)) * 20480)
    os.writev(1, [b'x', b'', b'\\x00y'])
    os.writev(1, [bytes([i]) for i in range(200)] + [b''] * 3 + [b'z' * 70000] + [b'q'] * 100)
`;

function expectedA(): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 20; i++) {
    const b = Buffer.from([i, 0, 255, 10, 13, 128]);
    parts.push(b, b, b, Buffer.from(`A${i}\n`));
  }
  const big = Buffer.alloc(256 * 20480);
  for (let i = 0; i < big.length; i++) big[i] = i & 255;
  parts.push(big, Buffer.from([0x78, 0x00, 0x79]));
  // one writev of 304 pieces, larger than a record
  parts.push(Buffer.from(Array.from({ length: 200 }, (_, i) => i)), Buffer.alloc(70000, 'z'), Buffer.alloc(100, 'q'));
  return Buffer.concat(parts);
}

function expectedB(): Buffer {
  let s = '';
  for (let i = 0; i < 20; i++) s += `B${i}\nE${i}\n`;
  return Buffer.from(s);
}

test.serial('inspect output gives each process its exact bytes when two processes interleave on stdout', async (t) => {
  if (!python) return t.fail('python3 is needed to write binary output');
  const cwd = workDir();
  const script = `"$0" -c "$1" A & "$0" -c "$1" B; wait`;
  const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', script, python, WRITER], cwd);
  t.is(result.status, 0, result.stderr);
  const attempt = path.join(cwd, 'b', '0', '0');
  const rows = await procs(cwd, attempt);
  const pidOf = (who: string) => rows.find((r) => r.cmdline.at(-1) === who && r.cmdline[0] === python)?.pid;
  const a = expectedA();
  const b = expectedB();
  for (const [who, expected] of [['A', a], ['B', b]] as const) {
    const pid = pidOf(who);
    if (pid === undefined) return t.fail(`no process for writer ${who}: ${JSON.stringify(rows)}`);
    const r = await uwrxRaw(['inspect', 'output', attempt, String(pid)], cwd);
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.length, expected.length, `writer ${who} (pid ${pid}) byte count`);
    t.true(r.stdout.equals(expected), `writer ${who} (pid ${pid}) bytes identical`);
  }
  // The run's own stdout got every byte, A's 5 MiB write in one piece.
  t.is(result.stdout.length, a.length + b.length / 2);
  // A write larger than PIPE_BUF is not atomic on a pipe, natively too: B's short lines
  // may land inside it, so they are taken out before looking for it.
  let withoutB = result.stdout.toString('latin1');
  for (let i = 19; i >= 0; i--) withoutB = withoutB.replace(`B${i}\n`, '');
  t.true(Buffer.from(withoutB, 'latin1').includes(a.subarray(a.length - (5 << 20) - 70303, a.length - 70300)), 'the 5 MiB write reached the real stdout');
  const lines = result.stdout.toString('latin1');
  t.true(lines.indexOf('B0\n') < lines.indexOf('A19\n') && lines.indexOf('A9\n') < lines.indexOf('B19\n'), 'the writes interleaved');
});

// A write after a timed wait is notified (uwrx-init's part of the buffer, read when the
// process ends); the 5 MiB after it are recorded in process and read while it lives.
const LATE_WRITER = `
import os, time
time.sleep(0.01)
os.write(1, b'first\\n')
os.write(1, b'x' * (5 << 20))
time.sleep(1)
os.write(1, b'last\\n')
`;

test.serial('inspect output and the trace keep the order and times of the writes when part of a live buffer is read late', async (t) => {
  if (!python) return t.fail('python3 is needed');
  const cwd = workDir();
  const result = await uwrxRaw(['run', '--build', 'b', '--', python, '-c', LATE_WRITER], cwd);
  t.is(result.status, 0, result.stderr);
  const expected = Buffer.concat([Buffer.from('first\n'), Buffer.alloc(5 << 20, 'x'), Buffer.from('last\n')]);
  t.true(result.stdout.equals(expected), 'the run\'s own stdout');
  const attempt = path.join(cwd, 'b', '0', '0');
  const pid = (await procs(cwd, attempt)).find((r) => r.cmdline[0] === python)?.pid;
  if (pid === undefined) return t.fail('no process for the writer');
  for (const args of [[String(pid)], []]) {
    const r = await uwrxRaw(['inspect', 'output', attempt, ...args], cwd);
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.length, expected.length);
    t.true(r.stdout.equals(expected), `inspect output ${args.join(' ')}: first, the 5 MiB, last`);
  }
  // the trace gives each record its own time, also the exec and the first write, which
  // uwrx-init's part of the buffer gave the collector after the 5 MiB (read live)
  const ev = await uwrxRaw(['inspect', 'events', attempt, '--format', 'json'], cwd);
  t.is(ev.status, 0, ev.stderr);
  const mine = (JSON.parse(ev.stdout.toString()) as { pid: number; type: string; time: number; text?: string }[]).filter((e) => e.pid === pid);
  const at = (what: string, match: (e: (typeof mine)[number]) => boolean) => {
    const e = mine.find(match);
    if (!e) throw new Error(`no ${what} event`);
    return e.time;
  };
  const exec = at('exec', (e) => e.type === 'exec');
  const first = at('first write', (e) => e.type === 'output' && e.text === 'first\n');
  const big = at('5 MiB write', (e) => e.type === 'output' && (e.text ?? '').startsWith('xxxx'));
  const last = at('last write', (e) => e.type === 'output' && e.text === 'last\n');
  t.true(exec < first && first < big && big < last, `exec ${exec} < first ${first} < 5 MiB ${big} < last ${last}`);
  t.deepEqual(
    mine.map((e) => e.time),
    mine.map((e) => e.time).sort((a, b) => a - b),
    'inspect events lists them by time',
  );
});

test.serial('writes to /dev/null are not output; the same writes to a pipe are', async (t) => {
  const cwd = workDir();
  const script = 'printf "to null %s\\n" 1 2 3 > /dev/null; printf "to pipe\\n" | cat; exec 2>/dev/null; echo "to stderr" >&2';
  const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', script], cwd);
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.toString(), 'to pipe\n');
  const attempt = path.join(cwd, 'b', '0', '0');
  const r = await uwrxRaw(['inspect', 'output', attempt], cwd);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.toString(), 'to pipe\nto pipe\n', "printf's write into the pipe and cat's to stdout; nothing sent to /dev/null");
});

test.serial('incompressible output (random bytes) is read back exactly', async (t) => {
  const cwd = workDir();
  // tee's stdout is recorded; its copy in r.bin is stored as a file of the record
  const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', 'head -c 3000000 /dev/urandom | tee r.bin'], cwd);
  t.is(result.status, 0, result.stderr);
  const attempt = path.join(cwd, 'b', '0', '0');
  const stored = readFileSync(path.join(attempt, 'files', cwd, 'r.bin'));
  t.is(stored.length, 3_000_000);
  t.true(result.stdout.equals(stored));
  const tee = (await procs(cwd, attempt)).find((r) => r.cmdline[0] === 'tee');
  if (!tee) return t.fail('no tee process');
  const r = await uwrxRaw(['inspect', 'output', attempt, String(tee.pid)], cwd);
  t.true(r.stdout.equals(stored), 'inspect output gives the bytes tee wrote');
  // head's and tee's 3 MB each: stored without growing (deflate is skipped for them)
  const size = statSync(path.join(attempt, 'perfetto')).size;
  t.true(size < 6_300_000, `perfetto ${size} bytes`);
});

// ---- a flood of output keeps the buffer small ------------------------------------------------

// The file also holds the process's recorder region, where the recorder writes output
// (at most half the region, 32 MiB) faster than a 20 ms scan reads it: counted apart.
test.serial('a process writing over 200 MiB of output keeps its trace records under 8 MiB allocated', async (t) => {
  if (!python) return t.fail('python3 is needed');
  const cwd = workDir();
  const flood = 'import os\nb = b"y\\n" * (1 << 19)\nfor i in range(210): os.write(1, b)\n';
  let maxAllocated = 0;
  let maxRegion = 0;
  let samples = 0;
  const sample = () => {
    const tmp = path.join(cwd, 'b', '.tmp');
    let runs: string[];
    try {
      runs = readdirSync(tmp).filter((n) => n.startsWith('run-'));
    } catch {
      return;
    }
    for (const run of runs) {
      try {
        const st = traceAddon().bufferAllocated(path.join(tmp, run, 'traces', '2'));
        if (!st) continue;
        maxAllocated = Math.max(maxAllocated, st[0]);
        maxRegion = Math.max(maxRegion, st[1]);
        samples++;
      } catch {
        /* not yet created, or already ended */
      }
    }
  };
  const result = await uwrxRaw(['run', '--build', 'b', '--', python, '-c', flood], cwd, sample);
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.length, 210 << 20, 'every byte reached the real stdout');
  t.true(samples > 10, `sampled the live buffer ${samples} times`);
  t.log(`max allocated ${(maxAllocated / 2 ** 20).toFixed(2)} MiB over ${samples} samples while writing 210 MiB of output`);
  t.true(maxAllocated < 8 << 20, `allocated ${maxAllocated} bytes`);
  t.log(`recorder region: max allocated ${(maxRegion / 2 ** 20).toFixed(2)} MiB`);
  t.true(maxRegion <= 33 << 20, `recorder region allocated ${maxRegion} bytes`);
  const attempt = path.join(cwd, 'b', '0', '0');
  const rows = await procs(cwd, attempt);
  t.deepEqual(rows.map((r) => [r.pid, r.status]), [[2, 0]]);
});

// Trace buffers live on /dev/shm when it is a tmpfs with at least 1 GiB free (metadata
// changes per process are journal transactions on a disk filesystem), reached through
// <runDir>/traces; UWRX_TRACES_TMPFS=0 keeps them in the run directory.
const shmRoomy = shmHasRoom();

for (const onTmpfs of [true, false]) {
  test(`trace buffers ${onTmpfs ? 'on /dev/shm when roomy' : 'in the run directory with UWRX_TRACES_TMPFS=0'}: every process recorded, nothing left behind`, async (t) => {
    const cwd = workDir();
    const seen = new Map<string, string>();
    // one file per process: its records, and before them its recorder region (a header
    // with the recorder's magic at 0 once the process records in process)
    const names = new Set<string>();
    const withRegion = new Set<string>();
    const sample = () => {
      const tmp = path.join(cwd, 'b', '.tmp');
      try {
        // (a finished run's directory is renamed aside for its removal: not a run's)
        for (const run of readdirSync(tmp).filter((n) => n.startsWith('run-'))) {
          const link = path.join(tmp, run, 'traces');
          if (!seen.has(run) && lstatSync(link)) seen.set(run, lstatSync(link).isSymbolicLink() ? realpathSync(link) : link);
          // (.run and .owner: the tmpfs directory's link back to the run directory, and
          // the uwrx that made it; exec: the directory of the buffers' second names for
          // prepared execs)
          for (const name of readdirSync(link).filter((n) => n !== '.run' && n !== '.owner' && n !== EXEC_LINKS)) {
            names.add(name);
            const magic = Buffer.alloc(12);
            const fd = openSync(path.join(link, name), 'r');
            try {
              // (the header's pid: a pooled buffer free.<n> is named by no pid)
              if (readSync(fd, magic, 0, 12, 0) === 12 && magic.readBigUInt64LE(0) === 0x3163657278727775n) withRegion.add(String(magic.readUInt32LE(8)));
            } finally {
              closeSync(fd);
            }
          }
        }
      } catch {
        /* not there yet, or gone */
      }
    };
    const env = onTmpfs ? process.env : { ...process.env, UWRX_TRACES_TMPFS: '0' };
    const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', 'sh -c /bin/true; /bin/true; sleep 1'], cwd, sample, env);
    t.is(result.status, 0, result.stderr);
    t.is(seen.size, 1, 'the run directory was seen while the command ran');
    const dir = [...seen.values()][0]!;
    if (onTmpfs && shmRoomy) t.regex(dir, /^\/dev\/shm\/uwrx-run-0-0-/);
    else t.is(path.basename(dir), 'traces', `buffers in the run directory: ${dir}`);
    t.throws(() => lstatSync(dir), { code: 'ENOENT' }, 'the buffers directory is removed');
    const rows = await procs(cwd, path.join(cwd, 'b', '0', '0'));
    t.true(rows.every((r) => r.status === 0), JSON.stringify(rows));
    t.is(rows.filter((r) => r.cmdline[0] === '/bin/true').length, 2, JSON.stringify(rows));
    t.is(rows.filter((r) => r.cmdline.join(' ') === 'sleep 1').length, 1, JSON.stringify(rows));
    t.true(names.size > 0, 'buffers seen');
    // (free.<n>: finished buffers waiting to be reused or taken, on the tmpfs only; `log`:
    // uwrx-init's buffer log, which tells takes and ends without renaming a buffer)
    const buffer = onTmpfs && shmRoomy ? /^([0-9]+|free\.[0-9]+)$/ : /^[0-9]+$/;
    t.deepEqual([...names].filter((n) => n !== 'log' && !buffer.test(n)), [], 'no file but the buffers and the log');
    t.true(names.has('log'), 'the buffer log');
    const sleeper = rows.find((r) => r.cmdline.join(' ') === 'sleep 1')!;
    t.true(withRegion.has(String(sleeper.pid)), `the recorder region in sleep's buffer (regions seen: ${[...withRegion].join(' ')})`);
  });
}

(shmRoomy ? test : test.skip)('a run frees the /dev/shm buffers of killed runs whose run directory is gone, and only those', async (t) => {
  const cwd = workDir();
  const orphan = mkdtempSync('/dev/shm/uwrx-run-0-0-orphan-');
  const kept = mkdtempSync('/dev/shm/uwrx-run-0-0-kept-');
  t.teardown(() => {
    rmSync(orphan, { recursive: true, force: true });
    rmSync(kept, { recursive: true, force: true });
  });
  writeFileSync(path.join(orphan, '2'), 'x');
  symlinkSync(path.join(cwd, 'removed-run-dir'), path.join(orphan, '.run'));
  writeFileSync(path.join(kept, '2'), 'x');
  symlinkSync(cwd, path.join(kept, '.run'));
  const result = await uwrxRaw(['run', '--build', 'b', '--', 'true'], cwd);
  t.is(result.status, 0, result.stderr);
  t.throws(() => lstatSync(orphan), { code: 'ENOENT' }, 'the orphan is freed');
  t.true(lstatSync(path.join(kept, '2')).isFile(), 'a run directory that exists keeps its buffers');
});

/** Starts `uwrx run -- sh -c script` in cwd and waits until its trace buffers' directory
 * holds the command's buffer: the uwrx process, that directory, its run directory and
 * what the run printed so far. */
async function startedRun(cwd: string, script: string) {
  // stdout a pipe: writes to /dev/null are not output
  const child = spawn(process.execPath, [uwrxBin, 'run', '--build', 'b', '--', 'sh', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'ignore'] });
  let printed = '';
  child.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const tmp = path.join(cwd, 'b', '.tmp');
  for (let i = 0; i < 1200; i++) {
    for (const name of existsSyncDir(tmp) ? readdirSync(tmp).filter((n) => n.startsWith('run-')) : []) {
      const runDir = path.join(tmp, name);
      try {
        const shm = realpathSync(path.join(runDir, 'traces'));
        if (readdirSync(shm).includes('2')) return { child, exited, shm, runDir, printed: () => printed };
      } catch {
        // not made yet
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`no trace buffers for ${script}`);
}

function existsSyncDir(dir: string): boolean {
  return statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

(shmRoomy ? test.serial : test.skip)('the /dev/shm buffers of a uwrx killed with SIGKILL go back to its run directory at the next run; a live run keeps its own', async (t) => {
  const killed = await startedRun(workDir(), `echo killed; sleep 30.${process.pid}1`);
  t.true(killed.shm.startsWith('/dev/shm/uwrx-run-'), killed.shm);
  // killed once its output is written (its buffer exists from the shell's start on)
  for (let i = 0; i < 600 && !killed.printed().includes('killed\n'); i++) await new Promise((r) => setTimeout(r, 10));
  t.is(killed.printed(), 'killed\n');
  killed.child.kill('SIGKILL');
  await killed.exited;
  const live = await startedRun(workDir(), `sleep 3.${process.pid}2`);
  t.teardown(() => live.child.kill('SIGKILL'));
  const liveBuffers = readdirSync(live.shm).sort();

  // any later run frees what the killed one left on the tmpfs
  const next = await uwrxRaw(['run', '--build', 'b', '--', 'true'], workDir());
  t.is(next.status, 0, next.stderr);
  t.throws(() => lstatSync(killed.shm), { code: 'ENOENT' }, 'the killed run\'s /dev/shm directory is gone');
  const traces = path.join(killed.runDir, 'traces');
  t.true(lstatSync(traces).isDirectory(), 'its buffers are in its run directory now');
  t.true(readdirSync(traces).includes('2'), readdirSync(traces).join());
  const used = readdirSync(traces).reduce((n, f) => n + statSync(path.join(traces, f)).blocks * 512, 0);
  t.true(used < 16 << 20, `holes kept: ${used} bytes allocated`);
  // (it may have gained buffers since: its processes go on)
  const liveNow = readdirSync(live.shm);
  t.deepEqual(liveBuffers.filter((n) => !liveNow.includes(n)), [], 'the live run\'s buffers are untouched');
  t.true(lstatSync(path.join(live.runDir, 'traces')).isSymbolicLink());

  // where `uwrx check --repair` finds them, as if they had never been on the tmpfs
  const cwd = path.dirname(path.dirname(path.dirname(killed.runDir)));
  const repair = await uwrxRaw(['check', '--repair', 'b/0/0'], cwd);
  t.is(repair.status, 0, repair.stderr);
  t.regex(repair.stdout.toString(), /^recovered: \d+ events from [1-9]\d* trace buffers left in /m);
  const output = await uwrxRaw(['inspect', 'output', 'b/0/0', '2'], cwd);
  t.is(output.stdout.toString(), 'killed\n');

  await live.exited;
  t.throws(() => lstatSync(live.shm), { code: 'ENOENT' }, 'the live run freed its own at its end');
});

test('status counts every notification by system call', async (t) => {
  const dir = workDir();
  // every file call notified: three opens of files that do not exist, two execs, exits
  const script = 'for f in a b c; do test -e /no/such/$f; done; /bin/true; exit 3';
  const r = await uwrxRaw(['run', '--quiet', '--no-fast-path', '--', '/bin/sh', '-c', script], dir);
  t.is(r.status, 3, r.stderr);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8')) as {
    notifications: Record<string, number>;
    notificationUs: Record<string, number>;
    fileCalls: { notified: number };
  };
  const counts = status.notifications;
  t.true(counts.newfstatat! >= 3 || counts.faccessat! >= 3 || counts.faccessat2! >= 3, JSON.stringify(counts));
  t.true(counts.execve! >= 1, JSON.stringify(counts));
  t.true(counts.exit_group! >= 2, JSON.stringify(counts));
  const values = Object.values(counts);
  t.deepEqual(values, [...values].sort((a, b) => b - a), 'most frequent first');
  t.true(values.reduce((a, b) => a + b, 0) >= status.fileCalls.notified);
  // the handler time of the same calls, by the same names, in whole microseconds
  const us = status.notificationUs;
  t.deepEqual(Object.keys(us).sort(), Object.keys(counts).sort());
  t.true(Object.values(us).every((n) => Number.isInteger(n) && n >= 0), JSON.stringify(us));
  // an exec is looked at (its argv, its program) before it is let through: never free
  t.true(us.execve! > 0, JSON.stringify(us));
});

// Runs argv[1:] and prints its user and system seconds (RUSAGE_CHILDREN) last.
// (A difference: a python started through a wrapper may have counted the wrapper's.)
const RUSAGE_OF_CHILD =
  'import resource, subprocess, sys\n' +
  'cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))\n' +
  'before = cpu()\nsubprocess.run(sys.argv[1:], check=True)\nprint(cpu() - before)';

test('status says where the run\'s CPU time went: the command, uwrx-init, the supervisor', async (t) => {
  const dir = workDir();
  // a shell loop that keeps a CPU busy for a while, in a child of the command's shell
  // (reaped by it: its time counts through the shell's)
  const burn = 'sh -c \'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done\'; echo done';
  const r = await uwrxRaw(['run', '--quiet', '--', '/bin/sh', '-c', burn], dir);
  t.is(r.status, 0, r.stderr);
  const status = JSON.parse(readFileSync(path.join(dir, 'build', '0', '0', 'status'), 'utf8')) as {
    cpuMs: { command: number; init: number; supervisor: number };
  };
  const cpu = status.cpuMs;
  t.deepEqual(Object.keys(cpu).sort(), ['command', 'init', 'supervisor']);
  // the same loop natively, its CPU time as its own parent counts it (this process's
  // children's time would also count other tests' runs ending meanwhile)
  const native = spawnSync('python3', ['-c', RUSAGE_OF_CHILD, '/bin/sh', '-c', burn], { encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  const nativeMs = Number(native.stdout.trim().split('\n').at(-1)) * 1000;
  t.true(nativeMs >= 50, `the loop takes CPU time natively: ${nativeMs} ms`);
  // the command's part is its own loop's (in 10 ms ticks natively, to 1 us here)
  t.true(cpu.command >= nativeMs * 0.5, JSON.stringify({ cpu, nativeMs }));
  // uwrx-init handled the notifications and the process table; the supervisor started Node
  t.true(cpu.init > 0, JSON.stringify(cpu));
  t.true(cpu.supervisor > 10, JSON.stringify(cpu));
});

// Short processes in a row reuse the trace buffers the collector has read (its pool,
// traces/free.<n>), when the buffers are on a tmpfs: each process's events are still
// exactly its own (its exec, the file it read, its output, its exit), never a previous
// user's of the same file.
test.serial('reused trace buffers show each process only its own events', async (t) => {
  if (!shmHasRoom()) {
    t.pass('the buffers are on a tmpfs only where /dev/shm has room');
    return;
  }
  const cwd = workDir();
  const n = 120;
  for (let i = 1; i <= n; i++) writeFileSync(path.join(cwd, `f${i}`), `x${i}\n`);
  let pooledSeen = false;
  const sample = () => {
    const tmp = path.join(cwd, 'b', '.tmp');
    try {
      for (const run of readdirSync(tmp).filter((n) => n.startsWith('run-'))) {
        if (readdirSync(path.join(tmp, run, 'traces')).some((name) => name.startsWith('free.'))) pooledSeen = true;
      }
    } catch {
      /* not made yet, or removed */
    }
  };
  const loop = `i=1; while [ $i -le ${n} ]; do /bin/cat f$i; sleep 0.01; i=$((i+1)); done`;
  const result = await uwrxRaw(['run', '--build', 'b', '--', 'sh', '-c', loop], cwd, sample);
  t.is(result.status, 0, result.stderr);
  t.is(result.stdout.toString(), Array.from({ length: n }, (_, i) => `x${i + 1}\n`).join(''));
  t.true(pooledSeen, 'finished buffers waited in the pool for the next processes');
  const r = await uwrxRaw(['inspect', 'events', path.join(cwd, 'b', '0', '0'), '--format', 'json'], cwd);
  t.is(r.status, 0, r.stderr);
  const events = JSON.parse(r.stdout.toString()) as Array<{ pid: number; type: string; path?: string; argv?: string[]; text?: string }>;
  const byPid = new Map<number, typeof events>();
  for (const e of events) byPid.set(e.pid, [...(byPid.get(e.pid) ?? []), e]);
  let cats = 0;
  for (const [pid, list] of byPid) {
    const execs = list.filter((e) => e.type === 'exec');
    const file = execs[0]?.argv?.[0] === '/bin/cat' ? execs[0].argv[1] : undefined;
    if (!file) continue;
    cats++;
    t.is(execs.length, 1, `pid ${pid}: one exec`);
    t.deepEqual(list.filter((e) => e.type === 'output').map((e) => e.text), [`x${file.slice(1)}\n`], `pid ${pid}: its own output`);
    const mine = list.filter((e) => e.type === 'access' && /\/f\d+$/.test(e.path ?? '')).map((e) => path.basename(e.path!));
    t.deepEqual([...new Set(mine)], [file], `pid ${pid}: only its own file read`);
    t.is(list.filter((e) => e.type === 'exit').length, 1, `pid ${pid}: one exit`);
    t.is(list.at(-1)!.type, 'exit', `pid ${pid}: nothing after its exit`);
  }
  t.is(cats, n, 'every cat has its events');
});
