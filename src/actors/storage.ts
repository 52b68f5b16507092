// Storage: the one writer of what finishes an attempt. When the tree has ended, the run
// hands it the sandbox's uppers and file plan, the process table and the status, and it
// writes them into the attempt in a worker thread, off the main thread:
//
//   storage.files      each overlay's upper into files/ (renames; cp -a where a rename
//                      cannot cross filesystems), files.meta, the preserved versions as
//                      files-<pid>/, files.skipped; answers { filesWritten }
//   storage.processes  procs.tsv, formatted by the run (one string to copy, where the
//                      records' byte arrays cost a structured clone each)
//   storage.status     `status`, written atomically and last
//
// From its start to storage.files it makes spare directories for the layout
// (src/record/spare-dirs.ts), as many as the versions uwrx-init keeps call for.
//
// The attempt's up-front files (cmd, options, seed.txt ...) are written by the features
// that own them before the run; everything written after it goes through here.
import { promises as fs, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineActor } from './actor.js';
import { collectFileRecord, collectUppers, countRegularFiles, settleUpperDirs } from '../record/finish.js';
import { writeAttemptStatus, type AttemptStatus } from '../record/layout.js';
import { PROCESS_TABLE_FILE } from '../sandbox/process-table.js';
import { timing } from '../timing.js';
import { SpareFiller, SparePool } from '../record/spare-dirs.js';
import { STORAGE_MESSAGES, type FilesStored, type StorageOptions, type StoreFilesBody } from './storage-client.js';

export default defineActor<StorageOptions>('storage', (ctx) => {
  const { attemptDir, versions } = ctx.options;
  const spares = SparePool.open(attemptDir);
  const filler = spares && versions ? new SpareFiller(spares, path.join(versions, 'index')) : undefined;
  filler?.start();
  return {
    stop: () => filler?.stop(),
    handlers: {
      [STORAGE_MESSAGES.files]: (body: StoreFilesBody) => {
        filler?.stop();
        return storeFiles(attemptDir, body, spares);
      },
      // one write, on this thread (the record's small files skip the thread pool: record/layout.ts)
      [STORAGE_MESSAGES.processes]: (body: { text: string }) => writeFileSync(path.join(attemptDir, PROCESS_TABLE_FILE), body.text),
      [STORAGE_MESSAGES.status]: (body: { status: AttemptStatus }) => writeAttemptStatus(attemptDir, body.status),
    },
  };
});

async function storeFiles(attemptDir: string, body: StoreFilesBody, spares: SparePool | undefined): Promise<FilesStored> {
  await settleUpperDirs(body.overlays);
  const filesDir = await collectUppers(body.overlays, attemptDir);
  if (body.files) await collectFileRecord(body.files, attemptDir, spares);
  spares?.done();
  if (spares) timing(`spare directories: ${spares.found} found, ${spares.made} made (${spares.makeMs.toFixed(0)} ms), ${spares.taken} taken, ${spares.mkdirs} made by the layout`);
  // what `uwrx inspect files` lists: each path files.meta names, once
  return { filesWritten: body.files ? await countPathsInMeta(attemptDir) : await countRegularFiles(filesDir) };
}

/** Distinct paths in the attempt's files.meta. */
async function countPathsInMeta(attemptDir: string): Promise<number> {
  let text: string;
  try {
    text = await fs.readFile(path.join(attemptDir, 'files.meta'), 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  // the path is the first field, escaped (no raw tab or newline inside)
  return new Set(text.split('\n').filter(Boolean).map((line) => line.slice(0, line.indexOf('\t')))).size;
}
