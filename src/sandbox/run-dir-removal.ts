// The removal of a finished run's directory, without waiting for it. What is left of the
// run directory once the record is written (the overlays' work directories, the new
// root, the emptied uppers) is a few hundred directories whose removal mostly waits on
// the kernel: 0.1-0.2 s after a C build, which uwrx waited for wherever the record's own
// last work took less (after a short command it came last: 4-30 ms of wall). It is
// renamed aside instead, in one call, and handed to uwrx-remove
// (src/native/remove/main.c), which goes on after uwrx exited.
//
// A directory renamed aside is no run's any more (`uwrx check --repair` looks for
// run-<step>-<attempt>-*): a removal that did not finish (uwrx-remove killed, the machine
// stopped) leaves it for the next run in the same temporary directory, which hands it to
// its own uwrx-remove with its run directory. Two removals of one tree may overlap:
// each takes what is still there.
import { readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { removeTree } from '../fs.js';
import { helperPath } from '../native.js';
import { HelperProcess } from './helper-process.js';

/** What a finished run's directory is renamed to (in the same directory) before its
 * removal: `.removing-run-<step>-<attempt>-XXXXXX`. */
export const REMOVING_PREFIX = '.removing-';

/** Whether `name` is one made by that renaming (and nothing else: --tmp may be a
 * directory others use). */
export const isRemovingName = (name: string): boolean => /^\.removing-run-.+-\d+-[A-Za-z0-9]{6}$/.test(name);

/** Starts the removal of `runDir`, and of what earlier runs left renamed aside beside
 * it, and returns without waiting for it. Only when uwrx-remove cannot be started is the
 * removal done here, and waited for. */
export async function removeRunDir(runDir: string): Promise<void> {
  const tmpRoot = path.dirname(runDir);
  const aside = path.join(tmpRoot, REMOVING_PREFIX + path.basename(runDir));
  let paths: string[];
  try {
    renameSync(runDir, aside);
    paths = [aside, ...leftovers(tmpRoot, aside)];
  } catch {
    // not renamed (gone, or the temporary directory not writable): removed where it is
    paths = [runDir];
  }
  try {
    // /dev/null as its stdio: nothing of it reaches the run's output
    new HelperProcess(helperPath('uwrx-remove'), paths, ['ignore', 'ignore', 'ignore'], '/').unref();
  } catch {
    await Promise.all(paths.map((p) => removeTree(p)));
  }
}

/** What earlier runs left renamed aside in `tmpRoot`, besides `aside`. */
function leftovers(tmpRoot: string, aside: string): string[] {
  try {
    return readdirSync(tmpRoot)
      .filter(isRemovingName)
      .map((name) => path.join(tmpRoot, name))
      .filter((p) => p !== aside);
  } catch {
    return [];
  }
}
