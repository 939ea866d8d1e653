// The request pipeline, written once around every handler of the route table (routes.ts):
// routing, authentication (keys.ts), the key's rate limit and role, query, path and body checks, the
// key's projects, X-Agent-Id, idempotency, the one error mapping, X-Request-Id and the access log.
// Handlers only parse what they are given, call the storage and encode.

import { createHash } from "node:crypto";
import type { Server } from "bun";
import { z } from "zod";
import {
  ApiError,
  idempotencyInFlight,
  idempotencyMismatch,
  isPrintableAscii,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  RetryLater,
  validationError,
} from "../domain.ts";
import { type Access, type KeyHolder, RateLimiter, roleAllows, roleForbids } from "../keys.ts";
import { describeError, type Logger } from "../log.ts";
import { type IdempotencyClaim, StoredResponseReplay } from "../storage/storage.ts";
import { checkProjects, type KeyBook } from "./keys.ts";
import { parseAgentId, parseInput } from "./schemas.ts";
import type { Call, Handler, Reply, Route, Services } from "./types.ts";

export const MAX_BODY_BYTES = 1024 * 1024;
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/** How long an in-flight Idempotency-Key blocks its twins before it counts as abandoned. */
export const IDEMPOTENCY_LEASE_MS = 60_000;

/** Every method some route takes: the Allow of a request that names no path (CONNECT host:443). */
const SERVED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE";

export function json(status: number, value: unknown): Reply {
  return { status, body: JSON.stringify(value) };
}

function errorReply(error: ApiError): Reply {
  return json(error.status, { error: error.message, code: error.code });
}

const INTERNAL_ERROR_BODY = JSON.stringify({ error: "Internal error", code: "internal" });
/** nginx's "client closed request": for the access log only, as the client is gone and hears nothing. */
const CLIENT_CLOSED_REQUEST = 499;
const UNAUTHORIZED = new ApiError("unauthorized", "Unauthorized");

class MethodNotAllowed extends ApiError {
  constructor(
    method: string,
    readonly allow: string,
  ) {
    super("method_not_allowed", `Method ${method} is not allowed here; use ${allow.split(", ").join(" or ")}`);
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** The scope of an API key's Idempotency-Keys: its SHA-256, so the key itself is never stored. */
export function apiKeyScope(apiKey: string): string {
  return sha256(apiKey).toString("hex");
}

/**
 * What makes two requests "the same request" for an Idempotency-Key: method, path with query, body.
 * Bun's one-shot SHA-256: the same digest as node:crypto's, without building a Hash object per request.
 */
export function requestFingerprint(method: string, pathAndQuery: string, body: string): string {
  return Bun.SHA256.hash(`${method} ${pathAndQuery}\n${body}`, "hex");
}

/** How API.md writes a route: `GET /tasks/<task_id>`. */
export function describeRoute(route: Pick<Route, "method" | "path">): string {
  return `${route.method} ${route.path.replace(/\{(\w+)\}/g, "<$1>")}`;
}

/** The holder of a request to a route that takes no key (GET /healthz, GET /openapi.json). */
const NO_KEY: KeyHolder = { name: "", role: "viewer", projects: null, scope: "", rateLimit: null };

/** What a route needs of a key's role (keys.ts, roleAllows). */
function accessOf(route: Route): Access {
  if (route.admin) return "admin";
  if (route.reads) return "read";
  return route.method === "GET" && !route.idempotent ? "read" : "write";
}

// ---------------------------------------------------------------------------
// Routing.

interface Match {
  route: Route;
  /** Path parameters as sent (still percent-encoded). */
  rawParams: Record<string, string>;
}

/** The path exists with other methods (`allow`), or not at all (`allow` empty). */
interface NoMatch {
  allow: string;
  /** The path is one that needs no key (GET /healthz): its 405 needs none either. */
  isPublic: boolean;
}

type Router = (method: string, segments: readonly string[]) => Match | NoMatch;

/** The methods of the board's files (PipelineOptions.pages). */
const PAGE_METHODS = "GET, HEAD";

/** Routes in table order: literal routes come first, so /tasks/next wins over /tasks/{task_id}. */
function createRouter(routes: readonly Route[], pages: readonly string[]): Router {
  const compiled = routes.map((route) => ({ route, segments: route.path.split("/").slice(1) }));
  const pagePaths = new Set(pages);
  return (method: string, segments: readonly string[]): Match | NoMatch => {
    // Bun.serve answers a page's GET and HEAD itself; any other method of it comes here.
    const isPage = pagePaths.has(`/${segments.join("/")}`);
    if (isPage && method !== "GET" && method !== "HEAD") return { allow: PAGE_METHODS, isPublic: true };
    const allow: string[] = [];
    let isPublic = false;
    for (const { route, segments: expected } of compiled) {
      if (expected.length !== segments.length) continue;
      const rawParams: Record<string, string> = {};
      let matches = true;
      for (let i = 0; i < segments.length && matches; i++) {
        const part = expected[i]!;
        if (part.startsWith("{")) rawParams[part.slice(1, -1)] = segments[i]!;
        else matches = part === segments[i];
      }
      if (!matches) continue;
      if (route.method === method || (method === "HEAD" && route.head)) return { route, rawParams };
      if (!allow.includes(route.method)) allow.push(route.method);
      isPublic ||= !route.auth;
    }
    return { allow: allow.join(", "), isPublic };
  };
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

// ---------------------------------------------------------------------------
// Input checks.

function decodePathParams(rawParams: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(rawParams)) {
    try {
      params[name] = decodeURIComponent(value);
    } catch {
      throw validationError(`${name} in the path is not valid percent-encoding`);
    }
  }
  return params;
}

/**
 * Treated as unknown body fields are: a typo must not pass silently, and a repeated parameter must
 * not quietly let its first value win (`type=US&type=SPEC` allocating a US ID).
 */
function readQuery(url: URL, route: Route): Record<string, string | string[]> {
  const known = route.query ? Object.keys(route.query.shape) : [];
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    if (!known.includes(name)) {
      const takes = known.length === 0 ? "it takes none" : `it takes ${known.join(", ")}`;
      throw validationError(`${name || '""'} is not a known query parameter of ${describeRoute(route)} (${takes})`);
    }
    const values = url.searchParams.getAll(name);
    // A parameter whose schema is a list (label) is repeatable: every value counts.
    if (isList(route.query!.shape[name])) {
      query[name] = values;
      continue;
    }
    if (values.length > 1) throw validationError(`${name} must be given once, not ${values.length} times`);
    query[name] = values[0]!;
  }
  return query;
}

function isList(schema: unknown): boolean {
  const inner = schema instanceof z.ZodOptional ? schema.unwrap() : schema;
  return inner instanceof z.ZodArray;
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
  // A declared length bounds the body (HTTP/1.1 framing): read it whole, without the stream's
  // per-chunk promises (a tenth of a claim's pipeline). Chunked bodies are counted as they come.
  if (declared !== null) return decodeUtf8(await request.bytes());
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return decodeUtf8(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw validationError("The request body is not valid UTF-8");
  }
}

function readIdempotencyKey(request: Request, route: Route): string | null {
  const key = route.idempotent ? request.headers.get("idempotency-key") : null;
  if (key !== null && (key.length === 0 || !isPrintableAscii(key, MAX_IDEMPOTENCY_KEY_LENGTH))) {
    throw validationError(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`);
  }
  return key;
}

// ---------------------------------------------------------------------------
// Idempotency.

interface Prepared {
  url: URL;
  scope: string;
  bodyText: string;
  /** The Idempotency-Key (checked), if the route takes one and the request sends it. */
  key: string | null;
  /** Runs the handler; `claim` is the Idempotency-Key it holds, if any. */
  run(claim: IdempotencyClaim | null): Promise<Reply>;
}

function idempotencyRunner(services: Services) {
  const { storage, logger, now } = services;
  const release = (claim: IdempotencyClaim) =>
    storage.releaseIdempotencyKey(claim).catch((error: unknown) => {
      logger.log("error", "could not release an idempotency key", describeError(error));
    });

  /** A 4xx is the answer to this request, so a retry gets it again; a 5xx is not stored. */
  async function keepAnswer(claim: IdempotencyClaim, error: unknown): Promise<Reply> {
    // A twin (on another instance) answered first: its stored response is this request's answer.
    if (error instanceof StoredResponseReplay) return { ...error.response, headers: { "Idempotent-Replayed": "true" } };
    if (!(error instanceof ApiError) || error.status >= 500 || error.code.startsWith("idempotency_")) {
      await release(claim);
      throw error;
    }
    const reply = errorReply(error);
    try {
      await storage.saveIdempotentResponse(claim, { status: reply.status, body: reply.body as string });
    } catch (saveError) {
      // The answer stands; unsaved, a retry simply computes it again.
      logger.log("error", "could not store an idempotent 4xx response", describeError(saveError));
      await release(claim);
    }
    return reply;
  }

  return async (request: Request, prepared: Prepared, key: string): Promise<Reply> => {
    const fingerprint = requestFingerprint(request.method, prepared.url.pathname + prepared.url.search, prepared.bodyText);
    const outcome = await storage.claimIdempotencyKey({
      scope: prepared.scope,
      key,
      fingerprint,
      now: now(),
      leaseMs: IDEMPOTENCY_LEASE_MS,
      retentionMs: IDEMPOTENCY_RETENTION_MS,
    });
    if (outcome.outcome === "replay") return { ...outcome.response, headers: { "Idempotent-Replayed": "true" } };
    if (outcome.outcome === "mismatch") {
      throw idempotencyMismatch();
    }
    if (outcome.outcome === "in_flight") {
      throw idempotencyInFlight();
    }
    try {
      return await prepared.run(outcome.claim);
    } catch (error) {
      return keepAnswer(outcome.claim, error);
    }
  };
}

// ---------------------------------------------------------------------------
// The pipeline.

export interface PipelineOptions {
  routes: readonly Route[];
  /** Paths Bun.serve answers itself for GET and HEAD (the board's files): any other method is a 405 here. */
  pages: readonly string[];
  services: Services;
}

/** The write of a Call: with a claimed key, the storage stores the rendered reply with the effect. */
function writerFor(claim: IdempotencyClaim | null): Call<unknown, unknown, unknown>["write"] {
  return async (run, render) => {
    let rendered: Reply | undefined;
    const idempotency = claim ? { claim, respond: (result: any) => storedReply((rendered = render(result))) } : undefined;
    const result = await run(idempotency);
    return rendered ?? render(result);
  };
}

/** Finds the route and checks the key; a path that is no route is 405 or 404 (401 first without a key). */
async function routeFor(
  request: Request,
  url: URL,
  findRoute: Router,
  keys: KeyBook,
): Promise<{ match: Match; holder: KeyHolder }> {
  const match = findRoute(request.method, url.pathname.split("/").slice(1));
  const isPublic = "route" in match ? !match.route.auth : match.isPublic;
  const holder = isPublic ? NO_KEY : await keys.holderOf(request);
  if (holder === null) throw UNAUTHORIZED;
  if (!("route" in match)) {
    if (match.allow !== "") throw new MethodNotAllowed(request.method, match.allow);
    throw new ApiError("not_found", `No such endpoint: ${request.method} ${url.pathname.slice(0, 200)}`);
  }
  return { match, holder };
}

/** The key's rate (429 past it), then its role (403 when the route needs more). */
function admit(holder: KeyHolder, route: Route, limiter: RateLimiter): void {
  if (!route.auth) return;
  limiter.take(holder);
  const access = accessOf(route);
  if (!roleAllows(holder.role, access)) throw roleForbids(holder, access, describeRoute(route));
}

/** Everything between the URL and the handler: the checks of query, path, headers and body, in that order. */
async function prepare(
  request: Request,
  url: URL,
  match: Match,
  holder: KeyHolder,
  server: Server<unknown>,
  services: Services,
): Promise<Prepared> {
  const { route } = match;
  const rawQuery = readQuery(url, route);
  const query = route.query ? parseInput(route.query, rawQuery, "query parameter") : {};
  const params = route.params ? parseInput(route.params, decodePathParams(match.rawParams)) : {};
  const agentId = parseAgentId(request.headers.get("x-agent-id"));
  const key = readIdempotencyKey(request, route);
  const bodyText = route.body ? await readBody(request) : "";
  const body = route.body ? parseInput(route.body, parseJsonBody(bodyText)) : undefined;
  await checkProjects(holder, { params, query, body }, services.storage);
  const keepOpen = (seconds = 0) => server.timeout(request, seconds);
  const scope = holder.scope;
  return {
    url,
    scope,
    bodyText,
    key,
    run: (claim) =>
      route.handler({
        params,
        query,
        body,
        agentId,
        request,
        caller: scope,
        holder,
        services,
        keepOpen,
        write: writerFor(claim),
      }),
  };
}

/** The one error mapping: a 4xx says what was wrong; anything else is logged and is `Internal error`. */
function replyForError(error: unknown, requestId: string, logger: Logger): Reply {
  // Expected under load, so not logged as a failure: the access log has the status.
  if (error instanceof RetryLater) return { ...errorReply(error), headers: { "Retry-After": String(error.retryAfterSeconds) } };
  if (error instanceof ApiError && error.status < 500) {
    const reply = errorReply(error);
    if (error.status === 401) reply.headers = { "WWW-Authenticate": "Bearer" };
    if (error instanceof MethodNotAllowed) reply.headers = { Allow: error.allow };
    // The rest of the body may still be on its way: close rather than read it.
    if (error.code === "payload_too_large") reply.headers = { Connection: "close" };
    return reply;
  }
  logger.log("error", "request failed", { request_id: requestId, ...describeError(error) });
  if (error instanceof ApiError) return errorReply(error);
  return { status: 500, body: INTERNAL_ERROR_BODY };
}

/** The access log: method, path, status, duration and request ID; never headers or bodies. */
function logRequest(logger: Logger, request: Request, path: string, status: number, started: number, requestId: string): void {
  const level = status >= 500 ? "error" : "info";
  if (!logger.enabled(level)) return;
  logger.log(level, "request", {
    method: request.method,
    path: path.slice(0, 300),
    status,
    duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
    request_id: requestId,
  });
}

/** Builds the Bun.serve `fetch` handler, and the reply of Bun's `error` hook. */
export function createPipeline({ routes, pages, services }: PipelineOptions) {
  const findRoute = createRouter(routes, pages);
  const limiter = new RateLimiter();
  const runIdempotent = idempotencyRunner(services);
  const { logger } = services;

  async function run(request: Request, url: URL, server: Server<unknown>): Promise<Reply> {
    const { match, holder } = await routeFor(request, url, findRoute, services.keys);
    admit(holder, match.route, limiter);
    const prepared = await prepare(request, url, match, holder, server, services);
    return prepared.key === null ? prepared.run(null) : runIdempotent(request, prepared, prepared.key);
  }

  async function handle(request: Request, server: Server<unknown>): Promise<Response> {
    const started = performance.now();
    const requestId = pickRequestId(request.headers.get("x-request-id"));
    let reply: Reply;
    let path = "";
    try {
      // CONNECT names a host, not a path: there is no URL to route by.
      if (request.method === "CONNECT") throw new MethodNotAllowed("CONNECT", SERVED_METHODS);
      const url = requestUrl(request);
      path = url.pathname;
      if (logger.enabled("debug")) {
        logger.log("debug", "request started", { method: request.method, path: path.slice(0, 300), request_id: requestId });
      }
      reply = await run(request, url, server);
    } catch (error) {
      const gone = isClientGone(request, error);
      reply = gone ? { status: CLIENT_CLOSED_REQUEST, body: "" } : replyForError(error, requestId, logger);
    }
    logRequest(logger, request, path, reply.status, started, requestId);
    return toResponse(reply, requestId);
  }

  return { handle, internalError: () => toResponse({ status: 500, body: INTERNAL_ERROR_BODY }, crypto.randomUUID()) };
}

function storedReply(reply: Reply): { status: number; body: string } {
  return { status: reply.status, body: reply.body as string };
}

/** The client hung up before its request was read: its own doing, not a server error. */
function isClientGone(request: Request, error: unknown): boolean {
  return request.signal.aborted && error instanceof Error && error.name === "AbortError";
}

function pickRequestId(header: string | null): string {
  return header !== null && header.length > 0 && isPrintableAscii(header, 128) ? header : crypto.randomUUID();
}

function toResponse(reply: Reply, requestId: string): Response {
  const headers: Record<string, string> = {
    "Content-Type": typeof reply.body === "string" ? "application/json" : "text/event-stream",
    "Cache-Control": "no-store",
    "X-Request-Id": requestId,
    ...reply.headers,
  };
  return new Response(reply.body, { status: reply.status, headers });
}

type RouteData = Omit<Route, "params" | "query" | "body" | "handler">;

/** One row of the route table: its schemas type its handler's input. */
export function defineRoute<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(route: RouteData & { params?: P; query?: Q; body?: B; handler: Handler<P, Q, B> }): Route {
  return route as Route;
}
