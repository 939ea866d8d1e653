// The request pipeline (pipeline.ts) end to end over HTTP against a tracker on port 0: health,
// authentication, X-Request-Id, routing, query checks, Idempotency-Key, error mapping, body limits,
// clients that hang up, and stop().

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import type { Storage } from "../storage/storage.ts";
import { type ApiResponse, ManualClock, OTHER_API_KEY, startTestTracker, TEST_API_KEY, type TestTracker } from "../testing.ts";
import { apiKeyScope, MAX_BODY_BYTES, requestFingerprint } from "./server.ts";

let t: TestTracker;
const clock = new ManualClock();
const TTL_SECONDS = 60;

beforeEach(async () => {
  t = await startTestTracker({ now: clock.now, reservationTtlSeconds: TTL_SECONDS, version: "9.9.9-test" });
});
afterEach(async () => {
  await t.stop();
});

function task(taskId: string, extra: Record<string, unknown> = {}) {
  return { task_id: taskId, project_id: "proj", description: `Do ${taskId}`, ...extra };
}

async function addTasks(...tasks: Record<string, unknown>[]): Promise<ApiResponse> {
  const response = await t.request("POST", "/tasks/batch", { body: { tasks } });
  expect(response.status).toBe(201);
  return response;
}

function expectError(response: ApiResponse, status: number, code: string, error?: string): void {
  expect(response.status).toBe(status);
  expect(response.body.code).toBe(code);
  expect(typeof response.body.error).toBe("string");
  expect(Object.keys(response.body).sort()).toEqual(["code", "error"]);
  if (error !== undefined) expect(response.body.error).toBe(error);
}

function openSocket(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(t.url).port), "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Sends the bytes as they are (fetch would add a Host header) and returns status and JSON body. */
async function sendRaw(request: string): Promise<[number, unknown]> {
  const socket = await openSocket();
  let answer = "";
  socket.setEncoding("utf8").on("data", (chunk: string) => (answer += chunk));
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.write(request);
  await closed;
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  return [Number(head.split(" ")[1]), JSON.parse(body)];
}

describe("GET /healthz", () => {
  test("answers without a key, with the version", async () => {
    const response = await t.request("GET", "/healthz", { apiKey: null });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "ok", version: "9.9.9-test" });
    expect(response.headers.get("content-type")).toBe("application/json");
  });

  test("is 503 when the database is unreachable", async () => {
    await t.storage.close();
    expectError(await t.request("GET", "/healthz", { apiKey: null }), 503, "unavailable");
  });
});

describe("authentication", () => {
  test("a missing key is 401 with WWW-Authenticate: Bearer", async () => {
    const response = await t.request("GET", "/tasks/next?project=proj", { apiKey: null });
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: "Unauthorized", code: "unauthorized" });
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
  });

  test("a wrong key, another scheme or an empty bearer is 401", async () => {
    for (const authorization of [`Bearer ${TEST_API_KEY}x`, `Basic ${TEST_API_KEY}`, "Bearer ", "Bearer", TEST_API_KEY]) {
      const response = await t.request("GET", "/tasks/T-1", { apiKey: null, headers: { Authorization: authorization } });
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: "Unauthorized", code: "unauthorized" });
    }
  });

  test("every configured key works, and unknown routes hide behind auth", async () => {
    expect((await t.request("GET", "/tasks/next?project=proj", { apiKey: OTHER_API_KEY })).status).toBe(200);
    expect((await t.request("GET", "/nothing-here", { apiKey: null })).status).toBe(401);
  });

  test("keys and bodies never reach the log", async () => {
    await t.request("GET", "/tasks/next?project=proj");
    await t.request("GET", "/tasks/next?project=proj", { apiKey: "wrong-key-0123456789" });
    await t.request("POST", "/tasks/batch", { body: { tasks: [task("SECRET-DESCRIPTION-TASK")] } });
    const log = t.logText();
    expect(log).toContain('"path":"/tasks/batch"');
    for (const secret of [TEST_API_KEY, "wrong-key-0123456789", "Bearer", "SECRET-DESCRIPTION-TASK"]) {
      expect(log).not.toContain(secret);
    }
    for (const line of log.trim().split("\n")) {
      const entry = JSON.parse(line);
      if (entry.msg === "request") {
        expect(Object.keys(entry).sort()).toEqual([
          "duration_ms",
          "level",
          "method",
          "msg",
          "path",
          "request_id",
          "status",
          "ts",
        ]);
      }
    }
  });
});

describe("X-Request-Id", () => {
  test("is echoed when the client sends one", async () => {
    const response = await t.request("GET", "/tasks/next?project=proj", { headers: { "X-Request-Id": "req-123" } });
    expect(response.headers.get("x-request-id")).toBe("req-123");
    expect(t.logText()).toContain('"request_id":"req-123"');
  });

  test("is replaced when the client's is too long to log", async () => {
    const response = await t.request("GET", "/healthz", { apiKey: null, headers: { "X-Request-Id": "r".repeat(129) } });
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("is generated on every other response, errors included", async () => {
    for (const [path, apiKey] of [
      ["/healthz", null],
      ["/tasks/next", TEST_API_KEY],
      ["/tasks/next", null],
    ] as const) {
      const response = await t.request("GET", path, { apiKey });
      expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe("routing", () => {
  test("an unknown route is 404", async () => {
    expectError(await t.request("GET", "/nothing"), 404, "not_found", "No such endpoint: GET /nothing");
    expectError(await t.request("GET", "/tasks/T-1/status/extra"), 404, "not_found");
    expectError(await t.request("GET", "/ids"), 404, "not_found");
  });

  test("a wrong method is 405 with Allow", async () => {
    const response = await t.request("DELETE", "/tasks/T-1");
    expectError(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("GET, PATCH");
    // PATCH /tasks/next edits a task called next: only GET /tasks/next is the next-task endpoint.
    expect((await t.request("POST", "/tasks/next")).headers.get("allow")).toBe("GET, PATCH");
    expect((await t.request("GET", "/ids/reserve")).headers.get("allow")).toBe("POST");
    expect((await t.request("POST", "/healthz", { apiKey: null })).headers.get("allow")).toBe("GET");
    expect((await t.request("GET", "/tasks/T-1/status")).headers.get("allow")).toBe("PUT");
  });

  test("HEAD answers as GET does, without the body", async () => {
    await addTasks(task("T-1"));
    const paths = ["/healthz", "/tasks/T-1", "/tasks/NOPE", "/tasks/next?project=proj", "/ids/reservations/not-a-uuid"];
    for (const path of paths) {
      const get = await t.request("GET", path);
      const head = await t.request("HEAD", path);
      expect([head.status, head.body, head.headers.get("content-type"), head.headers.get("content-length")]).toEqual([
        get.status,
        "",
        "application/json",
        String(Buffer.byteLength(JSON.stringify(get.body))),
      ]);
    }
  });

  test("HEAD /ids/next is 405, as it would spend an ID that nobody sees", async () => {
    const response = await t.request("HEAD", "/ids/next?type=US&project=proj");
    expect([response.status, response.headers.get("allow")]).toEqual([405, "GET"]);
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.number).toBe(1);
  });

  test("a request without a usable Host header is routed by its path", async () => {
    const auth = `Authorization: Bearer ${TEST_API_KEY}\r\n`;
    for (const hostLine of ["", "Host:\r\n", "Host: a b\r\n", "Host: [::1\r\n"]) {
      expect(await sendRaw(`GET /healthz HTTP/1.0\r\n${hostLine}\r\n`)).toEqual([200, { status: "ok", version: "9.9.9-test" }]);
      expect(await sendRaw(`GET /tasks/next?project=proj HTTP/1.0\r\n${hostLine}${auth}\r\n`)).toEqual([200, { task: null }]);
    }
  });

  test("GET /tasks/batch reads a task called batch, as a task_id may be any name", async () => {
    expectError(await t.request("GET", "/tasks/batch"), 404, "task_not_found", "Task not found: batch");
  });
});

describe("query parameters", () => {
  test("one given twice is 400 naming it, and nothing is allocated", async () => {
    expectError(
      await t.request("GET", "/ids/next?project=proj&type=US&type=SPEC"),
      400,
      "validation_failed",
      "type must be given once, not 2 times",
    );
    expectError(
      await t.request("GET", "/tasks/next?project=proj&project=proj"),
      400,
      "validation_failed",
      "project must be given once, not 2 times",
    );
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.number).toBe(1);
  });

  test("an unknown one is 400 naming it and what the endpoint takes, and nothing changes", async () => {
    const cases: Array<[string, string, string]> = [
      [
        "GET",
        "/tasks/next?project=proj&bogus=1",
        "bogus is not a known query parameter of GET /tasks/next (it takes project, status)",
      ],
      [
        "GET",
        "/ids/next?type=US&project=proj&Type=SPEC",
        "Type is not a known query parameter of GET /ids/next (it takes type, project)",
      ],
      ["GET", "/tasks/T-1?verbose", "verbose is not a known query parameter of GET /tasks/<task_id> (it takes project)"],
      ["POST", "/tasks/batch?dry_run=true", "dry_run is not a known query parameter of POST /tasks/batch (it takes none)"],
    ];
    for (const [method, path, sentence] of cases) {
      const body = method === "POST" ? { tasks: [task("A")] } : undefined;
      expectError(await t.request(method, path, { body }), 400, "validation_failed", sentence);
    }
    expect((await t.request("GET", "/tasks/A")).status).toBe(404);
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.number).toBe(1);
  });
});

describe("Idempotency-Key: a replay", () => {
  test("a replay gets the stored response with Idempotent-Replayed: true and changes nothing", async () => {
    const headers = { "Idempotency-Key": "alloc-1" };
    const first = await t.request("GET", "/ids/next?type=US&project=proj", { headers });
    const again = await t.request("GET", "/ids/next?type=US&project=proj", { headers });
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.number).toBe(2);
  });

  test("a key is kept for 24 hours, then runs afresh", async () => {
    const headers = { "Idempotency-Key": "day-old" };
    const path = "/ids/next?type=US&project=proj";
    expect((await t.request("GET", path, { headers })).body.number).toBe(1);
    clock.advance(24 * 60 * 60 * 1000 - 1);
    expect((await t.request("GET", path, { headers })).headers.get("idempotent-replayed")).toBe("true");
    clock.advance(1);
    const fresh = await t.request("GET", path, { headers });
    expect([fresh.headers.get("idempotent-replayed"), fresh.body.number]).toEqual([null, 2]);
    expect((await t.request("GET", path, { headers })).body.number).toBe(2);
  });

  test("a replayed batch answers 201 again instead of a conflict", async () => {
    const body = { tasks: [task("IDEM-1")] };
    const headers = { "Idempotency-Key": "batch-1" };
    const first = await t.request("POST", "/tasks/batch", { body, headers });
    const again = await t.request("POST", "/tasks/batch", { body, headers });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
  });

  test("every idempotent endpoint replays", async () => {
    await addTasks(task("T-1"));
    const calls: Array<[string, string, unknown]> = [
      ["PUT", "/tasks/T-1/status", { status: "in_progress" }],
      ["POST", "/ids/reserve", { type: "US", count: 2, project_id: "proj" }],
      ["PUT", "/ids/registry/proj/SPEC", { last_assigned_id: 5 }],
    ];
    for (const [method, path, body] of calls) {
      const headers = { "Idempotency-Key": `key-${path}` };
      const first = await t.request(method, path, { body, headers });
      const again = await t.request(method, path, { body, headers });
      expect(again.status).toBe(first.status);
      expect(again.body).toEqual(first.body);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
    }
  });
});

describe("Idempotency-Key: what a dump keeps of it", () => {
  test("a dump holds neither the SHA-256 of the key that wrote nor the Idempotency-Key (both storages)", async () => {
    const headers = { "Idempotency-Key": `dumped-${crypto.randomUUID()}` };
    expect(
      (await t.request("POST", "/ids/reserve", { body: { type: "US", count: 2, project_id: "proj" }, headers })).status,
    ).toBe(201);
    const dump = await t.request("GET", "/admin/dump");
    expect(dump.status).toBe(200);
    const text = String(dump.body);
    expect(text).toContain('"kind":"counter"');
    expect([text.includes(apiKeyScope(TEST_API_KEY)), text.includes(headers["Idempotency-Key"])]).toEqual([false, false]);
  });
});

describe("Idempotency-Key: another request, one still running, another API key, a 4xx, a malformed key", () => {
  test("the same key for a different request is 422", async () => {
    const headers = { "Idempotency-Key": "reused" };
    await t.request("POST", "/ids/reserve", { body: { type: "US", count: 2, project_id: "proj" }, headers });
    expectError(
      await t.request("POST", "/ids/reserve", { body: { type: "US", count: 3, project_id: "proj" }, headers }),
      422,
      "idempotency_mismatch",
    );
    expectError(await t.request("GET", "/ids/next?type=US&project=proj", { headers }), 422, "idempotency_mismatch");
    await t.request("GET", "/ids/next?type=US&project=proj", { headers: { "Idempotency-Key": "query" } });
    expectError(
      await t.request("GET", "/ids/next?type=SPEC&project=proj", { headers: { "Idempotency-Key": "query" } }),
      422,
      "idempotency_mismatch",
    );
  });

  test("the same key while the first request is still running is 409", async () => {
    // Another instance (or a slow first request) holds the key: claim it as that request would.
    const path = "/ids/next?type=US&project=proj";
    const outcome = await t.storage.claimIdempotencyKey({
      scope: apiKeyScope(TEST_API_KEY),
      key: "busy",
      fingerprint: requestFingerprint("GET", path, ""),
      now: clock.now(),
      leaseMs: 60_000,
      retentionMs: 86_400_000,
    });
    expect(outcome.outcome).toBe("claimed");
    expectError(await t.request("GET", path, { headers: { "Idempotency-Key": "busy" } }), 409, "idempotency_in_flight");
    expect((await t.request("GET", path, { headers: { "Idempotency-Key": "other" } })).body.number).toBe(1);
  });

  test("keys are scoped per API key", async () => {
    const headers = { "Idempotency-Key": "shared" };
    const mine = await t.request("GET", "/ids/next?type=US&project=proj", { headers });
    const theirs = await t.request("GET", "/ids/next?type=US&project=proj", { headers, apiKey: OTHER_API_KEY });
    expect([mine.body.number, theirs.body.number]).toEqual([1, 2]);
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();
  });

  test("a 4xx is stored and replayed", async () => {
    const headers = { "Idempotency-Key": "bad-request" };
    const first = await t.request("PUT", "/tasks/NOPE/status", { body: { status: "completed" }, headers });
    expectError(first, 404, "task_not_found");
    await addTasks(task("NOPE"));
    const again = await t.request("PUT", "/tasks/NOPE/status", { body: { status: "completed" }, headers });
    expect([again.status, again.headers.get("idempotent-replayed")]).toEqual([404, "true"]);
  });

  test("a malformed key is 400 naming the header", async () => {
    for (const key of ["k".repeat(256), "caf\u00e9"]) {
      const response = await fetch(`${t.url}/ids/next?type=US&project=proj`, {
        headers: { Authorization: `Bearer ${TEST_API_KEY}`, "Idempotency-Key": key },
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: "Idempotency-Key must be 1 to 255 printable ASCII characters",
        code: "validation_failed",
      });
    }
    expect(
      (await t.request("GET", "/ids/next?type=US&project=proj", { headers: { "Idempotency-Key": "k".repeat(255) } })).status,
    ).toBe(200);
  });
});

describe("internal errors", () => {
  let failing: TestTracker;
  let failNext = false;
  beforeAll(async () => {
    failing = await startTestTracker();
    const storage = failing.storage;
    const allocateId: Storage["allocateId"] = storage.allocateId.bind(storage);
    storage.allocateId = (...args) => {
      if (!failNext) return allocateId(...args);
      failNext = false;
      return Promise.reject(new Error("disk on fire: /secret/path"));
    };
  });
  afterAll(async () => {
    await failing.stop();
  });

  test("reach the client only as Internal error, details go to the log, and are not stored", async () => {
    failNext = true;
    const headers = { "Idempotency-Key": "retry-me" };
    const failed = await failing.request("GET", "/ids/next?type=US&project=proj", { headers });
    expect(failed.status).toBe(500);
    expect(failed.body).toEqual({ error: "Internal error", code: "internal" });
    expect(failing.logText()).toContain("disk on fire");
    const retried = await failing.request("GET", "/ids/next?type=US&project=proj", { headers });
    expect([retried.status, retried.headers.get("idempotent-replayed"), retried.body.number]).toEqual([200, null, 1]);
  });
});

describe("request bodies over 1 MiB", () => {
  test("are 413 by Content-Length, with the contract's body however large", async () => {
    for (const size of [MAX_BODY_BYTES + 1, 8 * MAX_BODY_BYTES]) {
      const response = await t.request("POST", "/tasks/batch", { rawBody: "x".repeat(size) });
      expectError(response, 413, "payload_too_large", "The request body is larger than 1048576 bytes");
      expect(response.headers.get("x-request-id")).toBeTruthy();
    }
  });

  test("are 413 by the bytes read when no length is declared", async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES * 2) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    expectError(await t.request("POST", "/tasks/batch", { rawBody: stream }), 413, "payload_too_large");
  });

  test("exactly 1 MiB is read and judged on its content", async () => {
    const json = '{"tasks": []}';
    const response = await t.request("POST", "/tasks/batch", { rawBody: " ".repeat(MAX_BODY_BYTES - json.length) + json });
    expectError(response, 400, "validation_failed", "tasks must hold 1 to 500 tasks, not 0");
  });
});

describe("a client that hangs up", () => {
  test("in the middle of its body is logged as gone (499, info), not as a server error", async () => {
    const socket = await openSocket();
    socket.write(
      `POST /tasks/batch HTTP/1.1\r\nHost: tracker\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nContent-Length: 100\r\n\r\n{`,
    );
    await t.waitForLog("request started");
    socket.destroy();
    await t.waitForLog("request");
    const entries = t
      .logText()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(entries.filter((entry) => entry.level === "error")).toEqual([]);
    expect(entries.find((entry) => entry.msg === "request")).toMatchObject({
      level: "info",
      method: "POST",
      path: "/tasks/batch",
      status: 499,
    });
  });
});

describe("stop()", () => {
  test("closes a request that never finishes once the grace period is over", async () => {
    const stalled = await startTestTracker({ shutdownGraceMs: 50 });
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"tasks": ['));
      },
    });
    const request = fetch(`${stalled.url}/tasks/batch`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TEST_API_KEY}` },
      body,
    });
    const outcome = request.then(
      () => "answered",
      () => "closed",
    );
    // Wait until the server holds the request.
    await stalled.waitForLog("request started");
    await stalled.stop();
    expect(await outcome).toBe("closed");
    expect(stalled.logText()).toContain("requests still open at the shutdown deadline");
  });
});
