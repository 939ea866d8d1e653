// The fault proxy, proven against a real upstream (Bun.serve on port 0): every action it offers,
// the plans that choose them, what it records, and refusing and accepting connections.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createConnection } from "node:net";
import { type Proxy, type Sleep, startProxy } from "./proxy.ts";
import { stopEverything } from "./registry.ts";

/** What the upstream saw of each request, in order. */
const seen: { method: string; target: string; header: string | null; body: string }[] = [];
let upstream: ReturnType<typeof Bun.serve>;
let proxy: Proxy;

/** The hold the proxy asked for, and how the test ends it. */
const holds: { ms: number; clientLeft: AbortSignal; release: () => void }[] = [];
const heldSleep: Sleep = (ms, clientLeft) =>
  new Promise((resolve) => {
    holds.push({ ms, clientLeft, release: resolve });
    clientLeft.addEventListener("abort", () => resolve(), { once: true });
  });

beforeAll(() => {
  upstream = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const body = await request.text();
      seen.push({ method: request.method, target: url.pathname + url.search, header: request.headers.get("x-test"), body });
      return Response.json(
        { echoed: body },
        { status: url.pathname === "/created" ? 201 : 200, headers: { "x-upstream": "yes" } },
      );
    },
  });
});
afterAll(async () => {
  await stopEverything();
  await upstream.stop(true);
});
beforeEach(async () => {
  seen.length = 0;
  holds.length = 0;
  proxy = await startProxy(`http://127.0.0.1:${upstream.port}`, { sleep: heldSleep });
});
afterEach(() => proxy.kill());

const post = (path: string, body: string, init: RequestInit = {}) =>
  fetch(proxy.url + path, { method: "POST", headers: { "x-test": "t", "content-type": "application/json" }, body, ...init });

/** Resolves once `condition` holds, checked on every turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

describe("forward", () => {
  test("passes method, path, query, headers and body on, and the upstream's answer back; records the request", async () => {
    const response = await post("/created?x=1", '{"a":1}');
    expect({ status: response.status, upstream: response.headers.get("x-upstream"), body: await response.json() }).toEqual({
      status: 201,
      upstream: "yes",
      body: { echoed: '{"a":1}' },
    });
    expect(seen).toEqual([{ method: "POST", target: "/created?x=1", header: "t", body: '{"a":1}' }]);
    expect(proxy.requests).toMatchObject([
      { method: "POST", target: "/created?x=1", headers: { "x-test": "t" }, body: '{"a":1}' },
    ]);
  });

  test("reads a chunked request body whole", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const piece of ['{"in":', '"pieces"}']) controller.enqueue(new TextEncoder().encode(piece));
        controller.close();
      },
    });
    const response = await fetch(`${proxy.url}/chunked`, { method: "POST", body });
    expect(await response.json()).toEqual({ echoed: '{"in":"pieces"}' });
    expect(proxy.requests[0]).toMatchObject({ headers: { "transfer-encoding": "chunked" }, body: '{"in":"pieces"}' });
  });

  test("with holdMs, holds the upstream's answer back until the hold ends", async () => {
    proxy.script({ type: "forward", holdMs: 5_000 });
    let answered = false;
    const response = post("/held", "x").then((r) => ((answered = true), r));
    await until(() => holds.length === 1);
    expect({ upstreamAsked: seen.length, ms: holds[0]!.ms, answered }).toEqual({ upstreamAsked: 1, ms: 5_000, answered: false });
    holds[0]!.release();
    expect(await (await response).json()).toEqual({ echoed: "x" });
  });

  test("with holdMs, ends the hold when the client leaves", async () => {
    proxy.script({ type: "forward", holdMs: 5_000 });
    const leaving = new AbortController();
    const response = post("/held", "x", { signal: leaving.signal });
    await until(() => holds.length === 1);
    leaving.abort();
    const left = await response.then(
      () => "answered",
      (error: { name?: string }) => error.name,
    );
    expect(left).toBe("AbortError");
    await until(() => holds[0]!.clientLeft.aborted);
    // The connection is free for the next request, which is forwarded at once.
    expect((await post("/after", "y")).status).toBe(200);
  });
});

test("reply answers without asking the upstream", async () => {
  proxy.script({ type: "reply", status: 503, headers: { "retry-after": "2", "content-type": "text/plain" }, body: "busy" });
  const response = await post("/anything", "x");
  expect({ status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.text() }).toEqual({
    status: 503,
    retryAfter: "2",
    body: "busy",
  });
  expect(seen).toEqual([]);
  expect(proxy.requests.length).toBe(1);
});

test("forward-then-replace lets the upstream answer, then sends what replace makes of that answer", async () => {
  proxy.script({
    type: "forward-then-replace",
    replace: (reply) => ({ ...reply, status: 500, body: `was ${reply.status}: ${reply.body}` }),
  });
  const response = await post("/created", "x");
  expect({ status: response.status, upstream: response.headers.get("x-upstream"), body: await response.text() }).toEqual({
    status: 500,
    upstream: "yes",
    body: 'was 201: {"echoed":"x"}',
  });
  expect(seen.length).toBe(1);
});

test("forward-then-drop lets the upstream process the request, then closes the connection unanswered", async () => {
  proxy.script({ type: "forward-then-drop" });
  const dropped = await post("/dropped", "x").then(
    () => "answered",
    (error: { code?: string }) => error.code,
  );
  expect(dropped).toBe("ECONNRESET");
  await until(() => seen.length === 1);
  expect(seen[0]).toMatchObject({ target: "/dropped", body: "x" });
});

test("forward-then-cut-body sends the status, headers and half the body, then resets the connection", async () => {
  proxy.script({ type: "forward-then-cut-body" });
  const response = await post("/cut", "a body long enough to be cut in half");
  expect([response.status, response.headers.get("x-upstream")]).toEqual([200, "yes"]);
  const cut = await response.text().then(
    () => "whole",
    (error: { code?: string }) => error.code,
  );
  expect(cut).toBe("ECONNRESET");
  expect(seen.length).toBe(1);

  // On the wire: a Content-Length for the whole body, and exactly half of it before the reset.
  proxy.script({ type: "forward-then-cut-body" });
  const { head, body } = await rawExchange(proxy.port, "GET /cut HTTP/1.1\r\nHost: proxy\r\n\r\n");
  const whole = JSON.stringify({ echoed: "" });
  expect(head).toContain(`Content-Length: ${whole.length}`);
  expect(body).toBe(whole.slice(0, Math.floor(whole.length / 2)));
});

/** Writes `request` on a new connection; what came back before the proxy closed it, split at the head's end. */
function rawExchange(port: number, request: string): Promise<{ head: string; body: string }> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let received = "";
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => {
      const end = received.indexOf("\r\n\r\n");
      resolve({ head: received.slice(0, end), body: received.slice(end + 4) });
    });
    socket.write(request);
  });
}

describe("plans", () => {
  test("script gives the next requests one action each, then forwards", async () => {
    await post("/before", "0");
    proxy.script({ type: "reply", status: 418, body: "first" }, { type: "reply", status: 419, body: "second" });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await post("/scripted", String(i))).status);
    expect(statuses).toEqual([418, 419, 200]);
  });

  test("setPlan decides per request, by request and index", async () => {
    proxy.setPlan((request, index) =>
      request.target === "/refused" || index === 2 ? { type: "reply", status: 403, body: "no" } : { type: "forward" },
    );
    const statuses = [];
    for (const path of ["/ok", "/refused", "/third", "/fourth"]) statuses.push((await post(path, "x")).status);
    expect(statuses).toEqual([200, 403, 403, 200]);
  });

  test("reset forgets the requests and the plan", async () => {
    proxy.setPlan(() => ({ type: "reply", status: 403, body: "no" }));
    await post("/one", "x");
    proxy.reset();
    expect(proxy.requests).toEqual([]);
    expect((await post("/two", "x")).status).toBe(200);
    expect(proxy.requests.map((request) => request.target)).toEqual(["/two"]);
  });
});

test("requests pipelined on one connection are answered in order", async () => {
  proxy.script({ type: "forward", holdMs: 5_000 });
  const socket = createConnection({ host: "127.0.0.1", port: proxy.port });
  let received = "";
  socket.on("data", (chunk) => (received += chunk.toString("latin1")));
  const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: proxy\r\n\r\n`;
  socket.write(request("/first") + request("/second"));
  await until(() => holds.length === 1 && seen.length === 1);
  // The second waits behind the held first, though the upstream could answer it now.
  expect(received).toBe("");
  holds[0]!.release();
  await until(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 2);
  socket.destroy();
  expect(seen.map((request) => request.target)).toEqual(["/first", "/second"]);
  expect(received.indexOf('"echoed":""')).toBeGreaterThan(0);
});

test("refuse closes every connection and refuses new ones; accept listens again on the same port", async () => {
  expect((await post("/before", "x")).status).toBe(200);
  await proxy.refuse();
  const refused = await post("/during", "x").then(
    () => "answered",
    (error: { code?: string }) => error.code,
  );
  expect(refused).toBe("ECONNREFUSED");
  await proxy.accept();
  expect((await post("/after", "x")).status).toBe(200);
  expect(seen.map((request) => request.target)).toEqual(["/before", "/after"]);
});

test("stopEverything stops a proxy that a test left running", async () => {
  const forgotten = await startProxy(`http://127.0.0.1:${upstream.port}`);
  expect((await fetch(`${forgotten.url}/x`)).status).toBe(200);
  await stopEverything();
  const refused = await fetch(`${forgotten.url}/x`).then(
    () => "answered",
    (error: { code?: string }) => error.code,
  );
  expect(refused).toBe("ECONNREFUSED");
});
