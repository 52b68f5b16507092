// Progress of `uwrx run` on a terminal (tmux): shown in the title, never among the
// command's output lines; off with --quiet and when stderr is not a terminal.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatBytes, formatProgress } from '../src/cli/progress.js';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

const missing = ensureCommands({ tmux: 'tmux' });
// each session on a server of its own (-L): sessions of concurrent test runs on the shared
// default server race with its exit when the last one ends ("server exited unexpectedly")
const tmux = (server: string, ...args: string[]): string => execFileSync('tmux', ['-L', server, ...args], { encoding: 'utf8' });
const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// one child fails at once, another keeps running for a while
const SCRIPT = 'echo first line; sh -c "exit 3"; sh -c "sleep 1.5; echo last line"';

async function inTmux(args: string[]): Promise<{ titles: string[]; screen: string; before: string }> {
  const cwd = scratchDir('uwrx-progress-');
  dirs.push(cwd);
  const name = `uwrx-progress-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  tmux(name, 'new-session', '-d', '-s', name, '-x', '100', '-y', '20', '-c', cwd, `sleep 0.5; ${process.execPath} ${uwrxBin} ${args.join(' ')}; echo "exit=$?"; sleep 60`);
  try {
    const before = tmux(name, 'display', '-p', '-t', name, '#{pane_title}').trim();
    const titles: string[] = [];
    let screen = '';
    for (let i = 0; i < 600 && !screen.includes('exit='); i++) {
      const t = tmux(name, 'display', '-p', '-t', name, '#{pane_title}').trim();
      if (titles[titles.length - 1] !== t) titles.push(t);
      screen = tmux(name, 'capture-pane', '-p', '-t', name);
      await sleep(50);
    }
    await sleep(200);
    titles.push(tmux(name, 'display', '-p', '-t', name, '#{pane_title}').trim());
    return { titles, screen: tmux(name, 'capture-pane', '-p', '-t', name), before };
  } finally {
    tmux(name, 'kill-server');
  }
}

test.serial('progress in the terminal title while the run works, the title given back after', async (t) => {
  if (missing.length > 0) return t.fail(`tmux missing and not installable: ${missing.join(', ')}`);
  const { titles, screen, before } = await inTmux(['run', '--', 'sh', '-c', `'${SCRIPT}'`]);
  // the failed child is counted, and its trace (collected once it ended) too
  t.true(titles.some((x) => /^uwrx: [1-9]\d* running, \d+ done, 1 failed, [0-9.]+ (B|KiB) recorded, \d+ s$/.test(x)), titles.join('\n'));
  t.is(titles[titles.length - 1], before, 'the title from before the run is back');
  // the command's lines are exactly its own
  const lines = screen.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  t.is(lines[0], 'first line');
  t.is(lines[1], 'last line');
  t.regex(lines[2]!, /^uwrx: 4 processes, .*exit 0; record in build\/0\/0$/);
  t.is(lines[3], 'exit=0');
});

test.serial('no progress with --quiet', async (t) => {
  if (missing.length > 0) return t.fail(`tmux missing and not installable: ${missing.join(', ')}`);
  const { titles, screen } = await inTmux(['run', '-q', '--', 'sh', '-c', `'${SCRIPT}'`]);
  t.false(titles.some((x) => x.startsWith('uwrx:')), titles.join('\n'));
  t.regex(screen, /first line\nlast line\nexit=0/);
});

test('no progress when stderr is not a terminal: stderr holds only the summary', async (t) => {
  const cwd = scratchDir('uwrx-progress-');
  dirs.push(cwd);
  const r = await uwrx(['run', '--', 'sh', '-c', SCRIPT], { cwd });
  t.is(r.status, 0);
  t.regex(r.stderr, /^uwrx: 4 processes, [^\x1b]*\n$/);
});

test('the status text', (t) => {
  t.is(formatProgress({ running: 3, done: 120, failed: 2, bytes: 5 * 1024 * 1024 + 300_000, elapsedMs: 12_500 }), 'uwrx: 3 running, 120 done, 2 failed, 5.3 MiB recorded, 12 s');
  t.is(formatProgress({ running: 0, done: 0, failed: 0, bytes: undefined, elapsedMs: 0 }), 'uwrx: 0 running, 0 done, 0 failed, 0 s');
  t.is(formatBytes(1000), '1000 B');
  t.is(formatBytes(2048), '2.0 KiB');
});
