// Where an actor's module is. From the CLI bundle (npm run bundle) the record's actors and
// the worker entry come from their own bundle, dist/src/actors/bundle/ (one module per
// actor, shared code in common chunks): a worker thread then loads a handful of modules
// instead of some thirty. Everything else (tests, the modules run directly) uses the
// compiled modules. Named from '../actors/' so that the URL is the same from
// dist/src/actors/ and from dist/src/cli/.

/** Set by the bundler (esbuild --define) in the CLI bundle only. */
declare const UWRX_ACTOR_BUNDLE: string | undefined;

const bundled = typeof UWRX_ACTOR_BUNDLE === 'string';

/** The URL of dist/src/actors/<name>.js, or of its bundled form from the CLI bundle. */
export function actorModule(name: 'worker-entry' | 'storage' | 'collector' | 'merger'): URL {
  return bundled ? new URL(`../actors/bundle/${name}.js`, import.meta.url) : new URL(`../actors/${name}.js`, import.meta.url);
}
