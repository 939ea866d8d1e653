// What the end-to-end tests add to the test kit (testkit/): the stack every e2e file tests (useStack:
// the tracker, a recording proxy, MCP servers, started and stopped in hooks), the tracker on a
// temporary SQLite database with its access log and a direct API call, a read-only look at that
// database, the MCP server's environment, and the kit's pieces under the names these tests have
// always used.

import { Database } from "bun:sqlite";
import { afterAll, afterEach, beforeAll, beforeEach, expect } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { JsonRpcClient } from "../testkit/json-rpc.ts";
import { Lines, parseRecord } from "../testkit/lines.ts";
import { runMcpBinary, startMcpClient } from "../testkit/mcp.ts";
import { ensureBuilt, MCP_BINARY } from "../testkit/paths.ts";
import { type Proxy, startProxy } from "../testkit/proxy.ts";
import { register, stopEverything } from "../testkit/registry.ts";
import { makeTempDir, removeTempDir } from "../testkit/temp.ts";
import { startTracker } from "../testkit/tracker.ts";
import { makePostgresSchema, type PostgresTestSchema } from "../tracker/testing.ts";

export { type Action, type Proxy, type RecordedRequest, type Reply, startProxy } from "../testkit/proxy.ts";
export { Lines, MCP_BINARY, stopEverything };

export const ROOT = new URL("..", import.meta.url).pathname;
export const PROJECT = "ai-agent-mcp-server";

/** A fresh random key, long enough for the tracker. */
export function makeApiKey(): string {
  return `e2e-${Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url")}`;
}

// ─── The stack: started before the tests, stopped after them, in hooks ──────────────────────────

type Env = Record<string, string>;

export interface StackOptions<Name extends string> {
  /** The trackers' key (default: a fresh one) and extra variables. */
  tracker?: { apiKey?: string; env?: Env };
  /**
   * "postgres": the trackers keep their data in a fresh schema on TRACKER_TEST_DATABASE_URL, dropped
   * afterwards. Default "sqlite": a temporary database of the (only) tracker.
   */
  database?: "sqlite" | "postgres";
  /** Trackers on the one database (more than one needs PostgreSQL). Default 1. */
  trackers?: number;
  /** A recording proxy in front of the first tracker, which the MCP servers talk to; reset before each test. */
  proxy?: boolean;
  /** MCP servers started with the stack, by name: each one's extra variables (see mcpEnv). */
  mcp?: Record<Name, Env>;
  /** A fresh stack for every test (beforeEach/afterEach) rather than one for the file or describe. */
  perTest?: boolean;
}

export interface Stack<Name extends string> {
  /** The first tracker; a test that restarts it assigns the new one here, and that one is stopped. */
  tracker: TrackerProcess;
  trackers: TrackerProcess[];
  apiKey: string;
  /** Only with `proxy: true`. */
  proxy: Proxy;
  /** Where the MCP servers talk to: the proxy, or the first tracker. */
  url: string;
  mcp: Record<Name, McpProcess>;
  /** One more MCP server on the stack, stopped (its exit code checked) with it. */
  startMcp(extra?: Env): Promise<McpProcess>;
}

/**
 * The stack of an e2e file or describe: registers the hooks that start it and stop it. Stopping
 * closes every MCP server it started and stops every tracker, each of which must exit with 0 (the
 * trackers with nothing on stdout), then stops whatever else the tests started (stopEverything) and
 * drops the PostgreSQL schema, even when a check failed. Its fields are set once the start hook has run.
 */
export function useStack<Name extends string = never>(options: StackOptions<Name> = {}): Stack<Name> {
  const stack = {} as Stack<Name>;
  let started: McpProcess[] = [];
  let schema: PostgresTestSchema | undefined;

  async function start(): Promise<void> {
    started = [];
    const apiKey = options.tracker?.apiKey ?? makeApiKey();
    schema = options.database === "postgres" ? await makePostgresSchema() : undefined;
    const trackers = await startTrackers(apiKey, { ...options.tracker?.env, ...(schema && { DATABASE_URL: schema.url }) });
    const proxy = options.proxy ? await startProxy(trackers[0]!.url) : undefined;
    Object.assign(stack, { trackers, apiKey, url: proxy?.url ?? trackers[0]!.url, proxy });
    stack.startMcp = async (extra = {}) => {
      const mcp = await startMcp(mcpEnv(stack.url, apiKey, extra));
      started.push(mcp);
      if (proxy) await proxy.waitFor((request) => isAdoptionBy(request, mcp.pid, extra), "the adoption of the agent's claims");
      return mcp;
    };
    const named = Object.entries<Env>(options.mcp ?? ({} as Record<Name, Env>));
    const servers = await Promise.all(named.map(([, extra]) => stack.startMcp(extra)));
    stack.mcp = Object.fromEntries(named.map(([name], i) => [name, servers[i]])) as Record<Name, McpProcess>;
  }

  /** One after the other: the first creates the tables the others find. */
  async function startTrackers(apiKey: string, env: Env): Promise<TrackerProcess[]> {
    const trackers: TrackerProcess[] = [];
    for (let i = 0; i < (options.trackers ?? 1); i++) trackers.push(await startTrackerProcess({ apiKey, env }));
    return trackers;
  }

  async function stop(): Promise<void> {
    try {
      const codes = await Promise.all(started.map((mcp) => mcp.close()));
      expect(codes).toEqual(started.map(() => 0));
      for (const tracker of stack.trackers ?? []) {
        expect(await tracker.stop()).toBe(0);
        expect(tracker.stdout.text()).toBe("");
      }
    } finally {
      await stopEverything();
      await schema?.drop();
    }
  }

  Object.defineProperty(stack, "tracker", {
    get: () => stack.trackers[0],
    set: (tracker: TrackerProcess) => void (stack.trackers[0] = tracker),
  });
  if (options.perTest) {
    beforeEach(start);
    afterEach(stop);
  } else {
    beforeAll(start);
    afterAll(stop);
    if (options.proxy) beforeEach(() => stack.proxy.reset());
  }
  return stack;
}

/**
 * At start an MCP server adopts its agent's claims (GET /tasks?status=in_progress&claimed_by=<agent>,
 * docs/TOOLS.md, Leases). The stack waits for that request of each server it starts, so that the
 * requests a test sees through the proxy are its own, however late a loaded machine sends it. The
 * agent is TASK_TRACKING_AGENT_ID when given, else `<host>-<pid>` (no Claude Code session here).
 */
function isAdoptionBy(request: { target: string }, pid: number, env: Env): boolean {
  const url = new URL(request.target, "http://tracker");
  const agent = url.searchParams.get("claimed_by");
  if (url.pathname !== "/tasks" || url.searchParams.get("status") !== "in_progress" || agent === null) return false;
  return env.TASK_TRACKING_AGENT_ID ? agent === env.TASK_TRACKING_AGENT_ID : agent.endsWith(`-${pid}`);
}

// ─── The tracker, as its own process ────────────────────────────────────────────────────────────

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  request_id: string;
}

export interface TrackerProcess {
  url: string;
  port: number;
  apiKey: string;
  dbPath: string;
  stderr: Lines;
  stdout: Lines;
  /** The service's own record of the requests it answered (its access log on stderr). */
  accessLog(): AccessLogEntry[];
  /** Waits for the access log line of a request (the log is written once per turn of its event loop). */
  waitForAccess(test: (entry: AccessLogEntry) => boolean, what: string): Promise<AccessLogEntry>;
  /** A direct, authenticated call of the REST API, for setting up a scenario. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  db(): TrackerDb;
  /** SIGTERM, then the exit code. The database directory is kept until kill(). */
  stop(): Promise<number>;
  /** Stops if needed and removes the temporary directory. */
  kill(): Promise<void>;
}

function isAccess(record: Record<string, unknown> | null): record is Record<string, unknown> {
  return record?.msg === "request" && typeof record.status === "number";
}

export async function startTrackerProcess(
  options: { apiKey?: string; env?: Record<string, string> } = {},
): Promise<TrackerProcess> {
  const apiKey = options.apiKey ?? makeApiKey();
  const dir = makeTempDir("tt-e2e-");
  const dbPath = join(dir, "tracker.db");
  const {
    url,
    port,
    process: child,
  } = await startTracker({
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? dir,
      TRACKER_DB: dbPath,
      TRACKER_API_KEYS: apiKey,
      LOG_LEVEL: "info",
      ...options.env,
    },
  });
  const stop = () => child.stop();
  const kill = async () => {
    await stop();
    removeTempDir(dir);
  };
  register({ stop: kill });

  const accessLog = () => child.stderr.records().filter(isAccess) as unknown as AccessLogEntry[];
  return {
    url,
    port,
    apiKey,
    dbPath,
    stderr: child.stderr,
    stdout: child.stdout,
    accessLog,
    async waitForAccess(test, what) {
      const line = await child.stderr.waitFor((line) => {
        const record = parseRecord(line);
        return isAccess(record) && test(record as unknown as AccessLogEntry);
      }, `the tracker's access log line of ${what}`);
      return JSON.parse(line) as AccessLogEntry;
    },
    async api(method, path, body) {
      const response = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    },
    db: () => new TrackerDb(dbPath),
    stop,
    kill,
  };
}

// ─── The tracker's database, read-only ──────────────────────────────────────────────────────────

export interface TaskRow {
  task_id: string;
  project_id: string;
  status: string;
  priority: string;
  depends_on: string;
  claimed_by: string | null;
  completion_notes: string;
  started_at: string | null;
  completed_at: string | null;
}

/**
 * A read-only look at the tracker's database. The running tracker holds its file exclusively
 * (locking_mode EXCLUSIVE), so we read a copy of the file and its WAL, taken while no request is in
 * flight: every acknowledged write is already committed to them. The tracker's own files are only read.
 */
export class TrackerDb {
  private readonly db: Database;
  private readonly dir: string;

  constructor(path: string) {
    this.dir = mkdtempSync(join(tmpdir(), "tt-e2e-db-"));
    const copy = join(this.dir, "tracker.db");
    copyFileSync(path, copy);
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
    this.db = new Database(copy, { readonly: true });
  }

  tasks(project?: string): TaskRow[] {
    const sql = `SELECT * FROM tasks${project ? " WHERE project_id = ?" : ""} ORDER BY seq`;
    return this.db.query<TaskRow, string[]>(sql).all(...(project ? [project] : []));
  }

  task(taskId: string): TaskRow | null {
    return this.db.query<TaskRow, [string]>("SELECT * FROM tasks WHERE task_id = ?").get(taskId);
  }

  /** The ID counter of a type in a project: the last number handed out (0 when none). */
  lastAssigned(project: string, type: string): number {
    const row = this.db
      .query<{ last_assigned: number }, [string, string]>(
        "SELECT last_assigned FROM id_counters WHERE project_id = ? AND artifact_type = ?",
      )
      .get(project, type);
    return row?.last_assigned ?? 0;
  }

  reservations(project?: string): { reservation_id: string; artifact_type: string; first_number: number; count: number }[] {
    const sql = `SELECT * FROM reservations${project ? " WHERE project_id = ?" : ""} ORDER BY first_number`;
    return this.db.query<any, string[]>(sql).all(...(project ? [project] : []));
  }

  close(): void {
    this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Opens the database, runs the check, closes it. */
export function inDb<T>(tracker: TrackerProcess, check: (db: TrackerDb) => T): T {
  const db = tracker.db();
  try {
    return check(db);
  } finally {
    db.close();
  }
}

// ─── The compiled MCP server, over stdio ────────────────────────────────────────────────────────

export interface McpProcess {
  client: Client;
  stderr: Lines;
  pid: number;
  /** Calls a tool; the result as the client received it. */
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** Closes stdin (the MCP client's way to end the server) and resolves with the exit code. */
  close(): Promise<number | null>;
  kill(): Promise<void>;
}

export async function startMcp(env: Record<string, string>): Promise<McpProcess> {
  const mcp = await startMcpClient({ env, clientName: "task-tracking-e2e" });
  return {
    client: mcp.client,
    stderr: mcp.stderr,
    pid: mcp.pid,
    call: (name, args = {}) => mcp.client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    close: mcp.close,
    kill: async () => void (await mcp.close()),
  };
}

/** The environment of an MCP server that talks to `url` with `apiKey`. */
export function mcpEnv(url: string, apiKey: string, extra: Record<string, string> = {}): Record<string, string> {
  return { TASK_TRACKING_URL: url, TASK_TRACKING_API_KEY: apiKey, LOG_LEVEL: "info", ...extra };
}

/** The text of a result's first content item. */
export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

// ─── Small things ───────────────────────────────────────────────────────────────────────────────

/** True when nothing accepts connections at localhost:8080 (so the default URL is safe to use). */
export function isPort8080Free(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "localhost", port: 8080 });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

/** Milliseconds that `work` took, with its result. */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** Spawns the binary directly (no MCP client), e.g. to see it fail at start-up. */
export function runBinary(
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runMcpBinary(args, env, stdin);
}

// ─── The compiled MCP server spoken to by hand: raw JSON-RPC lines on its stdin and stdout ──────

export interface RawMcp {
  stdout: Lines;
  stderr: Lines;
  /** Writes bytes to stdin exactly as given. */
  write(bytes: string | Uint8Array): void;
  /** Sends a request and resolves with the response carrying its id. */
  request(method: string, params?: unknown): Promise<{ result?: any; error?: { code: number; message: string } }>;
  notify(method: string, params?: unknown): void;
  /** initialize + notifications/initialized, as an MCP client starts a session. */
  initialize(): Promise<void>;
  /** Closes stdin and resolves with the exit code. */
  close(): Promise<number>;
  exited: Promise<number>;
  kill(): Promise<void>;
}

export function startRawMcp(env: Record<string, string>): RawMcp {
  ensureBuilt(MCP_BINARY);
  return new JsonRpcClient([MCP_BINARY], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
    cwd: tmpdir(),
    requestTimeoutMs: 10_000,
    clientName: "task-tracking-e2e-raw",
  });
}
