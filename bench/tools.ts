// Makes sure the tools and sources the benchmarks use are installed; bench/install.sh
// installs whatever is missing (Debian packages).
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from './context.js';
import { cleanEnv, describeFailure, runMeasured } from './proc.js';
import { findTarball } from './sources.js';

function onPath(program: string): boolean {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    try {
      accessSync(path.join(dir || '.', program), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

export async function missingTools(): Promise<string[]> {
  const missing = ['strace', 'bwrap', 'cc', 'make', 'tar', 'xz', 'find', 'ccache', 'redis-server', 'redis-benchmark'].filter((p) => !onPath(p));
  if ((await findTarball()) === undefined) missing.push('binutils source tarball');
  return missing;
}

/** Runs bench/install.sh when something is missing; what stays missing shows up later
 * as unavailable modes or failed workloads, not as an abort. */
export async function ensureTools(ctx: BenchContext): Promise<void> {
  const missing = await missingTools();
  if (missing.length === 0) return;
  ctx.log(`missing: ${missing.join(', ')}; running bench/install.sh`);
  const o = await runMeasured({
    argv: ['sh', path.join(ctx.repo, 'bench', 'install.sh')],
    cwd: ctx.repo,
    env: cleanEnv(),
    timeoutMs: 900_000,
  });
  if (o.exitCode !== 0) ctx.log(`bench/install.sh failed (${describeFailure(o)})`);
}
