import test from 'ava';
import { encodeData, parseDocument, renderDocument } from '../bench/report.js';
import { evaluateGoals, mergeWorkloads, tableRows, type WorkloadResult } from '../bench/results.js';
import { childrenCpuSeconds, errorLine } from '../bench/proc.js';
import { describeFilesystem } from '../bench/machine.js';
import { readFileSync, statfsSync } from 'node:fs';
import { formatRatio, markdownTable, median, ratio, summarize, textTable } from '../bench/stats.js';

function workload(name: string, rows: Record<string, number[] | { caveat: string; samples: number[] }>, extra: Partial<WorkloadResult> = {}): WorkloadResult {
  return {
    name,
    description: `${name} workload`,
    unit: 'seconds',
    command: 'make -j2',
    invocation: '2026-11-28T06:00:00Z',
    date: '2026-11-28T06:00:00Z',
    quick: false,
    warmup: 1,
    runs: 3,
    loadStart: '1.00 1.00 1.00',
    loadEnd: '1.00 1.00 1.00',
    rows: Object.entries(rows).map(([mode, v]) =>
      Array.isArray(v) ? { mode, status: 'ok' as const, samples: v } : { mode, status: 'ok' as const, samples: v.samples, caveat: v.caveat },
    ),
    ...extra,
  };
}

test('median of odd and even counts, unsorted input', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(median([7]), 7);
  t.throws(() => median([]), { instanceOf: RangeError });
});

test('summary keeps min, max and the run count', (t) => {
  t.deepEqual(summarize([2, 9, 4]), { median: 4, min: 2, max: 9, runs: 3 });
});

test('ratio is null without a usable baseline', (t) => {
  t.is(ratio(3, 2), 1.5);
  t.is(ratio(3, 0), null);
  t.is(ratio(undefined, 2), null);
  t.is(formatRatio(1.149), '1.15x');
  t.is(formatRatio(null), '-');
});

test('text table pads columns and right-aligns numbers', (t) => {
  const out = textTable(['mode', 'median'], [['native', '1.000 s'], ['strace', '12.50 s']]);
  t.is(out, ['mode     median', '------  -------', 'native  1.000 s', 'strace  12.50 s'].join('\n'));
});

test('markdown table escapes pipes and right-aligns numeric columns', (t) => {
  const out = markdownTable(['a', 'b'], [['x|y', '1.5x']]);
  t.is(out, ['| a | b |', '|---|---:|', '| x\\|y | 1.5x |'].join('\n'));
});

test('rows show ratios to the native run of the same workload and explain missing numbers', (t) => {
  const w = workload('c-build', { native: [10, 11, 12], strace: [20, 22, 21] });
  w.rows.push({ mode: 'uwrx', status: 'unavailable', note: 'bin/uwrx does not exist', samples: [] });
  w.rows.push({ mode: 'ccache', status: 'not yet', samples: [] });
  const rows = tableRows([w]);
  t.deepEqual(rows[0]!.slice(0, 6), ['c-build', 'native', '11.00 s', '10.00 s', '12.00 s', '1.00x']);
  t.is(rows[1]![5], '1.91x');
  t.is(rows[2]![8], 'unavailable: bin/uwrx does not exist');
  t.is(rows[3]![8], 'not yet');
});

/** A goal by the start of its name: the list grows, positions move. */
function goal(goals: ReturnType<typeof evaluateGoals>, name: string) {
  const found = goals.find((g) => g.goal.startsWith(name));
  if (!found) throw new Error(`no goal "${name}"`);
  return found;
}

test('goals: met, missed by how much, and not measured', (t) => {
  const results = [
    workload('c-build', { native: [10], strace: [15], uwrx: [11] }),
    workload('configure', { native: [10], strace: [14], uwrx: [16] }),
  ];
  results[0]!.rows[2]!.supervisorKiB = 120 * 1024;
  const goals = evaluateGoals(results);
  t.is(goal(goals, 'uwrx capture on the real C build').measured, '1.10x');
  t.is(goal(goals, 'uwrx capture on the real C build').status, 'met');
  t.is(goal(goals, 'uwrx capture on configure').measured, '1.60x');
  t.regex(goal(goals, 'uwrx capture on configure').status, /^missed by 0\.10x \(7% over\)$/);
  t.regex(goal(goals, 'uwrx capture below strace').status, /^missed on configure$/);
  t.is(goal(goals, 'uwrx supervisor peak RSS').status, 'met');
  t.regex(goal(goals, 'one notified syscall').status, /^not measured/);
});

test('a uwrx row with a caveat does not count for the goals', (t) => {
  const goals = evaluateGoals([workload('c-build', { native: [10], uwrx: { samples: [10], caveat: 'without its sandbox' } })]);
  t.is(goal(goals, 'uwrx capture on the real C build').status, 'not measured (without its sandbox)');
});

test('the notified-syscall goal compares uwrx with the synchronous floor', (t) => {
  const w = workload('notify', { native: [1.5], 'floor-default': [55], 'floor-sync': [7], uwrx: [8] }, { unit: 'us/call' });
  t.is(goal(evaluateGoals([w]), 'one notified syscall').measured, '1.14x');
});

test('the start-up goal is the median of uwrx run -- true in ms, with the bare Node start beside it', (t) => {
  const startupGoal = (w: WorkloadResult) => evaluateGoals([w]).find((g) => g.goal.includes('uwrx run -- true'))!;
  const met = startupGoal(workload('startup', { native: [0.001], 'node-baseline': [0.04, 0.05, 0.06], strace: [0.002], uwrx: [0.12, 0.14, 0.2] }));
  t.is(met.target, '<= 150 ms');
  t.is(met.measured, '140 ms (node -e 0: 50 ms, uwrx beyond it: 90 ms)');
  t.is(met.status, 'met');
  const missed = startupGoal(workload('startup', { native: [0.001], uwrx: [0.4] }));
  t.is(missed.measured, '400 ms');
  t.is(missed.status, 'missed by 250 ms');
  // a tracer's `true` is no yardstick for a fixed cost
  t.is(goal(evaluateGoals([workload('startup', { native: [0.001], strace: [0.002], uwrx: [0.4] })]), 'uwrx capture below strace').status, 'not measured');
});

test('the per-process goal divides exec-storm over native by its processes, less the fixed cost of a run when startup was measured', (t) => {
  const storm = workload('exec-storm', { native: [1.4, 1.5, 1.6], 'uwrx-fast': [2.1, 2.2, 2.3] }, { processes: 2000 });
  const perProcess = (ws: WorkloadResult[]) => goal(evaluateGoals(ws), 'a short process');
  const alone = perProcess([storm]);
  t.is(alone.target, '<= 200 us');
  t.is(alone.measured, '350 us (exec-storm, 2000 processes, the fixed cost of a run not measured: included)');
  t.is(alone.status, 'missed by 150 us');
  const withStartup = perProcess([storm, workload('startup', { native: [0.004], 'uwrx-fast': [0.204] })]);
  t.is(withStartup.measured, '250 us (exec-storm, 2000 processes, less the fixed cost of a run: 200 ms)');
  t.is(withStartup.status, 'missed by 50 us');
  t.is(perProcess([workload('exec-storm', { native: [1.4], 'uwrx-fast': [1.6] }, { processes: 2000 })]).status, 'met');
  t.regex(perProcess([workload('exec-storm', { native: [1.4] }, { processes: 2000 })]).status, /^not measured/);
  t.is(perProcess([workload('exec-storm', { native: [1.4], 'uwrx-fast': [1.6] })]).status, 'not measured (results without the process count)');
});

test('a run\'s CPU time is noted beside its row, and the per-process goal says which part spent it', (t) => {
  const storm = workload('exec-storm', { native: [1.4, 1.5, 1.6], 'uwrx-fast': [2.1, 2.2, 2.3] }, { processes: 2000 });
  storm.rows[0]!.cpu = [1.0, 1.2, 1.1];
  Object.assign(storm.rows[1]!, {
    cpu: [2.0, 2.2, 2.1],
    cpuSplits: [
      { command: 1.4, init: 0.3, supervisor: 0.4 },
      { command: 1.6, init: 0.3, supervisor: 0.4 },
      { command: 1.5, init: 0.3, supervisor: 0.4 },
    ],
  });
  const rows = tableRows([storm]);
  t.regex(rows[0]!.at(-1)!, /^cpu 1\.10 s$/);
  t.regex(rows[1]!.at(-1)!, /cpu 2\.10 s \(command 1\.50, uwrx-init 0\.30, supervisor 0\.40\)$/);
  const startup = workload('startup', { native: [0.004], 'uwrx-fast': [0.204] });
  startup.rows[0]!.cpu = [0];
  Object.assign(startup.rows[1]!, { cpu: [0.2], cpuSplits: [{ command: 0, init: 0.02, supervisor: 0.18 }] });
  // per process: command (1.5 - 1.1) / 2000 = 200 us, uwrx-init 0.28 / 2000, supervisor 0.22 / 2000
  t.regex(goal(evaluateGoals([storm, startup]), 'a short process').measured, /; CPU per process beyond native 450 us: the command's processes 200, uwrx-init 140, supervisor 110$/);
  // and what each process waited on in uwrx-init, less `uwrx run -- true`'s own calls
  storm.rows[1]!.handled = [
    { execve: { calls: 2020, us: 180_000 }, exit_group: { calls: 2002, us: 32_000 }, getrandom: { calls: 50, us: 1_000 } },
    { execve: { calls: 2020, us: 200_000 }, exit_group: { calls: 2002, us: 34_000 }, getrandom: { calls: 30, us: 600 } },
  ];
  startup.rows[1]!.handled = [{ execve: { calls: 20, us: 2_000 }, exit_group: { calls: 2, us: 100 } }];
  t.regex(
    goal(evaluateGoals([storm, startup]), 'a short process').measured,
    /supervisor 110; uwrx-init's handlers per process: execve 1\.00 x 94 us, exit_group 1\.00 x 16 us$/,
  );
  // a call fewer than once per 20 processes (getrandom: 40 in 2000) is left out; no
  // handled counts, no such part
  delete startup.rows[1]!.handled;
  t.regex(goal(evaluateGoals([storm, startup]), 'a short process').measured, /execve 1\.01 x 94 us, exit_group 1\.00 x 16 us$/);
  delete storm.rows[1]!.handled;
  t.regex(goal(evaluateGoals([storm, startup]), 'a short process').measured, /supervisor 110$/);
  // without the split (a native row only) nothing is claimed
  t.false(goal(evaluateGoals([workload('exec-storm', { native: [1.4], 'uwrx-fast': [1.6] }, { processes: 2000 })]), 'a short process').measured.includes('CPU'));
});

test('the children\'s CPU time comes from /proc/self/stat, past a command name with spaces and parentheses', (t) => {
  const stat = '4242 (a (b) c) S 1 4242 4242 0 -1 4194304 100 0 0 0 7 3 250 130 20 0 1 0 1000 0 0';
  t.is(childrenCpuSeconds(stat), 3.8);
  t.is(childrenCpuSeconds('garbage'), undefined);
  t.true(childrenCpuSeconds()! >= 0);
});

test('merging keeps workloads not re-run, in workload order', (t) => {
  const old = [workload('configure', { native: [1] }), workload('c-build', { native: [1] })];
  const fresh = [workload('c-build', { native: [2] })];
  const merged = mergeWorkloads(old, fresh, ['c-build', 'configure']);
  t.deepEqual(merged.map((w) => [w.name, w.rows[0]!.samples[0]]), [['c-build', 2], ['configure', 1]]);
});

test('the machine table names the filesystems the workloads ran on, and whether ext4 keeps a journal', async (t) => {
  const shm = await describeFilesystem('/dev/shm');
  t.regex(shm, /^tmpfs \(.*\) at \/dev\/shm$/);
  const here = await describeFilesystem(process.cwd());
  if (statfsSync(process.cwd()).type === 0xef53) {
    const source = /^ext4 \(([^,)]+)/.exec(here)?.[1];
    t.truthy(source, here);
    const task = readFileSync(`/sys/fs/ext4/${source!.split('/').pop()}/journal_task`, 'utf8').trim();
    t.true(here.includes(task === '<none>' ? ', no journal)' : ', journal)'), here);
  } else t.notRegex(here, /journal/);
  t.is(await describeFilesystem('/no/such/directory'), 'unknown');
  const doc = renderDocument(
    { machine: { cpu: 'cpu', cores: 2, memory: '1 GiB', kernel: 'Linux', os: 'Debian', node: 'v20', filesystems: { 'work trees': here }, tools: {} }, workloads: [] },
    [],
    [],
    '',
  );
  t.true(doc.includes(`| filesystem (work trees) | ${here} |`), 'a row of the machine table');
});

test('the document round-trips its data and keeps the notes', (t) => {
  const data = {
    machine: { cpu: 'cpu', cores: 2, memory: '1 GiB', kernel: 'Linux', os: 'Debian', node: 'v20', tools: { strace: 'strace -- 6.1' } },
    workloads: [workload('c-build', { native: [1, 2, 3] })],
  };
  t.false(encodeData(data).slice(4, -3).includes('--'));
  const doc = renderDocument(data, [], [], 'profile: handlers');
  const parsed = parseDocument(doc);
  t.deepEqual(parsed.data, data);
  t.is(parsed.notes, 'profile: handlers');
});

test('failed uwrx runs are reported next to a goal', (t) => {
  const w = workload('configure', { native: [10], strace: [20], uwrx: [12] });
  w.rows[2]!.failures = 1;
  w.rows[2]!.note = '1 run failed, last: exit 139';
  const goals = evaluateGoals([w]);
  t.is(goal(goals, 'uwrx capture on configure').status, 'met, but 1 uwrx run failed');
  t.regex(goal(goals, 'uwrx capture below strace').status, /uwrx runs failed on configure/);
  t.is(tableRows([w])[2]![8], '1 run failed, last: exit 139');
});

test('a failure is described by its error line, not a trailing hint', (t) => {
  t.is(errorLine('x\nuwrx: internal error: ENOTDIR: not a directory\nuwrx: (set UWRX_DEBUG=1 for details)\n'), 'uwrx: internal error: ENOTDIR: not a directory');
  t.is(errorLine('one\ntwo\n'), 'two');
});
