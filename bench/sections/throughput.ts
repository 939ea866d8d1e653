// 4. Tracker throughput with 1, 8 and 32 concurrent clients, beside the storage and HTTP floors,
// loaded by the same client code; duplicate IDs checked after every run. SQLite with
// TRACKER_SYNC=normal (the default) and full; PostgreSQL with one and two instances when a URL is given.
import { join } from "node:path";
import { SQL } from "bun";
import { type Context, FLOORS } from "../lib/context.ts";
import { closedLoop, type LoadResult } from "../lib/load.ts";
import { benchPostgresUrl } from "../lib/postgres.ts";
import { startHttpServer, tempDir } from "../lib/proc.ts";
import { median, spreadPercent } from "../lib/stats.ts";
import { makeTasks, startTrackerProcess, TrackerHttp, type TrackerProcess } from "../lib/tracker.ts";

export const CLIENTS = [1, 8, 32] as const;
export type Operation = "allocations" | "reservations" | "claims" | "reads" | "constant";

export interface Cell {
  backend: string;
  operation: Operation;
  clients: number;
  per_second: number;
  /** (max - min) / median of the repeats, in percent. */
  spread: number;
  p50_ms: number;
  p99_ms: number;
  ops: number;
  duplicates: number;
  errors: number;
  first_error?: string;
  repeats: number;
}

export interface ThroughputResult {
  seconds_per_run: number;
  repeats: number;
  cells: Cell[];
  postgres: { ran: boolean; reason: string };
}

/** Seconds of one measured run, and how many runs of each cell: the report prints both. */
const secondsPerRun = (ctx: Context) => (ctx.quick ? 0.4 : 2);
const repeatsPerCell = (ctx: Context) => (ctx.quick ? 1 : 3);

interface Backend {
  name: string;
  urls: string[];
  operations: Operation[];
  stop(): Promise<void>;
}

/** One measured run: the load, then the check of what it handed out. */
async function run(
  ctx: Context,
  backend: Backend,
  operation: Operation,
  clients: number,
  runIndex: number,
  estimate: number,
): Promise<LoadResult & { duplicates: number }> {
  const seconds = secondsPerRun(ctx);
  const https = backend.urls.map((url) => new TrackerHttp(url));
  const pick = (client: number) => https[client % https.length]!;
  const project = `thr-${operation}-${clients}-${runIndex}`;
  const handedOut: string[] = [];
  let maxOps = 1_000_000;
  let op: (client: number, i: number) => Promise<boolean | void>;
  switch (operation) {
    case "allocations":
      op = async (client) => {
        handedOut.push((await pick(client).nextId("US", project)).next_id);
      };
      break;
    case "reservations":
      op = async (client) => {
        handedOut.push(...(await pick(client).reserve("US", 5, project)).reserved_ids);
      };
      break;
    case "claims": {
      // Enough distinct ready tasks for the run (from the allocation rate), added beforehand.
      maxOps = Math.min(60_000, Math.max(1000, Math.ceil(estimate * seconds * 1.3)));
      for (let done = 0; done < maxOps; done += 500) {
        await https[0]!.addTasks(makeTasks(project, `CLAIM-${project}`, done, Math.min(500, maxOps - done)));
      }
      op = async (client, i) => {
        const { updated_task } = await pick(client).updateStatus(`CLAIM-${project}-${i}`, "in_progress");
        if (updated_task.status !== "in_progress")
          throw new Error(`claim of ${updated_task.task_id} returned ${updated_task.status}`);
        handedOut.push(updated_task.task_id);
      };
      break;
    }
    case "reads":
      op = async (client) => {
        const { task } = await pick(client).nextTask("thr-read");
        if (!task) throw new Error("no task to read");
      };
      break;
    case "constant":
      op = async (client) => {
        await pick(client).nextId("US", project); // the HTTP floor answers every request with one constant body
      };
      break;
  }
  const result = await closedLoop({ clients, durationMs: seconds * 1000, maxOps, op });
  const duplicates = handedOut.length - new Set(handedOut).size;
  return { ...result, duplicates };
}

/**
 * Measures backends that run side by side: within each repeat and client count they take turns
 * (alternating who goes first), so drift on this shared machine hits ours and the floors alike.
 */
async function measureGroup(ctx: Context, backends: Backend[], cells: Cell[]): Promise<void> {
  const repeats = repeatsPerCell(ctx);
  try {
    for (const backend of backends) {
      if (backend.operations.includes("reads")) {
        const http = new TrackerHttp(backend.urls[0]!);
        for (let done = 0; done < 1000; done += 500) await http.addTasks(makeTasks("thr-read", "READ", done, 500));
      }
      await run(ctx, backend, backend.operations[0]!, 8, -1, 1000); // warm-up: JIT, connections, page cache
    }
    const runs = new Map<string, (LoadResult & { duplicates: number })[]>();
    for (let r = 0; r < repeats; r++) {
      for (const clients of CLIENTS) {
        const order = r % 2 === 0 ? backends : [...backends].reverse();
        for (const backend of order) {
          for (const operation of backend.operations) {
            ctx.progress(`throughput: ${backend.name} ${operation} × ${clients} (run ${r + 1}/${repeats})`);
            const allocations = runs.get(`${backend.name}/allocations/${clients}`);
            const estimate = allocations ? Math.max(...allocations.map((a) => a.perSecond)) : 3000;
            const key = `${backend.name}/${operation}/${clients}`;
            runs.set(key, [...(runs.get(key) ?? []), await run(ctx, backend, operation, clients, r, estimate)]);
          }
        }
      }
    }
    for (const backend of backends) {
      for (const operation of backend.operations) {
        for (const clients of CLIENTS) {
          const results = runs.get(`${backend.name}/${operation}/${clients}`)!;
          const rates = results.map((x) => x.perSecond);
          cells.push({
            backend: backend.name,
            operation,
            clients,
            per_second: median(rates),
            spread: spreadPercent(rates),
            p50_ms: median(results.map((x) => x.p50)),
            p99_ms: median(results.map((x) => x.p99)),
            ops: results.reduce((sum, x) => sum + x.ops, 0),
            duplicates: results.reduce((sum, x) => sum + x.duplicates, 0),
            errors: results.reduce((sum, x) => sum + x.errors, 0),
            first_error: results.find((x) => x.firstError)?.firstError,
            repeats: results.length,
          });
        }
      }
    }
  } finally {
    await Promise.all(backends.map((backend) => backend.stop()));
  }
}

async function sqliteTracker(sync: "normal" | "full"): Promise<Backend> {
  const tracker = await startTrackerProcess({ TRACKER_SYNC: sync });
  return {
    name: `tracker SQLite sync=${sync}`,
    urls: [tracker.url],
    operations:
      sync === "normal" ? ["allocations", "reservations", "claims", "reads"] : ["allocations", "reservations", "claims"],
    stop: () => tracker.stop(),
  };
}

async function storageFloor(sync: "normal" | "full"): Promise<Backend> {
  const floor = await startHttpServer({
    name: "storage-floor",
    cmd: FLOORS.storage,
    env: { FLOOR_DB: join(tempDir("storage-floor"), "floor.db"), TRACKER_SYNC: sync },
  });
  return { name: `storage floor sync=${sync}`, urls: [floor.url], operations: ["allocations"], stop: () => floor.stop() };
}

async function httpFloor(): Promise<Backend> {
  const floor = await startHttpServer({ name: "http-floor", cmd: FLOORS.http });
  return { name: "HTTP floor", urls: [floor.url], operations: ["constant"], stop: () => floor.stop() };
}

async function postgresBackends(ctx: Context, cells: Cell[]): Promise<{ ran: boolean; reason: string }> {
  const url = benchPostgresUrl();
  if (!url) {
    return {
      ran: false,
      reason:
        "no PostgreSQL: it is not installed here (apt-get install postgresql; `bun run bench` then starts a throw-away cluster), " +
        "or bench/run.ts was run without scripts/with-postgres.sh",
    };
  }
  const durability =
    process.env.TRACKER_TEST_DATABASE_DURABLE === "false"
      ? "WARNING: fsync off (a test cluster), so these figures overstate a real server"
      : "durable settings (fsync and synchronous_commit on)";
  // A fresh database for each configuration, dropped afterwards. One and two instances are measured
  // in one group, in alternating turns, so that the drift of this shared machine hits both alike.
  const admin = new SQL(url);
  const databases: string[] = [];
  const backends: Backend[] = [];
  let measured = false;
  try {
    const stamp = Date.now().toString(36);
    for (const instances of [1, 2]) {
      const database = `bench_${stamp}_${instances}`;
      await admin.unsafe(`CREATE DATABASE ${database}`);
      databases.push(database);
      const benchUrl = new URL(url);
      benchUrl.pathname = `/${database}`;
      const trackers: TrackerProcess[] = [];
      try {
        // One at a time: the first creates the schema.
        for (let i = 0; i < instances; i++) trackers.push(await startTrackerProcess({ DATABASE_URL: benchUrl.href }));
      } catch (error) {
        await Promise.all(trackers.map((t) => t.stop()));
        return { ran: false, reason: `the tracker did not start on PostgreSQL: ${String(error).slice(0, 300)}` };
      }
      if (instances === 1) {
        const floor = await startHttpServer({
          name: "postgres-floor",
          cmd: FLOORS.postgres,
          env: { FLOOR_DATABASE_URL: benchUrl.href },
        });
        backends.push({
          name: "storage floor PostgreSQL",
          urls: [floor.url],
          operations: ["allocations"],
          stop: () => floor.stop(),
        });
      }
      backends.push({
        name: `tracker PostgreSQL × ${instances}`,
        urls: trackers.map((t) => t.url),
        operations: ["allocations", "reservations", "claims", "reads"],
        stop: async () => void (await Promise.all(trackers.map((t) => t.stop()))),
      });
    }
    measured = true; // measureGroup stops the backends
    await measureGroup(ctx, backends, cells);
    return {
      ran: true,
      reason: `throw-away cluster on ${new URL(url).host}, ${durability}; a fresh database per configuration; with 2 instances the clients alternate between them; one and two instances take turns`,
    };
  } finally {
    if (!measured) await Promise.all(backends.map((backend) => backend.stop()));
    for (const database of databases) await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.close();
  }
}

export async function measureThroughput(ctx: Context): Promise<ThroughputResult> {
  const cells: Cell[] = [];
  await measureGroup(ctx, [await storageFloor("normal"), await httpFloor(), await sqliteTracker("normal")], cells);
  await measureGroup(ctx, [await storageFloor("full"), await sqliteTracker("full")], cells);
  const postgres = await postgresBackends(ctx, cells);
  return { seconds_per_run: secondsPerRun(ctx), repeats: repeatsPerCell(ctx), cells, postgres };
}
