// The bridge to uwrx-init routes both ways: an actor asks uwrx-init, and answers the
// requests of uwrx-init it took over. Here the far end of the channel is a Peer speaking
// the protocol, so the routing can be checked alone (test/deferral.test.ts runs the
// real uwrx-init).
import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { InitBridge, UnknownMessageError } from '../src/actors/init-bridge.js';
import { Peer, PortTransport, Supervisor } from '../src/actors/runtime.js';
import { MSG_EXEC, MSG_EXIT, MSG_PROCS, MSG_SPAWN, PROC_EXEC, PROC_EXIT, PROC_SPAWN, type ExecBody, type ExitBody, type SpawnBody } from '../src/protocol/init-messages.js';

const initUser = new URL('./fixtures/actors/init-user.js', import.meta.url);

function channel(t: import('ava').ExecutionContext) {
  const { port1, port2 } = new MessageChannel();
  const bridge = new InitBridge(new PortTransport(port1));
  const init = new Peer(new PortTransport(port2), 'uwrx-init');
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  return { bridge, init };
}

test('an actor asks uwrx-init and answers uwrx-init\'s requests through the bridge', async (t) => {
  const { bridge, init } = channel(t);
  init.handle('stats', () => ({ deferred: { open: 1, answered: 2, dropped: 0 } }));
  const s = new Supervisor({ startTimeoutMs: 10_000, stopTimeoutMs: 1_000, onActorPeer: (_name, peer) => bridge.serve(peer) });
  t.teardown(async () => {
    await s.stop();
  });
  await s.start([{ name: 'user', module: initUser }]);
  t.deepEqual(await init.request('double', { n: 21 }), { n: 42 });
  t.deepEqual(await s.request('user', 'ask-init'), { deferred: { open: 1, answered: 2, dropped: 0 } });
  // a request nobody took over is answered with an error, not left waiting
  await t.throwsAsync(init.request('triple', { n: 1 }), { message: /no handler for "triple"/ });
});

test('a notification of an unknown type is a protocol error', async (t) => {
  const { bridge, init } = channel(t);
  const seen: string[] = [];
  bridge.on('spawn', (b: { pid: number }) => seen.push(`spawn ${b.pid}`));
  const error = new Promise<Error>((resolve) => bridge.onError(resolve));
  init.notify('spawn', { pid: 2 });
  init.notify('spwan', { pid: 3 });
  const e = await error;
  t.true(e instanceof UnknownMessageError);
  t.is(e.message, 'uwrx-init sent an unknown message "spwan"');
  t.deepEqual(seen, ['spawn 2']);
});

// uwrx-init sends process notices held together as one MSG_PROCS envelope; the bridge
// hands each entry to the spawn, exec and exit listeners as the notice it stands for,
// in order, and an entry of an unknown kind is a protocol error.
test('a procs notice reaches the spawn, exec and exit listeners entry by entry, in order', async (t) => {
  const { bridge, init } = channel(t);
  const seen: unknown[] = [];
  bridge.on(MSG_SPAWN, (b: SpawnBody) => seen.push(['spawn', b]));
  bridge.on(MSG_EXEC, (b: ExecBody) => seen.push(['exec', b]));
  bridge.on(MSG_EXIT, (b: ExitBody) => seen.push(['exit', b]));
  const error = new Promise<Error>((resolve) => bridge.onError(resolve));
  const bytes = (s: string) => new Uint8Array(Buffer.from(s));
  init.notify(MSG_PROCS, [
    [PROC_SPAWN, 2, 1, 0, 5, 1000],
    [PROC_EXEC, 2, bytes('/bin/sh'), [bytes('sh'), bytes('-c')], bytes('/w'), 1001],
    [PROC_SPAWN, 3, 2, 0, 6, 1002],
    [PROC_EXIT, 3, null, 9, 1003],
    [PROC_EXEC, 4, bytes('/bin/true'), [], null, 1004],
    [PROC_EXIT, 2, 0, null, 1005],
  ]);
  init.notify(MSG_SPAWN, { pid: 7, ppid: 2, ordinal: 1, nspid: 9, time: 1006 });
  init.notify(MSG_PROCS, [[7, 2]]);
  const e = await error;
  t.true(e instanceof UnknownMessageError);
  t.is(e.message, 'uwrx-init sent an unknown message "procs entry 7"');
  t.deepEqual(seen, [
    ['spawn', { pid: 2, ppid: 1, ordinal: 0, nspid: 5, time: 1000 }],
    ['exec', { pid: 2, path: bytes('/bin/sh'), argv: [bytes('sh'), bytes('-c')], cwd: bytes('/w'), time: 1001 }],
    ['spawn', { pid: 3, ppid: 2, ordinal: 0, nspid: 6, time: 1002 }],
    ['exit', { pid: 3, code: null, signal: 9, time: 1003 }],
    ['exec', { pid: 4, path: bytes('/bin/true'), argv: [], cwd: null, time: 1004 }],
    ['exit', { pid: 2, code: 0, signal: null, time: 1005 }],
    ['spawn', { pid: 7, ppid: 2, ordinal: 1, nspid: 9, time: 1006 }],
  ]);
});
