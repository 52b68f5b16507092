// Compiles bench/native/*.c with cc into the cache (not part of the project's build).
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BenchContext } from './context.js';
import { cleanEnv, describeFailure, runMeasured } from './proc.js';

async function mtime(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Path of the compiled bench program `name`, rebuilt when its source is newer. */
export async function benchProgram(ctx: BenchContext, name: string): Promise<string> {
  const source = path.join(ctx.repo, 'bench', 'native', `${name}.c`);
  const binary = path.join(ctx.cache, 'bin', name);
  const built = await mtime(binary);
  const src = await mtime(source);
  if (src === undefined) throw new Error(`${source} is missing`);
  if (built !== undefined && built >= src) return binary;
  await mkdir(path.dirname(binary), { recursive: true });
  const o = await runMeasured({
    argv: ['cc', '-O2', '-Wall', '-Wextra', '-o', binary, source],
    cwd: ctx.cache,
    env: cleanEnv(),
    timeoutMs: 120_000,
  });
  if (o.exitCode !== 0) throw new Error(`cc ${source}: ${describeFailure(o)}`);
  return binary;
}
