// Node's built-in modules that a command needs only sometimes, loaded when first used:
// importing them with everything else costs each command CPU at its start even when it
// starts no thread and no child (src/crypto.ts does the same for node:crypto).
import type * as ChildProcess from 'node:child_process';
import type * as FsPromises from 'node:fs/promises';
import type * as WorkerThreads from 'node:worker_threads';

/** node:worker_threads, loaded on the first call. */
export const workerThreads = (): typeof WorkerThreads => process.getBuiltinModule('node:worker_threads');

/** node:child_process, loaded on the first call. */
export const childProcess = (): typeof ChildProcess => process.getBuiltinModule('node:child_process');

/** node:fs's promises (with readline behind them: some 2-4 ms of CPU), loaded on the
 * first call or by `promises` of node:fs: a run's start makes its files with synchronous
 * calls, and loads these while uwrx-init sets the sandbox up (src/run.ts). */
export const fsPromises = (): typeof FsPromises => process.getBuiltinModule('node:fs/promises');
