// Descriptors the caller leaves open for uwrx (above 2) reach the command as natively: at
// their numbers, the same open files (offsets shared), inheritable; none of uwrx's own
// is there. The `uwrx` command (package.json "bin", src/native/launch/main.c) lists them
// before Node marks them close-on-exec; `node bin/uwrx` cannot, and passes none.
import test from 'ava';
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { helperPath } from '../src/native.js';
import { lastAttempt, scratchDir, uwrxBin, uwrxCommand } from './helpers/uwrx.js';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `file args` in cwd with stdin empty, stdout and stderr captured, and `fds` (number
 * -> an open fd of this process) at their numbers. */
function start(file: string, args: string[], cwd: string, fds: Record<number, number> = {}, env = process.env): Promise<Result> {
  const numbers = Object.keys(fds).map(Number);
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  for (let fd = 3; fd <= Math.max(2, ...numbers); fd++) stdio.push(fds[fd] ?? 'ignore');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env, stdio });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** `uwrx run --quiet -- argv` started as the `uwrx` command. */
function uwrxRun(argv: string[], cwd: string, fds: Record<number, number> = {}, options: string[] = []): Promise<Result> {
  return start(uwrxCommand, ['run', '--quiet', ...options, '--', ...argv], cwd, fds);
}

/** A file opened for writing (its fd), closed when the test ends. */
function openFile(t: { teardown: (fn: () => void) => void }, file: string, flags = 'w'): number {
  const fd = openSync(file, flags);
  t.teardown(() => closeSync(fd));
  return fd;
}

test('fd 3 of the caller is the command\'s fd 3 (sh -c \'echo x >&3\' 3>file)', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const file = path.join(dir, 'out3');
  const r = await uwrxRun(['sh', '-c', 'echo x >&3'], dir, { 3: openFile(t, file) });
  t.is(r.status, 0, r.stderr);
  t.is(readFileSync(file, 'utf8'), 'x\n');
});

test('fds 5 and 20 together, each to its own file; the gap between them stays closed', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const five = path.join(dir, 'five');
  const twenty = path.join(dir, 'twenty');
  const script = 'echo five >&5 && echo twenty >&20 && for fd in 3 4 6 19 21; do { true >&$fd; } 2>/dev/null && echo open $fd; done; true';
  const r = await uwrxRun(['bash', '-c', script], dir, { 5: openFile(t, five), 20: openFile(t, twenty) });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '', 'no other descriptor is open');
  t.is(readFileSync(five, 'utf8'), 'five\n');
  t.is(readFileSync(twenty, 'utf8'), 'twenty\n');
});

test('the same open file: the caller\'s writes before and after the command\'s continue at its offset', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const file = path.join(dir, 'shared');
  const fd = openFile(t, file);
  writeFileSync(fd, 'before\n');
  const r = await uwrxRun(['sh', '-c', 'echo during >&3'], dir, { 3: fd });
  t.is(r.status, 0, r.stderr);
  writeFileSync(fd, 'after\n');
  t.is(readFileSync(file, 'utf8'), 'before\nduring\nafter\n');
});

test('a pipe shared with the caller: the caller reads what the command wrote', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  // the shell's pipe to tr is uwrx's fd 3 (and not its stdout)
  const line = `'${uwrxCommand}' run --quiet -- sh -c 'echo through the pipe >&3' 3>&1 >/dev/null | tr a-z A-Z`;
  const r = await start('sh', ['-c', line], dir);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, 'THROUGH THE PIPE\n');
});

test('the command\'s descriptors are exactly the native ones: 0-2 and the passed ones', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const fds = { 3: openFile(t, path.join(dir, 'a')), 5: openFile(t, path.join(dir, 'b')), 20: openFile(t, path.join(dir, 'c')) };
  // ls's own directory fd takes the lowest free number, natively and under uwrx
  const argv = ['sh', '-c', 'ls /proc/self/fd | sort -n | tr "\\n" " "'];
  const native = await start(argv[0]!, argv.slice(1), dir, fds);
  const under = await uwrxRun(argv, dir, fds);
  t.is(under.status, 0, under.stderr);
  // (what this process was given above 15 is inheritable in it too: Node marks only those
  // below close-on-exec; the test runner may have some)
  t.true(native.stdout.startsWith('0 1 2 3 4 5 20 '), native.stdout);
  t.is(under.stdout, native.stdout);
  // and without any passed
  const none = await uwrxRun(argv, dir);
  t.is(none.status, 0, none.stderr);
  t.is(none.stdout, (await start(argv[0]!, argv.slice(1), dir)).stdout);
});

test('a replay gets the caller\'s descriptors as the capture did', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const first = path.join(dir, 'first');
  const again = path.join(dir, 'again');
  const r = await uwrxRun(['sh', '-c', 'echo x >&3'], dir, { 3: openFile(t, first) });
  t.is(r.status, 0, r.stderr);
  const replay = await start(uwrxCommand, ['run', '--quiet', '--replay', lastAttempt(dir)], dir, { 3: openFile(t, again) });
  t.is(replay.status, 0, replay.stderr);
  t.is(readFileSync(again, 'utf8'), 'x\n');
});

test('make run by uwrx in an outer make -j2 shares its jobserver (runs its two jobs at once)', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  // a and b each wait for the other to have started: they succeed only in parallel
  const job = (me: string, other: string) =>
    `${me}:\n\ttouch ${me}.started; for i in $$(seq 100); do test -e ${other}.started && exit 0; sleep 0.1; done; exit 1\n`;
  writeFileSync(path.join(dir, 'inner.mk'), `all: a b\n${job('a', 'b')}${job('b', 'a')}`);
  // `+`: the outer make passes its jobserver descriptors to this recipe
  writeFileSync(path.join(dir, 'outer.mk'), `all:\n\t+'${uwrxCommand}' run --quiet --no-net -- $(MAKE) -s -f inner.mk\n`);
  const r = await start('make', ['-j2', '-s', '-f', 'outer.mk'], dir);
  t.notRegex(r.stderr, /jobserver unavailable/);
  t.is(r.status, 0, r.stderr);
});

test('node bin/uwrx passes no descriptor, and leaves another process\'s list in the environment', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const env = { ...process.env, UWRX_INHERITED_FDS: '1:3' };
  const r = await start(process.execPath, [uwrxBin, 'run', '--quiet', '--', 'sh', '-c', 'echo $UWRX_INHERITED_FDS; { true >&3; } 2>/dev/null || echo closed'], dir, { 3: openFile(t, path.join(dir, 'f')) }, env);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '1:3\nclosed\n');
});

test('the uwrx command takes its list out of the environment again', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const r = await uwrxRun(['sh', '-c', 'echo "[${UWRX_INHERITED_FDS-unset}]"'], dir, { 4: openFile(t, path.join(dir, 'f')) });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, '[unset]\n');
});

test('uwrx-init takes its control socket from --control-fd and refuses any other command line', async (t) => {
  const dir = scratchDir('uwrx-fds-');
  const init = helperPath('uwrx-init');
  for (const args of [['--control-fd'], ['--control-fd', 'x'], ['--control-fd', '3'], ['--control-fd', '7x'], ['--other']]) {
    const r = await start(init, args, dir);
    t.is(r.status, 2, args.join(' '));
    t.regex(r.stderr, /^uwrx-init: usage: uwrx-init \[--control-fd N\]/, args.join(' '));
  }
  const r = await start(init, ['--control-fd', '7'], dir);
  t.is(r.status, 2);
  t.regex(r.stderr, /^uwrx-init: expects the control socket on fd 7 /);
});
