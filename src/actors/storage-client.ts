// The run's side of the storage actor (src/actors/storage.ts): its messages, its spec
// and a typed client. Loaded on the main thread; the actor's own code is not.
import { actorModule } from './modules.js';
import { IO_THREAD } from './actor.js';
import type { ActorSpec } from './supervisor.js';
import type { Peer } from './peer.js';
import type { FilesPlan } from '../protocol/init-messages.js';
import type { OverlayLayer } from '../sandbox/plan.js';
import { formatProcessTable, type ProcessRecord } from '../record/procs.js';
import { writeAttemptStatus, type AttemptStatus } from '../record/layout.js';

export interface StorageOptions {
  attemptDir: string;
  /** The run's versions directory (FilesPlan.versions): its index, read while the command
   * runs, says how many spare directories the layout will want (src/record/spare-dirs.ts). */
  versions?: string;
}

export const STORAGE_MESSAGES = {
  files: 'storage.files',
  processes: 'storage.processes',
  status: 'storage.status',
} as const;

export interface StoreFilesBody {
  overlays: OverlayLayer[];
  /** uwrx-init's file record; absent when the run kept none. */
  files?: FilesPlan;
}

export interface FilesStored {
  /** Regular files in files/ (the attempt's first versions). */
  filesWritten: number;
}

export function storageActorSpec(attemptDir: string, versions?: string): ActorSpec {
  // asked only once the tree has ended (it grows the spare directories meanwhile)
  return { name: 'storage', module: actorModule('storage'), options: { attemptDir, versions } satisfies StorageOptions, thread: IO_THREAD, startsLate: true };
}

/** Longest finishing the record may take (a large tree of uppers, a cross-filesystem copy). */
const STORE_TIMEOUT_MS = 10 * 60 * 1000;

/** The run's side of the storage actor. The status is written even when the actor is
 * gone (it failed, or never started): by the same function, on this thread. */
export class StorageClient {
  constructor(
    private readonly peer: () => Peer | undefined,
    private readonly attemptDir: string,
  ) {}

  storeFiles(body: StoreFilesBody): Promise<FilesStored> {
    return this.required().request<FilesStored>(STORAGE_MESSAGES.files, body, { timeoutMs: STORE_TIMEOUT_MS });
  }

  /** procs.tsv of `records`, formatted here: a message of one string. */
  async storeProcessTable(records: ProcessRecord[]): Promise<void> {
    await this.required().request(STORAGE_MESSAGES.processes, { text: formatProcessTable(records) }, { timeoutMs: STORE_TIMEOUT_MS });
  }

  async storeStatus(status: AttemptStatus): Promise<void> {
    const peer = this.peer();
    if (peer && !peer.isClosed) {
      try {
        await peer.request(STORAGE_MESSAGES.status, { status });
        return;
      } catch {
        // the actor failed meanwhile: the status must still be written
      }
    }
    await writeAttemptStatus(this.attemptDir, status);
  }

  private required(): Peer {
    const peer = this.peer();
    if (!peer) throw new Error('the storage actor is not running');
    return peer;
  }
}
