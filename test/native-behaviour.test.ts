// `uwrx run --` in front of a command behaves as the command alone: real programs,
// as a user runs them, and the real filesystem left untouched.
import test from 'ava';
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { scratchDir, uwrx } from './helpers/uwrx.js';

async function scratch(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = scratchDir('uwrx-native-');
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the command is looked up in the caller\'s PATH', async (t) => {
  const dir = await scratch(t);
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  // a command only this PATH has, and one that shadows a system command
  await fs.writeFile(path.join(bin, 'onlyhere'), '#!/bin/sh\necho only here "$@"\n', { mode: 0o755 });
  await fs.writeFile(path.join(bin, 'true'), '#!/bin/sh\necho the first true in PATH\n', { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  const only = await uwrx(['run', '--quiet', '--', 'onlyhere', 'x'], { cwd: dir, env });
  t.is(only.status, 0, only.stderr);
  t.is(only.stdout, 'only here x\n');
  const shadow = await uwrx(['run', '--quiet', '--', 'true'], { cwd: dir, env });
  t.is(shadow.stdout, 'the first true in PATH\n');
});

test('a missing command fails as in a shell: exit 127, one line', async (t) => {
  const dir = await scratch(t);
  const out = await uwrx(['run', '--quiet', '--', 'no-such-command-here'], { cwd: dir });
  t.is(out.status, 127);
  t.is(out.stdout, '');
  t.is(out.stderr, 'uwrx: no-such-command-here: No such file or directory\n');
  t.false(existsSync(path.join(dir, 'no-such-command-here')));
});
