// Execs of paths that do not exist (the failing tries of a PATH search: execvp,
// posix_spawnp, gcc looking for `as`) are answered in process (--fast-path) without a
// notification, with the native errors; the exec that succeeds is notified and recorded
// as before, so the record is the same on both paths.
import test from 'ava';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { buildDriver } from './native/cc.js';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx, fromGate } from './helpers/uwrx.js';

const missing = ensureCommands({ strace: 'strace' });

function fixture(t: { teardown(fn: () => void): void }): { dir: string; bin: string } {
  const dir = scratchDir('uwrx-exec-search-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'found'), '#!/bin/sh\necho found ran\n');
  chmodSync(path.join(bin, 'found'), 0o755);
  writeFileSync(path.join(bin, 'not-executable'), 'x\n');
  chmodSync(path.join(bin, 'not-executable'), 0o644);
  return { dir, bin };
}

interface Proc { pid: number; ppid: number; key: string; cmdline: string[]; exe: string | null; status: number | null }

test('failing execs give the native errors on both paths, and the record is the same', async (t) => {
  const probe = buildDriver('exec_search', ['test/native/exec_search.c']);
  const { dir, bin } = fixture(t);
  const native = spawnSync(probe, [bin], { cwd: dir, encoding: 'utf8' });
  t.is(native.status, 0, native.stderr);
  t.regex(native.stdout, /^execve .*\/missing: No such file or directory$/m);
  t.regex(native.stdout, /^execve .*\/not-executable\/x: Not a directory$/m);
  t.regex(native.stdout, /^execve .*\/not-executable: Permission denied$/m);
  t.regex(native.stdout, /^posix_spawnp without it: No such file or directory$/m);
  t.regex(native.stdout, /^spawned exit 0$/m);
  t.regex(native.stdout, /found ran\n$/);
  const procs = async (args: string[], step: string): Promise<Proc[]> => {
    const r = await uwrx(['run', '--quiet', '--step', step, ...args, '--', probe, bin], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, native.stdout, `${args.join(' ')}: the native output`);
    const listed = await uwrx(['inspect', 'procs', path.join(dir, 'build', step, '0'), '--format', 'json'], { cwd: dir });
    t.is(listed.status, 0, listed.stderr);
    return (JSON.parse(listed.stdout) as Proc[]).map(({ pid, ppid, key, cmdline, exe, status }) => ({ pid, ppid, key, cmdline, exe, status }));
  };
  const notified = await procs(['--no-fast-path'], '0');
  t.true(notified.some((p) => p.exe === path.join(bin, 'found') && p.cmdline[0] === 'found'), JSON.stringify(notified));
  t.deepEqual(await procs(['--fast-path', '--no-parent'], '10'), notified);
});

test('a PATH search\'s failing tries are probed from the gate, not notified', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const probe = buildDriver('exec_search', ['test/native/exec_search.c']);
  const { dir, bin } = fixture(t);
  const execs = async (args: string[]) => {
    const r = await uwrx(['run', '--quiet', ...args, '--', 'strace', '-f', '-i', '-qq', '-e', 'trace=execve,faccessat2', probe, bin], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n');
    return {
      failed: lines.filter((l) => /\bexecve\(.*= -1 (ENOENT|ENOTDIR)/.test(l)).length,
      denied: lines.filter((l) => /\bexecve\(.*= -1 EACCES/.test(l)).length,
      probes: lines.filter((l) => fromGate(l) && l.includes('] faccessat2(') && /= -1 (ENOENT|ENOTDIR)/.test(l)).length,
    };
  };
  const notified = await execs(['--no-fast-path']);
  t.true(notified.failed >= 10, JSON.stringify(notified));
  t.is(notified.probes, 0);
  const inProcess = await execs(['--fast-path']);
  t.is(inProcess.failed, 0, JSON.stringify(inProcess));
  t.true(inProcess.probes >= 10, JSON.stringify(inProcess));
  t.is(inProcess.denied, notified.denied, 'an exec the kernel refuses otherwise is still made');
});
