// Shared helpers of the end-to-end tests: the tracker as its own process on a temporary database,
// the compiled MCP server spoken to over stdio by the SDK's Client, a fault-injecting HTTP proxy
// between the two, and a read-only look at the tracker's database.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Database } from "bun:sqlite";
import type { ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname;
export const MCP_BINARY = join(ROOT, "dist", "task-tracking-mcp");
export const PROJECT = "ai-agent-mcp-server";

/** A fresh random key, long enough for the tracker. */
export function makeApiKey(): string {
  return `e2e-${Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString("base64url")}`;
}

// ─── Lines of a child's output, and waiting for one ──────────────────────────────────────────────

export class Lines {
  readonly lines: string[] = [];
  private partial = "";
  private readonly waiters = new Set<{ test: (line: string) => boolean; resolve: (line: string) => void }>();
  private ended = false;
  private readonly endWaiters = new Set<() => void>();

  push(text: string): void {
    this.partial += text;
    const parts = this.partial.split("\n");
    this.partial = parts.pop()!;
    for (const line of parts) this.add(line);
  }

  end(): void {
    if (this.partial) this.add(this.partial);
    this.partial = "";
    this.ended = true;
    for (const wake of this.endWaiters) wake();
  }

  private add(line: string): void {
    this.lines.push(line);
    for (const waiter of this.waiters) {
      if (waiter.test(line)) {
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }

  text(): string {
    return this.lines.join("\n") + (this.partial ? `\n${this.partial}` : "");
  }

  /** JSON lines only: every line that parses as a JSON object. */
  records(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        const value = JSON.parse(line) as unknown;
        return value && typeof value === "object" ? [value as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  }

  /** Resolves with the first line (already seen or yet to come) that passes the test. */
  waitFor(test: (line: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        test,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${this.text()}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Resolves when the stream has ended (the child closed it, normally by exiting). */
  whenEnded(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.endWaiters.add(resolve));
  }
}

async function pump(stream: ReadableStream<Uint8Array>, into: Lines): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) into.push(decoder.decode(chunk, { stream: true }));
  into.push(decoder.decode());
  into.end();
}

// ─── Everything a test file starts is stopped in its afterAll, even after a failure ─────────────

const running = new Set<{ kill(): Promise<unknown> }>();

/** Stops whatever is still running (processes, proxies) and removes temporary directories. */
export async function stopEverything(): Promise<void> {
  await Promise.allSettled([...running].map((thing) => thing.kill()));
  running.clear();
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

function isAccess(record: Record<string, unknown>): boolean {
  return record.msg === "request" && typeof record.status === "number";
}

export async function startTrackerProcess(options: { apiKey?: string; env?: Record<string, string> } = {}): Promise<TrackerProcess> {
  const apiKey = options.apiKey ?? makeApiKey();
  const dir = mkdtempSync(join(tmpdir(), "tt-e2e-"));
  const dbPath = join(dir, "tracker.db");
  const child = Bun.spawn([process.execPath, join(ROOT, "tracker", "main.ts")], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? dir,
      PORT: "0",
      HOST: "127.0.0.1",
      TRACKER_DB: dbPath,
      TRACKER_API_KEYS: apiKey,
      LOG_LEVEL: "info",
      ...options.env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stderr = new Lines();
  const stdout = new Lines();
  void pump(child.stderr, stderr);
  void pump(child.stdout, stdout);

  let stopped: Promise<number> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      child.kill("SIGTERM");
      const code = await child.exited;
      await Promise.all([stderr.whenEnded(), stdout.whenEnded()]);
      return code;
    })();
    return stopped;
  };
  const handle = {
    async kill() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(handle);

  const started = await Promise.race([
    stderr.waitFor((line) => line.includes('"tracker started"'), "the tracker to start"),
    child.exited.then((code) => {
      throw new Error(`the tracker exited with code ${code} before it started:\n${stderr.text()}`);
    }),
  ]);
  const url = (JSON.parse(started) as { url: string }).url;
  const health = await fetch(`${url}/healthz`);
  if (health.status !== 200) throw new Error(`${url}/healthz answered ${health.status}`);

  const accessLog = () => stderr.records().filter(isAccess) as unknown as AccessLogEntry[];
  return {
    url,
    port: Number(new URL(url).port),
    apiKey,
    dbPath,
    stderr,
    stdout,
    accessLog,
    async waitForAccess(test, what) {
      const line = await stderr.waitFor((line) => {
        try {
          const record = JSON.parse(line) as Record<string, unknown>;
          return isAccess(record) && test(record as unknown as AccessLogEntry);
        } catch {
          return false;
        }
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
    kill: handle.kill,
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
    const sql = "SELECT * FROM tasks" + (project ? " WHERE project_id = ?" : "") + " ORDER BY seq";
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
    const sql = "SELECT * FROM reservations" + (project ? " WHERE project_id = ?" : "") + " ORDER BY first_number";
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

export function assertBinaryBuilt(): void {
  if (!existsSync(MCP_BINARY)) throw new Error(`${MCP_BINARY} is missing: run \`bun run build\` first`);
}

export async function startMcp(env: Record<string, string>): Promise<McpProcess> {
  assertBinaryBuilt();
  const transport = new StdioClientTransport({ command: MCP_BINARY, args: [], env, stderr: "pipe", cwd: tmpdir() });
  const stderr = new Lines();
  transport.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString("utf8")));
  transport.stderr!.on("end", () => stderr.end());
  const client = new Client({ name: "task-tracking-e2e", version: "1.0.0" });
  await client.connect(transport);
  // The transport keeps its child process to itself; its exit code is what we need to check.
  const child = (transport as unknown as { _process?: ChildProcess })._process!;
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  let closing: Promise<number | null> | undefined;
  const close = () => {
    closing ??= (async () => {
      await client.close();
      const code = await exited;
      await stderr.whenEnded();
      return code;
    })();
    return closing;
  };
  const handle = { kill: async () => void (await close()) };
  running.add(handle);
  return {
    client,
    stderr,
    pid: child.pid!,
    call: (name, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    close,
    kill: handle.kill,
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

// ─── A fault-injecting HTTP/1.1 proxy ───────────────────────────────────────────────────────────

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  target: string;
  headers: Record<string, string>;
  body: string;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** What the proxy does with one request. */
export type Action =
  /** Pass it on and back; with holdMs, the tracker's answer is held back that long (or until the client leaves). */
  | { type: "forward"; holdMs?: number }
  /** Answer it without asking the tracker. */
  | ({ type: "reply" } & Reply)
  /** Let the tracker answer, then send something else back. */
  | { type: "forward-then-replace"; replace: (upstream: Reply) => Reply }
  /** Let the tracker process it, then close the connection: the answer is lost. */
  | { type: "forward-then-drop" }
  /** Let the tracker answer, send the headers and half the body, then reset the connection. */
  | { type: "forward-then-cut-body" };

export interface Proxy {
  url: string;
  port: number;
  /** Every request that reached the proxy since the last reset(), in order. */
  requests: RecordedRequest[];
  /** The first requests get these actions, one each; every later one is forwarded. */
  script(...actions: Action[]): void;
  /** Decides per request (index counts from 0 since the last reset()). */
  setPlan(plan: (request: RecordedRequest, index: number) => Action): void;
  /** Forgets requests and plan: everything is forwarded again. */
  reset(): void;
  /** Stops listening and drops every open connection: new connections are refused. */
  refuse(): Promise<void>;
  /** Listens again, on the same port. */
  accept(): Promise<void>;
  kill(): Promise<void>;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"]);

function serialize(reply: Reply, cut = false): Buffer {
  const body = Buffer.from(reply.body, "utf8");
  const lines = [`HTTP/1.1 ${reply.status} ${STATUS_TEXT[reply.status] ?? "Status"}`];
  for (const [name, value] of Object.entries(reply.headers ?? {})) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) lines.push(`${name}: ${value}`);
  }
  lines.push(`Content-Length: ${body.length}`, "Connection: keep-alive", "", "");
  const head = Buffer.from(lines.join("\r\n"), "latin1");
  return Buffer.concat([head, cut ? body.subarray(0, Math.floor(body.length / 2)) : body]);
}

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  409: "Conflict",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Parses the requests in `buffer`; returns them and what is left over (an incomplete request). */
function parseRequests(buffer: Buffer): { requests: RecordedRequest[]; rest: Buffer } {
  const requests: RecordedRequest[] = [];
  for (;;) {
    const end = buffer.indexOf("\r\n\r\n");
    if (end === -1) break;
    const [requestLine, ...headerLines] = buffer.subarray(0, end).toString("latin1").split("\r\n");
    const [method, target] = requestLine!.split(" ");
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let body: Buffer;
    let next: number;
    if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
      const chunks: Buffer[] = [];
      let at = end + 4;
      let complete = false;
      for (;;) {
        const lineEnd = buffer.indexOf("\r\n", at);
        if (lineEnd === -1) break;
        const size = parseInt(buffer.subarray(at, lineEnd).toString("latin1"), 16);
        if (buffer.length < lineEnd + 2 + size + 2) break;
        if (size === 0) {
          at = lineEnd + 4;
          complete = true;
          break;
        }
        chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(chunks);
      next = at;
    } else {
      const length = Number(headers["content-length"] ?? 0);
      if (buffer.length < end + 4 + length) break;
      body = buffer.subarray(end + 4, end + 4 + length);
      next = end + 4 + length;
    }
    requests.push({ method: method!, target: target!, headers, body: body.toString("utf8") });
    buffer = buffer.subarray(next);
  }
  return { requests, rest: buffer };
}

export async function startProxy(upstream: string): Promise<Proxy> {
  const requests: RecordedRequest[] = [];
  let plan: (request: RecordedRequest, index: number) => Action = () => ({ type: "forward" });
  const sockets = new Set<Socket>();

  async function askUpstream(request: RecordedRequest): Promise<Reply> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) if (!HOP_BY_HOP.has(name)) headers[name] = value;
    const response = await fetch(upstream + request.target, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD" ? undefined : request.body,
    });
    const replyHeaders: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) replyHeaders[name] = value;
    });
    return { status: response.status, headers: replyHeaders, body: await response.text() };
  }

  function whenClosed(socket: Socket): Promise<void> {
    return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once("close", () => resolve())));
  }

  async function handle(socket: Socket, request: RecordedRequest, action: Action): Promise<void> {
    const send = (bytes: Buffer) => {
      if (!socket.destroyed) socket.write(bytes);
    };
    switch (action.type) {
      case "reply":
        return send(serialize(action));
      case "forward": {
        const reply = await askUpstream(request);
        if (action.holdMs) {
          let timer: Timer | undefined;
          await Promise.race([whenClosed(socket), new Promise((resolve) => (timer = setTimeout(resolve, action.holdMs)))]);
          clearTimeout(timer);
        }
        return send(serialize(reply));
      }
      case "forward-then-replace":
        return send(serialize(action.replace(await askUpstream(request))));
      case "forward-then-drop":
        await askUpstream(request);
        socket.destroy();
        return;
      case "forward-then-cut-body": {
        const reply = await askUpstream(request);
        if (socket.destroyed) return;
        socket.write(serialize(reply, true), () => socket.resetAndDestroy());
        return;
      }
    }
  }

  function onConnection(socket: Socket) {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffer: Buffer = Buffer.alloc(0);
    // Requests on one connection are answered in order.
    let queue = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseRequests(buffer);
      buffer = parsed.rest;
      for (const request of parsed.requests) {
        const index = requests.length;
        requests.push(request);
        const action = plan(request, index);
        queue = queue.then(() =>
          handle(socket, request, action).catch(() => {
            socket.destroy();
          }),
        );
      }
    });
  }

  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const port = await listen(0);
  let listening = true;
  const refuse = async () => {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  const handle_ = {
    async kill() {
      await refuse();
    },
  };
  running.add(handle_);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    script(...actions) {
      const first = requests.length;
      plan = (_request, index) => actions[index - first] ?? { type: "forward" };
    },
    setPlan(next) {
      plan = next;
    },
    reset() {
      requests.length = 0;
      plan = () => ({ type: "forward" });
    },
    refuse,
    async accept() {
      if (listening) return;
      server = createServer(onConnection);
      await listen(port);
      listening = true;
    },
    kill: handle_.kill,
  };
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
export async function runBinary(
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  assertBinaryBuilt();
  const child = Bun.spawn([MCP_BINARY, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
    cwd: tmpdir(),
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
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
  assertBinaryBuilt();
  const child = Bun.spawn([MCP_BINARY], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? tmpdir(), ...env },
    cwd: tmpdir(),
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stdout = new Lines();
  const stderr = new Lines();
  void pump(child.stdout, stdout);
  void pump(child.stderr, stderr);
  let nextId = 1;
  const write = (bytes: string | Uint8Array) => {
    child.stdin.write(bytes);
    void child.stdin.flush();
  };
  const request: RawMcp["request"] = async (method, params) => {
    const id = `raw-${nextId++}`;
    write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
    const line = await stdout.waitFor((line) => {
      try {
        return (JSON.parse(line) as { id?: unknown }).id === id;
      } catch {
        return false;
      }
    }, `the answer to ${method} (${id})`);
    return JSON.parse(line);
  };
  let closing: Promise<number> | undefined;
  const close = () => {
    closing ??= (async () => {
      void child.stdin.end();
      const code = await child.exited;
      await Promise.all([stdout.whenEnded(), stderr.whenEnded()]);
      return code;
    })();
    return closing;
  };
  const handle = {
    async kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await child.exited;
    },
  };
  running.add(handle);
  return {
    stdout,
    stderr,
    write,
    request,
    notify: (method, params) => write(JSON.stringify({ jsonrpc: "2.0", method, params }) + "\n"),
    async initialize() {
      const answer = await request("initialize", {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "task-tracking-e2e-raw", version: "1.0.0" },
      });
      if (!answer.result) throw new Error(`initialize failed: ${JSON.stringify(answer)}`);
      write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
    },
    close,
    exited: child.exited,
    kill: handle.kill,
  };
}
