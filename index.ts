#!/usr/bin/env bun
/**
 * task-tracking-mcp: an MCP server (stdio) that lets AI coding agents plan and track their work in a
 * Task Tracking service. Eight tools, two resource templates and two prompts, each a call of the
 * service's REST API (docs/API.md); what users see is docs/TOOLS.md. The tracker serves the same
 * createServer over HTTP at /mcp (tracker/http/mcp-sessions.ts), its client's fetch calling the tracker itself.
 *
 * The environment is read and checked once by loadConfig, in config.ts beside this file. Read top to bottom, one
 * section each:
 *   Logging                 JSON lines on stderr, every secret redacted
 *   The API's shapes        zod schemas of what the service sends and the tools take
 *   The HTTP client         TrackerClient: retries, timeouts, idempotency, error codes; knows nothing of MCP
 *   The claims              ClaimKeeper: renews the leases of the tasks this server holds
 *   The MCP server          createServer: the shared ServerContext, then the tools (one registration
 *                           each), the resources and the prompts
 *   Serving MCP over stdio  stdout for the protocol only, stdin guarded, a clean shutdown (serve)
 *   doctor                  the configuration, the service and the key, checked in plain words
 *   The command line        --help, --version, doctor, serve (main); `import` and `export` live in
 *                           transfer.ts and `prime` in prime.ts, each loaded only when it runs
 */
import { type Readable, Transform, type Writable } from "node:stream";
// zod before the SDK: the build wraps zod in a lazy initialiser (transfer.ts, loaded on demand, uses it too) that only
// an import placed first runs before the SDK makes its schemas; without it the binary fails at start. biome.json keeps it.
import { z } from "zod";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult, ReadResourceResult } from "@modelcontextprotocol/sdk/types.js";
import {
  type Config,
  ConfigError,
  ID_CHARACTERS,
  isSet,
  LOG_LEVELS,
  type LogLevel,
  loadConfig,
  NO_API_KEY,
  ONLY_DOTS,
  withoutCredentials,
} from "./config.ts";
import packageJson from "./package.json" with { type: "json" };
import type { PrimeHost } from "./prime.ts";
import { localTrackerKeyFile } from "./tracker/data-dir.ts";
import type { TransferHost } from "./transfer.ts";

export const NAME = "task-tracking-mcp";
export const VERSION: string = packageJson.version;
export { type Config, ConfigError, type ConfigSources, ID_CHARACTERS, loadConfig, ONLY_DOTS } from "./config.ts";

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
    write(`${redact(JSON.stringify({ ts: new Date().toISOString(), level, ...fields }))}\n`);
  };
}

const MAX_LOGGED_PARAMS = 1000;

/** A bug's stack, for the log. */
const stackOf = (error: unknown) => (error instanceof Error ? (error.stack ?? error.message) : String(error));

function paramsForLog(params: unknown): unknown {
  const text = JSON.stringify(params) ?? "";
  return text.length <= MAX_LOGGED_PARAMS ? params : `${text.slice(0, MAX_LOGGED_PARAMS)}…(cut)`;
}

// ─── The API's shapes (docs/API.md) ────────────────────────────────────────────────────────────

export const ARTIFACT_TYPE = /^[A-Z][A-Z0-9]{0,15}$/;
export const TASK_STATUSES = ["pending", "in_progress", "completed", "cancelled"] as const;
/** What get_next_task may look for: a cancelled task is never handed out. */
const NEXT_STATUSES = ["pending", "in_progress", "completed"] as const;
export const PRIORITIES = ["high", "medium", "low"] as const;

/** A project or task ID as the service takes it; never only dots, which a URL reads as a path step. */
const identifier = (field: string, maxLength: number) =>
  z
    .string()
    .min(1, `${field} must not be empty`)
    .max(maxLength, `${field} must be at most ${maxLength} characters`)
    .regex(ID_CHARACTERS, `${field} may hold only A-Z a-z 0-9 . _ -`)
    .refine((id) => !ONLY_DOTS.test(id), `${field} must not be made only of dots`);
export const projectId = identifier("project_id", 128);
const taskId = (field: string) => identifier(field, 64);
const artifactType = z
  .string()
  .regex(
    ARTIFACT_TYPE,
    "artifact_type must be an upper-case letter then up to 15 upper-case letters or digits, e.g. US, SPEC, TASK",
  );
const oneOf = <T extends readonly [string, ...string[]]>(field: string, values: T) =>
  z.enum(values, { error: `${field} must be one of ${values.join(", ")}` });
/** 1-based positions of acceptance criteria. */
const positions = (field: string) =>
  z
    .array(
      z
        .number()
        .int(`${field} holds criterion positions, whole numbers`)
        .min(1, `${field} positions start at 1`)
        .max(50, `${field} positions go up to 50`),
    )
    .min(1, `${field} must name at least 1 criterion`)
    .max(50, `${field} may name at most 50 criteria`);
/** A text of 1 to `max` characters; `field` names it in the errors. */
const boundedText = (field: string, max: number) =>
  z.string().min(1, `${field} must not be empty`).max(max, `${field} must be at most ${max} characters`);
const labelName = boundedText("a label", 40);
const labelList = z.array(labelName).max(20, "labels must hold at most 20 names");
const NoteSchema = z.looseObject({ at: z.string(), by: z.string().nullable(), text: z.string() });
const CriterionSchema = z.looseObject({ text: z.string(), done: z.boolean() });

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
  // Absent from a service of the first contract, which has no leases.
  lease_expires_at: z.string().nullable().optional(),
  completion_notes: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  // Absent from a tracker before 0.3 (issue 21); `notes` only in GET /tasks/<id> and a claim's answer.
  labels: z.array(z.string()).optional(),
  parent_id: z.string().nullable().optional(),
  acceptance_criteria: z.array(CriterionSchema).optional(),
  notes_count: z.number().int().optional(),
  last_note: NoteSchema.nullable().optional(),
  notes: z.array(NoteSchema).optional(),
  children: z.looseObject({ total: z.number().int(), done: z.number().int() }).optional(),
  released_by: z.string().nullable().optional(),
  match: z.looseObject({ snippet: z.string() }).optional(),
});
export type Task = z.infer<typeof TaskSchema>;
/** A task as a tool's outputSchema declares it: the fields a model branches on; the rest as docs/API.md gives it. */
const TaskOutput = z.looseObject({ task_id: z.string(), status: z.string() });

const TaskInputSchema = z.strictObject({
  task_id: taskId("task_id").optional().describe("Left out: the next TASK-nnn"),
  project_id: projectId.describe("Project ID"),
  description: boundedText("description", 10_000).describe("What to do"),
  inputs: z.array(z.string()).optional().describe('Artifacts the task reads, e.g. ["US-053"]'),
  outputs: z.array(z.string()).optional().describe('Artifacts the task produces, e.g. ["index.ts"]'),
  priority: z
    .enum(PRIORITIES, { error: "priority must be one of high, medium, low" })
    .optional()
    .describe("high, medium (default) or low"),
  depends_on: z.array(taskId("depends_on entry")).optional().describe("task_ids to be completed first"),
  labels: labelList.optional().describe('Up to 20 labels, e.g. ["backend", "bug"]'),
  parent_id: taskId("parent_id").optional().describe("The parent task (an epic), existing or in this batch"),
  acceptance_criteria: z
    .array(boundedText("a criterion", 1000))
    .max(50, "acceptance_criteria may hold at most 50 criteria")
    .optional()
    .describe("Checks to tick off before it can be completed"),
});
export type TaskInput = z.infer<typeof TaskInputSchema>;

/** What list_tasks and the project resource show of a task: enough to choose, few tokens. */
const CompactTaskShape = {
  task_id: z.string(),
  status: z.enum(TASK_STATUSES),
  priority: z.enum(PRIORITIES),
  description: z.string().describe("The first line of the description, cut to 100 characters"),
  depends_on: z.array(z.string()),
  claimed_by: z.string().nullable(),
  lease_expires_at: z.string().nullable(),
  labels: z.array(z.string()),
  criteria: z.string().nullable().describe('Acceptance criteria ticked off, e.g. "2/5"; null when it has none'),
  match: z.string().optional().describe("Where the query matched, the matched words in [ ]"),
};
type CompactTask = z.infer<z.ZodObject<typeof CompactTaskShape>>;

const MAX_SHOWN_DESCRIPTION = 100;

/** A description's first line, cut to MAX_SHOWN_DESCRIPTION characters. */
function firstLine(description: string): string {
  const line = description.trim().split("\n", 1)[0]!.trim();
  return line.length <= MAX_SHOWN_DESCRIPTION ? line : `${line.slice(0, MAX_SHOWN_DESCRIPTION - 1)}…`;
}

/**
 * What a listed task must carry for its line (compactTask), checked field by field; the rest of it is
 * neither read nor checked nor kept. A plain object, not a loose one, never walks the other fields:
 * checking a page of 50 whole tasks took a third of the server's time for list_tasks.
 */
const ListedTaskSchema = z.object(TaskSchema.shape).pick({
  task_id: true,
  status: true,
  priority: true,
  description: true,
  depends_on: true,
  claimed_by: true,
  lease_expires_at: true,
  labels: true,
  acceptance_criteria: true,
  match: true,
});
type ListedTask = z.infer<typeof ListedTaskSchema>;

function compactTask(task: ListedTask): CompactTask {
  const compact: CompactTask = {
    task_id: task.task_id,
    status: task.status,
    priority: task.priority,
    description: firstLine(task.description),
    depends_on: task.depends_on,
    claimed_by: task.claimed_by,
    lease_expires_at: task.lease_expires_at ?? null,
    labels: task.labels ?? [],
    criteria: criteriaProgress(task),
  };
  if (task.match) compact.match = task.match.snippet;
  return compact;
}

/** `2/5`: acceptance criteria ticked off of all; null without any. */
function criteriaProgress({ acceptance_criteria: criteria = [] }: ListedTask): string | null {
  return criteria.length ? `${criteria.filter((criterion) => criterion.done).length}/${criteria.length}` : null;
}

// The responses, checked before anything reaches the model.
const NextTaskResponse = z.object({ task: TaskSchema.nullable() });
const UpdatedTaskResponse = z.object({ updated_task: TaskSchema });
const TaskResponse = z.object({ task: TaskSchema });
const NoteResponse = z.object({ note: NoteSchema, task: TaskSchema });
const TaskPageResponse = z.object({ tasks: z.array(TaskSchema), next_cursor: z.string().nullable() });
const ListedTaskPageResponse = z.object({ tasks: z.array(ListedTaskSchema), next_cursor: z.string().nullable() });
const EventsResponse = z.object({ events: z.array(z.looseObject({ type: z.string(), at: z.string() })) });
const ProjectSummary = z.looseObject({
  project_id: z.string(),
  ready: z.number().int(),
  blocked: z.number().int(),
  in_progress: z.number().int(),
  completed: z.number().int(),
  cancelled: z.number().int().optional(), // since issue 21
  last_change_at: z.string().nullable().optional(),
});
type ProjectSummary = z.infer<typeof ProjectSummary>;
const ProjectsResponse = z.object({ projects: z.array(ProjectSummary) });
const NextIdResponse = z.object({ next_id: z.string() });
const ReservationShape = {
  reservation_id: z.string(),
  reserved_ids: z.array(z.string()),
  expires_at: z.string().describe("When the reservation shows as expired (its IDs are never reissued)"),
};
const ReservationResponse = z.object(ReservationShape);
const BatchShape = { success: z.boolean(), tasks_added: z.number().int().min(0).max(500), task_ids: z.array(z.string()) };
const BatchResponse = z.object(BatchShape);

// ─── The HTTP client: knows the API, retries and timeouts; knows nothing of MCP ────────────────

/** When the service answered: its HTTP status, its own sentence and code; else the network error's code. */
export type FailureInfo = { status?: number; detail?: string; code?: string; network?: string };

/** A failure whose message is the exact sentence the model sees (docs/TOOLS.md, Errors). */
export class ToolFailure extends Error {
  override name = "ToolFailure";
  readonly status?: number;
  readonly detail?: string;
  readonly code?: string;
  constructor(
    message: string,
    readonly info: FailureInfo = {},
  ) {
    super(message);
    ({ status: this.status, detail: this.detail, code: this.code } = info);
  }
}

class CancelledError extends Error {
  override name = "CancelledError";
  override message = "The tool call was cancelled";
}

const RETRY_DELAYS_MS = [100, 200, 400];
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
/** A 409 that means "the same request is still running": retried with the same Idempotency-Key. */
const RETRYABLE_CODES = new Set(["idempotency_in_flight"]);
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
  EPROTO: "TLS handshake failed",
  ERR_SSL_WRONG_VERSION_NUMBER: "TLS handshake failed",
  CERT_HAS_EXPIRED: "TLS certificate has expired",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS certificate is self-signed",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS certificate could not be verified",
};

/** fetch() rejects with a TypeError carrying a string `code` when the network fails. */
function networkCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== "TypeError") return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

function retryAfterMs(response: Response, now: number): number | undefined {
  if (!RETRY_AFTER_STATUSES.has(response.status)) return undefined;
  const header = response.headers.get("retry-after")?.trim();
  if (!header) return undefined;
  const delay = /^\d+$/.test(header) ? Number(header) * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(delay)) return undefined;
  return Math.min(Math.max(delay, 0), MAX_RETRY_AFTER_MS);
}

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** Waits ms, or rejects with a CancelledError as soon as the signal aborts. The default Sleep. */
export const abortableSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
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

export const newCall = (signal: AbortSignal): CallContext => ({ signal, trace: { requestId: crypto.randomUUID(), attempts: 0 } });
/** A call that nothing cancels but its process ending: doctor's, import's and export's. */
const detachedCall = () => newCall(new AbortController().signal);

/** `idempotent`: sent with an Idempotency-Key, the same on every retry of this request. */
type ApiRequest = { method: "GET" | "PUT" | "POST" | "PATCH"; path: string; body?: unknown; idempotent: boolean };

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

/** What a model should do after each claim conflict (docs/TOOLS.md, Errors). */
const CLAIM_CONFLICT_ADVICE: Record<string, string> = {
  not_claim_holder: "Leave it to its holder and take another task with get_next_task.",
  claim_lost: "Your lease ran out (was the session paused?): call get_next_task with claim: true before working on it again.",
};

/** 409s whose sentence already says what to do: passed to the model as they are. */
const SELF_EXPLAINING_CODES = new Set(["ambiguous_task_id", "criteria_open", "children_open"]);

function httpFailure(status: number, detail: string, code: string | undefined): ToolFailure {
  const cause = { status, detail, code };
  if (status === 409 && SELF_EXPLAINING_CODES.has(code ?? "")) return new ToolFailure(detail, cause);
  const advice = status === 409 && code ? CLAIM_CONFLICT_ADVICE[code] : undefined;
  if (advice) return new ToolFailure(`${detail} ${advice}`, cause);
  return new ToolFailure(`Task Tracking API error: ${status} - ${detail}`, cause);
}

const secondsText = (ms: number) => `${ms / 1000} second${ms === 1000 ? "" : "s"}`;

/**
 * How many times a claim asks for the next task after another agent took the one it was given. Agents
 * that lost a race would all ask again at once and race for the next task too; a random pause that
 * grows with each round lets one of them claim it while the others read the task after it.
 */
const MAX_CLAIM_ROUNDS = 20;
const claimPauseMs = (round: number) => Math.random() * Math.min(4 * round, 40);

/** The most pages one listing follows (500 tasks each): a cursor that never ends stops here. */
const MAX_PAGES = 2000;

/** A status change; `project` undefined lets the service resolve an unambiguous task ID. */
export type StatusChange = { id: string; status: string; completionNotes: string; project?: string };

export type TaskFilter = {
  project?: string;
  status?: string;
  ready?: boolean;
  claimedBy?: string;
  limit?: number;
  cursor?: string;
  query?: string;
  /** A task must carry every one. */
  labels?: string[];
  parent?: string;
};

/**
 * What the client sends its requests with: fetch, or the tracker's own request handler when the tracker serves
 * this server at /mcp (tracker/http/mcp-sessions.ts: no socket, the same pipeline and checks).
 */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface ClientDeps {
  fetch?: Fetch;
  /** The wait between attempts; tests record it instead of waiting. */
  sleep?: Sleep;
  /** Told of each failed attempt before the wait for the next one (doctor prints it). */
  onRetry?: (failure: ToolFailure, attempt: number, delayMs: number) => void;
}

/**
 * The service lacks the endpoint: a 404 with code `not_found` (a missing task has its own) or none (a
 * first-contract service), or a 405 (an older service reads the path as another route, e.g. /tasks/claim
 * as the task called "claim").
 */
const lacksEndpoint = (error: unknown): error is ToolFailure =>
  error instanceof ToolFailure &&
  (error.status === 405 || (error.status === 404 && (error.code === undefined || error.code === "not_found")));

/** Another agent took the task between GET /tasks/next and the claim (or it vanished). */
const isLostRace = ({ status, code }: ToolFailure) =>
  status === 404 || (status === 400 && code === "invalid_transition") || (status === 409 && code === "not_claim_holder");

/** A status change's failure in the words of docs/TOOLS.md; decided by the status, which every contract gives. */
function statusFailure(id: string, failure: ToolFailure): ToolFailure {
  if (failure.status === 404) return new ToolFailure(`Task not found: ${id}`, failure.info);
  if (failure.status === 400) return new ToolFailure(`Invalid status transition: ${failure.detail}`, failure.info);
  return failure;
}

/** What a service without an endpoint lacks, and what to do. */
const FIRST_CONTRACT = "it implements only the first version of the API. Use get_next_task instead.";
const NO_NOTES = "it is older than 0.3, which brought notes; upgrade the tracker to add them.";

/**
 * A rejection handler: a 404 of a per-task endpoint is `Task not found: <id> in project <p>`; with
 * `code`, only a 404 of that code (where a missing endpoint means something else).
 */
const taskNotFound =
  (id: string, project: string, code?: string) =>
  (error: unknown): never => {
    if (error instanceof ToolFailure && error.status === 404 && (code === undefined || error.code === code))
      throw new ToolFailure(`Task not found: ${id} in project ${project}`, error.info);
    throw error;
  };

export class TrackerClient {
  private readonly headers: Record<string, string>;
  /** Every text the service sends is redacted as it arrives, before anything cuts or parses it. */
  private readonly redact: (text: string) => string;
  private readonly fetchImpl: Fetch;
  readonly sleep: Sleep;
  /** Cleared once a first-contract service took a status change only without `?project=` and `lease_seconds`. */
  private statusExtrasAccepted = true;
  /** Cleared once the service answered that it has no POST /tasks/claim. */
  private claimsInOneStep = true;

  constructor(
    private readonly config: Config,
    private readonly deps: ClientDeps = {},
  ) {
    this.redact = createRedactor([config.apiKey]);
    this.headers = { authorization: `Bearer ${config.apiKey}`, accept: "application/json", "x-agent-id": config.agentId };
    this.fetchImpl = deps.fetch ?? fetch;
    this.sleep = deps.sleep ?? abortableSleep;
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
        const init: RequestInit = { method: request.method, headers, body, signal: attemptAbort.signal, redirect: "manual" };
        const response = await this.fetchImpl(url, init);
        trace.status = response.status;
        if (response.status >= 300 && response.status < 400) throw await this.redirectFailure(response, url);
        const text = this.redact(await response.text());
        if (response.ok) return this.parseJson(text);
        const { detail, code } = describeErrorBody(text, response.statusText);
        failure = httpFailure(response.status, detail, code);
        const retryable = RETRYABLE_STATUSES.has(response.status) || (response.status === 409 && RETRYABLE_CODES.has(code ?? ""));
        if (!retryable) throw failure;
        // Retry-After sets the wait, never the number of attempts: after the last one there is none.
        if (delay !== undefined) delay = retryAfterMs(response, Date.now()) ?? delay;
      } catch (error) {
        if (error instanceof ToolFailure) throw error;
        if (signal.aborted) throw new CancelledError();
        trace.status = undefined;
        failure = this.networkFailure(error, timedOut);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", cancel);
      }
      if (delay === undefined) throw failure;
      this.deps.onRetry?.(failure, attempt, delay);
      await this.sleep(delay, signal);
    }
  }

  /** A timeout or a network error as a ToolFailure (retried); anything else is a bug, thrown as it is. */
  private networkFailure(error: unknown, timedOut: boolean): ToolFailure {
    if (timedOut) {
      const sentence = `Task Tracking microservice timeout: No response within ${secondsText(this.config.timeoutMs)}`;
      return new ToolFailure(sentence, { network: "timeout" });
    }
    const code = networkCode(error);
    if (code === undefined) throw error; // a bug, not a transient failure: never retried
    const reason = NETWORK_REASONS[code] ?? `Network error ${code}`;
    // The URL may hold the key in its path: redacted like everything the model or a log sees.
    const sentence = this.redact(`Task Tracking microservice unavailable: ${reason} at ${this.config.displayUrl}`);
    return new ToolFailure(sentence, { network: code });
  }

  /**
   * A redirect is never followed: the agent's ID, the Idempotency-Key and the body would go to another
   * host, and its answer would be taken for the tracker's. Where it pointed is said, without credentials.
   */
  private async redirectFailure(response: Response, url: string): Promise<ToolFailure> {
    await response.body?.cancel();
    const location = response.headers.get("location");
    const target = location === null ? "nowhere (no Location header)" : withoutCredentials(location, url);
    const sentence =
      `Task Tracking service redirected the request (${response.status}) to ${target}; redirects are never followed: ` +
      "set TASK_TRACKING_URL to the service's own address";
    return new ToolFailure(this.redact(sentence), { status: response.status });
  }

  private parseJson(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      throw new ToolFailure(
        `Task Tracking API returned an invalid response: the body is not JSON (${JSON.stringify(text.slice(0, 60))})`,
      );
    }
  }

  /** Sends one request and checks the 2xx body against `schema`. */
  async sendFor<T>(schema: z.ZodType<T>, request: ApiRequest, call: CallContext): Promise<T> {
    const result = schema.safeParse(await this.send(request, call));
    if (result.success) return result.data;
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "the body";
    throw new ToolFailure(`Task Tracking API returned an invalid response: ${where}: ${issue.message}`);
  }

  async nextTask(project: string, status: string, call: CallContext): Promise<Task | null> {
    const path = `/tasks/next?${new URLSearchParams({ project, status })}`;
    return (await this.sendFor(NextTaskResponse, { method: "GET", path, idempotent: false }, call)).task;
  }

  /** PUT /tasks/<id>/status. A claim asks for the lease. */
  async updateStatus(change: StatusChange, call: CallContext): Promise<Task> {
    const extras = this.statusExtrasAccepted && (change.project !== undefined || change.status === "in_progress");
    try {
      return await this.putStatus(change, extras, call);
    } catch (error) {
      if (!(error instanceof ToolFailure)) throw error;
      if (error.code === "validation_failed" && extras) return this.updateStatusAsFirstContract(change, call);
      throw statusFailure(change.id, error);
    }
  }

  /**
   * A service of the first contract checks its parameters strictly and knows neither `?project=` nor
   * `lease_seconds`: asked again without them. Once that is accepted they are not sent any more; a
   * service that refuses the request without them too refused something else, and keeps getting them.
   */
  private async updateStatusAsFirstContract(change: StatusChange, call: CallContext): Promise<Task> {
    try {
      const task = await this.putStatus(change, false, call);
      this.statusExtrasAccepted = false;
      return task;
    } catch (error) {
      throw error instanceof ToolFailure ? statusFailure(change.id, error) : error;
    }
  }

  /** `extras`: the project (when known) and, for a claim, the lease; the first contract knows neither. */
  private async putStatus({ id, status, completionNotes, project }: StatusChange, extras: boolean, call: CallContext) {
    const query = extras && project !== undefined ? `?${new URLSearchParams({ project })}` : "";
    const body: Record<string, unknown> = { status, completion_notes: completionNotes };
    if (extras && status === "in_progress") body.lease_seconds = this.config.leaseSeconds;
    const path = `/tasks/${encodeURIComponent(id)}/status${query}`;
    const request: ApiRequest = { method: "PUT", path, body, idempotent: true };
    return (await this.sendFor(UpdatedTaskResponse, request, call)).updated_task;
  }

  /** POST /tasks/<id>/heartbeat: renews this agent's claim for another lease. */
  async renewClaim(id: string, project: string, call: CallContext): Promise<Task> {
    const path = `/tasks/${encodeURIComponent(id)}/heartbeat?${new URLSearchParams({ project })}`;
    const request: ApiRequest = { method: "POST", path, body: { lease_seconds: this.config.leaseSeconds }, idempotent: true };
    return (await this.sendFor(TaskResponse, request, call)).task;
  }

  async nextId(type: string, project: string, call: CallContext): Promise<string> {
    const query = new URLSearchParams({ type, project });
    const body = await this.sendFor(NextIdResponse, { method: "GET", path: `/ids/next?${query}`, idempotent: true }, call);
    return body.next_id;
  }

  reserveIds(type: string, count: number, project: string, call: CallContext) {
    const body = { type, count, project_id: project };
    return this.sendFor(ReservationResponse, { method: "POST", path: "/ids/reserve", body, idempotent: true }, call);
  }

  addTasks(tasks: TaskInput[], call: CallContext) {
    return this.sendFor(BatchResponse, { method: "POST", path: "/tasks/batch", body: { tasks }, idempotent: true }, call);
  }

  /** GET /tasks: one page of whole tasks. A service of the first contract has no such endpoint: said in words. */
  listTasks(filter: TaskFilter, call: CallContext) {
    return this.listPage(TaskPageResponse, filter, call);
  }

  /** GET /tasks: one page, each task checked for what its line shows (list_tasks, a project at a glance). */
  listTaskLines(filter: TaskFilter, call: CallContext) {
    return this.listPage(ListedTaskPageResponse, filter, call);
  }

  private async listPage<T>(schema: z.ZodType<T>, filter: TaskFilter, call: CallContext): Promise<T> {
    const { project, status, ready, claimedBy: claimed_by, limit, cursor, query: q, labels = [], parent } = filter;
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries({ project, status, ready, claimed_by, limit, cursor, q, parent }))
      if (value !== undefined) query.set(name, String(value));
    for (const label of labels) query.append("label", label);
    return this.newerEndpoint("GET /tasks", () =>
      this.sendFor(schema, { method: "GET", path: `/tasks?${query}`, idempotent: false }, call),
    );
  }

  /** Every page of GET /tasks for the filter. */
  async listAllTasks(filter: Omit<TaskFilter, "cursor" | "limit">, call: CallContext): Promise<Task[]> {
    const tasks: Task[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.listTasks({ ...filter, limit: 500, cursor }, call);
      tasks.push(...result.tasks);
      if (result.next_cursor === null) return tasks;
      cursor = result.next_cursor;
    }
    throw new ToolFailure(`Task Tracking API returned an invalid response: GET /tasks had more than ${MAX_PAGES} pages of 500`);
  }

  async projects(call: CallContext): Promise<ProjectSummary[]> {
    const body = await this.newerEndpoint("GET /projects", () =>
      this.sendFor(ProjectsResponse, { method: "GET", path: "/projects", idempotent: false }, call),
    );
    return body.projects;
  }

  async task(id: string, project: string, call: CallContext): Promise<Task> {
    const path = `/tasks/${encodeURIComponent(id)}?${new URLSearchParams({ project })}`;
    return (await this.sendFor(TaskResponse, { method: "GET", path, idempotent: false }, call).catch(taskNotFound(id, project)))
      .task;
  }

  /** PATCH /tasks/<id>: the fields given, `check`/`uncheck` by criterion position. */
  async editTask(id: string, project: string, fields: Record<string, unknown>, call: CallContext): Promise<Task> {
    const path = `/tasks/${encodeURIComponent(id)}?${new URLSearchParams({ project })}`;
    const request: ApiRequest = { method: "PATCH", path, body: fields, idempotent: true };
    return (await this.sendFor(TaskResponse, request, call).catch(taskNotFound(id, project))).task;
  }

  /** POST /tasks/<id>/notes: the note as stored, and the task after it. A tracker before 0.3 has no notes. */
  addNote(id: string, project: string, text: string, call: CallContext) {
    const path = `/tasks/${encodeURIComponent(id)}/notes?${new URLSearchParams({ project })}`;
    const request: ApiRequest = { method: "POST", path, body: { text }, idempotent: true };
    const send = () => this.sendFor(NoteResponse, request, call);
    return this.newerEndpoint("POST /tasks/<task_id>/notes", send, NO_NOTES).catch(taskNotFound(id, project, "task_not_found"));
  }

  async events(id: string, project: string, call: CallContext) {
    const path = `/tasks/${encodeURIComponent(id)}/events?${new URLSearchParams({ project })}`;
    const body = await this.newerEndpoint("GET /tasks/<task_id>/events", () =>
      this.sendFor(EventsResponse, { method: "GET", path, idempotent: false }, call),
    );
    return body.events;
  }

  /** 404 No such endpoint or 405 from an endpoint an older service lacks: a sentence that says so. */
  private async newerEndpoint<T>(endpoint: string, send: () => Promise<T>, olderService = FIRST_CONTRACT): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (lacksEndpoint(error)) {
        throw new ToolFailure(
          `This Task Tracking service has no ${endpoint} (it answered ${error.status}): ${olderService}`,
          error.info,
        );
      }
      throw error;
    }
  }

  /** Takes the next ready task for this agent in one request; a service without POST /tasks/claim, in two steps. */
  async claimNextTask(project: string, call: CallContext): Promise<Task | null> {
    if (!this.claimsInOneStep) return this.claimInTwoSteps(project, call);
    const body = { project_id: project, lease_seconds: this.config.leaseSeconds };
    const request: ApiRequest = { method: "POST", path: "/tasks/claim", body, idempotent: true };
    try {
      return (await this.sendFor(NextTaskResponse, request, call)).task;
    } catch (error) {
      if (!lacksEndpoint(error)) throw error;
      this.claimsInOneStep = false;
      return this.claimInTwoSteps(project, call);
    }
  }

  /** GET /tasks/next, then PUT …/status; when another agent took that task first (isLostRace), the next one, a few times. */
  private async claimInTwoSteps(project: string, call: CallContext): Promise<Task | null> {
    for (let round = 1; round <= MAX_CLAIM_ROUNDS; round++) {
      const candidate = await this.nextTask(project, "pending", call);
      if (!candidate) return null;
      try {
        return await this.updateStatus({ id: candidate.task_id, status: "in_progress", completionNotes: "", project }, call);
      } catch (error) {
        if (!(error instanceof ToolFailure && isLostRace(error))) throw error;
      }
      await this.sleep(claimPauseMs(round), call.signal);
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

// ─── The claims this server holds: renewed until completed, released or the process ends ───────

/** Calls tick every `ms` until the returned function is called. Tests pass their own and tick by hand. */
export type Schedule = (ms: number, tick: () => void) => () => void;

export const everyMs: Schedule = (ms, tick) => {
  const timer = setInterval(tick, ms);
  timer.unref(); // a renewal never keeps the process alive
  return () => clearInterval(timer);
};

type HeldClaim = { key: string; projectId: string; taskId: string; cancel: () => void; renewing: boolean };

/** What a failed renewal means: the claim is gone, the service has no heartbeat endpoint, or try again later. */
type RenewalFailure = "claim gone" | "no heartbeat" | "try again";

export class ClaimKeeper {
  private readonly held = new Map<string, HeldClaim>();
  private readonly stopped = new AbortController();
  /** Set when the service has no heartbeat endpoint (the first contract): nothing is renewed any more. */
  private heartbeatMissing = false;

  constructor(
    private readonly client: TrackerClient,
    private readonly config: Config,
    private readonly log: Log,
    private readonly schedule: Schedule = everyMs,
  ) {}

  /** Follows a task this server claimed, updated or adopted: renews it while it is ours and in progress. */
  observe(task: Task): void {
    const key = `${task.project_id}/${task.task_id}`;
    if (task.status !== "in_progress" || !task.lease_expires_at || task.claimed_by !== this.config.agentId) {
      this.release(key);
      return;
    }
    if (this.held.has(key) || this.heartbeatMissing || this.stopped.signal.aborted) return;
    const claim: HeldClaim = { key, projectId: task.project_id, taskId: task.task_id, renewing: false, cancel: () => {} };
    claim.cancel = this.schedule((this.config.leaseSeconds * 1000) / 3, () => void this.renew(claim));
    this.held.set(key, claim);
  }

  /** The project of the one claim held on a task of this ID; undefined if none or several. */
  projectOfHeld(taskId: string): string | undefined {
    const projects = [...this.held.values()].filter((claim) => claim.taskId === taskId).map((claim) => claim.projectId);
    return projects.length === 1 ? projects[0] : undefined;
  }

  /** Renews one claim; a claim found lost is dropped, any other failure waits for the next tick. */
  async renew(claim: HeldClaim): Promise<void> {
    if (claim.renewing || this.held.get(claim.key) !== claim) return;
    claim.renewing = true;
    const call = newCall(this.stopped.signal);
    const where = { task_id: claim.taskId, project_id: claim.projectId, request_id: call.trace.requestId };
    try {
      const { lease_expires_at } = await this.client.renewClaim(claim.taskId, claim.projectId, call);
      this.log("debug", { msg: "renewed a claim", ...where, lease_expires_at, attempts: call.trace.attempts });
    } catch (error) {
      if (error instanceof CancelledError || this.held.get(claim.key) !== claim) return; // completed or released meanwhile
      if (!(error instanceof ToolFailure)) {
        this.log("error", { msg: "renewing a claim failed with a bug", ...where, error: stackOf(error) });
        return;
      }
      const meaning = await this.meaningOf(error, claim, call);
      if (this.held.get(claim.key) === claim) this.renewalFailed(claim, error, meaning, where);
    } finally {
      claim.renewing = false;
    }
  }

  /**
   * A 404 other than task_not_found is a missing endpoint, or a missing task on a tracker of 0.2, which
   * says not_found for both: reading the task tells them apart.
   */
  private async meaningOf(failure: ToolFailure, claim: HeldClaim, call: CallContext): Promise<RenewalFailure> {
    if (failure.status === 409 && (failure.code === "claim_lost" || failure.code === "not_claim_holder")) return "claim gone";
    if (failure.status === 400 && failure.code === "invalid_transition") return "claim gone"; // completed or released meanwhile
    if (failure.status !== 404) return "try again";
    if (failure.code === "task_not_found") return "claim gone";
    return this.client.task(claim.taskId, claim.projectId, call).then(
      () => "no heartbeat",
      (error) => (error instanceof ToolFailure && error.status === 404 ? "claim gone" : "try again"),
    );
  }

  private renewalFailed(claim: HeldClaim, failure: ToolFailure, meaning: RenewalFailure, where: Record<string, unknown>): void {
    if (meaning === "claim gone") {
      this.log("warn", { msg: `lost the claim on ${claim.taskId}; no longer renewing it`, ...where, error: failure.message });
      this.release(claim.key);
    } else if (meaning === "no heartbeat") {
      const msg = "the service has no heartbeat endpoint (first version of the API): claims are not renewed";
      this.log("warn", { msg, ...where });
      this.heartbeatMissing = true;
      for (const key of [...this.held.keys()]) this.release(key);
    } else {
      const msg = `renewing the claim on ${claim.taskId} failed; trying again at the next renewal`;
      this.log("warn", { msg, ...where, error: failure.message });
    }
  }

  /** At start: the in-progress tasks claimed under this agent ID, followed (observed) and renewed at once. */
  async adopt(follow: (task: Task) => void): Promise<void> {
    const call = newCall(this.stopped.signal);
    try {
      const tasks = await this.client.listAllTasks({ claimedBy: this.config.agentId, status: "in_progress" }, call);
      for (const task of tasks) follow(task);
      this.log("info", {
        msg: `adopted ${this.held.size} claim(s) of agent ${this.config.agentId}`,
        task_ids: [...this.held.keys()],
      });
      await Promise.all([...this.held.values()].map((claim) => this.renew(claim)));
    } catch (error) {
      if (error instanceof CancelledError) return;
      this.log("warn", { msg: `could not adopt the claims of agent ${this.config.agentId}`, error: (error as Error).message });
    }
  }

  private release(key: string): void {
    this.held.get(key)?.cancel();
    this.held.delete(key);
  }

  /** At shutdown: no timer left, renewals in flight aborted. */
  stop(): void {
    this.stopped.abort();
    for (const key of [...this.held.keys()]) this.release(key);
  }
}

// ─── The MCP server ────────────────────────────────────────────────────────────────────────────

export interface ServerDeps {
  fetch?: Fetch;
  /** The tools to offer (a viewer's session at the tracker's /mcp: only those that read); all by default. */
  tools?: readonly ToolName[];
  /** The wait between retries and claim rounds; tests record it. */
  sleep?: Sleep;
  /** How claim renewals are timed; tests tick by hand. */
  schedule?: Schedule;
  /** Where log lines go; stderr by default. */
  writeLog?: (line: string) => void;
  /** Aborted at shutdown: every call in flight is aborted with it, and no claim is renewed any more. */
  shutdownSignal?: AbortSignal;
  /** Holds each tool call while it runs, so shutdown can wait for them. */
  inFlight?: Set<Promise<unknown>>;
  /** Called when a tool call has ended, however it ended. */
  afterCall?: () => void;
  /** Adopt this agent's in-progress claims at start (serve() does; tests that need it ask). */
  adoptClaims?: boolean;
}

/** The server: the instructions the model reads, then one registration per group. */
export function createServer(config: Config, deps: ServerDeps = {}): McpServer {
  const context = new ServerContext(config, deps);
  const server = new McpServer({ name: NAME, version: VERSION }, { instructions: instructions(config) });
  server.server.onclose = () => context.claims.stop();
  registerTools(server, context, deps.tools);
  registerResources(server, context);
  registerPrompts(server, config);
  if (deps.adoptClaims) void context.claims.adopt((task) => context.follow(task));
  return server;
}

/**
 * Claude Code defers tool definitions behind a tool search: these words decide whether the tools are found, so they
 * say when to reach for them in the words of a user's request. At most 2 KB with the longest project ID (a test holds it).
 */
function instructions(config: Config): string {
  const projectHint = config.project
    ? `\nThis directory's project is "${config.project}": pass project_id "${config.project}" to every tool unless told otherwise.`
    : "";
  return (
    "Tasks, plans and artifact IDs live in a shared Task Tracking service that several agents and people use at once, " +
    "not in local TODO files or your own todo list. Reach for these tools when the user asks to:\n" +
    "- plan work, break a goal or feature into tasks, write a backlog or roadmap: add_task (depends_on, priority, " +
    "acceptance criteria), with reserve_id_range for their IDs;\n" +
    '- start, pick up or continue work ("what\'s next?", "work on the next task", "take a ticket"): get_next_task with ' +
    "claim: true; list_tasks with mine: true finds the tasks you already hold, e.g. after a compaction;\n" +
    "- record progress, leave a note, tick off criteria: update_task; give a task back: update_task_status pending " +
    "with completion_notes saying why;\n" +
    "- finish, close or mark something done: update_task_status completed with completion_notes saying what was done and where;\n" +
    "- see a project's status, what is blocked, in progress or done, or find a task by its words: list_tasks, get_task;\n" +
    "- number a new spec, story, ADR or other artifact without collisions: get_next_available_id, or reserve_id_range for several.\n" +
    "Hold one task at a time; this server keeps your claim alive while the session runs." +
    projectHint
  );
}

type ToolExtra = { signal: AbortSignal };

/** What every handler shares: the client, the claims held, the log, what the server saw of tasks, and how a call runs. */
class ServerContext {
  readonly log: Log;
  readonly client: TrackerClient;
  readonly claims: ClaimKeeper;
  /** The project of each task this server claimed, updated or added; null when two projects have that task ID. */
  private readonly projectOfTask = new Map<string, string | null>();

  constructor(
    readonly config: Config,
    private readonly deps: ServerDeps,
  ) {
    const write = deps.writeLog ?? ((line: string) => process.stderr.write(line));
    this.log = createLog(config.logLevel, createRedactor([config.apiKey]), write);
    this.client = new TrackerClient(config, { fetch: deps.fetch, sleep: deps.sleep });
    this.claims = new ClaimKeeper(this.client, config, this.log, deps.schedule);
    deps.shutdownSignal?.addEventListener("abort", () => this.claims.stop(), { once: true });
  }

  remember(taskId: string, project: string): void {
    const known = this.projectOfTask.get(taskId);
    this.projectOfTask.set(taskId, known === undefined || known === project ? project : null);
  }

  /** A task this server claimed, updated or adopted: its project remembered, its claim kept. */
  follow(task: Task): Task {
    this.remember(task.task_id, task.project_id);
    this.claims.observe(task);
    return task;
  }

  /** A claim this server holds names the task's project for sure; else what it saw of the task, if unambiguous. */
  projectOf(taskId: string): string | undefined {
    return this.claims.projectOfHeld(taskId) ?? this.projectOfTask.get(taskId) ?? undefined;
  }

  /** A call outside any request (completion, listing): aborted only at shutdown. */
  backgroundCall(): CallContext {
    return newCall(this.deps.shutdownSignal ?? new AbortController().signal);
  }

  private newCall(extra: ToolExtra): CallContext {
    const shutdown = this.deps.shutdownSignal;
    return newCall(shutdown ? AbortSignal.any([extra.signal, shutdown]) : extra.signal);
  }

  /** Runs one tool call: logs it once, returns data as structuredContent plus JSON text, or an isError result. */
  async run<T extends Record<string, unknown>>(
    tool: string,
    params: Record<string, unknown>,
    extra: ToolExtra,
    work: (call: CallContext) => Promise<T>,
    summary?: (data: T, call: CallContext) => string | undefined | Promise<string | undefined>,
  ): Promise<CallToolResult> {
    const call = this.newCall(extra);
    const logCall = this.callLogger({ tool, params: paramsForLog(params) }, call);
    try {
      const working = work(call).then(async (data) => ({ data, text: (await summary?.(data, call)) ?? JSON.stringify(data) }));
      this.deps.inFlight?.add(working);
      const { data, text } = await working.finally(() => {
        this.deps.inFlight?.delete(working);
        this.deps.afterCall?.();
      });
      logCall("info", { outcome: "ok" });
      return { content: [{ type: "text", text }], structuredContent: data };
    } catch (error) {
      if (error instanceof CancelledError) {
        logCall("info", { outcome: "cancelled" });
        throw error;
      }
      if (error instanceof ToolFailure) {
        logCall("warn", { outcome: "error", error: error.message });
        return { content: [{ type: "text", text: error.message }], isError: true };
      }
      logCall("error", { outcome: "bug", error: stackOf(error) });
      return { content: [{ type: "text", text: "Internal error in task-tracking-mcp; see its log on stderr" }], isError: true };
    }
  }

  /** Runs one resource read: logs it like a tool call; a failure is an error whose message is the sentence. */
  async read(uri: URL, extra: ToolExtra, work: (call: CallContext) => Promise<unknown>): Promise<ReadResourceResult> {
    const call = this.newCall(extra);
    const logRead = this.callLogger({ resource: uri.href }, call);
    try {
      const data = await work(call);
      logRead("info", { outcome: "ok" });
      return { contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(data, null, 1) }] };
    } catch (error) {
      logRead("warn", { outcome: "error", error: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }

  /** The one log line of a call: what was called, then its status, duration, attempts and outcome. */
  private callLogger(what: Record<string, unknown>, { trace }: CallContext) {
    const started = performance.now();
    return (level: LogLevel, outcome: Record<string, unknown>) =>
      this.log(level, {
        ...what,
        status: trace.status ?? null,
        duration_ms: Math.round((performance.now() - started) * 100) / 100,
        attempts: trace.attempts,
        request_id: trace.requestId,
        ...outcome,
      });
  }
}

/**
 * A tool's arguments as a strict object: an argument the tool does not know (`claim_task` for `claim`)
 * is an error naming it, never dropped in silence.
 */
function toolArguments<Shape extends z.ZodRawShape>(tool: string, shape: Shape) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown argument${issue.keys.length === 1 ? "" : "s"} ${issue.keys.join(", ")}; ${tool} takes ${known}`
        : undefined,
  });
}

// ─── The tools: one registration each ──────────────────────────────────────────────────────────

const TOOLS = {
  get_next_task: registerGetNextTask,
  update_task_status: registerUpdateTaskStatus,
  list_tasks: registerListTasks,
  get_next_available_id: registerGetNextAvailableId,
  reserve_id_range: registerReserveIdRange,
  add_task: registerAddTask,
  get_task: registerGetTask,
  update_task: registerUpdateTask,
};
export type ToolName = keyof typeof TOOLS;
export const TOOL_NAMES = Object.keys(TOOLS) as ToolName[];
/** The tools that change nothing (annotated readOnlyHint). */
export const READING_TOOLS: readonly ToolName[] = ["list_tasks", "get_task"];

function registerTools(server: McpServer, context: ServerContext, offered: readonly ToolName[] = TOOL_NAMES): void {
  for (const name of TOOL_NAMES) if (offered.includes(name)) TOOLS[name](server, context);
}

const projectArgument = () => projectId.describe("Project ID");
const artifactTypeArgument = () => artifactType.describe("Artifact type, e.g. US, SPEC, TASK");

const GetNextTaskArguments = {
  project_id: projectArgument(),
  status_filter: oneOf("status_filter", NEXT_STATUSES).default("pending").describe("Which tasks to look at"),
  claim: z.boolean().default(false).describe('true: take the task for this agent; only with status_filter "pending"'),
};

function registerGetNextTask(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "get_next_task",
    {
      title: "Get the next task",
      description:
        "Returns a project's next task (pending: the highest-priority one whose dependencies are done), or null. To start " +
        "work pass claim: true: the task becomes yours (in_progress, kept alive while this server runs), shown with its " +
        "acceptance criteria and last notes.",
      inputSchema: toolArguments("get_next_task", GetNextTaskArguments),
      outputSchema: { task: TaskOutput.nullable().describe("The task, or null when none fits") },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ project_id, status_filter, claim }, extra) =>
      context.run(
        "get_next_task",
        { project_id, status_filter, claim },
        extra,
        async (call) => ({ task: await nextTask(context, project_id, status_filter, claim, call) }),
        async ({ task }, call) => {
          if (task) return claim ? taskText(task, NOTES_SHOWN_ON_CLAIM) : undefined;
          return (
            (await emptyProjectText(context.client, project_id, call)) ??
            `No ${status_filter} task is ready in project ${project_id}.`
          );
        },
      ),
  );
}

async function nextTask(context: ServerContext, project: string, status: string, claim: boolean, call: CallContext) {
  if (claim && status !== "pending") throw new ToolFailure('claim: true works only with status_filter "pending"');
  if (!claim) return context.client.nextTask(project, status, call);
  const task = await context.client.claimNextTask(project, call);
  return task && context.follow(task);
}

const MAX_NAMED_PROJECTS = 10;

/**
 * Why get_next_task found nothing: a project with no tasks at all is probably a typo, so the known
 * projects are named. Undefined when the project has tasks, or the service cannot list projects.
 */
async function emptyProjectText(client: TrackerClient, project: string, call: CallContext): Promise<string | undefined> {
  const side: CallContext = { signal: call.signal, trace: { requestId: call.trace.requestId, attempts: 0 } };
  const projects = await client
    .projects(side)
    .catch((error) => (error instanceof ToolFailure ? undefined : Promise.reject(error)));
  call.trace.attempts += side.trace.attempts;
  if (!projects) return undefined;
  const entry = projects.find((summary) => summary.project_id === project);
  if (entry && entry.ready + entry.blocked + entry.in_progress + entry.completed + (entry.cancelled ?? 0) > 0) return undefined;
  const others = projects.map((summary) => summary.project_id).filter((id) => id !== project);
  const named = others.slice(0, MAX_NAMED_PROJECTS).join(", ");
  const more = others.length > MAX_NAMED_PROJECTS ? ` and ${others.length - MAX_NAMED_PROJECTS} more` : "";
  const known = others.length ? `Known projects: ${named}${more}.` : "No other project exists.";
  return `Project ${project} has no tasks at all. ${known} Check project_id, or add tasks with add_task.`;
}

const UpdateTaskStatusArguments = {
  task_id: taskId("task_id").describe('Task ID, e.g. "TASK-051"'),
  status: oneOf("status", TASK_STATUSES).describe("The new status"),
  completion_notes: z
    .string()
    .max(10_000, "completion_notes must be at most 10000 characters")
    .default("")
    .describe("What was done (completed), or why (pending, cancelled); up to 10000 characters"),
  project_id: projectId.optional().describe("Needed only when several projects have a task of this ID"),
};

function registerUpdateTaskStatus(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "update_task_status",
    {
      title: "Update a task's status",
      description:
        "Moves a task to in_progress (claim it), completed (every acceptance criterion ticked off; completion_notes: what " +
        "was done), pending (give it back or reopen it) or cancelled (nobody will do it); completion_notes says why.",
      inputSchema: toolArguments("update_task_status", UpdateTaskStatusArguments),
      outputSchema: { task: TaskOutput.describe("The task after the change") },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    ({ task_id, status, completion_notes, project_id }, extra) =>
      context.run(
        "update_task_status",
        { task_id, status, completion_notes, project_id },
        extra,
        async (call) => {
          const project = project_id ?? context.projectOf(task_id);
          const change = { id: task_id, status, completionNotes: completion_notes, project };
          return { task: context.follow(await context.client.updateStatus(change, call)) };
        },
        // A claim is read like get_next_task's: where the work stands.
        ({ task }) => (status === "in_progress" ? taskText(task, NOTES_SHOWN_ON_CLAIM) : undefined),
      ),
  );
}

const ListTasksArguments = {
  project_id: projectArgument(),
  status: oneOf("status", TASK_STATUSES).optional().describe("Only tasks in this status"),
  ready: z.boolean().optional().describe("true: only pending tasks whose dependencies are done; false: only blocked ones"),
  mine: z.boolean().default(false).describe("true: only the tasks you hold (find your claims again)"),
  query: boundedText("query", 1000).optional().describe("Words to find in descriptions, criteria and notes; best match first"),
  label: z
    .union([labelName, labelList.min(1, "label must name at least 1 label")])
    .optional()
    .describe("Only tasks with this label, or with all of these"),
  parent_id: taskId("parent_id").optional().describe("Only the children of this task"),
  limit: z
    .number({ error: "limit must be a whole number from 1 to 500" })
    .int("limit must be a whole number from 1 to 500")
    .min(1, "limit must be at least 1")
    .max(500, "limit must be at most 500")
    .default(50)
    .describe("Tasks per page"),
  cursor: z
    .string()
    .min(1, "cursor must not be empty")
    .max(1000, "cursor is too long")
    .optional()
    .describe("next_cursor of the previous page"),
};
type ListTasksArguments = z.infer<z.ZodObject<typeof ListTasksArguments>>;

function registerListTasks(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "list_tasks",
    {
      title: "List tasks",
      description:
        "Lists a project's tasks, a line each with labels and criteria ticked off (2/5), in the order get_next_task hands " +
        "them out. Search with query before adding a task that may exist; filter by status, ready, label, parent_id or mine.",
      inputSchema: toolArguments("list_tasks", ListTasksArguments),
      outputSchema: {
        tasks: z
          .array(z.looseObject({ task_id: z.string(), status: z.enum(TASK_STATUSES) }))
          .describe(`The page: ${Object.keys(CompactTaskShape).join(", ")} of each task`),
        next_cursor: z.string().nullable().describe("Pass as cursor for the next page; null on the last page"),
      },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    (args, extra) =>
      context.run(
        "list_tasks",
        args,
        extra,
        (call) => listTasks(context, args, call),
        ({ tasks, next_cursor }) => taskList(tasks, next_cursor, args),
      ),
  );
}

async function listTasks(context: ServerContext, args: ListTasksArguments, call: CallContext) {
  const { project_id: project, status, ready, mine, limit, cursor, query, label, parent_id: parent } = args;
  if (ready !== undefined && status !== undefined && status !== "pending") {
    throw new ToolFailure('ready works only with status "pending" (or no status)');
  }
  const claimedBy = mine ? context.config.agentId : undefined;
  const labels = typeof label === "string" ? [label] : label;
  const page = await context.client.listTaskLines(
    { project, status, ready, limit, cursor, claimedBy, query, labels, parent },
    call,
  );
  return { tasks: page.tasks.map(compactTask), next_cursor: page.next_cursor };
}

/** list_tasks as the model reads it: a line per task, then where the list goes on. */
function taskList(tasks: CompactTask[], nextCursor: string | null, { project_id, ready }: ListTasksArguments): string {
  const lines = tasks.map((task) => taskLine(task, ready));
  if (!tasks.length) lines.push(`No task matches in project ${project_id}.`);
  lines.push(nextCursor ? `More: call list_tasks again with cursor "${nextCursor}".` : "End of the list.");
  return lines.join("\n");
}

/**
 * A line per task at a glance, others' words quoted:
 * `TASK-001 pending high ready [backend, bug] criteria 2/5 — "Implement X" (after TASK-000) matched "…[login] form…"`.
 */
function taskLine(task: CompactTask, readyFilter?: boolean): string {
  let state = `${task.task_id} ${task.status} ${task.priority}`;
  if (task.status === "pending" && (readyFilter === true || task.depends_on.length === 0)) state += " ready";
  if (task.status === "pending" && readyFilter === false) state += " blocked";
  if (task.status === "in_progress" && task.claimed_by) state += ` by ${JSON.stringify(task.claimed_by)}`;
  if (task.status === "in_progress" && task.lease_expires_at) state += ` until ${task.lease_expires_at}`;
  if (task.labels.length) state += ` [${task.labels.join(", ")}]`;
  if (task.criteria) state += ` criteria ${task.criteria}`;
  const after = task.depends_on.length ? ` (after ${task.depends_on.join(", ")})` : "";
  const matched = task.match ? ` matched ${JSON.stringify(task.match)}` : "";
  return `${state} — ${JSON.stringify(task.description)}${after}${matched}`;
}

const NextIdArguments = { artifact_type: artifactTypeArgument(), project_id: projectArgument() };

function registerGetNextAvailableId(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "get_next_available_id",
    {
      title: "Allocate the next artifact ID",
      description:
        'Allocates the next ID of an artifact type, e.g. "US-028" after US-027; it is never handed out again. Call it once ' +
        "per new artifact (user story, spec…); for several use reserve_id_range.",
      inputSchema: toolArguments("get_next_available_id", NextIdArguments),
      outputSchema: { next_id: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ artifact_type, project_id }, extra) =>
      context.run("get_next_available_id", { artifact_type, project_id }, extra, async (call) => ({
        next_id: await context.client.nextId(artifact_type, project_id, call),
      })),
  );
}

const ReserveArguments = {
  artifact_type: artifactTypeArgument(),
  count: z
    .number({ error: "count must be a whole number from 1 to 100" })
    .int("count must be a whole number from 1 to 100")
    .min(1, "count must be at least 1")
    .max(100, "count must be at most 100")
    .describe("How many IDs, 1-100"),
  project_id: projectArgument(),
};

function registerReserveIdRange(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "reserve_id_range",
    {
      title: "Reserve a range of artifact IDs",
      description:
        "Reserves count contiguous IDs of an artifact type at once, e.g. US-028 … US-033, never handed out again: call it " +
        "before creating several artifacts.",
      inputSchema: toolArguments("reserve_id_range", ReserveArguments),
      outputSchema: ReservationShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ artifact_type, count, project_id }, extra) =>
      context.run("reserve_id_range", { artifact_type, count, project_id }, extra, (call) =>
        context.client.reserveIds(artifact_type, count, project_id, call),
      ),
  );
}

const AddTaskArguments = {
  tasks: z
    .array(TaskInputSchema)
    .min(1, "tasks must hold at least 1 task")
    .max(500, "tasks may hold at most 500 tasks")
    .describe("The tasks to add, 1-500"),
};

function registerAddTask(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "add_task",
    {
      title: "Add tasks",
      description:
        "Adds 1-500 tasks, all or none (one bad task or existing task_id: none is added). Left out, task_id is the next " +
        "TASK-nnn (task_ids lists them in order). priority and depends_on set the order; parent_id makes a task part of an " +
        "epic; acceptance_criteria must all be ticked off before completion.",
      inputSchema: toolArguments("add_task", AddTaskArguments),
      outputSchema: BatchShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    ({ tasks }, extra) =>
      context.run("add_task", { tasks }, extra, async (call) => {
        const added = await context.client.addTasks(tasks, call);
        tasks.forEach((task, i) => context.remember(added.task_ids[i]!, task.project_id));
        return added;
      }),
  );
}

const TaskArguments = { task_id: taskId("task_id").describe('Task ID, e.g. "TASK-051"'), project_id: projectArgument() };
type Relative = { task_id: string; description: string; status: Task["status"] };
const relative = z.looseObject({ task_id: z.string(), status: z.string() });

function registerGetTask(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "get_task",
    {
      title: "Read a task",
      description:
        "Returns one task whole: its description, acceptance criteria with their state, every note (what was tried, " +
        "what is left), its parent and its children. Call it before working on a task you did not just claim.",
      inputSchema: toolArguments("get_task", TaskArguments),
      outputSchema: { task: TaskOutput, parent: relative.nullable(), children: z.array(relative) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    ({ task_id, project_id }, extra) =>
      context.run(
        "get_task",
        { task_id, project_id },
        extra,
        (call) => taskWithRelatives(context.client, task_id, project_id, call),
        ({ task, parent, children }) => [taskText(task, Number.POSITIVE_INFINITY, parent), ...childrenText(children)].join("\n"),
      ),
  );
}

/** GET /tasks/<id>, then its parent and its children (GET /tasks?parent=) side by side. */
async function taskWithRelatives(client: TrackerClient, id: string, project: string, call: CallContext) {
  const task = await client.task(id, project, call);
  const relativeOf = ({ task_id, status, ...other }: Task) => ({ task_id, description: firstLine(other.description), status });
  const [parent, children] = await Promise.all([
    task.parent_id ? client.task(task.parent_id, project, call) : null,
    // Only a tracker of 0.3 or later counts children, and only it knows `?parent=`.
    task.children?.total ? client.listAllTasks({ project, parent: id }, call) : [],
  ]);
  return { task, parent: parent && relativeOf(parent), children: children.map(relativeOf) };
}

const relativeLine = ({ task_id, status, description }: Relative) => `${task_id} ${status} — ${JSON.stringify(description)}`;

function childrenText(children: Relative[]): string[] {
  if (!children.length) return [];
  const done = children.filter((child) => child.status === "completed" || child.status === "cancelled").length;
  return [`Children (${done}/${children.length} done):`, ...children.map((child) => `  ${relativeLine(child)}`)];
}

const NOTES_SHOWN_ON_CLAIM = 3;

/**
 * A task as the model reads it: its line, then the words others wrote, quoted as JSON strings so they
 * read as data: the whole description, the acceptance criteria with their state, the last `notesShown`
 * notes (a list's task has only the last one). The parent by its ID, or whole when it was read.
 */
function taskText(task: Task, notesShown: number, parent?: Relative | null): string {
  const lines = [taskLine(compactTask(task))];
  if (task.description.trim() !== firstLine(task.description)) lines.push(`Description: ${JSON.stringify(task.description)}`);
  if (task.parent_id) lines.push(`Parent: ${parent ? relativeLine(parent) : task.parent_id}`);
  if (task.inputs.length || task.outputs.length)
    lines.push(`Inputs: ${task.inputs.join(", ") || "none"}; outputs: ${task.outputs.join(", ") || "none"}`);
  const criteria = task.acceptance_criteria ?? [];
  if (criteria.length)
    lines.push(`Acceptance criteria (${criteriaProgress(task)} ticked off; tick with update_task check: [n]):`);
  criteria.forEach(({ text, done }, i) => lines.push(`  ${i + 1}. [${done ? "x" : " "}] ${JSON.stringify(text)}`));
  const notes = task.notes ?? (task.last_note ? [task.last_note] : []);
  const shown = notes.slice(-notesShown);
  const total = task.notes ? notes.length : (task.notes_count ?? notes.length);
  if (shown.length)
    lines.push(shown.length < total ? `Notes (the last ${shown.length} of ${total}; get_task shows all):` : "Notes:");
  for (const note of shown) lines.push(`  ${note.at} ${JSON.stringify(note.by ?? "unknown")}: ${JSON.stringify(note.text)}`);
  if (task.completion_notes) lines.push(`Completion notes: ${JSON.stringify(task.completion_notes)}`);
  return lines.join("\n");
}

const UpdateTaskArguments = {
  ...TaskArguments,
  note: boundedText("note", 10_000).optional().describe("Added to the task's notes: what you did or tried, what is left"),
  check: positions("check").optional().describe("Acceptance criteria to tick off, by position from 1"),
  uncheck: positions("uncheck").optional().describe("Acceptance criteria to untick, by position from 1"),
  labels: labelList.optional().describe("The task's labels: replaces them all"),
  priority: oneOf("priority", PRIORITIES).optional().describe("high, medium or low"),
  description: boundedText("description", 10_000).optional().describe("Replaces the description"),
};
type UpdateTaskArguments = z.infer<z.ZodObject<typeof UpdateTaskArguments>>;
const TASK_EDITS = ["check", "uncheck", "labels", "priority", "description"] as const;

function registerUpdateTask(server: McpServer, context: ServerContext): void {
  server.registerTool(
    "update_task",
    {
      title: "Record progress on a task",
      description:
        "Records progress on a task: add a note (what you did or tried, what is left: the next agent reads it), tick " +
        "acceptance criteria off with check, or change labels, priority or description. Use it as you work, before completing.",
      inputSchema: toolArguments("update_task", UpdateTaskArguments),
      outputSchema: { task: TaskOutput, note: z.looseObject({ text: z.string() }).optional() },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    (args, extra) =>
      context.run(
        "update_task",
        args,
        extra,
        (call) => updateTask(context, args, call),
        ({ task, note }) => `${note ? "Note added. " : ""}${taskText(task, 1)}`,
      ),
  );
}

/** PATCH when anything besides a note changes, then POST the note: two writes, each with its own Idempotency-Key. */
async function updateTask(context: ServerContext, args: UpdateTaskArguments, call: CallContext) {
  const { task_id: id, project_id: project, note } = args;
  const edits = Object.fromEntries(TASK_EDITS.filter((field) => args[field] !== undefined).map((field) => [field, args[field]]));
  const edited = Object.keys(edits);
  if (note === undefined && !edited.length)
    throw new ToolFailure(`update_task needs at least one of note, ${TASK_EDITS.join(", ")}`);
  const task = edited.length ? context.follow(await context.client.editTask(id, project, edits, call)) : undefined;
  if (note === undefined) return { task: task! };
  try {
    const added = await context.client.addNote(id, project, note, call);
    return { task: context.follow(added.task), note: added.note };
  } catch (error) {
    if (!task || !(error instanceof ToolFailure)) throw error;
    const sentence = `${id} was updated (${edited.join(", ")}), but the note was not added: ${error.message}. Call update_task again with the note alone.`;
    throw new ToolFailure(sentence, error.info);
  }
}

// ─── The resources: a task with its history; a project at a glance ─────────────────────────────

function registerResources(server: McpServer, context: ServerContext): void {
  registerTaskResource(server, context);
  registerProjectResource(server, context);
}

/** A URI template variable, checked as the tool argument of the same name would be. */
function variable<T>(schema: z.ZodType<T>, value: string | string[] | undefined): T {
  const result = schema.safeParse(Array.isArray(value) ? value[0] : value);
  if (!result.success) throw new ToolFailure(result.error.issues[0]!.message);
  return result.data;
}

/** Project IDs for completion, from GET /projects; none when the service cannot list them. */
async function knownProjects(context: ServerContext, prefix: string): Promise<string[]> {
  try {
    const projects = await context.client.projects(context.backgroundCall());
    return projects.map((summary) => summary.project_id).filter((id) => id.startsWith(prefix));
  } catch {
    return [];
  }
}

function registerTaskResource(server: McpServer, context: ServerContext): void {
  const complete = { project_id: (prefix: string) => knownProjects(context, prefix) };
  server.registerResource(
    "task",
    new ResourceTemplate("task://{project_id}/{task_id}", { list: undefined, complete }),
    {
      title: "A task with its history",
      description:
        "The task (JSON) with its acceptance criteria and every note, and its events, oldest first: who claimed, released, " +
        "completed or edited it, and when.",
      mimeType: "application/json",
    },
    (uri, variables, extra) =>
      context.read(uri, extra, async (call) => {
        const project = variable(projectId, variables.project_id);
        const id = variable(taskId("task_id"), variables.task_id);
        const task = await context.client.task(id, project, call);
        return { task, events: await context.client.events(id, project, call) };
      }),
  );
}

function registerProjectResource(server: McpServer, context: ServerContext): void {
  const complete = { project_id: (prefix: string) => knownProjects(context, prefix) };
  server.registerResource(
    "project",
    new ResourceTemplate("project://{project_id}", { list: () => projectResources(context), complete }),
    {
      title: "A project at a glance",
      description:
        "A project's task counts, its ready tasks in the order get_next_task hands them out, and who holds which task (JSON).",
      mimeType: "application/json",
    },
    (uri, variables, extra) =>
      context.read(uri, extra, (call) => projectAtAGlance(context.client, variable(projectId, variables.project_id), call)),
  );
}

/** resources/list: one project:// resource per project; none when the service cannot list them. */
async function projectResources(context: ServerContext) {
  try {
    const projects = await context.client.projects(context.backgroundCall());
    return {
      resources: projects.map((summary) => ({
        uri: `project://${summary.project_id}`,
        name: summary.project_id,
        title: `Project ${summary.project_id}`,
        description: `${summary.ready} ready, ${summary.blocked} blocked, ${summary.in_progress} in progress, ${summary.completed} completed`,
        mimeType: "application/json",
      })),
    };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    context.log("warn", { msg: "could not list the projects for resources/list", error: reason });
    return { resources: [] };
  }
}

const PROJECT_READY_SHOWN = 20;

async function projectAtAGlance(client: TrackerClient, project: string, call: CallContext) {
  const [projects, ready, inProgress] = await Promise.all([
    client.projects(call),
    client.listTaskLines({ project, ready: true, limit: PROJECT_READY_SHOWN }, call),
    client.listAllTasks({ project, status: "in_progress" }, call),
  ]);
  const summary = projects.find((entry) => entry.project_id === project);
  if (!summary) {
    const known =
      projects
        .map((entry) => entry.project_id)
        .slice(0, MAX_NAMED_PROJECTS)
        .join(", ") || "none";
    throw new ToolFailure(`Project ${project} has no tasks and no IDs; known projects: ${known}`);
  }
  const { project_id: _, ...counts } = summary;
  return {
    project_id: project,
    counts,
    ready: ready.tasks.map(compactTask),
    more_ready: ready.next_cursor !== null,
    in_progress: inProgress.map(compactTask),
  };
}

// ─── The prompts (slash commands in Claude Code) ───────────────────────────────────────────────

function registerPrompts(server: McpServer, config: Config): void {
  const project = config.project
    ? projectId.optional().describe(`Project ID (default ${config.project})`)
    : projectId.describe('Project ID, e.g. "ai-agent-mcp-server"');
  const projectOf = (value: string | undefined) => value ?? config.project!;
  server.registerPrompt(
    "work_next_task",
    {
      title: "Work on the next task",
      description: "Claim the next ready task of a project, do it, record progress and tick its criteria, and complete it.",
      argsSchema: { project_id: project },
    },
    ({ project_id }) => userMessage(workNextTaskPrompt(projectOf(project_id))),
  );
  const goal = boundedText("goal", 10_000).describe("What should be achieved");
  server.registerPrompt(
    "plan_goal",
    {
      title: "Plan a goal as tasks",
      description: "Break a goal into tasks with dependencies and add them to a project, with reserved IDs.",
      argsSchema: { project_id: project, goal },
    },
    ({ project_id, goal }) => userMessage(planGoalPrompt(projectOf(project_id), goal)),
  );
}

const userMessage = (text: string) => ({ messages: [{ role: "user" as const, content: { type: "text" as const, text } }] });

function workNextTaskPrompt(project: string): string {
  return [
    `Work on the next task of project "${project}" in the shared Task Tracking service.`,
    `1. Call get_next_task with project_id "${project}" and claim: true. If it returns no task, say so and stop.`,
    "2. Read the task: its description, inputs and outputs, its acceptance criteria, and its notes, which say what was tried and what is left. Do the work it describes.",
    `3. As you go, call update_task (project_id "${project}") with check: [n] when acceptance criterion n holds, and with a note when you finish a step or change course, so whoever resumes the task knows where you stopped.`,
    `4. When every criterion is ticked off, call update_task_status with its task_id, project_id "${project}", status "completed" and completion_notes saying what you did and where (files, commits, tests).`,
    `5. If you cannot finish it, call update_task_status with status "pending" and completion_notes saying why and what is left, so another agent can take it.`,
    "Work on this one task only. This server keeps your claim alive while the session runs.",
  ].join("\n");
}

function planGoalPrompt(project: string, goal: string): string {
  return [
    `Plan this goal as tasks in project "${project}" of the shared Task Tracking service:`,
    goal,
    "",
    "1. Break it into tasks that one session can finish each; note what each reads (inputs) and produces (outputs).",
    `2. Call reserve_id_range with artifact_type "TASK", count = the number of tasks, project_id "${project}".`,
    `3. Call add_task once with all the tasks: the reserved IDs, project_id "${project}", a description, acceptance_criteria (the checks that say the task is done), a priority (high, medium, low), depends_on naming the tasks that must be completed first, and parent_id when tasks are steps of a larger one.`,
    `4. Show the plan with list_tasks (project_id "${project}"). Do not start the work itself.`,
  ].join("\n");
}

// ─── Serving MCP over stdio: stdout for the protocol only, stdin guarded, a clean shutdown ─────

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

export type StopSignal = "SIGINT" | "SIGTERM" | "SIGHUP";

/** Everything serve() takes from the process, so tests run it in process. */
export interface ServeIO {
  stdin: Readable;
  /** The protocol stream: MCP messages and nothing else. */
  stdout: Writable;
  writeLog: (line: string) => void;
  onSignal: (signal: StopSignal, stop: () => void) => void;
  exit: (code: number) => void;
  fetch?: typeof fetch;
  sleep?: Sleep;
  schedule?: Schedule;
  shutdownGraceMs?: number;
  maxStdinLineBytes?: number;
}

/** Serves MCP until stdin closes or a signal arrives; then lets calls in flight finish (or aborts them) and exits 0. */
export async function serve(config: Config, io: ServeIO): Promise<void> {
  const log = createLog(config.logLevel, createRedactor([config.apiKey]), io.writeLog);
  const shutdown = new AbortController();
  const inFlight = new Set<Promise<unknown>>();
  const idleCollection = setTimeout(() => Bun.gc(true), IDLE_COLLECTION_MS).unref();
  const { fetch, sleep, schedule, writeLog } = io;
  const afterCall = () => idleCollection.refresh();
  const deps: ServerDeps = { fetch, sleep, schedule, writeLog, shutdownSignal: shutdown.signal, inFlight, afterCall };
  const server = createServer(config, { ...deps, adoptClaims: true });
  const maxLineBytes = io.maxStdinLineBytes ?? MAX_STDIN_LINE_BYTES;
  const onDrop = (bytes: number) =>
    log("warn", { msg: `dropped a message of ${bytes} bytes from the client: over the ${maxLineBytes}-byte limit` });
  const input = io.stdin.pipe(dropOversizedLines(onDrop, maxLineBytes));
  const transport = new StdioServerTransport(input, io.stdout);
  server.server.onerror = (error) =>
    log("warn", { msg: `ignored a malformed message from the client: ${error.message.slice(0, 300)}` });

  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log("info", { msg: `stopping: ${reason}` });
    const abortLate = setTimeout(() => shutdown.abort(), io.shutdownGraceMs ?? SHUTDOWN_GRACE_MS);
    await Promise.allSettled([...inFlight]);
    clearTimeout(abortLate);
    shutdown.abort(); // no claim is renewed from here on
    clearTimeout(idleCollection);
    await new Promise((resolve) => setImmediate(resolve)); // lets the SDK write the last answers
    await server.close().catch(() => {});
    io.exit(0);
  };
  io.stdin.on("end", () => void stop("stdin closed"));
  io.stdin.on("close", () => void stop("stdin closed"));
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) io.onSignal(signal, () => void stop(signal));

  await server.connect(transport);
  log("info", { msg: `${NAME} ${VERSION} ready`, url: config.displayUrl, agent_id: config.agentId });
}

// ─── doctor: the configuration, the service and the key, checked in plain words ────────────────

/** doctor's budget: 4 attempts of at most this, plus the 0.7 s of waits between them, stay near 6 s. */
const DOCTOR_ATTEMPT_TIMEOUT_MS = 1300;

export interface DoctorDeps {
  fetch?: typeof fetch;
  sleep?: Sleep;
  attemptTimeoutMs?: number;
}

/** What probably went wrong when /healthz could not be reached, beyond the error sentence. */
function healthHints(failure: ToolFailure, config: Config): string[] {
  const https = config.url.startsWith("https:");
  if (failure.status !== undefined && failure.status >= 300 && failure.status < 400) {
    return ["  The service redirects elsewhere: if you trust where it points, set TASK_TRACKING_URL to that address."];
  }
  if (failure.status === 404) {
    return [
      "  /healthz answered 404: TASK_TRACKING_URL probably has a wrong base path. It must be the URL under which the",
      "  service answers /healthz, e.g. http://localhost:8080, without /tasks or /api unless the service is mounted there.",
    ];
  }
  if (https && NETWORK_REASONS[failure.info.network ?? ""] === "TLS handshake failed") {
    return [
      "  The TLS handshake failed: the service probably speaks plain http on that port. Try TASK_TRACKING_URL with http://.",
    ];
  }
  // A tracker's every error has a code; a 400 without one to plain http is most often an https port's proxy.
  if (!https && failure.status === 400 && failure.code === undefined) {
    return ["  Something other than the tracker answered 400: if that port speaks https, set TASK_TRACKING_URL to https://…"];
  }
  if (!https && (failure.info.network === "ECONNRESET" || failure.info.network === "ConnectionClosed")) {
    return [
      "  The service dropped the connection or answered something that is not HTTP: if it expects https, set TASK_TRACKING_URL to https://…",
    ];
  }
  if (failure.info.network === "timeout") {
    return [
      "  Nothing answered in time: is the service stuck, or a firewall dropping the traffic? Check TASK_TRACKING_URL's host and port.",
    ];
  }
  return ["  Is it running there? Start it with `task-tracker` (`bun run tracker` in a checkout), or set TASK_TRACKING_URL."];
}

/** `doctor`: each check in plain words, a line per attempt while it waits; exit code 0 only if all is well. Never prints the key. */
export async function doctor(
  env: Record<string, string | undefined>,
  print: (line: string) => void,
  deps: DoctorDeps = {},
): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    print(`✗ configuration: ${(error as Error).message}`);
    if ((error as Error).message === NO_API_KEY) {
      const localKeyFile = localTrackerKeyFile(env) ?? "(none: HOME is not set)";
      print(
        `  Nor TASK_TRACKING_API_KEY_FILE, and the local tracker's key file ${localKeyFile} does not exist: start task-tracker`,
      );
      print("  once on this machine (it creates that file), or set a key for another tracker as below.");
    }
    print("  Set it in the env block of your MCP client's configuration (see --help).");
    return 1;
  }
  // Every line from here on names the URL, which may hold the key in its path.
  const redact = createRedactor([config.apiKey]);
  const say = (line: string) => print(redact(line));
  printConfiguration(config, env, say);
  const attemptTimeoutMs = Math.min(config.timeoutMs, deps.attemptTimeoutMs ?? DOCTOR_ATTEMPT_TIMEOUT_MS);
  const client = new TrackerClient(
    { ...config, timeoutMs: attemptTimeoutMs },
    {
      fetch: deps.fetch,
      sleep: deps.sleep,
      onRetry: (failure, attempt, delayMs) =>
        say(`  attempt ${attempt} of ${RETRY_DELAYS_MS.length + 1}: ${failure.message}; trying again in ${delayMs} ms`),
    },
  );
  return (await checkService(client, config, say)) && (await checkKey(client, config, say)) ? 0 : 1;
}

/** What doctor checks and why: the URL and the key, each with the variable it came from or the default it fell back to. */
function printConfiguration(config: Config, env: Record<string, string | undefined>, say: (line: string) => void): void {
  const urlSource = isSet(env, "TASK_TRACKING_URL") ? "TASK_TRACKING_URL" : "the default: TASK_TRACKING_URL is not set";
  const keySource = config.keyFromLocalTracker
    ? `the local tracker's key file ${config.apiKeyFile} (neither TASK_TRACKING_API_KEY nor TASK_TRACKING_API_KEY_FILE is set)`
    : config.apiKeyFile
      ? `the file ${config.apiKeyFile} (TASK_TRACKING_API_KEY_FILE)`
      : "TASK_TRACKING_API_KEY";
  say(
    `✓ configuration: service ${config.displayUrl} (${urlSource}), timeout ${config.timeoutMs} ms, key from ${keySource} (${config.apiKey.length} characters), ` +
      `agent ${config.agentId}, project ${config.project ?? "not set"}, lease ${config.leaseSeconds} s`,
  );
  if (config.ignoredApiKeyFile) {
    say(
      `! both TASK_TRACKING_API_KEY and TASK_TRACKING_API_KEY_FILE (${config.ignoredApiKeyFile}) are set: the variable is used, the file is not read`,
    );
  }
}

/** GET /healthz answers. */
async function checkService(client: TrackerClient, config: Config, say: (line: string) => void): Promise<boolean> {
  try {
    const health = await client.health(detachedCall());
    say(
      `✓ service reachable: ${config.displayUrl}/healthz says ${health.status}${health.version ? `, version ${health.version}` : ""}`,
    );
    return true;
  } catch (error) {
    if (!(error instanceof ToolFailure)) throw error;
    say(`✗ service: ${error.message}`);
    for (const hint of healthHints(error, config)) say(hint);
    return false;
  }
}

/** A read-only call with the key succeeds. */
async function checkKey(client: TrackerClient, config: Config, say: (line: string) => void): Promise<boolean> {
  try {
    await client.nextTask("task-tracking-mcp-doctor", "pending", detachedCall());
    say("✓ API key accepted (a read-only call succeeded)");
    return true;
  } catch (error) {
    if (!(error instanceof ToolFailure)) throw error;
    say(`✗ API key: ${error.message}`);
    if (error.status === 401) {
      say(
        config.keyFromLocalTracker
          ? `  The service rejected the local tracker's key (${config.apiKeyFile}): is ${config.displayUrl} another tracker? Set its key.`
          : config.apiKeyFile
            ? `  The service rejected the key: put one of the service's keys in ${config.apiKeyFile} (TASK_TRACKING_API_KEY_FILE).`
            : "  The service rejected the key: set TASK_TRACKING_API_KEY to one of the service's keys.",
      );
    }
    return false;
  }
}

// ─── The command line ──────────────────────────────────────────────────────────────────────────

const HELP = `${NAME} ${VERSION}: an MCP server (stdio) for the Task Tracking service.

Usage:
  ${NAME}             serve MCP over stdin/stdout (an MCP client such as Claude Code starts it)
  ${NAME} doctor      check the configuration, reach the service, prove the API key
  ${NAME} prime       print this agent's claims and the next ready tasks (a SessionStart hook)
  ${NAME} import FILE --project P [--dry-run] [--force] [--archive]
                                add the tasks of a markdown task list, a \`gh issue list --json\` dump or an export
  ${NAME} export --project P [--format markdown|json]
                                print every task of a project (markdown imports back)
  ${NAME} --version   print the version
  ${NAME} --help      print this help

Environment:
  TASK_TRACKING_API_KEY        the service's bearer key
  TASK_TRACKING_API_KEY_FILE   a file holding the key instead (TASK_TRACKING_API_KEY wins when both are set);
                               with neither, the local tracker's key file (\`task-tracker paths\` prints where)
  TASK_TRACKING_URL            base URL (default http://localhost:8080)
  TASK_TRACKING_TIMEOUT_MS     per attempt (default 5000)
  TASK_TRACKING_AGENT_ID       this agent's name, recorded on the tasks it claims
                               (default claude-<session> under Claude Code, else <host>-<pid>)
  TASK_TRACKING_PROJECT        this directory's project: the server tells the model to use it
  TASK_TRACKING_LEASE_SECONDS  lease asked for on every claim, 5-3600 (default 120); renewed every third
  LOG_LEVEL                    debug, info (default), warn or error; logs are JSON lines on stderr

Tools: get_next_task, update_task_status, list_tasks, get_task, update_task, get_next_available_id, reserve_id_range, add_task.
Resources: task://{project_id}/{task_id}, project://{project_id}. Prompts: work_next_task, plan_goal.

Claude Code, with the tracker on this machine (or install the plugin: see the README):
  claude mcp add --scope user task-tracking -- ${NAME}
`;

/** What `import` and `export` take of the server: the tools' configuration, client and failures (a type-only import). */
export const transferHost: TransferHost = {
  connect(env, fetchImpl) {
    const client = new TrackerClient(loadConfig(env), { fetch: fetchImpl });
    return {
      tasks: (project) => client.listAllTasks({ project }, detachedCall()),
      read: (schema, path) => client.sendFor(schema, { method: "GET", path, idempotent: false }, detachedCall()),
      write: async (method, path, body) => void (await client.send({ method, path, body, idempotent: true }, detachedCall())),
    };
  },
  failureOf(error) {
    if (error instanceof ToolFailure) return { sentence: error.message, status: error.status };
    return error instanceof ConfigError ? { sentence: error.message } : undefined;
  },
  projectProblem: (project) => projectId.safeParse(project).error?.issues[0]?.message,
};

/** What `prime` takes of the server: its client's GET and failures, and the redactor (a type-only import). */
export const primeHost: PrimeHost = {
  get: (config, path, signal) => new TrackerClient(config).send({ method: "GET", path, idempotent: false }, newCall(signal)),
  failureOf: transferHost.failureOf,
  redact: (secret, text) => createRedactor([secret])(text),
};

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
  if (command === "doctor") {
    if (argv.length > 1) {
      console.error(`${NAME} doctor: unknown option ${JSON.stringify(argv[1])}; doctor takes no options (see ${NAME} --help)`);
      return 2;
    }
    return doctor(process.env, (line) => console.log(line));
  }
  // Loaded only here, as import and export below: the server's start never parses them.
  if (command === "prime") return (await import("./prime.ts")).runPrime(argv.slice(1), primeHost);
  if (command === "import" || command === "export") {
    // Loaded only here: the server's start never parses import and export.
    const transfer = await import("./transfer.ts");
    const run = command === "import" ? transfer.runImport : transfer.runExport;
    return run(argv.slice(1), transfer.cliIo(), transferHost);
  }
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
  await serve(config, {
    stdin: process.stdin,
    stdout: reserveStdoutForProtocol(),
    writeLog: (line) => process.stderr.write(line),
    onSignal: (signal, stop) => process.on(signal, stop),
    exit: (code) => process.exit(code),
  });
  return undefined; // keeps serving until stdin closes or a signal arrives
}

if (import.meta.main) {
  const code = await main();
  if (code !== undefined) process.exit(code);
}
