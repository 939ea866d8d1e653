import { describe, expect, test } from "bun:test";
import { runEvery } from "./timers.ts";

/** A task that stays running until the test lets it finish. */
function blockingTask() {
  const runs: Array<() => void> = [];
  return {
    runs,
    task: () => new Promise<void>((resolve) => runs.push(resolve)),
  };
}

describe("runEvery", () => {
  test("runs at once, skips ticks while a run is in progress, and runs again after it", async () => {
    let tick = () => {};
    const { runs, task } = blockingTask();
    const stop = runEvery(250, { task, onError: () => {}, schedule: (next) => ((tick = next), () => {}) });
    await Promise.resolve();
    expect(runs).toHaveLength(1);
    tick();
    tick();
    await Promise.resolve();
    expect(runs).toHaveLength(1);
    runs[0]!();
    await new Promise<void>((resolve) => setImmediate(resolve));
    tick();
    await Promise.resolve();
    expect(runs).toHaveLength(2);
    runs[1]!();
    await stop();
  });

  test("stop() cancels the schedule and waits for the run in progress", async () => {
    let cancelled = false;
    let tick = () => {};
    const { runs, task } = blockingTask();
    const stop = runEvery(250, { task, onError: () => {}, schedule: (next) => ((tick = next), () => (cancelled = true)) });
    await Promise.resolve();
    let stoppedAt = "";
    const stopping = stop().then(() => (stoppedAt = "stopped"));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect([cancelled, stoppedAt]).toEqual([true, ""]);
    runs[0]!();
    await stopping;
    tick();
    expect([stoppedAt, runs.length]).toEqual(["stopped", 1]);
  });

  test("a failing run is reported and does not stop the next", async () => {
    let tick = () => {};
    const errors: unknown[] = [];
    let calls = 0;
    const task = async () => {
      calls++;
      throw new Error(`run ${calls} failed`);
    };
    const stop = runEvery(250, { task, onError: (error) => errors.push(error), schedule: (next) => ((tick = next), () => {}) });
    await new Promise<void>((resolve) => setImmediate(resolve));
    tick();
    await stop();
    expect(errors.map((error) => (error as Error).message)).toEqual(["run 1 failed", "run 2 failed"]);
  });
});
