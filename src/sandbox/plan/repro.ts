// Reproducibility's part of the sandbox (docs/reproducibility.md): deterministic
// /dev/urandom and /dev/random, the domain name, and the combined ld.so (the shim, then
// the real dynamic linker) bound over the real one.
import path from 'node:path';
import { EXEC_DIR, PRELOAD_LIST, RECORDER_LIBRARY, RECORDER_PATH } from '../../reproducibility/recorder.js';
import { EXEC_LINKS } from '../../record/traces-dir.js';
import type { SandboxPlan } from '../plan.js';
import { inRoot, MS_BIND, type BuildContext } from './steps.js';

/** PT_INTERP of x86_64 glibc programs. */
const DEFAULT_INTERPRETER = '/lib64/ld-linux-x86-64.so.2';

export function buildRepro(ctx: BuildContext): SandboxPlan['ldso'] {
  const { input, host, steps } = ctx;
  if (!input.repro) return undefined;
  const dev = inRoot(ctx, '/dev');
  // Each open of these reads its own deterministic stream; mounted over the host's nodes
  // bound before, which stay in place if FUSE is unavailable.
  steps.push({ op: 'devrandom', path: path.join(dev, 'urandom'), flags: 0, bestEffort: true });
  steps.push({ op: 'devrandom', path: path.join(dev, 'random'), flags: 1, bestEffort: true });
  // "(none)", the kernel's own default: programs treat a set NIS domain specially.
  steps.push({ op: 'domainname', name: '(none)' });
  if (input.repro.shim === false) return undefined;
  // The combined ld.so over the real file the interpreter path leads to: a bind on the
  // symlink's target covers every name of it, and mount(2) would resolve an absolute
  // symlink against the host's root here, before pivot_root.
  const real = host.realpath(input.repro.interpreter ?? DEFAULT_INTERPRETER);
  if (!real || !host.stat(real)?.isFile()) return undefined;
  const ldso: NonNullable<SandboxPlan['ldso']> = { real, combined: path.join(input.runDir, 'ld.so') };
  steps.bindReadOnly(ldso.combined, inRoot(ctx, real));
  if (input.repro.recorder) {
    // The combined ld.so reads uwrx's preload list from the private /dev where it reads
    // /etc/ld.so.preload: nothing in the environment, nothing in the overlays. No
    // newline: ld.so ends a list's last name by writing over the character after it,
    // a copy of the file's page in every process; a list ending in the name itself it
    // copies to its stack instead.
    ldso.preload = { path: path.join(input.runDir, 'preload'), content: RECORDER_PATH };
    for (const [source, target] of [[ldso.preload.path, PRELOAD_LIST], [RECORDER_LIBRARY, RECORDER_PATH]] as const) {
      steps.push({ op: 'file', path: inRoot(ctx, target), mode: 0o644 });
      steps.bindReadOnly(source, inRoot(ctx, target));
    }
    if (input.tracesDir && process.env.UWRX_PREPARED_EXECS !== '0') {
      // prepared execs: each new image's shim opens its buffer there, by its pid, instead
      // of asking uwrx-init for it (src/native/include/uwrx_recorder.h); uwrx-init made
      // the directory when it opened the traces. Without it, the shim asks (also with
      // UWRX_PREPARED_EXECS=0, which the tests compare with).
      const links = inRoot(ctx, EXEC_DIR);
      steps.mkdir(links, 0o755);
      steps.mount(path.join(input.tracesDir, EXEC_LINKS), links, null, MS_BIND, null, true);
    }
  }
  return ldso;
}
