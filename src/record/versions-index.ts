// The versions uwrx-init preserved during the run (src/native/init/files.c, preserve):
// one flat directory of files named by a counter, and `index`, one line per version:
// "<name>\t<writer pid>\t<path>\0" (the path as raw bytes, as files.meta names it before
// escaping; name "-": the path was absent, there is no file). A writer's version of a
// path kept twice is the later line.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isErrno } from '../fs.js';

/** Where uwrx-init keeps the versions of a run (FilesPlan.versions). */
export const versionsDirOf = (runDir: string): string => path.join(runDir, 'versions');

export type PreservedVersion = { kind: 'absent' } | { kind: 'file'; file: string };

export interface VersionsIndex {
  /** The version `pid` left at `pathKey` (the path's bytes as latin1), if one was kept. */
  get(pid: number, pathKey: string): PreservedVersion | undefined;
  readonly size: number;
}

export async function readVersionsIndex(versionsDir: string): Promise<VersionsIndex> {
  let data: Buffer;
  try {
    data = await fs.readFile(path.join(versionsDir, 'index'));
  } catch (err) {
    // no version was kept (or no file store): an empty index
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) data = Buffer.alloc(0);
    else throw err;
  }
  return parseVersionsIndex(data, versionsDir);
}

/** One line of the index by its byte offsets: name at [start, tab1), pid at (tab1, tab2),
 * path at (tab2, end); tab2 is -1 in a line without two tabs before its end. */
export interface VersionLine {
  start: number;
  tab1: number;
  tab2: number;
  end: number;
}

/** Calls `line` for each whole line of `data`; returns where the first line without its
 * end starts (data.length when there is none). */
export function forEachVersionLine(data: Buffer, line: (l: VersionLine) => void): number {
  let start = 0;
  for (let end = data.indexOf(0, start); end >= 0; end = data.indexOf(0, start)) {
    const tab1 = data.indexOf(0x09, start);
    const tab2 = tab1 < 0 || tab1 >= end ? -1 : data.indexOf(0x09, tab1 + 1);
    line({ start, tab1, tab2: tab2 < end ? tab2 : -1, end });
    start = end + 1;
  }
  return start;
}

export function parseVersionsIndex(data: Buffer, versionsDir: string): VersionsIndex {
  const byKey = new Map<string, PreservedVersion>();
  const rest = forEachVersionLine(data, ({ start, tab1, tab2, end }) => {
    if (tab2 < 0) throw new Error(`${versionsDir}/index: malformed line at byte ${start}`);
    const name = data.toString('latin1', start, tab1);
    const pid = data.toString('latin1', tab1 + 1, tab2);
    if (!/^(?:\d+|-)$/.test(name) || !/^\d+$/.test(pid)) throw new Error(`${versionsDir}/index: malformed line at byte ${start}`);
    const version: PreservedVersion = name === '-' ? { kind: 'absent' } : { kind: 'file', file: path.join(versionsDir, name) };
    byKey.set(`${pid}\t${data.toString('latin1', tab2 + 1, end)}`, version);
  });
  if (rest < data.length) throw new Error(`${versionsDir}/index: a line without its end (at byte ${rest})`);
  return {
    get: (pid, pathKey) => byKey.get(`${pid}\t${pathKey}`),
    get size() {
      return byKey.size;
    },
  };
}
