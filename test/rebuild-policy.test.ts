// Pure parts of partial rebuild: which program names are on the list, how the
// environment is compared.
import test from 'ava';
import { DEFAULT_SKIPPABLE, isSkippablePath, skippableNames } from '../src/rebuild/skippable.js';
import { ENV_IGNORED, firstEnvDifference } from '../src/rebuild/decide.js';

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
});
