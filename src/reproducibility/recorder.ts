// The in-process recorder's place in the sandbox (src/native/include/uwrx_recorder.h):
// the library, where it appears inside, and the combined ld.so's preload list that
// names it.
import { fileURLToPath } from 'node:url';

/** The built recorder library (src/native/Makefile). */
export const RECORDER_LIBRARY = fileURLToPath(new URL('../../../src/native/out/uwrx-rec.so', import.meta.url));
/** Inside the sandbox: the preload list the combined ld.so reads (UWRX_PRELOAD_LIST) and
 * the library it names (UWRX_RECORDER_PATH). */
export const PRELOAD_LIST = '/dev/.uwrx-preload';
export const RECORDER_PATH = '/dev/.uwrx-rec.so';
/** Prepared execs (UWRX_EXEC_DIR): <traces>/EXEC_LINKS (src/record/traces-dir.ts) bound there. */
export const EXEC_DIR = '/dev/.uwrx-exec';

const GLIBC_PRELOAD_LIST = Buffer.from('/etc/ld.so.preload\0', 'latin1');

/** Points glibc ld.so's preload list path (in a copy of ld.so) at PRELOAD_LIST, in place.
 * The new path must not be longer than the old one; glibc names it once. */
export function redirectPreloadList(ldso: Buffer, to = PRELOAD_LIST): void {
  const at = ldso.indexOf(GLIBC_PRELOAD_LIST);
  if (at < 0 || ldso.indexOf(GLIBC_PRELOAD_LIST, at + 1) >= 0) throw new Error('ld.so: the preload list path /etc/ld.so.preload is not there exactly once');
  const bytes = Buffer.from(to, 'latin1');
  if (bytes.length > GLIBC_PRELOAD_LIST.length - 1) throw new Error(`ld.so: preload list path ${to} is longer than /etc/ld.so.preload`);
  ldso.fill(0, at, at + GLIBC_PRELOAD_LIST.length);
  bytes.copy(ldso, at);
}
