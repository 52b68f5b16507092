// Loads the record's actors' CommonJS bundle (io-bundle.ts) with V8's code cache, kept in
// the user cache as the CLI's is (src/cli/code-cache.ts: invalidated the same way; a
// missing, stale or damaged one only costs a compile). Used by the thread that hosts
// them, a worker (worker-boot.ts) or the main thread (main-host.ts).
import { loadBundle, userCacheDir } from '../cli/code-cache.js';
import type { HostOptions, Hosting } from './worker-host.js';

export type IoHost = (options: Omit<HostOptions, 'builtIn'>) => Promise<Hosting>;

/** The bundle's host function, and what to run once its actors stopped: after a cache
 * miss, the cache is written then, so that it holds every function the run compiled.
 * `where` names the hosting thread in the timing line. */
export function loadIoActors(bundle: string, where: string): { host: IoHost; allStopped?: () => void } {
  const loaded = loadBundle(bundle, 'io', process.env.UWRX_NO_CODE_CACHE ? undefined : userCacheDir());
  if (process.env.UWRX_DEBUG_TIMING && process.env.UWRX_DEBUG_TIMING !== '0') {
    process.stderr.write(`uwrx timing: io actors (${where}) code cache ${loaded.cache}${loaded.cacheFile ? ` (${loaded.cacheFile})` : ''}\n`);
  }
  return { host: loaded.exports.host as IoHost, ...(loaded.cache === 'miss' ? { allStopped: loaded.saveCache } : {}) };
}
