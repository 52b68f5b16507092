// The executable of a skippable program's exec (the rebuild index's "exe") is what its
// /proc/<pid>/exe link names. uwrx-init keeps the link read for one exec of a path and
// gives it to the next exec of the same path while the file there is the same one and
// no directory or symlink changed: a symlink pointed elsewhere, a file replaced, a
// renamed directory and a script (whose link names its interpreter) must all show.
import test from 'ava';
import { copyFileSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { lastAttempt, scratchDir, uwrx } from './helpers/uwrx.js';

interface Asked {
  pid: number;
  exe: string;
  argv: string[];
}

function asked(attempt: string): Asked[] {
  const lines = readFileSync(path.join(attempt, 'rebuild.json'), 'utf8').split('\n').slice(1).filter(Boolean);
  return lines.map((l) => JSON.parse(l) as Asked).sort((a, b) => a.pid - b.pid);
}

test("a skippable program's executable follows symlinks, replaced files, renamed directories and scripts", async (t) => {
  const dir = realpathSync(scratchDir('uwrx-exec-exe-'));
  mkdirSync(path.join(dir, 'a'));
  mkdirSync(path.join(dir, 'b'));
  copyFileSync('/bin/true', path.join(dir, 'a', 'mytool'));
  copyFileSync('/bin/true', path.join(dir, 'b', 'othertool'));
  symlinkSync('a/mytool', path.join(dir, 'tool'));
  writeFileSync(path.join(dir, 'script'), '#!/bin/sh\nexit 0\n');
  chmodSync(path.join(dir, 'script'), 0o755);
  const script = [
    './tool one',
    './tool two', // the same file again
    'ln -sfn b/othertool tool',
    './tool three', // the symlink points elsewhere
    'mv a/mytool a/old && cp b/othertool a/mytool && ln -sfn a/mytool tool',
    './tool four', // another file at the same path
    'mv a c && ln -sfn c/mytool tool',
    './tool five', // its directory renamed
    './script six',
    './script seven',
  ].join('; ');
  const r = await uwrx(['run', '-q', '--skippable', 'mytool', '--skippable', 'othertool', '--skippable', 'script', '--skippable', 'sh', '--', 'sh', '-c', script], {
    cwd: dir,
  });
  t.is(r.status, 0, r.stderr);
  const tags = ['one', 'two', 'three', 'four', 'five', 'six', 'seven'];
  // (a script's argv is its interpreter's: /bin/sh ./script six)
  const got = asked(lastAttempt(dir)).filter((q) => tags.includes(q.argv[q.argv.length - 1]!));
  t.deepEqual(
    got.map((q) => [q.argv[q.argv.length - 1], q.exe]),
    [
      ['one', `${dir}/a/mytool`],
      ['two', `${dir}/a/mytool`],
      ['three', `${dir}/b/othertool`],
      ['four', `${dir}/a/mytool`],
      ['five', `${dir}/c/mytool`],
      ['six', realpathSync('/bin/sh')],
      ['seven', realpathSync('/bin/sh')],
    ],
  );
});
