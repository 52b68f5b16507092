// uwrx-init's process, started by the addon's posix_spawn (src/native/addon/spawn.cc)
// rather than Node's spawn, which forks the whole Node process first: the part of a
// ChildProcess that launch.ts uses, with the same events and values.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { native } from '../native.js';

/** What the child gets as descriptor i: one of ours (the same number or another), or
 * /dev/null ('ignore'). */
export type HelperSlot = number | 'ignore';

interface SpawnAddon {
  spawnHelper(file: string, args: string[], slots: number[], cwd: string): { pid: number; pidfd: number };
  watchExit(pid: number, pidfd: number, callback: (code: number | null, signal: number | null) => void): object;
  unrefExit(watch: object): void;
}

const SIGNAL_NAMES = new Map(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

export class HelperProcess extends EventEmitter<{ exit: [code: number | null, signal: NodeJS.Signals | null]; error: [Error] }> {
  readonly pid: number;
  /** The exit status once it exited (null before, and when a signal ended it). */
  exitCode: number | null = null;
  private ended = false;
  private readonly watch: object;

  /** Starts `file` with `args`, the descriptors `slots` (0, 1, 2 ...), an empty
   * environment, in `cwd`. Throws what posix_spawn said. */
  constructor(file: string, args: string[], slots: HelperSlot[], cwd: string) {
    super();
    const addon = native() as unknown as SpawnAddon;
    const { pid, pidfd } = addon.spawnHelper(file, args, slots.map((s) => (s === 'ignore' ? -1 : s)), cwd);
    this.pid = pid;
    this.watch = addon.watchExit(pid, pidfd, (code, signal) => {
      this.ended = true;
      this.exitCode = code;
      this.emit('exit', code, signal === null ? null : (SIGNAL_NAMES.get(signal) ?? null));
    });
  }

  /** Sends `signal` unless the process has been reaped (its pid may be another's then). */
  kill(signal: NodeJS.Signals): boolean {
    if (this.ended) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** Its exit no longer keeps the event loop alive. */
  unref(): void {
    if (!this.ended) (native() as unknown as SpawnAddon).unrefExit(this.watch);
  }
}
