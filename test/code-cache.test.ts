// bin/uwrx loads its bundle with V8's code cache, kept in $XDG_CACHE_HOME/uwrx: the
// first command writes it, later ones use it, and a missing, damaged, stale, foreign or
// unwritable cache only costs a compile from source (the command works the same, and a
// usable cache is written again).
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { IMPORT_META_URL, WRAPPER, loadBundle } from '../src/cli/code-cache.js';
import { afterRemovals, repoRoot, scratchDir, uwrx } from './helpers/uwrx.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
const MAGIC_BYTES = 8;
const HEADER_BYTES = MAGIC_BYTES + 32 + 32;

/** `uwrx --version` with its cache in `cacheHome`; what bin/uwrx says of the cache. */
async function version(cacheHome: string): Promise<{ cache: string; stdout: string; status: number | null }> {
  const cwd = scratchDir('uwrx-cc-cwd-');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome, UWRX_DEBUG_TIMING: '1' };
  delete env.UWRX_NO_CODE_CACHE;
  delete env.UWRX_NO_BUNDLE;
  const r = await uwrx(['--version'], { cwd, env });
  const line = /uwrx timing: code cache (\w+)/.exec(r.stderr);
  return { cache: line?.[1] ?? `(no code cache line in: ${r.stderr})`, stdout: r.stdout, status: r.status };
}

function cacheFile(cacheHome: string, kind: 'cli' | 'run' = 'cli'): string {
  const dir = path.join(cacheHome, 'uwrx');
  const files = readdirSync(dir).filter((n) => n.startsWith(`code-${kind}-`) && n.endsWith('.v8'));
  if (files.length !== 1) throw new Error(`expected one ${kind} code cache in ${dir}, found ${files.join(', ') || 'none'}`);
  return path.join(dir, files[0]!);
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();

test('the first command writes the code cache and the next one uses it', async (t) => {
  const home = scratchDir('uwrx-cc-');
  const first = await version(home);
  t.is(first.status, 0);
  t.is(first.stdout, `uwrx ${pkg.version}\n`);
  t.is(first.cache, 'miss');
  const file = cacheFile(home);
  const bytes = readFileSync(file);
  t.is(bytes.subarray(0, MAGIC_BYTES).toString('latin1'), 'UWRXV8C1');
  t.deepEqual(bytes.subarray(MAGIC_BYTES + 32, HEADER_BYTES), sha256(bytes.subarray(HEADER_BYTES)), 'the checksum covers the data');
  const second = await version(home);
  t.is(second.cache, 'used');
  t.is(second.stdout, `uwrx ${pkg.version}\n`);
});

// V8's cache holds what the command that wrote it compiled: a run after `uwrx --version`
// must not use the small cache --version wrote, or it compiles the run's code every time.
test('a run writes and uses a code cache of its own, whatever command came first', async (t) => {
  const home = scratchDir('uwrx-cc-');
  await version(home);
  const cli = readFileSync(cacheFile(home));
  const run = async () => {
    const cwd = scratchDir('uwrx-cc-run-');
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: home, UWRX_DEBUG_TIMING: '1' };
    delete env.UWRX_NO_CODE_CACHE;
    delete env.UWRX_NO_BUNDLE;
    const r = await uwrx(['run', '-q', '--no-net', '--build', path.join(cwd, 'b'), '--', 'true'], { cwd, env });
    t.is(r.status, 0, r.stderr);
    return /uwrx timing: code cache (\w+)/.exec(r.stderr)?.[1];
  };
  t.is(await run(), 'miss');
  const runCache = readFileSync(cacheFile(home, 'run'));
  t.true(runCache.length > cli.length, `a run compiles more than --version (${runCache.length} against ${cli.length} bytes)`);
  t.is(await run(), 'used');
  t.deepEqual(readFileSync(cacheFile(home)), cli, 'the cache of the other commands is left as it was');
  t.is((await version(home)).cache, 'used');
});

// Each way a cache file can be bad: the command runs as usual from source, and the file
// is replaced by a usable one.
const damages: Array<[string, (bytes: Buffer) => Buffer]> = [
  ['a flipped byte in the data', (b) => {
    const c = Buffer.from(b);
    c[HEADER_BYTES + Math.floor((c.length - HEADER_BYTES) / 2)]! ^= 0xff;
    return c;
  }],
  ['a truncated file', (b) => b.subarray(0, Math.floor(b.length / 2))],
  ['an empty file', () => Buffer.alloc(0)],
  ['a file of another format', () => Buffer.from('not a code cache\n')],
  ['a cache made for another bundle or Node version (another key)', (b) => {
    const c = Buffer.from(b);
    c[MAGIC_BYTES]! ^= 0xff;
    return c;
  }],
  ['whole and checksummed data that V8 rejects', (b) => {
    const data = Buffer.from('these bytes are not V8 code cache data, but their checksum is right');
    return Buffer.concat([b.subarray(0, MAGIC_BYTES + 32), sha256(data), data]);
  }],
];

for (const [what, damage] of damages) {
  test(`a code cache with ${what} is ignored and rebuilt`, async (t) => {
    const home = scratchDir('uwrx-cc-');
    await version(home);
    const file = cacheFile(home);
    writeFileSync(file, damage(readFileSync(file)));
    const damaged = await version(home);
    t.is(damaged.status, 0);
    t.is(damaged.stdout, `uwrx ${pkg.version}\n`);
    t.is(damaged.cache, 'miss');
    t.is((await version(home)).cache, 'used', 'the damaged cache was replaced by a usable one');
  });
}

test('a run of many processes writes a code cache that the next command uses (the run tunes V8 only while its command runs)', async (t) => {
  const home = scratchDir('uwrx-cc-');
  const cwd = scratchDir('uwrx-cc-cwd-');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: home, UWRX_DEBUG_TIMING: '1' };
  delete env.UWRX_NO_CODE_CACHE;
  delete env.UWRX_NO_BUNDLE;
  const loop = 'i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done';
  const r = await uwrx(['run', '--quiet', '--', 'sh', '-c', loop], { cwd, env });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /uwrx timing: code cache miss/);
  // V8 rejects a cache made under other flag values: the run's tuning must be undone by then
  const next = await uwrx(['run', '--quiet', '--', 'true'], { cwd, env });
  t.is(next.status, 0, next.stderr);
  t.regex(next.stderr, /uwrx timing: code cache used/);
});

test('a cache directory that cannot be made leaves every command working, from source', async (t) => {
  const home = scratchDir('uwrx-cc-');
  // a file where the directory would be: mkdir fails whoever runs the test (root too)
  const blocked = path.join(home, 'not-a-directory');
  writeFileSync(blocked, '');
  for (let i = 0; i < 2; i++) {
    const r = await version(blocked);
    t.is(r.status, 0);
    t.is(r.stdout, `uwrx ${pkg.version}\n`);
    t.is(r.cache, 'miss');
  }
  t.is(readFileSync(blocked, 'utf8'), '', 'nothing was written in its place');
});

test('UWRX_NO_CODE_CACHE=1 loads the bundle without a cache and writes none', async (t) => {
  const home = scratchDir('uwrx-cc-');
  const cwd = scratchDir('uwrx-cc-cwd-');
  const r = await uwrx(['--version'], { cwd, env: { ...process.env, XDG_CACHE_HOME: home, UWRX_DEBUG_TIMING: '1', UWRX_NO_CODE_CACHE: '1' } });
  t.is(r.status, 0);
  t.regex(r.stderr, /code cache off/);
  t.deepEqual(readdirSync(home), []);
});

test('the bundles are ASCII: V8 then keeps their source as one-byte strings', (t) => {
  // One other character (a comment esbuild keeps) makes the whole 500 KB a two-byte
  // string: its decoding took 5-6 ms instead of 2 here, and V8's own work on it more.
  for (const bundle of ['dist/src/cli/uwrx.cjs', 'dist/src/actors/io.cjs', 'dist/src/cli/boot/code-cache.cjs', 'dist/src/cli/boot/worker-boot.cjs']) {
    const bytes = readFileSync(path.join(repoRoot, bundle));
    const at = bytes.findIndex((b) => b > 0x7f);
    t.is(at, -1, `${bundle}: a non-ASCII byte at offset ${at}: ${bytes.subarray(Math.max(0, at - 60), at + 20).toString()}`);
  }
});

test('loadBundle runs a CommonJS bundle with its own require, file names and import.meta.url', (t) => {
  const dir = scratchDir('uwrx-cc-bundle-');
  const file = path.join(dir, 'b.cjs');
  writeFileSync(path.join(dir, 'dep.cjs'), 'module.exports = 41;\n');
  writeFileSync(file, `"use strict";\nexports.answer = require('./dep.cjs') + 1;\nexports.url = ${IMPORT_META_URL};\nexports.file = __filename;\nexports.dir = __dirname;\nexports.strict = (function () { return this; })() === undefined;\n`);
  const cacheDir = path.join(dir, 'cache');
  const loaded = loadBundle(file, 'fixture', { dir: cacheDir, sha256 });
  t.is(loaded.cache, 'miss');
  t.deepEqual(loaded.exports, { answer: 42, url: pathToFileURL(file).href, file, dir, strict: true });
  t.true(loaded.cacheFile!.startsWith(cacheDir + '/'));
  loaded.saveCache();
  const again = loadBundle(file, 'fixture', { dir: cacheDir, sha256 });
  t.is(again.cache, 'used');
  t.is(again.exports.answer, 42);
  t.is(loadBundle(file, 'fixture', undefined).cache, 'off');
});

test('a bundle that carries the wrapper itself is run as read, as uwrx\'s own are built', (t) => {
  // uwrx's bundles start with the wrapper's line and end by closing it (npm run bundle)
  for (const bundle of ['dist/src/cli/uwrx.cjs', 'dist/src/actors/io.cjs']) {
    const text = readFileSync(path.join(repoRoot, bundle), 'latin1');
    t.is(text.slice(0, text.indexOf('\n')), WRAPPER, bundle);
    t.regex(text.slice(-8), /\n\}\)\n?$/, bundle);
  }
  const dir = scratchDir('uwrx-cc-wrapped-');
  const file = path.join(dir, 'b.cjs');
  writeFileSync(path.join(dir, 'dep.cjs'), 'module.exports = 41;\n');
  writeFileSync(file, `${WRAPPER}\n"use strict";\nexports.answer = require('./dep.cjs') + 1;\nexports.url = ${IMPORT_META_URL};\nexports.file = __filename;\nexports.strict = (function () { return this; })() === undefined;\n})\n`);
  const cacheDir = path.join(dir, 'cache');
  const loaded = loadBundle(file, 'fixture', { dir: cacheDir, sha256 });
  t.deepEqual(loaded.exports, { answer: 42, url: pathToFileURL(file).href, file, strict: true });
  loaded.saveCache();
  t.is(loadBundle(file, 'fixture', { dir: cacheDir, sha256 }).cache, 'used');
});

test('each checkout keeps a code cache of its own, and those of the least recently written beyond four go', async (t) => {
  const dir = scratchDir('uwrx-cc-prune-');
  const cacheDir = path.join(dir, 'cache');
  const bundles = [0, 1, 2, 3, 4, 5].map((i) => {
    const file = path.join(dir, `checkout${i}`, 'b.cjs');
    mkdirSync(path.dirname(file));
    writeFileSync(file, `"use strict";\nexports.n = ${i};\n`);
    return file;
  });
  // another kind of cache entry is not a code cache of this name: it stays
  mkdirSync(cacheDir);
  writeFileSync(path.join(cacheDir, 'code-other-000000000000.v8'), 'x');
  const files = bundles.map((file, i) => {
    const loaded = loadBundle(file, 'fixture', { dir: cacheDir, sha256 });
    loaded.saveCache();
    // distinct modification times, oldest first
    utimesSync(loaded.cacheFile!, 1000 + i, 1000 + i);
    return path.basename(loaded.cacheFile!);
  });
  t.is(new Set(files).size, 6);
  // the last write pruned: the four newest fixture caches are left
  const left = readdirSync(cacheDir).sort();
  t.deepEqual(left, ['code-other-000000000000.v8', ...files.slice(2)].sort());
  t.is(loadBundle(bundles[5]!, 'fixture', { dir: cacheDir, sha256 }).cache, 'used');
  t.is(loadBundle(bundles[0]!, 'fixture', { dir: cacheDir, sha256 }).cache, 'miss');
});

/** A run with its cache in `cacheHome` whose record's actors start in the io thread
 * (UWRX_TEST_LATE_ACTORS_MS=0: as soon as the command starts; the command outlives
 * that); what the thread says of its code cache (the actors' CommonJS bundle). */
async function runIoThread(cacheHome: string): Promise<{ io: string; status: number | null; stderr: string; cwd: string }> {
  const r = await runIn(cacheHome, ['sleep', '0.3'], 0);
  const line = /uwrx timing: io thread code cache (\w+)/.exec(r.stderr);
  return { ...r, io: line?.[1] ?? `(no io thread code cache line in: ${r.stderr})` };
}

/** `uwrx run -- <command>` with its cache in `cacheHome`, UWRX_DEBUG_TIMING set, and
 * the record's actors started `lateActorsMs` after the command (src/run.ts). */
async function runIn(cacheHome: string, command: string[], lateActorsMs: number): Promise<{ status: number | null; stderr: string; cwd: string }> {
  const cwd = scratchDir('uwrx-cc-cwd-');
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome, UWRX_DEBUG_TIMING: '1', UWRX_TEST_LATE_ACTORS_MS: String(lateActorsMs) };
  delete env.UWRX_NO_CODE_CACHE;
  delete env.UWRX_NO_BUNDLE;
  const r = await uwrx(['run', '--', ...command], { cwd, env });
  return { status: r.status, stderr: r.stderr, cwd };
}

function ioCacheFile(cacheHome: string): string {
  const dir = path.join(cacheHome, 'uwrx');
  const files = readdirSync(dir).filter((n) => n.startsWith('code-io-') && n.endsWith('.v8'));
  if (files.length !== 1) throw new Error(`expected one io thread code cache in ${dir}, found ${files.join(', ') || 'none'}`);
  return path.join(dir, files[0]!);
}

test('the io thread of a run writes its own code cache once its actors stopped, and the next run uses it', async (t) => {
  const home = scratchDir('uwrx-cc-');
  const first = await runIoThread(home);
  t.is(first.status, 0, first.stderr);
  t.is(first.io, 'miss');
  const bytes = readFileSync(ioCacheFile(home));
  t.is(bytes.subarray(0, MAGIC_BYTES).toString('latin1'), 'UWRXV8C1');
  t.deepEqual(bytes.subarray(MAGIC_BYTES + 32, HEADER_BYTES), sha256(bytes.subarray(HEADER_BYTES)), 'the checksum covers the data');
  const second = await runIoThread(home);
  t.is(second.status, 0, second.stderr);
  t.is(second.io, 'used');
  t.deepEqual(await afterRemovals(path.join(second.cwd, 'build', '.tmp')), [], 'the run directory is gone');
});

for (const [what, damage] of damages) {
  test(`an io thread code cache with ${what} is ignored and rebuilt; the run records as usual`, async (t) => {
    const home = scratchDir('uwrx-cc-');
    await runIoThread(home);
    const file = ioCacheFile(home);
    writeFileSync(file, damage(readFileSync(file)));
    const damaged = await runIoThread(home);
    t.is(damaged.status, 0, damaged.stderr);
    t.is(damaged.io, 'miss');
    const status = JSON.parse(readFileSync(path.join(damaged.cwd, 'build', '0', '0', 'status'), 'utf8')) as { complete: boolean; processes: number };
    t.true(status.complete);
    t.is(status.processes, 1);
    t.is((await runIoThread(home)).io, 'used', 'the damaged cache was replaced by a usable one');
  });
}

test('the record\'s actors run on the main thread for a short tree and in the io thread for a longer one', async (t) => {
  const home = scratchDir('uwrx-cc-');
  // the delay set for each case: a loaded machine can take longer than the default
  // (LATE_ACTORS_AFTER_MS) to end even the tree of `true`
  const short = await runIn(home, ['true'], 60_000);
  const long = await runIn(home, ['sleep', '0.3'], 0);
  for (const run of [short, long]) {
    t.is(run.status, 0, run.stderr);
    const status = JSON.parse(readFileSync(path.join(run.cwd, 'build', '0', '0', 'status'), 'utf8')) as { complete: boolean; processes: number };
    t.true(status.complete);
    t.is(status.processes, 1);
    t.true(readFileSync(path.join(run.cwd, 'build', '0', '0', 'perfetto')).length > 0);
    t.deepEqual(await afterRemovals(path.join(run.cwd, 'build', '.tmp')), [], 'the run directory is gone');
  }
  t.regex(short.stderr, /uwrx timing: .* late actors started \(main thread\)\n/);
  t.notRegex(short.stderr, /io thread code cache/, 'no worker thread');
  t.regex(long.stderr, /uwrx timing: .* late actors started\n/);
  t.regex(long.stderr, /uwrx timing: io thread code cache (used|miss)/);
});
