// Milliseconds of the monotonic clock, for durations within one thread. Not
// performance.now(): Node's global `performance` loads perf_hooks and ten internal
// modules on its first use, 2-5 ms of CPU in every command (and thread) that reads it.
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
