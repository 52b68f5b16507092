// UWRX_DEBUG_TIMING=1: one stderr line per phase of a run, with the time since the
// Node process started, to see where a short run spends its time.
import { readFileSync } from 'node:fs';

const enabled = !!process.env.UWRX_DEBUG_TIMING && process.env.UWRX_DEBUG_TIMING !== '0';
let last = 0;
let lastCpu = 0;
let lastMain = 0;
let lastFaults = 0;
if (enabled) process.on('exit', () => timing('event loop empty, exiting'));

/** CPU time of the calling thread in ms (the scheduler's count, in ns), or NaN. */
function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** Notes that `phase` ended now (nothing unless UWRX_DEBUG_TIMING is set). */
export function timing(phase: string): void {
  if (!enabled) return;
  // the time since the process started; the global loads perf_hooks on its first use (2-5
  // ms of CPU), which only this debugging aid pays (src/monotonic.ts)
  const now = performance.now();
  // CPU of the whole Node process (every thread) since it started, and of the main
  // thread alone (the worker threads run beside it): wall times on a loaded machine say
  // little
  const { user, system } = process.cpuUsage();
  const cpu = (user + system) / 1000;
  const main = threadCpuMs();
  // page faults of the process (minor ones: fresh memory), a count that the machine's
  // load does not move, where each costs several microseconds (14-21 us on a VM here)
  const faults = process.resourceUsage().minorPageFault;
  process.stderr.write(
    `uwrx timing: ${now.toFixed(1).padStart(8)} ms  +${(now - last).toFixed(1).padStart(7)} ms  cpu ${cpu.toFixed(0).padStart(5)} ms +${(cpu - lastCpu).toFixed(0).padStart(4)}  main ${main.toFixed(0).padStart(4)} ms +${(main - lastMain).toFixed(0).padStart(3)}  faults +${String(faults - lastFaults).padStart(4)}  ${phase}\n`,
  );
  last = now;
  lastCpu = cpu;
  lastMain = main;
  lastFaults = faults;
}
