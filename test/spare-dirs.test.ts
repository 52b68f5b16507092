// The spare directories of the store layout (src/record/spare-dirs.ts): made while the
// command runs, renamed into files-<pid>/ by the layout; the store must be the one the
// layout's own mkdirs make, and what a run leaves (or a killed run) must not trouble the
// next run or `uwrx check`.
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { native } from '../src/native.js';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

// Several processes write the same paths in nested directories (a layer each, with the
// directories above the file), before and after a pause in which the storage actor
// (started 200 ms into the run) reads the versions kept so far and makes spares; then
// a directory is removed and made again (opaque in the layers above).
const SCRIPT = `
mkdir -p d/e/f g/h
for i in 1 2 3 4 5 6; do sh -c "echo $i > d/e/f/x; echo $i > g/h/y; echo $i > top"; done
sleep 0.8
for i in 1 2 3; do sh -c "rm -rf d; mkdir -p d/e/k; echo $i > d/e/k/z; echo $i > g/h/y; chmod 700 g/h"; done
`;

/** Every entry below the attempt's files/ and files-<pid>/: type, mode, size, target or digest. */
function storeTree(attemptDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const r = path.join(rel, name);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        const opaque = native().getXattr(p, 'user.overlay.opaque');
        out.push(`${r} d ${mode} ${st.size} ${opaque ? 'opaque' : ''}`);
        walk(p, r);
      } else if (st.isSymbolicLink()) out.push(`${r} l ${readlinkSync(p)}`);
      else if (st.isFile()) out.push(`${r} f ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      else out.push(`${r} c ${mode} ${st.rdev}`);
    }
  };
  for (const layer of readdirSync(attemptDir).filter((n) => n === 'files' || n.startsWith('files-'))) walk(path.join(attemptDir, layer), layer);
  return out.sort();
}

interface Run {
  attempt: string;
  spares: { found: number; made: number; taken: number; mkdirs: number } | undefined;
}

async function run(cwd: string, build: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const r = await uwrx(['run', '--build', build, '--', 'sh', '-c', SCRIPT], { cwd, env: { ...process.env, UWRX_DEBUG_TIMING: '1', ...env } });
  if (r.status !== 0) throw new Error(`uwrx run exited ${r.status}: ${r.stderr}`);
  const attempt = /record in (\S+)/.exec(r.stderr)?.[1];
  if (!attempt) throw new Error(`no attempt in: ${r.stderr}`);
  const m = /spare directories: (\d+) found, (\d+) made \(\d+ ms\), (\d+) taken, (\d+) made by the layout/.exec(r.stderr);
  return { attempt, spares: m ? { found: +m[1]!, made: +m[2]!, taken: +m[3]!, mkdirs: +m[4]! } : undefined };
}

function sparesIn(build: string): string[] {
  const root = path.join(build, '.tmp', 'spare-dirs');
  // <mode>/<run>/<n>
  const below = (rel: string): string[] =>
    lstatSync(path.join(root, rel)).isDirectory() && rel.split('/').length < 3
      ? readdirSync(path.join(root, rel)).flatMap((n) => below(path.join(rel, n)))
      : [rel];
  return existsSync(root) ? readdirSync(root).flatMap(below) : [];
}

test('a layout with spare directories makes the same store as its own mkdirs, in a first run and a second one that takes the first one\'s leftovers', async (t) => {
  const dir = scratchDir('uwrx-spares-');
  const cwd = path.join(dir, 'proj');
  mkdirSync(cwd);
  const without = path.join(dir, 'build-without');
  const withSpares = path.join(dir, 'build-with');
  const off = [await run(cwd, without, { UWRX_SPARE_DIRS: '0' }), await run(cwd, without, { UWRX_SPARE_DIRS: '0' })];
  t.is(off[0]!.spares, undefined);
  t.deepEqual(sparesIn(without), [], 'no pool when it is off');
  const on = [await run(cwd, withSpares)];
  const first = on[0]!.spares!;
  t.true(first.made > 1, `spares made while the command ran: ${JSON.stringify(first)}`);
  t.true(first.taken > 0, `spares taken: ${JSON.stringify(first)}`);
  // more spares for the second run to find than the first would make
  const leftover = sparesIn(withSpares).length;
  t.is(leftover, first.found + first.made - first.taken);
  on.push(await run(cwd, withSpares));
  const second = on[1]!.spares!;
  t.is(second.found, leftover);
  t.true(second.taken > 0, `spares taken: ${JSON.stringify(second)}`);
  for (const i of [0, 1]) {
    const a = storeTree(off[i]!.attempt);
    t.true(a.some((l) => / d 700 /.test(l)) && a.some((l) => l.endsWith('opaque')), 'the script makes a store with modes and opaque directories');
    t.deepEqual(storeTree(on[i]!.attempt), a, `run ${i + 1}: the same store`);
  }
  for (const r of [...off, ...on]) {
    const c = await uwrx(['check', r.attempt], { cwd });
    t.is(c.status, 0, c.stdout + c.stderr);
  }
});

test('a run killed while it makes spares troubles neither the next run nor uwrx check', async (t) => {
  const dir = scratchDir('uwrx-spares-');
  const cwd = path.join(dir, 'proj');
  mkdirSync(cwd);
  const build = path.join(dir, 'build');
  // the first run keeps versions, then waits: killed (SIGKILL, no finish) meanwhile
  const child = spawn(process.execPath, [uwrxBin, 'run', '-q', '--build', build, '--', 'sh', '-c', `${SCRIPT}\nsleep 30`], {
    cwd,
    stdio: 'ignore',
  });
  const deadline = Date.now() + 30_000;
  while (sparesIn(build).length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  const left = sparesIn(build).filter((n) => n.includes('/'));
  t.true(left.length >= 10, `spares made during the killed run: ${left.length}`);
  // the sandbox outlives its uwrx briefly
  await new Promise((r) => setTimeout(r, 500));
  const next = await run(cwd, build);
  t.true(next.spares!.found >= left.length, JSON.stringify(next.spares));
  t.true(next.spares!.taken > 0, JSON.stringify(next.spares));
  t.true(sparesIn(build).every((n) => /^[0-7]{4}\/[^/]+\/[^/]+$/.test(n)), 'only spares are left');
  const c = await uwrx(['check', next.attempt], { cwd });
  t.is(c.status, 0, c.stdout + c.stderr);
  const reference = await run(cwd, path.join(dir, 'build-reference'), { UWRX_SPARE_DIRS: '0' });
  // the killed attempt has no status, so the next run has no parent, as this one
  t.deepEqual(storeTree(next.attempt), storeTree(reference.attempt), 'the same store as without spares');
});

test('under another umask the spares have its mode, and the store is still the one of mkdirs', async (t) => {
  const dir = scratchDir('uwrx-spares-');
  const cwd = path.join(dir, 'proj');
  mkdirSync(cwd);
  const runUnder = async (build: string, env: NodeJS.ProcessEnv) => {
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn('sh', ['-c', 'umask 027; exec "$0" "$@"', process.execPath, uwrxBin, 'run', '--build', build, '--', 'sh', '-c', SCRIPT], {
        cwd,
        env: { ...process.env, UWRX_DEBUG_TIMING: '1', ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (status) => resolve({ status, stderr }));
    });
    t.is(r.status, 0, r.stderr);
    return { attempt: /record in (\S+)/.exec(r.stderr)![1]!, taken: Number(/(\d+) taken/.exec(r.stderr)?.[1] ?? 0) };
  };
  const off = await runUnder(path.join(dir, 'build-without'), { UWRX_SPARE_DIRS: '0' });
  const on = await runUnder(path.join(dir, 'build-with'), {});
  t.true(on.taken > 0);
  t.deepEqual(readdirSync(path.join(dir, 'build-with', '.tmp', 'spare-dirs')), ['0750']);
  const tree = storeTree(off.attempt);
  t.true(tree.some((l) => / d 750 /.test(l)), 'directories the layout made under umask 027');
  t.deepEqual(storeTree(on.attempt), tree);
});
