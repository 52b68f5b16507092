// `uwrx ui`: a full-screen terminal view of an attempt. Left: the process tree. Right: the
// selected process's details (info, files, output). Keys: view.ts (HELP).
//
// Raw escape codes rather than a terminal library: the screen is one pure function of the
// state (view.ts), redrawn whole on each key, which needs nothing but cursor positioning,
// reverse video and the alternate screen. The terminal is put back in every way the
// program can end: a normal quit, Ctrl-C, SIGTERM/SIGHUP/SIGINT from outside, an error.
import { writeSync } from 'node:fs';
import path from 'node:path';
import { emitKeypressEvents } from 'node:readline';
import { RecordError, openRecord, traceFramingProblem } from '../record/reader.js';
import { existsSync } from 'node:fs';
import { loadTrace, modelFor, type UiModel } from './model.js';
import { UiState, applyKey, render, type Key } from './view.js';

const ESC = '\x1b[';
const ENTER = `${ESC}?1049h${ESC}?25l`;
const LEAVE = `${ESC}?25h${ESC}?1049l`;

/** Opens the record for the UI: a damaged record is one clear error, never an empty view. */
export function loadUiModel(attemptDir: string): UiModel {
  const record = openRecord(attemptDir);
  const trace = path.join(record.dir, 'perfetto');
  const hasTrace = existsSync(trace);
  if (!hasTrace && !existsSync(path.join(record.dir, 'procs.tsv'))) {
    throw new RecordError(`${record.dir}: no perfetto and no procs.tsv (the run did not finish; uwrx check --repair rebuilds what it can)`);
  }
  if (hasTrace) {
    const problem = traceFramingProblem(trace);
    if (problem) throw new RecordError(`${trace}: damaged: ${problem} (uwrx check lists the problems)`);
  }
  return modelFor(record);
}

export async function runUi(model: UiModel, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<void> {
  const state = new UiState(model);
  const size = (): { width: number; height: number } => ({ width: output.columns || 80, height: output.rows || 24 });
  const draw = (): void => {
    const { width, height } = size();
    output.write(`${ESC}H${render(state, width, height).join(`${ESC}K\r\n`)}${ESC}K${ESC}J`);
  };

  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    // Synchronous: this also runs from 'exit', where queued writes are lost.
    try {
      writeSync((output as unknown as { fd: number }).fd ?? 1, LEAVE);
    } catch {
      output.write(LEAVE);
    }
    try {
      input.setRawMode(false);
    } catch {
      // not a terminal any more (hung up)
    }
    input.pause();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    restore();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[signal]!);
  };
  const onExit = (): void => restore();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', onExit);

  emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();
  output.write(ENTER);
  let onKey: ((s: string, key: Key) => void) | undefined;
  let onResize: (() => void) | undefined;
  try {
    draw();
    await new Promise<void>((resolve, reject) => {
      onResize = () => draw();
      output.on('resize', onResize);
      onKey = (_s, key) => {
        try {
          const page = Math.max(1, size().height - 3);
          if (!applyKey(state, key ?? {}, page)) resolve();
          else draw();
        } catch (err) {
          reject(err);
        }
      };
      input.on('keypress', onKey);
      // The tree shows at once from the process table; the trace (output, reads, network)
      // is decoded right after, and a damaged one is shown, not hidden.
      loadTrace(model).then(() => !restored && draw(), reject);
    });
  } finally {
    if (onKey) input.off('keypress', onKey);
    if (onResize) output.off('resize', onResize);
    restore();
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', onExit);
  }
}
