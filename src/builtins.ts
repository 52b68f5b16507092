// Node's built-in modules that a command needs only sometimes, loaded when first used:
// importing them with everything else costs each command CPU at its start even when it
// starts no thread and no child (src/crypto.ts does the same for node:crypto).
import type * as ChildProcess from 'node:child_process';
import type * as WorkerThreads from 'node:worker_threads';

/** node:worker_threads, loaded on the first call. */
export const workerThreads = (): typeof WorkerThreads => process.getBuiltinModule('node:worker_threads');

/** node:child_process, loaded on the first call. */
export const childProcess = (): typeof ChildProcess => process.getBuiltinModule('node:child_process');
