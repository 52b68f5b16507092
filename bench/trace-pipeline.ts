// Trace pipeline throughput: events per second through collector + merger, and the
// bytes each event costs in the final `perfetto` file. The buffers are written first by
// the C test driver (the real writer), so only the Node side is timed.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finishPipeline, makeRunDirs, pipeline, removeTempDirs, traceDriver } from './trace-helpers.js';

export interface TracePipelineResult {
  eventsPerSecond: number;
  bytesPerEvent: number;
}

export async function benchTracePipeline(processes = 50, eventsPerProcess = 20_000): Promise<TracePipelineResult> {
  const dirs = makeRunDirs('uwrx-bench-trace-');
  try {
    const bufferBytes = Number(execFileSync(traceDriver(), ['bench', dirs.traces, String(processes), String(eventsPerProcess)], { encoding: 'utf8' }).trim());
    const p = pipeline(dirs);
    const start = process.hrtime.bigint();
    const stats = finishPipeline(p);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const size = statSync(path.join(dirs.attemptDir, 'perfetto')).size;
    const result = { eventsPerSecond: Math.round(stats.events / seconds), bytesPerEvent: Number((size / stats.events).toFixed(2)) };
    if (isMain) {
      console.log(`${stats.events} events from ${processes} processes in ${seconds.toFixed(2)} s`);
      console.log(`buffers: ${(bufferBytes / stats.events).toFixed(1)} bytes/event; perfetto: ${size} bytes`);
    }
    return result;
  } finally {
    removeTempDirs();
  }
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);

if (isMain) {
  const r = await benchTracePipeline();
  console.log(`events/second: ${r.eventsPerSecond}`);
  console.log(`bytes/event: ${r.bytesPerEvent}`);
}
