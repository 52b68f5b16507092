// Real C sources for the build workloads: subtrees of the binutils release that Debian's
// binutils-source package ships as a tarball, extracted once into the cache.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchContext } from './context.js';
import { cleanEnv, describeFailure, runMeasured } from './proc.js';

const tarballDir = '/usr/src/binutils';

/** Only what libiberty's and zlib's configure and Makefiles reach. */
const members = [
  'libiberty', 'include', 'zlib', 'config',
  'config.guess', 'config.sub', 'install-sh', 'missing', 'mkinstalldirs',
  'ltmain.sh', 'compile', 'depcomp', 'ar-lib', 'test-driver',
];

export async function findTarball(): Promise<string | undefined> {
  if (!existsSync(tarballDir)) return undefined;
  const names = (await readdir(tarballDir)).filter((n) => /^binutils-[\d.]+\.tar\.xz$/.test(n)).sort();
  const last = names.at(-1);
  return last === undefined ? undefined : path.join(tarballDir, last);
}

/** Top directory of the extracted release (e.g. <cache>/src/binutils-2.40). */
export async function binutilsSource(ctx: BenchContext): Promise<string> {
  const tarball = await findTarball();
  if (tarball === undefined) throw new Error(`no binutils-*.tar.xz in ${tarballDir} (package binutils-source)`);
  const top = path.basename(tarball, '.tar.xz');
  const dest = path.join(ctx.cache, 'src');
  const root = path.join(dest, top);
  const marker = path.join(root, '.extracted');
  if (existsSync(marker)) return root;
  ctx.log(`extracting ${members.join(', ')} from ${tarball}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  const o = await runMeasured({
    argv: ['tar', '-xJf', tarball, '-C', dest, ...members.map((m) => `${top}/${m}`)],
    cwd: dest,
    env: cleanEnv(),
    timeoutMs: 300_000,
  });
  if (o.exitCode !== 0) throw new Error(`tar -xJf ${tarball}: ${describeFailure(o)}`);
  await writeFile(marker, '');
  return root;
}

/** Runs a setup step (outside any timing) and throws with its last output line on failure. */
export async function setupStep(ctx: BenchContext, argv: string[], cwd: string, what: string): Promise<void> {
  const o = await runMeasured({ argv, cwd, env: cleanEnv(), timeoutMs: 1_800_000 });
  if (o.exitCode !== 0) throw new Error(`${what}: ${describeFailure(o)}`);
}
