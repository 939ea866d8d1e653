// `task-tracker keys add|list|revoke` as a person runs it (`bun tracker/main.ts keys …`), on SQLite:
// on a stopped tracker's database, and through a running tracker.

import { afterEach, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startTracker, trackerCommand } from "../../testkit/tracker.ts";
import { makeTempDir } from "../testing.ts";

const OPERATOR_KEY = "keys-cli-operator-key-0123456789";
let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

function environment(dbPath: string, port: string): Record<string, string | undefined> {
  return { PATH: process.env.PATH, TRACKER_DB: dbPath, TRACKER_API_KEYS: OPERATOR_KEY, PORT: port, LOG_FORMAT: "json" };
}

function keys(env: Record<string, string | undefined>, args: string[]) {
  const result = Bun.spawnSync([...trackerCommand(), "keys", ...args], { env, stdin: "ignore" });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

function database(): string {
  const dir = makeTempDir();
  dirs.push(dir);
  return join(dir, "tracker.db");
}

async function status(url: string, key: string, path: string): Promise<number> {
  const response = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${key}` } });
  await response.arrayBuffer();
  return response.status;
}

describe("task-tracker keys", () => {
  test("on a stopped tracker's database: the key it prints is served once the tracker starts", async () => {
    const dbPath = database();
    const offline = environment(dbPath, "1");
    const added = keys(offline, ["add", "alice", "--role", "member", "--project", "web"]);
    expect([added.code, added.stderr]).toEqual([
      0,
      `Added the key alice (member, projects: web) to sqlite:${dbPath}. It is printed above this once and never again: hand it over now.\n`,
    ]);
    const key = added.stdout.trim();
    expect(added.stdout).toMatch(/^ttk_[A-Za-z0-9_-]{43}\n$/);
    const taken = keys(offline, ["add", "alice", "--role", "viewer"]);
    expect([taken.code, taken.stdout, taken.stderr]).toEqual([
      1,
      "",
      "task-tracker keys: There is a key named alice already; revoke it first, or choose another name.\n",
    ]);
    const { url, process: tracker } = await startTracker({ env: environment(dbPath, "0"), stdout: "ignore" });
    try {
      expect(await status(url, key, "/tasks?project=web")).toBe(200);
      expect(await status(url, key, "/tasks?project=api")).toBe(403);
    } finally {
      tracker.kill("SIGTERM");
      expect(await tracker.exited).toBe(0);
    }
  });

  test("with the tracker running, goes through it: add, list, revoke", async () => {
    const dbPath = database();
    const { url, port, process: tracker } = await startTracker({ env: environment(dbPath, "0"), stdout: "ignore" });
    try {
      const online = environment(dbPath, String(port));
      const added = keys(online, ["add", "bob", "--role", "viewer"]);
      expect([added.code, added.stderr]).toEqual([
        0,
        `Added the key bob (viewer, projects: all) to the tracker at ${url}. It is printed above this once and never again: hand it over now.\n`,
      ]);
      const key = added.stdout.trim();
      expect(await status(url, key, "/projects")).toBe(200);
      const listed = keys(online, ["list"]);
      expect([listed.code, listed.stderr]).toEqual([0, `1 key in the tracker at ${url}.\n`]);
      expect(listed.stdout).toMatch(/^NAME +ROLE +PROJECTS +CREATED +LAST USED +REVOKED\nbob +viewer +all +\S+ +\S+ +-\n$/);
      const revoked = keys(online, ["revoke", "bob"]);
      expect([revoked.code, revoked.stderr]).toEqual([
        0,
        `Revoked the key bob in the tracker at ${url}: it is refused from now on.\n`,
      ]);
      expect(await status(url, key, "/projects")).toBe(401);
      const unknown = keys(online, ["revoke", "nobody"]);
      expect([unknown.code, unknown.stderr]).toEqual([
        1,
        `task-tracker keys: The tracker at ${url} answered 404: There is no key named nobody\n`,
      ]);
    } finally {
      tracker.kill("SIGTERM");
      expect(await tracker.exited).toBe(0);
    }
  });

  test("a bad command line is exit 2 with the usage, and touches nothing", () => {
    const env = environment(database(), "1");
    for (const args of [
      ["add", "alice"],
      ["add", "alice", "--role", "owner"],
      ["add", "--role", "admin"],
      ["frob"],
      ["revoke"],
    ]) {
      const result = keys(env, args);
      expect([args, result.code, result.stdout]).toEqual([args, 2, ""]);
      expect(result.stderr).toContain("usage: task-tracker keys add NAME --role admin|member|viewer [--project P]...");
    }
    expect(keys(env, ["add", "alice"]).stderr).toStartWith(
      "task-tracker keys: keys add needs --role, one of admin, member, viewer\n",
    );
  });
});
