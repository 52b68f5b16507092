// Periodic work that may ride on a wake-up of its thread that came for something else.
// Every wake-up of a thread costs a context switch, which on a loaded machine with few
// CPUs is dear: the collector's scan timer and uwrx-init's notices (written every 10-20 ms
// while processes run) each woke the main thread on their own. A socket reader calls
// threadWoke() after handling what it read; periodic work listening here may do its
// turn then (in the check phase of the same loop iteration) instead of at its timer.
// Per thread: a listener in a worker thread hears only that thread's wake-ups.

const riders = new Set<() => void>();

/** `rider` is called at every wake-up threadWoke() reports; returns its removal. */
export function rideWakeUps(rider: () => void): () => void {
  riders.add(rider);
  return () => {
    riders.delete(rider);
  };
}

/** The thread woke for input: the riders may do their work now. */
export function threadWoke(): void {
  for (const rider of riders) rider();
}
