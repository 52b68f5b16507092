// Partial rebuild (DESIGN.md section 7, docs/record.md "Partial rebuild"). In every run,
// uwrx-init asks before a program on the skippable list starts (src/native/init/
// rebuild.c); at the end the attempt's rebuild index (rebuild.json) records what each of
// them read and left. In a replay, the answer comes from the replayed attempt's index:
// a process whose inputs are all the same is skipped — uwrx-init puts its recorded files
// in place as its own changes, the shim writes its recorded output and exits with its
// recorded status — and any other runs, with the first difference as the reason.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { escapeBytes, unescapeBytes } from '../record/escape.js';
import { OUTPUT_INDEX_FILE, outputRanges, readOutput } from '../record/output-index.js';
import { readStepOptions } from '../record/layout.js';
import { MSG_EXIT, MSG_REBUILD_EXEC, type ExitBody, type ProcessClock, type RebuildAnswer, type RebuildExecBody, type ReplayedFile } from '../protocol/init-messages.js';
import type { CaptureIndexer, LookRows, StartedProcess, TraceLooks } from '../rebuild/capture.js';
import { tableRows } from '../record/accesses.js';
import { MERGER_MESSAGES } from '../protocol/trace-messages.js';
import { ReplayPolicy, type Decision, type OverlayState } from '../rebuild/decide.js';
import { HashCache } from '../rebuild/hashes.js';
import { nodeCrypto } from '../crypto.js';
import { IdentityCache, saveIdentityCache } from '../rebuild/identity-cache.js';
import { REBUILD_INDEX_VERSION, openRebuildIndex, writeRebuildIndex, type Output, type RebuildEntry, type RebuildIndexReader } from '../rebuild/index-file.js';
import { checkSkippableName, skippableNames, type SkippableOptions } from '../rebuild/skippable.js';
import { prepareCompilerTuning, tuneCompiler } from '../actors/compiler-tuning.js';
import { timing } from '../timing.js';
import { defineFeature, type RunContext } from './feature.js';

/** The index's reading of the record (the record reader, its trace decoding, zlib):
 * loaded when first needed or while uwrx-init sets the sandbox up (prepare), not with
 * the command's start, which never needs it (some 3-5 ms of CPU). */
let capture: Promise<typeof import('../rebuild/capture.js')> | undefined;
const captureModule = () => (capture ??= import('../rebuild/capture.js'));

interface Decided {
  process: StartedProcess;
  decision: 'ran' | 'skipped';
  reason: string;
  /** The replayed entry a skip was answered from. */
  from?: RebuildEntry;
}

export default defineFeature({
  name: 'rebuild',
  // its finish reads the finished trace (procs.tsv, accesses.tsv)
  finishAfter: ['processes', 'trace'],
  create() {
    let names: string[] = [];
    let list: SkippableOptions = { skippable: [], notSkippable: [] };
    let policy: ReplayPolicy | undefined;
    let replaying = false;
    /** Why a replay has no policy. */
    let noPolicy = 'the replayed attempt has no rebuild index';
    const hashes = new HashCache();
    const decided: Decided[] = [];
    /** Where each process's clocks ended (its exit report), for the index's entries. */
    const clocks = new Map<number, ProcessClock>();
    let skipped = 0;
    /** What the index reads of the finished trace, read while the files are collected. */
    let early: { looks?: TraceLooks; cached: IdentityCache; error?: unknown } | undefined;
    let reading: NodeJS.Immediate | undefined;
    /** The identities kept by earlier runs (the user cache), once read and remembered. */
    let cachedIdentities: IdentityCache | undefined;
    const identityCache = (): IdentityCache => {
      if (cachedIdentities === undefined) hashes.rememberKept((cachedIdentities = IdentityCache.open()));
      return cachedIdentities;
    };
    let warming: NodeJS.Timeout | undefined;
    /** The access index's rows taken from the merger while the command runs (TAKE_ROWS_MS),
     * one request after the other. */
    let rows: LookRows | undefined;
    let rowsTimer: NodeJS.Timeout | undefined;
    let finishing = false;
    let taking: Promise<boolean> = Promise.resolve(false);
    const takeRows = (run: RunContext): Promise<boolean> =>
      (taking = taking.then(async () => {
        try {
          const raw = await run.supervisor.request<{ rows: Int32Array; paths: string[] } | null>('merger', MERGER_MESSAGES.rows, { from: rows!.taken });
          if (!raw) return false;
          rows!.addRows(tableRows(raw));
          return true;
        } catch {
          // not started yet, or gone: the rows not taken are read from the file
          return false;
        }
      }));
    // what every index loads, loaded ahead (see MSG_REBUILD_EXEC below)
    const warmUp = () => {
      try {
        identityCache();
        nodeCrypto();
      } catch {
        // loaded again, and any failure reported, when the index is made
      }
      timing(`rebuild index: user cache read (${cachedIdentities?.size ?? 0} file hashes)`);
    };

    /** A started process of the skippable list: without a policy, noted as one that ran;
     * with one, the caller decides. */
    const noted = (b: RebuildExecBody, run: RunContext): StartedProcess => {
      const p = startedProcess(b);
      if (policy) return p;
      // An index will be made: what it loads whatever the trace holds (the user
      // cache of file hashes, one read; node:crypto: 8-12 ms) is
      // loaded while the command runs, not after it. Not in a replay with a policy,
      // whose execs wait for their answers.
      if (warming === undefined) {
        warming = setTimeout(warmUp, 0);
        // and the access index's rows so far, again and again until the command ends
        void captureModule().then(({ LookRows }) => {
          if (rows || finishing) return;
          rows = new LookRows();
          rowsTimer = setInterval(() => void takeRows(run), TAKE_ROWS_MS);
          rowsTimer.unref();
        }, () => undefined);
      }
      decided.push({ process: p, decision: 'ran', reason: replaying ? noPolicy : 'not a replay' });
      return p;
    };

    return {
      async configure(settings) {
        const o = settings.options;
        for (const n of o.skippable ?? []) checkSkippableName(n, '--skippable');
        for (const n of o.notSkippable ?? []) checkSkippableName(n, '--not-skippable');
        list = { skippable: o.skippable ?? [], notSkippable: o.notSkippable ?? [] };
        const replayed = settings.stepOptions.replay;
        if (typeof replayed === 'string' && o.skippable === undefined && o.notSkippable === undefined) {
          const recorded = (await readStepOptions(replayed))?.rebuild as Partial<SkippableOptions> | undefined;
          if (recorded) list = { skippable: recorded.skippable ?? [], notSkippable: recorded.notSkippable ?? [] };
        }
        settings.stepOptions.rebuild = list;
        names = skippableNames(list);
      },
      record(run) {
        const replayed = run.settings.stepOptions.replay;
        if (typeof replayed !== 'string') {
          // the nearest parent's index knows the toolchain's files by identity too
          const parent = run.settings.parents[0];
          const index = parent === undefined ? undefined : readIndexOrUndefined(parent);
          if (index?.usable) hashes.remember(index.identities);
          return;
        }
        replaying = true;
        const index = openRebuildIndex(replayed);
        if (index?.usable) {
          policy = new ReplayPolicy(replayed, index, hashes);
          hashes.remember(index.identities);
        } else if (index) {
          noPolicy = `the replayed attempt's rebuild index is of version ${index.version} (this uwrx reads version ${REBUILD_INDEX_VERSION})`;
        }
      },
      prepare() {
        captureModule().catch(() => undefined);
        prepareCompilerTuning();
      },
      // only a policy's answers can skip: otherwise the exec need not wait for them
      plan: () => ({ skippable: names, ...(policy ? { rebuildWait: true, replayedDir: policy.replayedDir } : {}) }),
      // A capture's execs are noted (a notification: nothing waits), a replay's asked about.
      on: {
        [MSG_REBUILD_EXEC]: (b: RebuildExecBody, run) => void noted(b, run),
        [MSG_EXIT]: (b: ExitBody) => {
          if (b.clock) clocks.set(b.pid, b.clock);
        },
      },
      requests: {
        [MSG_REBUILD_EXEC]: async (b: RebuildExecBody, run): Promise<RebuildAnswer> => {
          const p = noted(b, run);
          if (!policy) return { skip: false };
          const root = run.sandboxRoot();
          let d: Decision;
          try {
            d = policy.decide(p, root, overlayState(b));
          } catch (err) {
            // a damaged entry of the replayed index: what it stood for cannot be replayed
            d = { skip: false, reason: `the replayed rebuild index is damaged: ${(err as Error).message}` };
          }
          if (!d.skip) {
            decided.push({ process: p, decision: 'ran', reason: d.reason });
            return { skip: false, reason: d.reason };
          }
          let output: Buffer;
          let files: ReplayedFile[];
          try {
            output = readOutput(path.join(policy.replayedDir, OUTPUT_INDEX_FILE), d.entry.stdio.ranges);
            files = replayedFiles(d.entry.outputs, policy.replayedDir);
          } catch (err) {
            const reason = `could not replay it: ${(err as Error).message}`;
            decided.push({ process: p, decision: 'ran', reason });
            return { skip: false, reason };
          }
          skipped++;
          decided.push({ process: p, decision: 'skipped', reason: d.reason, from: d.entry });
          return { skip: true, status: d.entry.status ?? 0, output, files, reason: d.reason, ...(d.entry.clock ? { clock: d.entry.clock } : {}) };
        },
      },
      // The trace is finished (procs.tsv, accesses.tsv) and the next feature asks the IO
      // thread to collect the files (features/index.ts): what the index needs of the
      // trace alone is read on this thread meanwhile, from the next turn of the event
      // loop, once that request is on its way. A damaged trace is reported by derive.
      async finish(run, { actorFailure }) {
        clearTimeout(warming);
        clearInterval(rowsTimer);
        finishing = true;
        if (actorFailure || !decided.some((d) => d.decision === 'ran')) return;
        if (decided.length >= LONG_REBUILD_INDEX) tuneCompiler('default');
        const { readTraceLooks, resolveLooksBelow } = await captureModule();
        // the trace is finished: the merger's last rows complete what was taken
        const during = rows?.taken ?? 0;
        const complete = rows ? await takeRows(run) : false;
        if (rows) timing(`rebuild index: access rows taken (${during} while the command ran, ${rows.taken - during} after${complete ? '' : ', the rest from the file'})`);
        reading = setImmediate(() => {
          const cached = identityCache();
          let looks: TraceLooks;
          try {
            early = { looks: (looks = readTraceLooks(run.paths.attemptDir, rows && { rows, complete })), cached };
          } catch (error) {
            early = { cached, error };
            return;
          }
          timing('rebuild index: trace read');
          // then, unless derive started meanwhile, the versions read in the layers below
          reading = setImmediate(() => {
            try {
              resolveLooksBelow(run.paths.attemptDir, looks);
            } catch {
              // derive resolves them itself, and reports what fails
            }
            timing('rebuild index: layers below resolved');
          });
        });
      },
      async derive(run, { actorFailure }) {
        // what finish's reading has not done by now is done below, as far as needed
        clearImmediate(reading);
        clearTimeout(warming);
        clearInterval(rowsTimer);
        if (actorFailure || decided.length === 0) {
          if (!actorFailure) await writeRebuildIndex(run.paths.attemptDir, { version: REBUILD_INDEX_VERSION, skippable: names, processes: [] });
          return;
        }
        // a long index pays for the optimizing compiler, off after the command (compiler-tuning.ts)
        if (decided.length >= LONG_REBUILD_INDEX) tuneCompiler('default');
        try {
          // the record is read only when a process ran (a replay that skipped all needs none)
          const { CaptureIndexer } = await captureModule();
          let indexer: CaptureIndexer | undefined;
          let cached: IdentityCache | undefined;
          const newIndexer = () => {
            cached = early?.cached ?? identityCache();
            if (early?.error !== undefined) throw early.error;
            // the record and the run directory are absent inside: not in what a listing saw
            return new CaptureIndexer(run.paths.attemptDir, hashes, [run.settings.buildDir, run.runDir], early?.looks);
          };
          const withClock = (e: RebuildEntry): RebuildEntry => {
            const clock = clocks.get(e.pid) ?? e.clock;
            return clock ? { ...e, clock } : e;
          };
          const processes = decided
            .map((d): RebuildEntry => withClock(d.decision === 'skipped'
              ? { ...d.from!, ...d.process, decision: 'skipped', reason: d.reason, stdio: { pids: [d.process.pid], ranges: [] } }
              : (indexer ??= newIndexer()).entry(d.process, 'ran', d.reason)))
            .sort((a, b) => a.pid - b.pid);
          locateOutput(run.paths.attemptDir, processes);
          const inputPaths = new Set(processes.flatMap((e) => e.inputs.map((i) => i[1])));
          const identities = hashes.identitiesOf(inputPaths);
          await writeRebuildIndex(run.paths.attemptDir, { version: REBUILD_INDEX_VERSION, skippable: names, processes, identities });
          timing(`rebuild index written (${hashes.computed} files hashed, ${hashes.known} known by identity)`);
          // the cache learns what this run hashed; a run that hashed nothing new leaves it
          if (cached !== undefined && hashes.added > 0) {
            const kept = saveIdentityCache(hashes.usedIdentities(), cached);
            timing(kept ? 'file hashes kept in the user cache' : 'the user cache could not be written');
          }
        } catch (err) {
          run.problem({ kind: 'rebuild-index', count: 1, detail: (err as Error).message });
        }
      },
      status: () => (replaying ? { skipped } : {}),
    };
  },
});

function startedProcess(b: RebuildExecBody): StartedProcess {
  const text = (u: Uint8Array) => escapeBytes(Buffer.from(u));
  return {
    pid: b.pid,
    seed: b.seed ? Buffer.from(b.seed).toString('hex') : null,
    exe: text(b.exe),
    argv: b.argv.map(text),
    cwd: b.cwd ? text(b.cwd) : null,
    env: b.env.map(text),
    ...(b.stdio ? { stdio_dest: b.stdio } : {}),
  };
}

function overlayState(b: RebuildExecBody): OverlayState | null {
  return b.overlays ? b.overlays.map(([mount, touched]) => [escapeBytes(Buffer.from(mount)), touched] as const) : null;
}

const KIND_CODE = { file: 0, dir: 1, absent: 2 } as const;

/** Processes in a rebuild index from which its making lasts long enough for TurboFan's
 * compiles to pay (compiler-tuning.ts). Measured on libiberty's index of 200 processes
 * made over and over: with TurboFan off the whole took about 75% of the CPU for 200 and
 * for 1,000 processes' worth, and about as much as with it for 3,000. */
const LONG_REBUILD_INDEX = 2000;

/** How often the access index's rows are taken from the merger while the command runs:
 * what is left after it is what the last interval's processes and the last ones did. */
const TAKE_ROWS_MS = 300;

/** The recorded effect of a skipped process on files, for uwrx-init to carry out as the
 * process's own changes (src/native/init/files.c files_change_for). */
/** The files a skipped process leaves. A stored version in the replayed attempt (where
 * its outputs are) is named, and uwrx-init copies it from there: the bytes never pass
 * through this process or the socket. */
function replayedFiles(outputs: Output[], replayedDir: string): ReplayedFile[] {
  const inside = replayedDir.endsWith('/') ? replayedDir : replayedDir + '/';
  const bytes = (source: string): Pick<ReplayedFile, 'data' | 'source'> => {
    if (!source.startsWith(inside)) return { data: readFileSync(source) };
    // a damaged record is found here, so the decision says why the process ran
    if (!statSync(source, { throwIfNoEntry: false })?.isFile()) throw new Error(`its stored version ${source} is missing`);
    return { source: Buffer.from(source.slice(inside.length)) };
  };
  return outputs.map(([file, kind, source, mode]) => ({
    path: unescapeBytes(file),
    kind: KIND_CODE[kind],
    mode,
    ...(kind === 'file' ? bytes(source!) : {}),
  }));
}

/** Each entry's output runs in this attempt's output index; without the index, the
 * output of the entries is unknown and none of them may be skipped later. */
function locateOutput(attemptDir: string, processes: RebuildEntry[]): void {
  const owners = new Map<number, RebuildEntry[]>();
  for (const e of processes) {
    for (const pid of e.stdio.pids) {
      const list = owners.get(pid);
      if (list) list.push(e);
      else owners.set(pid, [e]);
    }
  }
  // a descendant's write on fd 1 or 2 is the entry's output when it went where the
  // entry's own fd went (cc1's stdout under gcc -pipe is the pipe to as: not output)
  const mine = (e: RebuildEntry, fd: number, dest: string) => !e.stdio_dest || e.stdio_dest[fd - 1] === dest;
  const ranges = outputRanges(path.join(attemptDir, OUTPUT_INDEX_FILE), owners, mine);
  for (const e of processes) {
    if (ranges) e.stdio.ranges = ranges.get(e) ?? [];
    else e.unsafe ??= `its output is not in the record (no ${OUTPUT_INDEX_FILE})`;
  }
}

/** An index that is only a help (identities): unreadable is the same as none. */
function readIndexOrUndefined(attemptDir: string): RebuildIndexReader | undefined {
  try {
    return openRebuildIndex(attemptDir);
  } catch {
    return undefined;
  }
}
