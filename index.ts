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
import { basename } from "node:path";
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
  method: "GET" | "PUT" | "POST" | "PATCH";
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

// ─── Import and export ─────────────────────────────────────────────────────────────────────────
//
// `import FILE --project P [--dry-run]` turns a markdown task list, a `gh issue list --json` dump or
// one of our exports into tasks; `export --project P [--format markdown|json]` writes a project out
// in a form that imports back. The README's "Import and export" describes both formats for users.

/** A task as a file describes it, before it meets the tracker. `line`: where the file says it (0: nowhere, e.g. JSON). */
export interface FileTask {
  task_id: string;
  line: number;
  status: "pending" | "completed";
  priority: (typeof PRIORITIES)[number];
  description: string;
  depends_on: string[];
  inputs: string[];
  outputs: string[];
  completion_notes: string;
}

export interface FileProblem {
  /** 0 when the problem has no line (JSON input names its item instead). */
  line: number;
  message: string;
}

/** A file's tasks in file order, the highest number it uses of each artifact type, and what is wrong with it. */
export interface ParsedFile {
  format: "markdown" | "github" | "export";
  tasks: FileTask[];
  counters: Map<string, { number: number; line: number }>;
  problems: FileProblem[];
}

/** Of a description and of completion notes. */
const MAX_TEXT = 10_000;
const MAX_SECTION_TEXT = 1_000;
/** The IDs people give their tasks and artifacts: an upper-case type, a dash, a number (`TASK-12`, `US-027`). */
const ARTIFACT_ID = /^([A-Z][A-Z0-9]*)-(\d{1,9})$/;
/** The same in running text, with three digits at least (the registry pads to three), which keeps `UTF-8` and `HTTP-2` out. */
const ARTIFACT_MENTION = /(?<![A-Za-z0-9_-])([A-Z][A-Z0-9]{0,15})-(\d{3,9})(?![A-Za-z0-9_-])/g;
const EXPORT_MARKER = "<!-- task-tracking-mcp export";
const PRIORITY_SUFFIX = /\s*\((high|medium|low)\)$/;
const LIST_ITEM = /^([-*+]|\d{1,9}[.)])(?:\s+(.*)|$)/;
const CHECKBOX = /^\[([ xX])\](?:\s+(.*)|$)/;
/** `[]`, `[-]`, `[ x]`, `[v]`: meant as a checkbox but not one. A link (`[text](url)`, `[text][ref]`) is not meant. */
const NOT_A_CHECKBOX = /^\[([^\]]{0,3})\](?![(\[:])/;
/** An item's own ID: `TASK-012:`, `**TASK-012**`, `**TASK-012:**`, or any task ID in a bold code span, `` **`login-form`** ``. */
const ITEM_ID = /^(?:\*\*`([^`]*)`\*\*|\*\*([A-Z][A-Z0-9]*-\d+):?\*\*:?|([A-Z][A-Z0-9]*-\d+):)(?:\s+|$)/;
const METADATA = /^[-*+]\s+(depends on|inputs|outputs|completion notes|held by):(?:\s+(.*)|$)/i;
const FENCE = /^(`{3,}|~{3,})/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?$/;

const indentOf = (text: string) => /^\s*/.exec(text)![0].replace(/\t/g, "    ").length;
const isTaskId = (id: string) => id.length <= 64 && ID_CHARACTERS.test(id);
const firstLineOf = (text: string) => text.split("\n", 1)[0]!;
const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

/** Descriptions as an editor leaves them: no trailing spaces, no trailing blank lines. */
export function normalizeDescription(text: string): string {
  return text.split("\n").map((line) => line.trimEnd()).join("\n").trimEnd();
}

/** `md-` and 10 hex digits of sha256 over the item's place (headings, enclosing plain items, its parent's ID) and text. */
export function derivedTaskId(path: string[], text: string): string {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update([...path, text].map((part) => part.replace(/\s+/g, " ").trim()).join("\n"));
  return `md-${hasher.digest("hex").slice(0, 10)}`;
}

function raiseCounter(counters: ParsedFile["counters"], type: string, number: number, line: number): void {
  if (!ARTIFACT_TYPE.test(type)) return;
  if ((counters.get(type)?.number ?? -1) < number) counters.set(type, { number, line });
}

/** Notes the artifact IDs `text` mentions outside code spans, link targets and URLs. */
function noteArtifactIds(text: string, line: number, counters: ParsedFile["counters"]): void {
  const prose = text.replace(/`[^`]*`/g, " ").replace(/\]\([^)]*\)/g, "]").replace(/<?https?:\/\/\S+/g, " ");
  for (const [, type, digits] of prose.matchAll(ARTIFACT_MENTION)) raiseCounter(counters, type!, Number(digits), line);
}

/** Whether a line of a description would read back as something other than text (the export escapes it with `\`). */
function looksLikeMarkup(text: string): boolean {
  const item = LIST_ITEM.exec(text);
  if (item && (CHECKBOX.test(item[2] ?? "") || NOT_A_CHECKBOX.test(item[2] ?? "") || METADATA.test(text))) return true;
  if (/^[-*+]\[/.test(text)) return true;
  return text.startsWith("\\") && looksLikeMarkup(text.slice(1));
}

/** Escapes the lines of a description or note that would read back as markup; code blocks stay as they are. */
function escapeLines(lines: string[]): string[] {
  let fence: string | undefined;
  return lines.map((line) => {
    const content = line.trimStart();
    if (fence) {
      if (content.startsWith(fence)) fence = undefined;
      return line;
    }
    fence = FENCE.exec(content)?.[1];
    return fence ? line : escapeLine(line);
  });
}

function escapeLine(line: string): string {
  const indent = /^\s*/.exec(line)![0];
  return looksLikeMarkup(line.slice(indent.length)) ? `${indent}\\${line.slice(indent.length)}` : line;
}

function unescapeLine(line: string): string {
  const indent = /^\s*/.exec(line)![0];
  const rest = line.slice(indent.length);
  return rest.startsWith("\\") && looksLikeMarkup(rest.slice(1)) ? indent + rest.slice(1) : line;
}

interface Section {
  path: string[];
  text: string[];
}

interface MetadataEntry {
  key: string;
  line: number;
  lines: string[];
  contentColumn: number;
}

interface DraftTask extends FileTask {
  /** The item's lines after its first, dedented. */
  body: string[];
  contentColumn: number;
  section: Section;
  metadata: MetadataEntry[];
}

/** The list items open at the current line, innermost last. */
type OpenBlock =
  | { kind: "task"; indent: number; task: DraftTask }
  | { kind: "plain"; indent: number; text: string }
  | { kind: "metadata"; indent: number; entry: MetadataEntry };

/** Reads a markdown file line by line (GitHub-flavoured task lists); see parseMarkdown. */
class MarkdownReader {
  readonly parsed: ParsedFile = { format: "markdown", tasks: [], counters: new Map(), problems: [] };
  private readonly drafts: DraftTask[] = [];
  private readonly headings: string[] = [];
  private section: Section = { path: [], text: [] };
  private readonly open: OpenBlock[] = [];
  private fence?: { marker: string; owner: OpenBlock | undefined };
  private blankLines = 0;

  /** An export of ours: its headings are status groups, not context for the tasks under them. */
  constructor(readonly isExport: boolean) {
    if (isExport) this.parsed.format = "export";
  }

  private problem(line: number, message: string): void {
    this.parsed.problems.push({ line, message });
  }

  readLine(raw: string, line: number): void {
    const text = raw.trimEnd();
    if (this.fence) {
      const { marker, owner } = this.fence;
      // A code block inside a list item ends with the item, closed or not.
      const itemEnded = owner !== undefined && text !== "" && indentOf(text) <= owner.indent;
      if (!itemEnded) {
        if (text.trimStart().startsWith(marker)) this.fence = undefined;
        return this.addText(text, owner, true);
      }
      this.fence = undefined;
    }
    if (!text) return this.addText("", this.open.at(-1));
    noteArtifactIds(text, line, this.parsed.counters);
    const indent = indentOf(text);
    while (this.open.length && this.open.at(-1)!.indent >= indent) this.open.pop();
    const content = text.trimStart();

    const heading = this.open.length === 0 ? HEADING.exec(text) : null;
    if (heading) return this.startSection(heading[1]!.length, heading[2] ?? "");
    const fence = FENCE.exec(content);
    if (fence) {
      this.fence = { marker: fence[1]!, owner: this.open.at(-1) };
      return this.addText(text, this.open.at(-1));
    }
    if (/^[-*+]\[[ xX]\]/.test(content)) return this.problem(line, `write a space between the list marker and the checkbox: ${JSON.stringify(content.slice(0, 40))}`);
    const item = LIST_ITEM.exec(content);
    if (!item) return this.addText(text, this.open.at(-1));
    this.listItem(content, item[1]!.length, item[2] ?? "", indent, line);
  }

  private startSection(level: number, title: string): void {
    this.blankLines = 0;
    this.headings.length = level - 1;
    this.headings[level - 1] = title.trim();
    this.section = { path: this.isExport ? [] : this.headings.filter(Boolean), text: [] };
  }

  private listItem(content: string, markerLength: number, itemText: string, indent: number, line: number): void {
    // Blank lines before a new task or metadata entry end the text before them: they belong to nobody.
    if (CHECKBOX.test(itemText) || METADATA.test(content)) this.blankLines = 0;
    const contentColumn = indent + markerLength + 1;
    const checkbox = CHECKBOX.exec(itemText);
    if (checkbox) {
      const task = this.taskItem(checkbox[1] === " " ? "pending" : "completed", (checkbox[2] ?? "").trim(), line, contentColumn);
      this.open.push({ kind: "task", indent, task });
      return;
    }
    if (/^\[[ xX]\]\S/.test(itemText)) return this.problem(line, `write a space after the checkbox: ${JSON.stringify(itemText.slice(0, 40))}`);
    const notACheckbox = NOT_A_CHECKBOX.exec(itemText);
    if (notACheckbox) {
      return this.problem(line, `"[${notACheckbox[1]}]" is not a task checkbox; write "[ ]" (pending) or "[x]" (completed)`);
    }
    const parent = this.open.at(-1);
    const metadata = parent?.kind === "task" ? METADATA.exec(content) : null;
    if (parent?.kind === "task" && metadata) {
      const entry: MetadataEntry = { key: metadata[1]!.toLowerCase(), line, lines: [metadata[2] ?? ""], contentColumn };
      parent.task.metadata.push(entry);
      this.open.push({ kind: "metadata", indent, entry });
      return;
    }
    this.addText(" ".repeat(indent) + content, parent);
    this.open.push({ kind: "plain", indent, text: itemText.trim() });
  }

  private taskItem(status: FileTask["status"], itemText: string, line: number, contentColumn: number): DraftTask {
    let text = itemText;
    let taskId: string | undefined;
    const idMatch = ITEM_ID.exec(text);
    if (idMatch) {
      taskId = idMatch[1] ?? idMatch[2] ?? idMatch[3]!;
      text = text.slice(idMatch[0].length).trim();
      if (!isTaskId(taskId)) this.problem(line, `${JSON.stringify(taskId)} is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -`);
      const artifact = ARTIFACT_ID.exec(taskId);
      if (artifact) raiseCounter(this.parsed.counters, artifact[1]!, Number(artifact[2]), line);
    }
    let priority: FileTask["priority"] = "medium";
    const priorityMatch = PRIORITY_SUFFIX.exec(text);
    if (priorityMatch) {
      priority = priorityMatch[1] as FileTask["priority"];
      text = text.slice(0, priorityMatch.index);
    }
    if (!text) this.problem(line, "the item has no text: write what is to be done after the checkbox");
    // A step's place is its parent's ID, not its text: rewording an item with an ID keeps its steps' IDs.
    const enclosing = this.open.flatMap((block) =>
      block.kind === "task" ? [block.task.task_id] : block.kind === "plain" ? [block.text] : [],
    );
    const parent = this.open.findLast((block) => block.kind === "task");
    const task: DraftTask = {
      task_id: taskId ?? derivedTaskId([...this.section.path, ...enclosing], text),
      line,
      status,
      priority,
      description: text,
      depends_on: [],
      inputs: [],
      outputs: [],
      completion_notes: "",
      body: [],
      contentColumn,
      section: this.section,
      metadata: [],
    };
    // A step of its parent: the parent waits for it.
    if (parent?.kind === "task") parent.task.depends_on.push(task.task_id);
    this.drafts.push(task);
    return task;
  }

  /**
   * A line of text belongs to the innermost open task or metadata entry, else to the section's text.
   * Blank lines outside code blocks wait for the next text, so they go where it goes.
   */
  private addText(text: string, innermost: OpenBlock | undefined, inCodeBlock = false): void {
    if (!text && !inCodeBlock) {
      this.blankLines++;
      return;
    }
    const owner = innermost?.kind === "plain" ? this.open.findLast((block) => block.kind === "task") : innermost;
    const blanks = Array<string>(this.blankLines).fill("");
    this.blankLines = 0;
    const dedent = (column: number) => {
      const line = text.replace(new RegExp(`^ {0,${column}}`), "");
      return inCodeBlock ? line : unescapeLine(line);
    };
    if (owner?.kind === "metadata") owner.entry.lines.push(...blanks, dedent(owner.entry.contentColumn));
    else if (owner?.kind === "task") owner.task.body.push(...blanks, dedent(owner.task.contentColumn));
    else if (text.trim() && !this.isExport) this.section.text.push(text.trim());
  }

  finish(): ParsedFile {
    for (const draft of this.drafts) this.parsed.tasks.push(this.finishTask(draft));
    return this.parsed;
  }

  private finishTask(draft: DraftTask): FileTask {
    const { body, contentColumn: _, section, metadata, ...task } = draft;
    let description = normalizeDescription([task.description, ...body].join("\n"));
    const context = sectionContext(section);
    if (context) description += `\n\n${context}`;
    const result: FileTask = { ...task, description };
    for (const entry of metadata) {
      const value = normalizeDescription(entry.lines.join("\n"));
      if (entry.key === "completion notes") result.completion_notes = value;
      else if (entry.key === "inputs") result.inputs = value.split(/,\s*/).filter(Boolean);
      else if (entry.key === "outputs") result.outputs = value.split(/,\s*/).filter(Boolean);
      else if (entry.key === "depends on") {
        for (const id of value.split(/[,\s]+/).filter(Boolean)) {
          if (!isTaskId(id)) this.problem(entry.line, `depends on ${JSON.stringify(id)}, which is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -`);
          else if (!result.depends_on.includes(id)) result.depends_on.push(id);
        }
      }
    }
    return result;
  }
}

function sectionContext(section: Section): string {
  if (section.path.length === 0 && section.text.length === 0) return "";
  let text = section.text.join("\n");
  if (text.length > MAX_SECTION_TEXT) text = `${text.slice(0, MAX_SECTION_TEXT - 1)}…`;
  const title = section.path.length ? `Section: ${section.path.join(" › ")}` : "";
  return [title, text].filter(Boolean).join("\n");
}

/**
 * GitHub-flavoured markdown task lists: `- [ ]` is a pending task, `- [x]` a completed one; items
 * nested under an item are its steps (it depends on them); the headings above an item and their text
 * end its description. Code blocks are text. Problems carry the line they are on.
 */
export function parseMarkdown(text: string): ParsedFile {
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  const reader = new MarkdownReader(lines[0]?.startsWith(EXPORT_MARKER) ?? false);
  lines.forEach((line, index) => reader.readLine(line, index + 1));
  return checkFileTasks(reader.finish());
}

const GITHUB_PRIORITIES: Record<string, FileTask["priority"]> = {
  critical: "high", urgent: "high", high: "high", p0: "high", p1: "high",
  medium: "medium", normal: "medium", p2: "medium",
  low: "low", p3: "low", p4: "low",
};

const GitHubIssue = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullish(),
  state: z.string(),
  labels: z.array(z.object({ name: z.string() })).default([]),
});

/** What `gh issue list --state all --json number,title,body,state,labels` prints: task `gh-<number>` per issue. */
export function parseGitHubIssues(issues: unknown[]): ParsedFile {
  const parsed: ParsedFile = { format: "github", tasks: [], counters: new Map(), problems: [] };
  issues.forEach((value, index) => {
    const result = GitHubIssue.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      return parsed.problems.push({ line: 0, message: `issue ${index + 1} of the list: ${issue.path.join(".") || "the issue"}: ${issue.message}` });
    }
    const { number, title, body, state, labels } = result.data;
    const priorities = labels.flatMap(({ name }) => (/^priority:\s*/i.test(name) ? [name.replace(/^priority:\s*/i, "").toLowerCase()] : []));
    const priority = priorities.map((name) => GITHUB_PRIORITIES[name]).find(Boolean) ?? "medium";
    if (priorities.length && !priorities.some((name) => GITHUB_PRIORITIES[name])) {
      parsed.problems.push({ line: 0, message: `issue #${number}: label priority:${priorities[0]} is not a priority; use priority:high, priority:medium or priority:low` });
    }
    let description = normalizeDescription(`${title.trim()}\n\n${(body ?? "").replace(/\r\n?/g, "\n")}`);
    if (description.length > MAX_TEXT) description = `${description.slice(0, MAX_TEXT - 60)}\n\n…(cut: the rest is in issue #${number})`;
    if (!title.trim()) parsed.problems.push({ line: 0, message: `issue #${number} has no title` });
    noteArtifactIds(description, 0, parsed.counters);
    const closed = state.toUpperCase() === "CLOSED";
    parsed.tasks.push({
      task_id: `gh-${number}`,
      line: 0,
      status: closed ? "completed" : "pending",
      priority,
      description,
      depends_on: [],
      inputs: [],
      outputs: [],
      completion_notes: closed ? `Closed on GitHub as issue #${number}` : "",
    });
  });
  return checkFileTasks(parsed);
}

const ExportedTask = z.object({
  task_id: z.string(),
  description: z.string(),
  status: z.enum(TASK_STATUSES),
  priority: z.enum(PRIORITIES).default("medium"),
  depends_on: z.array(z.string()).default([]),
  inputs: z.array(z.string()).default([]),
  outputs: z.array(z.string()).default([]),
  completion_notes: z.string().default(""),
});

/** `export --format json` read back: its tasks as they were (an in-progress task comes back pending). */
export function parseExportJson(value: { tasks: unknown[] }): ParsedFile {
  const parsed: ParsedFile = { format: "export", tasks: [], counters: new Map(), problems: [] };
  value.tasks.forEach((item, index) => {
    const result = ExportedTask.safeParse(item);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      return parsed.problems.push({ line: 0, message: `tasks[${index}].${issue.path.join(".")}: ${issue.message}` });
    }
    const task = result.data;
    if (!isTaskId(task.task_id)) parsed.problems.push({ line: 0, message: `tasks[${index}].task_id ${JSON.stringify(task.task_id)} is not a valid task ID` });
    const artifact = ARTIFACT_ID.exec(task.task_id);
    if (artifact) raiseCounter(parsed.counters, artifact[1]!, Number(artifact[2]), 0);
    noteArtifactIds(task.description, 0, parsed.counters);
    const completed = task.status === "completed";
    parsed.tasks.push({ ...task, line: 0, status: completed ? "completed" : "pending", completion_notes: completed ? task.completion_notes : "" });
  });
  return checkFileTasks(parsed);
}

/** JSON by its first character (an array: `gh issue list`; an object with `tasks`: our export), markdown otherwise. */
export function parseTaskFile(text: string): ParsedFile {
  const start = text.replace(/^\uFEFF/, "").trimStart();
  if (!start.startsWith("[") && !start.startsWith("{")) return parseMarkdown(text);
  let value: unknown;
  try {
    value = JSON.parse(start);
  } catch (error) {
    const problem = { line: 0, message: `the file starts like JSON but is not: ${(error as Error).message}` };
    return { format: "github", tasks: [], counters: new Map(), problems: [problem] };
  }
  if (Array.isArray(value)) return parseGitHubIssues(value);
  if (value && typeof value === "object" && Array.isArray((value as { tasks?: unknown }).tasks)) return parseExportJson(value as { tasks: unknown[] });
  const problem = { line: 0, message: "JSON input must be the array `gh issue list --json number,title,body,state,labels` prints, or an object with tasks (an export)" };
  return { format: "github", tasks: [], counters: new Map(), problems: [problem] };
}

const where = (task: FileTask) => (task.line ? `line ${task.line}` : task.task_id);

/** What is wrong among the file's own tasks: a repeated ID, a dependency cycle, a completed task waiting for a pending one. */
function checkFileTasks(parsed: ParsedFile): ParsedFile {
  const byId = new Map<string, FileTask>();
  for (const task of parsed.tasks) {
    const first = byId.get(task.task_id);
    if (!first) byId.set(task.task_id, task);
    else if (task.task_id.startsWith("md-") && task.line) {
      parsed.problems.push({ line: task.line, message: `the item repeats the one on line ${first.line} (same text in the same place); reword one of them or give it an ID` });
    } else parsed.problems.push({ line: task.line, message: `task ID ${task.task_id} is used already (${where(first)})` });
  }
  for (const task of parsed.tasks) {
    const problem = (message: string) => parsed.problems.push({ line: task.line, message: `${task.task_id}: ${message}` });
    if (task.description.length > MAX_TEXT) problem(`its description is ${task.description.length} characters (its section's text included); at most ${MAX_TEXT}`);
    if (task.completion_notes.length > MAX_TEXT) problem(`its completion notes are ${task.completion_notes.length} characters; at most ${MAX_TEXT}`);
    if ([task.description, task.completion_notes, ...task.inputs, ...task.outputs].some((text) => text.includes("\0"))) problem("its text holds a NUL character");
  }
  for (const task of parsed.tasks) {
    if (task.status !== "completed") continue;
    for (const id of task.depends_on) {
      const step = byId.get(id);
      if (step?.status === "pending") {
        parsed.problems.push({ line: task.line, message: `${task.task_id} is checked but depends on ${id} (${where(step)}), which is not; a completed task may depend only on completed ones` });
      }
    }
  }
  const cycle = findCycle(parsed.tasks, byId);
  if (cycle) {
    const path = cycle.map((task) => `${task.task_id} (${where(task)})`).join(" → ");
    parsed.problems.push({ line: cycle[0]!.line, message: `dependency cycle: ${path} → ${cycle[0]!.task_id}` });
  }
  parsed.problems.sort((a, b) => a.line - b.line);
  return parsed;
}

/** The first cycle among the tasks' dependencies, as the tasks along it, or undefined. */
function findCycle(tasks: FileTask[], byId: Map<string, FileTask>): FileTask[] | undefined {
  const state = new Map<string, "visiting" | "done">();
  const stack: FileTask[] = [];
  const visit = (task: FileTask): FileTask[] | undefined => {
    if (state.get(task.task_id) === "done") return undefined;
    if (state.get(task.task_id) === "visiting") return stack.slice(stack.indexOf(task));
    state.set(task.task_id, "visiting");
    stack.push(task);
    for (const id of task.depends_on) {
      const next = byId.get(id);
      const cycle = next && visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(task.task_id, "done");
    return undefined;
  };
  for (const task of tasks) {
    const cycle = visit(task);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The tasks with every dependency before its dependents, otherwise in file order. */
function inDependencyOrder(tasks: FileTask[]): FileTask[] {
  const byId = new Map(tasks.map((task) => [task.task_id, task]));
  const ordered: FileTask[] = [];
  const placed = new Set<string>();
  const place = (task: FileTask) => {
    if (placed.has(task.task_id)) return;
    placed.add(task.task_id);
    for (const id of task.depends_on) {
      const dependency = byId.get(id);
      if (dependency) place(dependency);
    }
    ordered.push(task);
  };
  tasks.forEach(place);
  return ordered;
}

// What an import does to a project: computed from the file and the tracker, printed, then carried out.

export interface TaskEditPlan {
  task: FileTask;
  priority?: { from: string; to: string };
  description?: { from: string; to: string };
  /** Checked in the file, pending in the tracker: claimed and completed. */
  complete?: boolean;
}

export interface ImportPlan {
  add: FileTask[];
  edit: TaskEditPlan[];
  raise: { type: string; from: number; to: number; line: number }[];
  unchanged: number;
  /** What the import leaves as it is, and why. */
  notes: string[];
  problems: FileProblem[];
}

/** Compares the file with the tracker's tasks and counters: what to add, edit and raise, or why not. */
export function planImport(file: ParsedFile, existing: Task[], counters: Map<string, number>): ImportPlan {
  const tracked = new Map(existing.map((task) => [task.task_id, task]));
  const inFile = new Map(file.tasks.map((task) => [task.task_id, task]));
  const plan: ImportPlan = { add: [], edit: [], raise: [], unchanged: 0, notes: [], problems: [...file.problems] };
  const completedAfterImport = (id: string) => tracked.get(id)?.status === "completed" || inFile.get(id)?.status === "completed";

  for (const task of inDependencyOrder(file.tasks)) {
    for (const id of task.depends_on) {
      if (!inFile.has(id) && !tracked.has(id)) {
        plan.problems.push({ line: task.line, message: `${task.task_id} depends on ${id}, which is neither in the file nor in the project` });
      } else if (task.status === "completed" && !completedAfterImport(id) && !inFile.has(id)) {
        plan.problems.push({ line: task.line, message: `${task.task_id} is checked but depends on ${id}, which is ${tracked.get(id)!.status} in the project` });
      }
    }
    const current = tracked.get(task.task_id);
    if (!current) plan.add.push(task);
    else compareWithTracker(task, current, plan);
  }
  const gone = existing.filter((task) => task.task_id.startsWith("md-") && !inFile.has(task.task_id)).map((task) => task.task_id);
  if (gone.length && file.format === "markdown") {
    const shown = gone.slice(0, 5).join(", ") + (gone.length > 5 ? ", …" : "");
    plan.notes.push(`${plural(gone.length, "task")} of the project with a derived ID ${gone.length === 1 ? "is" : "are"} not in this file (an item reworded or moved, or another file's): ${shown}`);
  }
  for (const [type, { number, line }] of file.counters) {
    const from = counters.get(type) ?? 0;
    if (number > from) plan.raise.push({ type, from, to: number, line });
  }
  plan.problems.sort((a, b) => a.line - b.line);
  return plan;
}

function compareWithTracker(task: FileTask, current: Task, plan: ImportPlan): void {
  const edit: TaskEditPlan = { task };
  const description = normalizeDescription(task.description);
  const textChanged = description !== normalizeDescription(current.description);
  if (current.status === "completed") {
    if (textChanged || task.priority !== current.priority) {
      plan.notes.push(`${where(task)}: ${task.task_id} is completed in the project, so its text and priority stay as they are there`);
    }
  } else {
    if (textChanged) edit.description = { from: current.description, to: description };
    if (task.priority !== current.priority) edit.priority = { from: current.priority, to: task.priority };
    if (task.status === "completed" && current.status === "pending") edit.complete = true;
    if (task.status === "completed" && current.status === "in_progress") {
      plan.notes.push(`${where(task)}: ${task.task_id} is checked, but ${current.claimed_by ?? "an agent"} is working on it: it is left to its holder`);
    }
  }
  const dependencies = (ids: string[]) => [...ids].sort().join(", ");
  if (dependencies(task.depends_on) !== dependencies(current.depends_on)) {
    plan.notes.push(
      `${where(task)}: ${task.task_id} depends on ${dependencies(task.depends_on) || "nothing"} in the file, on ${dependencies(current.depends_on) || "nothing"} in the project; the tracker cannot change a task's dependencies`,
    );
  }
  if (edit.description || edit.priority || edit.complete) plan.edit.push(edit);
  else plan.unchanged++;
}

/** The batch endpoint takes 500 tasks and 1 MiB at most: batches in dependency order, under both. */
export function batchesOf(tasks: FileTask[], project: string, maxTasks = 500, maxBytes = 900_000): Record<string, unknown>[][] {
  const batches: Record<string, unknown>[][] = [];
  let batch: Record<string, unknown>[] = [];
  let bytes = 0;
  for (const task of tasks) {
    const input: Record<string, unknown> = {
      task_id: task.task_id,
      project_id: project,
      description: task.description,
      priority: task.priority,
      depends_on: task.depends_on,
      inputs: task.inputs,
      outputs: task.outputs,
      status: task.status,
      ...(task.status === "completed" ? { completion_notes: task.completion_notes } : {}),
    };
    const size = Buffer.byteLength(JSON.stringify(input)) + 1;
    if (batch.length && (batch.length === maxTasks || bytes + size > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(input);
    bytes += size;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

// The calls an import and an export make, through the same client (retries, timeouts, keys) as the tools.

const TaskPageResponse = z.object({ tasks: z.array(TaskSchema), next_cursor: z.string().nullable() });
const RegistryResponse = z.object({
  counters: z.array(z.object({ artifact_type: z.string(), last_assigned_id: z.number() })),
});

function cliCall(): CallContext {
  return { signal: new AbortController().signal, trace: { requestId: crypto.randomUUID(), attempts: 0 } };
}

async function sendChecked<T>(client: TrackerClient, schema: z.ZodType<T>, request: ApiRequest): Promise<T> {
  const result = schema.safeParse(await client.send(request, cliCall()));
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new ToolFailure(`Task Tracking API returned an invalid response: ${issue.path.join(".") || "the body"}: ${issue.message}`);
}

/** Every task of the project, page by page (GET /tasks, `next_cursor`). */
export async function listProjectTasks(client: TrackerClient, project: string): Promise<Task[]> {
  const tasks: Task[] = [];
  let cursor: string | null = null;
  do {
    const query: URLSearchParams = new URLSearchParams({ project, limit: "500", ...(cursor ? { cursor } : {}) });
    const page: z.infer<typeof TaskPageResponse> = await sendChecked(client, TaskPageResponse, { method: "GET", path: `/tasks?${query}`, idempotent: false });
    tasks.push(...page.tasks);
    cursor = page.next_cursor;
  } while (cursor);
  return tasks;
}

async function projectCounters(client: TrackerClient, project: string): Promise<Map<string, number>> {
  const query = new URLSearchParams({ project });
  const registry = await sendChecked(client, RegistryResponse, { method: "GET", path: `/ids/registry?${query}`, idempotent: false });
  return new Map(registry.counters.map((counter) => [counter.artifact_type, counter.last_assigned_id]));
}

/** What an import has done so far: if the service fails halfway, the user is told, and a re-run finishes it. */
interface ImportProgress {
  added: number;
  edited: number;
}

/**
 * Carries a plan out: the new tasks batch by batch in dependency order, then the edits (dependencies
 * first), then the counters. The file was checked whole before, so the service refuses nothing in it
 * unless the project changed meanwhile or the service fails; a re-run then does only what is left.
 */
async function applyPlan(client: TrackerClient, project: string, plan: ImportPlan, progress: ImportProgress): Promise<void> {
  const inProject = `?project=${encodeURIComponent(project)}`;
  for (const tasks of batchesOf(plan.add, project)) {
    await client.send({ method: "POST", path: "/tasks/batch", body: { tasks }, idempotent: true }, cliCall());
    progress.added += tasks.length;
  }
  for (const { task, priority, description, complete } of plan.edit) {
    const path = `/tasks/${encodeURIComponent(task.task_id)}`;
    if (priority || description) {
      const body = { ...(priority && { priority: priority.to }), ...(description && { description: description.to }) };
      await client.send({ method: "PATCH", path: path + inProject, body, idempotent: true }, cliCall());
    }
    if (complete) {
      const completed = { status: "completed", completion_notes: task.completion_notes };
      await client.send({ method: "PUT", path: `${path}/status${inProject}`, body: { status: "in_progress" }, idempotent: true }, cliCall());
      await client.send({ method: "PUT", path: `${path}/status${inProject}`, body: completed, idempotent: true }, cliCall());
    }
    progress.edited++;
  }
  for (const { type, to } of plan.raise) {
    const path = `/ids/registry/${encodeURIComponent(project)}/${encodeURIComponent(type)}`;
    try {
      await client.send({ method: "PUT", path, body: { last_assigned_id: to }, idempotent: true }, cliCall());
    } catch (error) {
      // 409: the counter went past it since we read it, so there is nothing to raise.
      if (!(error instanceof ToolFailure && error.status === 409)) throw error;
    }
  }
}

/** The plan in lines a person reads before (`--dry-run`) or after the import. */
export function describePlan(plan: ImportPlan, dryRun: boolean): string[] {
  const cut = (text: string, length = 70) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);
  const at = (task: FileTask) => (task.line ? `  (line ${task.line})` : "");
  const lines: string[] = [];
  const section = (title: string, count: number, noun: string) => {
    if (count) lines.push(`${dryRun ? "Would " + title.toLowerCase() : title} ${plural(count, noun)}:`);
  };
  section(dryRun ? "Add" : "Added", plan.add.length, "task");
  for (const task of plan.add) {
    const after = task.depends_on.length ? `  after ${task.depends_on.join(", ")}` : "";
    lines.push(`  + ${task.task_id.padEnd(14)} ${task.status.padEnd(9)} ${task.priority.padEnd(6)} ${cut(firstLineOf(task.description))}${after}${at(task)}`);
  }
  section(dryRun ? "Change" : "Changed", plan.edit.length, "task");
  for (const { task, priority, description, complete } of plan.edit) {
    const what = [
      priority && `priority ${priority.from} → ${priority.to}`,
      description && `description → ${JSON.stringify(cut(firstLineOf(description.to), 50))}${description.to.includes("\n") ? " (and more lines)" : ""}`,
      complete && "pending → completed",
    ].filter(Boolean);
    lines.push(`  ~ ${task.task_id.padEnd(14)} ${what.join("; ")}${at(task)}`);
  }
  section(dryRun ? "Raise" : "Raised", plan.raise.length, "ID counter");
  for (const { type, from, to, line } of plan.raise) {
    lines.push(`  ↑ ${type.padEnd(14)} ${from} → ${to} (next ${type}-${String(to + 1).padStart(3, "0")})${line ? `  (line ${line})` : ""}`);
  }
  for (const note of plan.notes) lines.push(`Note: ${note}`);
  const counts = `${plural(plan.add.length, "task")}, ${dryRun ? "change" : "changed"} ${plan.edit.length}, ${dryRun ? "raise" : "raised"} ${plural(plan.raise.length, "ID counter")}; ${plan.unchanged} already up to date`;
  lines.push(dryRun ? `Dry run, nothing was changed: would add ${counts}.` : `Done: added ${counts}.`);
  return lines;
}

export interface CliIo {
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  err: (line: string) => void;
  fetch?: typeof fetch;
}

/** The process's own environment, stdout and stderr. */
const cliIo = (): CliIo => ({ env: process.env, out: (line) => console.log(line), err: (line) => console.error(line) });

class UsageError extends Error {
  override name = "UsageError";
}

/** `[FILE] --project P --flag --option VALUE`, the one shape both commands take. */
function parseCliArguments(command: string, argv: string[], flags: string[], options: string[]) {
  const values: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    if (!argument.startsWith("--")) {
      positional.push(argument);
      continue;
    }
    const [name, inline] = argument.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flags.includes(name) && inline === undefined) values[name] = true;
    else if (options.includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${name} needs a value`);
      values[name] = value;
    } else throw new UsageError(`${command} does not take ${JSON.stringify(argument)}`);
  }
  const project = values["--project"];
  if (typeof project !== "string") throw new UsageError(`${command} needs --project P`);
  const checked = projectId.safeParse(project);
  if (!checked.success) throw new UsageError(`--project: ${checked.error.issues[0]!.message}`);
  return { values, positional, project };
}

const IMPORT_USAGE = `${NAME} import FILE --project P [--dry-run]`;
const EXPORT_USAGE = `${NAME} export --project P [--format markdown|json]`;

/**
 * A command's frame: its arguments (exit 2 when they are wrong), the configuration and one client,
 * and the service's failures (exit 1), each as one sentence on stderr.
 */
async function runCommand<T>(
  io: CliIo,
  usage: string,
  readArguments: () => T,
  work: (client: TrackerClient, args: T) => Promise<number>,
): Promise<number> {
  let args: T;
  try {
    args = readArguments();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${NAME}: ${error.message}\nUsage: ${usage}`);
    return 2;
  }
  try {
    return await work(new TrackerClient(loadConfig(io.env), io.fetch ?? fetch), args);
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof ToolFailure)) throw error;
    io.err(error.message);
    return 1;
  }
}

function readImportArguments(argv: string[]) {
  const { positional, project, values } = parseCliArguments("import", argv, ["--dry-run"], ["--project"]);
  if (positional.length !== 1) throw new UsageError(positional.length ? `import takes one FILE, not ${positional.length}` : "import needs a FILE");
  return { fileName: positional[0]!, project, dryRun: values["--dry-run"] === true };
}

/** `import FILE --project P [--dry-run]`: checks the whole file against the project first, and adds nothing when any of it is wrong. */
export function runImport(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, IMPORT_USAGE, () => readImportArguments(argv), async (client, { fileName, project, dryRun }) => {
    let text: string;
    try {
      text = await Bun.file(fileName).text();
    } catch (error) {
      io.err(`cannot read ${fileName}: ${(error as { code?: string }).code ?? (error as Error).message}`);
      return 1;
    }
    const file = parseTaskFile(text);
    for (const task of file.tasks) {
      if (file.format === "markdown" && task.status === "completed" && !task.completion_notes) task.completion_notes = `Checked in ${basename(fileName)}`;
    }
    const plan = file.problems.length
      ? undefined
      : planImport(file, await listProjectTasks(client, project), await projectCounters(client, project));
    const problems = plan?.problems ?? file.problems;
    if (problems.length) {
      for (const { line, message } of problems) io.err(`${fileName}${line ? `:${line}` : ""}: ${message}`);
      io.err(`Nothing was imported: ${plural(problems.length, "problem")} in ${fileName}.`);
      return 1;
    }
    if (file.tasks.length === 0) io.out(`${fileName} holds no task items ("- [ ] …" or "- [x] …" lines).`);
    const progress: ImportProgress = { added: 0, edited: 0 };
    if (!dryRun) {
      try {
        await applyPlan(client, project, plan!, progress);
      } catch (error) {
        if (progress.added || progress.edited) {
          io.err(`Stopped after adding ${progress.added} of ${plan!.add.length} tasks and changing ${progress.edited} of ${plan!.edit.length}. ` +
            "Run the same import again to finish: it adds and changes only what is still missing.");
        }
        throw error;
      }
    }
    for (const line of describePlan(plan!, dryRun)) io.out(line);
    return 0;
  });
}
/** A project as markdown grouped by status, which `import` reads back to the same tasks. */
export function renderMarkdown(project: string, tasks: Task[]): string {
  const groups: [string, Task["status"]][] = [["Pending", "pending"], ["In progress", "in_progress"], ["Completed", "completed"]];
  const lines = [
    `${EXPORT_MARKER}: project ${project}; \`${NAME} import FILE --project ${project}\` reads it back -->`,
    `# Tasks of ${project}`,
  ];
  for (const [title, status] of groups) {
    const inGroup = tasks.filter((task) => task.status === status);
    if (!inGroup.length) continue;
    lines.push("", `## ${title} (${inGroup.length})`, "");
    for (const task of inGroup) lines.push(...taskLines(task));
  }
  return lines.join("\n") + "\n";
}

function taskLines(task: Task): string[] {
  const id = ARTIFACT_ID.test(task.task_id) ? `**${task.task_id}**` : `**\`${task.task_id}\`**`;
  const [first = "", ...rest] = normalizeDescription(task.description).split("\n");
  const endsLikePriority = PRIORITY_SUFFIX.test(first);
  const priority = task.priority !== "medium" || endsLikePriority ? ` (${task.priority})` : "";
  const lines = [`- [${task.status === "completed" ? "x" : " "}] ${id} ${first}${priority}`];
  const metadata = (key: string, value: string) => {
    const [head, ...more] = value.split("\n");
    lines.push(`  - ${key}: ${head}`.trimEnd(), ...escapeLines(more).map((line) => (line ? `    ${line}` : "")));
  };
  if (task.depends_on.length) metadata("depends on", task.depends_on.join(", "));
  if (task.inputs.length) metadata("inputs", task.inputs.join(", "));
  if (task.outputs.length) metadata("outputs", task.outputs.join(", "));
  const lease = typeof task.lease_expires_at === "string" ? ` (lease until ${task.lease_expires_at})` : "";
  if (task.claimed_by) metadata("held by", task.claimed_by + lease);
  if (task.status === "completed" && task.completion_notes) metadata("completion notes", normalizeDescription(task.completion_notes));
  // After the metadata: a code block left open in the description then ends with the item, as in any markdown.
  for (const line of escapeLines(rest)) lines.push(line ? `  ${line}` : "");
  return lines;
}

function readExportArguments(argv: string[]) {
  const { positional, project, values } = parseCliArguments("export", argv, [], ["--project", "--format"]);
  if (positional.length) throw new UsageError(`export takes no FILE (it writes to stdout): ${JSON.stringify(positional[0])}`);
  const format = values["--format"] ?? "markdown";
  if (format !== "markdown" && format !== "json") throw new UsageError(`--format must be markdown or json, not ${JSON.stringify(format)}`);
  return { project, format };
}

/** `export --project P [--format markdown|json]`: every task of the project on stdout. */
export function runExport(argv: string[], io: CliIo): Promise<number> {
  return runCommand(io, EXPORT_USAGE, () => readExportArguments(argv), async (client, { project, format }) => {
    const tasks = await listProjectTasks(client, project);
    io.out(format === "json" ? JSON.stringify({ project_id: project, tasks }, null, 2) : renderMarkdown(project, tasks).trimEnd());
    return 0;
  });
}

// ─── The command line ──────────────────────────────────────────────────────────────────────────

const HELP = `${NAME} ${VERSION}: an MCP server (stdio) for the Task Tracking service.

Usage:
  ${NAME}             serve MCP over stdin/stdout (an MCP client such as Claude Code starts it)
  ${NAME} doctor      check the configuration, reach the service, prove the API key
  ${NAME} import FILE --project P [--dry-run]
                                add the tasks of a markdown task list, a \`gh issue list --json\` dump or an export
  ${NAME} export --project P [--format markdown|json]
                                print every task of a project (markdown imports back)
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
  if (command === "import") return runImport(argv.slice(1), cliIo());
  if (command === "export") return runExport(argv.slice(1), cliIo());
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
