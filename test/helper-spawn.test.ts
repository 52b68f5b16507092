// uwrx-init is started by the addon (vfork and exec, src/native/addon/spawn.cc), not by
// Node's spawn: the command still starts as Node's spawn would have started it.
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { uwrx, uwrxBin, scratchDir } from './helpers/uwrx.js';

test('the command starts with no signal blocked or ignored, though Node ignores SIGPIPE and handles glibc\'s own', async (t) => {
  const dir = scratchDir('uwrx-spawn-');
  const r = await uwrx(['run', '--quiet', '--build', `${dir}/build`, '--', 'sh', '-c', 'grep -E "^Sig(Blk|Ign)" /proc/self/status; pwd'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n${dir}\n`);
});

test('uwrx-init killed from outside: its exit and signal are seen, and the run says so', async (t) => {
  const dir = scratchDir('uwrx-spawn-');
  const child = spawn(process.execPath, [uwrxBin, 'run', '--build', `${dir}/build`, '--', 'sleep', '20'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // uwrx-init: the child of uwrx's Node process, once the command runs
  const helper = async (): Promise<number> => {
    for (let i = 0; i < 300; i++) {
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      const init = kids.find((k) => readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'uwrx-init');
      if (init !== undefined && readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim()) return init;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('uwrx-init not found');
  };
  process.kill(await helper(), 'SIGKILL');
  // missed, the run would end with the command, its status 0 and complete
  const code = await closed;
  t.is(code, 137);
  t.regex(stderr, /incomplete: uwrx-init ended without its final report \(killed by SIGKILL\)/);
});
