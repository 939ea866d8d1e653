// 6. Listing: a page of GET /tasks beside GET /tasks/next as one project grows from 1,000 to 100,000
// tasks, on SQLite and (when a URL is given) PostgreSQL; the first page and one five pages deep (keyset
// pagination: it should cost the same); and list_tasks through the compiled MCP server.
import type { Context } from "../lib/context.ts";
import { sequential } from "../lib/load.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { benchPostgresUrl, withFreshDatabase } from "../lib/postgres.ts";
import { medianOfRounds, type Percentiles, percentiles, spreadPercent } from "../lib/stats.ts";
import { API_KEY, startTrackerProcess, type TrackerProcess } from "../lib/tracker.ts";
import { api, seed } from "./workload.ts";

export interface ListingPoint {
  backend: string;
  tasks: number;
  next: Percentiles & { spread: number };
  first_page: Percentiles & { spread: number };
  deep_page: Percentiles & { spread: number };
}

export interface ListingResult {
  page_size: number;
  points: ListingPoint[];
  /** list_tasks (default limit 50) through dist/task-tracking-mcp, at the largest size on SQLite. */
  mcp_list_tasks: Percentiles;
  /** get_next_task of the same project through the same server, in turns with list_tasks. */
  mcp_next_task: Percentiles;
  postgres: { ran: boolean; reason: string };
}

const PAGE = 100;
const PROJECT = "bench-list";

async function measurePoint(ctx: Context, backend: string, url: string, tasks: number): Promise<ListingPoint> {
  const rounds = 3;
  const perRound = ctx.quick ? 100 : 300;
  let cursor: string | null = null;
  for (let page = 0; page < 5; page++) {
    const body: { next_cursor: string | null } = await api(
      url,
      "GET",
      `/tasks?project=${PROJECT}&limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`,
    );
    cursor = body.next_cursor;
  }
  if (!cursor) throw new Error(`listing: fewer than 6 pages of ${PAGE} at ${tasks} tasks`);
  const deepCursor = cursor;
  const paths = {
    next: `/tasks/next?project=${PROJECT}`,
    first_page: `/tasks?project=${PROJECT}&limit=${PAGE}`,
    deep_page: `/tasks?project=${PROJECT}&limit=${PAGE}&cursor=${deepCursor}`,
  };
  const figures: Record<string, Percentiles & { spread: number }> = {};
  for (const [name, path] of Object.entries(paths)) {
    const runs: Percentiles[] = [];
    for (let round = 0; round < rounds; round++)
      runs.push(percentiles(await sequential(perRound, 30, () => api(url, "GET", path))));
    figures[name] = { ...medianOfRounds(runs), spread: spreadPercent(runs.map((r) => r.p50)) };
  }
  ctx.progress(`listing: ${backend} at ${tasks.toLocaleString("en-US")} tasks measured`);
  return { backend, tasks, next: figures.next!, first_page: figures.first_page!, deep_page: figures.deep_page! };
}

/** Grows the project through `sizes`, measuring at each; a quarter of the tasks are completed first. */
async function measureBackend(ctx: Context, backend: string, url: string, sizes: number[]): Promise<ListingPoint[]> {
  const points: ListingPoint[] = [];
  let added = 0;
  for (const size of sizes) {
    ctx.progress(`listing: ${backend}: adding tasks up to ${size.toLocaleString("en-US")}`);
    const prefix = `L${size}`;
    await seed(url, PROJECT, prefix, size - added);
    // Some history in each status, so the page crosses what a real backlog holds.
    for (let i = 0; i < 50; i++) {
      await api(url, "PUT", `/tasks/${prefix}-${i}/status?project=${PROJECT}`, { status: "in_progress" }, "bench");
      if (i % 2 === 0) await api(url, "PUT", `/tasks/${prefix}-${i}/status?project=${PROJECT}`, { status: "completed" }, "bench");
    }
    added = size;
    points.push(await measurePoint(ctx, backend, url, size));
  }
  return points;
}

async function measureListTasksTool(ctx: Context, tracker: TrackerProcess): Promise<{ list: Percentiles; next: Percentiles }> {
  const client = new StdioMcpClient([ctx.mcpBinary], {
    PATH: process.env.PATH,
    TASK_TRACKING_URL: tracker.url,
    TASK_TRACKING_API_KEY: API_KEY,
    TASK_TRACKING_AGENT_ID: "bench-lister",
    LOG_LEVEL: "warn",
  });
  try {
    await client.initialize();
    const calls = ctx.quick ? 100 : 300;
    const list: Percentiles[] = [];
    const next: Percentiles[] = [];
    // The two tools take turns, so that the drift of this shared machine hits both alike.
    for (let round = 0; round < 5; round++) {
      list.push(percentiles(await sequential(calls, 30, () => client.callTool("list_tasks", { project_id: PROJECT }))));
      next.push(percentiles(await sequential(calls, 30, () => client.callTool("get_next_task", { project_id: PROJECT }))));
    }
    return { list: medianOfRounds(list), next: medianOfRounds(next) };
  } finally {
    await client.close();
  }
}

export async function measureListing(ctx: Context): Promise<ListingResult> {
  const sizes = ctx.quick ? [1_000, 10_000] : [1_000, 100_000];
  const sqlite = await startTrackerProcess();
  let points: ListingPoint[];
  let mcpListTasks: Percentiles;
  let mcpNextTask: Percentiles;
  try {
    points = await measureBackend(ctx, "SQLite", sqlite.url, sizes);
    ({ list: mcpListTasks, next: mcpNextTask } = await measureListTasksTool(ctx, sqlite));
  } finally {
    await sqlite.stop();
  }
  const url = benchPostgresUrl();
  if (!url)
    return {
      page_size: PAGE,
      points,
      mcp_list_tasks: mcpListTasks,
      mcp_next_task: mcpNextTask,
      postgres: { ran: false, reason: "no PostgreSQL URL (run under scripts/with-postgres.sh)" },
    };
  await withFreshDatabase(url, "bench_list", async (databaseUrl) => {
    const tracker = await startTrackerProcess({ DATABASE_URL: databaseUrl });
    try {
      points.push(...(await measureBackend(ctx, "PostgreSQL", tracker.url, sizes)));
    } finally {
      await tracker.stop();
    }
  });
  return {
    page_size: PAGE,
    points,
    mcp_list_tasks: mcpListTasks,
    mcp_next_task: mcpNextTask,
    postgres: { ran: true, reason: "a fresh database on the throw-away cluster" },
  };
}
