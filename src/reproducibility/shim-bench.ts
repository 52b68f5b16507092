// Cost of the ld.so shim per exec, measured without the sandbox: in a private mount
// namespace (never on the real root) the shim is bind-mounted over the dynamic linker
// and test/native/exec_loop.c spawns a program N times with and without the bind,
// alternating rounds to spread machine noise evenly. Two forms: 'combined' binds the
// combined ld.so (ldso-combine.ts); 'private-path' binds the bare shim, which then maps
// the real ld.so from a copy named by $UWRX_LDSO.
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeCombinedLdso } from './ldso-combine.js';

const run = promisify(execFile);

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const DEFAULT_SHIM = join(repoRoot, 'src/native/out/uwrx-shim');
const EXEC_LOOP_SOURCE = join(repoRoot, 'test/native/exec_loop.c');
/** The PT_INTERP of x86_64 glibc programs. */
export const LDSO_PATH = '/lib64/ld-linux-x86-64.so.2';

export type ShimForm = 'combined' | 'private-path';

export interface ShimBenchOptions {
  /** Execs per variant (default 2000). */
  runs?: number;
  /** Rounds the runs are split into, alternating the variants (default 4). */
  rounds?: number;
  program?: string;
  shim?: string;
  /** Default 'combined'. */
  form?: ShimForm;
}

export interface ShimBenchResult {
  form: ShimForm;
  runs: number;
  program: string;
  /** Mean wall time of one spawn+exec+wait, in microseconds. */
  withoutShimUs: number;
  withShimUs: number;
  /** withShimUs / withoutShimUs. */
  ratio: number;
  /** Mean CPU time (user+sys) of one exec'd process, in microseconds: steadier than wall
   * time on a shared machine. */
  withoutShimCpuUs: number;
  withShimCpuUs: number;
  cpuRatio: number;
}

// $1 file to bind over the dynamic linker, $2 real ld.so copy (private-path form) or
// empty, $3 runs per round, $4 rounds, $5 exec_loop, $6 program.
const SCRIPT = `
set -e
[ -n "$2" ] && export UWRX_LDSO="$2"
r=0
while [ $r -lt "$4" ]; do
  echo without $("$5" "$3" "$6")
  mount --bind "$1" ${LDSO_PATH}
  echo with $("$5" "$3" "$6")
  umount -l ${LDSO_PATH}
  r=$((r+1))
done
`;

/** Runs the measurement; needs cc, and root or unprivileged user namespaces (unshare -Urm). */
export async function measureShimExecCost(options: ShimBenchOptions = {}): Promise<ShimBenchResult> {
  const rounds = options.rounds ?? 4;
  const runs = Math.ceil((options.runs ?? 2000) / rounds) * rounds;
  const program = options.program ?? '/bin/true';
  const shim = options.shim ?? DEFAULT_SHIM;
  const form = options.form ?? 'combined';
  const dir = await mkdtemp(join(tmpdir(), 'uwrx-shim-bench-'));
  try {
    // Static, so the loop itself never runs through the shim.
    const execLoop = join(dir, 'exec_loop');
    await run('cc', ['-O2', '-static', '-o', execLoop, EXEC_LOOP_SOURCE]);
    let bound = shim;
    let realLdso = '';
    if (form === 'combined') {
      bound = join(dir, 'ld-combined.so');
      await writeCombinedLdso(LDSO_PATH, bound, shim);
    } else {
      realLdso = join(dir, 'ld.so');
      await copyFile(LDSO_PATH, realLdso);
    }
    const unshare = process.getuid?.() === 0 ? ['-m'] : ['-Urm'];
    const { stdout } = await run(
      'unshare',
      [...unshare, '--propagation', 'private', 'sh', '-c', SCRIPT, 'shim-bench', bound, realLdso, String(runs / rounds), String(rounds), execLoop, program],
      { maxBuffer: 1 << 20 },
    );
    const total = { without: [0, 0], with: [0, 0] };
    for (const line of stdout.trim().split('\n')) {
      const [variant, wallNs, cpuUs] = line.split(' ') as ['without' | 'with', string, string];
      total[variant][0]! += Number(wallNs) / 1000;
      total[variant][1]! += Number(cpuUs);
    }
    const [withoutShimUs, withoutShimCpuUs] = total.without.map((v) => v / runs) as [number, number];
    const [withShimUs, withShimCpuUs] = total.with.map((v) => v / runs) as [number, number];
    return {
      form, runs, program,
      withoutShimUs, withShimUs, ratio: withShimUs / withoutShimUs,
      withoutShimCpuUs, withShimCpuUs, cpuRatio: withShimCpuUs / withoutShimCpuUs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
