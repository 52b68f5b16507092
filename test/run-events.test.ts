// The run's events as a library user gets them (RunHandle events(), 'event', 'warning'):
// every process's spawn, exec and exit for whoever takes them, and nothing built or kept
// for a run nobody listens to.
import test from 'ava';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, type RunEvent } from '../src/run.js';
import { defineFeature } from '../src/features/feature.js';
import { MSG_EXEC } from '../src/protocol/init-messages.js';
import { readProcessTable } from '../src/sandbox/index.js';
import { scratchDir } from './helpers/uwrx.js';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = scratchDir('uwrx-run-events-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A feature that notes, at each exec, whether the run's events had a taker. */
function listenedAtExec(seen: boolean[]) {
  return defineFeature({ name: 'listened-at-exec', create: () => ({ on: { [MSG_EXEC]: (_b: unknown, r) => void seen.push(r.listened) } }) });
}

const SCRIPT = '/bin/echo one >/dev/null; sh -c "exit 3"; /bin/true';

test('events() called right after run() gets every process: spawn, exec, exit, as procs.tsv has them', async (t) => {
  const cwd = scratch(t);
  const handle = run({ argv: ['sh', '-c', SCRIPT], cwd });
  const events: RunEvent[] = [];
  for await (const e of handle.events()) events.push(e);
  const result = await handle.done;
  t.is(events[0]!.type, 'attempt');
  t.is(events[events.length - 1]!.type, 'finished');
  const procs = await readProcessTable(result.attemptDir);
  t.is(procs.length, 4);
  const spawned = events.filter((e) => e.type === 'spawn').map((e) => e.pid);
  const exited = events.filter((e) => e.type === 'exit');
  t.deepEqual(spawned.sort(), procs.map((p) => p.pid).sort());
  t.deepEqual(exited.map((e) => e.pid).sort(), procs.map((p) => p.pid).sort());
  t.true(exited.some((e) => e.type === 'exit' && e.exitCode === 3));
  const execs = events.filter((e): e is Extract<RunEvent, { type: 'exec' }> => e.type === 'exec');
  t.deepEqual(execs.find((e) => e.path === '/bin/echo')?.argv, ['/bin/echo', 'one']);
  t.is(execs.find((e) => e.path === '/bin/echo')?.cwd, cwd);
  // a second iterator after the run: the run's own events, not its processes
  const late: string[] = [];
  for await (const e of handle.events()) late.push(e.type);
  t.deepEqual(late, ['attempt', 'finished']);
});

test('an events() iterator returned before its first next() keeps nothing: the processes\' events are not built', async (t) => {
  const cwd = scratch(t);
  const seen: boolean[] = [];
  const handle = run({ argv: ['sh', '-c', SCRIPT], cwd, features: [listenedAtExec(seen)] });
  const unused = handle.events();
  t.true(handle.listened);
  await unused.return(undefined);
  t.false(handle.listened, 'the iterator no longer counts');
  t.is((await handle.done).status, 0);
  t.true(seen.length >= 3 && seen.every((l) => !l), 'no process event built for it');
  // one that iterates still gets the run's own events
  const types: string[] = [];
  for await (const e of handle.events()) types.push(e.type);
  t.deepEqual(types, ['attempt', 'finished']);
});

test("an 'event' listener gets the processes' events; one of 'warning' alone has none built", async (t) => {
  const cwd = scratch(t);
  const build = path.join(cwd, 'build');
  // step 0's attempt still running (no status yet): the next step's run warns that it
  // builds on no parent
  mkdirSync(path.join(build, '0', '0'), { recursive: true });
  writeFileSync(path.join(build, '0', '0', 'seed.txt'), '0'.repeat(64) + '\n');

  const quiet: boolean[] = [];
  const warned = run({ argv: ['sh', '-c', SCRIPT], cwd, build, step: '10', features: [listenedAtExec(quiet)] });
  const warnings: string[] = [];
  warned.on('warning', (m) => warnings.push(m));
  t.is((await warned.done).status, 0);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /no complete attempt in .*running without a parent/);
  t.true(quiet.length >= 3);
  t.true(quiet.every((l) => !l), 'no process event built for a listener of warnings');

  const heard: boolean[] = [];
  const listened = run({ argv: ['sh', '-c', SCRIPT], cwd, build, step: '20', features: [listenedAtExec(heard)] });
  const types: string[] = [];
  listened.on('event', (e) => types.push(e.type));
  await listened.done;
  t.true(heard.length >= 3 && heard.every((l) => l));
  t.is(types.filter((type) => type === 'exec').length, heard.length);
  t.is(types.filter((type) => type === 'spawn').length, 4);
});
