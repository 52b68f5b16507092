// Bad --build and --tmp paths and record paths: one line naming the path and the reason,
// exit 2, and nothing made or changed, least of all an existing record.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';
import { runners } from './helpers/sandbox-users.js';

/** Every path under `dir` with its type, size, mode and modification time: what a
 * refused run must leave as it was. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      // uwrx's own run directories (removed after it exits) are not the user's
      if (name === '.tmp') continue;
      const p = path.join(d, name);
      const st = statSync(p);
      out.push(`${path.relative(dir, p)} ${st.isDirectory() ? 'd' : 'f'} ${st.size} ${st.mode} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** One line on stderr, exit 2, no stack trace. */
function refused(t: import('ava').ExecutionContext, r: { status: number | null; stderr: string }, message: RegExp): void {
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, message);
  t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
}

test('--build under a regular file: the path and the file in the way, exit 2', async (t) => {
  const cwd = scratchDir();
  writeFileSync(path.join(cwd, 'f'), 'data\n');
  for (const extra of [[], ['--dry-run']]) {
    const r = await uwrx(['run', ...extra, '--build', 'f/x/y', '--', 'true'], { cwd });
    refused(t, r, new RegExp(`^uwrx run: build directory ${cwd}/f/x/y cannot be created: ${cwd}/f is not a directory\n$`));
  }
  const r = await uwrx(['run', '--build', 'f', '--', 'true'], { cwd });
  refused(t, r, new RegExp(`^uwrx run: build directory ${cwd}/f is not a directory\n$`));
  t.deepEqual(readdirSync(cwd), ['f']);
  t.is(readFileSync(path.join(cwd, 'f'), 'utf8'), 'data\n');
});

test('--tmp under a regular file, or a file itself: the path and the reason, exit 2, no attempt made', async (t) => {
  const cwd = scratchDir();
  writeFileSync(path.join(cwd, 'f'), 'data\n');
  refused(t, await uwrx(['run', '--tmp', 'f/x', '--', 'true'], { cwd }), new RegExp(`^uwrx run: --tmp ${cwd}/f/x: ${cwd}/f is not a directory\n$`));
  refused(t, await uwrx(['run', '--tmp', 'f', '--', 'true'], { cwd }), new RegExp(`^uwrx run: --tmp ${cwd}/f: not a directory\n$`));
  // a directory access(2) calls writable where nothing can be made (sysfs, as root too)
  if (statSync('/sys/kernel', { throwIfNoEntry: false })?.isDirectory()) {
    const r = await uwrx(['run', '--tmp', '/sys/kernel', '--', 'true'], { cwd });
    refused(t, r, /^uwrx run: --tmp \/sys\/kernel: (not writable \(E[A-Z]+\)|cannot create the run directory there \(E[A-Z]+\))\n$/);
  }
  // nothing made: the refused runs' build directory, step and attempt went again
  t.deepEqual(readdirSync(cwd), ['f']);
  // in an existing record, the step a refused run took goes again and the record stays
  t.is((await uwrx(['run', '-q', '--', 'true'], { cwd })).status, 0);
  const before = snapshot(path.join(cwd, 'build'));
  if (statSync('/sys/kernel', { throwIfNoEntry: false })?.isDirectory()) {
    const r = await uwrx(['run', '--tmp', '/sys/kernel', '--', 'true'], { cwd });
    t.is(r.status, 2, r.stderr);
  }
  t.deepEqual(snapshot(path.join(cwd, 'build')), before, 'the record as it was');
});

test('a directory that is not a record is refused as --build, and nothing in it changes', async (t) => {
  const cwd = scratchDir();
  // a record with an attempt, a named step and a hidden file of the user's: all fine
  t.is((await uwrx(['run', '-q', '--', 'true'], { cwd })).status, 0);
  t.is((await uwrx(['run', '-q', '--step', 'named', '--', 'true'], { cwd })).status, 0);
  writeFileSync(path.join(cwd, 'build', '.gitignore'), '*\n');
  t.is((await uwrx(['run', '-q', '--', 'true'], { cwd })).status, 0, 'a record with a named step and a hidden file takes more');
  // a source or CMake tree, an attempt and a step of the record are not build directories
  mkdirSync(path.join(cwd, 'cmake', 'CMakeFiles'), { recursive: true });
  writeFileSync(path.join(cwd, 'cmake', 'CMakeCache.txt'), 'x\n');
  writeFileSync(path.join(cwd, 'cmake', 'CMakeFiles', 'Makefile.cmake'), 'x\n');
  const cases: Array<[string, string]> = [
    ['cmake', 'CMakeCache.txt, CMakeFiles'],
    ['build/0/0', 'accesses.tsv, ca.pem, cmd and \\d+ more'],
    ['build/0', 'cmd, options'],
  ];
  const before = snapshot(cwd);
  for (const [dir, holds] of cases) {
    const r = await uwrx(['run', '--build', dir, '--', 'true'], { cwd });
    refused(t, r, new RegExp(`^uwrx run: build directory ${cwd}/${dir} is not a uwrx record \\(it holds ${holds}\\): choose another --build\n$`));
  }
  t.deepEqual(snapshot(cwd), before, 'nothing made or changed');
});

test('a build or tmp directory this user cannot write is refused before anything is made', async (t) => {
  // root writes anywhere: the unprivileged test user then runs uwrx
  const runner = runners[runners.length - 1]!;
  if (runner.uid === 0) {
    t.pass('no unprivileged user');
    return;
  }
  const cwd = scratchDir();
  chmodSync(cwd, 0o755);
  const locked = path.join(cwd, 'locked');
  const open = path.join(cwd, 'open');
  mkdirSync(locked, 0o555);
  mkdirSync(open);
  chmodSync(locked, 0o555);
  mkdirSync(path.join(open, 'tmp'));
  for (const d of [open, path.join(open, 'tmp')]) chownSync(d, runner.uid, runner.gid);
  // its code cache goes to a home of its own, not here
  const home = scratchDir();
  chownSync(home, runner.uid, runner.gid);
  const before = snapshot(cwd);
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...runner.prefix, process.execPath, uwrxBin, 'run', ...args, '--', 'true'];
    const r = spawnSync(cmd!, rest, { cwd: open, encoding: 'utf8', env: { ...process.env, HOME: home, XDG_CACHE_HOME: path.join(home, '.cache') } });
    return { status: r.status, stderr: r.stderr };
  };
  refused(t, run(['--build', locked]), new RegExp(`^uwrx run: build directory ${locked} is not writable \\(EACCES\\)\n$`));
  refused(t, run(['--build', `${locked}/b`]), new RegExp(`^uwrx run: build directory ${locked}/b cannot be created: ${locked} is not writable \\(EACCES\\)\n$`));
  refused(t, run(['--build', `${open}/b`, '--tmp', locked]), new RegExp(`^uwrx run: --tmp ${locked}: not writable \\(EACCES\\)\n$`));
  t.deepEqual(snapshot(cwd), before, 'nothing made');
  const ok = run(['--build', `${open}/b`, '--tmp', `${open}/tmp`]);
  t.is(ok.status, 0, `the same runs where it can write: ${ok.stderr}`);
});

test('record paths that are not attempts: inspect, check and ui say which and why, exit 2', async (t) => {
  const cwd = scratchDir();
  writeFileSync(path.join(cwd, 'f'), 'data\n');
  mkdirSync(path.join(cwd, 'empty'));
  for (const command of [['check'], ['inspect', 'net'], ['inspect', 'rebuild'], ['inspect', 'procs'], ['ui']]) {
    refused(t, await uwrx([...command, 'f'], { cwd }), new RegExp(`^uwrx: ${cwd}/f: not a directory\n$`));
    refused(t, await uwrx([...command, 'f/x'], { cwd }), new RegExp(`^uwrx: ${cwd}/f/x: no such attempt directory\n$`));
    refused(t, await uwrx([...command, 'empty'], { cwd }), new RegExp(`^uwrx: ${cwd}/empty: not an attempt directory`));
  }
});
