// Runs the real `bin/uwrx` as a user would, in a scratch directory.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const uwrxBin = path.join(repoRoot, 'bin', 'uwrx');

export type { CommandResult as UwrxResult } from '../../src/scenarios/index.js';

export function scratchDir(prefix = 'uwrx-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Runs the real `bin/uwrx` (the same runner the bundled scenarios use). */
export { runUwrx as uwrx } from '../../src/scenarios/index.js';
