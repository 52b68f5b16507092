// Processes: follows uwrx-init's spawn, exec and exit messages, hands them to the run's
// listeners as they happen (when the run has any: decoding them costs per process),
// and records the process table (procs.tsv) at the end.
import { MSG_EXEC, MSG_EXIT, MSG_SPAWN, type ExecBody, type ExitBody, type SpawnBody } from '../protocol/init-messages.js';
import { ProcessTable } from '../sandbox/process-table.js';
import { defineFeature } from './feature.js';

const decoder = new TextDecoder('utf-8');
const text = (b: Uint8Array | null | undefined) => (b ? decoder.decode(b) : '');

export default defineFeature({
  name: 'processes',
  finishAfter: [],
  create() {
    const table = new ProcessTable();
    return {
      on: {
        [MSG_SPAWN]: (b: SpawnBody, run) => {
          table.spawn(b);
          if (run.listened) run.publish({ type: 'spawn', pid: b.pid, ppid: b.ppid, time: Number(b.time) });
        },
        [MSG_EXEC]: (b: ExecBody, run) => {
          table.exec(b);
          if (run.listened) run.publish({ type: 'exec', pid: b.pid, argv: b.argv.map(text), cwd: text(b.cwd), path: text(b.path), time: Number(b.time) });
        },
        [MSG_EXIT]: (b: ExitBody, run) => {
          table.exit(b);
          if (run.listened) run.publish({ type: 'exit', pid: b.pid, exitCode: b.code, signal: b.signal, time: Number(b.time) });
        },
      },
      async finish(run) {
        await run.storage.storeProcessTable(table.records());
      },
      status: () => ({ processes: table.size }),
    };
  },
});
