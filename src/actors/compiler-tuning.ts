// V8's optimizing compiler (TurboFan) tuned for the record's per-event code while a run's
// command runs. In a run of many short processes, every per-event function of the merger
// and collector gets hot within a second, and compiling them on V8's background threads
// cost more CPU than running them (docs/benchmarks.md): with less inlining each compile
// costs about half, for no measurable loss in the optimized code (mostly Buffer and Map
// calls), and with a 4x interrupt budget only functions that stay hot are optimized.
//
// Only while the command runs: V8 rejects code cached under other flag values (Node's
// built-in modules carry such a cache, and so does the CLI's code cache), so the start of
// a run and its finish keep the default values. The flags are process-wide: set from
// any thread, they cover all of them.
import { setFlagsFromString } from 'node:v8';

/** The tuned values and Node 20's defaults (V8 11.3, `node --v8-options`). */
const FLAGS = [
  { name: 'max-inlined-bytecode-size-cumulative', tuned: 230, default: 920 },
  { name: 'interrupt-budget', tuned: 270336, default: 67584 },
] as const;

/** Only on the V8 whose defaults are known, and never over values the user set. */
function applies(): boolean {
  if (!process.versions.v8.startsWith('11.3.')) return false;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return !FLAGS.some((f) => given.includes(`--${f.name}`) || given.includes(`--${f.name.replaceAll('-', '_')}`));
}

/** Tuned values on (the command runs) or the defaults back (before anything is cached). */
export function tuneCompiler(on: boolean): void {
  if (!applies()) return;
  for (const f of FLAGS) setFlagsFromString(`--${f.name}=${on ? f.tuned : f.default}`);
}
