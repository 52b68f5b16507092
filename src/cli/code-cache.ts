// Loads the CLI bundle with V8's code cache: the bytecode V8 compiled for the bundle in an
// earlier run, kept in the user cache ($XDG_CACHE_HOME/uwrx, default ~/.cache/uwrx). Without it, every
// run parses the 350 KB bundle and compiles each function it calls; with it, V8
// deserializes what the last run compiled. Node 20 has no module compile cache, so the
// bundle is a CommonJS script (npm run bundle) run through vm.Script, whose cachedData
// is that cache.
//
// The cache is an optimisation only: a missing, corrupt, stale or unwritable cache
// costs a normal compile, never a failure. A cache file holds one bundle's data
// (`<dir>/code-<name>-<hash of the bundle's path>.v8`):
//   magic (8 bytes) | key (32) | sha256 of the data (32) | the data (V8's, opaque)
// The key is a sha256 of Node's version and arch, the wrapper and the bundle file's
// identity (path, size, modification and change times, to the nanosecond): any rewrite
// of the bundle gives another key, without hashing its 480 KB of source on every
// command. Device and inode are left out: an overlay (a uwrx run inside another, a
// container) shows the same file with its own, and a cache that misses there would be
// written there.
// V8 checks its own version and flags, not the payload's integrity in release builds:
// the checksum makes a damaged file a miss rather than a crash. The digests are the
// caller's: the addon's SHA-256 for uwrx's own caches (userCodeCache), since node:crypto
// alone would cost more to load than the cache saves of some commands.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { keepInCache, pruneCache, userCacheDir } from '../user-cache.js';

const MAGIC = Buffer.from('UWRXV8C1');
const CACHE_PREFIX = 'code-';
/** Code caches kept per bundle name, the most recently written first. */
const KEPT_CACHE_FILES = 4;
const HEADER_BYTES = MAGIC.length + 32 + 32;
/** The variable the bundle reads in place of import.meta.url (esbuild --define). */
export const IMPORT_META_URL = '__uwrx_import_meta_url';
/** What the bundle's source is wrapped in (on its first line, so that its line numbers
 * stay the file's). uwrx's own bundles carry it in the file (scripts/bundle.mjs: esbuild's
 * banner and footer): the source is then compiled as read, where wrapping it at load
 * made V8 copy the whole text once more (some 150 fresh pages for the CLI's bundle, 2-3
 * ms of a run's start here). */
export const WRAPPER = `(function (exports, require, module, __filename, __dirname, ${IMPORT_META_URL}) {`;
/** Its end, on the bundle's last line (scripts/bundle.mjs makes both). */
export const WRAPPER_END = '})';

/** What happened to the code cache in this load. */
export type CodeCacheOutcome =
  /** V8 used the cached code. */
  | 'used'
  /** No usable cache (none yet, another bundle or Node version, damaged, or rejected by
   * V8): compiled from source; a fresh cache is written when the process exits. */
  | 'miss'
  /** No cache directory to use (disabled, or no home directory). */
  | 'off';

export interface LoadedBundle {
  exports: Record<string, unknown>;
  cache: CodeCacheOutcome;
  /** The cache file, when there is a cache directory. */
  cacheFile?: string;
  /** Writes a fresh cache after a miss (nothing otherwise). Best called late, at exit:
   * the cache then holds every function compiled so far, not just the top level.
   * Never throws; a cache that cannot be written is left alone. */
  saveCache(): void;
}


/** Where code caches live and how they are checked. */
export interface CodeCacheOptions {
  dir: string;
  /** SHA-256 (of a string's UTF-8). */
  sha256: (data: string | Buffer) => Buffer;
}

/** The code caches of bin/uwrx and of the io thread's boot: in the user cache
 * (src/user-cache.ts), checked with the addon's SHA-256 at `addonFile` (node:crypto would
 * cost more to load than checking the cache does); undefined (no cache) with
 * UWRX_NO_CODE_CACHE set or without the addon. */
export function userCodeCache(addonFile: string): CodeCacheOptions | undefined {
  if (process.env.UWRX_NO_CODE_CACHE || !existsSync(addonFile)) return undefined;
  const { digest } = createRequire(addonFile)(addonFile) as { digest: (algorithm: 'sha256', parts: Array<string | Buffer>) => Buffer };
  return { dir: userCacheDir(), sha256: (data) => digest('sha256', [data]) };
}

/** Runs the CommonJS bundle `file` (as Node would a CommonJS module, with
 * IMPORT_META_URL set to the file's URL) and returns its exports. `cache`: where code
 * caches live; undefined: no cache. A cache that could not be used is replaced by
 * saveCache(); a failure to write it is ignored (a read-only directory leaves every run
 * compiling from source). */
export function loadBundle(file: string, name: string, cache: CodeCacheOptions | undefined): LoadedBundle {
  const { source, identity } = readIdentified(file);
  const wrapped = source.startsWith(WRAPPER) ? source : `${WRAPPER}${source}\n${WRAPPER_END}`;
  const cacheFile = cache === undefined ? undefined : path.join(cache.dir, `${CACHE_PREFIX}${name}-${cache.sha256(file).subarray(0, 6).toString('hex')}.v8`);
  // a bundle rewritten while it was read has no identity: no cache for it
  const key = cache === undefined || identity === undefined ? undefined : cache.sha256(`${process.version}\0${process.arch}\0${WRAPPER}\0${identity}`);
  const cachedData = cacheFile !== undefined && key !== undefined ? readCache(cacheFile, key, cache!.sha256) : undefined;
  const script = new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const used = cachedData !== undefined && script.cachedDataRejected === false;
  const module = { exports: {} as Record<string, unknown> };
  const fn = script.runInThisContext() as (...args: unknown[]) => void;
  fn.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file), pathToFileURL(file).href);
  const saveCache = () => {
    if (cacheFile !== undefined && key !== undefined && !used) writeCache(cacheFile, key, script, cache!.sha256);
  };
  return { exports: module.exports, cache: cacheFile === undefined ? 'off' : used ? 'used' : 'miss', ...(cacheFile ? { cacheFile } : {}), saveCache };
}

/** The file's text and its identity (path, size, modification and change times),
 * undefined when it changed while it was read. */
function readIdentified(file: string): { source: string; identity: string | undefined } {
  const fd = openSync(file, 'r');
  try {
    const identity = () => {
      const st = fstatSync(fd, { bigint: true });
      return { size: Number(st.size), key: [file, st.size, st.mtimeNs, st.ctimeNs].join('\0') };
    };
    const before = identity();
    // read at its known size (readFileSync of a descriptor reads 8 KB at a time); one
    // byte more, so that the read that finds the end needs no larger buffer
    let bytes = Buffer.allocUnsafe(before.size + 1);
    let got = 0;
    for (;;) {
      if (got === bytes.length) bytes = Buffer.concat([bytes, Buffer.allocUnsafe(bytes.length)]);
      const n = readSync(fd, bytes, got, bytes.length - got, got);
      if (n <= 0) break;
      got += n;
    }
    return { source: bytes.toString('utf8', 0, got), identity: identity().key === before.key ? before.key : undefined };
  } finally {
    closeSync(fd);
  }
}

/** The cached data in `file` if it is whole and made for `key`; undefined otherwise. */
function readCache(file: string, key: Buffer, sha256: CodeCacheOptions['sha256']): Buffer | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  if (bytes.length <= HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  if (!bytes.subarray(MAGIC.length, MAGIC.length + 32).equals(key)) return undefined;
  const data = bytes.subarray(HEADER_BYTES);
  return sha256(data).equals(bytes.subarray(MAGIC.length + 32, HEADER_BYTES)) ? data : undefined;
}

/** Writes the cache whole or not at all (keepInCache); errors are ignored. Each uwrx
 * checkout has a file of its own (the bundle's path names it): those of checkouts not
 * used for a while go. */
function writeCache(file: string, key: Buffer, script: vm.Script, sha256: CodeCacheOptions['sha256']): void {
  const data = script.createCachedData();
  if (!keepInCache(file, Buffer.concat([MAGIC, key, sha256(data), data]))) return;
  const name = path.basename(file);
  pruneCache(name.slice(0, name.lastIndexOf('-') + 1), KEPT_CACHE_FILES, path.dirname(file));
}
