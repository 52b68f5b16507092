// The UI's screens and keys, without a terminal, over a real record.
import test from 'ava';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { openRecord } from '../src/record/reader.js';
import { fit, loadTrace, modelFor, outputLines, treeRows, type UiModel } from '../src/ui/model.js';
import { UiState, applyKey, render } from '../src/ui/view.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const strip = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
let cwd: string | undefined;
let model: UiModel;

test.before(async () => {
  cwd = scratchDir('uwrx-ui-view-');
  // 2 -> 3 (writes a.o; its child 4 is killed, so 3 fails), 5 (fails), 6 (fine)
  const script = `sh -c 'echo compiling a; echo obj > a.o; sh -c "kill -9 \\$\\$"'; sh -c 'printf "b.c:%d: error\\n" 1 >&2; exit 1'; sh -c 'echo fine'; exit 0`;
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', script], { cwd });
  if (run.status !== 0) throw new Error(run.stderr);
  model = modelFor(openRecord(path.join(cwd, 'build', '0', '0')));
  await loadTrace(model);
});
test.after.always(() => {
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

test('tree rows: children under their parent; collapse hides a branch; failed-only keeps ancestors', (t) => {
  const rows = (collapsed: number[], failed: boolean) => treeRows(model.record, new Set(collapsed), failed).map((r) => [r.process.pid, r.depth]);
  t.deepEqual(rows([], false), [
    [2, 0],
    [3, 1],
    [4, 2],
    [5, 1],
    [6, 1],
  ]);
  t.deepEqual(rows([3], false), [
    [2, 0],
    [3, 1],
    [5, 1],
    [6, 1],
  ]);
  t.deepEqual(rows([], true), [
    [2, 0],
    [3, 1],
    [4, 2],
    [5, 1],
  ]);
});

test('render fills the screen exactly at 80x24 and at 40x10', (t) => {
  for (const [w, h] of [
    [80, 24],
    [40, 10],
  ] as const) {
    const state = new UiState(model);
    const screen = render(state, w, h).map(strip);
    t.is(screen.length, h);
    for (const line of screen) t.is([...line].length, w, line);
  }
});

test('keys: move, details tabs, failed marker, search by output, help, quit', (t) => {
  const state = new UiState(model);
  const screen = (): string => render(state, 100, 20).map(strip).join('\n');
  t.regex(screen(), / ▾2 sh -c/);
  t.regex(screen(), /!  ▾3 sh -c/);
  applyKey(state, { name: 'down' }, 17);
  applyKey(state, { name: 'down' }, 17);
  t.regex(screen(), /pid 4, parent 3, killed by signal 9/);
  t.regex(screen(), /! +4 sh -c kill/);
  applyKey(state, { name: 'up' }, 17);
  applyKey(state, { name: 'tab' }, 17);
  applyKey(state, { name: 'tab' }, 17);
  t.regex(screen(), /\[files\]/);
  t.regex(screen(), /create +files +\S+\/a\.o/);
  applyKey(state, { sequence: '/' }, 17);
  for (const c of 'b.c:1') applyKey(state, { sequence: c }, 17);
  applyKey(state, { name: 'return' }, 17);
  t.regex(screen(), /pid 5, parent 2, exit 1/);
  t.regex(screen(), /\[output\]/);
  t.regex(screen(), /b\.c:1: error/);
  applyKey(state, { sequence: '?' }, 17);
  t.regex(screen(), /uwrx ui: keys/);
  applyKey(state, { name: 'x', sequence: 'x' }, 17);
  t.notRegex(screen(), /uwrx ui: keys/);
  t.false(applyKey(state, { name: 'q', sequence: 'q' }, 17));
});

test('selection stays in range; G and g go to the ends', (t) => {
  const state = new UiState(model);
  applyKey(state, { name: 'up' }, 2);
  t.is(state.selected, 0);
  applyKey(state, { name: 'g', shift: true, sequence: 'G' }, 2);
  t.is(state.selected, state.rows.length - 1);
  t.true(state.scroll >= state.rows.length - 2);
  applyKey(state, { name: 'g', sequence: 'g' }, 2);
  t.is(state.selected, 0);
});

test('the first screen needs no trace: details from the process table until it is read', async (t) => {
  const fresh = modelFor(openRecord(model.record.dir));
  const state = new UiState(fresh);
  t.regex(render(state, 100, 20).map(strip).join('\n'), /\(reading the trace…\)/);
  t.false(fresh.record.traceLoaded);
  await loadTrace(fresh);
  t.regex(render(state, 100, 20).map(strip).join('\n'), /compiling a/);
});

test('fit and outputLines keep the layout intact', (t) => {
  t.is(fit('abcdef', 4), 'abc…');
  t.is(fit('ab', 4), 'ab  ');
  t.deepEqual(outputLines(Buffer.from('a\tb\x1b[31mred\nz\n')), ['a    b^[[31mred', 'z']);
});
