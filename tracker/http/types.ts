// What a route is and what its handler sees and returns: the shapes shared by the pipeline
// (pipeline.ts), the route table (routes.ts) and the handlers, kept apart so that none of them
// imports another's code for its types.

import type { z } from "zod";
import type { KeyHolder } from "../keys.ts";
import type { Logger } from "../log.ts";
import type { IdempotentWrite, Storage } from "../storage/storage.ts";
import type { CopyGate } from "./copies.ts";
import type { KeyBook } from "./keys.ts";
import type { LiveStreams } from "./live-streams.ts";
import type { McpSessions } from "./mcp-sessions.ts";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** What a handler produces; the response is built once, with the common headers, in one place. */
export interface Reply {
  status: number;
  /** JSON text, or a stream (GET /events). */
  body: string | ReadableStream<Uint8Array>;
  headers?: Record<string, string>;
}

/** What every handler may use: the tracker's parts, not the request's. */
export interface Services {
  storage: Storage;
  logger: Logger;
  now: () => Date;
  version: string;
  /** TRACKER_CLAIM_TTL: the lease of a claim that asks for none. */
  claimTtlSeconds: number;
  reservationTtlMs: number;
  /** The open GET /events streams. */
  streams: LiveStreams;
  /** The backups and dumps being sent. */
  copies: CopyGate;
  /** Who a bearer key is (http/keys.ts). */
  keys: KeyBook;
  /** The MCP sessions of /mcp. */
  mcp: McpSessions;
}

/** One request as a handler sees it: already authenticated, parsed and checked. */
export interface Call<Params, Query, Body> {
  params: Params;
  query: Query;
  body: Body;
  /** The X-Agent-Id header (checked), recorded in the history of every write. */
  agentId: string | null;
  request: Request;
  /** The caller's API key as the tracker names it: its scope (SHA-256), never the key itself. */
  caller: string;
  /** The key's name, role and projects (keys.ts); for GET /healthz and /openapi.json, which take none, NO_KEY. */
  holder: KeyHolder;
  services: Services;
  /**
   * Lifts the idle timeout of this request's connection (a live stream is quiet between changes), or sets
   * it to `seconds` (a reply that may take longer than Bun's 10 s).
   */
  keepOpen(seconds?: number): void;
  /**
   * Runs a write with the request's Idempotency-Key, if any: the storage stores the rendered reply
   * in the same transaction as the effect.
   */
  write<Result>(
    run: (idempotency?: IdempotentWrite<Result>) => Promise<Result>,
    render: (result: Result) => Reply,
  ): Promise<Reply>;
}

type Parsed<Schema> = Schema extends z.ZodType ? z.output<Schema> : undefined;

/** A handler of a route whose schemas are P (path), Q (query) and B (body). */
export type Handler<P = undefined, Q = undefined, B = undefined> = (
  call: Call<Parsed<P>, Parsed<Q>, Parsed<B>>,
) => Promise<Reply>;

export interface Route<Params = any, Query = any, Body = any> {
  method: Method;
  /** OpenAPI's form: `/tasks/{task_id}/status`. */
  path: string;
  summary: string;
  /** False only for GET /healthz and GET /openapi.json. */
  auth: boolean;
  /** Only an admin key may (keys.ts, roleAllows); else a GET that changes nothing reads, the rest write. */
  admin?: boolean;
  /**
   * Reads, whatever its method: POST and DELETE /mcp, whose tools' requests are checked as the requests they
   * are (a viewer's session offers only the tools that read, and the tracker refuses its writes anyway).
   */
  reads?: boolean;
  /** Carries Idempotency-Key (every POST, PUT and PATCH, and GET /ids/next). */
  idempotent: boolean;
  /** HEAD runs it without the body: every GET but one that allocates (the ID would be spent unseen). */
  head: boolean;
  params?: z.ZodType<Params>;
  /** The query parameters it takes; any other, or one given twice, is a 400. */
  query?: z.ZodObject & z.ZodType<Query>;
  body?: z.ZodType<Body>;
  /** Refuses a key that holds too many already: 429 too_many_requests (GET /events). */
  limited?: boolean;
  /** The answer when it works, for the OpenAPI document (schema null: not JSON). */
  success: { status: number; description: string; schema: z.ZodType | null };
  handler(call: Call<Params, Query, Body>): Promise<Reply>;
}
