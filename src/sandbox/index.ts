// The sandbox: runs the command tree and reports its processes. This interface is what
// the run orchestration (src/run.ts) relies on.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface SandboxOptions {
  /** Command and arguments; argv[0] is looked up in PATH. */
  argv: string[];
  /** Working directory of the command (kept inside the sandbox). */
  cwd: string;
  /** Environment of the command. */
  env: NodeJS.ProcessEnv;
  /** build/<step>/<attempt>: receives files/ and the process table when the run ends. */
  attemptDir: string;
  /** Private working directory of this run (live upper, overlay work dirs, trace buffers),
   * on the same filesystem as attemptDir so finishing costs renames. */
  runDir: string;
  /** Absolute paths that must be invisible inside (the build directory, runDir). */
  hide: string[];
  /** Network on (served by the network actors) or off (loopback only). */
  net: boolean;
  /** Called for each process event as it happens. */
  onEvent?: (event: SandboxEvent) => void;
}

export type SandboxEvent =
  | { type: 'spawn'; pid: number; ppid: number; time: number }
  | { type: 'exec'; pid: number; argv: string[]; cwd: string; time: number }
  | { type: 'exit'; pid: number; exitCode: number | null; signal: number | null; time: number };

export interface SandboxResult {
  /** What uwrx exits with: the command's exit code, or 128+N when killed by signal N. */
  status: number;
  exitCode: number | null;
  signal: number | null;
  /** True when the run was interrupted (SIGINT/SIGTERM to uwrx) or the sandbox failed. */
  incomplete: boolean;
  processes: number;
  filesWritten: number;
}

export interface Sandbox {
  done: Promise<SandboxResult>;
  /** SIGTERM to the whole tree, SIGKILL after graceMs. */
  terminate(graceMs?: number): void;
}

/** Supervised child without isolation: the fallback until uwrx-init runs the tree. */
export function startSandbox(options: SandboxOptions): Sandbox {
  let interrupted = false;
  const child = spawn(options.argv[0]!, options.argv.slice(1), {
    cwd: options.cwd,
    env: options.env,
    stdio: 'inherit',
  });
  const done = new Promise<SandboxResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signalName) => {
      const signal = signalName ? constants.signals[signalName] : null;
      resolve({
        status: code ?? 128 + (signal ?? 0),
        exitCode: code,
        signal,
        incomplete: interrupted,
        processes: 1,
        filesWritten: 0,
      });
    });
  });
  return {
    done,
    terminate(graceMs = 3000) {
      interrupted = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
    },
  };
}

/** Null when this machine can run the sandbox, else one line saying what is missing. */
export function preflight(): string | null {
  return null;
}
