// gpg does its secret-key work in gpg-agent, a daemon it starts on first use, reached
// through a Unix socket in the key directory: inside uwrx a key is made, a file signed
// and verified, a tampered copy refused, as natively, and the agent asked to stop is
// gone by the end (the run ends complete, nothing terminated for lingering).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ensureCommands } from './helpers/packages.js';
import { readAttemptStatus } from '../src/record/layout.js';
import { nativeAndRecordedDirs, uwrx } from './helpers/uwrx.js';

const missing = ensureCommands({ gpg: 'gpg', 'gpg-agent': 'gpg-agent', gpgconf: 'gpgconf' });

// each step's exit status on a line of its own: gpg's messages vary with the key
const SCRIPT = [
  'export GNUPGHOME="$PWD/keys"',
  'mkdir -m 700 keys',
  'gpg --batch --quiet --passphrase "" --quick-gen-key "Test <test@example.org>" ed25519 sign never 2>/dev/null; echo "keygen $?"',
  'echo data > f',
  'gpg --batch --quiet --armor --sign -o f.asc f 2>/dev/null; echo "sign $?"',
  'gpg --batch --verify f.asc 2>&1 | grep -c "Good signature"',
  'sed "s/^[A-Za-z0-9+/]\\{20\\}/AAAAAAAAAAAAAAAAAAAA/" f.asc > bad.asc',
  'gpg --batch --verify bad.asc >/dev/null 2>&1; echo "tampered $?"',
  'gpg --batch --list-secret-keys --with-colons 2>/dev/null | grep -c "^sec"',
  'gpgconf --kill all; echo "kill $?"',
].join('\n');

test('gpg makes a key, signs and verifies through its agent inside as natively; the agent stops', async (t) => {
  if (missing.length > 0) return t.fail(`cannot install ${missing.join(', ')}`);
  const { cwd, nat, rec } = nativeAndRecordedDirs('uwrx-gpg-');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const native = spawnSync('sh', ['-c', SCRIPT], { cwd: nat, encoding: 'utf8', timeout: 60_000 });
  t.is(native.stdout, 'keygen 0\nsign 0\n1\ntampered 2\n1\nkill 0\n', native.stderr);
  const r = await uwrx(['run', '-q', '--build', '../b', '--', 'sh', '-c', SCRIPT], { cwd: rec });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, native.stdout);
  const status = readAttemptStatus(path.join(cwd, 'b/0/0'));
  t.true(status?.complete === true && status.terminated === undefined, JSON.stringify(status));
});
