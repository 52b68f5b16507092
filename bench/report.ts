// docs/benchmarks.md: written whole by the harness, except the notes section, which is
// kept across runs. The raw numbers ride along in a comment so a run of a few
// workloads can update the document without losing the others.
import type { Mode } from './modes.js';
import { evaluateGoals, tableHeader, tableRows, type BenchData, type WorkloadResult } from './results.js';
import { markdownTable } from './stats.js';
import type { ExtraRow } from './workloads.js';

const notesStart = '<!-- notes:start -->';
const notesEnd = '<!-- notes:end -->';
const dataPrefix = '<!-- bench-data ';

const defaultNotes = `Where uwrx misses a goal, the profile of that workload goes here: which part of
uwrx (handler threads in uwrx-init, the transport, the manager actor, collector or
merger, overlay copy-up) the time goes to, measured with \`perf record -g\` on uwrx-init
and \`node --cpu-prof\` on the supervisor. Kept across runs of the harness.`;

/** JSON inside an HTML comment: '--' must not appear, and JSON can escape it. */
export function encodeData(data: BenchData): string {
  return `${dataPrefix}${JSON.stringify(data).replace(/--/g, '-\\u002d')} -->`;
}

export function parseDocument(text: string): { data?: BenchData; notes?: string } {
  const out: { data?: BenchData; notes?: string } = {};
  const a = text.indexOf(notesStart);
  const b = text.indexOf(notesEnd);
  if (a >= 0 && b > a) out.notes = text.slice(a + notesStart.length, b).trim();
  const d = text.indexOf(dataPrefix);
  if (d >= 0) {
    const end = text.indexOf(' -->', d);
    try {
      out.data = JSON.parse(text.slice(d + dataPrefix.length, end)) as BenchData;
    } catch {
      // a hand-edited or truncated block: start over
    }
  }
  return out;
}

function runsLine(w: WorkloadResult): string {
  return `${w.date}, ${w.quick ? '--quick, ' : ''}${w.warmup} warm-up + ${w.runs} runs, load ${w.loadStart} -> ${w.loadEnd}`;
}

export function renderDocument(data: BenchData, modes: readonly Mode[], extraRows: ReadonlyArray<ExtraRow & { workload?: string }>, notes?: string): string {
  const m = data.machine;
  const goals = evaluateGoals(data.workloads);
  const invocations = [...new Set(data.workloads.map((w) => w.invocation))];
  const out: string[] = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(
    'Produced by `npm run bench -- all` (bench/, see bench/README.md). Every ratio is against the native run of the same workload measured in the same invocation; modes are interleaved run by run so that drift in the machine\'s load hits all of them alike. The document is rewritten by the harness; only the notes section is kept.',
  );
  out.push('');
  out.push('## Goals');
  out.push('');
  out.push(
    'From the benchmark issue: uwrx capture within 1.15x of native on the real C build, within 1.5x on configure, and below `strace -f` on every workload; the supervisor\'s RSS under 300 MB on the largest workload. From the sandbox issue: one notified syscall answered CONTINUE through uwrx\'s real handler path within 1.2x of the floor measured by a minimal C responder with the synchronous wake-up flag.',
  );
  out.push('');
  out.push(markdownTable(['goal', 'target', 'measured', 'status'], goals.map((g) => [g.goal, g.target, g.measured, g.status])));
  out.push('');
  out.push('The statuses are computed from the results below by the harness; read them with the note on noise under Results, and the notes at the end for where the time goes.');
  out.push('');
  out.push('## Results');
  out.push('');
  out.push(
    `Measured by ${invocations.length === 1 ? 'one invocation' : `${invocations.length} invocations`} (started ${invocations.join(', ')}) on the machine described below.`,
  );
  out.push('');
  out.push(
    'These numbers come from a 2-core machine that other work was using at the same time (see the load averages per workload), so they are noisy: a run can take twice as long as its neighbour for reasons outside the benchmark. Treat differences under about 10%, and single ratios near a goal, as noise; the numbers are re-measured on a quiet machine (`npm run bench -- all`) before a goal is called met or missed for good.',
  );
  out.push('');
  out.push(markdownTable(tableHeader, tableRows(data.workloads)));
  out.push('');
  out.push('Runs per workload:');
  out.push('');
  for (const w of data.workloads) out.push(`- ${w.name}: ${runsLine(w)}`);
  out.push('');
  out.push('### Workloads');
  out.push('');
  for (const w of data.workloads) out.push(`- **${w.name}**: ${w.description}. Command: \`${w.command}\``);
  out.push('');
  out.push('### Modes');
  out.push('');
  for (const mode of modes) out.push(`- **${mode.name}**: ${mode.description}`);
  for (const row of extraRows) out.push(`- **${row.name}** (${row.workload ?? 'notify'} only): ${row.description}`);
  out.push('');
  out.push('### Memory');
  out.push('');
  out.push(
    'Peak RSS is the kernel\'s VmHWM from /proc/<pid>/status, sampled every 50 ms during each uwrx run, maximum over the runs. "supervisor RSS" covers the Node process bin/uwrx starts, with all its threads (worker-thread actors share its memory); "init RSS" covers the uwrx-init process (pid 1 of the sandbox, with its handler threads). Neither includes the command\'s own processes.',
  );
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    markdownTable(
      ['', ''],
      [
        ['CPU', m.cpu],
        ['cores', String(m.cores)],
        ['memory', m.memory],
        ['kernel', m.kernel],
        ['OS', m.os],
        ['node', m.node],
        ...Object.entries(m.filesystems ?? {}).map(([role, fs]) => [`filesystem (${role})`, fs]),
        ...Object.entries(m.tools),
      ],
    ),
  );
  out.push('');
  out.push('## Notes');
  out.push('');
  out.push(notesStart);
  out.push(notes ?? defaultNotes);
  out.push(notesEnd);
  out.push('');
  out.push(encodeData(data));
  out.push('');
  return out.join('\n');
}
