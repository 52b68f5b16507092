// Shared by the trace benchmark and the trace tests: builds the C trace driver and runs
// the collector and merger over a run directory the way a run does.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLOCK_BOOTTIME, CLOCK_REALTIME, packageRoot, traceAddon } from '../src/native.js';
import { Collector, type CollectorOptions } from '../src/actors/collector.js';
import { Merger, type MergeStats, type MergerOptions } from '../src/actors/merger.js';

let driver: string | undefined;
const made: string[] = [];

/** Removes every directory this module created (call from test.after.always). */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  driver = undefined;
}

/** Compiles bench/native/trace-driver.c with the real writer (once per test process). */
export function traceDriver(): string {
  if (driver) return driver;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'uwrx-driver-'));
  made.push(dir);
  const out = path.join(dir, 'trace-driver');
  const native = path.join(packageRoot, 'src', 'native');
  execFileSync('cc', [
    '-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-pthread',
    `-I${path.join(native, 'include')}`, `-I${path.join(native, 'common')}`,
    '-o', out,
    path.join(packageRoot, 'bench', 'native', 'trace-driver.c'),
    path.join(native, 'common', 'tracebuf.c'),
  ]);
  driver = out;
  return out;
}

export interface RunDirs {
  runDir: string;
  traces: string;
  attemptDir: string;
  expect: string;
}

export function makeRunDirs(prefix = 'uwrx-trace-'): RunDirs {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(root);
  const dirs = {
    runDir: path.join(root, 'run'),
    traces: path.join(root, 'run', 'traces'),
    attemptDir: path.join(root, 'attempt'),
    expect: path.join(root, 'expect'),
  };
  for (const d of [dirs.traces, dirs.attemptDir, dirs.expect]) mkdirSync(d, { recursive: true });
  return dirs;
}

export function pipeline(dirs: RunDirs, options: Partial<CollectorOptions> = {}, merger: Partial<MergerOptions> = {}): { collector: Collector; merger: Merger } {
  const addon = traceAddon();
  const m = new Merger({
    output: path.join(dirs.attemptDir, 'perfetto'),
    clocks: { boottime: addon.clockNs(CLOCK_BOOTTIME), realtime: addon.clockNs(CLOCK_REALTIME) },
    ...merger,
  });
  const collector = new Collector({ runDir: dirs.runDir, sink: m, ...options });
  return { collector, merger: m };
}

/** Drains everything and writes the perfetto file. */
export function finishPipeline(p: { collector: Collector; merger: Merger }): MergeStats {
  p.collector.stop();
  return p.merger.finish();
}

/** Allocated bytes of a file, as du counts them. */
export function allocatedBytes(file: string): number {
  try {
    return statSync(file).blocks * 512;
  } catch {
    return 0;
  }
}
