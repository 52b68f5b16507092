// Tests that need a Debian tool install it themselves (CI starts from a fresh machine).
// One lock for every test process: apt-get and dpkg refuse to run twice at once.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const LOCK = '/tmp/uwrx-test-apt.lock';

function onPath(command: string): boolean {
  if (command.startsWith('/')) return existsSync(command);
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => dir && existsSync(`${dir}/${command}`));
}

/** Makes sure each command (or absolute path) exists, installing its Debian package
 * when it does not: `{ 'busybox': 'busybox-static', '/usr/bin/ccache': 'ccache' }`.
 * Returns the names of the commands still missing (no apt-get, not root, no package). */
export function ensureCommands(wanted: Record<string, string>): string[] {
  const missing = Object.entries(wanted).filter(([command]) => !onPath(command));
  if (missing.length === 0) return [];
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    const script =
      'apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 || ' +
      '{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; }';
    try {
      execFileSync('flock', [LOCK, 'sh', '-c', script, 'sh', ...packages], {
        stdio: 'ignore',
        timeout: 15 * 60 * 1000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      // reported below as still missing
    }
  }
  return missing.map(([command]) => command).filter((command) => !onPath(command));
}
