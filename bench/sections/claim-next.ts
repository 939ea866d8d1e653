// 9. Claim-next: 8 agents on one project of 10,000 ready tasks, each taking its next task with
// POST /tasks/claim (one request) and, for comparison, in the two steps a client without it makes
// (GET /tasks/next, then PUT …/status; a lost race asks again) and as PUTs on distinct tasks whose IDs
// the agents know (the throughput section's claims), beside the storage floor at the same number of
// clients, measured in turns in the same run. Every task handed out is counted: a task claimed twice
// is a double claim, and the tracker's own in_progress count must match. Then the HTTP requests one
// get_next_task with claim: true makes through dist/task-tracking-mcp, from the tracker's access log.
import { join } from "node:path";
import { type Context, FLOORS } from "../lib/context.ts";
import { closedLoop, type LoadResult } from "../lib/load.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { benchPostgresUrl, withFreshDatabase } from "../lib/postgres.ts";
import { startHttpServer, tempDir } from "../lib/proc.ts";
import { median, spreadPercent } from "../lib/stats.ts";
import { API_KEY, seedTasks, startTrackerProcess, TrackerHttp, type TrackerProcess } from "../lib/tracker.ts";

export const CLAIM_NEXT_AGENTS = 8;
export const CLAIM_NEXT_TASKS = 10_000;

export type ClaimWay =
  | "storage floor (allocations)"
  | "POST /tasks/claim"
  | "GET /tasks/next + PUT"
  | "PUT on distinct tasks (IDs known)";

export interface ClaimNextRow {
  backend: "SQLite" | "PostgreSQL" | string;
  way: ClaimWay;
  per_second: number;
  spread: number;
  p50_ms: number;
  p99_ms: number;
  /** Claims made (or, for the floor, allocations), over every run. */
  ops: number;
  /** Tasks handed to two agents, plus any difference from the tracker's in_progress count. */
  double_claims: number;
  /** Two steps only: a PUT that found the task taken (400 invalid_transition), so the agent asked again. */
  lost_races: number;
  errors: number;
  first_error?: string;
}

export interface ClaimNextResult {
  agents: number;
  tasks: number;
  seconds_per_run: number;
  repeats: number;
  rows: ClaimNextRow[];
  /** Whether and how PostgreSQL ran. */
  postgres: string;
  /** HTTP requests the tracker logged for one get_next_task with claim: true through the compiled server. */
  mcp_requests_per_claim: number;
}

const secondsPerRun = (ctx: Context) => (ctx.quick ? 0.5 : 2);
const repeatsPerRow = (ctx: Context) => (ctx.quick ? 1 : 3);

type Run = LoadResult & { doubleClaims: number; lostRaces: number };

/** One run of one way on a project of its own, seeded with CLAIM_NEXT_TASKS ready tasks beforehand. */
async function claimRun(ctx: Context, http: TrackerHttp, way: ClaimWay, project: string): Promise<Run> {
  await seedTasks(http, project, project, 0, CLAIM_NEXT_TASKS);
  const handedOut: string[] = [];
  let lostRaces = 0;
  let claimed = 0;
  const claimOnce = async (client: number) => {
    const agent = `agent-${client}`;
    if (way === "POST /tasks/claim") return (await http.claimNext(project, agent)).task;
    if (way === "PUT on distinct tasks (IDs known)")
      return (await http.updateStatus(`${project}-${claimed++}`, "in_progress", "", agent)).updated_task;
    for (;;) {
      const { task } = await http.nextTask(project);
      if (!task) return null;
      try {
        return (await http.updateStatus(task.task_id, "in_progress", "", agent)).updated_task;
      } catch (error) {
        if (!String(error).includes(": 400 ")) throw error;
        lostRaces++;
      }
    }
  };
  const result = await closedLoop({
    clients: CLAIM_NEXT_AGENTS,
    durationMs: secondsPerRun(ctx) * 1000,
    maxOps: CLAIM_NEXT_TASKS,
    op: async (client) => {
      if (claimed >= CLAIM_NEXT_TASKS) return false;
      const task = await claimOnce(client);
      if (!task) return false;
      if (task.status !== "in_progress") throw new Error(`claim of ${task.task_id} returned ${task.status}`);
      handedOut.push(task.task_id);
    },
  });
  const distinct = new Set(handedOut).size;
  const held = (await http.projects()).projects.find((p) => p.project_id === project)?.in_progress ?? 0;
  return { ...result, doubleClaims: handedOut.length - distinct + Math.abs(held - distinct), lostRaces };
}

async function floorRun(ctx: Context, http: TrackerHttp, project: string): Promise<Run> {
  const result = await closedLoop({
    clients: CLAIM_NEXT_AGENTS,
    durationMs: secondsPerRun(ctx) * 1000,
    maxOps: 1_000_000,
    op: async () => void (await http.nextId("US", project)),
  });
  return { ...result, doubleClaims: 0, lostRaces: 0 };
}

function row(way: ClaimWay, runs: Run[]): Omit<ClaimNextRow, "backend"> {
  const rates = runs.map((r) => r.perSecond);
  return {
    way,
    per_second: median(rates),
    spread: spreadPercent(rates),
    p50_ms: median(runs.map((r) => r.p50)),
    p99_ms: median(runs.map((r) => r.p99)),
    ops: runs.reduce((sum, r) => sum + r.ops, 0),
    double_claims: runs.reduce((sum, r) => sum + r.doubleClaims, 0),
    lost_races: runs.reduce((sum, r) => sum + r.lostRaces, 0),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    first_error: runs.find((r) => r.firstError)?.firstError,
  };
}

const WAYS: ClaimWay[] = [
  "storage floor (allocations)",
  "POST /tasks/claim",
  "GET /tasks/next + PUT",
  "PUT on distinct tasks (IDs known)",
];

/** One storage: its floor and our tracker on it, the ways taking turns in each repeat. */
async function measureBackend(ctx: Context, backend: string, floorUrl: string, tracker: TrackerProcess) {
  const runs = new Map<ClaimWay, Run[]>(WAYS.map((way) => [way, []]));
  const floorHttp = new TrackerHttp(floorUrl);
  const http = new TrackerHttp(tracker.url);
  await claimRun(ctx, http, "POST /tasks/claim", "claim-next-warm-up"); // JIT, connections, page cache
  for (let r = 0; r < repeatsPerRow(ctx); r++) {
    for (const way of r % 2 === 0 ? WAYS : [...WAYS].reverse()) {
      ctx.progress(`claim-next: ${backend}, ${way} × ${CLAIM_NEXT_AGENTS} (run ${r + 1}/${repeatsPerRow(ctx)})`);
      const project = `claim-next-${r}-${WAYS.indexOf(way)}`;
      const result =
        way === "storage floor (allocations)" ? await floorRun(ctx, floorHttp, project) : await claimRun(ctx, http, way, project);
      runs.get(way)!.push(result);
    }
  }
  return WAYS.map((way) => ({ backend, ...row(way, runs.get(way)!) }));
}

/** SQLite (the default, sync=normal) beside its storage floor; PostgreSQL (one instance) beside its own when a URL is given. */
export async function measureClaimNext(ctx: Context): Promise<ClaimNextResult> {
  const floor = await startHttpServer({
    name: "storage-floor",
    cmd: FLOORS.storage,
    env: { FLOOR_DB: join(tempDir("storage-floor"), "floor.db"), TRACKER_SYNC: "normal" },
  });
  const tracker = await startTrackerProcess({ TRACKER_SYNC: "normal" });
  let rows: ClaimNextRow[];
  let mcpRequests: number;
  try {
    rows = await measureBackend(ctx, "SQLite", floor.url, tracker);
    ctx.progress("claim-next: one get_next_task with claim: true through dist/task-tracking-mcp");
    mcpRequests = await requestsPerMcpClaim(ctx, tracker);
  } finally {
    await Promise.all([floor.stop(), tracker.stop()]);
  }
  const postgres = await measurePostgres(ctx);
  return {
    agents: CLAIM_NEXT_AGENTS,
    tasks: CLAIM_NEXT_TASKS,
    seconds_per_run: secondsPerRun(ctx),
    repeats: repeatsPerRow(ctx),
    rows: [...rows, ...postgres.rows],
    postgres: postgres.note,
    mcp_requests_per_claim: mcpRequests,
  };
}

/** The same on one PostgreSQL instance, in a database of its own (scripts/with-postgres.sh's cluster). */
async function measurePostgres(ctx: Context): Promise<{ rows: ClaimNextRow[]; note: string }> {
  const url = benchPostgresUrl();
  if (!url) return { rows: [], note: "not run: no PostgreSQL (run under scripts/with-postgres.sh)" };
  return withFreshDatabase(url, "bench_claim_next", async (databaseUrl) => {
    const tracker = await startTrackerProcess({ DATABASE_URL: databaseUrl });
    const floor = await startHttpServer({
      name: "postgres-floor",
      cmd: FLOORS.postgres,
      env: { FLOOR_DATABASE_URL: databaseUrl },
    });
    try {
      const durable = process.env.TRACKER_TEST_DATABASE_DURABLE === "false" ? "fsync off (a test cluster)" : "durable settings";
      return { rows: await measureBackend(ctx, "PostgreSQL", floor.url, tracker), note: `one instance, ${durable}` };
    } finally {
      await Promise.all([floor.stop(), tracker.stop()]);
    }
  });
}

/** The requests the tracker's access log gained during one get_next_task with claim: true (nothing else runs then). */
async function requestsPerMcpClaim(ctx: Context, tracker: TrackerProcess): Promise<number> {
  const project = "claim-next-mcp";
  await seedTasks(new TrackerHttp(tracker.url), project, project, 0, 10);
  const client = new StdioMcpClient([ctx.mcpBinary], {
    PATH: process.env.PATH,
    TASK_TRACKING_URL: tracker.url,
    TASK_TRACKING_API_KEY: API_KEY,
    TASK_TRACKING_AGENT_ID: "bench-claimer",
    LOG_LEVEL: "warn",
  });
  // The access log is written as requests end; a moment lets the last line reach the file.
  const logged = async () => {
    await Bun.sleep(300);
    return (await Bun.file(tracker.logFile).text()).split("\n").filter((line) => line.includes('"msg":"request"')).length;
  };
  try {
    await client.initialize();
    await client.callTool("get_next_task", { project_id: project }); // the server has started and adopted its claims
    const before = await logged();
    const result = await client.callTool("get_next_task", { project_id: project, claim: true });
    if (result.isError) throw new Error(`get_next_task with claim: true failed: ${JSON.stringify(result.content)}`);
    return (await logged()) - before;
  } finally {
    await client.close();
  }
}
