// The UI's state, the keys that change it, and the screen for a state. Pure (no terminal),
// so every key and every screen size can be tested directly.
import { DETAIL_TABS, detailLines, fit, isFailed, outcome, search, treeRows, type DetailTab, type SearchHit, type TreeRow, type UiModel } from './model.js';
import { commandLine } from '../record/reader.js';

export interface Key {
  name?: string;
  ctrl?: boolean;
  shift?: boolean;
  sequence?: string;
}

const ESC = '\x1b[';
const invert = (s: string): string => `${ESC}7m${s}${ESC}0m`;
const bold = (s: string): string => `${ESC}1m${s}${ESC}0m`;

export const HELP = [
  'uwrx ui: keys',
  '',
  '  ↑ ↓  k j        select the previous / next process',
  '  PgUp PgDn       a page up / down in the tree',
  '  Home End  g G   first / last process',
  '  → l  ← h        expand / collapse (← on a leaf: go to the parent)',
  '  Enter           expand or collapse the selected process',
  '  E  C            expand all / collapse all',
  '  Tab  1 2 3      details: info (command, cwd, environment, network),',
  '                  files (written and read, with versions), output',
  '  J K  Ctrl-D/U   scroll the details',
  '  /               search by command, path or output text',
  '  n  N            next / previous search hit',
  '  f               only failed processes (and their parents)',
  '  ?               this help (any key closes it)',
  '  q  Esc  Ctrl-C  quit',
];

/** Everything the screen depends on besides the record. */
export class UiState {
  rows: TreeRow[] = [];
  selected = 0;
  scroll = 0;
  tab: DetailTab = 'output';
  detailScroll = 0;
  readonly collapsed = new Set<number>();
  failedOnly = false;
  help = false;
  /** The search text being typed, when the prompt is open. */
  prompt: string | undefined;
  query: string | undefined;
  hits: SearchHit[] = [];
  hit = -1;
  message: string | undefined;

  constructor(readonly model: UiModel) {
    this.refresh();
  }

  get current(): TreeRow | undefined {
    return this.rows[this.selected];
  }

  /** Rebuilds the rows after a fold or filter change, keeping the selected process. */
  refresh(keepPid = this.current?.process.pid): void {
    this.rows = treeRows(this.model.record, this.collapsed, this.failedOnly);
    const i = keepPid === undefined ? -1 : this.rows.findIndex((r) => r.process.pid === keepPid);
    this.selected = Math.max(0, Math.min(i >= 0 ? i : this.selected, this.rows.length - 1));
  }

  /** Selects a process, unfolding its ancestors and leaving the failed filter if needed. */
  reveal(pid: number): void {
    const record = this.model.record;
    for (let p = record.process(pid); p && p.ppid !== p.pid; p = record.process(p.ppid)) this.collapsed.delete(p.ppid);
    this.refresh(pid);
    if (this.failedOnly && this.current?.process.pid !== pid) {
      this.failedOnly = false;
      this.refresh(pid);
    }
  }
}

/** Applies one key; returns false when the UI should close. `page`: rows of the body. */
export function applyKey(state: UiState, key: Key, page: number): boolean {
  const name = key.name ?? key.sequence ?? '';
  state.message = undefined;
  if (key.ctrl && name === 'c') return false;
  if (state.help) {
    state.help = false;
    return true;
  }
  if (state.prompt !== undefined) {
    promptKey(state, key, name);
    return true;
  }
  const last = Math.max(0, state.rows.length - 1);
  const select = (i: number): void => {
    const next = Math.max(0, Math.min(last, i));
    if (next !== state.selected) state.detailScroll = 0;
    state.selected = next;
  };
  const row = state.current;
  const shifted = key.shift || (key.sequence !== undefined && key.sequence.length === 1 && key.sequence !== key.sequence.toLowerCase());
  const k = shifted && name.length === 1 ? name.toUpperCase() : name;
  switch (k) {
    case 'q':
    case 'escape':
      return false;
    case 'up':
    case 'k':
      select(state.selected - 1);
      break;
    case 'down':
    case 'j':
      select(state.selected + 1);
      break;
    case 'pageup':
      select(state.selected - page);
      break;
    case 'pagedown':
      select(state.selected + page);
      break;
    case 'home':
    case 'g':
      select(0);
      break;
    case 'end':
    case 'G':
      select(last);
      break;
    case 'right':
    case 'l':
      if (row?.collapsed) {
        state.collapsed.delete(row.process.pid);
        state.refresh();
      } else if (row?.hasChildren) select(state.selected + 1);
      break;
    case 'left':
    case 'h':
      if (row && row.hasChildren && !row.collapsed) {
        state.collapsed.add(row.process.pid);
        state.refresh();
      } else if (row) {
        const parent = state.rows.findIndex((r) => r.process.pid === row.process.ppid);
        if (parent >= 0) select(parent);
      }
      break;
    case 'return':
    case 'enter':
      if (row?.hasChildren) {
        if (row.collapsed) state.collapsed.delete(row.process.pid);
        else state.collapsed.add(row.process.pid);
        state.refresh();
      }
      break;
    case 'E':
      state.collapsed.clear();
      state.refresh();
      break;
    case 'C':
      for (const r of state.model.record.processes()) if (r.children.length > 0) state.collapsed.add(r.pid);
      state.refresh(state.model.record.roots()[0]?.pid);
      break;
    case 'tab':
      state.tab = DETAIL_TABS[(DETAIL_TABS.indexOf(state.tab) + (key.shift ? DETAIL_TABS.length - 1 : 1)) % DETAIL_TABS.length]!;
      state.detailScroll = 0;
      break;
    case '1':
    case '2':
    case '3':
      state.tab = DETAIL_TABS[Number(name) - 1]!;
      state.detailScroll = 0;
      break;
    case 'J':
      state.detailScroll++;
      break;
    case 'K':
      state.detailScroll = Math.max(0, state.detailScroll - 1);
      break;
    case 'd':
      if (key.ctrl) state.detailScroll += Math.max(1, page >> 1);
      break;
    case 'u':
      if (key.ctrl) state.detailScroll = Math.max(0, state.detailScroll - Math.max(1, page >> 1));
      break;
    case 'f':
      state.failedOnly = !state.failedOnly;
      state.refresh();
      if (state.failedOnly && state.rows.length === 0) {
        state.failedOnly = false;
        state.refresh();
        state.message = 'no failed processes';
      }
      break;
    case '?':
      state.help = true;
      break;
    case '/':
      state.prompt = '';
      break;
    case 'n':
    case 'N':
      nextHit(state, k === 'n' ? 1 : -1);
      break;
    default:
      if (key.sequence === '?') state.help = true;
      else if (key.sequence === '/') state.prompt = '';
  }
  if (state.selected < state.scroll) state.scroll = state.selected;
  if (state.selected >= state.scroll + page) state.scroll = state.selected - page + 1;
  return true;
}

function promptKey(state: UiState, key: Key, name: string): void {
  if (name === 'escape') state.prompt = undefined;
  else if (name === 'return' || name === 'enter') {
    const query = state.prompt!;
    state.prompt = undefined;
    if (query === '') return;
    state.query = query;
    state.hits = search(state.model, query);
    state.hit = -1;
    if (state.hits.length === 0) state.message = `not found: ${query}`;
    else nextHit(state, 1);
  } else if (name === 'backspace') state.prompt = state.prompt!.slice(0, -1);
  else if (key.sequence && !key.ctrl && [...key.sequence].every((c) => c >= ' ' && c !== '\x7f')) state.prompt += key.sequence;
}

/** Moves to the next (or previous) hit after the selected process, wrapping around. */
function nextHit(state: UiState, direction: 1 | -1): void {
  if (state.hits.length === 0) {
    state.message = state.query === undefined ? 'no search yet (press /)' : `not found: ${state.query}`;
    return;
  }
  const pid = state.current?.process.pid ?? 0;
  const n = state.hits.length;
  let i: number;
  if (state.hit >= 0 && state.hits[state.hit]!.pid === pid) i = (state.hit + direction + n) % n;
  else if (direction > 0) i = Math.max(0, state.hits.findIndex((h) => h.pid > pid)) % n;
  else {
    const before = state.hits.map((h) => h.pid < pid).lastIndexOf(true);
    i = before >= 0 ? before : n - 1;
  }
  state.hit = i;
  const h = state.hits[i]!;
  state.reveal(h.pid);
  state.tab = h.tab;
  state.detailScroll = Math.max(0, h.line - 2);
  state.message = `${i + 1}/${n}: "${state.query}"`;
}

/** The screen for a state: `height` lines of exactly `width` columns (escapes not counted). */
export function render(state: UiState, width: number, height: number): string[] {
  const model = state.model;
  const leftWidth = Math.max(20, Math.min(60, Math.floor(width * 0.4)));
  const rightWidth = Math.max(0, width - leftWidth - 1);
  const bodyHeight = Math.max(1, height - 3);
  if (state.selected >= state.scroll + bodyHeight) state.scroll = state.selected - bodyHeight + 1;
  if (state.selected < state.scroll) state.scroll = state.selected;
  const lines: string[] = [];
  lines.push(bold(fit(model.title, width)));
  const flags = [state.failedOnly ? 'showing failed only' : '', model.warning ? `damaged: ${model.warning}` : ''].filter(Boolean);
  lines.push(fit([model.summary, ...flags].join('  |  '), width));
  if (state.help) {
    const body = HELP.map((l) => fit(l, width));
    for (let i = 0; i < bodyHeight; i++) lines.push(body[i] ?? ' '.repeat(width));
  } else {
    const left: string[] = [];
    for (let i = state.scroll; i < Math.min(state.rows.length, state.scroll + bodyHeight); i++) {
      const { process: p, depth, hasChildren, collapsed } = state.rows[i]!;
      const fold = hasChildren ? (collapsed ? '▸' : '▾') : ' ';
      const text = fit(`${isFailed(p) ? '!' : ' '}${'  '.repeat(Math.min(depth, 12))}${fold}${p.pid} ${commandLine(p)}`, leftWidth);
      left.push(i === state.selected ? invert(text) : text);
    }
    if (state.rows.length === 0) left.push(fit('no processes recorded', leftWidth));
    const right = detailPane(state, rightWidth, bodyHeight);
    for (let i = 0; i < bodyHeight; i++) lines.push(`${left[i] ?? ' '.repeat(leftWidth)}│${right[i] ?? ' '.repeat(rightWidth)}`);
  }
  let bottom: string;
  if (state.prompt !== undefined) bottom = fit(`/${state.prompt}█  (Enter search, Esc cancel)`, width);
  else if (state.message) bottom = invert(fit(` ${state.message}`, width));
  else bottom = invert(fit(' ? help  ↑↓ jk move  ←→ fold  Tab details  / search  n/N  f failed  q quit', width));
  lines.push(bottom);
  return lines;
}

function detailPane(state: UiState, width: number, height: number): string[] {
  const row = state.current;
  if (!row) return [];
  const p = row.process;
  const duration = p.start !== null && p.end !== null ? `, ${((p.end - p.start) / 1e9).toFixed(3)} s` : '';
  const head = [
    fit(`pid ${p.pid}, parent ${p.ppid}, ${outcome(p)}${duration}`, width),
    fit(commandLine(p), width),
    fit(DETAIL_TABS.map((t) => (t === state.tab ? `[${t}]` : ` ${t} `)).join(' '), width),
  ];
  const body = detailLines(state.model, p, state.tab);
  const room = Math.max(0, height - head.length);
  state.detailScroll = Math.max(0, Math.min(state.detailScroll, Math.max(0, body.length - room)));
  const visible = body.slice(state.detailScroll, state.detailScroll + room);
  // file entries keep their operation, version and the end of the path (the file name)
  const fitLine = state.tab === 'files' ? (l: string) => fitKeepingEnd(l, width, FILE_COLUMNS) : (l: string) => fit(l, width);
  return [...head, ...visible.map(fitLine)];
}

/** Width of the operation and version columns of a files entry. */
const FILE_COLUMNS = 24;

function fitKeepingEnd(text: string, width: number, keep: number): string {
  const chars = [...text];
  if (chars.length <= width || width <= keep + 2 || !text.startsWith('  ')) return fit(text, width);
  const tail = width - keep - 1;
  return chars.slice(0, keep).join('') + '…' + chars.slice(chars.length - tail).join('');
}
