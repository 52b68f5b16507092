// Pure parts of partial rebuild: which program names are on the list, how the
// environment is compared, and the policy's comparison against a directory standing for
// the sandbox's root.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_SKIPPABLE, isSkippablePath, skippableNames } from '../src/rebuild/skippable.js';
import { ENV_IGNORED, ReplayPolicy, firstEnvDifference, type OverlayState } from '../src/rebuild/decide.js';
import { HashCache } from '../src/rebuild/hashes.js';
import { REBUILD_INDEX_VERSION, openRebuildIndex, writeRebuildIndex, type RebuildEntry, type StartedProcess } from '../src/rebuild/index-file.js';

test('program names match as they are, without the target prefix and version suffix, and by prefix*', (t) => {
  const names = DEFAULT_SKIPPABLE;
  for (const p of ['/usr/bin/gcc', '/usr/bin/x86_64-linux-gnu-gcc-12', 'cc', '/usr/lib/gcc/x86_64-linux-gnu/12/cc1',
    '/usr/bin/x86_64-linux-gnu-ld.bfd', 'ld.gold', '/usr/bin/aarch64-linux-gnu-as', 'clang++-16', 'x86_64-linux-gnu-ar']) {
    t.true(isSkippablePath(p, names), p);
  }
  for (const p of ['/usr/bin/make', '/bin/sh', 'gcc-ar', 'ldd', 'ccache', 'cc1obj', '/usr/bin/x86_64-linux-gnu-gcc-nm-12']) {
    t.false(isSkippablePath(p, names), p);
  }
});

test('the list is the defaults plus the added names minus the removed ones', (t) => {
  const names = skippableNames({ skippable: ['rustc', 'gcc'], notSkippable: ['ld.*', 'ar'] });
  t.true(names.includes('rustc'));
  t.false(names.includes('ld.*'));
  t.false(names.includes('ar'));
  t.is(names.filter((n) => n === 'gcc').length, 1);
});

test('the environment is compared by variable, without the ignored ones', (t) => {
  t.is(firstEnvDifference(['A=1', 'B=2'], ['B=2', 'A=1']), undefined);
  t.is(firstEnvDifference(['A=1', 'MAKEFLAGS= -j2 --jobserver-auth=3,4'], ['A=1', 'MAKEFLAGS=--jobserver-auth=fifo:/tmp/x']), undefined);
  t.is(firstEnvDifference(['A=1', 'CPATH=/x'], ['A=1']), 'CPATH');
  t.is(firstEnvDifference(['SOURCE_DATE_EPOCH=1'], ['SOURCE_DATE_EPOCH=2']), 'SOURCE_DATE_EPOCH');
  t.true(ENV_IGNORED.includes('MAKEFLAGS'));
  t.is(firstEnvDifference(['UWRX_DEBUG_TIMING=1'], []), undefined);
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

test('an input in an overlay no process touched is looked at once per run; a touched overlay or a link is looked at again', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'uwrx-policy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'root');
  mkdirSync(path.join(root, 'sys', 'inc'), { recursive: true });
  writeFileSync(path.join(root, 'sys', 'inc', 'h.h'), 'one');
  writeFileSync(path.join(root, 'sys', 'inc', 'target.h'), 'two');
  symlinkSync('inc/target.h', path.join(root, 'sys', 'via-link.h'));
  const started: StartedProcess = { pid: 5, seed: null, exe: '/usr/bin/cc1', argv: ['cc1', 'x.c'], cwd: '/w', env: ['A=1'] };
  const entry = (pid: number): RebuildEntry => ({
    ...started,
    pid,
    decision: 'ran',
    reason: 'not a replay',
    status: 0,
    inputs: [
      ['read', '/sys/inc/h.h', sha256('one')],
      ['missing', '/sys/inc/absent.h', ''],
      ['read', '/sys/via-link.h', sha256('two')],
    ],
    outputs: [],
    stdio: { pids: [pid], ranges: [] },
  });
  const attempt = path.join(dir, 'attempt');
  mkdirSync(attempt);
  // one recorded process stands for one skip: enough of them for every decision below
  await writeRebuildIndex(attempt, { version: REBUILD_INDEX_VERSION, skippable: ['cc1'], processes: [2, 3, 4, 5, 6].map(entry) });
  const policy = new ReplayPolicy(attempt, openRebuildIndex(attempt)!, new HashCache());
  const untouched: OverlayState = [['/sys', false], ['/w', true]];
  const touched: OverlayState = [['/sys', true], ['/w', true]];

  t.true(policy.decide(started, root, untouched).skip, 'nothing changed');
  // a change no process of the run made (the overlay is untouched): the answer it had
  writeFileSync(path.join(root, 'sys', 'inc', 'h.h'), 'one, edited');
  t.true(policy.decide(started, root, untouched).skip, 'settled: not looked at again');
  // once a process asked to change something in it, every path there is looked at again
  const ran = policy.decide(started, root, touched);
  t.false(ran.skip);
  t.is(ran.reason, '/sys/inc/h.h changed');
  writeFileSync(path.join(root, 'sys', 'inc', 'h.h'), 'one');
  // a path reached through a link is never settled: the link may lead elsewhere
  writeFileSync(path.join(root, 'sys', 'inc', 'target.h'), 'two, edited');
  const viaLink = policy.decide(started, root, untouched);
  t.false(viaLink.skip);
  t.is(viaLink.reason, '/sys/via-link.h changed');
  // without the overlays' state (no file record), nothing is settled
  writeFileSync(path.join(root, 'sys', 'inc', 'target.h'), 'two');
  writeFileSync(path.join(root, 'sys', 'inc', 'absent.h'), 'now here');
  const probe = policy.decide(started, root, null);
  t.false(probe.skip);
  t.is(probe.reason, '/sys/inc/absent.h exists now (it was absent)');
});
