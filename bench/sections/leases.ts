// 7. Leases: 1,000 agents each holding one claim and renewing it on schedule, beside the agents'
// workload (workload.ts). Runs with and without the renewals take turns, so drift hits both alike.
// The schedule of the MCP server's default (a 120 s lease renewed every 40 s: 25 renewals/s) and ten
// times that rate.
import type { Context } from "../lib/context.ts";
import { startTrackerProcess } from "../lib/tracker.ts";
import { api, medianFigures, runWorkload, seed, type WorkloadFigures } from "./workload.ts";

export interface LeasesResult {
  holders: number;
  seconds_per_run: number;
  repeats: number;
  /** Renewal intervals measured, in seconds; 0 = no renewals. */
  rows: { renew_every_s: number; renewals_per_second: number; renewals: number; figures: WorkloadFigures }[];
}

const HOLDERS = 1000;
const LEASE_SECONDS = 120;

/** Renews every held claim once per `everyMs`, spread evenly, until stopped; returns the count. */
function renewOnSchedule(url: string, project: string, everyMs: number): { stop(): Promise<number> } {
  let stopped = false;
  let renewals = 0;
  const tickMs = 10;
  const perTick = (HOLDERS * tickMs) / everyMs;
  let owed = 0;
  let next = 0;
  const inFlight = new Set<Promise<unknown>>();
  const loop = (async () => {
    while (!stopped) {
      owed += perTick;
      while (owed >= 1) {
        owed--;
        const i = next++ % HOLDERS;
        const renewal = api(url, "POST", `/tasks/HELD-${i}/heartbeat?project=${project}`, {}, `holder-${i}`).then(
          () => renewals++,
        );
        inFlight.add(renewal);
        void renewal.finally(() => inFlight.delete(renewal));
      }
      await Bun.sleep(tickMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await Promise.all(inFlight);
      return renewals;
    },
  };
}

export async function measureLeases(ctx: Context): Promise<LeasesResult> {
  const seconds = ctx.quick ? 0.5 : 2;
  const repeats = ctx.quick ? 1 : 3;
  const intervals = [0, 40, 4];
  const tracker = await startTrackerProcess();
  try {
    ctx.progress(`leases: ${HOLDERS} agents claim one task each`);
    await seed(tracker.url, "bench-held", "HELD", HOLDERS);
    for (let i = 0; i < HOLDERS; i++) {
      await api(
        tracker.url,
        "PUT",
        `/tasks/HELD-${i}/status?project=bench-held`,
        { status: "in_progress", lease_seconds: LEASE_SECONDS },
        `holder-${i}`,
      );
    }
    const perRun = ctx.quick ? 3000 : 12000;
    const runs = new Map<number, { figures: WorkloadFigures; renewals: number }[]>();
    let runIndex = 0;
    for (let r = 0; r < repeats; r++) {
      const order = r % 2 === 0 ? intervals : [...intervals].reverse();
      for (const every of order) {
        const project = `bench-work-${runIndex++}`;
        await seed(tracker.url, project, "W", perRun);
        ctx.progress(
          `leases: workload ${every ? `with renewals every ${every} s` : "without renewals"} (run ${r + 1}/${repeats})`,
        );
        const renewing = every ? renewOnSchedule(tracker.url, "bench-held", every * 1000) : undefined;
        const figures = await runWorkload(tracker.url, project, "W", seconds, perRun);
        const renewals = (await renewing?.stop()) ?? 0;
        runs.set(every, [...(runs.get(every) ?? []), { figures, renewals }]);
      }
    }
    const held = await api(tracker.url, "GET", `/tasks?project=bench-held&status=in_progress&limit=1`);
    if (held.tasks.length !== 1) throw new Error("leases: the held claims expired during the bench");
    return {
      holders: HOLDERS,
      seconds_per_run: seconds,
      repeats,
      rows: intervals.map((every) => {
        const results = runs.get(every)!;
        const renewals = results.reduce((sum, result) => sum + result.renewals, 0);
        return {
          renew_every_s: every,
          renewals_per_second: every ? HOLDERS / every : 0,
          renewals,
          figures: medianFigures(results.map((result) => result.figures)),
        };
      }),
    };
  } finally {
    await tracker.stop();
  }
}
