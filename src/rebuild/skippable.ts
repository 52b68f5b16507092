// Which programs partial rebuild may skip: matched by executable name (docs/record.md,
// "Partial rebuild"). uwrx-init asks about an exec when the basename of its argv[0] or of
// its executable is on the list, as it is or without a Debian-style "<arch>-linux-<abi>-"
// prefix and "-<version>" suffix (x86_64-linux-gnu-gcc-12 is gcc). A name ending in "*"
// matches every name starting with what precedes it (ld.* matches ld.bfd and ld.gold).
import { UsageError } from '../errors.js';

export const DEFAULT_SKIPPABLE: readonly string[] = [
  'cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'cc1', 'cc1plus', 'gfortran', 'f951', 'collect2', 'as', 'ld', 'ld.*', 'ar',
  'ranlib',
];

/** The step option `rebuild`: names added to and removed from the default list. */
export interface SkippableOptions {
  skippable: string[];
  notSkippable: string[];
}

/** A name of the list: a file name, or one ending in a single "*". */
export function checkSkippableName(name: string, option: string): void {
  if (name === '' || name.includes('/') || name.includes('\0') || name.slice(0, -1).includes('*') || name === '*') {
    throw new UsageError(`uwrx run: ${option} expects a program name (like gcc or ld.*), got "${name}"`);
  }
}

/** The effective list: the defaults plus the added names, minus the removed ones. */
export function skippableNames(options: SkippableOptions): string[] {
  const removed = new Set(options.notSkippable);
  return [...new Set([...DEFAULT_SKIPPABLE, ...options.skippable])].filter((n) => !removed.has(n));
}

function normalise(name: string): string {
  const triplet = name.lastIndexOf('-linux-');
  if (triplet >= 0) {
    const rest = name.indexOf('-', triplet + 7);
    if (rest >= 0) name = name.slice(rest + 1);
  }
  return name.replace(/-[0-9][0-9.]*$/, '');
}

function listed(name: string, names: readonly string[]): boolean {
  return names.some((n) => (n.endsWith('*') ? name.startsWith(n.slice(0, -1)) : name === n));
}

/** The rule uwrx-init applies (src/native/init/rebuild.c), for one path. */
export function isSkippablePath(file: string, names: readonly string[]): boolean {
  const base = file.slice(file.lastIndexOf('/') + 1);
  return listed(base, names) || listed(normalise(base), names);
}
