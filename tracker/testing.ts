// Test helpers shared by tracker/*.test.ts. The storage under test is chosen by
// TRACKER_TEST_STORAGE (`sqlite`, the default, or `postgres`), so the same
// suite runs against every implementation.

import { expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import type { NewTask } from "./domain.ts";
import { type RunningTracker, startTracker, type TrackerOptions } from "./http/server.ts";
import { createLogger, type Logger } from "./log.ts";
import { openPostgresStorage } from "./storage/postgres.ts";
import { openSqliteStorage } from "./storage/sqlite.ts";
import type { Storage } from "./storage/storage.ts";

export interface TestStorage {
  storage: Storage;
  /** Closes the storage (if still open) and removes what it left behind. */
  cleanup(): Promise<void>;
}

export function makeTempDir(prefix = "tracker-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The storage under test; `logger` is the one its tracker logs with (PostgreSQL logs too). */
export async function makeStorage(logger?: Logger): Promise<TestStorage> {
  const target = process.env.TRACKER_TEST_STORAGE ?? "sqlite";
  switch (target) {
    case "sqlite": {
      const dir = makeTempDir();
      const storage = await openSqliteStorage({ path: join(dir, "tracker.db") });
      return {
        storage,
        async cleanup() {
          await storage.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    case "postgres": {
      const schema = await makePostgresSchema();
      const storage = await openPostgresStorage({ url: schema.url, logger });
      return {
        storage,
        async cleanup() {
          await storage.close();
          await schema.drop();
        },
      };
    }
    default:
      throw new Error(`TRACKER_TEST_STORAGE=${target} is not a storage these tests know (use sqlite or postgres).`);
  }
}

export interface PostgresTestSchema {
  /** TRACKER_TEST_DATABASE_URL with `?search_path=<the schema>`: a database URL of its own, in effect. */
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty schema on TRACKER_TEST_DATABASE_URL (scripts/with-postgres.sh sets it), so tests
 * never share tables, and a URL that puts a tracker's tables in it.
 */
export async function makePostgresSchema(): Promise<PostgresTestSchema> {
  const base = process.env.TRACKER_TEST_DATABASE_URL;
  if (!base) throw new Error("The PostgreSQL tests need TRACKER_TEST_DATABASE_URL; run them under scripts/with-postgres.sh.");
  const name = `test_${crypto.randomUUID().replaceAll("-", "")}`;
  const admin = new SQL(base, { max: 1 });
  const url = new URL(base);
  url.searchParams.set("search_path", name);
  try {
    await admin`CREATE SCHEMA ${admin(name)}`;
  } catch (error) {
    await admin.close();
    throw error;
  }
  return {
    url: url.toString(),
    async drop() {
      try {
        await admin`DROP SCHEMA IF EXISTS ${admin(name)} CASCADE`;
      } finally {
        await admin.close();
      }
    },
  };
}

/** A tiny test clock: tests move time forward instead of waiting for it. */
export class ManualClock {
  constructor(private current = Date.parse("2026-11-24T21:46:59.123Z")) {}
  now = (): Date => new Date(this.current);
  advance(ms: number): void {
    this.current += ms;
  }
}

export const TEST_API_KEY = "test-key-0123456789abcdef";
export const OTHER_API_KEY = "other-key-0123456789abcdef";

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: any;
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as is, not JSON-encoded. */
  rawBody?: string | Uint8Array | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
  /** The bearer key; null sends no Authorization header. */
  apiKey?: string | null;
}

export interface TestTracker {
  tracker: RunningTracker;
  storage: Storage;
  logger: Logger;
  url: string;
  /** Every log line the tracker wrote, for checks on what is (not) logged. */
  logText(): string;
  /** Resolves once a log line with this `msg` has been written. */
  waitForLog(msg: string): Promise<void>;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  stop(): Promise<void>;
}

/** A tracker on port 0 over the storage of TRACKER_TEST_STORAGE, logging at debug into memory. */
export async function startTestTracker(
  overrides: Partial<Omit<TrackerOptions, "storage" | "logger">> = {},
): Promise<TestTracker> {
  let log = "";
  let logWaiters: Array<() => void> = [];
  const logger = createLogger("debug", (text) => {
    log += text;
    const waiters = logWaiters;
    logWaiters = [];
    for (const wake of waiters) wake();
  });
  const target = await makeStorage(logger);
  let tracker: RunningTracker;
  try {
    tracker = await startTracker({
      storage: target.storage,
      logger,
      apiKeys: [TEST_API_KEY, OTHER_API_KEY],
      port: 0,
      ...overrides,
    });
  } catch (error) {
    await target.cleanup();
    throw error;
  }
  return {
    tracker,
    storage: target.storage,
    logger,
    url: tracker.url,
    logText: () => {
      logger.flush();
      return log;
    },
    async waitForLog(msg) {
      const needle = `"msg":${JSON.stringify(msg)}`;
      while (!log.includes(needle)) await new Promise<void>((resolve) => logWaiters.push(resolve));
    },
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const apiKey = options.apiKey === undefined ? TEST_API_KEY : options.apiKey;
      if (apiKey !== null) headers.Authorization = `Bearer ${apiKey}`;
      let body: RequestInit["body"] = options.rawBody;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["Content-Type"] = "application/json";
      }
      const response = await fetch(tracker.url + path, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Left as text: the assertion will show it.
      }
      return { status: response.status, headers: response.headers, body: parsed };
    },
    async stop() {
      await tracker.stop();
      await target.cleanup();
    },
  };
}

/** The contract's error body: exactly `{error, code}`, with this status, code and (if given) sentence. */
export function expectApiError(response: ApiResponse, status: number, code: string, error?: string): void {
  expect({ status: response.status, code: response.body?.code }).toEqual({ status, code });
  expect(Object.keys(response.body).sort()).toEqual(["code", "error"]);
  if (error !== undefined) expect(response.body.error).toBe(error);
}

/** A task of a POST /tasks/batch body, in project `proj` unless `extra` says otherwise. */
export function taskInput(taskId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { task_id: taskId, project_id: "proj", description: `Do ${taskId}`, ...extra };
}

/** A task as the storage takes it: pending, ready, medium, in project `p` unless `extra` says otherwise. */
export function newTask(taskId: string, extra: Partial<NewTask> = {}): NewTask {
  return {
    task_id: taskId,
    project_id: "p",
    description: `Do ${taskId}`,
    inputs: [],
    outputs: [],
    priority: "medium",
    depends_on: [],
    status: "pending",
    completion_notes: "",
    ...extra,
  };
}
