// Issue 16, "Keep the data": `task-tracker backup`, `dump` and `restore`, as processes, against a
// tracker running as its own process on SQLite. The dump is restored into an empty PostgreSQL
// schema, a tracker is started there, and its dump must equal the first; the IDs it hands out must
// be new. Run under `bash scripts/with-postgres.sh bun test e2e/keep.test.ts` for the PostgreSQL
// half (in CI it must run; elsewhere it is skipped with a warning without TRACKER_TEST_DATABASE_URL).

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runProcess } from "../testkit/processes.ts";
import { makeTempDir } from "../testkit/temp.ts";
import { startTracker, trackerCommand } from "../testkit/tracker.ts";
import { makePostgresSchema, type PostgresTestSchema } from "../tracker/testing.ts";
import { makeApiKey, startTrackerProcess, useStack } from "./harness.ts";

const hasPostgres = Boolean(process.env.TRACKER_TEST_DATABASE_URL);
const inCi = process.env.CI === "true";
if (!hasPostgres && !inCi) {
  console.warn(
    "e2e/keep.test.ts: TRACKER_TEST_DATABASE_URL is not set; the PostgreSQL half is skipped (run under scripts/with-postgres.sh)",
  );
}

/** `task-tracker <args>` with this environment: exit code, stdout, stderr. */
function cli(args: string[], env: Record<string, string>) {
  return runProcess([...trackerCommand(), ...args], { env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env } });
}

/** A dump's lines as objects, the header's created_at left out (it is when the dump was made). */
function dumpRecords(text: string): Array<Record<string, unknown>> {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .map((record) => (record.kind === "header" ? { ...record, created_at: "(when)" } : record));
}

/** Every row of the tables a backup must hold, from a copy of the file (and its WAL). */
function tables(path: string): Record<string, unknown[]> {
  const dir = makeTempDir("tt-keep-read-");
  const copy = join(dir, "copy.db");
  copyFileSync(path, copy);
  if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
  const db = new Database(copy, { readonly: true });
  try {
    const all = (sql: string) => db.query(sql).all();
    return {
      tasks: all("SELECT * FROM tasks ORDER BY seq"),
      task_dependencies: all("SELECT * FROM task_dependencies ORDER BY dependency_seq, dependent_seq"),
      task_events: all("SELECT * FROM task_events ORDER BY event_id"),
      id_counters: all("SELECT * FROM id_counters ORDER BY project_id, artifact_type"),
      reservations: all("SELECT * FROM reservations ORDER BY reservation_id"),
      project_counts: all("SELECT * FROM project_counts ORDER BY project_id"),
    };
  } finally {
    db.close();
  }
}

async function call(url: string, apiKey: string, method: string, path: string, body?: unknown, agent?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };
  if (agent) headers["x-agent-id"] = agent;
  const response = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const parsed = (await response.json()) as any;
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(parsed)}`);
  return parsed;
}

/** Two projects, every status (a claim with its lease, completed, released, force-released), history, IDs. */
async function fillTracker(url: string, apiKey: string): Promise<Set<string>> {
  const task = (project: string, id: string, extra: Record<string, unknown> = {}) => ({
    project_id: project,
    task_id: id,
    description: `Do ${id}`,
    ...extra,
  });
  await call(
    url,
    apiKey,
    "POST",
    "/tasks/batch",
    {
      tasks: [
        task("web", "W-1", { priority: "high", inputs: ["US-001"], outputs: ["index.ts"] }),
        task("web", "W-2", { depends_on: ["W-1"] }),
        task("web", "W-3", { priority: "low" }),
        task("web", "W-4", { status: "completed", completion_notes: "Imported done" }),
        task("web", "W-5", { depends_on: ["W-2", "W-4", "W-2"] }),
        task("api", "W-1", { description: "The same ID in another project" }),
        task("api", "A-1"),
        task("api", "A-2", { depends_on: ["A-1"] }),
      ],
    },
    "planner",
  );
  const status = (project: string, id: string, body: unknown, agent: string) =>
    call(url, apiKey, "PUT", `/tasks/${id}/status?project=${project}`, body, agent);
  await status("web", "W-1", { status: "in_progress", lease_seconds: 600 }, "agent-a");
  await status("web", "W-1", { status: "completed", completion_notes: "Shipped" }, "agent-a");
  await status("web", "W-3", { status: "in_progress" }, "agent-b");
  await status("web", "W-3", { status: "pending" }, "agent-b");
  await status("web", "W-2", { status: "in_progress" }, "agent-a");
  await status("web", "W-2", { status: "pending", force: true }, "agent-b");
  await status("api", "A-1", { status: "in_progress", lease_seconds: 3600 }, "agent-c");
  await call(url, apiKey, "PATCH", "/tasks/W-5?project=web", { priority: "high", description: "Do W-5 first" }, "alice");

  const handedOut = new Set<string>();
  for (let i = 0; i < 3; i++) handedOut.add((await call(url, apiKey, "GET", "/ids/next?type=US&project=web")).next_id);
  for (const id of (await call(url, apiKey, "POST", "/ids/reserve", { type: "US", count: 5, project_id: "web" })).reserved_ids)
    handedOut.add(id);
  for (const id of (await call(url, apiKey, "POST", "/ids/reserve", { type: "SPEC", count: 3, project_id: "api" })).reserved_ids)
    handedOut.add(id);
  await call(url, apiKey, "PUT", "/ids/registry/api/HLS", { last_assigned_id: 40 });
  for (let n = 1; n <= 40; n++) handedOut.add(`HLS-${String(n).padStart(3, "0")}`);
  return handedOut;
}

/** GET /tasks of every project, page by page: what the API shows of the tasks. */
async function allTasks(url: string, apiKey: string): Promise<unknown[]> {
  const tasks: unknown[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await call(url, apiKey, "GET", `/tasks?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    tasks.push(...page.tasks);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return tasks;
}

describe("task-tracker backup, dump and restore", () => {
  const stack = useStack();
  let env: Record<string, string>;
  let handedOut: Set<string>;
  let dir: string;
  let dumpFile: string;

  beforeAll(async () => {
    const { tracker } = stack;
    env = { PORT: String(tracker.port), HOST: "127.0.0.1", TRACKER_DB: tracker.dbPath, TRACKER_API_KEYS: tracker.apiKey };
    handedOut = await fillTracker(tracker.url, tracker.apiKey);
    dir = makeTempDir("tt-keep-");
    dumpFile = join(dir, "tracker.jsonl");
  });

  test("backup FILE copies the running tracker's database: the same rows, and a tracker started on it serves the same tasks", async () => {
    const file = join(dir, "backup.db");
    const result = await cli(["backup", file], env);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 0, stdout: "" });
    expect(result.stderr).toMatch(/^Backed up the tracker at http:\/\/127\.0\.0\.1:\d+ to .*backup\.db \(\d+ bytes\)\.\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(tables(file)).toEqual(tables(stack.tracker.dbPath));
    expect((tables(file).tasks as unknown[]).length).toBe(8);

    const copy = join(dir, "copy-of-backup.db");
    copyFileSync(file, copy);
    const apiKey = makeApiKey();
    const restarted = await startTracker({ env: { PATH: process.env.PATH ?? "", TRACKER_DB: copy, TRACKER_API_KEYS: apiKey } });
    try {
      expect(await allTasks(restarted.url, apiKey)).toEqual(await allTasks(stack.tracker.url, stack.tracker.apiKey));
    } finally {
      await restarted.process.stop();
    }
  });

  test("backup refuses to overwrite a file, and nothing of the key reaches stdout or stderr", async () => {
    const file = join(dir, "exists.db");
    writeFileSync(file, "mine");
    const result = await cli(["backup", file], env);
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: `task-tracker backup: ${file} already exists; remove it or name another file.\n`,
    });
    expect(readFileSync(file, "utf8")).toBe("mine");
  });

  test("dump --out FILE writes every record, in order, and ends with the counts", async () => {
    const result = await cli(["dump", "--out", dumpFile], env);
    expect([result.code, result.stdout]).toEqual([0, ""]);
    expect(result.stderr).toContain("Dumped 8 tasks, ");
    expect(result.stderr).not.toContain(stack.tracker.apiKey);
    expect(statSync(dumpFile).mode & 0o777).toBe(0o600);
    const records = dumpRecords(readFileSync(dumpFile, "utf8"));
    expect(records[0]).toEqual({
      kind: "header",
      format: "task-tracking-dump",
      version: 2,
      format_version: 2,
      schema_version: 4,
      created_at: "(when)",
    });
    expect(records.map((record) => record.kind)).toEqual([
      "header",
      ...Array(8).fill("task"),
      ...Array(records.filter((record) => record.kind === "event").length).fill("event"),
      // HLS, SPEC and US from the registry; A and W (in both projects) from the IDs the batch added.
      ...Array(6).fill("counter"),
      "reservation",
      "reservation",
      "end",
    ]);
    const events = records.filter((record) => record.kind === "event");
    expect(records.at(-1)).toEqual({
      kind: "end",
      counts: { tasks: 8, notes: 0, events: events.length, counters: 6, reservations: 2 },
    });
    expect(new Set(events.map((event) => event.type))).toEqual(
      new Set(["created", "claimed", "completed", "released", "force_released", "updated"]),
    );
    const claimed = records.find((record) => record.kind === "task" && record.task_id === "A-1");
    expect(claimed).toMatchObject({ status: "in_progress", claimed_by: "agent-c", lease_seconds: 3600 });
    expect(typeof claimed!.lease_expires_at).toBe("string");
  });

  test("dump without --out writes the dump to stdout, the same as with it", async () => {
    const result = await cli(["dump"], env);
    expect(result.code).toBe(0);
    expect(dumpRecords(result.stdout)).toEqual(dumpRecords(readFileSync(dumpFile, "utf8")));
  });

  test("restore loads a dump into a new SQLite database, and a tracker on it dumps the same", async () => {
    const db = join(dir, "restored.db");
    const restoreEnv = { TRACKER_DB: db, TRACKER_API_KEYS: makeApiKey() };
    const result = await cli(["restore", dumpFile], restoreEnv);
    expect(result).toMatchObject({ code: 0, stdout: "" });
    expect(result.stderr).toContain(`Restored 8 tasks, `);
    const restarted = await startTracker({ env: { PATH: process.env.PATH ?? "", ...restoreEnv } });
    try {
      const again = await cli(["dump"], { ...restoreEnv, PORT: String(restarted.port), HOST: "127.0.0.1" });
      expect(again.code).toBe(0);
      expect(dumpRecords(again.stdout)).toEqual(dumpRecords(readFileSync(dumpFile, "utf8")));
      expect(await allTasks(restarted.url, restoreEnv.TRACKER_API_KEYS)).toEqual(
        await allTasks(stack.tracker.url, stack.tracker.apiKey),
      );
    } finally {
      await restarted.process.stop();
    }
  });

  test("restore refuses a database that holds data, and changes nothing in it", async () => {
    const db = join(dir, "refused.db");
    const restoreEnv = { TRACKER_DB: db, TRACKER_API_KEYS: makeApiKey() };
    expect((await cli(["restore", dumpFile], restoreEnv)).code).toBe(0);
    const before = tables(db);
    const result = await cli(["restore", dumpFile], restoreEnv);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`already holds data (8 tasks, `);
    expect(result.stderr).toContain("restore loads only into an empty database");
    expect(tables(db)).toEqual(before);
  });

  test("restore refuses a truncated dump, a dump with lines missing and a bad line, and leaves no database behind", async () => {
    const lines = readFileSync(dumpFile, "utf8").trimEnd().split("\n");
    const cases: Array<[string, string[], RegExp]> = [
      ["truncated", lines.slice(0, -1), /without its end line: it was cut short/],
      ["missing", [...lines.slice(0, -2), ...lines.slice(-1)], /line \d+ \(end\): its counts .* are not what the dump holds/],
      [
        "bad",
        lines.map((line, i) => (i === 2 ? line.replace('"status":"pending"', '"status":"done"') : line)),
        /^.*line 3 \(task\): status must be one of pending, in_progress, completed, cancelled; nothing was written\.\n$/,
      ],
    ];
    for (const [name, content, sentence] of cases) {
      const file = join(dir, `${name}.jsonl`);
      writeFileSync(file, `${content.join("\n")}\n`);
      const db = join(dir, `${name}.db`);
      const result = await cli(["restore", file], { TRACKER_DB: db, TRACKER_API_KEYS: makeApiKey() });
      expect({ name, code: result.code, stdout: result.stdout }).toEqual({ name, code: 1, stdout: "" });
      expect(result.stderr).toMatch(sentence);
      expect(existsSync(db)).toBe(false);
    }
  });

  test("backup and dump say so when no tracker runs at the configured address; a bad command line is exit code 2", async () => {
    const gone = await startTrackerProcess();
    const goneEnv = { PORT: String(gone.port), HOST: "127.0.0.1", TRACKER_DB: gone.dbPath, TRACKER_API_KEYS: gone.apiKey };
    await gone.stop();
    const result = await cli(["dump"], goneEnv);
    expect([result.code, result.stdout]).toEqual([1, ""]);
    expect(result.stderr).toStartWith(`task-tracker dump: No tracker answers at http://127.0.0.1:${gone.port} (PORT, HOST)`);
    expect(result.stderr).not.toContain(gone.apiKey);
    const usage = await cli(["backup"], env);
    expect([usage.code, usage.stdout, usage.stderr.split("\n")[0]]).toEqual([
      2,
      "",
      "task-tracker backup: backup takes one argument: the file to write",
    ]);
    expect((await cli(["dump", "--outt", "x"], env)).code).toBe(2);
    expect((await cli(["restore"], env)).code).toBe(2);
  });

  describe.skipIf(!hasPostgres && !inCi)("into PostgreSQL", () => {
    let schema: PostgresTestSchema;

    beforeAll(async () => {
      schema = await makePostgresSchema();
    });
    afterAll(async () => {
      await schema?.drop();
    });

    test("SQLite → dump → PostgreSQL → dump gives the same data, and the restored tracker hands out only new IDs", async () => {
      const apiKey = makeApiKey();
      const pgEnv = { DATABASE_URL: schema.url, TRACKER_API_KEYS: apiKey };
      const restored = await cli(["restore", dumpFile], pgEnv);
      expect([restored.code, restored.stdout]).toEqual([0, ""]);
      expect(restored.stderr).not.toContain(new URL(schema.url).password);

      const onPostgres = await startTracker({ env: { PATH: process.env.PATH ?? "", ...pgEnv } });
      try {
        const again = await cli(["dump"], { ...pgEnv, PORT: String(onPostgres.port), HOST: "127.0.0.1" });
        expect(again.code).toBe(0);
        expect(dumpRecords(again.stdout)).toEqual(dumpRecords(readFileSync(dumpFile, "utf8")));
        expect(await allTasks(onPostgres.url, apiKey)).toEqual(await allTasks(stack.tracker.url, stack.tracker.apiKey));

        const backup = await fetch(`${onPostgres.url}/admin/backup`, { headers: { authorization: `Bearer ${apiKey}` } });
        expect([backup.status, await backup.json()]).toEqual([
          409,
          {
            code: "conflict",
            error:
              "This tracker keeps its data in PostgreSQL: back the database up with pg_dump, or copy its data with task-tracker dump (GET /admin/dump)",
          },
        ]);

        const fresh: string[] = [];
        for (const [type, project] of [
          ["US", "web"],
          ["SPEC", "api"],
          ["HLS", "api"],
        ] as const) {
          fresh.push((await call(onPostgres.url, apiKey, "GET", `/ids/next?type=${type}&project=${project}`)).next_id);
          fresh.push(
            ...(await call(onPostgres.url, apiKey, "POST", "/ids/reserve", { type, count: 2, project_id: project })).reserved_ids,
          );
        }
        expect(fresh).toEqual([
          "US-009",
          "US-010",
          "US-011",
          "SPEC-004",
          "SPEC-005",
          "SPEC-006",
          "HLS-041",
          "HLS-042",
          "HLS-043",
        ]);
        expect(fresh.filter((id) => handedOut.has(id))).toEqual([]);
        const task = await call(onPostgres.url, apiKey, "POST", "/tasks/batch", {
          tasks: [{ project_id: "web", task_id: "W-6", description: "New", depends_on: ["W-5"] }],
        });
        expect(task.task_ids).toEqual(["W-6"]);
      } finally {
        await onPostgres.process.stop();
      }
    });

    test("restore refuses a PostgreSQL database that holds data", async () => {
      const result = await cli(["restore", dumpFile], { DATABASE_URL: schema.url, TRACKER_API_KEYS: makeApiKey() });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("The PostgreSQL database (DATABASE_URL) already holds data (9 tasks, ");
    });
  });

  // Only where CI has no database: there a missing PostgreSQL must fail, never pass as skipped.
  if (inCi && !hasPostgres)
    test("the PostgreSQL half runs in CI", () => {
      throw new Error("CI=true but TRACKER_TEST_DATABASE_URL is not set: run under scripts/with-postgres.sh");
    });
});
