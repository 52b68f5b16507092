import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, threadId } from 'node:worker_threads';
import {
  ActorFailedError,
  FrameDecoder,
  MAX_FRAME_BYTES,
  Peer,
  PortTransport,
  RemoteError,
  RequestTimeoutError,
  SocketTransport,
  Supervisor,
  decodeEnvelope,
  encodeEnvelope,
  frame,
} from '../src/actors/runtime.js';
import { native } from '../src/native.js';
import { localTransportPair } from '../src/actors/local-transport.js';

const fixtures = new URL('./fixtures/actors/', import.meta.url);
const echo = new URL('echo.js', fixtures);
const failingStart = new URL('failing-start.js', fixtures);
const relay = new URL('relay.js', fixtures);

/** A supervisor that is always stopped when the test ends, pass or fail. Starting a
 * worker thread can take seconds on a loaded machine: the start and stop timeouts are
 * generous wherever a test does not measure them. */
function supervisor(t: import('ava').ExecutionContext, options = {}): Supervisor {
  const s = new Supervisor({ startTimeoutMs: 60_000, stopTimeoutMs: 10_000, ...options });
  t.teardown(async () => {
    await s.stop();
  });
  return s;
}

function bytes(...parts: Array<number | string>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : Buffer.from(p, 'latin1'))));
}

// --- FrameDecoder -----------------------------------------------------------------

test('FrameDecoder reassembles a frame split across chunks, even inside the header', (t) => {
  const whole = frame(Buffer.from('hello world'));
  const decoder = new FrameDecoder();
  const frames: Buffer[] = [];
  for (let i = 0; i < whole.length; i++) frames.push(...decoder.push(whole.subarray(i, i + 1)));
  t.deepEqual(frames.map(String), ['hello world']);
  t.is(decoder.buffered, 0);
});

test('FrameDecoder splits coalesced frames, including empty ones and a partial tail', (t) => {
  const tail = frame(Buffer.from('third'));
  const chunk = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.alloc(0)), frame(Buffer.from('two')), tail.subarray(0, 6)]);
  const decoder = new FrameDecoder();
  t.deepEqual(decoder.push(chunk).map(String), ['one', '', 'two']);
  t.is(decoder.buffered, 6);
  t.deepEqual(decoder.push(tail.subarray(6)).map(String), ['third']);
  t.is(decoder.buffered, 0);
});

// A socket read into one reused buffer (SocketTransport.fromFd): the frames and the
// byte strings decoded from them (views into their frame) outlive the next read over it.
test('FrameDecoder copies frames out of a reused read buffer: what was decoded survives the next read', (t) => {
  const message = (n: number) => frame(encodeEnvelope({ type: 'exec', body: { pid: n, path: Buffer.from(`/bin/p${n}`), argv: [Buffer.from(`a${n}`), Buffer.from(`b${n}`)] } }));
  const tail = message(3);
  const read = Buffer.alloc(256);
  const first = Buffer.concat([message(1), message(2), tail.subarray(0, 5)]);
  first.copy(read);
  const decoder = new FrameDecoder();
  const bodies = decoder.push(read.subarray(0, first.length), true).map((f) => decodeEnvelope(f).body);
  read.fill(0xee);
  tail.subarray(5).copy(read);
  bodies.push(...decoder.push(read.subarray(0, tail.length - 5), true).map((f) => decodeEnvelope(f).body));
  read.fill(0xdd);
  t.deepEqual(
    bodies.map((b) => {
      const { pid, path, argv } = b as { pid: number; path: Buffer; argv: Buffer[] };
      return [pid, String(path), ...argv.map(String)];
    }),
    [
      [1, '/bin/p1', 'a1', 'b1'],
      [2, '/bin/p2', 'a2', 'b2'],
      [3, '/bin/p3', 'a3', 'b3'],
    ],
  );
});

test('FrameDecoder rejects an oversized frame from its header alone', (t) => {
  const header = Buffer.alloc(4);
  header.writeUInt32LE(MAX_FRAME_BYTES + 1, 0);
  const decoder = new FrameDecoder();
  t.throws(() => decoder.push(header), { message: /exceeds/ });
});

// --- Peer over a MessagePort, same thread ------------------------------------------

test('Peer: request, error response, missing handler, notification', async (t) => {
  const { port1, port2 } = new MessageChannel();
  const a = new Peer(new PortTransport(port1), 'a');
  const b = new Peer(new PortTransport(port2), 'b');
  t.teardown(() => a.close());
  b.handle('add', ({ x, y }: { x: number; y: number }) => x + y);
  b.handle('boom', async () => {
    throw new Error('disk full');
  });
  const heard = new Promise((resolve) => b.on('hello', resolve));

  t.is(await a.request('add', { x: 2, y: 3 }), 5);
  const remote = await t.throwsAsync(a.request('boom'), { instanceOf: RemoteError, message: 'disk full' });
  t.is(remote.requestType, 'boom');
  await t.throwsAsync(a.request('nope'), { message: 'b: no handler for "nope"' });
  a.notify('hello', { n: 1 });
  t.deepEqual(await heard, { n: 1 });
});

test('Peer: a request times out with its type and delay in the message', async (t) => {
  const { port1, port2 } = new MessageChannel();
  const a = new Peer(new PortTransport(port1), 'a');
  const b = new Peer(new PortTransport(port2), 'b');
  t.teardown(() => a.close());
  b.handle('later', () => new Promise((resolve) => setTimeout(() => resolve('late'), 1_000)));
  await t.throwsAsync(a.request('later', undefined, { timeoutMs: 50 }), {
    instanceOf: RequestTimeoutError,
    message: 'request "later" to a timed out after 50 ms',
  });
  // The late answer is dropped, and the peer keeps working.
  b.handle('now', () => 'now');
  t.is(await a.request('now'), 'now');
});

test('Peer: closing the transport rejects every pending request', async (t) => {
  const { port1, port2 } = new MessageChannel();
  const a = new Peer(new PortTransport(port1), 'uwrx-init');
  const b = new Peer(new PortTransport(port2), 'b');
  b.handle('never', () => new Promise(() => {}));
  const pending = [a.request('never'), a.request('never', 1)];
  await new Promise((resolve) => setTimeout(resolve, 20));
  b.close();
  for (const p of pending) {
    await t.throwsAsync(p, { message: /^request "never" to uwrx-init failed: connection closed/ });
  }
  await t.throwsAsync(a.request('after'), { message: /connection closed/ });
});

// --- Peer over a local transport (two actors of one thread) ------------------------

test('a local link carries requests and notifications in order; a message is a copy unless its buffers are handed over', async (t) => {
  const [a, b] = localTransportPair();
  const left = new Peer(a, 'left');
  const right = new Peer(b, 'right');
  const seen: unknown[] = [];
  right.on('note', (body) => seen.push(body));
  right.handle('double', (n: number) => n * 2);
  const body = { list: [1] };
  left.notify('note', body);
  body.list.push(2); // after sending: the receiver got a copy
  const bytes = Buffer.from('handed over');
  left.notify('note', { bytes }, [bytes.buffer as ArrayBuffer]);
  left.notify('note', 3);
  // a body of primitives alone is copied field by field: the same as a clone
  const flat = { watermark: 5, none: null, gone: undefined, name: 'x', big: 1n };
  left.notify('note', flat);
  flat.watermark = 6;
  t.is(await left.request('double', 21), 42);
  t.deepEqual(seen.slice(0, 1), [{ list: [1] }]);
  t.is((seen[1] as { bytes: Buffer }).bytes, bytes, 'the same object, not a copy');
  t.is(seen[2], 3);
  t.deepEqual(seen[3], structuredClone({ watermark: 5, none: null, gone: undefined, name: 'x', big: 1n }));
  t.not(seen[3], flat);
  t.true('gone' in (seen[3] as object), 'an undefined field stays, as in a clone');
  // what a channel cannot carry fails at the send, as before
  const failure = (send: () => void): string | undefined => {
    try {
      send();
    } catch (err) {
      return (err as { name?: string }).name; // a DOMException, which is not an Error
    }
    return undefined;
  };
  t.is(failure(() => left.notify('note', { f: () => 1 })), 'DataCloneError');
  t.is(failure(() => left.notify('note', { s: Symbol('s') })), 'DataCloneError');
  // closing either end closes both, and a pending request fails
  right.handle('never', () => new Promise(() => {}));
  const pending = left.request('never');
  right.close();
  await t.throwsAsync(pending, { message: /connection closed/ });
  t.true(left.isClosed);
  t.throws(() => left.notify('note', 4), { message: /transport is closed/ });
});

// --- Actors in worker threads -------------------------------------------------------

test('round trip over MessagePort between the supervisor and an actor thread', async (t) => {
  const s = supervisor(t);
  const started: string[] = [];
  s.on('actor-started', (name) => started.push(name));
  await s.start([{ name: 'merger', module: echo, options: { level: 3 } }]);
  t.deepEqual(started, ['merger']);
  t.deepEqual(await s.request('merger', 'echo', { bytes: new Uint8Array([1, 2, 3]), n: 42 }), {
    bytes: new Uint8Array([1, 2, 3]),
    n: 42,
  });
  t.deepEqual(await s.request('merger', 'whoami'), { name: 'merger', options: { level: 3 } });
  await t.throwsAsync(s.request('merger', 'fail', { message: 'bad event' }), { message: 'bad event' });
  const pong = new Promise((resolve) => s.peer('merger').on('pong', resolve));
  s.peer('merger').notify('ping', 'x');
  t.is(await pong, 'x');
  t.is(await s.stop(), undefined);
  t.deepEqual(s.live, []);
});

test('a request to an actor times out', async (t) => {
  const s = supervisor(t);
  await s.start([{ name: 'storage', module: echo }]);
  await t.throwsAsync(s.request('storage', 'slow', { ms: 2_000 }, { timeoutMs: 100 }), {
    message: 'request "slow" to actor storage timed out after 100 ms',
  });
});

test('actors start in order, stop in reverse order, and talk over a direct link', async (t) => {
  const s = supervisor(t);
  const events: string[] = [];
  s.on('actor-started', (name) => events.push(`started ${name}`));
  s.on('actor-stopped', (name) => events.push(`stopped ${name}`));
  await s.start([
    { name: 'echo', module: echo },
    { name: 'relay', module: relay, connect: ['echo'] },
  ]);
  t.deepEqual(await s.request('relay', 'relay', ['via', 'link']), ['via', 'link']);
  await s.stop();
  t.deepEqual(events, ['started echo', 'started relay', 'stopped relay', 'stopped echo']);
});

test('actors naming one thread share a worker, keep their own state, and stop in order', async (t) => {
  const s = supervisor(t);
  const events: string[] = [];
  s.on('actor-stopped', (name) => events.push(`stopped ${name}`));
  await s.start([
    { name: 'storage', module: echo, options: { n: 1 }, thread: 'io' },
    { name: 'merger', module: echo },
    { name: 'echo', module: echo, options: { n: 2 }, thread: 'io' },
    { name: 'relay', module: relay, connect: ['echo'], thread: 'io' },
  ]);
  const [a, b, c] = await Promise.all(['storage', 'echo', 'merger'].map((n) => s.request<number>(n, 'threadId')));
  t.is(a, b);
  t.not(a, c);
  t.like(await s.request('storage', 'whoami'), { name: 'storage', options: { n: 1 } });
  t.like(await s.request('echo', 'whoami'), { name: 'echo', options: { n: 2 } });
  // a link between two actors of one thread works like any other
  t.deepEqual(await s.request('relay', 'relay', ['same', 'thread']), ['same', 'thread']);
  await s.stop();
  t.deepEqual(events, ['stopped relay', 'stopped echo', 'stopped merger', 'stopped storage']);
  t.deepEqual(s.live, []);
});

test('a crash in a shared thread fails every actor it hosts', async (t) => {
  const s = supervisor(t);
  const failed: string[] = [];
  s.on('actor-failed', (name) => failed.push(name));
  const end = new Promise((resolve) => s.on('stopped', resolve));
  await s.start([
    { name: 'storage', module: echo, thread: 'io' },
    { name: 'collector', module: echo, thread: 'io' },
  ]);
  await s.request('collector', 'exit', { code: 3 }).catch(() => {});
  await end;
  t.deepEqual(failed.sort(), ['collector', 'storage']);
  t.deepEqual(s.live, []);
});

test('an actor whose start() throws fails the start, and the others are stopped', async (t) => {
  const s = supervisor(t);
  const failed: string[] = [];
  s.on('actor-failed', (_name, error) => failed.push(error.message));
  const stopped = new Promise((resolve) => s.on('stopped', resolve));
  const error = await t.throwsAsync(
    s.start([
      { name: 'storage', module: echo },
      { name: 'db', module: failingStart },
      { name: 'never', module: echo },
    ]),
    { instanceOf: ActorFailedError, message: 'actor db failed: cannot open database' },
  );
  t.is(error.actor, 'db');
  t.deepEqual(failed, ['actor db failed: cannot open database']);
  t.is(await stopped, error);
  t.deepEqual(s.live, []);
  t.throws(() => s.peer('never'), { message: 'no actor named "never"' });
});

test('stop() during start() ends start() with an error and leaves nothing running', async (t) => {
  const s = supervisor(t);
  const starting = s.start([
    { name: 'storage', module: echo },
    { name: 'merger', module: echo },
  ]);
  s.once('actor-started', () => void s.stop());
  await t.throwsAsync(starting, { message: /^stopped (before|while) actor "merger"/ });
  t.deepEqual(s.live, []);
});

test('an actor whose start() never finishes is failed after the start timeout', async (t) => {
  const s = supervisor(t, { startTimeoutMs: 200 });
  await t.throwsAsync(s.start([{ name: 'dns', module: echo, options: { hangOnStart: true } }]), {
    message: 'actor dns failed: start() did not finish within 200 ms',
  });
  t.deepEqual(s.live, []);
});

test('a link to an actor that is not running is refused and nothing is left running', async (t) => {
  const s = supervisor(t);
  await t.throwsAsync(
    s.start([
      { name: 'echo', module: echo },
      { name: 'relay', module: relay, connect: ['storage'] },
    ]),
    { message: 'actor "relay" connects to "storage", which is not running' },
  );
  t.deepEqual(s.live, []);
});

test('an actor module that cannot be loaded is reported with its name', async (t) => {
  const s = supervisor(t);
  await t.throwsAsync(s.start([{ name: 'dns', module: new URL('missing.js', fixtures) }]), {
    instanceOf: ActorFailedError,
    message: /^actor dns failed: Cannot find module/,
  });
  t.deepEqual(s.live, []);
});

for (const [how, request, reason] of [
  ['throws later', 'crashLater', 'out of trace buffer'],
  ['rejects unhandled', 'rejectLater', 'out of trace buffer'],
  ['calls process.exit', 'exit', 'worker exited unexpectedly with code 7'],
] as const) {
  test(`an actor that ${how} while running is reported and the others stop`, async (t) => {
    const s = supervisor(t);
    const stopped: string[] = [];
    s.on('actor-stopped', (name) => stopped.push(name));
    const failure = new Promise<ActorFailedError>((resolve) => s.on('actor-failed', (_name, error) => resolve(error)));
    const end = new Promise((resolve) => s.on('stopped', resolve));
    await s.start([
      { name: 'storage', module: echo },
      { name: 'merger', module: echo },
      { name: 'collector', module: echo },
    ]);
    const body = request === 'exit' ? { code: 7 } : { message: 'out of trace buffer' };
    await s.request('merger', request, body).catch(() => {});
    t.is((await failure).message, `actor merger failed: ${reason}`);
    t.is(await end, await failure);
    t.deepEqual(stopped, ['collector', 'storage']);
    t.deepEqual(s.live, []);
  });
}

test('a stop() that hangs is cut short by terminating the worker', async (t) => {
  const s = supervisor(t, { stopTimeoutMs: 200 });
  await s.start([{ name: 'proxy', module: echo, options: { hangOnStop: true } }]);
  const started = Date.now();
  const failure = await s.stop();
  t.true(Date.now() - started < 5_000);
  t.is(failure?.message, 'actor proxy failed: stop() did not finish within 200 ms; its thread was terminated');
  t.deepEqual(s.live, []);
});

// --- Actors hosted on the main thread ------------------------------------------------

test('actors started on the main thread answer, link and stop as in a thread of their own', async (t) => {
  const s = supervisor(t);
  const events: string[] = [];
  s.on('actor-started', (name) => events.push(`started ${name}`));
  s.on('actor-stopped', (name) => events.push(`stopped ${name}`));
  await s.start([{ name: 'storage', module: echo, options: { n: 0 } }]);
  await s.start(
    [
      { name: 'echo', module: echo, options: { n: 1 }, thread: 'io' },
      { name: 'relay', module: relay, connect: ['echo'], thread: 'io' },
    ],
    { mainThread: true },
  );
  // a worker thread's actor linked to one on the main thread
  await s.start([{ name: 'collector', module: relay, connect: ['echo'] }]);
  t.deepEqual(events, ['started storage', 'started echo', 'started relay', 'started collector']);
  t.is(await s.request('echo', 'threadId'), threadId, 'on this thread');
  t.not(await s.request('storage', 'threadId'), threadId);
  t.deepEqual(await s.request('echo', 'whoami'), { name: 'echo', options: { n: 1 } });
  t.deepEqual(await s.request('echo', 'echo', { bytes: new Uint8Array([1, 2, 3]) }), { bytes: new Uint8Array([1, 2, 3]) });
  await t.throwsAsync(s.request('echo', 'fail', { message: 'bad event' }), { message: 'bad event' });
  t.deepEqual(await s.request('relay', 'relay', ['main', 'to', 'main']), ['main', 'to', 'main']);
  t.deepEqual(await s.request('collector', 'relay', ['worker', 'to', 'main']), ['worker', 'to', 'main']);
  t.is(await s.stop(), undefined);
  t.deepEqual(events.slice(4), ['stopped collector', 'stopped relay', 'stopped echo', 'stopped storage']);
  t.deepEqual(s.live, []);
});

test('on the main thread, a start() that throws or a module that cannot be loaded fails the actor', async (t) => {
  const s = supervisor(t);
  await t.throwsAsync(s.start([{ name: 'db', module: failingStart }], { mainThread: true }), {
    instanceOf: ActorFailedError,
    message: 'actor db failed: cannot open database',
  });
  t.deepEqual(s.live, []);
  const other = supervisor(t);
  await t.throwsAsync(other.start([{ name: 'dns', module: new URL('missing.js', fixtures) }], { mainThread: true }), {
    instanceOf: ActorFailedError,
    message: /^actor dns failed: Cannot find module/,
  });
  t.deepEqual(other.live, []);
});

test('on the main thread, a notification listener that throws fails its actors as a crashed thread would, not the process', async (t) => {
  const s = supervisor(t);
  const stopped: string[] = [];
  s.on('actor-stopped', (name) => stopped.push(name));
  const failure = new Promise<ActorFailedError>((resolve) => s.on('actor-failed', (_name, error) => resolve(error)));
  const end = new Promise((resolve) => s.on('stopped', resolve));
  await s.start([{ name: 'storage', module: echo }]);
  await s.start([{ name: 'merger', module: echo, thread: 'io' }], { mainThread: true });
  s.peer('merger').notify('explode', { message: 'ENOSPC: no space left on device, write' });
  t.is((await failure).message, 'actor merger failed: ENOSPC: no space left on device, write');
  t.is(await end, await failure);
  t.deepEqual(stopped, ['storage']);
  t.deepEqual(s.live, []);
});

test('actors on the main thread leave nothing behind: the process ends by itself after stop()', async (t) => {
  // a stop() that hangs is cut short as for a thread: the actor's channels are closed
  const script = `import { Supervisor } from ${JSON.stringify(new URL('../src/actors/runtime.js', import.meta.url).href)};
const s = new Supervisor({ stopTimeoutMs: 300 });
await s.start([{ name: 'merger', module: new URL(${JSON.stringify(echo.href)}) }, { name: 'collector', module: new URL(${JSON.stringify(echo.href)}), options: { hangOnStop: true } }], { mainThread: true });
console.log(await s.request('merger', 'echo', 'answered'));
const failure = await s.stop();
console.log(failure?.message ?? 'no failure', s.live.length);`;
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve({ stdout })));
  });
  t.is(stdout, 'answered\nactor collector failed: stop() did not finish within 300 ms; its thread was terminated 0\n');
});

test('a start() after stop() is refused and leaves no worker behind', async (t) => {
  const script = `import { Supervisor } from ${JSON.stringify(new URL('../src/actors/runtime.js', import.meta.url).href)};
const s = new Supervisor();
await s.stop();
await s.start([{ name: 'echo', module: new URL(${JSON.stringify(echo.href)}) }]).catch((err) => console.log(err.message));`;
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve({ stdout })));
  });
  t.is(stdout, 'stopped before actor "echo" started\n');
});

// The process-level story: a crash ends the whole run by itself, with a clear line.
for (const how of ['throw', 'reject', 'exit']) {
  test(`a process whose actor crashes (${how}) exits on its own with the failure`, async (t) => {
    const program = fileURLToPath(new URL('crash-run.js', fixtures));
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [program, how], { timeout: 15_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (error as { code?: number }).code ?? null : 0, stdout, stderr }),
      );
    });
    const reason = how === 'exit' ? 'worker exited unexpectedly with code 7' : 'out of trace buffer';
    t.is(stderr, `uwrx: actor merger failed: ${reason}\n`);
    // the storage actor stops within 300 ms unless the machine is loaded: then it is
    // terminated as well, which is the same outcome
    const events = stdout.replace('event: actor storage failed: stop() did not finish within 300 ms; its thread was terminated\n', '');
    t.is(
      events,
      `event: actor merger failed: ${reason}\n` +
        'event: actor collector failed: stop() did not finish within 300 ms; its thread was terminated\n' +
        'stopped, live: []\n',
    );
    t.is(code, 1);
  });
}

// --- Unix sockets ---------------------------------------------------------------------

test('round trip over a unix socket between two SocketTransport peers', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'uwrx-actors-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'init.sock');
  const server = net.createServer();
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));

  const client = new Peer(new SocketTransport(net.connect(socketPath)), 'uwrx-init');
  const serverPeer = new Peer(new SocketTransport(await accepted), 'manager');
  serverPeer.handle('stat', (body: { path: string }) => ({ path: body.path, size: 4096 }));
  client.handle('version', () => 1);

  t.deepEqual(await client.request('stat', { path: '/etc/hostname' }), { path: '/etc/hostname', size: 4096 });
  t.is(await serverPeer.request('version'), 1);
  // Large bodies cross many socket reads.
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  serverPeer.handle('echo', (body) => body);
  // (Buffer.equals: ava's deepEqual is slow on megabytes.)
  t.true(Buffer.from((await client.request('echo', big)) as Uint8Array).equals(big));

  const pending = client.request('stat', { path: '/slow' }, { timeoutMs: 5_000 });
  serverPeer.close();
  await t.throwsAsync(pending, { message: /^request "stat" to uwrx-init failed: connection closed/ });
});

test('round trip over the addon socketPair', async (t) => {
  const pair = native().socketPair();
  const a = new Peer(new SocketTransport(new net.Socket({ fd: pair[0], readable: true, writable: true })), 'a');
  const b = new Peer(new SocketTransport(new net.Socket({ fd: pair[1], readable: true, writable: true })), 'b');
  t.teardown(() => {
    a.close();
    b.close();
  });
  b.handle('echo', (body) => body);
  t.deepEqual(await a.request('echo', { fd: pair[1] }), { fd: pair[1] });
});

test('a transport reading into one reused buffer leaves every message its own bytes', async (t) => {
  // uwrx-init's side: frames with byte strings, written a few whole frames at a time
  // (its usual writes) and now and then cut anywhere, even in a header, reads apart; the
  // messages kept by the listener must not change when later reads reuse the buffer.
  const pair = native().socketPair();
  const reader = SocketTransport.fromFd(pair[0]);
  const writer = new net.Socket({ fd: pair[1], readable: true, writable: true });
  t.teardown(() => {
    reader.close();
    writer.destroy();
  });
  const sent = Array.from({ length: 400 }, (_, i) => ({
    type: 'exec',
    body: { pid: i, argv: [Buffer.alloc(1 + (i % 7), i), Buffer.alloc(1 + ((i * 37) % 3000), 255 - (i % 256))], cwd: Buffer.from(`/dir/${i}`) },
  }));
  const received: Array<{ type: string; body: unknown }> = [];
  const all = new Promise<void>((resolve) => reader.onMessage((m) => (received.push(m as never), received.length === sent.length && resolve())));
  const frames = sent.map((m) => frame(encodeEnvelope(m)));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 2));
  for (let i = 0, group = 1; i < frames.length; i += group, group = (group % 9) + 1) {
    const bytes = Buffer.concat(frames.slice(i, i + group));
    if (group % 4 === 0) {
      const cut = 2 + (i % (bytes.length - 2));
      writer.write(bytes.subarray(0, cut));
      await settle();
      writer.write(bytes.subarray(cut));
    } else writer.write(bytes);
    await settle();
  }
  await all;
  t.is(received.length, sent.length);
  for (let i = 0; i < sent.length; i++) {
    const body = received[i]!.body as { pid: number; argv: Uint8Array[]; cwd: Uint8Array };
    t.is(body.pid, i);
    t.true(Buffer.from(body.cwd).equals(sent[i]!.body.cwd));
    t.true(body.argv.every((a, j) => Buffer.from(a).equals(sent[i]!.body.argv[j]!)), `message ${i}`);
  }
});

test('the wire format is what a small C reader expects: u32 LE length, plain msgpack map', async (t) => {
  // A request as the TS side sends it, byte for byte: fixmap {type, id, body}.
  t.deepEqual(
    encodeEnvelope({ type: 'ping', id: 1, body: 'x' }),
    bytes(0x83, 0xa4, 'type', 0xa4, 'ping', 0xa2, 'id', 0x01, 0xa4, 'body', 0xa1, 'x'),
  );

  // A C-like peer: raw frames written by hand, one byte at a time.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'uwrx-actors-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'c.sock');
  const server = net.createServer((socket) => {
    const peer = new Peer(new SocketTransport(socket), 'c-peer');
    peer.handle('ping', (body) => `pong ${String(body)}`);
  });
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));

  const raw = net.connect(socketPath);
  t.teardown(() => raw.destroy());
  const payload = bytes(0x83, 0xa4, 'type', 0xa4, 'ping', 0xa2, 'id', 0x07, 0xa4, 'body', 0xa1, 'x');
  const header = Buffer.alloc(4);
  header.writeUInt32LE(payload.length, 0);
  const wire = Buffer.concat([header, payload]);
  const received = new Promise<Buffer>((resolve) => {
    let data = Buffer.alloc(0);
    raw.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.length >= 4 && data.length >= 4 + data.readUInt32LE(0)) resolve(data);
    });
  });
  for (const byte of wire) {
    raw.write(Buffer.from([byte]));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const response = await received;
  const length = response.readUInt32LE(0);
  t.is(response.length, 4 + length);
  const responsePayload = response.subarray(4);
  t.is(responsePayload[0]! & 0xf0, 0x80, 'a fixmap, no msgpackr record extension');
  t.deepEqual(decodeEnvelope(responsePayload), { type: 'ping', re: 7, body: 'pong x' });
});

test('a socket peer that sends an oversized frame is disconnected with the reason', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'uwrx-actors-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'bad.sock');
  const closed = new Promise<Error | undefined>((resolve) => {
    const server = net.createServer((socket) => new Peer(new SocketTransport(socket), 'bad').onClose(resolve));
    t.teardown(() => server.close());
    server.listen(socketPath, () => {
      const raw = net.connect(socketPath);
      raw.on('error', () => {});
      const header = Buffer.alloc(4);
      header.writeUInt32LE(0xffffffff, 0);
      raw.write(header);
      t.teardown(() => raw.destroy());
    });
  });
  t.regex((await closed)?.message ?? '', /frame of 4294967295 bytes exceeds/);
});
