// The HTTP layer of the Task Tracking service (API.md) on Bun.serve: routing, authentication,
// body limits, JSON, idempotency, X-Request-Id, the access log and the one error handler.
// It knows nothing of SQL: everything durable goes through a Storage.

import { createHash, timingSafeEqual } from "node:crypto";
import { lookup } from "node:dns/promises";
import packageJson from "../../package.json" with { type: "json" };
import {
  ApiError,
  ARTIFACT_TYPE_RULE,
  DEFAULT_CLAIM_TTL_SECONDS,
  formatArtifactId,
  isArtifactType,
  isPrintableAscii,
  isProjectId,
  isTaskId,
  isTaskStatus,
  isUuid,
  MAX_AGENT_ID_LENGTH,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  parseRegistryImport,
  parseReservationRequest,
  parseStatusUpdate,
  parseTaskBatch,
  PROJECT_ID_RULE,
  reservedIds,
  TASK_ID_RULE,
  taskNotFound,
  validationError,
  type Reservation,
  type Task,
  type TaskStatus,
} from "../domain.ts";
import { createLogger, describeError, type Logger, type LogLevel, type LogSink } from "../log.ts";
import { openPostgresStorage } from "../storage/postgres.ts";
import { openSqliteStorage, type SyncMode } from "../storage/sqlite.ts";
import { StoredResponseReplay, type IdempotencyClaim, type IdempotentWrite, type Storage } from "../storage/storage.ts";

export const MAX_BODY_BYTES = 1024 * 1024;
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/** How long an in-flight Idempotency-Key blocks its twins before it counts as abandoned. */
export const IDEMPOTENCY_LEASE_MS = 60_000;
const IDEMPOTENCY_PURGE_INTERVAL_MS = 10 * 60 * 1000;

export interface TrackerOptions {
  /** Storage to serve; the caller keeps ownership (stop() does not close it). */
  storage?: Storage;
  /** Without `storage`: a SQLite file (or `:memory:`) that startTracker opens and stop() closes. */
  dbPath?: string;
  /** Without `storage`: a postgres:// URL, opened and closed like `dbPath` (which it overrides). */
  databaseUrl?: string;
  sync?: SyncMode;
  apiKeys: readonly string[];
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Default 127.0.0.1: a local tracker is not on the network until its owner says so. */
  host?: string;
  reservationTtlSeconds?: number;
  logLevel?: LogLevel;
  /** Where log lines go; default stderr. */
  logSink?: LogSink;
  version?: string;
  /** The clock; tests move it instead of waiting. */
  now?: () => Date;
  /** How long stop() waits for requests in flight before it closes their connections. Default 10 s. */
  shutdownGraceMs?: number;
}

export interface RunningTracker {
  url: string;
  port: number;
  storage: Storage;
  logger: Logger;
  /** Stops accepting connections, waits for requests in flight, then closes what it opened. */
  stop(): Promise<void>;
}

/** What a handler produces; the response is built once, with the common headers, in one place. */
interface Reply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

interface RequestContext {
  request: Request;
  url: URL;
  params: string[];
  /** Hex SHA-256 of the caller's API key: the scope of its Idempotency-Keys. */
  scope: string;
  /** Raw body text of a POST or PUT (already limited to MAX_BODY_BYTES). */
  bodyText: string;
  claim: IdempotencyClaim | null;
}

type Handler = (context: RequestContext) => Promise<Reply>;

interface Route {
  method: "GET" | "POST" | "PUT";
  /** Path segments; a segment starting with ':' is a parameter. */
  segments: string[];
  /** Carries Idempotency-Key (POST, PUT and GET /ids/next). */
  idempotent: boolean;
  /** The query parameters it takes; any other, or one given twice, is a 400. */
  query: readonly string[];
  handler: Handler;
}

class MethodNotAllowed extends ApiError {
  constructor(
    method: string,
    readonly allow: readonly string[],
  ) {
    super("method_not_allowed", `Method ${method} is not allowed here; use ${allow.join(" or ")}`);
  }
}

function json(status: number, value: unknown): Reply {
  return { status, body: JSON.stringify(value) };
}

function errorReply(error: ApiError): Reply {
  return json(error.status, { error: error.message, code: error.code });
}

const INTERNAL_ERROR_BODY = JSON.stringify({ error: "Internal error", code: "internal" });
/** nginx's "client closed request": for the access log only, as the client is gone and hears nothing. */
const CLIENT_CLOSED_REQUEST = 499;
const UNAUTHORIZED = new ApiError("unauthorized", "Unauthorized");

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The scope of an API key's Idempotency-Keys: its SHA-256, so the key itself is never stored. */
export function apiKeyScope(apiKey: string): string {
  return sha256(apiKey).toString("hex");
}

/** What makes two requests "the same request" for an Idempotency-Key: method, path with query, body. */
export function requestFingerprint(method: string, pathAndQuery: string, body: string): string {
  return createHash("sha256").update(`${method} ${pathAndQuery}\n${body}`).digest("hex");
}

/** Decodes and checks a path parameter: odd characters or lengths are a 400 naming it. */
function pathParam(value: string | undefined, name: string, test: (value: string) => boolean, rule: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(value ?? "");
  } catch {
    throw validationError(`${name} in the path is not valid percent-encoding`);
  }
  if (!test(decoded)) throw validationError(`${name} must be ${rule}`);
  return decoded;
}

function queryParam(url: URL, name: string, test: (value: string) => boolean, rule: string): string {
  const value = url.searchParams.get(name);
  if (value === null || value === "") throw validationError(`${name} is required`);
  if (!test(value)) throw validationError(`${name} must be ${rule}`);
  return value;
}

/** How API.md writes a route: `GET /tasks/<task_id>`. */
function describeRoute(route: Route): string {
  const path = route.segments.map((segment) => (segment.startsWith(":") ? `<${segment.slice(1)}>` : segment)).join("/");
  return `${route.method} /${path}`;
}

/**
 * Treated as unknown body fields are: a typo must not pass silently, and a repeated parameter must
 * not quietly let its first value win (`type=US&type=SPEC` allocating a US ID).
 */
function checkQueryParams(url: URL, route: Route): void {
  for (const name of new Set(url.searchParams.keys())) {
    if (!route.query.includes(name)) {
      const takes = route.query.length === 0 ? "it takes none" : `it takes ${route.query.join(", ")}`;
      throw validationError(`${name || '""'} is not a known query parameter of ${describeRoute(route)} (${takes})`);
    }
    const count = url.searchParams.getAll(name).length;
    if (count > 1) throw validationError(`${name} must be given once, not ${count} times`);
  }
}

/**
 * HEAD runs a GET route (Bun sends the headers and leaves out the body), but not a GET that
 * allocates: the ID would be spent where nobody can see it.
 */
function answersHead(route: Route): boolean {
  return route.method === "GET" && !route.idempotent;
}

/**
 * The URL to route by. Bun builds request.url from the Host header: with no usable Host (HTTP/1.0,
 * `Host:` empty, `Host: a b`) it is the bare path, and with a malformed one (`Host: [::1`) it does
 * not parse. Routing needs only the path and query, so they are taken as sent, whatever Host says.
 */
function requestUrl(request: Request): URL {
  const host = request.headers.get("host");
  const prefix = `http://${host}`;
  const target = host !== null && request.url.startsWith(prefix) ? request.url.slice(prefix.length) : request.url;
  // Not `new URL(target, base)`: that would read a path starting with `//` as a host.
  return new URL(target.startsWith("/") ? `http://localhost${target}` : target);
}

/** The client hung up before its request was read: its own doing, not a server error. */
function isClientGone(request: Request, error: unknown): boolean {
  return request.signal.aborted && error instanceof Error && error.name === "AbortError";
}

function parseJsonBody(text: string): unknown {
  if (text.trim() === "") throw validationError("The request body must be a JSON object, and it is empty");
  try {
    return JSON.parse(text);
  } catch {
    throw validationError("The request body is not valid JSON");
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads at most MAX_BODY_BYTES: the declared length is checked first, the bytes actually read too. */
async function readBody(request: Request): Promise<string> {
  const tooLarge = () => new ApiError("payload_too_large", `The request body is larger than ${MAX_BODY_BYTES} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) throw tooLarge();
  if (request.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  try {
    return utf8.decode(bytes);
  } catch {
    throw validationError("The request body is not valid UTF-8");
  }
}

function taskIdParam(context: RequestContext): string {
  return pathParam(context.params[0], "task_id", isTaskId, TASK_ID_RULE);
}

function agentIdHeader(context: RequestContext): string | null {
  const agentId = context.request.headers.get("x-agent-id");
  if (agentId !== null && (agentId.length === 0 || !isPrintableAscii(agentId, MAX_AGENT_ID_LENGTH))) {
    throw validationError(`X-Agent-Id must be 1 to ${MAX_AGENT_ID_LENGTH} printable ASCII characters`);
  }
  return agentId;
}

function reservationBody(reservation: Reservation) {
  return {
    reservation_id: reservation.reservationId,
    reserved_ids: reservedIds(reservation),
    expires_at: reservation.expiresAt,
    artifact_type: reservation.artifactType,
    project_id: reservation.projectId,
  };
}

function pickRequestId(header: string | null): string {
  return header !== null && header.length > 0 && isPrintableAscii(header, 128) ? header : crypto.randomUUID();
}

export async function startTracker(options: TrackerOptions): Promise<RunningTracker> {
  if (options.apiKeys.length === 0) throw new Error("startTracker needs at least one API key.");
  const ownsStorage = options.storage === undefined;
  const storage =
    options.storage ??
    (options.databaseUrl !== undefined
      ? await openPostgresStorage({ url: options.databaseUrl })
      : await openSqliteStorage({ path: options.dbPath ?? ":memory:", sync: options.sync }));
  const logger = createLogger(options.logLevel ?? "info", options.logSink);
  const version = options.version ?? packageJson.version;
  const now = options.now ?? (() => new Date());
  const reservationTtlMs = (options.reservationTtlSeconds ?? 3600) * 1000;
  // Digests of the keys: compared in constant time, and the scope of Idempotency-Keys.
  const keyDigests = options.apiKeys.map((key) => sha256(key));
  const keyScopes = keyDigests.map((digest) => digest.toString("hex"));

  /** Returns the scope of the caller's key, or null. Every configured key is compared, always. */
  function authenticate(request: Request): string | null {
    const header = request.headers.get("authorization");
    if (header === null || header.length < 8 || header.slice(0, 7).toLowerCase() !== "bearer ") return null;
    const presented = sha256(header.slice(7).trim());
    let scope: string | null = null;
    for (let i = 0; i < keyDigests.length; i++) {
      if (timingSafeEqual(presented, keyDigests[i]!) && scope === null) scope = keyScopes[i]!;
    }
    return scope;
  }

  /**
   * Runs a write with the request's Idempotency-Key, if any: the storage stores the rendered
   * reply in the same transaction as the effect.
   */
  async function write<Result>(
    context: RequestContext,
    run: (idempotency: IdempotentWrite<Result> | undefined) => Promise<Result>,
    render: (result: Result) => Reply,
  ): Promise<Reply> {
    let rendered: Reply | undefined;
    const claim = context.claim;
    const idempotency = claim ? { claim, respond: (result: Result) => (rendered = render(result)) } : undefined;
    const result = await run(idempotency);
    return rendered ?? render(result);
  }

  const routes: Route[] = [
    {
      method: "GET",
      segments: ["tasks", "next"],
      idempotent: false,
      query: ["project", "status"],
      async handler({ url }) {
        const projectId = queryParam(url, "project", isProjectId, PROJECT_ID_RULE);
        const status = url.searchParams.get("status") ?? "pending";
        if (!isTaskStatus(status)) throw validationError("status must be one of pending, in_progress, completed");
        return json(200, { task: await storage.findNextTask(projectId, status as TaskStatus) });
      },
    },
    {
      method: "POST",
      segments: ["tasks", "batch"],
      idempotent: true,
      query: [],
      async handler(context) {
        const tasks = parseTaskBatch(parseJsonBody(context.bodyText));
        return write<string[]>(
          context,
          (idempotency) => storage.addTasks(tasks, now(), agentIdHeader(context), idempotency),
          (taskIds) => json(201, { success: true, tasks_added: taskIds.length, task_ids: taskIds }),
        );
      },
    },
    {
      method: "GET",
      segments: ["tasks", ":task_id"],
      idempotent: false,
      query: [],
      async handler(context) {
        const ref = { projectId: null, taskId: taskIdParam(context) };
        const task = await storage.getTask(ref);
        if (!task) throw taskNotFound(ref);
        return json(200, { task });
      },
    },
    {
      method: "PUT",
      segments: ["tasks", ":task_id", "status"],
      idempotent: true,
      query: [],
      async handler(context) {
        const taskId = taskIdParam(context);
        const agentId = agentIdHeader(context);
        const update = parseStatusUpdate(parseJsonBody(context.bodyText));
        return write<Task>(
          context,
          (idempotency) =>
            storage.changeTaskStatus(
              {
                ref: { projectId: null, taskId },
                to: update.status,
                completionNotes: update.completionNotes,
                agentId,
                leaseSeconds: update.leaseSeconds ?? DEFAULT_CLAIM_TTL_SECONDS,
                force: update.force,
                now: now(),
              },
              idempotency,
            ),
          (task) => json(200, { updated_task: task }),
        );
      },
    },
    {
      method: "GET",
      segments: ["ids", "next"],
      idempotent: true,
      query: ["type", "project"],
      async handler(context) {
        const artifactType = queryParam(context.url, "type", isArtifactType, ARTIFACT_TYPE_RULE);
        const projectId = queryParam(context.url, "project", isProjectId, PROJECT_ID_RULE);
        return write<number>(
          context,
          (idempotency) => storage.allocateId(projectId, artifactType, idempotency),
          (number) =>
            json(200, {
              next_id: formatArtifactId(artifactType, number),
              artifact_type: artifactType,
              project_id: projectId,
              number,
            }),
        );
      },
    },
    {
      method: "POST",
      segments: ["ids", "reserve"],
      idempotent: true,
      query: [],
      async handler(context) {
        const request = parseReservationRequest(parseJsonBody(context.bodyText));
        const createdAt = now();
        return write<Reservation>(
          context,
          (idempotency) =>
            storage.reserveIds(
              {
                // Time-ordered (UUIDv7): new reservations append to the table's B-tree, where random
                // IDs dirtied a random page each, which every checkpoint then had to write (bench/).
                reservationId: Bun.randomUUIDv7(),
                projectId: request.projectId,
                artifactType: request.artifactType,
                count: request.count,
                createdAt,
                expiresAt: new Date(createdAt.getTime() + reservationTtlMs),
              },
              idempotency,
            ),
          (reservation) => json(201, reservationBody(reservation)),
        );
      },
    },
    {
      method: "GET",
      segments: ["ids", "reservations", ":reservation_id"],
      idempotent: false,
      query: [],
      async handler(context) {
        const reservationId = pathParam(context.params[0], "reservation_id", (id) => isUuid(id.toLowerCase()), "a UUID");
        const reservation = await storage.getReservation(reservationId.toLowerCase());
        if (!reservation) throw new ApiError("not_found", `Reservation not found: ${reservationId}`);
        const status = now().getTime() < Date.parse(reservation.expiresAt) ? "active" : "expired";
        return json(200, { ...reservationBody(reservation), status });
      },
    },
    {
      method: "PUT",
      segments: ["ids", "registry", ":project_id", ":artifact_type"],
      idempotent: true,
      query: [],
      async handler(context) {
        const projectId = pathParam(context.params[0], "project_id", isProjectId, PROJECT_ID_RULE);
        const artifactType = pathParam(context.params[1], "artifact_type", isArtifactType, ARTIFACT_TYPE_RULE);
        const lastAssigned = parseRegistryImport(parseJsonBody(context.bodyText));
        return write<number>(
          context,
          (idempotency) => storage.raiseIdCounter(projectId, artifactType, lastAssigned, idempotency),
          (last) => json(200, { project_id: projectId, artifact_type: artifactType, last_assigned_id: last }),
        );
      },
    },
  ];

  /** Literal routes come first in the table, so /tasks/next wins over /tasks/:task_id. */
  function findRoute(method: string, segments: readonly string[]): { route: Route; params: string[] } | { allow: string[] } {
    const allow: string[] = [];
    for (const route of routes) {
      if (route.segments.length !== segments.length) continue;
      const params: string[] = [];
      let matches = true;
      for (let i = 0; i < segments.length && matches; i++) {
        const expected = route.segments[i]!;
        if (expected.startsWith(":")) params.push(segments[i]!);
        else matches = expected === segments[i];
      }
      if (!matches) continue;
      if (route.method === method || (method === "HEAD" && answersHead(route))) return { route, params };
      if (!allow.includes(route.method)) allow.push(route.method);
    }
    return { allow };
  }

  async function healthz(): Promise<Reply> {
    try {
      await storage.ping();
      return json(200, { status: "ok", version });
    } catch (error) {
      logger.log("error", "health check failed", describeError(error));
      return errorReply(new ApiError("unavailable", "The database is unreachable"));
    }
  }

  async function release(claim: IdempotencyClaim): Promise<void> {
    await storage.releaseIdempotencyKey(claim).catch((releaseError: unknown) => {
      logger.log("error", "could not release an idempotency key", describeError(releaseError));
    });
  }

  async function runIdempotent(route: Route, context: RequestContext, key: string): Promise<Reply> {
    const fingerprint = requestFingerprint(
      context.request.method,
      context.url.pathname + context.url.search,
      context.bodyText,
    );
    const outcome = await storage.claimIdempotencyKey({
      scope: context.scope,
      key,
      fingerprint,
      now: now(),
      leaseMs: IDEMPOTENCY_LEASE_MS,
      retentionMs: IDEMPOTENCY_RETENTION_MS,
    });
    switch (outcome.outcome) {
      case "replay":
        return { ...outcome.response, headers: { "Idempotent-Replayed": "true" } };
      case "mismatch":
        throw new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for a different request");
      case "in_flight":
        throw new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still running; retry later");
      case "claimed":
        break;
    }
    const claim = outcome.claim;
    try {
      return await route.handler({ ...context, claim });
    } catch (error) {
      // A twin (on another instance) answered first: its stored response is this request's answer.
      if (error instanceof StoredResponseReplay) return { ...error.response, headers: { "Idempotent-Replayed": "true" } };
      // A 4xx is the answer to this request, so a retry gets it again; a 5xx is not stored.
      if (error instanceof ApiError && error.status < 500 && !error.code.startsWith("idempotency_")) {
        const reply = errorReply(error);
        try {
          await storage.saveIdempotentResponse(claim, reply);
        } catch (saveError) {
          // The answer stands; unsaved, a retry simply computes it again.
          logger.log("error", "could not store an idempotent 4xx response", describeError(saveError));
          await release(claim);
        }
        return reply;
      }
      await release(claim);
      throw error;
    }
  }

  async function route(request: Request, url: URL): Promise<Reply> {
    const segments = url.pathname.split("/").slice(1);
    if (segments.length === 1 && segments[0] === "healthz") {
      if (request.method !== "GET" && request.method !== "HEAD") throw new MethodNotAllowed(request.method, ["GET"]);
      return healthz();
    }
    const scope = authenticate(request);
    if (scope === null) throw UNAUTHORIZED;
    const match = findRoute(request.method, segments);
    if (!("route" in match)) {
      if (match.allow.length > 0) throw new MethodNotAllowed(request.method, match.allow);
      throw new ApiError("not_found", `No such endpoint: ${request.method} ${url.pathname.slice(0, 200)}`);
    }
    const { route, params } = match;
    checkQueryParams(url, route);
    const key = route.idempotent ? request.headers.get("idempotency-key") : null;
    if (key !== null && (key.length === 0 || !isPrintableAscii(key, MAX_IDEMPOTENCY_KEY_LENGTH))) {
      throw validationError(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`);
    }
    const bodyText = route.method === "GET" ? "" : await readBody(request);
    const context: RequestContext = { request, url, params, scope, bodyText, claim: null };
    return key === null ? route.handler(context) : runIdempotent(route, context, key);
  }

  function toResponse(reply: Reply, requestId: string): Response {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      "Cache-Control": "no-store",
      "X-Request-Id": requestId,
      ...reply.headers,
    };
    return new Response(reply.body, { status: reply.status, headers });
  }

  function replyForError(error: unknown, requestId: string): Reply {
    if (error instanceof ApiError && error.status < 500) {
      const reply = errorReply(error);
      if (error.status === 401) reply.headers = { "WWW-Authenticate": "Bearer" };
      if (error instanceof MethodNotAllowed) reply.headers = { Allow: error.allow.join(", ") };
      // The rest of the body may still be on its way: close rather than read it.
      if (error.code === "payload_too_large") reply.headers = { Connection: "close" };
      return reply;
    }
    logger.log("error", "request failed", { request_id: requestId, ...describeError(error) });
    if (error instanceof ApiError) return errorReply(error);
    return { status: 500, body: INTERNAL_ERROR_BODY };
  }

  async function handle(request: Request): Promise<Response> {
    const started = performance.now();
    const requestId = pickRequestId(request.headers.get("x-request-id"));
    let reply: Reply;
    let path = "";
    try {
      const url = requestUrl(request);
      path = url.pathname;
      if (logger.enabled("debug")) {
        logger.log("debug", "request started", { method: request.method, path: path.slice(0, 300), request_id: requestId });
      }
      reply = await route(request, url);
    } catch (error) {
      reply = isClientGone(request, error) ? { status: CLIENT_CLOSED_REQUEST, body: "" } : replyForError(error, requestId);
    }
    const level = reply.status >= 500 ? "error" : "info";
    if (logger.enabled(level)) {
      logger.log(level, "request", {
        method: request.method,
        path: path.slice(0, 300),
        status: reply.status,
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
        request_id: requestId,
      });
    }
    return toResponse(reply, requestId);
  }

  const hostname = options.host ?? "127.0.0.1";
  let server: ReturnType<typeof Bun.serve>;
  try {
    // Bun.serve reports a name that does not resolve as some failure to listen (EINVAL, ENOENT,
    // even EADDRINUSE); resolving it first makes a bad host fail as one (syscall getaddrinfo).
    await lookup(hostname);
    server = Bun.serve({
      port: options.port ?? 8080,
      hostname,
      development: false,
      // With `development: false` Bun sets SO_REUSEPORT unless told not to: a second tracker on a
      // busy port would start, and the kernel would split requests between two databases.
      reusePort: false,
      // No limit of Bun's own: readBody enforces MAX_BODY_BYTES (declared or read) and answers with
      // the contract's 413 body, where Bun would answer with an empty one.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      fetch: handle,
      error(error) {
        logger.log("error", "unhandled server error", describeError(error));
        return toResponse({ status: 500, body: INTERNAL_ERROR_BODY }, crypto.randomUUID());
      },
    });
  } catch (error) {
    // Port taken or host unknown: do not leave a database open behind the error.
    if (ownsStorage) await storage.close();
    throw error;
  }

  const purgeOldKeys = () => {
    storage
      .deleteIdempotencyKeysBefore(new Date(now().getTime() - IDEMPOTENCY_RETENTION_MS))
      .catch((error: unknown) => logger.log("error", "could not purge old idempotency keys", describeError(error)));
  };
  purgeOldKeys();
  const purgeTimer = setInterval(purgeOldKeys, IDEMPOTENCY_PURGE_INTERVAL_MS);
  purgeTimer.unref();

  const port = server.port ?? 0;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname}:${port}`,
    port,
    storage,
    logger,
    stop() {
      stopping ??= (async () => {
        clearInterval(purgeTimer);
        // Requests in flight get a grace period; a client that never finishes its request does not
        // keep the tracker from stopping.
        const graceful = server.stop();
        const deadline = setTimeout(() => {
          logger.log("warn", "requests still open at the shutdown deadline; closing them");
          void server.stop(true);
        }, options.shutdownGraceMs ?? 10_000);
        await graceful;
        clearTimeout(deadline);
        if (ownsStorage) await storage.close();
        logger.flush();
      })();
      return stopping;
    },
  };
}
