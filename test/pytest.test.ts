// pytest with pytest-xdist runs a suite in two worker processes that it starts and talks
// to over pipes (execnet): under uwrx the same tests pass, fail and are expected to fail
// as natively, the failure is reported with the same assertion detail, pytest exits with
// the same status, and the files a test wrote under its tmp_path are in the record.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { nativeAndRecordedDirs, uwrx } from './helpers/uwrx.js';

const PYTHON = '/usr/bin/python3';
const missing = ensureCommands({
  '/usr/lib/python3/dist-packages/pytest/__init__.py': 'python3-pytest',
  '/usr/lib/python3/dist-packages/xdist/__init__.py': 'python3-pytest-xdist',
});

const SUITE = `import os, socket, subprocess, threading, time
import pytest

def test_tmp_path(tmp_path):
    p = tmp_path / "written-by-test.txt"
    p.write_text("x" * 1000)
    assert p.read_text() == "x" * 1000

def test_subprocess():
    out = subprocess.run(["sh", "-c", "echo $((6*7))"], capture_output=True, text=True)
    assert out.stdout == "42\\n"

@pytest.mark.parametrize("n", range(12))
def test_sums(n):
    assert sum(range(n)) == n * (n - 1) // 2

def test_threads():
    got = []
    threads = [threading.Thread(target=lambda i=i: got.append(i * i)) for i in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert sorted(got) == [i * i for i in range(8)]

def test_socketpair():
    a, b = socket.socketpair()
    a.sendall(b"ping")
    assert b.recv(4) == b"ping"

def test_sleep_lasts():
    started = time.monotonic()
    time.sleep(0.05)
    assert time.monotonic() - started >= 0.05

def test_raises():
    with pytest.raises(ZeroDivisionError):
        1 / 0

@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False

def test_fails_on_purpose():
    expected = {"a": 1, "b": 2}
    assert {"a": 1, "b": 3} == expected
`;

// -p no:randomly etc. are not installed; the base temp is below the work directory so
// the record holds it
const ARGS = ['-m', 'pytest', '-q', '-n', '2', '-p', 'no:cacheprovider', '--basetemp', 'tmp', 'test_suite.py'];

/** pytest's verdicts, in a stable order and without durations or worker names. */
function verdicts(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /^(FAILED|ERROR|XFAIL|E  )|passed|failed/.test(l))
    .map((l) => l.replace(/ in [\d.]+s/, '').replace(/\[gw\d\]/g, '').trim())
    .sort();
}

test('pytest -n 2 passes, fails and xfails the same tests under uwrx as natively', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const { cwd, nat, rec } = nativeAndRecordedDirs('uwrx-pytest-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  for (const dir of [nat, rec]) writeFileSync(path.join(dir, 'test_suite.py'), SUITE);
  const native = spawnSync(PYTHON, ARGS, { cwd: nat, encoding: 'utf8' });
  const r = await uwrx(['run', '-q', '--build', '../b', '--', PYTHON, ...ARGS], { cwd: rec });
  // pytest's status when a test failed
  t.is(native.status, 1, native.stdout + native.stderr);
  t.is(r.status, native.status, r.stdout + r.stderr);
  const nativeVerdicts = verdicts(native.stdout);
  t.true(nativeVerdicts.includes('1 failed, 18 passed, 1 xfailed'), nativeVerdicts.join('\n'));
  t.true(nativeVerdicts.some((l) => l.startsWith('FAILED test_suite.py::test_fails_on_purpose')), nativeVerdicts.join('\n'));
  t.deepEqual(verdicts(r.stdout), nativeVerdicts);
  // the file test_tmp_path wrote, read back from the record through a later step
  const later = await uwrx(
    ['run', '-q', '--build', '../b', '--step', '1', '--parent', '../b/0/0', '--', 'sh', '-c', 'cat tmp/*/test_tmp_path0/written-by-test.txt | wc -c'],
    { cwd: rec },
  );
  t.is(later.status, 0, later.stderr);
  t.is(later.stdout.trim(), '1000');
  // the real directory holds only what the test put there
  t.is(readFileSync(path.join(rec, 'test_suite.py'), 'utf8'), SUITE);
});
