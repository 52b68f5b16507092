// `uwrx ui` on real records, driven through a real terminal (tmux): keys in, screen text out.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureCommands } from './helpers/packages.js';
import { scratchDir, uwrx, uwrxBin } from './helpers/uwrx.js';

const missing = ensureCommands({ tmux: 'tmux' });
// One tmux server per screen (its own socket): a server shared with other tests on the
// machine exits when their last session ends, racing a session being created.
const tmux = (socket: string, ...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tmux session running `uwrx ui <attempt>`, then a report of the terminal's state. */
class Screen {
  constructor(readonly name: string) {}

  static open(cwd: string, width: number, height: number, attempt = 'build/0/0'): Screen {
    const name = `uwrx-ui-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    // After the UI: is the line discipline back to cooked mode? Then wait to be captured.
    const after = `echo "exit=$?"; stty -a | grep -o -- '-\\?icanon' | sed 's/^/tty:/'; sleep 60`;
    tmux(name, 'new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), '-c', cwd, `${process.execPath} ${uwrxBin} ui ${attempt}; ${after}`);
    return new Screen(name);
  }

  text(): string {
    return tmux(this.name, 'capture-pane', '-p', '-t', this.name);
  }

  keys(...keys: string[]): void {
    tmux(this.name, 'send-keys', '-t', this.name, ...keys);
  }

  async until(ok: (screen: string) => boolean, what: string): Promise<string> {
    let screen = '';
    for (let i = 0; i < 300; i++) {
      screen = this.text();
      if (ok(screen)) return screen;
      await sleep(100);
    }
    throw new Error(`screen never ${what}:\n${screen}`);
  }

  showing(text: string | RegExp): Promise<string> {
    return this.until((s) => (typeof text === 'string' ? s.includes(text) : text.test(s)), `showed ${String(text)}`);
  }

  /** alternate screen on, cursor visible */
  modes(): { alternate: boolean; cursor: boolean } {
    const [alt, cursor] = tmux(this.name, 'display', '-p', '-t', this.name, '#{alternate_on} #{cursor_flag}').trim().split(' ');
    return { alternate: alt === '1', cursor: cursor === '1' };
  }

  close(): void {
    try {
      tmux(this.name, 'kill-server');
    } catch {
      // already gone
    }
  }
}

const TREE = [
  'echo top-output',
  'sh -c "echo child-says-hi"',
  // the file's name is not in the writer's command line: search finds it by path
  'sh -c "f=gen; echo data > \\$f-file.txt"',
  // nor is the text it prints: search finds it by output
  `sh -c 'printf "failing-%s\\n" child >&2; exit 3'`,
  'true',
].join('; ');

let recorded: string | undefined;
async function recordedTree(): Promise<string> {
  if (recorded) return recorded;
  const cwd = scratchDir('uwrx-ui-');
  dirs.push(cwd);
  const run = await uwrx(['run', '-q', '--', 'sh', '-c', TREE], { cwd });
  if (run.status !== 0) throw new Error(`uwrx run failed: ${run.stderr}`);
  recorded = cwd;
  return cwd;
}

/** The visible pid of the selected line's details header. */
const selectedPid = (screen: string): number => Number(/│pid (\d+), parent/.exec(screen)?.[1] ?? NaN);

test.serial('navigate, open output, search a path to its writer, failed filter, help, resize, quit (80x24)', async (t) => {
  if (missing.length > 0) return t.fail(`tmux missing and not installable: ${missing.join(', ')}`);
  const cwd = await recordedTree();
  const s = Screen.open(cwd, 80, 24);
  try {
    let screen = await s.showing('top-output');
    t.regex(screen, /complete, status 0, 4 processes, 1 failed/);
    t.regex(screen, /▾2 sh -c echo top-output/);
    for (const line of screen.split('\n')) t.true([...line].length <= 80, line);

    // the first child: its output
    s.keys('Down');
    screen = await s.showing('pid 3, parent 2, exit 0');
    t.regex(screen, /child-says-hi/);
    t.regex(screen, /\[output\]/);

    // search by a path: the process that wrote it, its files tab with the stored version
    s.keys('/', 'gen-file', 'Enter');
    await s.showing('pid 4, parent 2, exit 0');
    // the status line is drawn in the same frame; capture-pane may catch it half written
    screen = await s.showing('1/1: "gen-file"');
    t.regex(screen, /\[files\]/);
    t.regex(screen, /create\s+files\s+\S*gen-file\.txt/);
    t.regex(screen, /1\/1: "gen-file"/);

    // search by output text, then next (wraps to the same single hit)
    s.keys('/', 'failing-child', 'Enter');
    screen = await s.showing('pid 5, parent 2, exit 3');
    t.regex(screen, /\[output\]/);
    s.keys('n');
    screen = await s.showing('1/1: "failing-child"');
    t.is(selectedPid(screen), 5);

    // failed only: the failing child and its parent, nothing else
    s.keys('g', 'f');
    screen = await s.showing('showing failed only');
    t.regex(screen, / 5 sh -c printf/);
    t.notRegex(screen, / 3 sh -c echo child-says-hi/);
    s.keys('f');
    screen = await s.until((x) => !x.includes('showing failed only'), 'left the filter');
    t.regex(screen, / 3 sh -c echo child-says-hi/);

    // collapse and expand with the arrows
    s.keys('Home', 'Left');
    screen = await s.showing('▸2 sh -c');
    t.notRegex(screen, / 3 sh -c echo child-says-hi/);
    s.keys('Right');
    screen = await s.showing('▾2 sh -c');
    t.regex(screen, / 3 sh -c echo child-says-hi/);

    // help overlay, closed by any key
    s.keys('?');
    screen = await s.showing('uwrx ui: keys');
    s.keys('x');
    await s.until((x) => !x.includes('uwrx ui: keys'), 'closed the help');

    // resize: redrawn to the new size
    tmux(s.name, 'resize-window', '-t', s.name, '-x', '60', '-y', '15');
    screen = await s.until((x) => x.split('\n').some((l) => l.includes('quit') || l.includes('help')) && x.split('\n')[0]!.length <= 60 && /│pid/.test(x), 'redrawn at 60x15');
    for (const line of screen.split('\n')) t.true([...line].length <= 60, line);
    t.regex(screen, /▾2 sh -c/);

    s.keys('q');
    screen = await s.showing('tty:');
    t.regex(screen, /exit=0/);
    t.regex(screen, /tty:icanon/, 'the terminal is back in cooked mode');
    t.notRegex(screen, /top-output/, 'the alternate screen was left');
    t.deepEqual(s.modes(), { alternate: false, cursor: true });
  } finally {
    s.close();
  }
});

for (const [how, keys] of [
  ['Ctrl-C', ['C-c']],
  ['Esc', ['Escape']],
] as const) {
  test.serial(`${how} quits and gives the terminal back`, async (t) => {
    if (missing.length > 0) return t.fail(`tmux missing and not installable: ${missing.join(', ')}`);
    const s = Screen.open(await recordedTree(), 80, 24);
    try {
      await s.showing('top-output');
      s.keys(...keys);
      const screen = await s.showing('tty:');
      t.regex(screen, /exit=0/);
      t.regex(screen, /tty:icanon/);
      t.deepEqual(s.modes(), { alternate: false, cursor: true });
    } finally {
      s.close();
    }
  });
}

test.serial('SIGTERM from outside: the terminal is given back before uwrx ends', async (t) => {
  if (missing.length > 0) return t.fail(`tmux missing and not installable: ${missing.join(', ')}`);
  const s = Screen.open(await recordedTree(), 80, 24);
  try {
    await s.showing('top-output');
    const panePid = tmux(s.name, 'display', '-p', '-t', s.name, '#{pane_pid}').trim();
    const ui = execFileSync('pgrep', ['-P', panePid, '-f', 'uwrx ui'], { encoding: 'utf8' }).trim().split('\n')[0]!;
    process.kill(Number(ui), 'SIGTERM');
    const screen = await s.showing('tty:');
    t.regex(screen, /exit=143/);
    t.regex(screen, /tty:icanon/);
    t.deepEqual(s.modes(), { alternate: false, cursor: true });
  } finally {
    s.close();
  }
});

test('a damaged record is one clear error line (exit 2), not an empty view', async (t) => {
  const cwd = await recordedTree();
  const copy = scratchDir('uwrx-ui-bad-');
  dirs.push(copy);
  execFileSync('cp', ['-a', path.join(cwd, 'build'), copy]);
  const attempt = path.join(copy, 'build', '0', '0');
  const perfetto = path.join(attempt, 'perfetto');
  truncateSync(perfetto, Math.floor(readFileSync(perfetto).length / 2));
  let r = await uwrx(['ui', attempt], { cwd: copy });
  t.is(r.status, 2);
  t.regex(r.stderr, /^uwrx: .*perfetto: damaged: truncated field 1 at offset \d+: needs \d+ bytes, \d+ left \(uwrx check lists the problems\)\n$/);

  writeFileSync(path.join(attempt, 'procs.tsv'), 'pid\tppid\tkey\tstart\tend\texit\tsignal\tcwd\texe\targv\n2\t1\t1.0\tnot-a-time\t-\t-\t-\t-\t-\n');
  r = await uwrx(['ui', attempt], { cwd: copy });
  t.is(r.status, 2);
  t.is(r.stderr, `uwrx: ${attempt}/procs.tsv line 2: start "not-a-time" is not a number\n`);

  r = await uwrx(['ui', path.join(copy, 'build', '0')], { cwd: copy });
  t.is(r.status, 2);
  t.regex(r.stderr, /^uwrx: .*build\/0: not an attempt directory/);
});
