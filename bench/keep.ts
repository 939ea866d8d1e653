/**
 * `bun run bench/keep.ts [--tasks=10000]` (PostgreSQL too under scripts/with-postgres.sh):
 * how long backup, dump and restore take for N tasks with their history, on each storage, beside
 * floors measured in the same run: reading the same rows with one plain SELECT each and
 * JSON.stringify (dump), and inserting the dump's rows with plain INSERTs in one transaction, no
 * checks (restore).
 */
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import type { NewTask } from "../tracker/domain.ts";
import { numberedLines } from "../tracker/storage/dump-reader.ts";
import { dumpLines } from "../tracker/storage/dump-writer.ts";
import { openPostgresStorage } from "../tracker/storage/postgres.ts";
import { openSqliteStorage } from "../tracker/storage/sqlite.ts";
import type { Storage } from "../tracker/storage/storage.ts";

const taskCount = Number(process.argv.find((arg) => arg.startsWith("--tasks="))?.slice(8) ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), "bench-keep-"));
const now = new Date("2026-12-01T12:00:00.000Z");

async function time<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

/** Four projects of consecutive tasks: a batch of 500 never spans two. */
const project = (i: number) => `p${Math.floor(i / 2500) % 4}`;

/** N tasks in batches of 500, a third waiting for the task before; every fifth claimed, every tenth completed. */
async function fill(storage: Storage): Promise<void> {
  for (let first = 0; first < taskCount; first += 500) {
    const batch: NewTask[] = [];
    for (let i = first; i < Math.min(first + 500, taskCount); i++) {
      const dependsOn = i % 3 === 1 && i % 500 !== 0 ? [`T-${i - 1}`] : [];
      batch.push({
        task_id: `T-${i}`,
        project_id: project(i),
        description: `Task number ${i}, with a sentence of text`,
        inputs: ["US-001"],
        outputs: [],
        priority: "medium",
        depends_on: dependsOn,
        status: "pending",
        completion_notes: "",
      });
    }
    await storage.addTasks(batch, now, "planner");
  }
  for (let i = 0; i < taskCount; i += 5) {
    if (i % 3 === 1) continue;
    const ref = { projectId: project(i), taskId: `T-${i}` };
    const change = { ref, completionNotes: "done", agentId: "agent", leaseSeconds: 600, force: false, now };
    await storage.changeTaskStatus({ ...change, to: "in_progress" });
    if (i % 10 === 0) await storage.changeTaskStatus({ ...change, to: "completed" });
  }
  for (let i = 0; i < 50; i++) {
    await storage.reserveIds({
      reservationId: crypto.randomUUID(),
      projectId: "p0",
      artifactType: "US",
      count: 10,
      createdAt: now,
      expiresAt: now,
    });
  }
}

async function dumpOf(storage: Storage): Promise<string> {
  let text = "";
  for await (const chunk of dumpLines(await storage.openSnapshot(), now)) text += chunk;
  return text;
}

async function* bytesOf(text: string): AsyncGenerator<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i += 1 << 20) yield bytes.subarray(i, i + (1 << 20));
}

function sqliteFloors(path: string, text: string): { read: number; write: number } {
  const copy = join(dir, `floor-${crypto.randomUUID()}.db`);
  const source = new Database(path, { readonly: true });
  const readStarted = performance.now();
  let length = 0;
  for (const table of ["tasks", "task_events", "id_counters", "reservations"]) {
    for (const row of source.query(`SELECT * FROM ${table}`).all()) length += JSON.stringify(row).length;
  }
  const read = performance.now() - readStarted;
  source.close();
  const records = text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const target = new Database(copy, { create: true });
  target.run("CREATE TABLE rows (kind TEXT, body TEXT)");
  const insert = target.prepare("INSERT INTO rows VALUES (?, ?)");
  const writeStarted = performance.now();
  target.transaction(() => {
    for (const record of records) insert.run(record.kind as string, JSON.stringify(record));
  })();
  const write = performance.now() - writeStarted;
  target.close();
  if (length === 0) throw new Error("the floor read nothing");
  return { read, write };
}

async function postgresReadFloor(url: string): Promise<number> {
  const sql = new SQL(url, { max: 1 });
  const started = performance.now();
  for (const table of ["tasks", "task_events", "id_counters", "reservations"]) {
    const rows = await sql.unsafe(`SELECT * FROM ${table}`);
    JSON.stringify(rows);
  }
  const ms = performance.now() - started;
  await sql.close();
  return ms;
}

const report: string[] = [];
const line = (name: string, ms: number, floor?: number) =>
  report.push(
    `${name.padEnd(40)} ${ms.toFixed(0).padStart(7)} ms${floor === undefined ? "" : `   floor ${floor.toFixed(0).padStart(6)} ms   ×${(ms / floor).toFixed(1)}`}`,
  );

const sourcePath = join(dir, "source.db");
const source = await openSqliteStorage({ path: sourcePath });
await fill(source);
const backup = await time(async () => {
  const file = await source.openBackup();
  let bytes = 0;
  for await (const chunk of file.stream) bytes += chunk.byteLength;
  return bytes;
});
const dumped = await time(() => dumpOf(source));
await source.close();
const floors = sqliteFloors(sourcePath, dumped.value);
const records = dumped.value.split("\n").length - 1;
report.push(
  `${taskCount} tasks, ${records} dump lines, ${(dumped.value.length / 1e6).toFixed(1)} MB of dump, ${(backup.value / 1e6).toFixed(1)} MB of database`,
);
line("SQLite: backup (VACUUM INTO, streamed)", backup.ms);
line("SQLite: dump", dumped.ms, floors.read);
const sqliteTarget = await openSqliteStorage({ path: join(dir, "restored.db") });
line("SQLite: restore", (await time(() => sqliteTarget.restore(numberedLines(bytesOf(dumped.value))))).ms, floors.write);
await sqliteTarget.close();

const base = process.env.TRACKER_TEST_DATABASE_URL;
if (base) {
  const admin = new SQL(base, { max: 1 });
  const schema = `bench_keep_${crypto.randomUUID().replaceAll("-", "")}`;
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  const url = new URL(base);
  url.searchParams.set("search_path", schema);
  const pg = await openPostgresStorage({ url: url.toString(), queryTimeoutMs: 60_000 });
  line("PostgreSQL: restore", (await time(() => pg.restore(numberedLines(bytesOf(dumped.value))))).ms, floors.write);
  const again = await time(() => dumpOf(pg));
  line("PostgreSQL: dump", again.ms, await postgresReadFloor(url.toString()));
  if (again.value.split("\n").slice(1).join("\n") !== dumped.value.split("\n").slice(1).join("\n"))
    throw new Error("the PostgreSQL dump differs");
  await pg.close();
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
  await admin.close();
} else {
  report.push("PostgreSQL: skipped (run under scripts/with-postgres.sh)");
}
rmSync(dir, { recursive: true, force: true });
console.log(report.join("\n"));
