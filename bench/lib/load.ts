// The load generator: N clients in a closed loop (each sends its next request when the last one is
// answered), bounded in count and in time. The same code loads our tracker and the floors.
import { type Percentiles, percentiles } from "./stats.ts";

export interface LoadResult extends Percentiles {
  clients: number;
  ops: number;
  seconds: number;
  perSecond: number;
  errors: number;
  firstError?: string;
}

/**
 * Runs `op(client, i)` from `clients` concurrent loops until `durationMs` has passed or `maxOps`
 * were started. `op` returns false when it has nothing left to do (its client stops).
 */
export async function closedLoop(options: {
  clients: number;
  durationMs: number;
  maxOps: number;
  op: (client: number, i: number) => Promise<boolean | void>;
}): Promise<LoadResult> {
  const latencies = new Float64Array(options.maxOps);
  let started = 0;
  let finished = 0;
  let errors = 0;
  let firstError: string | undefined;
  const begin = performance.now();
  const deadline = begin + options.durationMs;
  const client = async (index: number) => {
    while (started < options.maxOps && performance.now() < deadline) {
      const i = started++;
      const t0 = performance.now();
      try {
        const more = await options.op(index, i);
        latencies[finished++] = performance.now() - t0;
        if (more === false) return;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        if (errors > 20) return;
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, (_, index) => client(index)));
  const seconds = (performance.now() - begin) / 1000;
  return {
    clients: options.clients,
    ops: finished,
    seconds,
    perSecond: finished / seconds,
    errors,
    firstError,
    ...percentiles(latencies.subarray(0, finished)),
  };
}

/** One request at a time, `count` times, after `warmup` unmeasured ones; latencies in ms. */
export async function sequential(count: number, warmup: number, op: (i: number) => Promise<unknown>): Promise<Float64Array> {
  for (let i = 0; i < warmup; i++) await op(i);
  const latencies = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await op(warmup + i);
    latencies[i] = performance.now() - t0;
  }
  return latencies;
}
