#!/usr/bin/env bun
/**
 * task-tracking-mcp: an MCP server (stdio) that lets AI coding agents plan and track their work in a
 * Task Tracking service. Five tools, each a call of the service's REST API (shared/API.md).
 *
 * Read top to bottom: configuration, logging, the API's shapes, the HTTP client (retries, timeouts,
 * idempotency; knows nothing of MCP), the MCP server (one registerTool per tool), the command line.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Transform, type Writable } from "node:stream";
import { z } from "zod";
import packageJson from "./package.json" with { type: "json" };

export const NAME = "task-tracking-mcp";
export const VERSION: string = packageJson.version;

// ─── Configuration ─────────────────────────────────────────────────────────────────────────────

const LOG_LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type LogLevel = keyof typeof LOG_LEVELS;

export interface Config {
  /** Base URL without a trailing slash, as used for requests. */
  url: string;
  /** The URL as errors show it: no user name or password. */
  displayUrl: string;
  apiKey: string;
  timeoutMs: number;
  agentId?: string;
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * A `${VAR}` that the MCP client left as it was: Claude Code passes `"${TASK_TRACKING_API_KEY}"` of a
 * .mcp.json through literally when the variable is not set in the user's environment.
 */
const UNEXPANDED_PLACEHOLDER = /^\$\{[^}]*\}$/;

/** Reads the environment once. Empty values and unexpanded `${VAR}`s count as unset, as MCP clients pass them for blanks. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const value = (name: string) => {
    const text = env[name]?.trim();
    return text && !UNEXPANDED_PLACEHOLDER.test(text) ? text : undefined;
  };

  const apiKey = value("TASK_TRACKING_API_KEY");
  if (!apiKey) throw new ConfigError("TASK_TRACKING_API_KEY environment variable not set");
  if (!PRINTABLE_ASCII.test(apiKey)) {
    // Never the key itself: only what is wrong with it.
    throw new ConfigError("TASK_TRACKING_API_KEY must be printable ASCII characters; look for quotes or other characters pasted with it");
  }

  const rawUrl = value("TASK_TRACKING_URL") ?? "http://localhost:8080";
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new ConfigError("TASK_TRACKING_URL must be an http(s) URL such as http://localhost:8080");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError("TASK_TRACKING_URL must be an http(s) URL such as http://localhost:8080");
  }
  if (rawUrl.includes("?") || rawUrl.includes("#")) {
    throw new ConfigError("TASK_TRACKING_URL must be the service's base URL, without a query or fragment, such as http://localhost:8080");
  }
  const url = rawUrl.replace(/\/+$/, "");
  const withoutCredentials = new URL(url);
  withoutCredentials.username = "";
  withoutCredentials.password = "";
  const displayUrl =
    parsed.username || parsed.password ? withoutCredentials.href.replace(/\/+$/, "") : url;

  const rawTimeout = value("TASK_TRACKING_TIMEOUT_MS") ?? "5000";
  const timeoutMs = Number(rawTimeout);
  if (!/^\d+$/.test(rawTimeout) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new ConfigError("TASK_TRACKING_TIMEOUT_MS must be a whole number of milliseconds from 1 to 600000");
  }

  const agentId = value("TASK_TRACKING_AGENT_ID");
  if (agentId !== undefined && (agentId.length > 128 || !PRINTABLE_ASCII.test(agentId))) {
    throw new ConfigError("TASK_TRACKING_AGENT_ID must be 1-128 printable ASCII characters");
  }

  const logLevel = (value("LOG_LEVEL") ?? "info").toLowerCase();
  if (!(logLevel in LOG_LEVELS)) throw new ConfigError("LOG_LEVEL must be one of debug, info, warn, error");

  return { url, displayUrl, apiKey, timeoutMs, agentId, logLevel: logLevel as LogLevel };
}

// ─── Logging: one JSON object a line on stderr, never a secret ─────────────────────────────────

export type Log = (level: LogLevel, fields: Record<string, unknown>) => void;

/** Replaces every occurrence of each secret (raw and JSON-escaped) with [REDACTED]. */
export function createRedactor(secrets: string[]): (text: string) => string {
  const forms = [...new Set(secrets.filter(Boolean).flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))];
  return (text) => {
    for (const form of forms) if (text.includes(form)) text = text.replaceAll(form, "[REDACTED]");
    return text;
  };
}

function createLog(minimum: LogLevel, redact: (text: string) => string, write: (line: string) => void): Log {
  return (level, fields) => {
    if (LOG_LEVELS[level] < LOG_LEVELS[minimum]) return;
    write(redact(JSON.stringify({ ts: new Date().toISOString(), level, ...fields })) + "\n");
  };
}

const MAX_LOGGED_PARAMS = 1000;

function paramsForLog(params: unknown): unknown {
  const text = JSON.stringify(params) ?? "";
  return text.length <= MAX_LOGGED_PARAMS ? params : text.slice(0, MAX_LOGGED_PARAMS) + "…(cut)";
}

// ─── The API's shapes (shared/API.md) ──────────────────────────────────────────────────────────

const ID_CHARACTERS = /^[A-Za-z0-9._-]+$/;
const ARTIFACT_TYPE = /^[A-Z][A-Z0-9]{0,15}$/;
const TASK_STATUSES = ["pending", "in_progress", "completed"] as const;
const PRIORITIES = ["high", "medium", "low"] as const;

const projectId = z
  .string()
  .min(1, "project_id must not be empty")
  .max(128, "project_id must be at most 128 characters")
  .regex(ID_CHARACTERS, "project_id may hold only A-Z a-z 0-9 . _ -");
const taskId = (field: string) =>
  z
    .string()
    .min(1, `${field} must not be empty`)
    .max(64, `${field} must be at most 64 characters`)
    .regex(ID_CHARACTERS, `${field} may hold only A-Z a-z 0-9 . _ -`);
const artifactType = z
  .string()
  .regex(ARTIFACT_TYPE, "artifact_type must be an upper-case letter then up to 15 upper-case letters or digits, e.g. US, SPEC, TASK");
const taskStatus = (field: string) => z.enum(TASK_STATUSES, { error: `${field} must be one of pending, in_progress, completed` });

const TaskSchema = z.looseObject({
  task_id: z.string(),
  project_id: z.string(),
  description: z.string(),
  inputs: z.array(z.string()),
  outputs: z.array(z.string()),
  priority: z.enum(PRIORITIES),
  depends_on: z.array(z.string()),
  status: z.enum(TASK_STATUSES),
  claimed_by: z.string().nullable(),
  completion_notes: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
});
export type Task = z.infer<typeof TaskSchema>;

const TaskInputSchema = z.strictObject({
  task_id: taskId("task_id").describe("Unique task ID, e.g. \"TASK-046\"; 1-64 characters of A-Z a-z 0-9 . _ -"),
  project_id: projectId.describe("Project ID, e.g. \"ai-agent-mcp-server\""),
  description: z
    .string()
    .min(1, "description must not be empty")
    .max(10_000, "description must be at most 10000 characters")
    .describe("What to do, 1-10000 characters"),
  inputs: z.array(z.string()).optional().describe("Artifacts the task reads, e.g. [\"US-053\"]"),
  outputs: z.array(z.string()).optional().describe("Artifacts the task produces, e.g. [\"index.ts\"]"),
  priority: z.enum(PRIORITIES, { error: "priority must be one of high, medium, low" }).optional().describe("high, medium (default) or low"),
  depends_on: z.array(taskId("depends_on entry")).optional().describe("task_ids that must be completed before this one is ready"),
});
export type TaskInput = z.infer<typeof TaskInputSchema>;

// The responses, checked before anything reaches the model.
const NextTaskResponse = z.object({ task: TaskSchema.nullable() });
const UpdatedTaskResponse = z.object({ updated_task: TaskSchema });
const NextIdResponse = z.object({ next_id: z.string() });
const ReservationShape = {
  reservation_id: z.string().describe("UUID of the reservation"),
  reserved_ids: z.array(z.string()).describe("The reserved IDs, contiguous, in order"),
  expires_at: z.string().describe("RFC 3339 time after which the reservation shows as expired (its IDs are never reissued)"),
};
const ReservationResponse = z.object(ReservationShape);
const BatchShape = {
  success: z.boolean(),
  tasks_added: z.number().int(),
  task_ids: z.array(z.string()),
};
const BatchResponse = z.object(BatchShape);

// ─── The HTTP client: knows the API, retries and timeouts; knows nothing of MCP ────────────────

/** A failure whose message is the exact sentence the model sees (shared/TOOLS.md, Errors). */
export class ToolFailure extends Error {
  override name = "ToolFailure";
  constructor(
    message: string,
    /** The HTTP status and the service's own sentence and code, when the service answered. */
    readonly status?: number,
    readonly detail?: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

class CancelledError extends Error {
  override name = "CancelledError";
  constructor() {
    super("The tool call was cancelled");
  }
}

const RETRY_DELAYS_MS = [100, 200, 400];
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const RETRY_AFTER_STATUSES = new Set([429, 503]);
const MAX_RETRY_AFTER_MS = 2000;

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ConnectionRefused: "Connection refused",
  ECONNRESET: "Connection reset",
  ConnectionClosed: "Connection closed",
  EPIPE: "Connection closed",
  ENOTFOUND: "Host not found",
  EAI_AGAIN: "Host name lookup failed",
  EHOSTUNREACH: "Host unreachable",
  ENETUNREACH: "Network unreachable",
  ETIMEDOUT: "Connection timed out",
  CERT_HAS_EXPIRED: "TLS certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS certificate is self-signed",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS certificate could not be verified",
};

/** fetch() rejects with a TypeError carrying a string `code` when the network fails. */
function networkReason(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== "TypeError") return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string") return undefined;
  return NETWORK_REASONS[code] ?? `Network error ${code}`;
}

function retryAfterMs(response: Response, now: number): number | undefined {
  if (!RETRY_AFTER_STATUSES.has(response.status)) return undefined;
  const header = response.headers.get("retry-after")?.trim();
  if (!header) return undefined;
  const delay = /^\d+$/.test(header) ? Number(header) * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(delay)) return undefined;
  return Math.min(Math.max(delay, 0), MAX_RETRY_AFTER_MS);
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new CancelledError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** What one tool call did over HTTP, for its log line. */
export interface CallTrace {
  requestId: string;
  /** HTTP attempts over all the requests of the call (a claim makes several). */
  attempts: number;
  status?: number;
}

export interface CallContext {
  signal: AbortSignal;
  trace: CallTrace;
}

interface ApiRequest {
  method: "GET" | "PUT" | "POST";
  path: string;
  body?: unknown;
  /** Sent with an Idempotency-Key, the same on every retry of this request. */
  idempotent: boolean;
}

/** The sentence of a `{"error": ..., "code": ...}` body, else the text cut to 200 characters, else the status text. */
function describeErrorBody(text: string, statusText: string): { detail: string; code?: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown };
    if (typeof body.error === "string" && body.error.trim()) {
      return { detail: body.error.trim().slice(0, 500), code: typeof body.code === "string" ? body.code : undefined };
    }
  } catch {
    // not JSON: fall through to the text itself
  }
  const plain = text.replace(/\s+/g, " ").trim();
  if (plain) return { detail: plain.slice(0, 200) };
  return { detail: statusText || "no description" };
}

function secondsText(ms: number): string {
  const seconds = ms / 1000;
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

/**
 * How many times a claim asks for the next task after another agent took the one it was given. Agents
 * that lost a race would all ask again at once and race for the next task too; a random pause that
 * grows with each round lets one of them claim it while the others read the task after it.
 */
const MAX_CLAIM_ROUNDS = 20;
const claimPauseMs = (round: number) => Math.random() * Math.min(4 * round, 40);

export class TrackerClient {
  private readonly headers: Record<string, string>;
  /** Every text the service sends is redacted as it arrives, before anything cuts or parses it. */
  private readonly redact: (text: string) => string;

  constructor(
    private readonly config: Config,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.redact = createRedactor([config.apiKey]);
    this.headers = { authorization: `Bearer ${config.apiKey}`, accept: "application/json" };
    if (config.agentId) this.headers["x-agent-id"] = config.agentId;
  }

  /** Sends one request, retrying what TOOLS.md says may be retried; returns the parsed 2xx body. */
  async send(request: ApiRequest, { signal, trace }: CallContext): Promise<unknown> {
    const headers: Record<string, string> = { ...this.headers, "x-request-id": trace.requestId };
    if (request.idempotent) headers["idempotency-key"] = crypto.randomUUID();
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    const url = this.config.url + request.path;

    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new CancelledError();
      trace.attempts++;
      // The attempt's own controller, aborted by the call's signal or by a timer cleared as soon as the
      // attempt ends. AbortSignal.timeout and AbortSignal.any would leave a live timer and a signal
      // behind every attempt for the whole timeout: tens of megabytes of RSS under load (bench/).
      const attemptAbort = new AbortController();
      const cancel = () => attemptAbort.abort();
      signal.addEventListener("abort", cancel, { once: true });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attemptAbort.abort();
      }, this.config.timeoutMs);
      let failure: ToolFailure;
      let delay = RETRY_DELAYS_MS[attempt - 1];
      try {
        const response = await this.fetchImpl(url, { method: request.method, headers, body, signal: attemptAbort.signal });
        trace.status = response.status;
        const text = this.redact(await response.text());
        if (response.ok) return this.parseJson(text);
        const { detail, code } = describeErrorBody(text, response.statusText);
        failure = new ToolFailure(`Task Tracking API error: ${response.status} - ${detail}`, response.status, detail, code);
        if (!RETRYABLE_STATUSES.has(response.status)) throw failure;
        // Retry-After sets the wait, never the number of attempts: after the last one there is none.
        if (delay !== undefined) delay = retryAfterMs(response, Date.now()) ?? delay;
      } catch (error) {
        if (error instanceof ToolFailure) throw error;
        if (signal.aborted) throw new CancelledError();
        if (timedOut) {
          trace.status = undefined;
          failure = new ToolFailure(`Task Tracking microservice timeout: No response within ${secondsText(this.config.timeoutMs)}`);
        } else {
          const reason = networkReason(error);
          if (reason === undefined) throw error; // a bug, not a transient failure: never retried
          trace.status = undefined;
          failure = new ToolFailure(`Task Tracking microservice unavailable: ${reason} at ${this.config.displayUrl}`);
        }
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", cancel);
      }
      if (delay === undefined) throw failure;
      await abortableSleep(delay, signal);
    }
  }

  private parseJson(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      throw new ToolFailure(`Task Tracking API returned an invalid response: the body is not JSON (${JSON.stringify(text.slice(0, 60))})`);
    }
  }

  private async sendFor<T>(schema: z.ZodType<T>, request: ApiRequest, call: CallContext): Promise<T> {
    const result = schema.safeParse(await this.send(request, call));
    if (result.success) return result.data;
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "the body";
    throw new ToolFailure(`Task Tracking API returned an invalid response: ${where}: ${issue.message}`);
  }

  nextTask(project: string, status: string, call: CallContext): Promise<Task | null> {
    const query = new URLSearchParams({ project, status });
    return this.sendFor(NextTaskResponse, { method: "GET", path: `/tasks/next?${query}`, idempotent: false }, call).then(
      (body) => body.task,
    );
  }

  async updateStatus(id: string, status: string, completionNotes: string, call: CallContext): Promise<Task> {
    const request: ApiRequest = {
      method: "PUT",
      path: `/tasks/${encodeURIComponent(id)}/status`,
      body: { status, completion_notes: completionNotes },
      idempotent: true,
    };
    try {
      return (await this.sendFor(UpdatedTaskResponse, request, call)).updated_task;
    } catch (error) {
      if (!(error instanceof ToolFailure)) throw error;
      if (error.status === 404) throw new ToolFailure(`Task not found: ${id}`, 404, error.detail, error.code);
      if (error.status === 400) throw new ToolFailure(`Invalid status transition: ${error.detail}`, 400, error.detail, error.code);
      throw error;
    }
  }

  async nextId(type: string, project: string, call: CallContext): Promise<string> {
    const query = new URLSearchParams({ type, project });
    const body = await this.sendFor(NextIdResponse, { method: "GET", path: `/ids/next?${query}`, idempotent: true }, call);
    return body.next_id;
  }

  reserveIds(type: string, count: number, project: string, call: CallContext) {
    const request: ApiRequest = { method: "POST", path: "/ids/reserve", body: { type, count, project_id: project }, idempotent: true };
    return this.sendFor(ReservationResponse, request, call);
  }

  addTasks(tasks: TaskInput[], call: CallContext) {
    return this.sendFor(BatchResponse, { method: "POST", path: "/tasks/batch", body: { tasks }, idempotent: true }, call);
  }

  /**
   * Takes the next ready pending task for this agent: moves it to in_progress. Another agent may take
   * the same task between our read and our write (the service answers 400, or 404 if it vanished);
   * then we ask for the next one, a bounded number of times.
   */
  async claimNextTask(project: string, call: CallContext): Promise<Task | null> {
    for (let round = 1; round <= MAX_CLAIM_ROUNDS; round++) {
      const candidate = await this.nextTask(project, "pending", call);
      if (!candidate) return null;
      try {
        return await this.updateStatus(candidate.task_id, "in_progress", "", call);
      } catch (error) {
        const lostRace =
          error instanceof ToolFailure && (error.status === 404 || (error.status === 400 && error.code === "invalid_transition"));
        if (!lostRace) throw error;
      }
      await abortableSleep(claimPauseMs(round), call.signal);
    }
    throw new ToolFailure(
      `Could not claim a task in project ${project}: other agents took each of the next ${MAX_CLAIM_ROUNDS} tasks first. Call get_next_task again.`,
    );
  }

  /** GET /healthz, unauthenticated: the service's version, or a ToolFailure. */
  health(call: CallContext): Promise<{ status: string; version?: string }> {
    const schema = z.object({ status: z.string(), version: z.string().optional() });
    return this.sendFor(schema, { method: "GET", path: "/healthz", idempotent: false }, call);
  }
}

// ─── The MCP server ────────────────────────────────────────────────────────────────────────────

export interface ServerDeps {
  fetch?: typeof fetch;
  /** Where log lines go; stderr by default. */
  writeLog?: (line: string) => void;
  /** Aborted at shutdown: every call in flight is aborted with it. */
  shutdownSignal?: AbortSignal;
  /** Holds each tool call while it runs, so shutdown can wait for them. */
  inFlight?: Set<Promise<unknown>>;
  /** Called when a tool call has ended, however it ended. */
  afterCall?: () => void;
}

type ToolExtra = { signal: AbortSignal };

export function createServer(config: Config, deps: ServerDeps = {}): McpServer {
  const log = createLog(config.logLevel, createRedactor([config.apiKey]), deps.writeLog ?? ((line) => process.stderr.write(line)));
  const client = new TrackerClient(config, deps.fetch ?? fetch);
  const server = new McpServer(
    { name: NAME, version: VERSION },
    {
      instructions:
        "Task tracking and artifact IDs for this project live in a shared Task Tracking service, not in local TODO files. " +
        "Use get_next_task (claim: true to take it), update_task_status, add_task, get_next_available_id and reserve_id_range.",
    },
  );

  /** Runs one tool call: logs it once, returns data as structuredContent plus JSON text, or an isError result. */
  async function run<T extends Record<string, unknown>>(
    tool: string,
    params: Record<string, unknown>,
    extra: ToolExtra,
    work: (call: CallContext) => Promise<T>,
    summary?: (data: T) => string | undefined,
  ): Promise<CallToolResult> {
    const started = performance.now();
    const trace: CallTrace = { requestId: crypto.randomUUID(), attempts: 0 };
    const signal = deps.shutdownSignal ? AbortSignal.any([extra.signal, deps.shutdownSignal]) : extra.signal;
    const logCall = (level: LogLevel, outcome: Record<string, unknown>) =>
      log(level, {
        tool,
        params: paramsForLog(params),
        status: trace.status ?? null,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        attempts: trace.attempts,
        request_id: trace.requestId,
        ...outcome,
      });
    try {
      const working = work({ signal, trace });
      deps.inFlight?.add(working);
      const data = await working.finally(() => {
        deps.inFlight?.delete(working);
        deps.afterCall?.();
      });
      logCall("info", { outcome: "ok" });
      return { content: [{ type: "text", text: summary?.(data) ?? JSON.stringify(data) }], structuredContent: data };
    } catch (error) {
      if (error instanceof CancelledError) {
        logCall("info", { outcome: "cancelled" });
        throw error;
      }
      if (error instanceof ToolFailure) {
        logCall("warn", { outcome: "error", error: error.message });
        return { content: [{ type: "text", text: error.message }], isError: true };
      }
      logCall("error", { outcome: "bug", error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      return { content: [{ type: "text", text: "Internal error in task-tracking-mcp; see its log on stderr" }], isError: true };
    }
  }

  server.registerTool(
    "get_next_task",
    {
      title: "Get the next task",
      description:
        "Returns the next task of a project from the shared Task Tracking service, or null when none fits. " +
        "With status_filter \"pending\" (the default) it is the highest-priority task whose dependencies are all completed. " +
        "Call it when you are ready to start new work. Pass claim: true to take the task for yourself: it is moved to " +
        "in_progress so no other agent gets it; without claim it only reads and changes nothing.",
      inputSchema: {
        project_id: projectId.describe("Project ID, e.g. \"ai-agent-mcp-server\""),
        status_filter: taskStatus("status_filter").default("pending").describe("Which tasks to look at: pending (default), in_progress or completed"),
        claim: z
          .boolean()
          .default(false)
          .describe("true: take the task (move it to in_progress for this agent); only with status_filter \"pending\""),
      },
      outputSchema: { task: TaskSchema.nullable().describe("The task, or null when no task fits") },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ project_id, status_filter, claim }, extra) =>
      run(
        "get_next_task",
        { project_id, status_filter, claim },
        extra,
        async (call) => {
          if (claim && status_filter !== "pending") {
            throw new ToolFailure("claim: true works only with status_filter \"pending\"");
          }
          const task = claim ? await client.claimNextTask(project_id, call) : await client.nextTask(project_id, status_filter, call);
          return { task };
        },
        ({ task }) => (task ? undefined : `No ${status_filter} task is ready in project ${project_id}.`),
      ),
  );

  server.registerTool(
    "update_task_status",
    {
      title: "Update a task's status",
      description:
        "Moves a task through its life cycle: pending → in_progress (start it; only when its dependencies are completed), " +
        "in_progress → completed (finish it, with completion_notes saying what was done), or in_progress → pending (give it back). " +
        "Returns the updated task.",
      inputSchema: {
        task_id: taskId("task_id").describe("Task ID, e.g. \"TASK-051\""),
        status: taskStatus("status").describe("The new status: pending, in_progress or completed"),
        completion_notes: z
          .string()
          .max(10_000, "completion_notes must be at most 10000 characters")
          .default("")
          .describe("What was done (for completed); at most 10000 characters"),
      },
      outputSchema: { task: TaskSchema.describe("The task after the change") },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    ({ task_id, status, completion_notes }, extra) =>
      run("update_task_status", { task_id, status, completion_notes }, extra, async (call) => ({
        task: await client.updateStatus(task_id, status, completion_notes, call),
      })),
  );

  server.registerTool(
    "get_next_available_id",
    {
      title: "Allocate the next artifact ID",
      description:
        "Allocates the next ID of an artifact type in a project, e.g. \"US-028\" after US-027. The ID is yours: it is never " +
        "handed out again, to anyone. Call it once per new artifact (user story, spec, task…); for several at once use reserve_id_range.",
      inputSchema: {
        artifact_type: artifactType.describe("Artifact type: an upper-case letter then upper-case letters or digits, e.g. US, SPEC, TASK, HLS"),
        project_id: projectId.describe("Project ID, e.g. \"ai-agent-mcp-server\""),
      },
      outputSchema: { next_id: z.string().describe("The allocated ID, e.g. \"US-028\"") },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ artifact_type, project_id }, extra) =>
      run("get_next_available_id", { artifact_type, project_id }, extra, async (call) => ({
        next_id: await client.nextId(artifact_type, project_id, call),
      })),
  );

  server.registerTool(
    "reserve_id_range",
    {
      title: "Reserve a range of artifact IDs",
      description:
        "Reserves count contiguous IDs of an artifact type in a project in one step, e.g. US-028 … US-033, when you are about to " +
        "create several artifacts. The IDs are never handed out again. Returns the reservation with its IDs and expiry time.",
      inputSchema: {
        artifact_type: artifactType.describe("Artifact type: an upper-case letter then upper-case letters or digits, e.g. US, SPEC, TASK, HLS"),
        count: z
          .number({ error: "count must be a whole number from 1 to 100" })
          .int("count must be a whole number from 1 to 100")
          .min(1, "count must be at least 1")
          .max(100, "count must be at most 100")
          .describe("How many IDs, 1-100"),
        project_id: projectId.describe("Project ID, e.g. \"ai-agent-mcp-server\""),
      },
      outputSchema: ReservationShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ artifact_type, count, project_id }, extra) =>
      run("reserve_id_range", { artifact_type, count, project_id }, extra, (call) =>
        client.reserveIds(artifact_type, count, project_id, call),
      ),
  );

  server.registerTool(
    "add_task",
    {
      title: "Add tasks",
      description:
        "Adds 1-500 new tasks in one all-or-nothing batch: if any task is invalid or its task_id exists, none is added. " +
        "Each task needs task_id, project_id and description; priority (high, medium, low) and depends_on (task_ids that must be " +
        "completed first, existing or in the same batch) set the order in which get_next_task hands them out.",
      inputSchema: {
        tasks: z
          .array(TaskInputSchema)
          .min(1, "tasks must hold at least 1 task")
          .max(500, "tasks may hold at most 500 tasks")
          .describe("The tasks to add, 1-500"),
      },
      outputSchema: BatchShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    ({ tasks }, extra) =>
      run("add_task", { tasks }, extra, (call) => client.addTasks(tasks, call)),
  );

  return server;
}

// ─── The command line ──────────────────────────────────────────────────────────────────────────

const HELP = `${NAME} ${VERSION}: an MCP server (stdio) for the Task Tracking service.

Usage:
  ${NAME}             serve MCP over stdin/stdout (an MCP client such as Claude Code starts it)
  ${NAME} doctor      check the configuration, reach the service, prove the API key
  ${NAME} --version   print the version
  ${NAME} --help      print this help

Environment:
  TASK_TRACKING_API_KEY     required: the service's bearer key
  TASK_TRACKING_URL         base URL (default http://localhost:8080)
  TASK_TRACKING_TIMEOUT_MS  per attempt (default 5000)
  TASK_TRACKING_AGENT_ID    this agent's name, recorded on the tasks it claims (optional)
  LOG_LEVEL                 debug, info (default), warn or error; logs are JSON lines on stderr

Claude Code:
  claude mcp add task-tracking --env TASK_TRACKING_API_KEY=... -- /path/to/${NAME}
`;

/** `doctor`: each check in plain words; exit code 0 only if all is well. Never prints the key. */
export async function doctor(env: Record<string, string | undefined>, print: (line: string) => void, fetchImpl: typeof fetch = fetch): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    print(`✗ configuration: ${(error as Error).message}`);
    print("  Set it in the env block of your MCP client's configuration (see --help).");
    return 1;
  }
  print(`✓ configuration: service ${config.displayUrl}, timeout ${config.timeoutMs} ms, key set (${config.apiKey.length} characters)`);
  const client = new TrackerClient({ ...config, timeoutMs: Math.min(config.timeoutMs, 5000) }, fetchImpl);
  const call = (): CallContext => ({ signal: new AbortController().signal, trace: { requestId: crypto.randomUUID(), attempts: 0 } });
  try {
    const health = await client.health(call());
    print(`✓ service reachable: ${config.displayUrl}/healthz says ${health.status}${health.version ? `, version ${health.version}` : ""}`);
  } catch (error) {
    print(`✗ service: ${(error as Error).message}`);
    print("  Is the service running at that address? Start the local one with `bun run tracker`, or set TASK_TRACKING_URL.");
    return 1;
  }
  try {
    await client.nextTask("task-tracking-mcp-doctor", "pending", call());
    print("✓ API key accepted (a read-only call succeeded)");
    return 0;
  } catch (error) {
    const failure = error as ToolFailure;
    print(`✗ API key: ${failure.message}`);
    if (failure.status === 401) print("  The service rejected the key: set TASK_TRACKING_API_KEY to one of the service's keys.");
    return 1;
  }
}

/**
 * From here on stdout belongs to the MCP transport alone: console output and stray writes of any
 * module go to stderr, so they cannot corrupt the protocol stream.
 */
export function reserveStdoutForProtocol(): Writable {
  const stdout = process.stdout;
  const writeProtocol = stdout.write.bind(stdout);
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = console.info = console.debug = console.dir = console.table = console.trace = toStderr;
  stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    (process.stderr.write as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof stdout.write;
  return new Proxy(stdout, {
    get: (target, property) => (property === "write" ? writeProtocol : Reflect.get(target, property, target)),
  });
}

/**
 * The SDK's stdio transport closes for good when one line outgrows its 10 MiB buffer. No valid message
 * comes near that (the service takes bodies up to 1 MiB), so such a line is dropped here instead: the
 * part already passed on is ended with a newline, which the SDK rejects as one malformed message, and
 * the rest is skipped up to the next newline. The server goes on serving.
 */
const MAX_STDIN_LINE_BYTES = 8 * 1024 * 1024;

export function dropOversizedLines(onDrop: (bytes: number) => void, maxLineBytes = MAX_STDIN_LINE_BYTES): Transform {
  let lineBytes = 0;
  let dropping = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const kept: Buffer[] = [];
      for (let start = 0; start < chunk.length; ) {
        const newline = chunk.indexOf(10, start);
        const end = newline === -1 ? chunk.length : newline + 1;
        lineBytes += end - start;
        if (!dropping && lineBytes > maxLineBytes) {
          dropping = true;
          kept.push(Buffer.from("\n"));
        }
        if (!dropping) kept.push(chunk.subarray(start, end));
        if (newline !== -1) {
          if (dropping) onDrop(lineBytes);
          dropping = false;
          lineBytes = 0;
        }
        start = end;
      }
      done(null, kept.length === 1 ? kept[0] : Buffer.concat(kept));
    },
  });
}

/** How long calls in flight may go on after stdin closes or a signal arrives, before they are aborted. */
const SHUTDOWN_GRACE_MS = 2000;

/**
 * Bun collects garbage under allocation pressure, and much of a call's garbage is native memory that
 * pressure does not see (fetch's buffers, responses): after a burst of calls RSS stayed tens of MB
 * above start-up for good. A full collection once no call has come for a second gives it back, at a
 * moment nobody waits (bench/, section 3).
 */
const IDLE_COLLECTION_MS = 1000;

async function serve(config: Config): Promise<void> {
  const protocolOut = reserveStdoutForProtocol();
  const log = createLog(config.logLevel, createRedactor([config.apiKey]), (line) => process.stderr.write(line));
  const shutdown = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const idleCollection = setTimeout(() => Bun.gc(true), IDLE_COLLECTION_MS).unref();
  const server = createServer(config, { shutdownSignal: shutdown.signal, inFlight, afterCall: () => idleCollection.refresh() });
  const input = process.stdin.pipe(
    dropOversizedLines((bytes) => log("warn", { msg: `dropped a message of ${bytes} bytes from the client: over the ${MAX_STDIN_LINE_BYTES}-byte limit` })),
  );
  const transport = new StdioServerTransport(input, protocolOut);
  server.server.onerror = (error) => log("warn", { msg: `ignored a malformed message from the client: ${error.message.slice(0, 300)}` });

  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log("info", { msg: `stopping: ${reason}` });
    const abortLate = setTimeout(() => shutdown.abort(), SHUTDOWN_GRACE_MS);
    await Promise.allSettled([...inFlight]);
    clearTimeout(abortLate);
    await new Promise((resolve) => setImmediate(resolve)); // lets the SDK write the last answers
    await server.close().catch(() => {});
    process.exit(0);
  };
  process.stdin.on("end", () => void stop("stdin closed"));
  process.stdin.on("close", () => void stop("stdin closed"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGHUP", () => void stop("SIGHUP"));

  await server.connect(transport);
  log("info", { msg: `${NAME} ${VERSION} ready`, url: config.displayUrl });
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<number | undefined> {
  const command = argv[0];
  if (command === "--version" || command === "-v") {
    console.log(`${NAME} ${VERSION}`);
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(HELP);
    return 0;
  }
  if (command === "doctor") return doctor(process.env, (line) => console.log(line));
  if (command !== undefined) {
    console.error(`${NAME}: unknown argument ${JSON.stringify(command)}; see ${NAME} --help`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  await serve(config);
  return undefined; // keeps serving until stdin closes or a signal arrives
}

if (import.meta.main) {
  const code = await main();
  if (code !== undefined) process.exit(code);
}
