// 8. Boards: 50 people watching the board while agents work (workload.ts). A board opens as the page
// does (the projects, the first page of each column) and then holds the live stream GET /events open,
// reading every event, in a process of its own (board-viewers.ts), as browsers would be. Runs with and
// without the boards take turns.

import { join } from "node:path";
import type { Context } from "../lib/context.ts";
import { API_KEY, startTrackerProcess } from "../lib/tracker.ts";
import { medianFigures, runWorkload, seed, type WorkloadFigures } from "./workload.ts";

export interface BoardsResult {
  boards: number;
  seconds_per_run: number;
  repeats: number;
  without: WorkloadFigures;
  with: WorkloadFigures;
  /** Events the boards received in the runs with boards, all boards together. */
  events_received: number;
  /** Times a board fell behind, was told to reload by the tracker, and loaded the page again. */
  reloads: number;
}

const BOARDS = 50;
/**
 * Each board is a person with a key of their own, as on a team: one key holds 20 streams at most
 * (docs/API.md, GET /events), so 50 boards on the agents' key would be refused.
 */
const VIEWER_KEYS = Array.from({ length: BOARDS }, (_, i) => `bench-viewer-key-${String(i).padStart(4, "0")}`);

/** The 50 viewers, in a process of their own (board-viewers.ts). */
async function openBoards(url: string, project: string): Promise<{ close(): Promise<{ events: number; reloads: number }> }> {
  const child = Bun.spawn(["bun", join(import.meta.dir, "board-viewers.ts"), url, project, String(BOARDS)], {
    env: { ...process.env, BENCH_API_KEYS: VIEWER_KEYS.join(",") },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let output = "";
  while (!output.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`boards: the viewers' process exited (${await child.exited}) before its streams were open`);
    output += decoder.decode(value, { stream: true });
  }
  return {
    async close() {
      child.stdin.end();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        output += decoder.decode(value, { stream: true });
      }
      if ((await child.exited) !== 0) throw new Error("boards: the viewers' process failed");
      const [events, reloads] = output.split("\n").filter(Boolean).at(-1)!.split(" ").map(Number);
      return { events: events!, reloads: reloads ?? 0 };
    },
  };
}

export async function measureBoards(ctx: Context): Promise<BoardsResult> {
  const seconds = ctx.quick ? 0.5 : 2;
  const repeats = ctx.quick ? 1 : 3;
  const perRun = ctx.quick ? 3000 : 12000;
  const tracker = await startTrackerProcess({ TRACKER_API_KEYS: [API_KEY, ...VIEWER_KEYS].join(",") });
  const without: WorkloadFigures[] = [];
  const withBoards: WorkloadFigures[] = [];
  let eventsReceived = 0;
  let reloads = 0;
  try {
    let runIndex = 0;
    for (let r = 0; r < repeats; r++) {
      for (const boards of r % 2 === 0 ? [false, true] : [true, false]) {
        const project = `bench-board-${runIndex++}`;
        await seed(tracker.url, project, "B", perRun);
        ctx.progress(`boards: workload ${boards ? `with ${BOARDS} boards open` : "without boards"} (run ${r + 1}/${repeats})`);
        const viewers = boards ? await openBoards(tracker.url, project) : undefined;
        const figures = await runWorkload(tracker.url, project, "B", seconds, perRun);
        await Bun.sleep(300); // the last events reach the boards (a flush every 100 ms)
        if (viewers) {
          const received = await viewers.close();
          eventsReceived += received.events;
          reloads += received.reloads;
        }
        (boards ? withBoards : without).push(figures);
      }
    }
  } finally {
    await tracker.stop();
  }
  return {
    boards: BOARDS,
    seconds_per_run: seconds,
    repeats,
    without: medianFigures(without),
    with: medianFigures(withBoards),
    events_received: eventsReceived,
    reloads,
  };
}
