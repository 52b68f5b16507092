// Where an actor's module is. From the CLI bundle (npm run bundle) the record's actors and
// the worker entry come from their own bundle, dist/src/actors/bundle/ (one module per
// actor, shared code in common chunks): a worker thread then loads a handful of modules
// instead of some thirty. The record's actors are also bundled as CommonJS with the
// worker body (dist/src/actors/io.cjs, io-bundle.ts), which their thread loads through
// V8's code cache. Everything else (tests, the modules run directly) uses the compiled
// modules. Named from '../actors/' so that the URL is the same from dist/src/actors/ and
// from dist/src/cli/.
import { fileURLToPath } from 'node:url';
import { addonFile } from '../native.js';

/** Set by the bundler (esbuild --define) in the CLI bundle only. */
declare const UWRX_ACTOR_BUNDLE: string | undefined;

const bundled = typeof UWRX_ACTOR_BUNDLE === 'string';

/** The URL of dist/src/actors/<name>.js, or of its bundled form from the CLI bundle. */
export function actorModule(name: 'worker-entry' | 'storage' | 'collector' | 'merger'): URL {
  return bundled ? new URL(`../actors/bundle/${name}.js`, import.meta.url) : new URL(`../actors/${name}.js`, import.meta.url);
}

const IO_ACTORS = ['storage', 'collector', 'merger'] as const;

/** What a worker thread hosting actors of these module URLs starts with: its entry, and
 * what its workerData needs besides the actors (worker-boot.ts). From the CLI bundle, a
 * thread hosting one of the record's actors boots from their CommonJS bundle. */
export function workerEntry(modules: string[]): { url: URL; data: Record<string, string> } {
  if (bundled && modules.some((m) => IO_ACTORS.some((name) => actorModule(name).href === m))) {
    return { url: new URL('../cli/boot/worker-boot.cjs', import.meta.url), data: { bundle: fileURLToPath(new URL('../actors/io.cjs', import.meta.url)), addon: addonFile() } };
  }
  return { url: actorModule('worker-entry'), data: {} };
}
