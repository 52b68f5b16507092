// Which process made a connection. uwrx-init reports each connect (logical pid and the
// socket's own port) on its way through the main thread, while the kernel queues the
// connection or datagram on the actor's socket directly, so the actor may see it first:
// a lookup waits a moment for the report.

/** How long a connection waits for the report of which process made it. */
export const OWNER_REPORT_WAIT_MS = 1000;

/** The process that owns a connection when no report came: the sandbox's init. */
const UNKNOWN_OWNER = 1;

export class ConnectionOwners {
  private readonly owners = new Map<string, number>();
  private readonly waiting = new Map<string, Array<(pid: number) => void>>();

  constructor(private readonly waitMs = OWNER_REPORT_WAIT_MS) {}

  /** uwrx-init's report: connection `key` belongs to logical pid `pid`. */
  reported(key: string, pid: number): void {
    this.owners.set(key, pid);
    for (const resolve of this.waiting.get(key) ?? []) resolve(pid);
    this.waiting.delete(key);
  }

  /** The owner of `key`, waiting for its report at most `waitMs`. */
  ownerOf(key: string): Promise<number> {
    const known = this.owners.get(key);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const list = this.waiting.get(key) ?? [];
      const timer = setTimeout(() => {
        const rest = (this.waiting.get(key) ?? []).filter((r) => r !== done);
        if (rest.length) this.waiting.set(key, rest);
        else this.waiting.delete(key);
        resolve(UNKNOWN_OWNER);
      }, this.waitMs);
      const done = (pid: number) => {
        clearTimeout(timer);
        resolve(pid);
      };
      list.push(done);
      this.waiting.set(key, list);
    });
  }
}
