// `uwrx` entry: parse, dispatch, and turn every failure into one line and an exit status.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isUserError } from '../errors.js';
import { native, packageRoot } from '../native.js';
import { dryRun, run } from '../run.js';
import { parseArgs, type RunArgs } from './args.js';
import { commandHelp, mainHelp } from './help.js';
import { formatSummary } from './summary.js';
import { progressFeature } from './progress.js';
import { UsageError } from '../errors.js';
// inspect, ui and test are loaded when used: `uwrx run` starts faster without them
import { timing } from '../timing.js';

/** Exit status for usage and environment errors. */
export const EXIT_USAGE = 2;
/** Exit status for a failure inside uwrx itself (a bug). */
export const EXIT_INTERNAL = 70;
/** How long a stopped run's tree has after a first signal (SIGTERM, then SIGKILL), and
 * after a terminal's Ctrl-C before it is stopped so. */
const STOP_GRACE_MS = 3000;

/** What bin/uwrx learnt about its caller before the command line is looked at. */
export interface Caller {
  /** The descriptors above 2 the caller left open for uwrx's child (the `uwrx` command,
   * src/native/launch/main.c, lists them before Node starts); a run passes them to its
   * command. Empty when unknown (Node started directly, `node bin/uwrx`). */
  inheritedFds?: number[];
}

/** The signal the command of `uwrx run` died of, which uwrx dies of too (endBySignal). */
let commandSignal: number | undefined;

export async function main(args: string[], caller: Caller = {}): Promise<number> {
  const command = parseArgs(args);
  switch (command.command) {
    case 'help': {
      const text = command.topic ? commandHelp[command.topic] : mainHelp;
      process.stdout.write(text ?? mainHelp);
      return 0;
    }
    case 'version': {
      const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
      process.stdout.write(`uwrx ${pkg.version}\n`);
      return 0;
    }
    case 'run':
      return runCommand(command, caller.inheritedFds ?? []);
    case 'test':
      return testCommand(command.names, command.list, command.keep);
    case 'inspect':
      if (command.kind === 'rebuild') {
        (await import('../inspect/rebuild.js')).inspectRebuild(path.resolve(command.attempt), command.format, process.stdout);
        return 0;
      }
      if (command.kind === 'net') {
        (await import('../inspect/net.js')).inspectNet(path.resolve(command.attempt), command.format, process.stdout);
        return 0;
      }
      return (await import('../inspect/index.js')).inspect(
        command.kind,
        path.resolve(command.attempt),
        {
          format: command.format,
          pid: command.pid,
          who: command.who,
          byPid: command.byPid,
          tree: command.tree,
          since: command.since,
          until: command.until,
          pathPrefix: command.path,
          reads: command.reads,
        },
        process.stdout,
      );
    case 'check': {
      const { check } = await import('../inspect/index.js');
      if (!command.repair) return check(path.resolve(command.attempt), process.stdout);
      const { repair } = await import('../inspect/repair.js');
      return repair(path.resolve(command.attempt), { tmp: command.tmp }, process.stdout);
    }
    case 'ui': {
      const { runUi, loadUiModel } = await import('../ui/app.js');
      // The record first: a damaged one is an error whether or not there is a terminal.
      const model = loadUiModel(path.resolve(command.attempt));
      if (!process.stdin.isTTY || !process.stdout.isTTY) {
        throw new UsageError('uwrx ui: needs a terminal (use uwrx inspect in scripts)');
      }
      await runUi(model, process.stdin, process.stdout);
      return 0;
    }
  }
}

/** A user error of `uwrx run` says so ("uwrx run: ..."). */
function prefixRunError(err: unknown): never {
  if (isUserError(err) && !err.message.startsWith('uwrx')) err.message = `uwrx run: ${err.message}`;
  throw err;
}

async function runCommand(args: RunArgs, inheritedFds: number[]): Promise<number> {
  const options = {
    argv: args.argv,
    ...(inheritedFds.length ? { passFds: inheritedFds } : {}),
    build: args.build,
    step: args.step,
    parents: args.parents,
    noParents: args.noParents,
    replay: args.replay,
    net: args.net,
    dnsMap: args.dnsMap,
    upstreamCa: args.upstreamCa,
    ...(args.allowPush ? { allowPush: true } : {}),
    tmp: args.tmp,
    time: args.time,
    linger: args.linger,
    ...(args.aslr ? { aslr: true } : {}),
    fastPath: args.fastPath,
    ...(args.skippable ? { skippable: args.skippable } : {}),
    ...(args.notSkippable ? { notSkippable: args.notSkippable } : {}),
  };
  if (args.dryRun) {
    process.stdout.write((await dryRun(options).catch(prefixRunError)) + '\n');
    return 0;
  }
  // On a terminal, progress in its title; never with --quiet or when stderr is not one.
  const progress = !args.quiet && process.stderr.isTTY ? progressFeature(process.stderr) : undefined;
  const endProgress = (): void => progress?.stop();
  if (progress) process.once('exit', endProgress);
  const handle = run({ ...options, ...(progress ? { features: [progress.feature] } : {}) });
  // warnings alone: a listener of every event would have the run build each process's
  handle.on('warning', (message) => process.stderr.write(`uwrx run: warning: ${message}\n`));
  // First signal: orderly termination of the tree (grace period, then SIGKILL).
  // A second one: no more grace.
  let signals = 0;
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    stoppedBy ??= signal;
    // a terminal's Ctrl-C went to the command tree as well: it reacts as natively first
    if (signals === 1 && signal === 'SIGINT' && native().inTerminalForeground()) handle.interruptedWithTree(STOP_GRACE_MS, signal);
    else handle.terminate(signals === 1 ? STOP_GRACE_MS : 0, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    const result = await handle.done.catch(prefixRunError);
    if (!args.quiet) {
      for (const p of result.network?.problems ?? []) process.stderr.write(`uwrx: network: ${p}\n`);
      process.stderr.write(formatSummary(result, process.cwd()) + '\n');
    }
    // stopped by a signal, uwrx ends by it (a script's shell then stops too, as after
    // Ctrl-C natively); otherwise as the command ended
    commandSignal = stoppedBy ? os.constants.signals[stoppedBy] : result.signal ?? undefined;
    return result.status;
  } finally {
    endProgress();
    process.off('exit', endProgress);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

/** Runs a command line and sets the exit status. Returns the signal to end by (after
 * stdout and stderr are written) when the command of `uwrx run` died of one: a shell, make
 * or a test runner waiting for uwrx then sees that death, as they would the command's. */
export async function cli(args: string[], caller: Caller = {}): Promise<number | undefined> {
  // `uwrx ... | head`: the reader went away; stop quietly as other Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  let status: number;
  try {
    status = await main(args, caller);
  } catch (err) {
    if (isUserError(err)) {
      const message = err.message.startsWith('uwrx') ? err.message : `uwrx: ${err.message}`;
      process.stderr.write(message + '\n');
      status = EXIT_USAGE;
    } else {
      const e = err instanceof Error ? err : new Error(String(err));
      process.stderr.write(`uwrx: internal error: ${e.message}\n`);
      if (process.env.UWRX_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
      else process.stderr.write('uwrx: (set UWRX_DEBUG=1 for details)\n');
      status = EXIT_INTERNAL;
    }
  }
  process.exitCode = status;
  timing('command finished');
  return commandSignal;
}

/** Dies of `signo` as the command did (no core dump of uwrx's own); returns only when
 * that signal does not end a process, and then the exit status stands. */
export function endBySignal(signo: number): void {
  native().endBySignal(signo);
}

async function testCommand(names: string[], list: boolean, keep: boolean): Promise<number> {
  const { runScenario, scenarios } = await import('../scenarios/index.js');
  if (list) {
    const width = Math.max(...scenarios.map((s) => s.name.length));
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(width)}  ${s.description}\n`);
    return 0;
  }
  const chosen = names.includes('all') ? scenarios : names.map((name) => {
    const s = scenarios.find((x) => x.name === name);
    if (!s) throw new UsageError(`uwrx test: no scenario "${name}" (uwrx test --list shows them)`);
    return s;
  });
  let failed = 0;
  for (const s of chosen) {
    const outcome = await runScenario(s, keep);
    const time = `${(outcome.durationMs / 1000).toFixed(1)} s`;
    if (outcome.ok) process.stdout.write(`ok      ${s.name} (${time})${keep ? ` in ${outcome.dir}` : ''}\n`);
    else {
      failed++;
      process.stdout.write(`FAILED  ${s.name} (${time}): ${outcome.message}${keep ? ` in ${outcome.dir}` : ''}\n`);
    }
  }
  process.stdout.write(`${chosen.length - failed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}
