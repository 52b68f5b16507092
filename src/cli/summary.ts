// The one line `uwrx run` prints on stderr when the run ends.
import path from 'node:path';
import type { RunResult } from '../run.js';
import { formatProblems } from '../record/problems.js';

export function formatSummary(result: RunResult, cwd: string): string {
  const where = path.relative(cwd, result.attemptDir) || '.';
  const shown = where.startsWith('..') ? result.attemptDir : where;
  const how =
    result.signal !== null
      ? `killed by signal ${result.signal}`
      : result.incomplete && !result.problem ? 'interrupted' : result.exitCode === null ? 'exit status unknown' : `exit ${result.exitCode}`;
  const parts = [
    `${result.processes} process${result.processes === 1 ? '' : 'es'}`,
    `${result.filesWritten} file${result.filesWritten === 1 ? '' : 's'} written`,
    ...(result.network && (result.network.requests > 0 || result.network.errors > 0)
      ? [`${result.network.requests} request${result.network.requests === 1 ? '' : 's'} (${formatBytes(result.network.bytes)}${
          result.network.unmatched ? `, ${result.network.unmatched} not in the record` : ''}${
          result.network.errors ? `, ${result.network.errors} network error${result.network.errors === 1 ? '' : 's'}` : ''})`]
      : []),
    ...(result.network?.git
      ? [`${result.network.git} git operation${result.network.git === 1 ? '' : 's'} (${formatBytes(result.network.gitBytes)})`]
      : []),
    ...(result.skipped !== undefined ? [`${result.skipped} skipped`] : []),
    `${(result.durationMs / 1000).toFixed(2)} s`,
    how,
  ];
  const problems = formatProblems(result.problems);
  if (problems) parts.push(problems);
  const incomplete = result.problem ? ` (incomplete: ${result.problem})` : result.incomplete ? ' (incomplete)' : '';
  const parents = result.parents.map((p) => {
    const rel = path.relative(cwd, p);
    return rel.startsWith('..') || rel === '' ? p : rel;
  });
  const on = parents.length > 0 ? `; parent${parents.length === 1 ? '' : 's'} ${parents.join(', ')}` : '';
  return `uwrx: ${parts.join(', ')}${on}; record in ${shown}${incomplete}${terminated(result)}`;
}

/** What was still running once the command had ended and the linger time ran out. */
function terminated(result: RunResult): string {
  const t = result.terminated;
  if (!t) return '';
  const named = t.processes.map((p) => `${p.pid} ${p.name}`);
  const more = t.count > named.length ? `, ${t.count - named.length} more` : '';
  const list = named.length > 0 ? ` (${named.slice(0, 5).join(', ')}${named.length > 5 ? ', ...' : ''}${more})` : '';
  return `; terminated ${t.count} process${t.count === 1 ? '' : 'es'} left running after the command ended${list}`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
