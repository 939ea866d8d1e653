// One PostgreSQL tracker instance beside two on one database, in alternating turns, with the CPU
// each request costs (trackers, PostgreSQL's processes, the load generator).
// Tells CPU from contention: on a machine whose cores are all busy, requests per second follow the
// CPU each request costs; where a lock is the limit, they fall while the CPU per request does not.
// With --base=<a checkout of another commit, its node_modules linked>, that commit's tracker runs
// beside this one's, in the same turns, so a change is measured against its baseline in one run.
// Usage: bash scripts/with-postgres.sh --durable bun bench/instances.ts [--base=DIR] [--seconds=2]
//          [--repeats=5] [--ops=allocations,claims,reads] [--clients=8,32]
import { readdirSync, readFileSync } from "node:fs";
import { SQL } from "bun";
import { closedLoop } from "./lib/load.ts";
import { cpuMs } from "./lib/proc.ts";
import { median, spreadPercent } from "./lib/stats.ts";
import { makeTasks, startTrackerProcess, TrackerHttp, type TrackerProcess } from "./lib/tracker.ts";

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const seconds = Number(arg("seconds", "2"));
const repeats = Number(arg("repeats", "5"));
const operations = arg("ops", "allocations,claims").split(",");
const clientCounts = arg("clients", "8,32").split(",").map(Number);

const url = process.env.TRACKER_TEST_DATABASE_URL!;
const admin = new SQL(url);
const [{ setting: dataDir }] = await admin`SELECT setting FROM pg_settings WHERE name = 'data_directory'`;
const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, "utf8").split("\n")[0]);

/** CPU ms of the postmaster and its children now alive (the pools' backends live the whole run). */
function postgresCpuMs(): number {
  let total = cpuMs(postmaster);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ");
      if (Number(stat[1]) === postmaster) total += (Number(stat[11]) + Number(stat[12])) * 10;
    } catch {}
  }
  return total;
}

async function createDatabase(name: string): Promise<string> {
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.href;
}

const stamp = Date.now().toString(36);
const base = arg("base", ""); // a checkout to compare with: its tracker/main.ts runs as "base"
const builds: { name: string; command?: string[] }[] = base
  ? [{ name: "base ", command: [process.execPath, `${base}/tracker/main.ts`] }, { name: "new " }]
  : [{ name: "" }];
const setups: { name: string; trackers: TrackerProcess[]; database: string }[] = [];
for (const build of builds) {
  for (const instances of [1, 2]) {
    const database = `inst${setups.length}_${stamp}`;
    const databaseUrl = await createDatabase(database);
    const trackers: TrackerProcess[] = [];
    for (let i = 0; i < instances; i++) trackers.push(await startTrackerProcess({ DATABASE_URL: databaseUrl }, build.command));
    setups.push({ name: `${build.name}× ${instances}`, trackers, database });
  }
}

async function run(setup: (typeof setups)[number], operation: string, clients: number, tag: string) {
  const https = setup.trackers.map((t) => new TrackerHttp(t.url));
  const pick = (client: number) => https[client % https.length]!;
  const project = `p-${tag}`;
  const handedOut: string[] = [];
  let maxOps = 1_000_000;
  let op: (client: number, i: number) => Promise<void>;
  if (operation === "allocations") {
    op = async (client) => void handedOut.push((await pick(client).nextId("US", project)).next_id);
  } else if (operation === "reads") {
    // No lock at all: what two instances cost here is CPU.
    await https[0]!.addTasks(makeTasks(project, `R-${tag}`, 0, 100));
    op = async (client) => {
      if (!(await pick(client).nextTask(project)).task) throw new Error("no task to read");
    };
  } else {
    maxOps = Math.ceil(3000 * seconds);
    for (let done = 0; done < maxOps; done += 500)
      await https[0]!.addTasks(makeTasks(project, `C-${tag}`, done, Math.min(500, maxOps - done)));
    op = async (client, i) => {
      const { updated_task } = await pick(client).updateStatus(`C-${tag}-${i}`, "in_progress");
      if (updated_task.status !== "in_progress") throw new Error(`claim returned ${updated_task.status}`);
      handedOut.push(updated_task.task_id);
    };
  }
  const trackersBefore = setup.trackers.map((t) => cpuMs(t.pid));
  const pgBefore = postgresCpuMs();
  const loadBefore = process.cpuUsage();
  const result = await closedLoop({ clients, durationMs: seconds * 1000, maxOps, op });
  const load = process.cpuUsage(loadBefore);
  const tracker = setup.trackers.reduce((sum, t, i) => sum + cpuMs(t.pid) - trackersBefore[i]!, 0);
  const pg = postgresCpuMs() - pgBefore;
  const duplicates = handedOut.length - new Set(handedOut).size;
  const perOp = (ms: number) => (ms * 1000) / Math.max(1, result.ops);
  return {
    rate: result.perSecond,
    p99: result.p99,
    errors: result.errors,
    firstError: result.firstError,
    duplicates,
    trackerUs: perOp(tracker),
    pgUs: perOp(pg),
    loadUs: perOp((load.user + load.system) / 1000),
  };
}

type Row = Awaited<ReturnType<typeof run>>;
const results = new Map<string, Row[]>();
try {
  for (const s of setups) await run(s, "allocations", 8, `warm-${setups.indexOf(s)}`);
  for (let r = 0; r < repeats; r++) {
    for (const clients of clientCounts) {
      for (const operation of operations) {
        const order = r % 2 === 0 ? setups : [...setups].reverse();
        for (const s of order) {
          const row = await run(s, operation, clients, `${operation}-${clients}-${r}-${setups.indexOf(s)}`);
          const key = `${operation} ${clients} ${s.name}`;
          results.set(key, [...(results.get(key) ?? []), row]);
          console.error(
            `${key} r${r}: ${row.rate.toFixed(0)}/s p99 ${row.p99.toFixed(1)} cpu/op tracker ${row.trackerUs.toFixed(0)} pg ${row.pgUs.toFixed(0)} load ${row.loadUs.toFixed(0)} µs dup ${row.duplicates} err ${row.errors} ${row.firstError ?? ""}`,
          );
        }
      }
    }
  }
  console.log(
    "operation     clients  setup   req/s  spread  ×2÷×1  p99 ms  tracker µs/req  pg µs/req  load µs/req  total µs/req  dup  err",
  );
  for (const operation of operations) {
    for (const clients of clientCounts) {
      for (const s of setups) {
        const one = s.name.replace("× 2", "× 1");
        const baseRate = median(results.get(`${operation} ${clients} ${one}`)!.map((x) => x.rate));
        const rows = results.get(`${operation} ${clients} ${s.name}`)!;
        const rate = median(rows.map((x) => x.rate));
        const m = (f: (x: Row) => number) => median(rows.map(f));
        console.log(
          [
            operation.padEnd(12),
            String(clients).padStart(7),
            s.name.padStart(10),
            rate.toFixed(0).padStart(7),
            `±${(spreadPercent(rows.map((x) => x.rate)) / 2).toFixed(0)}%`.padStart(6),
            (rate / baseRate).toFixed(2).padStart(6),
            m((x) => x.p99)
              .toFixed(1)
              .padStart(7),
            m((x) => x.trackerUs)
              .toFixed(0)
              .padStart(15),
            m((x) => x.pgUs)
              .toFixed(0)
              .padStart(10),
            m((x) => x.loadUs)
              .toFixed(0)
              .padStart(12),
            m((x) => x.trackerUs + x.pgUs + x.loadUs)
              .toFixed(0)
              .padStart(13),
            String(rows.reduce((a, x) => a + x.duplicates, 0)).padStart(4),
            String(rows.reduce((a, x) => a + x.errors, 0)).padStart(4),
          ].join("  "),
        );
      }
    }
  }
} finally {
  for (const s of setups) for (const t of s.trackers) await t.stop();
  for (const s of setups) await admin.unsafe(`DROP DATABASE IF EXISTS ${s.database} WITH (FORCE)`).catch(() => {});
  await admin.close();
}
