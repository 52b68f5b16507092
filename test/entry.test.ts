// bin/uwrx started as a program (its first line, env -S) empties NODE_EXTRA_CA_CERTS for
// Node's start, so that Node does not load certificates uwrx never uses, and puts the
// variable back as it was: the command's environment is the same, variable for variable
// and in the same order, as when Node runs bin/uwrx directly. The same holds for the
// `uwrx` command (package.json "bin"), which starts bin/uwrx with a variable of its own
// (the caller's descriptors) that bin/uwrx takes out again.
import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { scratchDir, uwrxBin, uwrxCommand } from './helpers/uwrx.js';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

function start(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: scratchDir('uwrx-entry-'), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The command's environment under `uwrx run`, started as the `uwrx` command, as the
 * script bin/uwrx (`direct`) or by `node bin/uwrx`, from an environment of A, the
 * variable (when given) and B. */
async function commandEnv(extraCaCerts: string | undefined, how: 'command' | 'direct' | 'node'): Promise<Result & { names: string[] }> {
  // `node` on PATH is the Node that runs the tests
  const env: NodeJS.ProcessEnv = { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, A: '1' };
  if (extraCaCerts !== undefined) env.NODE_EXTRA_CA_CERTS = extraCaCerts;
  env.B = '2';
  const args = ['run', '--quiet', '--', 'env', '-0'];
  const r =
    how === 'command' ? await start(uwrxCommand, args, env) : how === 'direct' ? await start(uwrxBin, args, env) : await start(process.execPath, [uwrxBin, ...args], env);
  const names = r.stdout.split('\0').filter(Boolean).map((e) => e.slice(0, e.indexOf('=')));
  return { ...r, names };
}

const cases: Array<[string, string | undefined]> = [
  ['set to a file that does not exist', '/nonexistent/uwrx-test-ca.pem'],
  ['unset', undefined],
  ['empty', ''],
];

for (const [what, value] of cases) {
  test(`NODE_EXTRA_CA_CERTS ${what}: the command sees the same environment`, async (t) => {
    const direct = await commandEnv(value, 'direct');
    const byNode = await commandEnv(value, 'node');
    const command = await commandEnv(value, 'command');
    t.is(direct.status, 0, direct.stderr);
    t.is(byNode.status, 0, byNode.stderr);
    t.is(command.status, 0, command.stderr);
    t.deepEqual(direct.names, byNode.names);
    t.is(direct.stdout, byNode.stdout);
    t.is(command.stdout, byNode.stdout);
    t.false(direct.names.includes('UWRX_NODE_EXTRA_CA_CERTS'));
    const a = direct.names.indexOf('A');
    const b = direct.names.indexOf('B');
    t.true(a >= 0 && b > a, direct.names.join(' '));
    // in its place when it was set (a value for the sandbox's CA bundle, when the host
    // has one); not between A and B when it was not
    t.is(direct.names.slice(a + 1, b).includes('NODE_EXTRA_CA_CERTS'), value !== undefined);
  });
}

test('started as a program, Node does not load the certificates NODE_EXTRA_CA_CERTS names', async (t) => {
  const missing = '/nonexistent/uwrx-test-ca.pem';
  // Node warns at start-up when it cannot load the file: the sign that it tried
  const byNode = await commandEnv(missing, 'node');
  t.regex(byNode.stderr, /Ignoring extra certs/);
  for (const how of ['direct', 'command'] as const) {
    const r = await commandEnv(missing, how);
    t.is(r.status, 0, r.stderr);
    t.notRegex(r.stderr, /extra certs/, how);
  }
});

test('uwrx exits as soon as its command is done, and a reader slow to take its output still gets all of it', async (t) => {
  const cwd = scratchDir('uwrx-entry-');
  const script = 'i=0; while [ $i -lt 20000 ]; do echo "line $i of the output"; i=$((i+1)); done';
  const expected = Array.from({ length: 20000 }, (_, i) => `line ${i} of the output\n`).join('');
  const ran = await new Promise<number | null>((resolve, reject) => {
    // a pipe, not /dev/null: output to the null device is not recorded
    const child = spawn(uwrxBin, ['run', '-q', '--', 'sh', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', resolve);
  });
  t.is(ran, 0);
  // uwrx itself writes the recorded output (some 490 KB, far more than a pipe holds) and
  // exits once it has: the reader below takes nothing for half a second
  const printed = await new Promise<{ status: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(uwrxBin, ['inspect', 'output', 'build/0/0'], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.pause();
    setTimeout(() => child.stdout.on('data', (d: Buffer) => chunks.push(d)).resume(), 500);
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(chunks).toString('utf8') }));
  });
  t.is(printed.status, 0);
  t.is(printed.stdout.length, expected.length);
  t.true(printed.stdout === expected, 'the same bytes, in order');
});
