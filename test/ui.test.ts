import test from 'ava';
import { applyKey, render, type UiState } from '../src/ui/app.js';
import { fit, outputLines, treeRows, type UiModel, type UiProcess } from '../src/ui/model.js';

const proc = (pid: number, ppid: number, argv: string[], extra: Partial<UiProcess> = {}): UiProcess => ({
  pid,
  ppid,
  argv,
  cwd: '/w',
  exe: `/usr/bin/${argv[0]}`,
  exitCode: 0,
  signal: null,
  durationMs: 12,
  files: [],
  output: Buffer.alloc(0),
  ...extra,
});

const model: UiModel = {
  title: 'build/0/0  make -j2',
  summary: 'complete, status 0',
  processes: [
    proc(4, 2, ['cc', '-c', 'b.c'], { exitCode: 1, output: Buffer.from('b.c:1: error\n') }),
    proc(2, 1, ['make', '-j2']),
    proc(3, 2, ['cc', '-c', 'a.c'], { files: [{ path: '/w/a.o', operation: 'create' }] }),
    proc(5, 3, ['as'], { signal: 9, exitCode: null }),
  ],
};

const strip = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

test('treeRows orders children under their parent', (t) => {
  t.deepEqual(
    treeRows(model.processes).map((r) => [r.process.pid, r.depth]),
    [
      [2, 0],
      [3, 1],
      [5, 2],
      [4, 1],
    ],
  );
});

test('render fills the screen exactly and shows the selected process', (t) => {
  const rows = treeRows(model.processes);
  const state: UiState = { selected: 3, scroll: 0, detailScroll: 0, pane: 'output' };
  const screen = render(model, rows, state, 100, 12).map(strip);
  t.is(screen.length, 12);
  for (const line of screen) t.is([...line].length, 100, line);
  t.true(screen.some((l) => l.includes('!  4 cc -c b.c')), 'failed processes are marked');
  t.true(screen.some((l) => l.includes('pid 4, parent 2, exit 1')));
  t.true(screen.some((l) => l.includes('b.c:1: error')));
  applyKey(state, { name: 'up' }, rows.length, 9);
  applyKey(state, { name: 'up' }, rows.length, 9);
  applyKey(state, { name: 'tab' }, rows.length, 9);
  const files = render(model, rows, state, 100, 12).map(strip);
  t.true(files.some((l) => l.includes('create      /w/a.o')));
  t.false(applyKey(state, { name: 'q' }, rows.length, 9));
});

test('selection stays in range and scrolls the list', (t) => {
  const many: UiModel = { ...model, processes: Array.from({ length: 50 }, (_, i) => proc(i + 2, i + 1, ['sh'])) };
  const rows = treeRows(many.processes);
  const state: UiState = { selected: 0, scroll: 0, detailScroll: 0, pane: 'output' };
  applyKey(state, { name: 'up' }, rows.length, 10);
  t.is(state.selected, 0);
  for (let i = 0; i < 30; i++) applyKey(state, { name: 'down' }, rows.length, 10);
  t.is(state.selected, 30);
  t.is(state.scroll, 21);
  applyKey(state, { name: 'end' }, rows.length, 10);
  t.is(state.selected, 49);
});

test('fit and outputLines keep the layout intact', (t) => {
  t.is(fit('abcdef', 4), 'abc…');
  t.is(fit('ab', 4), 'ab  ');
  t.deepEqual(outputLines(Buffer.from('a\tb\x1b[31mred\nz\n')), ['a    b^[[31mred', 'z']);
});
