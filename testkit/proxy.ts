// A fault-injecting HTTP/1.1 proxy: between a client and its upstream (the MCP server and the
// tracker), it records every request and, per request, forwards it, holds the answer back, answers
// itself, swaps the answer, drops the connection or cuts the body short.

import { createServer, type Server, type Socket } from "node:net";
import { register, unregister } from "./registry.ts";

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
  /** Resolves once a request that passes `test` has reached the proxy since the last reset(); fails after 10 s. */
  waitFor(test: (request: RecordedRequest) => boolean, what: string): Promise<RecordedRequest>;
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

/**
 * Waits `ms`, or less once `clientLeft` aborts. The proxy's own tests pass one that holds an answer
 * exactly as long as they choose.
 */
export type Sleep = (ms: number, clientLeft: AbortSignal) => Promise<void>;

const sleepFor: Sleep = (ms, clientLeft) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    clientLeft.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export async function startProxy(upstream: string, options: { sleep?: Sleep } = {}): Promise<Proxy> {
  const sleep = options.sleep ?? sleepFor;
  const requests: RecordedRequest[] = [];
  const arrivals = new Set<(request: RecordedRequest) => void>();
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

  async function hold(socket: Socket, ms: number): Promise<void> {
    const clientLeft = new AbortController();
    const leave = () => clientLeft.abort();
    if (socket.destroyed) leave();
    else socket.once("close", leave);
    await sleep(ms, clientLeft.signal);
    socket.off("close", leave);
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
        if (action.holdMs) await hold(socket, action.holdMs);
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
        for (const wake of [...arrivals]) wake(request);
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
  const registration = register({ stop: () => kill() });
  const kill = async () => {
    await refuse();
    unregister(registration);
  };

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
    waitFor(test, what) {
      const seen = requests.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          arrivals.delete(arrive);
          reject(new Error(`no request for ${what} reached the proxy within 10 s`));
        }, 10_000);
        const arrive = (request: RecordedRequest) => {
          if (!test(request)) return;
          clearTimeout(timer);
          arrivals.delete(arrive);
          resolve(request);
        };
        arrivals.add(arrive);
      });
    },
    refuse,
    async accept() {
      if (listening) return;
      server = createServer(onConnection);
      await listen(port);
      listening = true;
    },
    kill,
  };
}
