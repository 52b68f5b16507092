// Problems found while running: something the record should hold and does not (a lost
// file version, a trace buffer that could not be read, an allocation that failed in
// uwrx-init). The run goes on; each kind is counted, listed in the attempt's `status`
// ("problems"), mentioned in the summary line and reported by `uwrx check`.
import type { ProblemBody } from '../protocol/init-messages.js';

export interface Problem {
  /** What went wrong, as a short stable name: "trace", "lost-version" ... */
  kind: string;
  /** How many times. */
  count: number;
  /** The first occurrence, in one line. */
  detail?: string;
}

/** Adds `problem` to `list`, one entry per kind (counts add up, the first detail stays). */
export function addProblem(list: Problem[], problem: Problem): void {
  if (!(problem.count > 0)) return;
  const known = list.find((p) => p.kind === problem.kind);
  if (!known) list.push({ ...problem });
  else {
    known.count += problem.count;
    known.detail ??= problem.detail;
  }
}

/** "2 problems (trace 1, lost-version 1)", or '' when there are none. */
export function formatProblems(problems: readonly Problem[] | undefined): string {
  const total = (problems ?? []).reduce((n, p) => n + p.count, 0);
  if (total === 0) return '';
  const kinds = problems!.map((p) => `${p.kind} ${p.count}`).join(', ');
  return `${total} problem${total === 1 ? '' : 's'} (${kinds})`;
}

/** A problem as uwrx-init reports it (MSG_PROBLEM). */
export function problemFromInit(body: ProblemBody): Problem {
  const detail = body.detail === undefined ? undefined : typeof body.detail === 'string' ? body.detail : Buffer.from(body.detail).toString('utf8');
  return { kind: String(body.kind), count: Number(body.count), ...(detail !== undefined ? { detail } : {}) };
}

/** One line per recorded problem, as `uwrx check` prints them. */
export function problemLines(problems: readonly Problem[] | undefined): string[] {
  return (problems ?? []).map(
    (p) => `status: ${p.count} problem${p.count === 1 ? '' : 's'} of kind ${p.kind} while running${p.detail ? ` (first: ${p.detail})` : ''}`,
  );
}
