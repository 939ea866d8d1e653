// What only the SQLite storage has: the upgrade in place from schema version 1 (the previous
// release), and a database file readable by its owner only.

import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { SCHEMA_VERSION, TASK_LIST_PARTS, type TaskEvent } from "../domain.ts";
import { makeTempDir } from "../testing.ts";
import schemaSql from "./schema/sqlite.sql" with { type: "text" };
import version1Schema from "./schema/sqlite-v1.sql" with { type: "text" };
import version3Schema from "./schema/sqlite-v3.sql" with { type: "text" };
import { listPartQueries, openSqliteStorage, type SqliteStorage } from "./sqlite.ts";

let dir: string;
let storage: SqliteStorage | undefined;

beforeEach(() => {
  dir = makeTempDir("tracker-sqlite-");
});
afterEach(async () => {
  await storage?.close();
  storage = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const created = "2026-11-20T10:00:00.000Z";
const started = "2026-11-21T10:00:00.000Z";
const finished = "2026-11-22T10:00:00.000Z";

/** As version 1 computed its lookup column: 48 bits of SHA-256 of scope and key. */
function idempotencyLookup(scope: string, key: string): number {
  return createHash("sha256").update(`${scope}\n${key}`).digest().readUIntBE(0, 6);
}

/** A database as the previous release left it: schema version 1, and a row in every table. */
function writeVersion1Database(path: string): void {
  const db = new Database(path, { create: true, strict: true });
  db.run(version1Schema);
  db.run("PRAGMA user_version = 1");
  const insertTask = db.prepare(
    `INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                        unfinished_deps, status, claimed_by, completion_notes, created_at, updated_at, started_at, completed_at)
     VALUES (?, ?, 'web', ?, '["US-1"]', '["a.ts"]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  insertTask.run(1, "T-1", "Done", "high", 0, "[]", 0, "completed", "agent-1", "notes", created, finished, started, finished);
  insertTask.run(2, "T-2", "Working", "medium", 1, '["T-1"]', 0, "in_progress", "agent-2", "", created, started, started, null);
  insertTask.run(3, "T-3", "Waiting", "low", 2, '["T-2"]', 1, "pending", null, "", created, created, null, null);
  db.run("INSERT INTO task_dependencies (dependency_seq, dependent_seq) VALUES (1, 2), (2, 3)");
  db.run("INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES ('web', 'US', 41), ('api', 'SPEC', 3)");
  db.run(
    `INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
     VALUES ('00000000-0000-4000-8000-000000000001', 'web', 'US', 40, 2, '${created}', '2099-01-01T00:00:00.000Z')`,
  );
  db.run(
    `INSERT INTO idempotency_keys (id, lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at)
     VALUES (7, ${idempotencyLookup("scope", "key-1")}, 'scope', 'key-1', 'fingerprint', 201, '{"ok":true}', ${Date.parse(finished)})`,
  );
  db.close();
}

/** A database as releases 0.2.x left it: schema version 2 or 3 (the same tables), and a row in every table. */
function writeVersion3Database(path: string, version: number): void {
  const db = new Database(path, { create: true, strict: true });
  db.run(version3Schema);
  db.run(`PRAGMA user_version = ${version}`);
  const insertTask = db.prepare(
    `INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                        unfinished_deps, status, claimed_by, lease_expires_at, lease_seconds, lost_by, lost_at,
                        completion_notes, created_at, updated_at, started_at, completed_at)
     VALUES (?, ?, 'web', ?, '[]', '[]', 'high', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const lease = "2099-01-01T00:00:00.000Z";
  insertTask.run(
    1,
    "T-1",
    "Done",
    "[]",
    0,
    "completed",
    "agent-1",
    null,
    null,
    null,
    null,
    "notes",
    created,
    finished,
    started,
    finished,
  );
  insertTask.run(
    2,
    "T-2",
    "Working",
    '["T-1"]',
    0,
    "in_progress",
    "agent-2",
    lease,
    60,
    "agent-lost",
    started,
    "",
    created,
    started,
    started,
    null,
  );
  insertTask.run(3, "T-3", "Waiting", '["T-2"]', 1, "pending", null, null, null, null, null, "", created, created, null, null);
  db.run("INSERT INTO task_dependencies (dependency_seq, dependent_seq) VALUES (1, 2), (2, 3)");
  db.run(
    `INSERT INTO task_events (event_id, task_seq, project_id, task_id, type, at, agent_id, from_status, to_status, details)
     VALUES (11, 1, 'web', 'T-1', 'created', '${created}', NULL, NULL, 'pending', '{}'),
            (12, 1, 'web', 'T-1', 'completed', '${finished}', 'agent-1', 'in_progress', 'completed', '{}')`,
  );
  db.run("INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES ('web', 'US', 41), ('api', 'SPEC', 3)");
  db.run(
    `INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
     VALUES ('00000000-0000-4000-8000-000000000001', 'web', 'US', 40, 2, '${created}', '2099-01-01T00:00:00.000Z')`,
  );
  db.run(
    `INSERT INTO idempotency_keys (id, lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at)
     VALUES (7, ${idempotencyLookup("scope", "key-1")}, 'scope', 'key-1', 'fingerprint', 201, '{"ok":true}', ${Date.parse(finished)})`,
  );
  db.close();
}

/** Tables, columns, indexes and triggers: what a schema is made of, whatever order it was built in. */
function describeSchema(path: string) {
  const db = new Database(path);
  try {
    const objects = db
      .query<{ type: string; name: string; tbl_name: string }, []>(
        "SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
      )
      .all();
    return objects.map((object) => {
      if (object.type === "table") {
        return { ...object, columns: db.query(`PRAGMA table_xinfo(${object.name})`).all() };
      }
      if (object.type === "index") {
        const sql = db.query<{ sql: string }, [string]>("SELECT sql FROM sqlite_schema WHERE name = ?").get(object.name)!.sql;
        return { ...object, columns: db.query(`PRAGMA index_xinfo(${object.name})`).all(), sql };
      }
      return {
        ...object,
        sql: db.query<{ sql: string }, [string]>("SELECT sql FROM sqlite_schema WHERE name = ?").get(object.name)!.sql,
      };
    });
  } finally {
    db.close();
  }
}

/** The history the upgrade writes for T-1 of writeVersion1Database, which version 1 did not keep. */
const version1TaskHistory: Array<Omit<TaskEvent, "event_id">> = [
  {
    project_id: "web",
    task_id: "T-1",
    type: "created",
    at: created,
    agent_id: null,
    key_name: null,
    from_status: null,
    to_status: "pending",
    details: { status: "pending" },
  },
  {
    project_id: "web",
    task_id: "T-1",
    type: "claimed",
    at: started,
    agent_id: "agent-1",
    key_name: null,
    from_status: "pending",
    to_status: "in_progress",
    details: { lease_expires_at: null },
  },
  {
    project_id: "web",
    task_id: "T-1",
    type: "completed",
    at: finished,
    agent_id: "agent-1",
    key_name: null,
    from_status: "in_progress",
    to_status: "completed",
    details: { completion_notes: "notes" },
  },
];

describe("upgrade from schema version 1", () => {
  test("keeps every task and dependency", async () => {
    const path = join(dir, "tracker.db");
    writeVersion1Database(path);
    storage = await openSqliteStorage({ path });
    const common = { project_id: "web", inputs: ["US-1"], outputs: ["a.ts"], created_at: created };
    expect(await storage.getTask({ projectId: null, taskId: "T-1" })).toEqual({
      ...common,
      task_id: "T-1",
      description: "Done",
      priority: "high",
      depends_on: [],
      status: "completed",
      claimed_by: "agent-1",
      claimed_by_key: null,
      lease_expires_at: null,
      completion_notes: "notes",
      updated_at: finished,
      started_at: started,
      completed_at: finished,
      labels: [],
      parent_id: null,
      acceptance_criteria: [],
      notes_count: 0,
      last_note: null,
      children: { total: 0, done: 0 },
      released_by: null,
      notes: [],
    });
    const working = await storage.getTask({ projectId: "web", taskId: "T-2" });
    // A claim held across the upgrade gets a fresh lease of the default length.
    expect(working).toMatchObject({ status: "in_progress", claimed_by: "agent-2", depends_on: ["T-1"] });
    expect(Date.parse(working!.lease_expires_at!) - Date.now()).toBeGreaterThan(1700_000);
    expect(await storage.findNextTask("web", "pending")).toBeNull(); // T-3 still waits for T-2
    await storage.changeTaskStatus({
      ref: { projectId: "web", taskId: "T-2" },
      to: "completed",
      completionNotes: "",
      agentId: "agent-2",
      leaseSeconds: 60,
      force: false,
      now: new Date(),
    });
    expect((await storage.findNextTask("web", "pending"))?.task_id).toBe("T-3");
    expect(await storage.listProjects()).toEqual([
      { project_id: "api", ready: 0, blocked: 0, in_progress: 0, completed: 0, cancelled: 0, last_change_at: null },
      { project_id: "web", ready: 1, blocked: 0, in_progress: 0, completed: 2, cancelled: 0, last_change_at: expect.any(String) },
    ]);
  });

  test("backfills the history, and keeps every counter, reservation and stored response", async () => {
    const path = join(dir, "tracker.db");
    writeVersion1Database(path);
    storage = await openSqliteStorage({ path });
    expect((await storage.listTaskEvents({ projectId: "web", taskId: "T-1" })).map(({ event_id: _, ...event }) => event)).toEqual(
      version1TaskHistory,
    );
    expect((await storage.listTaskEvents({ projectId: "web", taskId: "T-3" })).map((event) => event.type)).toEqual(["created"]);

    expect(await storage.allocateId("web", "US")).toBe(42);
    expect(await storage.allocateId("api", "SPEC")).toBe(4);
    expect(await storage.getReservation("00000000-0000-4000-8000-000000000001")).toMatchObject({
      firstNumber: 40,
      count: 2,
    });
    expect(
      await storage.claimIdempotencyKey({
        scope: "scope",
        key: "key-1",
        fingerprint: "fingerprint",
        now: new Date(finished),
        leaseMs: 1000,
        retentionMs: 60_000,
      }),
    ).toEqual({ outcome: "replay", response: { status: 201, body: '{"ok":true}' } });
  });
});

describe("schema versions", () => {
  test("an upgrade from version 1 ends with the same tables, indexes and triggers as a new database, at the current version", async () => {
    const upgraded = join(dir, "upgraded.db");
    writeVersion1Database(upgraded);
    await (await openSqliteStorage({ path: upgraded })).close();
    const fresh = join(dir, "fresh.db");
    await (await openSqliteStorage({ path: fresh })).close();
    expect(describeSchema(upgraded)).toEqual(describeSchema(fresh));
    const db = new Database(upgraded);
    expect(db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
    expect(db.query("PRAGMA foreign_key_check").all()).toEqual([]);
    expect(db.query<{ integrity_check: string }, []>("PRAGMA integrity_check").get()?.integrity_check).toBe("ok");
    db.close();
    // Opening again changes nothing.
    await (await openSqliteStorage({ path: upgraded })).close();
    expect(describeSchema(upgraded)).toEqual(describeSchema(fresh));
  });

  for (const version of [2, 3]) {
    test(`a database of version ${version} (releases 0.2.0 and 0.2.x, the same tables) opens at the current version with every row`, async () => {
      const path = join(dir, `version${version}.db`);
      writeVersion3Database(path, version);
      storage = await openSqliteStorage({ path });
      const change = { completionNotes: "", leaseSeconds: 60, force: false, now: new Date(finished) };
      await expect(
        storage.changeTaskStatus({ ...change, ref: { projectId: "web", taskId: "T-2" }, to: "completed", agentId: "agent-lost" }),
      ).rejects.toMatchObject({
        code: "claim_lost",
        message: `Your claim on T-2 expired at ${started}; it is now claimed by agent "agent-2"`,
      });
      expect(await storage.getTask({ projectId: "web", taskId: "T-1" })).toMatchObject({
        status: "completed",
        completion_notes: "notes",
        labels: [],
        parent_id: null,
        acceptance_criteria: [],
        notes_count: 0,
        last_note: null,
        children: { total: 0, done: 0 },
        released_by: null,
      });
      expect(
        (await storage.listTaskEvents({ projectId: "web", taskId: "T-1" })).map((event) => [event.event_id, event.type]),
      ).toEqual([
        [11, "created"],
        [12, "completed"],
      ]);
      expect(await storage.findNextTask("web", "pending")).toBeNull(); // T-3 still waits for T-2
      await storage.changeTaskStatus({
        ...change,
        ref: { projectId: "web", taskId: "T-2" },
        to: "completed",
        agentId: "agent-2",
      });
      expect((await storage.findNextTask("web", "pending"))?.task_id).toBe("T-3");
      expect(await storage.listProjects()).toEqual([
        { project_id: "api", ready: 0, blocked: 0, in_progress: 0, completed: 0, cancelled: 0, last_change_at: null },
        {
          project_id: "web",
          ready: 1,
          blocked: 0,
          in_progress: 0,
          completed: 2,
          cancelled: 0,
          last_change_at: expect.any(String),
        },
      ]);
      expect(await storage.allocateId("web", "US")).toBe(42);
      expect(await storage.getReservation("00000000-0000-4000-8000-000000000001")).toMatchObject({ firstNumber: 40 });
      expect(
        await storage.claimIdempotencyKey({
          scope: "scope",
          key: "key-1",
          fingerprint: "fingerprint",
          now: new Date(finished),
          leaseMs: 1000,
          retentionMs: 60_000,
        }),
      ).toEqual({ outcome: "replay", response: { status: 201, body: '{"ok":true}' } });
      await storage.close();
      storage = undefined;
      const fresh = join(dir, "fresh.db");
      await (await openSqliteStorage({ path: fresh })).close();
      expect(describeSchema(path)).toEqual(describeSchema(fresh));
      const db = new Database(path, { readonly: true });
      expect(db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(SCHEMA_VERSION);
      // The words of the tasks kept are indexed for search.
      expect(db.query("SELECT rowid FROM task_search WHERE task_search MATCH 'waiting'").all()).toEqual([{ rowid: 3 }]);
      db.close();
    });
  }

  test("a database newer than this service is refused with a sentence", async () => {
    const path = join(dir, "newer.db");
    const db = new Database(path, { create: true });
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(openSqliteStorage({ path })).rejects.toThrow(
      `The database has schema version ${SCHEMA_VERSION + 1}, newer than this service knows (${SCHEMA_VERSION}); run a newer tracker.`,
    );
  });
});

describe("the database file", () => {
  test("is created readable by its owner only, and so is its write-ahead log", async () => {
    const path = join(dir, "nested", "tracker.db");
    storage = await openSqliteStorage({ path });
    await storage.allocateId("p", "US");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
  });
});

test("a closed storage lets go of its file at once: the next opens it, whatever was read and written", async () => {
  const path = join(dir, "tracker.db");
  const first = await openSqliteStorage({ path });
  const task = { task_id: "a", project_id: "p", description: "a", inputs: [], outputs: [], depends_on: [] };
  await first.addTasks([{ ...task, priority: "medium", status: "pending", completion_notes: "" }], new Date(), null);
  await first.listTasks({ projectId: "p", status: null, ready: null, claimedBy: null, limit: 10, cursor: null });
  await first.listTasks({ projectId: null, status: "pending", ready: true, claimedBy: null, limit: 10, cursor: null });
  await first.close();
  storage = await openSqliteStorage({ path });
  expect((await storage.getTask({ projectId: "p", taskId: "a" }))?.task_id).toBe("a");
});

test("every query of GET /tasks is a range scan of an index in the wanted order, never a sort", () => {
  const db = new Database(":memory:");
  db.run(schemaSql);
  const plans: string[] = [];
  for (const part of TASK_LIST_PARTS) {
    for (const projectId of [null, "p"]) {
      for (const claimedBy of [null, "agent-1"]) {
        const query = { projectId, status: null, ready: null, claimedBy, limit: 100, cursor: null };
        const key = part === "ready" || part === "blocked" ? 1 : "2026-12-01T00:00:00.000Z";
        for (const after of [null, { part, key, seq: 7 }]) {
          for (const { sql, params } of listPartQueries(part, query, after)) {
            const plan = db.query<{ detail: string }, Array<string | number>>(`EXPLAIN QUERY PLAN ${sql}`).all(...params, 100);
            plans.push(
              `${part} ${projectId} ${claimedBy} ${after ? "after" : "first"}: ${plan.map((row) => row.detail).join("; ")}`,
            );
          }
        }
      }
    }
  }
  expect(plans.filter((plan) => /TEMP B-TREE|SCAN tasks$|SCAN tasks;/.test(plan))).toEqual([]);
  expect(plans.every((plan) => /USING INDEX tasks_/.test(plan))).toBe(true);
  // A parent's children (GET /tasks?parent=, get_task) come from their own index, never a scan of the project.
  const children = { projectId: "p", status: null, ready: null, claimedBy: null, limit: 100, cursor: null, parent: "E" };
  for (const part of TASK_LIST_PARTS) {
    for (const { sql, params } of listPartQueries(part, children, null)) {
      const plan = db.query<{ detail: string }, Array<string | number>>(`EXPLAIN QUERY PLAN ${sql}`).all(...params, 100);
      expect(plan.map((row) => row.detail).join("; ")).toContain("USING INDEX tasks_children (project_id=? AND parent_id=?)");
    }
  }
  db.close();
});
