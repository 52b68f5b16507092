// The one line `uwrx run` prints on stderr when the run ends.
import path from 'node:path';
import type { RunResult } from '../run.js';
import { formatProblems } from '../record/problems.js';

export function formatSummary(result: RunResult, cwd: string): string {
  const where = path.relative(cwd, result.attemptDir) || '.';
  const shown = where.startsWith('..') ? result.attemptDir : where;
  const how =
    result.signal !== null ? `killed by signal ${result.signal}` : result.incomplete ? 'interrupted' : `exit ${result.exitCode}`;
  const parts = [
    `${result.processes} process${result.processes === 1 ? '' : 'es'}`,
    `${result.filesWritten} file${result.filesWritten === 1 ? '' : 's'} written`,
    ...(result.network && (result.network.requests > 0 || result.network.errors > 0)
      ? [`${result.network.requests} request${result.network.requests === 1 ? '' : 's'} (${formatBytes(result.network.bytes)}${
          result.network.unmatched ? `, ${result.network.unmatched} not in the record` : ''}${
          result.network.errors ? `, ${result.network.errors} network error${result.network.errors === 1 ? '' : 's'}` : ''})`]
      : []),
    `${(result.durationMs / 1000).toFixed(2)} s`,
    how,
  ];
  const problems = formatProblems(result.problems);
  if (problems) parts.push(problems);
  const incomplete = result.incomplete ? ' (incomplete)' : '';
  return `uwrx: ${parts.join(', ')}; record in ${shown}${incomplete}`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
