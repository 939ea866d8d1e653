// startTracker: the Task Tracking service on Bun.serve. It wires the pipeline (pipeline.ts) and its
// route table (routes.ts), the board's files (board.ts), the background timers (old Idempotency-Keys,
// expired leases) and the shutdown. The caller (main.ts) chooses and opens the storage and the logger.

import { lookup } from "node:dns/promises";
import type { Server } from "bun";
import packageJson from "../../package.json" with { type: "json" };
import { DEFAULT_CLAIM_TTL_SECONDS } from "../domain.ts";
import type { RateLimit } from "../keys.ts";
import { describeError, type Logger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";
import { type BoardRoutes, boardRoutes } from "./board.ts";
import { CopyGate } from "./copies.ts";
import { KeyBook } from "./keys.ts";
import { KEEP_ALIVE_MS, type LiveStreamOptions, LiveStreams } from "./live-streams.ts";
import { type McpSessionOptions, McpSessions } from "./mcp-sessions.ts";
import { createPipeline, IDEMPOTENCY_RETENTION_MS, MAX_BODY_BYTES } from "./pipeline.ts";
import { routes } from "./routes.ts";
import { runEvery } from "./timers.ts";
import type { Services } from "./types.ts";

export { apiKeyScope, IDEMPOTENCY_LEASE_MS, IDEMPOTENCY_RETENTION_MS, MAX_BODY_BYTES, requestFingerprint } from "./pipeline.ts";

const IDEMPOTENCY_PURGE_INTERVAL_MS = 10 * 60 * 1000;
/** API.md: no read shows an expired claim as held for more than a second after it expired. */
export const LEASE_EXPIRY_INTERVAL_MS = 250;

export interface TrackerOptions {
  /** The storage to serve; the caller opens it and closes it after stop(). */
  storage: Storage;
  /** The one logger of the process, shared with the storage. */
  logger: Logger;
  /** The operator's keys (TRACKER_API_KEYS or the key file): admins. The keys the storage keeps count too. */
  apiKeys: readonly string[];
  /** TRACKER_RATE_LIMIT; unset: DEFAULT_KEY_RATE_LIMIT for the kept keys, none for the operator's. */
  rateLimit?: RateLimit | null;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Default 127.0.0.1: a local tracker is not on the network until its owner says so. */
  host?: string;
  reservationTtlSeconds?: number;
  /** TRACKER_CLAIM_TTL: the lease of a claim that asks for none. Default 1800. */
  claimTtlSeconds?: number;
  version?: string;
  /** The clock; tests move it instead of waiting. */
  now?: () => Date;
  /** How long stop() waits for requests in flight before it closes their connections. Default 10 s. */
  shutdownGraceMs?: number;
  /** Between `: keep-alive` comments of GET /events. Default 15 s. */
  keepAliveMs?: number;
  /** The bounds of GET /events (streams per key, idle time, age); tests shorten them. */
  liveStreams?: LiveStreamOptions;
  /** The gate of backups and dumps (at most 2 at once, a minute unread ends one); tests pass their own. */
  copies?: CopyGate;
  /** The bounds of /mcp's sessions (lease, sessions per key, clock); tests shorten them. */
  mcp?: Partial<McpSessionOptions>;
}

export interface RunningTracker {
  url: string;
  port: number;
  /** Ends the live streams, stops accepting connections, waits for requests in flight and the timers. */
  stop(): Promise<void>;
}

function startTimers(services: Services): () => Promise<void> {
  const { storage, logger, now } = services;
  const stopPurge = runEvery(IDEMPOTENCY_PURGE_INTERVAL_MS, {
    task: () => storage.deleteIdempotencyKeysBefore(new Date(now().getTime() - IDEMPOTENCY_RETENTION_MS)),
    onError: (error) => logger.log("error", "could not purge old idempotency keys", describeError(error)),
  });
  const stopExpiry = runEvery(LEASE_EXPIRY_INTERVAL_MS, {
    task: () => storage.expireLeases(now()),
    onError: (error) => logger.log("error", "could not expire leases", describeError(error)),
  });
  return async () => {
    await Promise.all([stopPurge(), stopExpiry()]);
  };
}

async function listen(
  options: TrackerOptions,
  board: BoardRoutes,
  handle: (request: Request, server: Server<unknown>) => Promise<Response>,
  internalError: () => Response,
) {
  const hostname = options.host ?? "127.0.0.1";
  // Bun.serve reports a name that does not resolve as some failure to listen (EINVAL, ENOENT,
  // even EADDRINUSE); resolving it first makes a bad host fail as one (syscall getaddrinfo).
  await lookup(hostname);
  return Bun.serve({
    port: options.port ?? 8080,
    hostname,
    development: false,
    // With `development: false` Bun sets SO_REUSEPORT unless told not to: a second tracker on a
    // busy port would start, and the kernel would split requests between two databases.
    reusePort: false,
    // No limit of Bun's own: the pipeline enforces MAX_BODY_BYTES (declared or read) and answers
    // with the contract's 413 body, where Bun would answer with an empty one.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    routes: board,
    fetch: handle,
    error(error) {
      options.logger.log("error", "unhandled server error", describeError(error));
      return internalError();
    },
  });
}

export async function startTracker(options: TrackerOptions): Promise<RunningTracker> {
  if (options.apiKeys.length === 0) throw new Error("startTracker needs at least one API key.");
  const { storage, logger } = options;
  const now = options.now ?? (() => new Date());
  const services: Services = {
    storage,
    logger,
    now,
    version: options.version ?? packageJson.version,
    claimTtlSeconds: options.claimTtlSeconds ?? DEFAULT_CLAIM_TTL_SECONDS,
    reservationTtlMs: (options.reservationTtlSeconds ?? 3600) * 1000,
    streams: new LiveStreams({ keepAliveMs: options.keepAliveMs ?? KEEP_ALIVE_MS, ...options.liveStreams }),
    copies: options.copies ?? new CopyGate(),
    keys: new KeyBook({ storage, logger, operatorKeys: options.apiKeys, rateLimit: options.rateLimit ?? null, now }),
    mcp: new McpSessions({ logger, maxBodyBytes: MAX_BODY_BYTES, ...options.mcp }),
  };
  const board = await boardRoutes();
  const { handle, internalError } = createPipeline({ routes, services, pages: Object.keys(board) });
  const server = await listen(options, board, handle, internalError);
  services.mcp.dispatchTo((request) => handle(request, server));
  const stopTimers = startTimers(services);

  const port = server.port ?? 0;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname}:${port}`,
    port,
    stop() {
      stopping ??= (async () => {
        services.streams.closeAll();
        await services.mcp.closeAll();
        // Requests in flight get a grace period; a client that never finishes its request does not
        // keep the tracker from stopping.
        const graceful = server.stop();
        const deadline = setTimeout(() => {
          logger.log("warn", "requests still open at the shutdown deadline; closing them");
          void server.stop(true);
        }, options.shutdownGraceMs ?? 10_000);
        await graceful;
        clearTimeout(deadline);
        await stopTimers();
        logger.flush();
      })();
      return stopping;
    },
  };
}
