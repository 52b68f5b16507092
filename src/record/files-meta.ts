// files.meta: one line per file operation of an attempt,
//   <path>\t<pid>\t<operation>\t<exec_path>
// path and exec_path escaped with escapeBytes (paths are bytes); pid is the logical pid.
import { escapeBytes, unescapeBytes } from './escape.js';

export const FILE_OPERATIONS = [
  'create',
  'write',
  'delete',
  'rename_to',
  'rename_from',
  'mkdir',
  'rmdir',
  'chmod',
  'chown',
] as const;

export type FileOperation = (typeof FILE_OPERATIONS)[number];

export interface FileMetaEntry {
  path: Buffer;
  pid: number;
  operation: FileOperation;
  execPath: Buffer;
}

export class FilesMetaError extends Error {}

export function formatFilesMetaLine(entry: FileMetaEntry): string {
  return `${escapeBytes(entry.path)}\t${entry.pid}\t${entry.operation}\t${escapeBytes(entry.execPath)}\n`;
}

/** Parses a whole files.meta; throws FilesMetaError naming the first bad line. */
export function parseFilesMeta(text: string): FileMetaEntry[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line, i) => parseLine(line, i + 1));
}

function parseLine(line: string, lineNumber: number): FileMetaEntry {
  const fields = line.split('\t');
  const where = `files.meta line ${lineNumber}`;
  if (fields.length !== 4) throw new FilesMetaError(`${where}: expected 4 tab-separated fields, found ${fields.length}`);
  const [path, pid, operation, execPath] = fields as [string, string, string, string];
  if (!/^[1-9][0-9]*$/.test(pid)) throw new FilesMetaError(`${where}: pid "${pid}" is not a logical pid`);
  if (!(FILE_OPERATIONS as readonly string[]).includes(operation)) {
    throw new FilesMetaError(`${where}: unknown operation "${operation}"`);
  }
  if (!path.startsWith('/')) throw new FilesMetaError(`${where}: path "${path}" is not absolute`);
  try {
    return { path: unescapeBytes(path), pid: Number(pid), operation: operation as FileOperation, execPath: unescapeBytes(execPath) };
  } catch (err) {
    throw new FilesMetaError(`${where}: ${(err as Error).message}`);
  }
}
