// `npm run bundle` (after tsc): the bundles uwrx loads at start, from the compiled dist/.
//   dist/src/cli/boot/     the code cache loader and the worker boot (CommonJS)
//   dist/src/actors/bundle the actors' modules, split (ES modules)
//   dist/src/actors/io.cjs the io thread's bundle, and dist/src/cli/uwrx.cjs the CLI's:
//                          both wrapped as src/cli/code-cache.ts loads them, the wrapper
//                          taken from there so the two cannot disagree
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { IMPORT_META_URL, WRAPPER, WRAPPER_END } from '../dist/src/cli/code-cache.js';

for (const out of ['dist/src/actors/bundle', 'dist/src/actors/io.cjs', 'dist/src/cli/boot']) rmSync(out, { recursive: true, force: true });

const node = { bundle: true, platform: 'node', logLevel: 'warning' };
// a bundle that reads import.meta.url where nothing defines it is an error, not undefined
const strictMeta = { logOverride: { 'empty-import-meta': 'error' } };
const wrapped = (entry, outfile) => ({
  ...node,
  ...strictMeta,
  entryPoints: [entry],
  outfile,
  format: 'cjs',
  define: { UWRX_ACTOR_BUNDLE: '"bundle"', 'import.meta.url': IMPORT_META_URL },
  banner: { js: WRAPPER },
  footer: { js: WRAPPER_END },
});

await build({
  ...node,
  ...strictMeta,
  entryPoints: ['dist/src/cli/code-cache.js', 'dist/src/actors/worker-boot.js'],
  outdir: 'dist/src/cli/boot',
  format: 'cjs',
  entryNames: '[name]',
  outExtension: { '.js': '.cjs' },
});
await build({
  ...node,
  entryPoints: ['dist/src/actors/worker-entry.js', 'dist/src/actors/storage.js', 'dist/src/actors/collector.js', 'dist/src/actors/merger.js'],
  outdir: 'dist/src/actors/bundle',
  format: 'esm',
  splitting: true,
});
await build(wrapped('dist/src/actors/io-bundle.js', 'dist/src/actors/io.cjs'));
await build(wrapped('dist/src/cli/main.js', 'dist/src/cli/uwrx.cjs'));
