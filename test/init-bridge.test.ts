// The bridge to uwrx-init routes both ways: an actor asks uwrx-init, and answers the
// requests of uwrx-init it took over. Here the far end of the channel is a Peer speaking
// the protocol, so the routing can be checked alone (test/deferral.test.ts runs the
// real uwrx-init).
import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { InitBridge, UnknownMessageError } from '../src/actors/init-bridge.js';
import { Peer, PortTransport, Supervisor } from '../src/actors/runtime.js';

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
