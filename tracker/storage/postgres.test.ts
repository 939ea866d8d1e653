// What only the PostgreSQL storage has: several storages (instances) on one database, schema
// versioning under concurrent start-ups, and recovery from a database that goes away. Runs in the
// PostgreSQL target of the suite (TRACKER_TEST_STORAGE=postgres, see postgres-target.test.ts).
//
// A lost database is played by a TCP proxy between the tracker and PostgreSQL: `cut` drops every
// connection and refuses new ones (a stopped server), `blackhole` keeps connections open and
// swallows every byte (a network that silently stopped delivering).

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type Socket, SQL, type TCPSocketListener } from "bun";
import { runProcess } from "../../testkit/processes.ts";
import { trackerCommand } from "../../testkit/tracker.ts";
import { readConfig } from "../config.ts";
import {
  SCHEMA_VERSION,
  SEARCH_RANKED_MATCHES,
  type StatusChange,
  type TaskChange,
  type TaskListQuery,
  type TaskPage,
  type TaskRef,
} from "../domain.ts";
import { type RunningTracker, startTracker } from "../http/server.ts";
import { createLogger } from "../log.ts";
import { makePostgresSchema, newTask, type PostgresTestSchema } from "../testing.ts";
import { openPostgresStorage, type PostgresStorage, redactDatabaseUrl } from "./postgres.ts";
import postgresV1Sql from "./schema/postgres-v1.sql" with { type: "text" };
import postgresV2Sql from "./schema/postgres-v2.sql" with { type: "text" };
import postgresV3Sql from "./schema/postgres-v3.sql" with { type: "text" };
import { type IdempotencyClaim, StoredResponseReplay } from "./storage.ts";

const onPostgres = process.env.TRACKER_TEST_STORAGE === "postgres";
const now = new Date("2026-11-24T21:46:59.123Z");
const API_KEY = "postgres-test-key-0123456789";

/** A task of project p. */
function ref(taskId: string): TaskRef {
  return { projectId: "p", taskId };
}

function anyProject(taskId: string): TaskRef {
  return { projectId: null, taskId };
}

function change(taskId: string, to: StatusChange["to"]): StatusChange {
  return { ref: ref(taskId), to, completionNotes: "", agentId: null, leaseSeconds: 1800, force: false, now };
}

/** A database as the first release left it: tasks in every status, a dependency, counters, keys. */
async function fillVersion1(sql: SQL): Promise<void> {
  const at = "2026-11-01T10:00:00.000Z";
  await sql`
    INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                       unfinished_deps, status, claimed_by, completion_notes, created_at, updated_at, started_at, completed_at)
    VALUES (1, 'OLD-1', 'old', 'first', '["a"]', '[]', 'high', 0, '[]', 0, 'completed', 'agent-old', 'done', ${at}, ${at}, ${at}, ${at}),
           (2, 'OLD-2', 'old', 'second', '[]', '[]', 'medium', 1, '[]', 0, 'in_progress', 'agent-old', '', ${at}, ${at}, ${at}, NULL),
           (3, 'OLD-3', 'old', 'third', '[]', '[]', 'medium', 1, '["OLD-2"]', 1, 'pending', NULL, '', ${at}, ${at}, NULL, NULL),
           (4, 'OLD-4', 'old', 'fourth', '[]', '[]', 'medium', 1, '[]', 0, 'pending', NULL, '', ${at}, ${at}, NULL, NULL)`;
  await sql`SELECT setval(pg_get_serial_sequence('tasks', 'seq'), 4)`;
  await sql`INSERT INTO task_dependencies VALUES (2, 3)`;
  await sql`INSERT INTO id_counters VALUES ('old', 'US', 27)`;
  await sql`
    INSERT INTO reservations VALUES ('0190a0b0-0000-7000-8000-000000000001', 'old', 'US', 20, 5, ${at}, '2099-01-01T00:00:00Z')`;
  await sql`
    INSERT INTO idempotency_keys VALUES
      ('s', 'answered', 'f', 't1', 200, '{"number":7}', now(), now() + interval '1 minute'),
      ('s', 'unanswered', 'f', 't2', NULL, NULL, now(), now() + interval '1 minute')`;
}

/** Columns, constraints and indexes of the tables of a database URL's schema, without the schema's name. */
/** The upgraded schema's tables, columns and indexes are those a fresh database is created with. */
async function expectTablesOfAFreshDatabase(): Promise<void> {
  const fresh = await makePostgresSchema();
  try {
    await (await open(fresh.url)).ping();
    expect(await describeTables(schema.url)).toEqual(await describeTables(fresh.url));
  } finally {
    for (const storage of opened.splice(1)) await storage.close();
    await fresh.drop();
  }
}

async function describeTables(url: string): Promise<unknown> {
  const sql = new SQL(url, { max: 1 });
  try {
    const columns = await sql`
      SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity, identity_generation,
             is_generated, generation_expression
      FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`;
    const constraints = await sql`
      SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS definition
      FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2`;
    const indexes = await sql`
      SELECT tablename, indexname, replace(indexdef, current_schema() || '.', '') AS definition
      FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2`;
    return { columns, constraints, indexes };
  } finally {
    await sql.close();
  }
}

test("a database URL is logged without its password", () => {
  expect(redactDatabaseUrl("postgres://tracker:s3cret@db.example:5432/tracker?sslmode=require")).toBe(
    "postgres://tracker:***@db.example:5432/tracker?sslmode=require",
  );
  expect(redactDatabaseUrl("postgres://db.example/tracker")).toBe("postgres://db.example/tracker");
});

test("the PostgreSQL settings are read and checked like the others", () => {
  expect(readConfig({ DATABASE_URL: "postgres://tracker:s3cret@db.example/tracker" })).toMatchObject({
    databaseUrl: "postgres://tracker:s3cret@db.example/tracker",
    databasePoolMax: 10,
    databaseConnectTimeoutSeconds: 5,
    databaseQueryTimeoutSeconds: 10,
  });
  expect(
    readConfig({ HOME: "/home/ada", DATABASE_POOL_MAX: "25", DATABASE_CONNECT_TIMEOUT: "2", DATABASE_QUERY_TIMEOUT: "30" }),
  ).toMatchObject({
    databaseUrl: null,
    databasePoolMax: 25,
    databaseConnectTimeoutSeconds: 2,
    databaseQueryTimeoutSeconds: 30,
  });
  expect(() => readConfig({ DATABASE_POOL_MAX: "0" })).toThrow(
    "DATABASE_POOL_MAX must be a number of connections from 1 to 1000; it is below 1.",
  );
  expect(() => readConfig({ DATABASE_CONNECT_TIMEOUT: "soon" })).toThrow(
    "DATABASE_CONNECT_TIMEOUT must be a number of seconds from 1 to 600; it is not a whole number.",
  );
  expect(() => readConfig({ DATABASE_QUERY_TIMEOUT: "1.5" })).toThrow("DATABASE_QUERY_TIMEOUT must be a number of seconds");
  // The sentences never repeat the URL: it may hold a password.
  expect(() => readConfig({ DATABASE_URL: "mysql://tracker:s3cret@db.example/tracker" })).toThrow(
    "DATABASE_URL must be a postgres:// or postgresql:// URL.",
  );
  const unparsable = () => readConfig({ DATABASE_URL: "postgres://tracker:s3cret@[db.example/tracker" });
  expect(unparsable).toThrow("DATABASE_URL is not a valid URL");
  expect(unparsable).not.toThrow("s3cret");
});

test("a tracker that cannot reach its database stops with a sentence, never with the password", async () => {
  const { code, stdout, stderr } = await runProcess(trackerCommand(), {
    // Port 1 on loopback: nothing listens there.
    env: {
      ...process.env,
      DATABASE_URL: "postgres://tracker:s3cret-pw@127.0.0.1:1/tracker",
      TRACKER_API_KEYS: API_KEY,
    },
  });
  expect({ code, stdout }).toEqual({ code: 1, stdout: "" });
  expect(stderr).toStartWith("The tracker could not open its database: The database is unavailable");
  expect(stderr).not.toContain("s3cret-pw");
});

// The PostgreSQL storage itself: registered only in the PostgreSQL run (the SQLite run says loudly that
// it skipped that one). Each test works in a fresh schema of its own.
let schema: PostgresTestSchema;
const opened: PostgresStorage[] = [];
let admin: SQL;

async function open(url = schema.url, options: { queryTimeoutMs?: number } = {}): Promise<PostgresStorage> {
  const storage = await openPostgresStorage({ url, connectTimeoutMs: 1000, ...options });
  opened.push(storage);
  return storage;
}

async function makeFreshSchema(): Promise<void> {
  schema = await makePostgresSchema();
  admin = new SQL(schema.url, { max: 1 });
}

async function dropFreshSchema(): Promise<void> {
  for (const storage of opened.splice(0)) await storage.close();
  await admin.close();
  await schema.drop();
}

/** A fresh schema for each test of the describe that calls it; every storage opened is closed after the test. */
function withFreshSchema(): void {
  beforeEach(makeFreshSchema);
  afterEach(dropFreshSchema);
}

/** Resolves with the first `count` changes a storage's subscribers hear. */
function hear(storage: PostgresStorage, count: number): Promise<TaskChange[]> {
  const heard: TaskChange[] = [];
  const done = Promise.withResolvers<TaskChange[]>();
  const unsubscribe = storage.subscribe((change) => {
    heard.push(change);
    if (heard.length === count) {
      unsubscribe();
      done.resolve(heard);
    }
  });
  return done.promise;
}

/** Until the subscriber's LISTEN is in place, a change may go unheard: add tasks until one is. */
async function untilHeard(writer: PostgresStorage, listener: PostgresStorage, limitMs: number): Promise<void> {
  const heard = hear(listener, 1);
  const started = performance.now();
  for (let _i = 0; ; _i++) {
    await writer.addTasks([newTask(`PROBE-${crypto.randomUUID()}`)], now, null);
    const answer = await Promise.race([heard.then(() => true), Bun.sleep(100).then(() => false)]);
    if (answer) return;
    if (performance.now() - started > limitMs) throw new Error(`nothing heard within ${limitMs} ms`);
  }
}

const request = { scope: "s", fingerprint: "f", now, leaseMs: 60_000, retentionMs: 86_400_000 };

async function claim(storage: PostgresStorage, key: string, fingerprint = "f"): Promise<IdempotencyClaim> {
  const outcome = await storage.claimIdempotencyKey({ ...request, key, fingerprint });
  if (outcome.outcome !== "claimed") throw new Error(`expected a claim, got ${outcome.outcome}`);
  return outcome.claim;
}
const respond = (n: number) => ({ status: 200, body: `{"n":${n}}` });

/** The transaction ID the next write will get: it advances by one per committed (or aborted) write. */
async function nextTransactionId(): Promise<bigint> {
  const [row] = await admin<{ next: string }[]>`SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS next`;
  return BigInt(row!.next);
}

/** Moves the database's view of the claims' leases into the past: time passing, without waiting. */
async function runOutLeases(): Promise<void> {
  await admin`UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE status = 'in_progress'`;
}

/**
 * Release 0.2.0 kept a lost claim only in the history: the former holder of the task's last
 * claim_expired, unless that agent claimed the task again since.
 */
async function fillVersion2(sql: SQL): Promise<void> {
  const at = "2026-11-01T10:00:00.000Z";
  const lease = "2026-11-01T10:30:00.000Z";
  const later = "2026-11-01T11:30:00.000Z";
  await sql`
    INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                       unfinished_deps, status, claimed_by, completion_notes, created_at, updated_at, started_at,
                       completed_at, lease_expires_at, lease_seconds)
    VALUES (1, 'LOST', 'v2', 'lost', '[]', '[]', 'high', 0, '[]', 0, 'pending', NULL, '', ${at}, ${at}, NULL, NULL, NULL, NULL),
           (2, 'HELD', 'v2', 'held', '[]', '[]', 'high', 0, '[]', 0, 'in_progress', 'agent-d', '', ${at}, ${at}, ${at}, NULL,
            '2099-01-01T00:00:00Z', 1800),
           (3, 'BACK', 'v2', 'back', '[]', '[]', 'high', 0, '[]', 0, 'in_progress', 'agent-b', '', ${at}, ${at}, ${at}, NULL,
            '2099-01-01T00:00:00Z', 1800),
           (4, 'NEVER', 'v2', 'never', '[]', '[]', 'high', 0, '[]', 0, 'pending', NULL, '', ${at}, ${at}, NULL, NULL, NULL, NULL)`;
  const expired = (holder: string, until: string) => ({ former_holder: holder, lease_expires_at: until });
  const claimed = { lease_expires_at: lease };
  const events: Array<[number, string, string | null, string, string, Record<string, unknown>]> = [
    [1, "claimed", "agent-x", "pending", "in_progress", claimed],
    [1, "claim_expired", null, "in_progress", "pending", expired("agent-x", lease)],
    [1, "claimed", "agent-a", "pending", "in_progress", claimed],
    [1, "claim_expired", null, "in_progress", "pending", expired("agent-a", later)],
    [2, "claimed", "agent-c", "pending", "in_progress", claimed],
    [2, "claim_expired", null, "in_progress", "pending", expired("agent-c", lease)],
    [2, "claimed", "agent-d", "pending", "in_progress", claimed],
    [3, "claimed", "agent-b", "pending", "in_progress", claimed],
    [3, "claim_expired", null, "in_progress", "pending", expired("agent-b", lease)],
    [3, "claimed", "agent-b", "pending", "in_progress", claimed],
  ];
  for (const [seq, type, agent, from, to, details] of events) {
    await sql`
      INSERT INTO task_events (task_seq, type, at, agent_id, from_status, to_status, details)
      VALUES (${seq}, ${type}, ${at}, ${agent}, ${from}, ${to}, ${details})`;
  }
  await sql`SELECT setval(pg_get_serial_sequence('tasks', 'seq'), 4)`;
}

let proxy: TcpProxy;
let tracker: RunningTracker;
/** The tracker's storage, connected through the proxy. */
let subscriber: PostgresStorage;

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${tracker.url}${path}`, { headers: { Authorization: `Bearer ${API_KEY}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Polls /healthz until it answers 200; returns how long that took. */
async function msUntilHealthy(limitMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if ((await get("/healthz")).status === 200) return performance.now() - started;
    await Bun.sleep(50);
  }
  throw new Error(`/healthz was not 200 within ${limitMs} ms`);
}

/** A tracker whose storage reaches PostgreSQL through a TcpProxy, in a fresh schema for each test. */
function withTrackerBehindProxy(): void {
  beforeEach(async () => {
    await makeFreshSchema();
    const database = new URL(schema.url);
    proxy = new TcpProxy(database.hostname, Number(database.port || 5432));
    await proxy.listen();
    const viaProxy = new URL(schema.url);
    viaProxy.port = String(proxy.port);
    const storage = await open(viaProxy.toString(), { queryTimeoutMs: 1000 });
    subscriber = storage;
    tracker = await startTracker({ storage, logger: createLogger("error", () => {}), apiKeys: [API_KEY], port: 0 });
  });
  afterEach(async () => {
    await tracker.stop();
    proxy.close();
    await dropFreshSchema();
  });
}

if (onPostgres) {
  describe("PostgreSQL storage", () => {
    withFreshSchema();

    test("startTracker serves the PostgreSQL storage it is given, and stop() leaves it to its owner", async () => {
      const storage = await open();
      const tracker = await startTracker({ storage, logger: createLogger("error", () => {}), apiKeys: [API_KEY], port: 0 });
      const response = await fetch(`${tracker.url}/ids/next?type=US&project=p`, {
        headers: { Authorization: `Bearer ${API_KEY}` },
      });
      expect(await response.json()).toEqual({ next_id: "US-001", artifact_type: "US", project_id: "p", number: 1 });
      await tracker.stop();
      await storage.ping();
    });

    test("instances starting at once apply the schema once", async () => {
      const storages = await Promise.all([open(), open(), open()]);
      await storages[0]!.addTasks([newTask("T-1", { priority: "low" })], now, null);
      expect((await storages[2]!.getTask(ref("T-1")))?.priority).toBe("low");
      expect(await admin`SELECT version FROM tracker_schema`).toEqual([{ version: SCHEMA_VERSION }]);
      await admin`UPDATE tracker_schema SET version = 99`;
      expect(open()).rejects.toThrow(
        `The database has schema version 99, newer than this service knows (${SCHEMA_VERSION}); run a newer tracker.`,
      );
    });

    test("tasks are identified per project; a ref without a project must be unambiguous", async () => {
      const storage = await open();
      await storage.addTasks([newTask("T-1"), newTask("T-1", { project_id: "q" }), newTask("T-2")], now, null);
      expect(await storage.getTask({ projectId: "q", taskId: "T-1" })).toMatchObject({ project_id: "q", task_id: "T-1" });
      expect(await storage.getTask(anyProject("T-2"))).toMatchObject({ project_id: "p" });
      expect(storage.getTask(anyProject("T-1"))).rejects.toMatchObject({
        code: "ambiguous_task_id",
        message: "Task T-1 exists in projects p, q; pass ?project=<project_id>",
      });
      expect(await storage.getTask({ projectId: "q", taskId: "T-2" })).toBeNull();
      expect(storage.addTasks([newTask("T-1", { project_id: "q" })], now, null)).rejects.toMatchObject({
        code: "conflict",
        message: "Task already exists: T-1 in project q",
      });
    });

    test("text PostgreSQL cannot hold is a validation_failed naming the field, never a 500", async () => {
      const storage = await open();
      expect(storage.addTasks([newTask("T-1", { description: "a\0b" })], now, null)).rejects.toMatchObject({
        code: "validation_failed",
        message: "tasks[0].description must not contain a NUL character",
      });
      expect(storage.addTasks([newTask("T-1", { inputs: ["x", "\ud800"] })], now, null)).rejects.toMatchObject({
        code: "validation_failed",
        message: "tasks[0].inputs[1] must not contain a lone surrogate (invalid UTF-16)",
      });
      await storage.addTasks([newTask("T-1")], now, null);
      await storage.changeTaskStatus(change("T-1", "in_progress"));
      expect(storage.changeTaskStatus({ ...change("T-1", "completed"), completionNotes: "\udc00" })).rejects.toMatchObject({
        code: "validation_failed",
        message: "completion_notes must not contain a lone surrogate (invalid UTF-16)",
      });
      expect(storage.updateTask({ ref: ref("T-1"), description: "\0", agentId: null, now })).rejects.toMatchObject({
        code: "validation_failed",
      });
      // Fields the HTTP layer checks by pattern: the net under the checks still says 400.
      expect(storage.getTask({ projectId: "p", taskId: "T\0" })).rejects.toMatchObject({ code: "validation_failed" });
      expect(storage.allocateId("p\0", "US")).rejects.toMatchObject({ code: "validation_failed" });
      expect((await storage.getTask(ref("T-1")))?.description).toBe("Do T-1");
    });
  });

  describe("PostgreSQL storage: search", () => {
    withFreshSchema();

    /** The schema's URL with planner settings, which the server applies to every connection of the pool. */
    function withPlanner(settings: Record<string, string>): string {
      const url = new URL(schema.url);
      for (const [name, value] of Object.entries(settings)) url.searchParams.set(name, value);
      return url.toString();
    }

    /** Every page of a search, following next_cursor. */
    async function allPages(storage: PostgresStorage, query: Partial<TaskListQuery>): Promise<TaskPage[]> {
      const base = { projectId: "p", status: null, ready: null, claimedBy: null, limit: 300, cursor: null, ...query };
      const pages = [await storage.listTasks(base)];
      while (pages.at(-1)!.nextCursor) pages.push(await storage.listTasks({ ...base, cursor: pages.at(-1)!.nextCursor }));
      return pages;
    }

    test("a broad word read from the newest tasks backwards and a rare one from the GIN index answer alike", async () => {
      const storage = await open();
      // Project p: "common" in every task, once to three times (so ranks differ); "rare" in five and a note.
      const tasks = Array.from({ length: 1200 }, (_, i) =>
        newTask(`T-${i}`, {
          description: `${"common ".repeat(1 + (i % 3))}task ${i}${i % 250 === 7 ? " rare" : ""}`,
          labels: i % 2 === 1 ? ["odd"] : [],
        }),
      );
      for (let start = 0; start < tasks.length; start += 400) await storage.addTasks(tasks.slice(start, start + 400), now, null);
      // Newer matches of both words in another project, which p's searches never count among p's newest.
      const others = Array.from({ length: 300 }, (_, i) => newTask(`Q-${i}`, { project_id: "q", description: "common rare" }));
      await storage.addTasks(others, now, null);
      await storage.addNote({ ref: ref("T-1"), text: "a rare sighting", agentId: "dana", now });
      await admin`ANALYZE task_search`;
      const backwards = { enable_bitmapscan: "off", enable_seqscan: "off" };
      const probe = new SQL(withPlanner(backwards), { max: 1 });
      expect(await probe`SHOW enable_bitmapscan`).toEqual([{ enable_bitmapscan: "off" }]);
      await probe.close();
      const plans = [
        storage,
        await open(withPlanner(backwards)),
        await open(withPlanner({ enable_indexscan: "off", enable_seqscan: "off" })),
      ];
      const queries: Partial<TaskListQuery>[] = [
        { q: "common" },
        { q: "rare" },
        { q: "common task" },
        { q: "common", labels: ["odd"], limit: 7 },
        { q: "rare", projectId: null },
        { q: "common", status: "pending", ready: true },
      ];
      for (const query of queries) {
        const [planned, ...forced] = await Promise.all(plans.map((plan) => allPages(plan, query)));
        for (const other of forced) expect(other).toEqual(planned!);
      }
      const common = (await allPages(storage, { q: "common" })).flatMap((page) => page.tasks);
      // The 1,000 newest of p: T-200 … T-1199, three times "common" first, then by insertion.
      expect(common).toHaveLength(SEARCH_RANKED_MATCHES);
      expect(common.slice(0, 2).map((task) => task.task_id)).toEqual(["T-200", "T-203"]);
      expect(common.at(-1)?.task_id).toBe("T-1197");
      const rare = (await allPages(storage, { q: "rare" })).flatMap((page) => page.tasks.map((task) => task.task_id));
      expect(new Set(rare)).toEqual(new Set(["T-1", "T-7", "T-257", "T-507", "T-757", "T-1007"]));
    });
  });

  describe("PostgreSQL storage: Idempotency-Keys", () => {
    withFreshSchema();

    test("an idempotent allocation is one transaction: the key and the effect commit together", async () => {
      const storage = await open();
      await storage.allocateId("p", "US"); // the counter row exists: what follows is the steady state
      const before = await nextTransactionId();
      expect(await storage.allocateId("p", "US", { claim: await claim(storage, "k"), respond })).toBe(2);
      expect((await nextTransactionId()) - before).toBe(1n);
      expect(await storage.claimIdempotencyKey({ ...request, key: "k" })).toEqual({
        outcome: "replay",
        response: { status: 200, body: '{"n":2}' },
      });
    });

    test("twins on two instances take effect once: the later one replays the first one's response", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const keys = Array.from({ length: 20 }, (_, i) => `twin-${i}`);
      const answers = await Promise.all(
        keys.flatMap((key) =>
          [first, second].map(async (storage) => {
            const outcome = await storage.claimIdempotencyKey({ ...request, key });
            if (outcome.outcome === "replay") return outcome.response; // the twin had committed already
            if (outcome.outcome !== "claimed") throw new Error(`expected a claim, got ${outcome.outcome}`);
            try {
              return respond(await storage.allocateId("p", "US", { claim: outcome.claim, respond }));
            } catch (error) {
              if (error instanceof StoredResponseReplay) return error.response;
              throw error;
            }
          }),
        ),
      );
      for (let i = 0; i < keys.length; i++) expect(answers[2 * i]).toEqual(answers[2 * i + 1]!);
      expect(await first.allocateId("p", "US")).toBe(keys.length + 1);
    });

    test("a 4xx stored without the key's lock while the key's write is in its transaction stands; the write changes nothing", async () => {
      const storage = await open();
      await storage.allocateId("p", "US");
      // Hold the counter row, so the write stops inside its transaction, past its read of the key.
      const blocker = new SQL(schema.url, { max: 1 });
      const holding = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const blocked = blocker.begin(async (tx) => {
        await tx`SELECT * FROM id_counters FOR UPDATE`;
        holding.resolve();
        await release.promise;
      });
      await holding.promise;
      const key = await claim(storage, "k");
      const write = storage.allocateId("p", "US", { claim: key, respond }).then(
        () => "committed",
        (error: unknown) => error,
      );
      for (;;) {
        const [row] = await admin`
          SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO id_counters%'
            AND query NOT LIKE '%pg_stat_activity%'`;
        if (row) break;
        await Bun.sleep(10);
      }
      await storage.saveIdempotentResponse(key, { status: 409, body: '{"stored":"meanwhile"}' });
      release.resolve();
      await blocked;
      await blocker.close();
      const outcome = await write;
      expect(outcome).toBeInstanceOf(StoredResponseReplay);
      expect((outcome as StoredResponseReplay).response).toEqual({ status: 409, body: '{"stored":"meanwhile"}' });
      expect(await storage.allocateId("p", "US")).toBe(2);
    });

    test("a twin of another request is a mismatch and changes nothing", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const [mine, theirs] = [await claim(first, "k"), await claim(second, "k", "g")];
      await first.allocateId("p", "US", { claim: mine, respond });
      const write = second.allocateId("p", "US", { claim: theirs, respond });
      expect(write).rejects.toMatchObject({ code: "idempotency_mismatch" });
      expect(await first.allocateId("p", "US")).toBe(2);
    });
  });

  describe("PostgreSQL storage: claiming the next task", () => {
    withFreshSchema();

    test("a task another transaction holds locked is passed over at once, not waited for", async () => {
      const storage = await open();
      await storage.addTasks([newTask("T-1"), newTask("T-2")], now, null);
      // Another claimer in the middle of its claim of T-1: its row lock held until it commits.
      const blocker = new SQL(schema.url, { max: 1 });
      const holding = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const blocked = blocker.begin(async (tx) => {
        await tx`SELECT * FROM tasks WHERE task_id = 'T-1' FOR UPDATE`;
        holding.resolve();
        await release.promise;
      });
      await holding.promise;
      const claim = { projectId: "p", agentId: "agent-1", leaseSeconds: 60, now };
      const claimed = await Promise.race([storage.claimNextTask(claim), Bun.sleep(2000).then(() => "waited")]);
      release.resolve();
      await blocked;
      await blocker.close();
      expect(claimed).toMatchObject({ task_id: "T-2", status: "in_progress", claimed_by: "agent-1" });
      expect(await storage.claimNextTask(claim)).toMatchObject({ task_id: "T-1" });
    });
  });

  describe("PostgreSQL storage: Idempotency-Keys of requests that died", () => {
    withFreshSchema();

    test("a request that died in its transaction leaves its key free at once", async () => {
      const [doomed, survivor] = await Promise.all([open(), open()]);
      await doomed.allocateId("p", "US");
      // Hold the counter row, so the doomed request stops inside its transaction, holding the key.
      const blocker = new SQL(schema.url, { max: 1 });
      const holding = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const blocked = blocker.begin(async (tx) => {
        await tx`SELECT * FROM id_counters FOR UPDATE`;
        holding.resolve();
        await release.promise;
      });
      await holding.promise;
      const doomedWrite = doomed.allocateId("p", "US", { claim: await claim(doomed, "k"), respond }).catch(() => "killed");
      const waitingOn = async (text: string) => {
        for (;;) {
          const [row] = await admin<{ pid: number }[]>`
              SELECT pid FROM pg_stat_activity WHERE wait_event_type IN ('Lock', 'Advisory') AND query LIKE ${`%${text}%`}
                AND query NOT LIKE '%pg_stat_activity%'`;
          if (row) return row.pid;
          await Bun.sleep(10);
        }
      };
      const doomedPid = await waitingOn("id_counters");
      const survivorWrite = survivor.allocateId("p", "US", { claim: await claim(survivor, "k"), respond });
      await waitingOn("pg_advisory_xact_lock"); // the twin waits for the key
      // kill -9 of the doomed instance, as the database sees it: its session ends.
      await admin`SELECT pg_terminate_backend(${doomedPid})`;
      expect(await doomedWrite).toBe("killed");
      release.resolve();
      await blocked;
      expect(await survivorWrite).toBe(2);
      await blocker.close();
    });

    test("a claim whose process died is no claim at all", async () => {
      const [dying, survivor] = await Promise.all([open(), open()]);
      await claim(dying, "k");
      await dying.close();
      expect(await survivor.allocateId("p", "US", { claim: await claim(survivor, "k"), respond })).toBe(1);
    });
  });

  describe("PostgreSQL storage: leases", () => {
    withFreshSchema();

    test("a lease runs by the database's clock, not the caller's", async () => {
      const storage = await open();
      await storage.addTasks([newTask("T-1")], now, null);
      const long_ago = new Date("2020-01-01T00:00:00.000Z");
      const claimed = await storage.changeTaskStatus({ ...change("T-1", "in_progress"), now: long_ago, leaseSeconds: 60 });
      const [row] = await admin<{ db_now: Date }[]>`SELECT now() AS db_now`;
      const offset = Date.parse(claimed.lease_expires_at!) - row!.db_now.getTime();
      expect(offset).toBeGreaterThan(55_000);
      expect(offset).toBeLessThan(61_000);
      expect(claimed.started_at).toBe(long_ago.toISOString());
    });

    test("instances expiring at once expire each claim once, with one claim_expired each", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const tasks = Array.from({ length: 30 }, (_, i) => newTask(`T-${i}`));
      await first.addTasks(tasks, now, null);
      for (const task of tasks) await first.changeTaskStatus({ ...change(task.task_id, "in_progress"), agentId: "a" });
      expect(await first.expireLeases(now)).toBe(0);
      await runOutLeases();
      const counts = await Promise.all([first.expireLeases(now), second.expireLeases(now), first.expireLeases(now)]);
      expect(counts.reduce((sum, count) => sum + count, 0)).toBe(tasks.length);
      for (const task of tasks) {
        expect(await second.getTask(ref(task.task_id))).toMatchObject({
          status: "pending",
          claimed_by: null,
          lease_expires_at: null,
        });
        const events = await second.listTaskEvents(ref(task.task_id));
        expect(events.map((event) => event.type)).toEqual(["created", "claimed", "claim_expired"]);
        expect(events[2]).toMatchObject({ agent_id: null, from_status: "in_progress", to_status: "pending" });
        expect(events[2]!.details).toEqual({ former_holder: "a", lease_expires_at: expect.any(String) });
      }
    });

    test("a renewal extends the lease by the claim's own length, by the database's clock", async () => {
      const storage = await open();
      await storage.addTasks([newTask("a")], now, null);
      await storage.changeTaskStatus({ ...change("a", "in_progress"), agentId: "agent-1", leaseSeconds: 30 });
      await admin`UPDATE tasks SET lease_expires_at = now() + interval '1 second'`;
      const renewed = await storage.renewLease({ ref: ref("a"), agentId: "agent-1", leaseSeconds: null, now });
      const [row] = await admin<{ db_now: Date }[]>`SELECT now() AS db_now`;
      const offset = Date.parse(renewed.lease_expires_at!) - row!.db_now.getTime();
      expect(offset).toBeGreaterThan(25_000);
      expect(offset).toBeLessThan(31_000);
      const longer = await storage.renewLease({ ref: ref("a"), agentId: "agent-1", leaseSeconds: 600, now });
      expect(Date.parse(longer.lease_expires_at!) - row!.db_now.getTime()).toBeGreaterThan(595_000);
      expect((await storage.listTaskEvents(ref("a"))).map((event) => event.type)).toEqual(["created", "claimed"]);
    });
  });

  describe("PostgreSQL storage: lost claims", () => {
    withFreshSchema();

    test("the former holder of an expired claim gets claim_lost; others not_claim_holder; force releases", async () => {
      const storage = await open();
      await storage.addTasks([newTask("T-1")], now, null);
      await storage.changeTaskStatus({ ...change("T-1", "in_progress"), agentId: "a" });
      await runOutLeases();
      expect(await storage.expireLeases(now)).toBe(1);
      expect(storage.changeTaskStatus({ ...change("T-1", "completed"), agentId: "a" })).rejects.toMatchObject({
        code: "claim_lost",
      });
      await storage.changeTaskStatus({ ...change("T-1", "in_progress"), agentId: "b" });
      expect(storage.renewLease({ ref: ref("T-1"), agentId: "a", leaseSeconds: null, now })).rejects.toMatchObject({
        code: "claim_lost",
        message: expect.stringContaining('it is now claimed by agent "b"'),
      });
      expect(storage.changeTaskStatus({ ...change("T-1", "completed"), agentId: "c" })).rejects.toMatchObject({
        code: "not_claim_holder",
      });
      const released = await storage.changeTaskStatus({ ...change("T-1", "pending"), agentId: "c", force: true });
      expect(released).toMatchObject({ status: "pending", claimed_by: null, lease_expires_at: null });
      const events = await storage.listTaskEvents(ref("T-1"));
      expect(events.at(-1)).toMatchObject({ type: "force_released", agent_id: "c", details: { former_holder: "b" } });
    });
    test("the former holder hears claim_lost with force and on a claim without a holder, until it claims again", async () => {
      const storage = await open();
      await storage.addTasks([newTask("T-1")], now, null);
      const as = (to: StatusChange["to"], agentId: string | null, force = false) =>
        storage.changeTaskStatus({ ...change("T-1", to), agentId, force });
      await as("in_progress", "a");
      await runOutLeases();
      await as("in_progress", null);
      const lostToAnonymous = { code: "claim_lost", message: expect.stringContaining("an agent that sent no X-Agent-Id") };
      await expect(as("completed", "a")).rejects.toMatchObject(lostToAnonymous);
      await expect(as("pending", "a", true)).rejects.toMatchObject(lostToAnonymous);
      await as("pending", null);
      await as("in_progress", "a");
      await as("pending", "a");
      await as("in_progress", "b");
      await expect(as("completed", "a")).rejects.toMatchObject({ code: "not_claim_holder" });
    });

    test("a lease that ran out before the sweep ends its claim in the step that finds it", async () => {
      const storage = await open();
      await storage.addTasks([newTask("a"), newTask("b")], now, null);
      await storage.changeTaskStatus({ ...change("a", "in_progress"), agentId: "agent-1" });
      await storage.changeTaskStatus({ ...change("b", "in_progress"), agentId: "agent-1" });
      await runOutLeases();
      expect(storage.changeTaskStatus({ ...change("a", "completed"), agentId: "agent-1" })).rejects.toMatchObject({
        code: "claim_lost",
        message: expect.stringContaining("it is pending again"),
      });
      expect((await storage.getTask(ref("a")))?.status).toBe("in_progress"); // refused: nothing changed
      const claimed = await storage.changeTaskStatus({ ...change("b", "in_progress"), agentId: "agent-2" });
      expect(claimed.claimed_by).toBe("agent-2");
      const events = await storage.listTaskEvents(ref("b"));
      expect(events.map((event) => [event.type, event.agent_id])).toEqual([
        ["created", null],
        ["claimed", "agent-1"],
        ["claim_expired", null],
        ["claimed", "agent-2"],
      ]);
    });
  });

  describe("PostgreSQL storage: the live stream", () => {
    withFreshSchema();

    test("a change committed on one instance reaches the subscribers of another, with its task", async () => {
      const [writer, reader] = await Promise.all([open(), open()]);
      await untilHeard(writer, reader, 5000);
      const heard = hear(reader, 3);
      const started = performance.now();
      await writer.addTasks([newTask("T-1"), newTask("T-2")], now, "agent-w");
      await writer.changeTaskStatus({ ...change("T-1", "in_progress"), agentId: "agent-w" });
      const changes = await heard;
      expect(performance.now() - started).toBeLessThan(1000);
      expect(changes.map((c) => [c.event.type, c.event.task_id, c.event.agent_id])).toEqual([
        ["created", "T-1", "agent-w"],
        ["created", "T-2", "agent-w"],
        ["claimed", "T-1", "agent-w"],
      ]);
      expect(changes[2]!.task).toMatchObject({ task_id: "T-1", status: "in_progress" });
      expect(changes[2]!.event).toEqual((await reader.listTaskEvents(ref("T-1")))[1]!);
    });

    test("a writer's own subscribers hear its change by the time the write resolves, once", async () => {
      const storage = await open();
      const heard: string[] = [];
      storage.subscribe((change) => heard.push(`${change.event.type} ${change.task.task_id}`));
      await storage.addTasks([newTask("T-1")], now, null);
      expect(heard).toEqual(["created T-1"]);
      await Bun.sleep(200); // its own NOTIFY comes back too, and must not be delivered again
      expect(heard).toEqual(["created T-1"]);
    });
  });

  describe("PostgreSQL storage: an upgrade from schema version 1", () => {
    withFreshSchema();

    test("keeps every row and ends with the tables of a fresh database", async () => {
      await admin.unsafe(postgresV1Sql);
      await admin`CREATE TABLE tracker_schema (version integer NOT NULL)`;
      await admin`INSERT INTO tracker_schema (version) VALUES (1)`;
      await fillVersion1(admin);
      const storage = await open();
      expect(await admin`SELECT version FROM tracker_schema`).toEqual([{ version: SCHEMA_VERSION }]);
      expect(await storage.getTask(anyProject("OLD-1"))).toMatchObject({ status: "completed", completion_notes: "done" });
      expect((await storage.listTaskEvents(anyProject("OLD-1"))).map((event) => [event.type, event.at, event.agent_id])).toEqual([
        ["created", "2026-11-01T10:00:00.000Z", null],
        ["claimed", "2026-11-01T10:00:00.000Z", "agent-old"],
        ["completed", "2026-11-01T10:00:00.000Z", "agent-old"],
      ]);
      const claimed = await storage.getTask(anyProject("OLD-2"));
      expect(claimed).toMatchObject({ status: "in_progress", claimed_by: "agent-old" });
      expect(Date.parse(claimed!.lease_expires_at!)).toBeGreaterThan(Date.now());
      // OLD-3 waited for OLD-2: completing it makes OLD-3 ready, through the dependency rows kept.
      expect((await storage.findNextTask("old", "pending"))?.task_id).toBe("OLD-4");
      await storage.changeTaskStatus({ ...change("OLD-2", "completed"), ref: anyProject("OLD-2"), agentId: "agent-old" });
      expect((await storage.findNextTask("old", "pending"))?.task_id).toBe("OLD-3");
      expect(await storage.allocateId("old", "US")).toBe(28);
      expect(await storage.getReservation("0190a0b0-0000-7000-8000-000000000001")).toMatchObject({ firstNumber: 20, count: 5 });
      expect(
        await storage.claimIdempotencyKey({
          scope: "s",
          key: "answered",
          fingerprint: "f",
          now: new Date(),
          leaseMs: 1000,
          retentionMs: 86_400_000,
        }),
      ).toEqual({
        outcome: "replay",
        response: { status: 200, body: '{"number":7}' },
      });
      expect(
        await storage.claimIdempotencyKey({
          scope: "s",
          key: "unanswered",
          fingerprint: "f",
          now: new Date(),
          leaseMs: 1000,
          retentionMs: 86_400_000,
        }),
      ).toMatchObject({ outcome: "claimed" });

      await expectTablesOfAFreshDatabase();
    });
  });

  describe("PostgreSQL storage: an upgrade from schema version 2", () => {
    withFreshSchema();

    test("keeps every lost claim, now in the task's columns, and ends with the tables of a fresh database", async () => {
      await admin.unsafe(postgresV2Sql);
      await admin`CREATE TABLE tracker_schema (version integer NOT NULL)`;
      await admin`INSERT INTO tracker_schema (version) VALUES (2)`;
      await fillVersion2(admin);
      const storage = await open();
      expect(await admin`SELECT version FROM tracker_schema`).toEqual([{ version: SCHEMA_VERSION }]);
      const lost = await admin<{ task_id: string; lost_by: string | null; lost_at: Date | null }[]>`
          SELECT task_id, lost_by, lost_at FROM tasks ORDER BY seq`;
      expect(lost.map((row) => [row.task_id, row.lost_by, row.lost_at?.toISOString() ?? null])).toEqual([
        ["LOST", "agent-a", "2026-11-01T11:30:00.000Z"],
        ["HELD", "agent-c", "2026-11-01T10:30:00.000Z"],
        ["BACK", null, null],
        ["NEVER", null, null],
      ]);
      const v2 = (taskId: string) => ({ projectId: "v2", taskId });
      const refusal = (taskId: string, agentId: string) =>
        storage.changeTaskStatus({ ...change(taskId, "completed"), ref: v2(taskId), agentId }).then(
          () => null,
          (error: { code: string; message: string }) => ({ code: error.code, message: error.message }),
        );
      expect(await refusal("LOST", "agent-a")).toEqual({
        code: "claim_lost",
        message: "Your claim on LOST expired at 2026-11-01T11:30:00.000Z; it is pending again: claim it again to go on",
      });
      expect(await refusal("HELD", "agent-c")).toEqual({
        code: "claim_lost",
        message: 'Your claim on HELD expired at 2026-11-01T10:30:00.000Z; it is now claimed by agent "agent-d"',
      });
      expect(
        (await storage.changeTaskStatus({ ...change("BACK", "completed"), ref: v2("BACK"), agentId: "agent-b" })).status,
      ).toBe("completed");
      const snapshot = await storage.openSnapshot();
      const dumped = [];
      for await (const page of snapshot.tasks()) dumped.push(...page);
      await snapshot.close();
      expect(dumped.map((task) => [task.task_id, task.lost_by, task.lost_at])).toEqual([
        ["LOST", "agent-a", "2026-11-01T11:30:00.000Z"],
        ["HELD", "agent-c", "2026-11-01T10:30:00.000Z"],
        ["BACK", null, null],
        ["NEVER", null, null],
      ]);

      await expectTablesOfAFreshDatabase();
    });
  });

  describe("PostgreSQL storage: an upgrade from schema version 3", () => {
    withFreshSchema();

    test("keeps every task, event and claim, indexes their words, and ends with the tables of a fresh database", async () => {
      await admin.unsafe(postgresV3Sql);
      await admin`CREATE TABLE tracker_schema (version integer NOT NULL)`;
      await admin`INSERT INTO tracker_schema (version) VALUES (3)`;
      const at = "2026-11-01T10:00:00.000Z";
      await admin`
        INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                           unfinished_deps, status, claimed_by, completion_notes, created_at, updated_at, started_at,
                           completed_at, lease_expires_at, lease_seconds, lost_by, lost_at)
        VALUES (1, 'V-1', 'v3', 'login form', '[]', '[]', 'high', 0, '[]', 0, 'in_progress', 'agent-b', '', ${at}, ${at},
                ${at}, NULL, '2099-01-01T00:00:00Z', 60, 'agent-a', ${at}),
               (2, 'V-2', 'v3', 'after the form', '[]', '[]', 'medium', 1, '["V-1"]', 1, 'pending', NULL, '', ${at}, ${at},
                NULL, NULL, NULL, NULL, NULL, NULL)`;
      await admin`SELECT setval(pg_get_serial_sequence('tasks', 'seq'), 2)`;
      await admin`INSERT INTO task_dependencies VALUES (1, 2)`;
      await admin`INSERT INTO task_events (task_seq, type, at, agent_id, details) VALUES (1, 'claimed', ${at}, 'agent-b', '{}')`;
      const storage = await open();
      expect(await admin`SELECT version FROM tracker_schema`).toEqual([{ version: SCHEMA_VERSION }]);
      const v3 = (taskId: string) => ({ projectId: "v3", taskId });
      expect(await storage.getTask(v3("V-1"))).toMatchObject({
        status: "in_progress",
        claimed_by: "agent-b",
        labels: [],
        parent_id: null,
        acceptance_criteria: [],
        notes_count: 0,
        last_note: null,
        children: { total: 0, done: 0 },
        released_by: null,
      });
      await expect(
        storage.changeTaskStatus({ ...change("V-1", "completed"), ref: v3("V-1"), agentId: "agent-a" }),
      ).rejects.toMatchObject({ code: "claim_lost" });
      expect((await storage.listTaskEvents(v3("V-1"))).map((event) => event.type)).toEqual(["claimed"]);
      expect(await storage.findNextTask("v3", "pending")).toBeNull();
      await storage.changeTaskStatus({ ...change("V-1", "completed"), ref: v3("V-1"), agentId: "agent-b" });
      expect((await storage.findNextTask("v3", "pending"))?.task_id).toBe("V-2");
      expect(await admin`SELECT task_seq FROM task_search WHERE document @@ to_tsquery('simple', 'form') ORDER BY 1`).toEqual([
        { task_seq: "1" },
        { task_seq: "2" },
      ]);
      // The upgrade wrote each task's project into task_search, where a project's search looks.
      const found = await storage.listTasks({
        projectId: "v3",
        status: null,
        ready: null,
        claimedBy: null,
        limit: 10,
        cursor: null,
        q: "form",
      });
      expect(new Set(found.tasks.map((task) => task.task_id))).toEqual(new Set(["V-1", "V-2"]));

      await expectTablesOfAFreshDatabase();
    });
  });

  describe("PostgreSQL storage: many instances", () => {
    withFreshSchema();

    test("concurrent claims of one task on two instances have one winner", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const tasks = Array.from({ length: 20 }, (_, i) => newTask(`T-${i}`));
      await first.addTasks(tasks, now, null);
      const attempts = tasks.flatMap((task) =>
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? first : second).changeTaskStatus({ ...change(task.task_id, "in_progress"), agentId: `agent-${i}` }).then(
            () => "won",
            (error: { code?: string }) => error.code,
          ),
        ),
      );
      const results = await Promise.all(attempts);
      expect(results.filter((result) => result === "won").length).toBe(tasks.length);
      expect(new Set(results.filter((result) => result !== "won"))).toEqual(new Set(["invalid_transition"]));
    });

    test("completing dependencies while batches that name them are added loses no dependent", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const dependencies = Array.from({ length: 30 }, (_, i) => newTask(`D-${i}`));
      await first.addTasks(dependencies, now, null);
      for (const task of dependencies) await first.changeTaskStatus(change(task.task_id, "in_progress"));
      // Each dependent is added while its dependency completes on the other instance.
      await Promise.all(
        dependencies.flatMap((task, i) => [
          second.addTasks([newTask(`W-${i}`, { depends_on: [task.task_id] })], now, null),
          first.changeTaskStatus(change(task.task_id, "completed")),
        ]),
      );
      for (let i = 0; i < dependencies.length; i++) {
        expect((await second.changeTaskStatus(change(`W-${i}`, "in_progress"))).status).toBe("in_progress");
      }
    });

    test("edits of depends_on on two instances at once never close a cycle: one of each pair wins", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      // Per group: Q waits for R and S for P; P -> Q and R -> S at once would close P -> Q -> R -> S -> P.
      const groups = Array.from({ length: 20 }, (_, i) => i);
      await first.addTasks(
        groups.flatMap((i) => [
          newTask(`P-${i}`),
          newTask(`Q-${i}`, { depends_on: [`R-${i}`] }),
          newTask(`R-${i}`),
          newTask(`S-${i}`, { depends_on: [`P-${i}`] }),
        ]),
        now,
        null,
      );
      const edit = (storage: PostgresStorage, taskId: string, dependsOn: string) =>
        storage.updateTask({ ref: ref(taskId), agentId: null, now, depends_on: [dependsOn] }).then(
          () => "won",
          (error: { code?: string }) => error.code,
        );
      const results = await Promise.all(
        groups.flatMap((i) => [edit(first, `P-${i}`, `Q-${i}`), edit(second, `R-${i}`, `S-${i}`)]),
      );
      for (const i of groups) expect([results[2 * i], results[2 * i + 1]].sort()).toEqual(["validation_failed", "won"]);
    });

    test("an edit that names a dependency completing on another instance waits for it, and counts it done", async () => {
      const storage = await open();
      await storage.addTasks([newTask("D"), newTask("W")], now, null);
      await storage.changeTaskStatus(change("D", "in_progress"));
      // D's completion on another instance, stopped after it counted its dependents, before its commit.
      const completer = new SQL(schema.url, { max: 1 });
      const holding = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      const completing = completer.begin(async (tx) => {
        const [done] = await tx<{ seq: string }[]>`
          UPDATE tasks SET status = 'completed', completed_at = now(), updated_at = now(), lease_expires_at = NULL,
                           lease_seconds = NULL
          WHERE task_id = 'D' RETURNING seq`;
        await tx`
          UPDATE tasks SET unfinished_deps = unfinished_deps - 1
          WHERE seq IN (SELECT dependent_seq FROM task_dependencies WHERE dependency_seq = ${done!.seq})`;
        holding.resolve();
        await release.promise;
      });
      await holding.promise;
      let settled = false;
      const editing = storage.updateTask({ ref: ref("W"), agentId: null, now, depends_on: ["D"] }).finally(() => {
        settled = true;
      });
      const waitingForD = async () =>
        (
          await admin`
            SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'
              AND query NOT LIKE '%pg_stat_activity%'`
        ).length > 0;
      while (!settled && !(await waitingForD())) await Bun.sleep(10);
      release.resolve();
      await completing;
      expect((await editing).depends_on).toEqual(["D"]);
      expect((await storage.changeTaskStatus(change("W", "in_progress"))).status).toBe("in_progress");
      await completer.close();
    });

    test("completing dependencies while edits add or remove them loses no dependent and counts none twice", async () => {
      const [first, second] = await Promise.all([open(), open()]);
      const dependencies = Array.from({ length: 20 }, (_, i) => newTask(`D-${i}`));
      await first.addTasks(dependencies, now, null);
      const added = dependencies.map((_, i) => newTask(`ADD-${i}`));
      const removed = dependencies.map((task, i) => newTask(`DROP-${i}`, { depends_on: [task.task_id] }));
      await first.addTasks([...added, ...removed], now, null);
      for (const task of dependencies) await first.changeTaskStatus(change(task.task_id, "in_progress"));
      await Promise.all(
        dependencies.flatMap((task, i) => [
          second.updateTask({ ref: ref(`ADD-${i}`), agentId: null, now, depends_on: [task.task_id] }),
          second.updateTask({ ref: ref(`DROP-${i}`), agentId: null, now, depends_on: [] }),
          first.changeTaskStatus(change(task.task_id, "completed")),
        ]),
      );
      for (let i = 0; i < dependencies.length; i++) {
        expect((await second.changeTaskStatus(change(`ADD-${i}`, "in_progress"))).status).toBe("in_progress");
        expect((await second.changeTaskStatus(change(`DROP-${i}`, "in_progress"))).status).toBe("in_progress");
      }
    });
  });

  describe("PostgreSQL storage: when the database goes away", () => {
    withTrackerBehindProxy();

    test("a stopped server gives quick 503s, and the service recovers by itself", async () => {
      expect((await get("/healthz")).status).toBe(200);
      expect((await get("/ids/next?type=US&project=p")).status).toBe(200);

      proxy.cut();
      const started = performance.now();
      expect(await get("/healthz")).toEqual({
        status: 503,
        body: { error: "The database is unreachable", code: "unavailable" },
      });
      const allocation = await get("/ids/next?type=US&project=p");
      expect(allocation.status).toBe(503);
      expect(allocation.body.code).toBe("unavailable");
      expect(allocation.body.error).toMatch(/^The database is unavailable \(.+\); retry later$/);
      expect(performance.now() - started).toBeLessThan(1000);

      await proxy.listen();
      const recoveryMs = await msUntilHealthy(5000);
      console.info(`healthy again ${recoveryMs.toFixed(0)} ms after the database came back`);
      expect(await get("/ids/next?type=US&project=p")).toEqual({
        status: 200,
        body: { next_id: "US-002", artifact_type: "US", project_id: "p", number: 2 },
      });
    });

    test("a subscriber's LISTEN comes back by itself after the database restarts", async () => {
      const writer = await open();
      await untilHeard(writer, subscriber, 5000);
      proxy.cut();
      expect((await get("/healthz")).status).toBe(503);
      await proxy.listen();
      await untilHeard(writer, subscriber, 15_000);
    });

    test("a database that stops answering gives 503s within the query timeout, never a hang", async () => {
      expect((await get("/ids/next?type=US&project=p")).status).toBe(200);

      proxy.blackhole();
      const started = performance.now();
      const [health, allocation] = await Promise.all([get("/healthz"), get("/ids/next?type=US&project=p")]);
      expect(health.status).toBe(503);
      expect(allocation).toEqual({
        status: 503,
        body: { error: "The database did not answer within 1000 ms; retry later", code: "unavailable" },
      });
      expect(performance.now() - started).toBeLessThan(3000);

      proxy.forward();
      const recoveryMs = await msUntilHealthy(10_000);
      console.info(`healthy again ${recoveryMs.toFixed(0)} ms after the network came back`);
      // The allocation that timed out never ran (its bytes were swallowed), so no number is lost.
      expect((await get("/ids/next?type=US&project=p")).body).toMatchObject({ next_id: "US-002" });
    });
  });
}

// ---------------------------------------------------------------------------

interface Pipe {
  client: Socket<Pipe>;
  upstream: Socket<undefined> | null;
  /** Bytes from the client that arrived before the upstream connection was open. */
  early: Uint8Array[];
}

/** A TCP proxy to PostgreSQL that a test can cut, silence and restore. */
class TcpProxy {
  port = 0;
  private listener: TCPSocketListener<Pipe> | null = null;
  private readonly pipes = new Set<Pipe>();
  private silent = false;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening (again, on the same port after a cut). */
  async listen(): Promise<void> {
    this.silent = false;
    const proxy = this;
    this.listener = Bun.listen<Pipe>({
      hostname: "127.0.0.1",
      port: this.port,
      socket: {
        open(client) {
          const pipe: Pipe = { client, upstream: null, early: [] };
          client.data = pipe;
          proxy.pipes.add(pipe);
          Bun.connect<undefined>({
            hostname: proxy.targetHost,
            port: proxy.targetPort,
            socket: {
              data(_upstream, chunk) {
                if (!proxy.silent) pipe.client.write(chunk);
              },
              close() {
                pipe.client.end();
              },
              error() {
                pipe.client.end();
              },
            },
          }).then(
            (upstream) => {
              pipe.upstream = upstream;
              for (const chunk of pipe.early.splice(0)) upstream.write(chunk);
            },
            () => client.end(),
          );
        },
        data(client, chunk) {
          if (proxy.silent) return;
          if (client.data.upstream) client.data.upstream.write(chunk);
          else client.data.early.push(new Uint8Array(chunk));
        },
        close(client) {
          client.data.upstream?.end();
          proxy.pipes.delete(client.data);
        },
      },
    });
    this.port = this.listener.port;
  }

  /** Like a stopped server: every connection drops, and new ones are refused. */
  cut(): void {
    this.listener?.stop(true);
    this.listener = null;
    for (const pipe of this.pipes) {
      pipe.client.end();
      pipe.upstream?.end();
    }
    this.pipes.clear();
  }

  /** Like a network that stopped delivering: connections stay open, and no byte gets through. */
  blackhole(): void {
    this.silent = true;
  }

  forward(): void {
    this.silent = false;
  }

  close(): void {
    this.cut();
  }
}
