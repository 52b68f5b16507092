// Run features: a capability registers hooks and the run calls them in order; nothing
// else is edited. These features are registered by the test through the library's
// `features` option and run a real command in the real sandbox.
import test from 'ava';
import { existsSync, promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run } from '../src/run.js';
import { defineFeature } from '../src/features/feature.js';
import { MSG_EXEC, MSG_EXIT, MSG_SPAWN, type ExecBody, type ExitBody, type SpawnBody } from '../src/protocol/init-messages.js';
import { formatSummary } from '../src/cli/summary.js';
import { check } from '../src/inspect/index.js';
import { PassThrough } from 'node:stream';
import { scratchDir } from './helpers/uwrx.js';

function scratch(t: import('ava').ExecutionContext): string {
  const dir = scratchDir('uwrx-features-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const readStatus = (attemptDir: string) => JSON.parse(readFileSync(path.join(attemptDir, 'status'), 'utf8')) as Record<string, unknown>;

test('a registered feature sees every phase in order and adds to the status', async (t) => {
  const cwd = scratch(t);
  const calls: string[] = [];
  const execs: string[] = [];
  const counter = defineFeature({
    name: 'exec-counter',
    create: () => ({
      configure(settings) {
        calls.push('configure');
        settings.stepOptions.counted = true;
      },
      record: () => void calls.push('record'),
      plan: () => (calls.push('plan'), {}),
      ready: () => void calls.push('ready'),
      prepare: () => void calls.push('prepare'),
      actors: () => (calls.push('actors'), []),
      on: {
        [MSG_EXEC]: (body: ExecBody) => {
          if (!calls.includes('on')) calls.push('on');
          execs.push(Buffer.from(body.path).toString());
        },
      },
      finish: () => void calls.push('finish'),
      derive: (run) => {
        calls.push('derive');
        // every feature's finish came first: the record's finishing files are there
        for (const f of ['procs.tsv', 'accesses.tsv', 'files.meta', 'perfetto']) {
          if (existsSync(path.join(run.paths.attemptDir, f))) derived.push(f);
        }
      },
      status: () => (calls.push('status'), { execs: execs.length }),
    }),
  });
  const derived: string[] = [];
  const result = await run({ argv: ['sh', '-c', '/bin/true; /bin/true'], cwd, features: [counter] }).done;
  t.is(result.status, 0);
  t.deepEqual(calls, ['configure', 'actors', 'record', 'plan', 'ready', 'prepare', 'on', 'finish', 'derive', 'status']);
  t.deepEqual(derived, ['procs.tsv', 'accesses.tsv', 'files.meta', 'perfetto']);
  t.true(execs.length >= 3, execs.join(' '));
  t.is(readStatus(result.attemptDir).execs, execs.length);
  // the status's own fields first, in docs/record.md's order; the features' after them
  const keys = Object.keys(readStatus(result.attemptDir));
  const own = keys.indexOf('endedAt') + 1;
  t.deepEqual(keys.slice(own, own + 2), ['processes', 'filesWritten']);
  t.is(keys[keys.length - 1], 'execs');
  t.is((result as unknown as { execs: number }).execs, execs.length);
  t.true(JSON.parse(readFileSync(path.join(result.attemptDir, 'options'), 'utf8')).counted);
});

test('prepare runs once uwrx-init has the plan, before the command starts; a failure in it changes nothing', async (t) => {
  const cwd = scratch(t);
  const seen: string[] = [];
  const early = defineFeature({
    name: 'early-loader',
    create: () => ({
      prepare() {
        seen.push('prepare');
        throw new Error('nothing to load');
      },
      on: { [MSG_EXEC]: () => void seen.push('exec') },
    }),
  });
  const result = await run({ argv: ['sh', '-c', 'echo hi > out.txt'], cwd, features: [early] }).done;
  t.is(result.status, 0);
  t.false(result.incomplete);
  t.is(seen[0], 'prepare', 'before the first exec');
  t.is(seen.filter((s) => s === 'prepare').length, 1);
  t.true(seen.includes('exec'));
  t.is(await check(result.attemptDir, new PassThrough()), 0, 'the record is whole');
});

test('process messages reach features while the run goes on, and spawn, exec and exit of a process in order', async (t) => {
  // uwrx-init holds process messages briefly to write several at once: they must still
  // arrive while the command runs, not only when it ends.
  const cwd = scratch(t);
  const seen: { type: string; pid: number; at: number; path?: string }[] = [];
  const watcher = defineFeature({
    name: 'process-watcher',
    create: () => ({
      on: {
        [MSG_SPAWN]: (b: SpawnBody) => void seen.push({ type: 'spawn', pid: b.pid, at: Date.now() }),
        [MSG_EXEC]: (b: ExecBody) => void seen.push({ type: 'exec', pid: b.pid, at: Date.now(), path: Buffer.from(b.path).toString() }),
        [MSG_EXIT]: (b: ExitBody) => void seen.push({ type: 'exit', pid: b.pid, at: Date.now() }),
      },
    }),
  });
  const result = await run({ argv: ['sh', '-c', '/bin/true; sleep 2; /bin/true'], cwd, features: [watcher] }).done;
  const ended = Date.now();
  t.is(result.status, 0);
  const trues = seen.filter((m) => m.path === '/bin/true').map((m) => m.pid);
  t.is(trues.length, 2, JSON.stringify(seen));
  const first = trues[0]!;
  t.deepEqual(seen.filter((m) => m.pid === first).map((m) => m.type), ['spawn', 'exec', 'exit']);
  const exit = seen.find((m) => m.pid === first && m.type === 'exit')!;
  t.true(ended - exit.at >= 1000, `the first /bin/true's exit arrived ${ended - exit.at} ms before the run ended`);
  for (const pid of new Set(seen.map((m) => m.pid))) {
    const types = seen.filter((m) => m.pid === pid).map((m) => m.type);
    t.deepEqual(types.filter((x) => x !== 'exec'), ['spawn', 'exit'], `process ${pid}: ${types.join(' ')}`);
  }
});

test('a feature that is not enabled takes no part', async (t) => {
  const cwd = scratch(t);
  let created = false;
  const off = defineFeature({ name: 'off', enabled: () => false, create: () => ((created = true), {}) });
  const result = await run({ argv: ['true'], cwd, features: [off] }).done;
  t.is(result.status, 0);
  t.false(created);
});

test('a feature starts its own actor beside the sandbox and asks it at the end', async (t) => {
  const cwd = scratch(t);
  let answer: unknown;
  const withActor = defineFeature({
    name: 'with-actor',
    create: () => ({
      actors: () => [{ name: 'echo', module: new URL('./fixtures/actors/echo.js', import.meta.url) }],
      async finish(run) {
        answer = await run.supervisor.request('echo', 'echo', { attempt: run.paths.attempt });
      },
    }),
  });
  const result = await run({ argv: ['true'], cwd, features: [withActor] }).done;
  t.is(result.status, 0);
  t.deepEqual(answer, { attempt: result.attempt });
});

test('a problem a feature reports is counted in the status and the summary line', async (t) => {
  const cwd = scratch(t);
  const lossy = defineFeature({
    name: 'lossy',
    create: () => ({
      finish(run) {
        run.problem({ kind: 'lost-version', count: 2, detail: '/tmp/x' });
        run.problem({ kind: 'lost-version', count: 1, detail: '/tmp/y' });
      },
    }),
  });
  const result = await run({ argv: ['true'], cwd, features: [lossy] }).done;
  t.deepEqual(readStatus(result.attemptDir).problems, [{ kind: 'lost-version', count: 3, detail: '/tmp/x' }]);
  t.regex(formatSummary(result, cwd), /, 3 problems \(lost-version 3\); record in /);
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  t.is(await check(result.attemptDir, out), 1);
  t.is(Buffer.concat(chunks).toString(), 'status: 3 problems of kind lost-version while running (first: /tmp/x)\n');
});

test('uwrx-init starts only once every ready step has what it wrote on disk', async (t) => {
  const cwd = scratch(t);
  const seen: string[] = [];
  const slow = defineFeature({
    name: 'slow-writer',
    create: () => ({
      async ready() {
        // written well after the plan and the run directory: the command must see it
        await new Promise((resolve) => setTimeout(resolve, 300));
        writeFileSync(path.join(cwd, 'ready.txt'), 'written\n');
        seen.push('ready');
      },
      prepare: () => void seen.push('prepare'),
      on: { [MSG_EXEC]: () => void seen.push('exec') },
    }),
  });
  const result = await run({ argv: ['sh', '-c', 'test "$(cat ready.txt)" = written'], cwd, features: [slow] }).done;
  t.is(result.status, 0, 'the command read the file');
  t.deepEqual(seen.slice(0, 2), ['ready', 'prepare']);
});

test('a ready step that fails stops the run before the command starts, and the attempt says why', async (t) => {
  const cwd = scratch(t);
  const broken = defineFeature({
    name: 'broken-ready',
    create: () => ({
      ready: () => Promise.reject(new Error('no room for the files')),
    }),
  });
  await t.throwsAsync(run({ argv: ['touch', 'ran.txt'], cwd, features: [broken] }).done, { message: 'no room for the files' });
  t.false(existsSync(path.join(cwd, 'ran.txt')));
  t.like(readStatus(path.join(cwd, 'build', '0', '0')), { complete: false, reason: 'no room for the files' });
});

test('a run that fails before its command removes its run directory only once the ready steps\' writes are done', async (t) => {
  const cwd = scratch(t);
  let runDir = '';
  const writer = defineFeature({
    name: 'late-writer',
    create: () => {
      let written: Promise<void> | undefined;
      return {
        record(r) {
          runDir = r.runDir;
          // under way on the thread pool, as the network's files are, when a later step fails
          written = new Promise((resolve) => setTimeout(resolve, 400)).then(async () => {
            await fsp.mkdir(path.join(runDir, 'late'), { recursive: true });
            await fsp.writeFile(path.join(runDir, 'late', 'file'), 'x');
          });
        },
        ready: () => written,
      };
    },
  });
  const broken = defineFeature({
    name: 'broken-record',
    create: () => ({
      record() {
        throw new Error('no attempt files');
      },
    }),
  });
  await t.throwsAsync(run({ argv: ['true'], cwd, features: [writer, broken] }).done, { message: 'no attempt files' });
  t.truthy(runDir);
  // past the write: nothing of the run directory comes back
  await new Promise((resolve) => setTimeout(resolve, 600));
  t.false(existsSync(runDir), `${runDir} made again after its removal`);
});

test('a failing finish step leaves an incomplete attempt saying why', async (t) => {
  const cwd = scratch(t);
  const broken = defineFeature({
    name: 'broken',
    create: () => ({
      finish() {
        throw new Error('disk on fire');
      },
    }),
  });
  await t.throwsAsync(run({ argv: ['true'], cwd, features: [broken] }).done, { message: 'disk on fire' });
  const status = readStatus(path.join(cwd, 'build', '0', '0'));
  t.like(status, { complete: false, reason: 'disk on fire' });
});

test('finish steps wait only for those they name in finishAfter: the others run at once; by default a step waits for every earlier one', async (t) => {
  const cwd = scratch(t);
  const order: string[] = [];
  let released!: () => void;
  const release = new Promise<void>((resolve) => (released = resolve));
  // A waits for B, which comes after it in the list: only concurrent steps can both end
  const a = defineFeature({
    name: 'finish-a',
    finishAfter: [],
    create: () => ({
      async finish() {
        order.push('a starts');
        await release;
        order.push('a ends');
      },
    }),
  });
  const b = defineFeature({
    name: 'finish-b',
    finishAfter: [],
    create: () => ({
      finish() {
        order.push('b');
        released();
      },
    }),
  });
  const afterA = defineFeature({
    name: 'finish-after-a',
    finishAfter: ['finish-a'],
    create: () => ({ finish: () => void order.push('after a') }),
  });
  const last = defineFeature({
    name: 'finish-last',
    create: () => ({
      finish: (run) => {
        order.push('last');
        // every built-in finish step ended before it: the record's files are there
        t.true(existsSync(path.join(run.paths.attemptDir, 'procs.tsv')));
        t.true(existsSync(path.join(run.paths.attemptDir, 'files.meta')));
      },
    }),
  });
  const failing = defineFeature({
    name: 'finish-fails',
    finishAfter: [],
    create: () => ({
      finish() {
        throw new Error('finish failed');
      },
    }),
  });
  const after = defineFeature({ name: 'after-failure', finishAfter: ['finish-fails'], create: () => ({ finish: () => void order.push('after failure') }) });
  const result = await run({ argv: ['/bin/true'], cwd, features: [a, b, afterA, last] }).done;
  t.is(result.status, 0);
  t.deepEqual(order, ['a starts', 'b', 'a ends', 'after a', 'last']);
  // a failed step fails the run once every other step settled; those after it do not run
  order.length = 0;
  const failed = run({ argv: ['/bin/true'], cwd, features: [failing, after, b] }).done;
  await t.throwsAsync(failed, { message: 'finish failed' });
  t.deepEqual(order, ['b']);
});
