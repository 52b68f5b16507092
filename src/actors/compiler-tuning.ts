// V8's optimizing compiler (TurboFan) set for each phase of a run.
//
// While the command runs: tuned for the record's per-event code. In a run of many short
// processes, every per-event function of the merger and collector gets hot within a
// second, and compiling them on V8's background threads cost more CPU than running them
// (docs/benchmarks.md): with less inlining each compile costs about half, for no
// measurable loss in the optimized code (mostly Buffer and Map calls), and with a 4x
// interrupt budget only functions that stay hot are optimized.
//
// After the command: off. The work left (the store's layout, the rebuild index) lasts a
// few hundred milliseconds, and its loops got hot only then: TurboFan compiled them on
// the second core while they ran and finished after they did (libiberty's rebuild index
// made TurboFan compile its entry() for 350 ms), so each compile was CPU spent for
// nothing. Code optimized while the command ran stays optimized. A rebuild index of
// thousands of processes is long enough to pay for its compiles: it gets the defaults
// back (see LONG_REBUILD_INDEX in features/rebuild.ts).
//
// Every flag comes back to its default when the run is done ('default'), for a program
// that embeds uwrx and goes on. V8 rejects code cached under other flag values (Node's
// built-in modules carry such a cache, and so does the CLI's code cache), so the start of
// a run keeps the defaults too. The flags are process-wide: set from any thread, they
// cover all of them.
import { createRequire } from 'node:module';

// node:v8 is loaded on first use, not with this module: some 3 ms of CPU that a
// command's start does without (prepareCompilerTuning loads it while uwrx-init sets the
// sandbox up).
const require = createRequire(import.meta.url);
let v8: typeof import('node:v8') | undefined;
const setFlagsFromString = (flags: string): void => (v8 ??= require('node:v8') as typeof import('node:v8')).setFlagsFromString(flags);

export type CompilerPhase = 'command' | 'finish' | 'default';

/** The tuned values while the command runs, and Node 20's defaults (V8 11.3,
 * `node --v8-options`). */
const FLAGS = [
  { name: 'max-inlined-bytecode-size-cumulative', tuned: 230, default: 920 },
  { name: 'interrupt-budget', tuned: 270336, default: 67584 },
] as const;

/** The flags a user may have set, in which case uwrx sets none. */
const USER_FLAGS = [...FLAGS.map((f) => f.name), 'turbofan', 'opt', 'max-opt'];

/** Only on the V8 whose defaults are known, and never over values the user set. */
function applies(): boolean {
  if (!process.versions.v8.startsWith('11.3.')) return false;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return !USER_FLAGS.some((name) => given.includes(`-${name}`) || given.includes(`-${name.replaceAll('-', '_')}`));
}

export function tuneCompiler(phase: CompilerPhase): void {
  if (!applies()) return;
  for (const f of FLAGS) setFlagsFromString(`--${f.name}=${phase === 'command' ? f.tuned : f.default}`);
  setFlagsFromString(phase === 'finish' ? '--no-turbofan' : '--turbofan');
}

/** Loads what tuneCompiler needs ahead of its first call. */
export function prepareCompilerTuning(): void {
  if (applies()) v8 ??= require('node:v8') as typeof import('node:v8');
}
