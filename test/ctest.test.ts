// CTest runs a project's tests in parallel with a timeout each, killing a test that
// overruns: under uwrx's deterministic clocks a sleep still lasts its real time and
// ctest's own deadline still ends it, so the same tests pass, time out and fail as
// natively (durations aside), and ctest exits with the same status.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { nativeAndRecordedDirs, uwrx } from './helpers/uwrx.js';

const missing = ensureCommands({ cmake: 'cmake', ninja: 'ninja-build', ctest: 'cmake', cc: 'gcc' });

const CMAKELISTS = `cmake_minimum_required(VERSION 3.16)
project(ct C)
enable_testing()
add_executable(t t.c)
foreach(i RANGE 1 12)
  add_test(NAME t\${i} COMMAND t \${i})
endforeach()
add_test(NAME overruns COMMAND t 99)
set_tests_properties(overruns PROPERTIES TIMEOUT 1)
add_test(NAME fails COMMAND t -1)
add_test(NAME expected_to_fail COMMAND t -1)
set_tests_properties(expected_to_fail PROPERTIES WILL_FAIL TRUE)
`;

const PROGRAM = `#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  if (n == 99) { sleep(5); return 0; }
  if (n < 0) { fprintf(stderr, "failing as asked\\n"); return 1; }
  usleep(20000 * (n % 4));
  printf("test %d ok\\n", n);
  return 0;
}
`;

const SCRIPT = 'cmake -S src -B build -G Ninja >/dev/null && cmake --build build >/dev/null && cd build && ctest -j2 --output-on-failure';

/** ctest's report, in a stable order and without durations. */
function report(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /Test +#\d+:|tests passed|\(Failed\)|\(Timeout\)|failing as asked/.test(l))
    .map((l) => l.replace(/[\d.]+ sec/g, '').replace(/^ *\d+\/\d+ /, '').trim())
    .sort();
}

test('ctest -j2 passes, times out and fails the same tests under uwrx as natively', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const { cwd, nat, rec } = nativeAndRecordedDirs('uwrx-ctest-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  for (const dir of [nat, rec]) {
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', 'CMakeLists.txt'), CMAKELISTS);
    writeFileSync(path.join(dir, 'src', 't.c'), PROGRAM);
  }
  const native = spawnSync('sh', ['-c', SCRIPT], { cwd: nat, encoding: 'utf8' });
  const started = Date.now();
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'sh', '-c', SCRIPT], { cwd: rec });
  const seconds = (Date.now() - started) / 1000;
  // ctest's status when a test failed
  t.is(native.status, 8, native.stdout + native.stderr);
  t.is(r.status, native.status, r.stdout + r.stderr);
  const nativeReport = report(native.stdout);
  t.true(nativeReport.some((l) => /overruns .*\*\*\*Timeout/.test(l)), nativeReport.join('\n'));
  t.true(nativeReport.some((l) => /^87% tests passed, 2 tests failed out of 15/.test(l)), nativeReport.join('\n'));
  t.deepEqual(report(r.stdout), nativeReport);
  // the overrunning test was ended at its timeout, not after its 5 s sleep
  t.true(seconds < 30, `${seconds} s`);
  const timeout = r.stdout.split('\n').find((l) => /overruns .*Timeout/.test(l)) ?? '';
  const took = Number(/([\d.]+) sec/.exec(timeout)?.[1]);
  t.true(took >= 1 && took < 4, timeout);
});
