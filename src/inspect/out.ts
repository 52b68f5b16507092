// Output of the inspect commands: written with backpressure, so a large view is never
// buffered whole, and ended quietly when the reader goes away (`uwrx inspect ... | head`),
// as other Unix tools do.

/** Thrown by a write after the reader closed the pipe; the command then ends with 0. */
export class OutputClosed extends Error {
  override name = 'OutputClosed';
}

export class Out {
  private pending: Promise<void> = Promise.resolve();
  private waiting = false;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      this.closed = true;
      this.wake?.();
    });
  }

  write(chunk: string | Buffer): void {
    if (this.closed) throw new OutputClosed();
    // One 'drain' covers every write queued before it: waiting for one per full write
    // would wait for drains that never come (and Node exits with 13).
    if (!this.stream.write(chunk) && !this.waiting) {
      this.waiting = true;
      this.pending = new Promise((resolve) => {
        this.wake = () => {
          this.waiting = false;
          this.wake = undefined;
          resolve();
        };
        this.stream.once('drain', () => this.wake?.());
      });
    }
  }

  line(s: string): void {
    this.write(s + '\n');
  }

  /** Resolves when everything written has been taken by the stream (or the reader left). */
  done(): Promise<void> {
    return this.pending;
  }
}

/** Runs a view writing to `out`; a reader that went away ends it quietly with status 0. */
export async function writeView(stream: NodeJS.WritableStream, view: (out: Out) => number | Promise<number>): Promise<number> {
  const out = new Out(stream);
  try {
    const status = await view(out);
    await out.done();
    return status;
  } catch (err) {
    if (err instanceof OutputClosed) return 0;
    throw err;
  }
}
