import test from 'ava';
import { existsSync, readFileSync, readlinkSync, readdirSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

test('uwrx --help and uwrx run --help print usage', async (t) => {
  const cwd = scratchDir();
  const main = await uwrx(['--help'], { cwd });
  t.is(main.status, 0);
  t.regex(main.stdout, /Usage:/);
  t.regex(main.stdout, /uwrx run \[options\] -- <command>/);
  const run = await uwrx(['run', '--help'], { cwd });
  t.is(run.status, 0);
  t.regex(run.stdout, /--replay <path>/);
  for (const command of ['inspect', 'check', 'ui', 'test']) {
    const r = await uwrx([command, '--help'], { cwd });
    t.is(r.status, 0, command);
    t.regex(r.stdout, new RegExp(`Usage: uwrx ${command}`));
  }
  t.false(existsSync(path.join(cwd, 'build')), 'help creates no record');
});

test('run: exit status, output and the record of steps and attempts', async (t) => {
  const cwd = scratchDir();
  const first = await uwrx(['run', '--', 'sh', '-c', 'echo hi; exit 3'], { cwd });
  t.is(first.stdout, 'hi\n');
  t.is(first.status, 3);
  t.regex(first.stderr, /record in build\/0\/0/);
  t.regex(readFileSync(path.join(cwd, 'build/0/0/seed.txt'), 'utf8'), /^[0-9a-f]{64}\n$/);
  t.is(readFileSync(path.join(cwd, 'build/0/cmd'), 'utf8'), 'sh\n-c\necho hi; exit 3\n');

  const second = await uwrx(['run', '-q', '--', 'true'], { cwd });
  t.is(second.status, 0);
  t.is(second.stderr, '', '--quiet suppresses the summary');
  t.true(existsSync(path.join(cwd, 'build/10/0/seed.txt')));

  const third = await uwrx(['run', '--step', '0', '--', 'true'], { cwd });
  t.is(third.status, 0);
  t.true(existsSync(path.join(cwd, 'build/0/1/seed.txt')));

  const replay = await uwrx(['run', '--replay', 'build/0/0'], { cwd });
  t.is(replay.status, 3, 'the replay reruns the replayed attempt\'s command');
  t.is(replay.stdout, 'hi\n');
  t.is(readlinkSync(path.join(cwd, 'build/0/2/replay')), '../0');
  t.is(readFileSync(path.join(cwd, 'build/0/2/seed.txt'), 'utf8'), readFileSync(path.join(cwd, 'build/0/0/seed.txt'), 'utf8'));
  const options = JSON.parse(readFileSync(path.join(cwd, 'build/0/2/options'), 'utf8')) as { net: boolean };
  t.false(options.net, 'network defaults off for a replay');
  const status = JSON.parse(readFileSync(path.join(cwd, 'build/0/2/status'), 'utf8')) as { complete: boolean; status: number };
  t.true(status.complete);
  t.is(status.status, 3);
});

test('run: a signal death ends uwrx by the same signal; the record says 128+N', async (t) => {
  const cwd = scratchDir();
  const r = await uwrx(['run', '-q', '--', 'sh', '-c', 'kill -TERM $$'], { cwd });
  t.deepEqual([r.status, r.signal], [null, 'SIGTERM']);
  t.is(JSON.parse(readFileSync(path.join(cwd, 'build/0/0/status'), 'utf8')).status, 128 + 15);
});

test('run: --parent links parents in order', async (t) => {
  const cwd = scratchDir();
  await uwrx(['run', '-q', '--', 'true'], { cwd });
  await uwrx(['run', '-q', '--', 'true'], { cwd });
  const r = await uwrx(['run', '-q', '--parent', 'build/10/0', '--parent', 'build/0/0', '--', 'true'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.is(readlinkSync(path.join(cwd, 'build/20/0/parent/0')), '../../../10/0');
  t.is(readlinkSync(path.join(cwd, 'build/20/0/parent/1')), '../../../0/0');
});

const wrongUsage: Array<[string, string[], RegExp]> = [
  ['unknown option', ['run', '--frobnicate', '--', 'true'], /unknown option --frobnicate/],
  ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
  ['missing --', ['run', 'true'], /missing "--" before the command/],
  ['nothing to run', ['run'], /missing "--" and a command/],
  ['empty command', ['run', '--'], /no command after "--"/],
  ['--step with --replay', ['run', '--step', '0', '--replay', 'build/0/0'], /--step cannot be used with --replay/],
  ['--replay not an attempt', ['run', '--replay', 'build/0'], /not an attempt directory/],
  ['--replay missing', ['run', '--replay', 'build/9/9'], /no such attempt directory/],
  ['--parent missing', ['run', '--parent', 'nowhere', '--', 'true'], /--parent nowhere: no such attempt directory/],
  ['--parent not an attempt', ['run', '--parent', 'build', '--', 'true'], /not an attempt directory/],
  ['option without value', ['run', '--build'], /--build needs a value/],
  ['--parent with --no-parent', ['run', '--no-parent', '--parent', 'build/0/0', '--', 'true'], /--parent cannot be used with --no-parent/],
  ['--fast-path with --no-fast-path', ['run', '--no-fast-path', '--fast-path', '--', 'true'], /--fast-path cannot be used with --no-fast-path/],
  ['bad step name', ['run', '--step', '../x', '--', 'true'], /not a valid step name/],
  ['inspect bad view', ['inspect', 'nothing', 'build/0/0'], /unknown view "nothing"/],
  ['inspect bad format', ['inspect', 'procs', 'build/0/0', '--format', 'xml'], /--format must be text or json/],
  ['check without an attempt', ['check'], /missing the attempt directory/],
  ['--tmp that does not exist', ['run', '--tmp', '/proc/uwrx-no-such-dir', '--', 'true'], /^uwrx run: --tmp \/proc\/uwrx-no-such-dir: no such directory\n$/],
  ['--tmp that is a file', ['run', '--tmp', '/etc/hostname', '--', 'true'], /^uwrx run: --tmp \/etc\/hostname: not a directory\n$/],
  ['--build that is a file', ['run', '--build', '/etc/hostname', '--', 'true'], /build directory \/etc\/hostname is not a directory/],
  ['inspect an attempt that does not exist', ['inspect', 'procs', 'build/9/9'], /no such attempt directory/],
];

for (const [name, args, message] of wrongUsage) {
  test(`wrong usage: ${name} prints one line and exits 2`, async (t) => {
    const cwd = scratchDir();
    mkdirSync(path.join(cwd, 'build/0'), { recursive: true });
    const before = readdirSync(path.join(cwd, 'build/0'));
    const r = await uwrx(args, { cwd });
    t.is(r.status, 2);
    t.regex(r.stderr, message);
    t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
    t.deepEqual(readdirSync(path.join(cwd, 'build/0')), before, 'nothing was created');
  });
}

test('two concurrent runs get different attempts and different default steps', async (t) => {
  const cwd = scratchDir();
  const sameStep = await Promise.all([0, 1, 2, 3].map(() => uwrx(['run', '-q', '--step', 'par', '--', 'true'], { cwd })));
  for (const r of sameStep) t.is(r.status, 0, r.stderr);
  t.deepEqual(readdirSync(path.join(cwd, 'build/par')).filter((n) => /^\d+$/.test(n)).sort(), ['0', '1', '2', '3']);

  const cwd2 = scratchDir();
  const defaults = await Promise.all([0, 1, 2].map(() => uwrx(['run', '-q', '--', 'true'], { cwd: cwd2 })));
  for (const r of defaults) t.is(r.status, 0, r.stderr);
  const steps = readdirSync(path.join(cwd2, 'build')).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  t.deepEqual(steps, [0, 10, 20]);
});

test('run: the default parent is the latest attempt of the nearest earlier step', async (t) => {
  const cwd = scratchDir();
  await uwrx(['run', '-q', '--', 'true'], { cwd });
  await uwrx(['run', '-q', '--step', '0', '--', 'true'], { cwd });
  await uwrx(['run', '-q', '--', 'true'], { cwd });
  t.is(readlinkSync(path.join(cwd, 'build/10/0/parent/0')), '../../../0/1');
  t.false(existsSync(path.join(cwd, 'build/0/0/parent')), 'the first step has no parent');
  await uwrx(['run', '-q', '--no-parent', '--', 'true'], { cwd });
  t.false(existsSync(path.join(cwd, 'build/20/0/parent')));
  await uwrx(['run', '-q', '--replay', 'build/10/0'], { cwd });
  t.is(readlinkSync(path.join(cwd, 'build/10/1/parent/0')), '../../../0/1', 'a replay keeps the replayed parents');
  const named = await uwrx(['run', '-q', '--step', 'lint', '--', 'true'], { cwd });
  t.is(named.status, 0);
  t.false(existsSync(path.join(cwd, 'build/lint/0/parent')), 'named steps get no default parent');
});

test('run --dry-run prints the attempt and the sandbox plan and creates nothing', async (t) => {
  const cwd = scratchDir();
  const r = await uwrx(['run', '--dry-run', '--', 'make', '-j2'], { cwd });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^attempt .*\/build\/0\/0$/m);
  t.regex(r.stdout, /argv \["make","-j2"\]/);
  t.regex(r.stdout, /lazy \/usr -> \S+\/root\/usr read-only, then overlay lowerdir=\/usr,/);
  t.regex(r.stdout, /pivot_root /);
  t.false(existsSync(path.join(cwd, 'build')));
});

test('a build directory removed during the run ends uwrx with one clear line, not a hang', async (t) => {
  const cwd = scratchDir();
  const attempt = path.join(cwd, 'build', '0', '0');
  // a sleep this test alone runs: once it shows in /proc, the sandbox is set up (a removal
  // during the set-up fails a mount instead, with another line)
  const seconds = `2.${String(process.pid % 1000).padStart(3, '0')}7`;
  const running = uwrx(['run', '--', 'sh', '-c', `sleep ${seconds}; echo done`], { cwd });
  const sleeping = () =>
    readdirSync('/proc').some((pid) => {
      try {
        return /^[0-9]+$/.test(pid) && readFileSync(`/proc/${pid}/cmdline`, 'latin1') === `sleep\0${seconds}\0`;
      } catch {
        return false; /* ended meanwhile */
      }
    });
  for (let i = 0; i < 800 && !sleeping(); i++) await new Promise((r) => setTimeout(r, 25));
  t.true(existsSync(path.join(attempt, 'cmd')), 'the attempt was created');
  // moved away in one call and removed once uwrx ended: the run's writers may add entries
  // while a recursive removal walks it (ENOTEMPTY, also after retries on a loaded machine)
  const gone = path.join(cwd, 'build.gone');
  renameSync(path.join(cwd, 'build'), gone);
  t.teardown(() => rmSync(gone, { recursive: true, force: true }));
  const r = await Promise.race([running, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 60_000))]);
  if (!r) return t.fail('uwrx did not end within 60 s of the command');
  t.is(r.status, 2, r.stderr);
  // the command may end first or be stopped when the record's writers notice: either way
  // one line says why
  t.is(r.stderr.trim(), `uwrx run: the record's directory ${attempt} was removed during the run: its record is lost`);
});

const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;

// The two runs of the test below, in a mount namespace of their own (unshare -m): the
// small filesystem is seen by nothing else, so no other test's sandbox finds a mount
// below its /tmp meanwhile.
const FULL_DISK_RUNS = `
small=$1 out=$2; shift 2
mount -t tmpfs -o size=2m tmpfs "$small" || exit 90
cd "$small"
start=$(date +%s%N)
"$@" run --build "$small/b" -- sh -c 'head -c 5000000 /dev/zero > /tmp/big; echo wrote=$?; sleep 30; echo end' > "$out/1.out" 2> "$out/1.err"
echo $? > "$out/1.status"
echo $(( ($(date +%s%N) - start) / 1000000 )) > "$out/1.ms"
ls -A "$small/b/0/0" > "$out/1.ls"
cp "$small/b/0/0/status" "$out/1.record-status" 2>/dev/null
# the first run's directory goes after uwrx exited (uwrx-remove)
i=0; while ls -A "$small/b/.tmp" | grep -q '^[.]removing-' && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
head -c 4000000 /dev/zero > "$small/fill" 2>/dev/null
ls -A "$small/b" > "$out/2.before"
"$@" run --build "$small/b" -- echo hi > "$out/2.out" 2> "$out/2.err"
echo $? > "$out/2.status"
ls -A "$small/b" > "$out/2.after"
ls -A "$small/b/.tmp" > "$out/2.tmp"
`;

asRoot('a record whose filesystem fills up ends uwrx with one clear line, stops the command and leaves no temporary file', async (t) => {
  // a filesystem of 2 MiB for the build directory: the command's 5 MB go to its upper
  // directories beside the record, so the record's writers meet the full disk too
  const dir = scratchDir();
  const small = path.join(dir, 'small');
  const out = path.join(dir, 'out');
  mkdirSync(small);
  mkdirSync(out);
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', FULL_DISK_RUNS, 'sh', small, out, process.execPath, uwrxBin], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const read = (name: string) => readFileSync(path.join(out, name), 'utf8');
  const attempt = path.join(small, 'b', '0', '0');
  t.is(read('1.status').trim(), '2', read('1.err'));
  // the command's own write failed as it would on a full disk; then uwrx says why it ended
  t.regex(read('1.err'), /^head: error writing 'standard output': No space left on device$/m);
  t.regex(read('1.err'), new RegExp(`^uwrx run: no space is left on the filesystem of ${attempt}: its record is incomplete \\(.*(ENOSPC|No space left on device).*\\)$`, 'm'));
  t.notRegex(read('1.err'), /internal error|^\s+at /m, 'no stack trace');
  t.true(Number(read('1.ms')) < 25_000, 'the command was stopped, not waited for');
  t.false(read('1.out').includes('end'));
  t.notRegex(read('1.ls'), /\.tmp-/, 'no temporary file left in the attempt');
  const status = existsSync(path.join(out, '1.record-status')) ? (JSON.parse(read('1.record-status')) as { complete: boolean }) : undefined;
  t.not(status?.complete, true, 'the attempt is not complete');

  // a run that finds the disk full before its command starts says so and leaves nothing
  t.is(read('2.status').trim(), '2', read('2.err'));
  t.regex(read('2.err').trim().split('\n').at(-1)!, new RegExp(`^uwrx run: no space is left on the filesystem of ${path.join(small, 'b')}: the run cannot start \\(.*ENOSPC.*\\)$`));
  t.false(read('2.out').includes('hi'));
  t.is(read('2.after'), read('2.before'), 'no step or attempt left behind');
  t.is(read('2.tmp'), '', 'no run directory left behind');
});
