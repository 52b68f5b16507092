// Runs the real `bin/uwrx` as a user would, in a scratch directory.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const uwrxBin = path.join(repoRoot, 'bin', 'uwrx');

export interface UwrxResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function scratchDir(prefix = 'uwrx-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function uwrx(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<UwrxResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [uwrxBin, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}
