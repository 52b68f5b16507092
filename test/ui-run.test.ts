// `uwrx ui` on a real record, driven through a real terminal (tmux).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });

async function screenWhere(session: string, ok: (screen: string) => boolean, what: string): Promise<string> {
  let screen = '';
  for (let i = 0; i < 100; i++) {
    screen = tmux('capture-pane', '-p', '-t', session);
    if (ok(screen)) return screen;
    await sleep(100);
  }
  throw new Error(`screen never ${what}:\n${screen}`);
}

const screenContaining = (session: string, text: string): Promise<string> =>
  screenWhere(session, (s) => s.includes(text), `showed "${text}"`);

test('uwrx ui shows the process tree and each process output, and quits on q', async (t) => {
  const cwd = scratchDir();
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', 'echo hello-from-parent; sh -c "echo nested-output"'], { cwd });
  t.is(run.status, 0, run.stderr);
  const session = `uwrx-ui-${process.pid}`;
  tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '30', '-c', cwd, `${process.execPath} ${uwrxBin} ui build/0/0; sleep 5`);
  try {
    const first = await screenContaining(session, 'hello-from-parent');
    t.regex(first, /complete, status 0, 2 processes/);
    t.regex(first, / 2 sh -c echo hello-from-parent/);
    tmux('send-keys', '-t', session, 'Down');
    const second = await screenContaining(session, 'pid 3, parent 2, exit 0');
    t.regex(second, /nested-output/);
    tmux('send-keys', '-t', session, 'q');
    // Leaving the alternate screen brings back the (empty) screen from before.
    const after = await screenWhere(session, (s) => !s.includes('pid 3, parent 2'), 'left the UI');
    t.notRegex(after, /nested-output/);
  } finally {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // already gone
    }
  }
});
