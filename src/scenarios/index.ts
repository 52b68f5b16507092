// Scenario tests bundled with uwrx: real commands under the real CLI, checked against
// the record. `uwrx test` runs them on the user's host; the ava suite runs the same ones.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../native.js';

export interface CommandResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ScenarioContext {
  /** Scratch directory the scenario runs in (the record goes to dir/build). */
  dir: string;
  /** Runs `uwrx <args>` with cwd = dir, capturing its output. */
  uwrx(args: string[]): Promise<CommandResult>;
  /** Reads a file of the record, relative to dir. */
  read(relative: string): string;
  exists(relative: string): boolean;
}

export interface Scenario {
  name: string;
  description: string;
  /** Throws an Error whose message says what was wrong. */
  run(ctx: ScenarioContext): Promise<void>;
}

export class ScenarioFailure extends Error {}

export function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new ScenarioFailure(message);
}

export function expectEqual<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected) {
    throw new ScenarioFailure(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Runs `bin/uwrx <args>` as a user would, capturing its output. Shared with the tests. */
export function runUwrx(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'uwrx'), ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    // a command that exits without reading its input closes the pipe first: not an error
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(options.input ?? '');
  });
}

export function createContext(dir: string): ScenarioContext {
  return {
    dir,
    uwrx: (args) => runUwrx(args, { cwd: dir }),
    read: (relative) => readFileSync(path.join(dir, relative), 'utf8'),
    exists: (relative) => existsSync(path.join(dir, relative)),
  };
}

export const scenarios: Scenario[] = [
  {
    name: 'exit-status',
    description: 'the command\'s output passes through and its exit status becomes uwrx\'s',
    async run(ctx) {
      const r = await ctx.uwrx(['run', '--', 'sh', '-c', 'echo hi; exit 3']);
      expectEqual(r.stdout, 'hi\n', 'stdout');
      expectEqual(r.status, 3, 'exit status');
      expect(ctx.exists('build/0/0/seed.txt'), 'build/0/0/seed.txt was not written');
      expectEqual(ctx.read('build/0/cmd'), 'sh\n-c\necho hi; exit 3\n', 'build/0/cmd');
    },
  },
  {
    name: 'steps-and-replay',
    description: 'new steps, new attempts of a step, and a replay of an attempt',
    async run(ctx) {
      await ctx.uwrx(['run', '-q', '--', 'sh', '-c', 'echo one']);
      await ctx.uwrx(['run', '-q', '--', 'true']);
      expect(ctx.exists('build/10/0/seed.txt'), 'second run did not create build/10/0');
      await ctx.uwrx(['run', '-q', '--step', '0', '--', 'true']);
      expect(ctx.exists('build/0/1/seed.txt'), '--step 0 did not create build/0/1');
      const replay = await ctx.uwrx(['run', '-q', '--replay', 'build/0/0']);
      expectEqual(replay.stdout, 'one\n', 'the replay reran the replayed command');
      expect(ctx.exists('build/0/2/replay'), 'build/0/2/replay link missing');
      expectEqual(ctx.read('build/0/2/seed.txt'), ctx.read('build/0/0/seed.txt'), 'replayed seed');
    },
  },
  {
    name: 'isolation',
    description: 'writes and deletions land in the record; the real filesystem is untouched',
    async run(ctx) {
      const probe = `/etc/uwrx-probe-${process.pid}-${Date.now()}`;
      const victim = path.join(ctx.dir, 'victim');
      writeFileSync(victim, 'keep me\n');
      const r = await ctx.uwrx(['run', '-q', '--', 'sh', '-c', `echo x > ${probe} && rm ${victim} && mkdir -p /tmp/uwrx-q && echo y > /tmp/uwrx-q/z`]);
      expectEqual(r.status, 0, `exit status (stderr: ${r.stderr.trim()})`);
      expect(!existsSync(probe), `${probe} appeared on the real filesystem`);
      expect(existsSync(victim), `${victim} was deleted from the real filesystem`);
      expectEqual(ctx.read(`build/0/0/files${probe}`), 'x\n', 'recorded probe');
      const st = lstatSync(path.join(ctx.dir, `build/0/0/files${victim}`));
      expect(st.isCharacterDevice() && st.rdev === 0, 'the deletion is recorded as a whiteout');
      expectEqual(ctx.read('build/0/0/files/tmp/uwrx-q/z'), 'y\n', 'recorded /tmp/uwrx-q/z');
    },
  },
  {
    name: 'orphans',
    description: 'the run waits for double-forked processes and records what they write',
    async run(ctx) {
      const r = await ctx.uwrx(['run', '-q', '--', 'sh', '-c', '(sleep 1; echo late > /tmp/uwrx-late) & exit 0']);
      expectEqual(r.status, 0, 'exit status');
      expectEqual(ctx.read('build/0/0/files/tmp/uwrx-late'), 'late\n', 'file written by the orphan');
    },
  },
  {
    name: 'c-build',
    description: 'a parallel C build with make and cc succeeds and its objects land in the record',
    async run(ctx) {
      const src = path.join(ctx.dir, 'proj');
      mkdirSync(src);
      writeFileSync(path.join(src, 'a.c'), 'int a(void) { return 1; }\n');
      writeFileSync(path.join(src, 'b.c'), 'int b(void) { return 2; }\n');
      writeFileSync(path.join(src, 'main.c'), 'int a(void); int b(void);\nint main(void) { return a() + b() - 3; }\n');
      writeFileSync(path.join(src, 'Makefile'), 'prog: main.o a.o b.o\n\tcc -o $@ $^\n%.o: %.c\n\tcc -c -o $@ $<\n');
      const r = await ctx.uwrx(['run', '-q', '--', 'sh', '-c', `cd ${src} && make -j2 && ./prog`]);
      expectEqual(r.status, 0, `exit status (stderr: ${r.stderr.trim()})`);
      for (const f of ['main.o', 'a.o', 'b.o', 'prog']) {
        expect(ctx.exists(`build/0/0/files${src}/${f}`), `${f} missing from the record`);
        expect(!existsSync(path.join(src, f)), `${f} was written to the real tree`);
      }
    },
  },
];

export interface ScenarioOutcome {
  name: string;
  ok: boolean;
  message?: string;
  durationMs: number;
  dir: string;
}

export async function runScenario(scenario: Scenario, keep = false): Promise<ScenarioOutcome> {
  const dir = mkdtempSync(path.join(tmpdir(), `uwrx-scenario-${scenario.name}-`));
  const started = Date.now();
  try {
    await scenario.run(createContext(dir));
    return { name: scenario.name, ok: true, durationMs: Date.now() - started, dir };
  } catch (err) {
    return { name: scenario.name, ok: false, message: (err as Error).message, durationMs: Date.now() - started, dir };
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
