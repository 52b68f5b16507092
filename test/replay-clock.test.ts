// A replay reuses its attempt's T0. A source edited since the recorded run must still be
// older than the replay's clock, as it is natively: make then reports no clock skew and
// a second make finds its target up to date. A replay of an unchanged tree keeps the
// recorded clock.
import test from 'ava';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hostNewestSinceNs } from '../src/reproducibility/replay-clock.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const MAKEFILE = 'prog: prog.c\n\tcc -o prog prog.c\n';
const SCRIPT = 'make; make; date +%s';

test('a replay after a source was edited starts its clock after the edit: no clock skew, and make finds its target up to date', async (t) => {
  const cwd = scratchDir('uwrx-replay-clock-');
  writeFileSync(path.join(cwd, 'Makefile'), MAKEFILE);
  writeFileSync(path.join(cwd, 'prog.c'), 'int main(void) { return 0; }\n');
  const build = path.join(cwd, 'B');
  const capture = await uwrx(['run', '-q', '--build', build, '--', 'sh', '-c', SCRIPT], { cwd });
  t.is(capture.status, 0, capture.stderr);
  t.regex(capture.stdout, /^cc -o prog prog\.c\nmake: 'prog' is up to date\.\n\d+\n$/);
  const recordedSeconds = capture.stdout.trim().split('\n').at(-1);

  // nothing changed: the replay reads the recorded clock
  const same = await uwrx(['run', '-q', '--build', build, '--replay', path.join(build, '0', '0')], { cwd });
  t.is(same.status, 0, same.stderr);
  t.is(same.stdout.trim().split('\n').at(-1), recordedSeconds);

  // an edit a few seconds after the recorded run (its mtime past the recorded clock)
  await new Promise((resolve) => setTimeout(resolve, 2100));
  writeFileSync(path.join(cwd, 'prog.c'), 'int main(void) { return 1; }\n');
  const editedSeconds = Math.floor(Number(statSync(path.join(cwd, 'prog.c'), { bigint: true }).mtimeNs / 1_000_000_000n));
  t.true(editedSeconds > Number(recordedSeconds), `${editedSeconds} against ${recordedSeconds}`);
  const replay = await uwrx(['run', '-q', '--build', build, '--replay', path.join(build, '0', '0')], { cwd });
  t.is(replay.status, 0, replay.stderr);
  t.notRegex(replay.stderr, /skew|in the future/);
  t.regex(replay.stdout, /^cc -o prog prog\.c\nmake: 'prog' is up to date\.\n\d+\n$/);
  const replayedSeconds = replay.stdout.trim().split('\n').at(-1);
  t.true(Number(replayedSeconds) > editedSeconds, replay.stdout);

  // that replay replayed, with no edit since: its T0 again, still after the edit
  const again = await uwrx(['run', '-q', '--build', build, '--replay', path.join(build, '0', '1')], { cwd });
  t.is(again.status, 0, again.stderr);
  t.notRegex(again.stderr, /skew|in the future/);
  t.regex(again.stdout, /make: 'prog' is up to date\.\n\d+\n$/);
  t.is(again.stdout.trim().split('\n').at(-1), replayedSeconds);
});

test('the edited host files a replay must start after: those the run looked at, a probe that now finds a file, not directories', async (t) => {
  const dir = scratchDir('uwrx-replay-clock-unit-');
  const attempt = path.join(dir, 'attempt');
  const src = path.join(dir, 'src');
  mkdirSync(attempt);
  mkdirSync(src);
  const a = path.join(src, 'a.c');
  writeFileSync(a, 'x');
  const lines = [
    'pid\top\tpath\tcount',
    `1\tread\t${a}\t1`,
    `1\treaddir\t${src}\t1`,
    `1\tmissing\t${path.join(src, 'later.h')}\t1`,
    `1\twrite\t${path.join(src, 'out.o')}\t1`,
    '1\tstat\t/dev/null\t1',
  ];
  writeFileSync(path.join(attempt, 'accesses.tsv'), lines.join('\n') + '\n');
  const mtime = (p: string) => statSync(p, { bigint: true }).mtimeNs;
  const now = () => BigInt(Date.now()) * 1_000_000n + 1_000_000_000n;
  t.is(hostNewestSinceNs(attempt, mtime(a) - 1n, now()), mtime(a));
  // what the run wrote and a directory's new entry are not what it looked at
  await new Promise((resolve) => setTimeout(resolve, 20));
  writeFileSync(path.join(src, 'out.o'), 'z');
  writeFileSync(path.join(src, 'other.c'), 'z');
  t.is(hostNewestSinceNs(attempt, mtime(a) - 1n, now()), mtime(a));
  t.true(mtime(src) > mtime(a));
  // a header probed and missing then, present now
  await new Promise((resolve) => setTimeout(resolve, 20));
  writeFileSync(path.join(src, 'later.h'), 'h');
  t.is(hostNewestSinceNs(attempt, mtime(a), now()), mtime(path.join(src, 'later.h')));
  t.is(hostNewestSinceNs(attempt, now(), now() + 1n), undefined, 'nothing changed since');
  t.is(hostNewestSinceNs(attempt, 0n, mtime(a) - 1n), undefined, 'a file dated after "now" is not followed');
  t.is(hostNewestSinceNs(path.join(dir, 'no-such-attempt'), 0n, now()), undefined, 'no access index');
  writeFileSync(path.join(attempt, 'accesses.tsv'), 'pid\top\tpath\tcount\nnot a line\n');
  t.is(hostNewestSinceNs(attempt, 0n, now()), undefined, 'a damaged index');
});
