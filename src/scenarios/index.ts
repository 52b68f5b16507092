// Scenario tests bundled with uwrx: real commands under the real CLI, checked against
// the record. `uwrx test` runs them on the user's host; the ava suite runs the same ones.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../native.js';

export interface CommandResult {
  status: number | null;
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

function runUwrx(dir: string, args: string[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(packageRoot, 'bin', 'uwrx'), ...args], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export function createContext(dir: string): ScenarioContext {
  return {
    dir,
    uwrx: (args) => runUwrx(dir, args),
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
