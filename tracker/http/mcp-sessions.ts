// The MCP sessions of /mcp: the MCP server of index.ts (its one createServer) over MCP's Streamable HTTP
// transport, one server per session. Its client sends its requests to this tracker's own request handler,
// in process: no socket, the same pipeline and checks (key, role, rate, X-Agent-Id) as any other caller,
// under the key the session was opened with. A session is that key's alone; its agent ID is the
// X-Agent-Id of its first request, else one of its own. Its claims are renewed while it lives; it ends on
// DELETE, at shutdown, or idle (no request and no open stream) for the lease its claims ask for, and then
// they lapse. A key holds a bounded number at once (docs/API.md, /mcp).

import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { Config, ToolName } from "../../index.ts";
import { RetryLater } from "../domain.ts";
import type { Role } from "../keys.ts";
import type { Logger, LogLevel } from "../log.ts";

/** The lease each claim of a session asks for (the binary's default); a session idle this long ends. */
export const MCP_LEASE_SECONDS = 120;
/** One key's sessions at most: a Claude Code per person and a few scripts, never a leak without end. */
export const MAX_SESSIONS_PER_KEY = 50;
const RETRY_AFTER_SECONDS = 30;
/** Where the session's client sends its requests: a name only, as nothing leaves the process. */
const IN_PROCESS_URL = "http://tracker.internal";

/** An answer of the transport's own kind: a JSON-RPC error without an id. */
const jsonRpcError = (status: number, code: number, message: string) =>
  new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }), {
    status,
    headers: { "Content-Type": "application/json" },
  });

type McpServerModule = typeof import("../../index.ts");
type LoadedMcp = [McpServerModule, typeof import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js")];
let loading: Promise<LoadedMcp>;
/**
 * The MCP server and the SDK's transport, loaded with the first session: a tracker that serves no MCP never
 * parses them (they would add a tenth of a second and 9 MB to every start).
 */
const loadMcp = () =>
  (loading ??= Promise.all([import("../../index.ts"), import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js")]));

/** The one place that decides which tools a session offers: a viewer's only those that read. */
export function toolsFor(role: Role | undefined, { TOOL_NAMES, READING_TOOLS }: McpServerModule): readonly ToolName[] {
  return role === "viewer" ? READING_TOOLS : TOOL_NAMES;
}

export interface McpSessionOptions {
  logger: Logger;
  /** The largest message body (the tracker's MAX_BODY_BYTES). */
  maxBodyBytes: number;
  leaseSeconds?: number;
  maxPerKey?: number;
  /** Milliseconds since the epoch; tests move it. */
  now?: () => number;
  /** setInterval, or a test's: returns the function that stops it. */
  every?: (run: () => void, ms: number) => () => void;
  /** How claim renewals are timed (index.ts's Schedule); tests tick by hand. */
  schedule?: (ms: number, tick: () => void) => () => void;
}

/** Who opens or uses a session: the caller as the pipeline checked it. */
export interface McpCaller {
  /** The scope of the caller's key (pipeline.ts): a session is only ever used under the key that opened it. */
  scope: string;
  /** The bearer key itself, which the session's own requests present again. */
  apiKey: string;
  /** The checked X-Agent-Id, if sent. */
  agentId: string | null;
  role?: Role;
}

interface Session {
  id: string;
  scope: string;
  agentId: string;
  transport: WebStandardStreamableHTTPServerTransport;
  lastSeenAt: number;
  /** Open GET streams: a client that holds one is alive, however long it stays quiet. */
  openStreams: number;
}

const realEvery = (run: () => void, ms: number) => {
  const timer = setInterval(run, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export class McpSessions {
  readonly #sessions = new Map<string, Session>();
  readonly #shutdown = new AbortController();
  readonly #options: Required<Omit<McpSessionOptions, "schedule">> & Pick<McpSessionOptions, "schedule">;
  readonly #stopSweep: () => void;
  /** The tracker's request handler, set once it listens. */
  #dispatch: (request: Request) => Promise<Response> = () => Promise.reject(new Error("the tracker is not listening yet"));

  constructor(options: McpSessionOptions) {
    this.#options = {
      leaseSeconds: MCP_LEASE_SECONDS,
      maxPerKey: MAX_SESSIONS_PER_KEY,
      now: Date.now,
      every: realEvery,
      ...options,
    };
    this.#stopSweep = this.#options.every(() => void this.#closeIdle(), (this.#options.leaseSeconds * 1000) / 4);
  }

  /** Where the sessions' clients send their requests: the tracker's own handler. */
  dispatchTo(dispatch: (request: Request) => Promise<Response>): void {
    this.#dispatch = dispatch;
  }

  /** One request of /mcp (GET, POST or DELETE), already authenticated: to its session, or a new one. */
  async handle(request: Request, caller: McpCaller): Promise<Response> {
    const id = request.headers.get("mcp-session-id");
    if (id === null) return this.#open(request, caller);
    const session = this.#sessions.get(id);
    // Another key's session is not found either: its ID proves nothing.
    if (session === undefined || session.scope !== caller.scope) {
      return jsonRpcError(404, -32001, "Session not found");
    }
    session.lastSeenAt = this.#options.now();
    return this.#counted(session, await session.transport.handleRequest(request));
  }

  /** A request without a session: an initialize opens one, anything else gets the transport's own answer. */
  async #open(request: Request, caller: McpCaller): Promise<Response> {
    // Only a POST can carry an initialize: anything else is refused before a server is made for it.
    if (request.method !== "POST") return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    const serverModule = await loadMcp();
    if (this.#shutdown.signal.aborted) throw new RetryLater("unavailable", "The tracker is stopping", RETRY_AFTER_SECONDS);
    this.#refuseOverBound(caller.scope);
    // Counted from here on, so that initializes sent at once cannot pass the bound together.
    const { session, server } = this.#newSession(caller, serverModule);
    this.#sessions.set(session.id, session);
    try {
      await server.connect(session.transport);
      const response = await session.transport.handleRequest(request);
      if (session.transport.sessionId !== session.id)
        await session.transport.close(); // not an initialize: nothing to keep
      else this.#options.logger.log("info", "opened an MCP session", { session: session.id, agent_id: session.agentId });
      return response;
    } catch (error) {
      await session.transport.close();
      throw error;
    }
  }

  #refuseOverBound(scope: string): void {
    const held = [...this.#sessions.values()].filter((session) => session.scope === scope).length;
    if (held < this.#options.maxPerKey) return;
    throw new RetryLater(
      "too_many_requests",
      `This API key has ${held} MCP sessions open already, the most at once; end one (DELETE /mcp) or let an idle one end`,
      RETRY_AFTER_SECONDS,
    );
  }

  /** A session and its server: its agent, its key, its tools, its log and its claims' schedule. */
  #newSession(caller: McpCaller, [serverModule, { WebStandardStreamableHTTPServerTransport }]: LoadedMcp) {
    const id = crypto.randomUUID();
    const agentId = caller.agentId ?? `mcp-${id.slice(0, 8)}${id.slice(9, 13)}`;
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      enableJsonResponse: true,
      maxRequestBodySize: this.#options.maxBodyBytes,
    });
    const session: Session = { id, scope: caller.scope, agentId, transport, lastSeenAt: this.#options.now(), openStreams: 0 };
    transport.onclose = () => this.#ended(session);
    const server = serverModule.createServer(this.#config(caller.apiKey, agentId), {
      fetch: (url, init) => this.#dispatch(new Request(url, init)),
      tools: toolsFor(caller.role, serverModule),
      schedule: this.#options.schedule,
      writeLog: (line) => this.#log(line, id),
      shutdownSignal: this.#shutdown.signal,
      // An agent named by its X-Agent-Id may have claims from an earlier session: they are renewed again.
      adoptClaims: caller.agentId !== null,
    });
    return { session, server };
  }

  /** The configuration of a session's server: the caller's key and agent, this process as the tracker. */
  #config(apiKey: string, agentId: string): Config {
    const { logger, leaseSeconds } = this.#options;
    const logLevel = (["debug", "info", "warn", "error"] as const).find((level) => logger.enabled(level)) ?? "error";
    return { url: IN_PROCESS_URL, displayUrl: IN_PROCESS_URL, apiKey, timeoutMs: 5000, agentId, leaseSeconds, logLevel };
  }

  /** A log line of the session's server (JSON, its key already redacted), as one of the tracker's. */
  #log(line: string, session: string): void {
    const { level, msg, ts: _, ...fields } = JSON.parse(line) as { level: LogLevel; msg?: string; ts: string };
    this.#options.logger.log(level, msg ?? "MCP call", { session, ...fields });
  }

  /** A GET stream counts as activity while it is open; its end is when the session's idle time starts. */
  #counted(session: Session, response: Response): Response {
    if (!response.body || !response.headers.get("content-type")?.startsWith("text/event-stream")) return response;
    session.openStreams++;
    const reader = response.body.getReader();
    let open = true;
    const end = () => {
      if (!open) return;
      open = false;
      session.openStreams--;
      session.lastSeenAt = this.#options.now();
      this.#options.logger.log("debug", "an MCP session's stream ended", { session: session.id });
    };
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (done) {
          end();
          controller.close();
        } else controller.enqueue(value);
      },
      cancel(reason) {
        end();
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  }

  #ended(session: Session): void {
    if (this.#sessions.get(session.id) !== session) return;
    this.#sessions.delete(session.id);
    if (session.transport.sessionId !== session.id) return; // never opened: no initialize came
    this.#options.logger.log("info", "closed an MCP session", { session: session.id, agent_id: session.agentId });
  }

  /** Ends each session idle past the lease: its claims are no longer renewed and lapse. */
  async #closeIdle(): Promise<void> {
    const idleSince = this.#options.now() - this.#options.leaseSeconds * 1000;
    const idle = [...this.#sessions.values()].filter((session) => session.openStreams === 0 && session.lastSeenAt <= idleSince);
    await Promise.all(idle.map((session) => session.transport.close()));
  }

  /** At shutdown: every session ends, no claim is renewed any more. */
  async closeAll(): Promise<void> {
    this.#stopSweep();
    this.#shutdown.abort();
    await Promise.all([...this.#sessions.values()].map((session) => session.transport.close()));
  }
}
