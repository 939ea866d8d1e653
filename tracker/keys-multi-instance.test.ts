// The keys a tracker keeps, across two tracker processes (`bun tracker/main.ts`) on one PostgreSQL
// database: a key added or revoked through one instance counts on the other within a second, without a
// restart; `task-tracker keys` works on the database with no tracker answering; no key text is kept.
// Runs in the PostgreSQL target of the suite (TRACKER_TEST_STORAGE=postgres, see postgres-target.test.ts).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import type { ChildProcess } from "../testkit/processes.ts";
import { startTracker, trackerCommand } from "../testkit/tracker.ts";
import { makePostgresSchema, type PostgresTestSchema } from "./testing.ts";

const onPostgres = process.env.TRACKER_TEST_STORAGE === "postgres";
const OPERATOR_KEY = "keys-multi-instance-operator-0123456789";

interface Instance {
  url: string;
  process: ChildProcess;
}

function environment(databaseUrl: string): Record<string, string | undefined> {
  return { ...process.env, DATABASE_URL: databaseUrl, TRACKER_API_KEYS: OPERATOR_KEY, LOG_LEVEL: "info" };
}

async function startInstance(databaseUrl: string): Promise<Instance> {
  const { url, process: child } = await startTracker({ env: environment(databaseUrl), stdout: "ignore" });
  return { url, process: child };
}

async function status(instance: Instance, key: string, method = "GET", path = "/projects"): Promise<number> {
  const response = await fetch(`${instance.url}${path}`, { method, headers: { Authorization: `Bearer ${key}` } });
  await response.arrayBuffer();
  return response.status;
}

/** How long until `instance` answers `expected` for the key: polled, up to 3 s, then it fails. */
async function millisecondsUntil(instance: Instance, key: string, expected: number): Promise<number> {
  const started = performance.now();
  while ((await status(instance, key)) !== expected) {
    if (performance.now() - started > 3000) throw new Error(`still not ${expected} after 3 s`);
    await Bun.sleep(20);
  }
  return performance.now() - started;
}

async function addKey(instance: Instance, name: string, role: string): Promise<string> {
  const response = await fetch(`${instance.url}/admin/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${OPERATOR_KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name, role }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { key: string }).key;
}

/** `task-tracker keys …` with the instances' environment and a PORT nothing listens on. */
function keysCommand(databaseUrl: string, args: string[]) {
  const env = { ...environment(databaseUrl), PORT: "1", LOG_FORMAT: "json" };
  const result = Bun.spawnSync([...trackerCommand(), "keys", ...args], { env, stdin: "ignore" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

// Registered only in the PostgreSQL run.
if (onPostgres)
  describe("keys on two tracker instances on one PostgreSQL", () => {
    let schema: PostgresTestSchema;
    let a: Instance;
    let b: Instance;

    beforeAll(async () => {
      schema = await makePostgresSchema();
      [a, b] = await Promise.all([startInstance(schema.url), startInstance(schema.url)]);
    });

    afterAll(async () => {
      for (const instance of [a, b]) {
        instance.process.kill("SIGTERM");
        expect(await instance.process.exited).toBe(0);
      }
      await schema.drop();
    });

    test("a key added on one instance is served by the other within a second", async () => {
      const key = await addKey(a, "alice", "member");
      expect(await millisecondsUntil(b, key, 200)).toBeLessThan(1000);
      expect(await status(b, key, "POST", "/ids/reserve")).toBe(400); // a member's write: past the role check
    });

    test("a key revoked on one instance is refused by the other within a second, though it served the key just before", async () => {
      const key = await addKey(a, "bob", "viewer");
      expect(await millisecondsUntil(b, key, 200)).toBeLessThan(1000);
      expect(await status(b, key)).toBe(200); // b now holds the key in its cache
      const revoked = await fetch(`${a.url}/admin/keys/bob`, {
        method: "DELETE",
        headers: { Authorization: `Bearer ${OPERATOR_KEY}` },
      });
      expect(revoked.status).toBe(200);
      expect(await status(a, key)).toBe(401);
      expect(await millisecondsUntil(b, key, 401)).toBeLessThan(1000);
    });

    test("task-tracker keys works on the database with no tracker answering, and the instances serve its key", async () => {
      const added = keysCommand(schema.url, ["add", "carol", "--role", "viewer"]);
      expect([added.code, added.stderr]).toEqual([
        0,
        expect.stringContaining("Added the key carol (viewer, projects: all) to postgres://"),
      ]);
      const key = added.stdout.trim();
      expect(key).toMatch(/^ttk_[A-Za-z0-9_-]{43}$/);
      expect(await millisecondsUntil(a, key, 200)).toBeLessThan(1000);
      expect(await status(a, key, "POST", "/ids/reserve")).toBe(403);
      const listed = keysCommand(schema.url, ["list"]);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/^NAME +ROLE +PROJECTS +CREATED +LAST USED +REVOKED\n/);
      expect(listed.stdout).toMatch(/\ncarol +viewer +all +\S+ +\S+ +-\n/);
      expect(listed.stdout).not.toContain(key);
      const revoked = keysCommand(schema.url, ["revoke", "carol"]);
      expect([revoked.code, revoked.stderr]).toEqual([0, expect.stringContaining("Revoked the key carol in postgres://")]);
      expect(await millisecondsUntil(a, key, 401)).toBeLessThan(1000);
    });

    test("no table of the database, and no dump, holds a key's text", async () => {
      const key = await addKey(b, "dave", "member");
      expect(await millisecondsUntil(a, key, 200)).toBeLessThan(1000);
      const dump = await fetch(`${a.url}/admin/dump`, { headers: { Authorization: `Bearer ${OPERATOR_KEY}` } });
      expect(dump.status).toBe(200);
      expect(await dump.text()).not.toContain(key);
      const sql = new SQL(schema.url, { max: 1 });
      try {
        const tables = await sql<{ tablename: string }[]>`SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`;
        expect(tables.map((table) => table.tablename)).toContain("api_keys");
        for (const { tablename } of tables) expect(JSON.stringify(await sql`SELECT * FROM ${sql(tablename)}`)).not.toContain(key);
      } finally {
        await sql.close();
      }
    });
  });
