// files.meta: one line per file operation of an attempt,
//   <path>\t<pid>\t<operation>\t<exec_path>
// path and exec_path escaped with escapeBytes (paths are bytes); pid is the logical pid.
import { escapeBytes, isPlainText, unescapeBytes } from './escape.js';

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
  return parseLines(text, unescapeBytes);
}

/** A files.meta line with its paths in their escaped form (escapeBytes). */
export interface EscapedFileMetaEntry {
  path: string;
  pid: number;
  operation: FileOperation;
  execPath: string;
}

/** parseFilesMeta with the paths escaped, as the record's readers name them: a path that
 * is plain text is its own escaped form, without the round trip through its bytes (the
 * rebuild index reads a configure's files.meta after the command). */
export function parseFilesMetaEscaped(text: string): EscapedFileMetaEntry[] {
  return parseLines(text, canonical);
}

/** Each line's fields, its two paths given by `path` (which throws on a bad escape). */
function parseLines<P>(text: string, path: (field: string) => P): { path: P; pid: number; operation: FileOperation; execPath: P }[] {
  return linesOf(text).map((line, i) => {
    const f = fieldsOf(line, i + 1);
    try {
      return { path: path(f.path), pid: f.pid, operation: f.operation, execPath: path(f.execPath) };
    } catch (err) {
      throw new FilesMetaError(`${f.where}: ${(err as Error).message}`);
    }
  });
}

const canonical = (field: string): string => (isPlainText(field) ? field : escapeBytes(unescapeBytes(field)));

function linesOf(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function fieldsOf(line: string, lineNumber: number): { where: string; path: string; pid: number; operation: FileOperation; execPath: string } {
  const fields = line.split('\t');
  const where = `files.meta line ${lineNumber}`;
  if (fields.length !== 4) throw new FilesMetaError(`${where}: expected 4 tab-separated fields, found ${fields.length}`);
  const [path, pid, operation, execPath] = fields as [string, string, string, string];
  if (!/^[1-9][0-9]*$/.test(pid)) throw new FilesMetaError(`${where}: pid "${pid}" is not a logical pid`);
  if (!(FILE_OPERATIONS as readonly string[]).includes(operation)) {
    throw new FilesMetaError(`${where}: unknown operation "${operation}"`);
  }
  if (!path.startsWith('/')) throw new FilesMetaError(`${where}: path "${path}" is not absolute`);
  return { where, path, pid: Number(pid), operation: operation as FileOperation, execPath };
}
