// 8. Boards: 50 people watching the board while agents work (workload.ts). A board opens as the page
// does (the projects, the first page of each column) and then holds the live stream GET /events open,
// reading every event. Runs with and without the boards take turns.
import type { Context } from "../lib/context.ts";
import { API_KEY, startTrackerProcess } from "../lib/tracker.ts";
import { api, medianFigures, runWorkload, seed, type WorkloadFigures } from "./workload.ts";

export interface BoardsResult {
  boards: number;
  seconds_per_run: number;
  repeats: number;
  without: WorkloadFigures;
  with: WorkloadFigures;
  /** Events the boards received in the runs with boards, all boards together. */
  events_received: number;
}

const BOARDS = 50;

interface OpenBoard {
  close(): Promise<void>;
  events(): number;
}

async function openBoard(url: string, project: string): Promise<OpenBoard> {
  await api(url, "GET", "/projects");
  for (const filter of ["ready=true", "ready=false", "status=in_progress", "status=completed"]) {
    await api(url, "GET", `/tasks?project=${project}&${filter}&limit=50`);
  }
  const abort = new AbortController();
  const response = await fetch(`${url}/events?project=${project}`, {
    headers: { authorization: `Bearer ${API_KEY}`, accept: "text/event-stream" },
    signal: abort.signal,
  });
  if (!response.ok || !response.body) throw new Error(`boards: GET /events answered ${response.status}`);
  let events = 0;
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body!) {
        const text = decoder.decode(chunk, { stream: true });
        for (let at = text.indexOf("event: task"); at !== -1; at = text.indexOf("event: task", at + 1)) events++;
      }
    } catch {
      // aborted
    }
  })();
  return {
    events: () => events,
    async close() {
      abort.abort();
      await reading;
    },
  };
}

export async function measureBoards(ctx: Context): Promise<BoardsResult> {
  const seconds = ctx.quick ? 0.5 : 2;
  const repeats = ctx.quick ? 1 : 3;
  const perRun = ctx.quick ? 3000 : 12000;
  const tracker = await startTrackerProcess();
  const without: WorkloadFigures[] = [];
  const withBoards: WorkloadFigures[] = [];
  let eventsReceived = 0;
  try {
    let runIndex = 0;
    for (let r = 0; r < repeats; r++) {
      for (const boards of r % 2 === 0 ? [false, true] : [true, false]) {
        const project = `bench-board-${runIndex++}`;
        await seed(tracker.url, project, "B", perRun);
        ctx.progress(`boards: workload ${boards ? `with ${BOARDS} boards open` : "without boards"} (run ${r + 1}/${repeats})`);
        const open = boards ? await Promise.all(Array.from({ length: BOARDS }, () => openBoard(tracker.url, project))) : [];
        const figures = await runWorkload(tracker.url, project, "B", seconds, perRun);
        await Bun.sleep(100); // the last events reach the boards
        eventsReceived += open.reduce((sum, board) => sum + board.events(), 0);
        await Promise.all(open.map((board) => board.close()));
        (boards ? withBoards : without).push(figures);
      }
    }
  } finally {
    await tracker.stop();
  }
  return { boards: BOARDS, seconds_per_run: seconds, repeats, without: medianFigures(without), with: medianFigures(withBoards), events_received: eventsReceived };
}
