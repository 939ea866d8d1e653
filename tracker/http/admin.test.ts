// GET /admin/backup and GET /admin/dump beside a SQLite file on disk: the clean-up of the copies a
// tracker that died left behind removes those and nothing else named like them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../../testkit/temp.ts";
import { createLogger } from "../log.ts";
import { openSqliteStorage, type SqliteStorage } from "../storage/sqlite.ts";
import { TEST_API_KEY } from "../testing.ts";
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
