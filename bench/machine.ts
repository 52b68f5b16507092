// A description of the machine, written next to the numbers it produced.
import { readFile, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanEnv, runMeasured } from './proc.js';

export interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  kernel: string;
  os: string;
  node: string;
  /** The filesystems the workloads run on (the cache's work trees, the scratch
   * directory); absent in results of older invocations. */
  filesystems?: Record<string, string>;
  tools: Record<string, string>;
}

async function firstLine(argv: string[]): Promise<string> {
  try {
    const o = await runMeasured({ argv, cwd: '/', env: cleanEnv(), timeoutMs: 10_000 });
    return (o.stdout || o.stderr).split('\n')[0]?.trim() || 'unknown';
  } catch {
    return 'not installed';
  }
}

/** `dir`'s filesystem: its type, device and mount point, and for ext4 whether it keeps a
 * journal. Without one, ext4 checks every free inode deleted in the last minute (six while
 * its inode table block is unwritten) before it reuses it, on each inode it allocates: a
 * directory where thousands of files were just removed (a build's temporary files, a
 * record removed between runs) makes file creation there several times slower. */
export async function describeFilesystem(dir: string): Promise<string> {
  try {
    const real = await realpath(dir);
    let best: { point: string; type: string; source: string } | undefined;
    for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
      const [left, right] = line.split(' - ');
      if (!left || !right) continue;
      const point = left.split(' ')[4]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      const [type, source] = right.split(' ');
      const inside = point === '/' || real === point || real.startsWith(point + '/');
      if (inside && (!best || point.length >= best.point.length)) best = { point, type: type!, source: source! };
    }
    if (!best) return 'unknown';
    let journal = '';
    if (best.type === 'ext4') {
      try {
        const task = (await readFile(`/sys/fs/ext4/${path.basename(best.source)}/journal_task`, 'utf8')).trim();
        journal = task === '<none>' ? ', no journal' : ', journal';
      } catch {
        // no sysfs entry: say nothing
      }
    }
    return `${best.type} (${best.source}${journal}) at ${best.point}`;
  } catch {
    return 'unknown';
  }
}

export async function describeMachine(dirs: Record<string, string> = {}): Promise<Machine> {
  let distro = 'unknown';
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(await readFile('/etc/os-release', 'utf8'))?.[1] ?? distro;
  } catch {
    // no os-release
  }
  return {
    cpu: os.cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()} ${os.machine()}`,
    os: distro,
    node: process.version,
    filesystems: Object.fromEntries(await Promise.all(Object.entries(dirs).map(async ([role, dir]) => [role, await describeFilesystem(dir)] as const))),
    tools: {
      cc: await firstLine(['cc', '--version']),
      make: await firstLine(['make', '--version']),
      strace: await firstLine(['strace', '-V']),
      bwrap: await firstLine(['bwrap', '--version']),
    },
  };
}

/** 1, 5 and 15 minute load averages: how busy the shared machine was. */
export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}
