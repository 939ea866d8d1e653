// The tracker's background work (old Idempotency-Keys, expired leases): a task run at once and then
// every interval, never two runs at once, and a stop that waits for the run in progress.

export interface Periodic {
  task: () => Promise<unknown>;
  onError: (error: unknown) => void;
  /** Schedules the ticks; tests pass their own and tick by hand. Default: an unref'd setInterval. */
  schedule?: (tick: () => void, intervalMs: number) => () => void;
}

function everyInterval(tick: () => void, intervalMs: number): () => void {
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Starts `task`; a tick that finds the previous run still going skips rather than piles up. */
export function runEvery(intervalMs: number, { task, onError, schedule = everyInterval }: Periodic): () => Promise<void> {
  let running: Promise<void> | null = null;
  let stopped = false;
  const tick = () => {
    if (stopped || running) return;
    running = Promise.resolve()
      .then(task)
      .then(() => undefined, onError)
      .finally(() => (running = null));
  };
  tick();
  const cancel = schedule(tick, intervalMs);
  return async () => {
    stopped = true;
    cancel();
    await running;
  };
}
