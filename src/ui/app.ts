// `uwrx ui`: a full-screen terminal view of an attempt. Left: the process tree. Right: the
// selected process's command, outcome, and either its output or its files.
// Keys: up/down (k/j), page up/down, home/end, tab (output <-> files), q to quit.
import { emitKeypressEvents } from 'node:readline';
import { fit, outcome, outputLines, treeRows, type TreeRow, type UiModel } from './model.js';

export type Pane = 'output' | 'files';

export interface UiState {
  selected: number;
  scroll: number;
  detailScroll: number;
  pane: Pane;
}

const ESC = '\x1b[';
const invert = (s: string): string => `${ESC}7m${s}${ESC}0m`;
const bold = (s: string): string => `${ESC}1m${s}${ESC}0m`;

/** The screen for a state, as `height` lines of exactly `width` columns (no escapes
 * counted). Pure, so it can be tested without a terminal. */
export function render(model: UiModel, rows: TreeRow[], state: UiState, width: number, height: number): string[] {
  const leftWidth = Math.max(20, Math.min(60, Math.floor(width * 0.4)));
  const rightWidth = Math.max(0, width - leftWidth - 1);
  const bodyHeight = Math.max(1, height - 3);
  const lines: string[] = [];
  lines.push(bold(fit(model.title, width)));
  lines.push(fit(model.summary, width));
  const left: string[] = [];
  for (let i = state.scroll; i < Math.min(rows.length, state.scroll + bodyHeight); i++) {
    const { process: p, depth } = rows[i]!;
    const mark = p.signal !== null || (p.exitCode !== null && p.exitCode !== 0) ? '!' : ' ';
    const text = fit(`${mark}${'  '.repeat(depth)}${p.pid} ${p.argv.join(' ') || p.exe || '?'}`, leftWidth);
    left.push(i === state.selected ? invert(text) : text);
  }
  const right = detailLines(rows[state.selected], state, rightWidth, bodyHeight);
  for (let i = 0; i < bodyHeight; i++) {
    lines.push(`${left[i] ?? ' '.repeat(leftWidth)}│${right[i] ?? ' '.repeat(rightWidth)}`);
  }
  lines.push(invert(fit(' ↑↓ select  PgUp/PgDn scroll  tab output/files  q quit', width)));
  return lines;
}

function detailLines(row: TreeRow | undefined, state: UiState, width: number, height: number): string[] {
  if (!row) return [fit('no processes recorded', width)];
  const p = row.process;
  const head = [
    fit(`pid ${p.pid}, parent ${p.ppid}, ${outcome(p)}${p.durationMs !== null ? `, ${(p.durationMs / 1000).toFixed(3)} s` : ''}`, width),
    fit(`argv: ${p.argv.join(' ')}`, width),
    fit(`cwd:  ${p.cwd}`, width),
    fit(state.pane === 'output' ? `[output: ${p.output.length} bytes]  files` : `output  [files: ${p.files.length}]`, width),
  ];
  const body =
    state.pane === 'output'
      ? outputLines(p.output)
      : p.files.map((f) => `${f.operation.padEnd(12)}${f.path}`);
  const visible = body.slice(state.detailScroll, state.detailScroll + Math.max(0, height - head.length));
  return [...head, ...visible.map((l) => fit(l, width))];
}

/** Applies one key to the state; returns false when the UI should close. */
export function applyKey(state: UiState, key: { name?: string; ctrl?: boolean; sequence?: string }, rowCount: number, pageSize: number): boolean {
  const name = key.name ?? key.sequence;
  if (name === 'q' || (key.ctrl && name === 'c') || name === 'escape') return false;
  const last = Math.max(0, rowCount - 1);
  const select = (i: number): void => {
    state.selected = Math.max(0, Math.min(last, i));
    state.detailScroll = 0;
  };
  switch (name) {
    case 'up':
    case 'k':
      select(state.selected - 1);
      break;
    case 'down':
    case 'j':
      select(state.selected + 1);
      break;
    case 'home':
      select(0);
      break;
    case 'end':
      select(last);
      break;
    case 'pageup':
      state.detailScroll = Math.max(0, state.detailScroll - pageSize);
      break;
    case 'pagedown':
    case 'space':
      state.detailScroll += pageSize;
      break;
    case 'tab':
      state.pane = state.pane === 'output' ? 'files' : 'output';
      state.detailScroll = 0;
      break;
  }
  if (state.selected < state.scroll) state.scroll = state.selected;
  if (state.selected >= state.scroll + pageSize) state.scroll = state.selected - pageSize + 1;
  return true;
}

export async function runUi(model: UiModel, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<void> {
  const rows = treeRows(model.processes);
  const state: UiState = { selected: 0, scroll: 0, detailScroll: 0, pane: 'output' };
  const draw = (): void => {
    const width = output.columns || 80;
    const height = output.rows || 24;
    output.write(`${ESC}H${render(model, rows, state, width, height).join(`${ESC}K\r\n`)}${ESC}K${ESC}J`);
  };
  emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();
  output.write(`${ESC}?1049h${ESC}?25l`);
  const restore = (): void => {
    output.write(`${ESC}?25h${ESC}?1049l`);
    input.setRawMode(false);
    input.pause();
  };
  try {
    draw();
    await new Promise<void>((resolve) => {
      const onResize = (): void => draw();
      output.on('resize', onResize);
      input.on('keypress', (_s: string, key: { name?: string; ctrl?: boolean; sequence?: string }) => {
        const pageSize = Math.max(1, (output.rows || 24) - 3);
        if (!applyKey(state, key ?? {}, rows.length, pageSize)) {
          output.off('resize', onResize);
          resolve();
          return;
        }
        draw();
      });
    });
  } finally {
    restore();
  }
}
