// GET /admin/backup and GET /admin/dump beside a SQLite file on disk: the clean-up of the copies a
// tracker that died left behind removes those and nothing else named like them; a backup leaves out
// the Idempotency-Key rows. And on either storage: no more than two backups or dumps at once.

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../../testkit/temp.ts";
import { createLogger } from "../log.ts";
import { openSqliteStorage, type SqliteStorage } from "../storage/sqlite.ts";
import { startTestTracker, TEST_API_KEY } from "../testing.ts";
import { CopyGate } from "./copies.ts";
import { type RunningTracker, startTracker } from "./server.ts";

let dir: string;
let storage: SqliteStorage;
let tracker: RunningTracker;
beforeAll(async () => {
  dir = makeTempDir("tracker-admin-test-");
  storage = await openSqliteStorage({ path: join(dir, "tracker.db") });
  tracker = await startTracker({ storage, logger: createLogger("error", () => {}), apiKeys: [TEST_API_KEY], port: 0 });
});
afterAll(async () => {
  await tracker.stop();
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(path: string): Promise<{ status: number; bytes: number }> {
  const response = await fetch(`${tracker.url}${path}`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
  return { status: response.status, bytes: (await response.arrayBuffer()).byteLength };
}

async function download(url: string, path: string): Promise<Buffer> {
  const response = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

/** POST /ids/reserve under an Idempotency-Key: its response is stored under the key's scope. */
async function reserve(url: string, idempotencyKey: string): Promise<{ status: number; replayed: string | null; body: unknown }> {
  const response = await fetch(`${url}/ids/reserve`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TEST_API_KEY}`, "Content-Type": "application/json", "Idempotency-Key": idempotencyKey },
    body: JSON.stringify({ type: "KEEP", count: 2, project_id: "keep" }),
  });
  return { status: response.status, replayed: response.headers.get("idempotent-replayed"), body: await response.json() };
}

describe("the clean-up of copies left by a tracker that died", () => {
  test("removes only the regular files named exactly as the tracker names its copies", async () => {
    const leftover = `.tracker.db.backup-${crypto.randomUUID()}.copy`;
    const directory = `.tracker.db.backup-${crypto.randomUUID()}.copy`;
    const link = `.tracker.db.dump-${crypto.randomUUID()}.copy`;
    const lookalike = ".tracker.db.my-notes.copy";
    writeFileSync(join(dir, leftover), "old copy");
    mkdirSync(join(dir, directory));
    writeFileSync(join(dir, directory, "inside"), "kept");
    writeFileSync(join(dir, "target"), "kept");
    symlinkSync(join(dir, "target"), join(dir, link));
    writeFileSync(join(dir, lookalike), "kept");

    const backup = await get("/admin/backup");
    expect(backup.status).toBe(200);
    expect(backup.bytes).toBeGreaterThan(0);
    expect((await get("/admin/dump")).status).toBe(200);

    expect(existsSync(join(dir, leftover))).toBe(false);
    expect(
      readdirSync(dir)
        .filter((name) => name.endsWith(".copy"))
        .sort(),
    ).toEqual([directory, link, lookalike].sort());
    expect([join(directory, "inside"), link, lookalike].map((name) => readFileSync(join(dir, name), "utf8"))).toEqual([
      "kept",
      "kept",
      "kept",
    ]);
  });
});

describe("the Idempotency-Key rows, which name the API key by its SHA-256", () => {
  test("a backup and a dump hold neither the key's SHA-256 nor the Idempotency-Key; the backup still opens", async () => {
    const idempotencyKey = `retry-${crypto.randomUUID()}`;
    expect((await reserve(tracker.url, idempotencyKey)).status).toBe(201);
    const digest = createHash("sha256").update(TEST_API_KEY).digest();
    const backup = await download(tracker.url, "/admin/backup");
    const dump = await download(tracker.url, "/admin/dump");
    for (const bytes of [backup, dump]) {
      expect([bytes.includes(digest.toString("hex")), bytes.includes(digest), bytes.includes(idempotencyKey)]).toEqual([
        false,
        false,
        false,
      ]);
    }
    const file = join(dir, "restored.db");
    writeFileSync(file, backup);
    const restored = new Database(file, { readonly: true });
    try {
      expect(restored.query("SELECT count(*) AS n FROM idempotency_keys").get()).toEqual({ n: 0 });
      expect(restored.query("SELECT last_assigned FROM id_counters WHERE project_id = 'keep'").get()).toEqual({
        last_assigned: 2,
      });
    } finally {
      restored.close();
    }
    // The tracker itself still replays a retry.
    expect(await reserve(tracker.url, idempotencyKey)).toMatchObject({ status: 201, replayed: "true" });
  });

  test("a retry after a restart is replayed, not run again", async () => {
    const path = join(dir, "restart.db");
    const idempotencyKey = crypto.randomUUID();
    const run = async () => {
      const restartable = await openSqliteStorage({ path });
      const running = await startTracker({
        storage: restartable,
        logger: createLogger("error", () => {}),
        apiKeys: [TEST_API_KEY],
        port: 0,
      });
      try {
        return await reserve(running.url, idempotencyKey);
      } finally {
        await running.stop();
        await restartable.close();
      }
    };
    const first = await run();
    expect(first.status).toBe(201);
    expect(await run()).toEqual({ ...first, replayed: "true" });
  });
});

describe("two backups or dumps at once (either storage)", () => {
  test("a third is 503 with Retry-After and a sentence; a finished one frees its place", async () => {
    const copies = new CopyGate();
    const running = await startTestTracker({ copies });
    try {
      const [first, second] = [copies.take(), copies.take()];
      const refused = await running.request("GET", "/admin/dump");
      expect([refused.status, refused.headers.get("retry-after"), refused.body]).toEqual([
        503,
        "30",
        { error: "2 backups or dumps are being sent already, the most at once; retry in 30 seconds", code: "unavailable" },
      ]);
      first();
      second();
      const dump = await running.request("GET", "/admin/dump");
      expect([dump.status, copies.sending]).toEqual([200, 0]);
    } finally {
      await running.stop();
    }
  });
});
