// A description of the machine, written next to the numbers it produced.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { cleanEnv, runMeasured } from './proc.js';

export interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  kernel: string;
  os: string;
  node: string;
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

export async function describeMachine(): Promise<Machine> {
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
