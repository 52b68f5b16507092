// How much of a real parallel build a replay reproduces: binutils' libiberty (zlib with
// --zlib) configured and built with `make -j2` under uwrx, then `uwrx run --replay`, and
// the two attempts compared: the tree keys whose pid or arguments differ, the stored
// files (files/, each files-<pid>/) whose presence or bytes differ, and the files.meta
// lines only one of them has. Too slow for the test suite on two loaded cores (a few
// minutes per build), so it is a benchmark: run it when changing what replays depend on
// (clocks, pids, the PRNG).
//
//   npm run build:ts && npm run bench:replay [-- --zlib] [-- --keep]
import { execFile } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { defaultCacheDir, repoRoot, type BenchContext } from './context.js';
import { binutilsSource } from './sources.js';
import { readProcessTable, type ProcessRecord } from '../src/record/procs.js';

const run = promisify(execFile);
const uwrxBin = path.join(repoRoot, 'bin', 'uwrx');

/** Every stored file of an attempt (files/ and files-<pid>/) with its bytes (a link's
 * target, a node's mode). */
function storedFiles(attemptDir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(attemptDir, rel))) {
      const r = path.join(rel, name);
      const st = lstatSync(path.join(attemptDir, r));
      if (st.isDirectory()) walk(r);
      else out.set(r, st.isFile() ? readFileSync(path.join(attemptDir, r)) : Buffer.from(`mode ${st.mode} rdev ${st.rdev}`));
    }
  };
  for (const dir of readdirSync(attemptDir).filter((n) => n === 'files' || n.startsWith('files-'))) walk(dir);
  return out;
}

const argvText = (p: ProcessRecord) => p.argv.map((a) => a.toString()).join(' ');

async function timed(argv: string[], cwd: string): Promise<number> {
  const started = Date.now();
  await run(process.execPath, [uwrxBin, ...argv], { cwd, maxBuffer: 64 << 20 });
  return (Date.now() - started) / 1000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { zlib: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } } });
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'uwrx-bench-replay-'));
  const ctx: BenchContext = {
    repo: repoRoot, cache: defaultCacheDir(), scratch, quick: false, timeoutMs: 3_600_000,
    log: (line) => process.stderr.write(`${line}\n`),
    atEnd: [],
  };
  try {
    const project = values.zlib ? 'zlib' : 'libiberty';
    // The build writes only into the record: the extracted sources stay as they are.
    const cwd = path.join(await binutilsSource(ctx), project);
    const build = path.join(scratch, 'build');
    const command = ['sh', '-c', './configure >/dev/null 2>&1 && make -j2 >/dev/null 2>&1'];
    ctx.log(`${project}: configure && make -j2 under uwrx`);
    const captureS = await timed(['run', '-q', '--build', build, '--step', '0', '--', ...command], cwd);
    ctx.log(`${project}: --replay`);
    const replayS = await timed(['run', '-q', '--build', build, '--replay', path.join(build, '0', '0')], cwd);
    const [a, b] = [path.join(build, '0', '0'), path.join(build, '0', '1')];

    const [recorded, replayed] = await Promise.all([readProcessTable(a), readProcessTable(b)]);
    const byKey = new Map(replayed.map((p) => [p.key, p]));
    let otherPid = 0;
    let otherArgv = 0;
    let missing = 0;
    for (const p of recorded) {
      const q = byKey.get(p.key);
      if (!q) missing++;
      else {
        if (q.pid !== p.pid) otherPid++;
        if (argvText(q) !== argvText(p)) otherArgv++;
      }
    }
    const [fa, fb] = [storedFiles(a), storedFiles(b)];
    const onlyOne = [...fa.keys()].filter((f) => !fb.has(f)).length + [...fb.keys()].filter((f) => !fa.has(f)).length;
    const otherBytes = [...fa.keys()].filter((f) => fb.has(f) && !fa.get(f)!.equals(fb.get(f)!));
    const meta = (dir: string) => new Set(readFileSync(path.join(dir, 'files.meta'), 'utf8').split('\n'));
    const [ma, mb] = [meta(a), meta(b)];
    const metaOnlyOne = [...ma].filter((l) => !mb.has(l)).length + [...mb].filter((l) => !ma.has(l)).length;

    console.log(`${project}: configure && make -j2, captured in ${captureS.toFixed(1)} s, replayed in ${replayS.toFixed(1)} s (load ${os.loadavg()[0]!.toFixed(1)})`);
    console.log(`processes: ${recorded.length} recorded, ${replayed.length} replayed`);
    console.log(`tree keys with another pid: ${otherPid}; with other arguments: ${otherArgv}; recorded keys the replay lacks: ${missing}`);
    console.log(`stored files: ${fa.size}; in one attempt only: ${onlyOne}; other bytes: ${otherBytes.length}${otherBytes.length ? ` (${otherBytes.slice(0, 5).join(', ')})` : ''}`);
    console.log(`files.meta lines in one attempt only: ${metaOnlyOne} of ${ma.size}`);
  } finally {
    if (values.keep) ctx.log(`kept ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:replay: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
