// A worker booted ahead of time (src/actors/preboot.ts; bin/uwrx does it for `uwrx run`)
// is taken over by the supervisor when it starts actors of the same modules, and is
// otherwise terminated or left behind without keeping anything alive.
import test from 'ava';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { Supervisor } from '../src/actors/runtime.js';
import { prebootWorker, takePrebooted } from '../src/actors/preboot.js';
import { actorModule } from '../src/actors/modules.js';

const fixtures = new URL('./fixtures/actors/', import.meta.url);
const echo = new URL('echo.js', fixtures);
const relay = new URL('relay.js', fixtures);
const entry = actorModule('worker-entry');

// The prebooted worker lives on globalThis: these tests run one after the other.
test.serial('the supervisor takes over a prebooted worker whose modules match', async (t) => {
  const worker = prebootWorker(entry, [echo, relay], 'uwrx test')!;
  t.truthy(worker);
  t.is(prebootWorker(entry, [echo], 'uwrx test'), undefined, 'one at a time');
  const s = new Supervisor({ startTimeoutMs: 60_000, stopTimeoutMs: 10_000 });
  t.teardown(() => s.stop());
  await s.start([
    { name: 'echo', module: echo, options: { n: 1 }, thread: 'io' },
    { name: 'relay', module: relay, connect: ['echo'], thread: 'io' },
  ]);
  t.is(await s.request('echo', 'threadId'), worker.threadId, 'the actors run in the prebooted thread');
  t.deepEqual(await s.request('echo', 'whoami'), { name: 'echo', options: { n: 1 } });
  // the link handed over after the first message still arrives
  t.is(await s.request('relay', 'relay', 'via relay'), 'via relay');
  t.is(takePrebooted(entry.href, [echo.href, relay.href]), undefined, 'handed out once');
  await s.stop();
});

test.serial('a prebooted worker for other modules is terminated and a new thread used', async (t) => {
  const worker = prebootWorker(entry, [relay], 'uwrx test')!;
  const exited = once(worker, 'exit');
  const s = new Supervisor({ startTimeoutMs: 60_000, stopTimeoutMs: 10_000 });
  t.teardown(() => s.stop());
  await s.start([{ name: 'echo', module: echo, thread: 'io' }]);
  await exited;
  t.not(await s.request('echo', 'threadId'), worker.threadId);
  await s.stop();
});

test.serial('a prebooted worker that failed is not handed out', async (t) => {
  const missing = new URL('no-such-actor.js', fixtures);
  const worker = prebootWorker(entry, [missing], 'uwrx test')!;
  worker.ref(); // unreferenced, it would not keep the test waiting for its end
  await new Promise((resolve) => worker.once('exit', resolve));
  t.is(takePrebooted(entry.href, [missing.href]), undefined);
});

test('a prebooted worker nobody takes does not keep the process alive', async (t) => {
  const script = `import { prebootWorker } from ${JSON.stringify(new URL('../src/actors/preboot.js', import.meta.url).href)};
prebootWorker(new URL(${JSON.stringify(entry.href)}), [new URL(${JSON.stringify(echo.href)})], 'uwrx test');
console.log('started');`;
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve({ stdout })));
  });
  t.is(stdout, 'started\n');
});
