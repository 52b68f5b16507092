// Timers under the default deterministic clocks (docs/reproducibility.md, "Timed
// waits"): a wait with a timeout lasts as long in real time as it would natively, and
// the program's virtual clocks advance by the time it waited, the same on --replay.
// Real time is read from /proc/uptime (10 ms resolution), which no clock interception
// touches; the bounds on it are loose on purpose (the machine may be loaded): the
// ratio to native is a benchmark (`npm run bench -- timers`).
import test from 'ava';
import { rmSync } from 'node:fs';
import { buildDriver } from './native/cc.js';
import { scratchDir, uwrx } from './helpers/uwrx.js';

const waits = buildDriver('timed_waits', ['test/native/timed_waits.c'], ['-pthread']);
const staticWaits = buildDriver('timed_waits_static', ['test/native/timed_waits.c'], ['-pthread', '-static']);

async function runOk(cwd: string, args: string[]): Promise<string> {
  const r = await uwrx(['run', '-q', ...args], { cwd });
  if (r.status !== 0) throw new Error(`uwrx run ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** Lines "name virtual_ms real_ms" -> name -> [virtual, real]. */
function table(out: string): Map<string, [number, number]> {
  const rows = new Map<string, [number, number]>();
  for (const line of out.trim().split('\n')) {
    const [name, virtual, real] = line.split(' ');
    rows.set(name!, [Number(virtual), Number(real)]);
  }
  return rows;
}

const KINDS = [
  'nanosleep', 'clock_nanosleep', 'clock_nanosleep_abs', 'clock_nanosleep_abs_realtime', 'poll', 'ppoll',
  'select', 'pselect', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'futex_wait', 'futex_wait_bitset',
  'pthread_cond_timedwait', 'sem_timedwait', 'rt_sigtimedwait', 'setitimer', 'timerfd_abs',
];

test.serial('every kind of timed wait lasts its time and advances the virtual clock by it, the same on --replay', async (t) => {
  const cwd = scratchDir('uwrx-timers-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const first = await runOk(cwd, ['--step', '0', '--', waits, '150']);
  const rows = table(first);
  t.deepEqual([...rows.keys()], KINDS);
  for (const [name, [virtual, real]] of rows) {
    // the wait itself plus the one clock read that ends it (10 us)
    t.is(virtual, 150.01, `${name}: virtual elapsed`);
    t.true(real >= 140 && real < 1500, `${name}: real elapsed ${real} ms`);
  }
  const replay = await runOk(cwd, ['--replay', 'build/0/0']);
  t.deepEqual([...table(replay)].map(([name, [virtual]]) => [name, virtual]), [...rows].map(([name, [virtual]]) => [name, virtual]));
});

test.serial('a static program keeps the real clocks of the vDSO and its deadlines are left alone', async (t) => {
  const cwd = scratchDir('uwrx-timers-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const rows = table(await runOk(cwd, ['--', staticWaits, '100']));
  t.deepEqual([...rows.keys()], KINDS);
  for (const [name, [virtual, real]] of rows) {
    t.true(virtual >= 99 && virtual < 1000, `${name}: real clocks, ${virtual} ms`);
    t.true(real >= 90 && real < 1000, `${name}: real elapsed ${real} ms`);
  }
});

const uptime = "float(open('/proc/uptime').read().split()[0])";

test.serial('python: time.sleep, asyncio.sleep and Event.wait wait their time and report it', async (t) => {
  const cwd = scratchDir('uwrx-timers-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const script = [
    'import asyncio, threading, time',
    `def uptime(): return ${uptime}`,
    'def measure(name, wait, f):',
    '    r, v = uptime(), time.monotonic()',
    '    f()',
    "    print(name, wait, time.monotonic() - v, uptime() - r)",
    "measure('sleep', 1, lambda: time.sleep(1))",
    "measure('asyncio', 0.3, lambda: asyncio.run(asyncio.sleep(0.3)))",
    "measure('event', 1, lambda: threading.Event().wait(1))",
  ].join('\n');
  const out = await runOk(cwd, ['--', 'python3', '-c', script]);
  const lines = out.trim().split('\n');
  t.is(lines.length, 3);
  for (const line of lines) {
    const [name, wait, virtual, real] = line.split(' ');
    const w = Number(wait);
    t.true(Number(virtual) >= w && Number(virtual) < w * 1.1, `${name}: virtual ${virtual} s for ${wait} s`);
    t.true(Number(real) >= w - 0.02 && Number(real) < w * 10, `${name}: real ${real} s for ${wait} s`);
  }
});

test.serial('node: setTimeout(f, 1000) fires after a second of real and of virtual time', async (t) => {
  const cwd = scratchDir('uwrx-timers-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const script = [
    "const fs = require('fs');",
    "const uptime = () => Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);",
    'const r = uptime(), v = Date.now();',
    'setTimeout(() => console.log(Date.now() - v, uptime() - r), 1000);',
  ].join('\n');
  const [virtual, real] = (await runOk(cwd, ['--', 'node', '-e', script])).trim().split(' ').map(Number);
  t.true(virtual! >= 1000 && virtual! < 1100, `virtual ${virtual} ms`);
  t.true(real! >= 0.98 && real! < 10, `real ${real} s`);
});
