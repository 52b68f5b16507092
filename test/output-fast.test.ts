// Output to stdout and stderr recorded in process (src/native/recorder/output.c) is the
// output the notification path records: the same records, the same bytes from
// `uwrx inspect output`, for every way a program writes, and for the processes the
// recorder leaves to the notification path (a vfork child, a thread other than the main
// one, a statically linked program).
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { decodePerfetto } from './perfetto-schema.js';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrxBin, GATE_IPS } from './helpers/uwrx.js';

const scratch: string[] = [];
test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function workDir(): string {
  const dir = scratchDir('uwrx-output-fast-');
  scratch.push(dir);
  return dir;
}

interface RawResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** `node bin/uwrx ARGS` with stdout kept as bytes (a pipe, as a build's output is). */
function uwrxRaw(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [uwrxBin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr }));
  });
}

interface OutputEvent {
  pid: number;
  tid: number;
  fd: number;
  flags: number;
  dest_dev: number;
  dest_ino: number;
  text?: string;
  base64?: string;
}

interface ProcRow {
  pid: number;
  cmdline: string[];
}

interface Recorded {
  run: RawResult;
  attempt: string;
  /** output events, pids and tids numbered from the probe's */
  events: OutputEvent[];
  /** `inspect output ATTEMPT PID` of each process, in pid order */
  outputs: Buffer[];
  /** `inspect output ATTEMPT` */
  all: Buffer;
}

async function record(cwd: string, build: string, fastPath: boolean, argv: string[], env?: NodeJS.ProcessEnv): Promise<Recorded> {
  const run = await uwrxRaw(['run', '--build', build, fastPath ? '--fast-path' : '--no-fast-path', '--', ...argv], cwd, env);
  if (run.status !== 0) throw new Error(`uwrx run exited ${run.status}: ${run.stderr}`);
  const attempt = path.join(cwd, build, '0', '0');
  const inspect = async (args: string[]) => {
    const r = await uwrxRaw(['inspect', ...args], cwd);
    if (r.status !== 0) throw new Error(`inspect ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const procs = (JSON.parse((await inspect(['procs', attempt, '--format', 'json'])).toString()) as ProcRow[]).sort((a, b) => a.pid - b.pid);
  const first = procs.find((p) => p.cmdline[0] === argv[0])?.pid;
  if (first === undefined) throw new Error(`no process of ${argv[0]}: ${JSON.stringify(procs)}`);
  const relative = (id: number) => (id % 1000000) - first + Math.floor(id / 1000000) * 1000000;
  const events = (JSON.parse((await inspect(['events', attempt, '--format', 'json'])).toString()) as Array<OutputEvent & { type: string }>)
    .filter((e) => e.type === 'output')
    .map((e) => ({ ...e, pid: relative(e.pid), tid: relative(e.tid) }));
  const outputs: Buffer[] = [];
  for (const p of procs.filter((p) => p.pid >= first)) outputs.push(await inspect(['output', attempt, String(p.pid)]));
  return { run, attempt, events, outputs, all: await inspect(['output', attempt]) };
}

const BIG = 200000;
const big = (): Buffer => {
  const b = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i++) b[i] = 0x61 + (i % 26);
  b[BIG - 1] = 0x0a;
  return b;
};

/** What the probe writes to fd 1, in order: its own, the vfork child's, the fork child's, then its thread's and its own. */
const probeOwn = () =>
  Buffer.concat([Buffer.from('write\nwritev\nprintf 1\nfputs\nstderr 2\nunbuffered printf\nputs\n'), big(), Buffer.from('pwrite\npwritev\nthread\nafter thread\n')]);

let probeRuns: Promise<{ fast: Recorded; notified: Recorded; reference: Recorded }> | undefined;
function probeBothWays() {
  return (probeRuns ??= (async () => {
    const probe = buildDriver('output_probe', ['test/native/output_probe.c'], ['-pthread']);
    const cwd = workDir();
    return {
      fast: await record(cwd, 'fast', true, [probe]),
      notified: await record(cwd, 'notified', false, [probe]),
      // the merger's TypeScript reference instead of its native writer
      reference: await record(cwd, 'reference', true, [probe], { ...process.env, UWRX_NATIVE_ACCESSES: '0' }),
    };
  })());
}

test.serial('output of write, writev, stdio (buffered and not), a large write, pwrite and pwritev is recorded byte for byte', async (t) => {
  const { fast } = await probeBothWays();
  const own = probeOwn();
  t.true(fast.outputs[0]!.equals(own), `the probe's output: ${JSON.stringify(fast.outputs[0]!.toString().slice(0, 200))}`);
  t.is(fast.outputs[1]!.toString(), 'vfork child\n', "the vfork child's write");
  t.is(fast.outputs[2]!.toString(), 'fork child\n', "the fork child's printf");
  t.is(fast.outputs.length, 3);
  // the real stdout got every byte written to it (not those written while it was /dev/null)
  const real = Buffer.concat([own.subarray(0, own.indexOf('stderr 2\n')), own.subarray(own.indexOf('unbuffered'), own.indexOf('pwrite\n'))]);
  t.true(fast.run.stdout.equals(Buffer.concat([real, Buffer.from('vfork child\nfork child\nthread\nafter thread\n')])), 'the real stdout is unchanged');
  t.true(fast.run.stderr.startsWith('stderr 2\n'), fast.run.stderr);
  // the large write is cut in records of at most 64 KiB, all but the last flagged MORE
  const chunks = fast.events.filter((e) => e.pid === 0 && (e.text ?? e.base64 ?? '').length > 1000);
  t.deepEqual(chunks.map((e) => e.flags), [1, 1, 1, 0], 'four records for 200000 bytes');
  t.false(fast.all.includes('null'), 'nothing written to /dev/null is output');
});

test.serial('output recorded in process is the output the notification path records, merged natively or by the reference', async (t) => {
  const { fast, notified, reference } = await probeBothWays();
  // the same records: fd, flags, bytes, thread; the destination the same for the same fd
  const shape = (r: Recorded) => r.events.map((e) => [e.pid, e.tid, e.fd, e.flags, e.text ?? e.base64]);
  t.deepEqual(shape(fast), shape(notified));
  t.deepEqual(shape(reference), shape(fast), 'the TypeScript merger (UWRX_NATIVE_ACCESSES=0)');
  t.true(reference.all.equals(fast.all), 'inspect output after the TypeScript merger');
  for (const r of [fast, notified, reference]) {
    const dests = new Set(r.events.filter((e) => e.fd === 1).map((e) => `${e.dest_dev}:${e.dest_ino}`));
    t.is(dests.size, 1, `one stdout pipe for every process: ${[...dests].join(' ')}`);
    t.false(dests.has('0:0'), 'the destination is known');
  }
  t.is(fast.outputs.length, notified.outputs.length);
  fast.outputs.forEach((out, i) => t.true(out.equals(notified.outputs[i]!), `inspect output of process ${i} is the same`));
  t.true(fast.all.equals(notified.all), 'inspect output of the attempt is the same');
  // the in-process records merged in time order with the process's other events
  const { packets } = decodePerfetto(readFileSync(path.join(fast.attempt, 'perfetto')));
  const last = new Map<number, number>();
  for (const p of packets) {
    const seq = p.trusted_packet_sequence_id as number;
    t.true((p.timestamp as number) >= (last.get(seq) ?? 0), `sequence ${seq} goes forward`);
    last.set(seq, p.timestamp as number);
  }
});

test.serial('a statically linked program\'s output (busybox-static) is recorded through the notification path', async (t) => {
  const missing = ensureCommands({ '/bin/busybox': 'busybox-static' });
  if (missing.length > 0) return t.fail(`busybox-static is not installed: ${missing.join(' ')}`);
  const cwd = workDir();
  const r = await record(cwd, 'b', true, ['/bin/busybox', 'sh', '-c', 'echo static; echo err >&2; echo gone >/dev/null']);
  t.is(r.run.stdout.toString(), 'static\n');
  t.is(r.all.toString(), 'static\nerr\n');
});

test.serial('fast path: a dynamically linked program\'s writes to stdout are made from the gate, not notified', async (t) => {
  const missing = ensureCommands({ strace: 'strace' });
  if (missing.length > 0) return t.fail(`strace is not installed: ${missing.join(' ')}`);
  const probe = buildDriver('output_probe', ['test/native/output_probe.c'], ['-pthread']);
  const cwd = workDir();
  const log = path.join(cwd, 'strace.log');
  const r = spawnSync('strace', ['-f', '-i', '-e', 'trace=write,writev', '-o', log, process.execPath, uwrxBin, 'run', '--build', 'b', '--fast-path', '--', probe], { cwd, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const lines = readFileSync(log, 'utf8').split('\n');
  const ip = (text: string) => {
    const at = lines.find((l) => l.includes(text))?.match(/\[([0-9a-f]+)\]/)?.[1];
    t.truthy(at, `strace shows ${text}`);
    return at;
  };
  const gate = (at: string | undefined) => GATE_IPS.includes(at ?? '');
  t.true(gate(ip('write(1, "write\\n"')), 'write');
  t.true(gate(ip('writev(1, [{iov_base="write"')), 'writev');
  t.true(gate(ip('"printf 1\\nfputs\\n"')), "stdio's buffered write");
  t.true(gate(ip('write(2, "stderr 2\\n"')), "stdio's unbuffered stderr");
  t.true(gate(ip('write(1, "fork child')), 'a forked child');
  // the notification path: a vfork child shares the recorder's memory, not its buffer
  // (the writes of a process with threads take the gate when the pipe has room, which
  // depends on how fast the test reads it: the next test shows them with a file)
  t.false(gate(ip('write(1, "vfork child')), 'a vfork child');
});

/** `probe` run with stdout a file, with the fast path and without: each run's attempt,
 * once the file got `expected` and the run notified `writes` writes (fast path first). */
async function linesBothWays(t: ExecutionContext, probe: string, expected: string, writes: [number, number]): Promise<string[]> {
  const cwd = workDir();
  const attempts: string[] = [];
  for (const [i, fastPath] of [true, false].entries()) {
    const build = `b-${fastPath}`;
    const out = path.join(cwd, `${build}.out`);
    const run = await uwrxToFile(['run', '--quiet', '--build', build, fastPath ? '--fast-path' : '--no-fast-path', '--', probe], cwd, out, 'w');
    t.is(run.status, 0, run.stderr);
    t.is(readFileSync(out, 'utf8'), expected, `${build}: the file got every line`);
    const attempt = path.join(cwd, build, '0', '0');
    const status = JSON.parse(readFileSync(path.join(attempt, 'status'), 'utf8')) as { notifications?: Record<string, number> };
    t.is(status.notifications?.write ?? 0, writes[i], `${build}: notified writes`);
    attempts.push(attempt);
  }
  return attempts;
}

const inspectOutput = (attempt: string): Buffer => spawnSync(process.execPath, [uwrxBin, 'inspect', 'output', attempt]).stdout;

test.serial("a process with threads: every thread's writes to a file are recorded in process, the record the notification path makes; a cancelled write is not made", async (t) => {
  const probe = buildDriver('thread_lines', ['test/native/thread_lines.c'], ['-pthread']);
  const lines = (who: string, n: number) => Array.from({ length: n }, (_, i) => `${who} line ${i}\n`).join('');
  const expected = lines('thread', 5) + lines('main', 1000);
  const native = spawnSync(probe, [], { encoding: 'utf8' });
  t.is(native.status, 0, 'natively the main thread ends in its cancelled write');
  t.is(native.stdout, expected, 'the native reference: no "cancelled" line');
  const attempts = await linesBothWays(t, probe, expected, [0, 1005]);
  const [fast, notified] = attempts.map(inspectOutput);
  t.is(fast!.toString(), expected, 'inspect output: every line, in order');
  t.true(fast!.equals(notified!), 'the same output as the notification path records');
  // each line's record names the thread that wrote it, as the notification path does
  const shapes = attempts.map((attempt) => {
    const events = JSON.parse(spawnSync(process.execPath, [uwrxBin, 'inspect', 'events', attempt, '--format', 'json']).stdout.toString()) as Array<{ type: string; pid: number; tid: number; text?: string }>;
    return events.filter((e) => e.type === 'output').map((e) => [e.tid - e.pid, e.text]);
  });
  t.deepEqual(shapes[0], shapes[1], 'the same records, thread by thread');
  t.deepEqual(shapes[0]!.slice(4, 6), [[1000000, 'thread line 4\n'], [0, 'main line 0\n']], "the other thread's id is its ordinal's");
});

test.serial("a thread's write right after its own timed wait is notified (it ends the wait); another thread's wait does not make it so", async (t) => {
  const probe = buildDriver('waiting_lines', ['test/native/waiting_lines.c'], ['-pthread']);
  const expected = Array.from({ length: 1000 }, (_, i) => `main line ${i}\n`).join('') + 'after line 0\nafter line 1\n';
  // in process: all but the first line after each of the main thread's two sleeps
  const attempts = await linesBothWays(t, probe, expected, [2, 1002]);
  for (const attempt of attempts) t.is(inspectOutput(attempt).toString(), expected, `${attempt}: inspect output`);
});

// A process with threads: its writes are recorded in process only where they cannot
// wait; one into a full pipe takes libc's cancellable call, so another thread can cancel
// it there, as natively.
test.serial("a main thread cancelled while its write waits on a full pipe ends in the write, as natively", async (t) => {
  const probe = buildDriver('cancel_write', ['test/native/cancel_write.c'], ['-pthread']);
  const cwd = workDir();
  const script = `(sleep 0.5; echo go) | ${probe} | (sleep 1.5; wc -c)`;
  const native = spawnSync('sh', ['-c', script], { cwd, encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  t.is(native.stderr, '', 'natively the line after the write is never reached');
  const r = await record(cwd, 'b', true, ['sh', '-c', script]);
  t.is(r.run.stdout.toString(), native.stdout, `what reached the pipe: ${native.stdout.trim()} bytes`);
  t.is(r.run.stderr.replace(/uwrx: [^\n]*\n$/, ''), '', 'the write was cancelled');
});

/** `node bin/uwrx ARGS` with stdout a regular file opened with FLAGS ('w' or 'a'), as `cmd > out` gives. */
function uwrxToFile(args: string[], cwd: string, out: string, flags: 'w' | 'a'): Promise<{ status: number | null; stderr: string }> {
  const fd = openSync(out, flags);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [uwrxBin, ...args], { cwd, stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

// cat copies a file to a stdout that is a regular file with copy_file_range, and
// sendfile does the same for other programs: the bytes never pass through the process's
// memory, so uwrx-init makes the copy itself and records it.
test.serial('output copied to a regular-file stdout by copy_file_range or sendfile is recorded, and lands as natively', async (t) => {
  const cwd = workDir();
  const content = big().subarray(0, 150000);
  writeFileSync(path.join(cwd, 'f'), content);
  // sendfile at an offset (the source's own offset stays), then from the source's offset
  const python = [
    'import os',
    "i=os.open('f',os.O_RDONLY)",
    'def send(off,n):',
    '  try: os.sendfile(1,i,off,n)',
    "  except OSError as e: os.write(2,b'%d ' % e.errno)",
    "send(2,5); os.write(1,b'|'); send(None,4); os.write(1,b'|'); send(None,3)",
  ].join('\n');
  // the system's python3, not a version manager's shim (whose own processes write output)
  const python3 = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const script = `cat f; cat f f; echo end; ${python3} -c "${python}"`;
  const nativeOut = path.join(cwd, 'native.out');
  const native = spawnSync('sh', ['-c', script], { cwd, stdio: ['ignore', openSync(nativeOut, 'w'), 'pipe'], encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  const tail = Buffer.from('end\n');
  const expected = Buffer.concat([content, content, content, tail, content.subarray(2, 7), Buffer.from('|'), content.subarray(0, 4), Buffer.from('|'), content.subarray(4, 7)]);
  t.true(readFileSync(nativeOut).equals(expected), 'the native reference');
  // appending, sendfile fails (EINVAL) as natively and cat falls back to read and write
  const appended = Buffer.concat([content, content, content, tail, Buffer.from('||')]);
  const nativeAppend = path.join(cwd, 'native-append.out');
  writeFileSync(nativeAppend, 'before\n');
  const nativeA = spawnSync('sh', ['-c', script], { cwd, stdio: ['ignore', openSync(nativeAppend, 'a'), 'pipe'], encoding: 'utf8' });
  t.is(nativeA.stderr, '22 22 22 ', 'natively, sendfile to an appending stdout fails');
  t.true(readFileSync(nativeAppend).equals(Buffer.concat([Buffer.from('before\n'), appended])), 'the native appending reference');
  for (const fastPath of [true, false]) {
    for (const flags of ['w', 'a'] as const) {
      const build = `b-${fastPath}-${flags}`;
      const out = path.join(cwd, `${build}.out`);
      if (flags === 'a') writeFileSync(out, 'before\n');
      const run = await uwrxToFile(['run', '--quiet', '--build', build, fastPath ? '--fast-path' : '--no-fast-path', '--', 'sh', '-c', script], cwd, out, flags);
      t.is(run.status, 0, run.stderr);
      const stderr = flags === 'a' ? '22 22 22 ' : '';
      const ran = flags === 'a' ? appended : expected;
      t.is(run.stderr, stderr, `${build}: stderr as natively`);
      t.true(readFileSync(out).equals(flags === 'a' ? Buffer.concat([Buffer.from('before\n'), ran]) : ran), `${build}: the real stdout got the bytes`);
      const inspect = spawnSync(process.execPath, [uwrxBin, 'inspect', 'output', path.join(cwd, build, '0', '0')], { cwd });
      t.is(inspect.status, 0, inspect.stderr?.toString());
      // stdout and stderr in the order written
      const both = flags === 'a' ? Buffer.concat([content, content, content, tail, Buffer.from('22 |22 |22 ')]) : expected;
      t.true(inspect.stdout.equals(both), `${build}: inspect output holds every byte (${inspect.stdout.length} of ${both.length})`);
    }
  }
});

// busybox's cat sends a file to its stdout with sendfile, also into a pipe; a pipe that is
// full makes the call wait for the reader, and a pipe whose reader is gone fails it with
// SIGPIPE, as natively.
test.serial('output sent into a pipe by sendfile or splice is recorded, with the counts, waits and SIGPIPE of native', async (t) => {
  const missing = ensureCommands({ '/bin/busybox': 'busybox-static' });
  if (missing.length > 0) return t.fail(`busybox-static is not installed: ${missing.join(' ')}`);
  const cwd = workDir();
  const content = big();
  writeFileSync(path.join(cwd, 'f'), content);
  // splice a pipe's worth, then 50 bytes from offset 7, then without blocking
  writeFileSync(
    path.join(cwd, 'splice.py'),
    [
      'import os',
      "i=os.open('f',os.O_RDONLY)",
      'n=os.splice(i,1,300000)',
      'm=os.splice(i,1,50,offset_src=7)',
      'k=os.splice(i,1,10,flags=os.SPLICE_F_NONBLOCK)',
      "os.write(2,b'%d %d %d %d ' % (n,m,k,os.lseek(i,0,os.SEEK_CUR)))",
      '',
    ].join('\n'),
  );
  const python3 = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const script = [
    'busybox cat f | (sleep 0.3; md5sum)',
    '{ busybox cat f; echo "cat=$?" >&2; } | head -c 10 | wc -c',
    `${python3} splice.py | wc -c`,
  ].join('; ');
  const native = spawnSync('sh', ['-c', script], { cwd, encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  t.is(native.stderr, 'cat=141\n65536 50 10 65546 ', 'the native reference');
  const r = await record(cwd, 'b', true, ['sh', '-c', script]);
  t.is(r.run.stdout.toString(), native.stdout, 'stdout as natively');
  t.is(r.run.stderr.replace(/uwrx: [^\n]*\n$/, ''), native.stderr, 'counts, offsets and exit statuses as natively');
  // the first cat's output whole; the second's what head could take before it went
  const procs = JSON.parse(spawnSync(process.execPath, [uwrxBin, 'inspect', 'procs', r.attempt, '--format', 'json'], { cwd }).stdout.toString()) as ProcRow[];
  const cats = procs.filter((p) => p.cmdline.join(' ') === 'busybox cat f').sort((a, b) => a.pid - b.pid);
  t.is(cats.length, 2);
  const catOutput = (pid: number) => spawnSync(process.execPath, [uwrxBin, 'inspect', 'output', r.attempt, String(pid)], { cwd }).stdout;
  t.true(catOutput(cats[0]!.pid).equals(content), 'the first cat: every byte, through a pipe that was full');
  const cut = catOutput(cats[1]!.pid);
  t.true(cut.length >= 10 && content.subarray(0, cut.length).equals(cut), `the second cat: the head of the file (${cut.length} bytes)`);
  const py = procs.find((p) => p.cmdline[0] === python3);
  t.truthy(py);
  const spliced = catOutput(py!.pid);
  t.true(spliced.equals(Buffer.concat([content.subarray(0, 65536), content.subarray(7, 57), content.subarray(65536, 65546), Buffer.from('65536 50 10 65546 ')])), 'the spliced bytes, then stderr');
});

test.serial('output sent to a terminal by sendfile (busybox cat) is recorded, and reaches the terminal', async (t) => {
  const missing = ensureCommands({ '/bin/busybox': 'busybox-static', '/usr/bin/script': 'bsdutils' });
  if (missing.length > 0) return t.fail(`not installed: ${missing.join(' ')}`);
  const cwd = workDir();
  const content = Buffer.from(Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join(''));
  writeFileSync(path.join(cwd, 'f'), content);
  // script(1) runs the command on a terminal of its own and copies what it shows
  const shown = spawnSync('script', ['-qec', `${process.execPath} ${uwrxBin} run --quiet --build b -- busybox cat f`, '/dev/null'], { cwd });
  t.is(shown.status, 0, shown.stderr?.toString());
  t.is(shown.stdout.toString().replace(/\r\n/g, '\n'), content.toString(), 'the terminal showed the file');
  const inspect = spawnSync(process.execPath, [uwrxBin, 'inspect', 'output', path.join(cwd, 'b', '0', '0')], { cwd });
  t.true(inspect.stdout.equals(content), `inspect output holds the file (${inspect.stdout.length} of ${content.length} bytes)`);
});
