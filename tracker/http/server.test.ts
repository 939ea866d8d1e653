// The REST contract of API.md, end to end over HTTP against an in-process tracker on port 0.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { MAX_BODY_BYTES, apiKeyScope, requestFingerprint } from "./server.ts";
import type { Storage } from "../storage/storage.ts";
import {
  ManualClock,
  OTHER_API_KEY,
  TEST_API_KEY,
  startTestTracker,
  type ApiResponse,
  type TestTracker,
} from "../testing.ts";

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

async function setStatus(taskId: string, status: string, headers: Record<string, string> = {}, notes?: string) {
  const body = notes === undefined ? { status } : { status, completion_notes: notes };
  return t.request("PUT", `/tasks/${taskId}/status`, { body, headers });
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
        expect(Object.keys(entry).sort()).toEqual(["duration_ms", "level", "method", "msg", "path", "request_id", "status", "ts"]);
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
    for (const [path, apiKey] of [["/healthz", null], ["/tasks/next", TEST_API_KEY], ["/tasks/next", null]] as const) {
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
    expectError(await t.request("GET", "/tasks/batch"), 404, "not_found", "Task not found: batch");
  });
});

describe("query parameters", () => {
  test("one given twice is 400 naming it, and nothing is allocated", async () => {
    expectError(await t.request("GET", "/ids/next?project=proj&type=US&type=SPEC"), 400, "validation_failed", "type must be given once, not 2 times");
    expectError(await t.request("GET", "/tasks/next?project=proj&project=proj"), 400, "validation_failed", "project must be given once, not 2 times");
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.number).toBe(1);
  });

  test("an unknown one is 400 naming it and what the endpoint takes, and nothing changes", async () => {
    const cases: Array<[string, string, string]> = [
      ["GET", "/tasks/next?project=proj&bogus=1", "bogus is not a known query parameter of GET /tasks/next (it takes project, status)"],
      ["GET", "/ids/next?type=US&project=proj&Type=SPEC", "Type is not a known query parameter of GET /ids/next (it takes type, project)"],
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

describe("POST /tasks/batch", () => {
  test("adds tasks with defaults and answers 201", async () => {
    const response = await addTasks(task("TASK-046"), task("TASK-047", { priority: "high", inputs: ["US-053"], outputs: ["index.ts"] }));
    expect(response.body).toEqual({ success: true, tasks_added: 2, task_ids: ["TASK-046", "TASK-047"] });
    const stored = await t.request("GET", "/tasks/TASK-047");
    expect(stored.body).toEqual({
      task: {
        task_id: "TASK-047",
        project_id: "proj",
        description: "Do TASK-047",
        inputs: ["US-053"],
        outputs: ["index.ts"],
        priority: "high",
        depends_on: [],
        status: "pending",
        claimed_by: null,
        lease_expires_at: null,
        completion_notes: "",
        created_at: clock.now().toISOString(),
        updated_at: clock.now().toISOString(),
        started_at: null,
        completed_at: null,
      },
    });
  });

  const badBatches: Array<[string, unknown, string]> = [
    ["a missing description", { tasks: [task("A"), { task_id: "B", project_id: "proj" }] }, "tasks[1].description is required"],
    ["an empty description", { tasks: [task("A", { description: "" })] }, "tasks[0].description must be 1 to 10000 characters"],
    ["an over-long description", { tasks: [task("A", { description: "x".repeat(10_001) })] }, "tasks[0].description must be 1 to 10000 characters"],
    ["a task_id of the wrong type", { tasks: [task("A", { task_id: 7 })] }, "tasks[0].task_id must be a string, not a number"],
    ["a task_id with odd characters", { tasks: [task("A B")] }, "tasks[0].task_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -"],
    ["a task_id of 65 characters", { tasks: [task("x".repeat(65))] }, "tasks[0].task_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -"],
    ["a project_id of 129 characters", { tasks: [task("A", { project_id: "p".repeat(129) })] }, "tasks[0].project_id must be 1 to 128 characters of A-Z a-z 0-9 . _ -"],
    ["an unknown priority", { tasks: [task("A", { priority: "urgent" })] }, "tasks[0].priority must be one of high, medium, low"],
    ["inputs that are not an array", { tasks: [task("A", { inputs: "x" })] }, "tasks[0].inputs must be an array of strings, not a string"],
    ["an output that is not a string", { tasks: [task("A", { outputs: ["a", 1] })] }, "tasks[0].outputs[1] must be a string, not a number"],
    ["a malformed dependency", { tasks: [task("A", { depends_on: ["no spaces"] })] }, "tasks[0].depends_on[0] must be 1 to 64 characters of A-Z a-z 0-9 . _ -"],
    ["an unknown field", { tasks: [task("A", { state: "completed" })] }, "tasks[0].state is not a known field"],
    ["an unknown top-level field", { tasks: [task("A")], extra: 1 }, "extra is not a known field"],
    ["no tasks field", {}, "tasks is required"],
    ["tasks that is not an array", { tasks: {} }, "tasks must be an array, not an object"],
    ["an empty batch", { tasks: [] }, "tasks must hold 1 to 500 tasks, not 0"],
    ["501 tasks", { tasks: Array.from({ length: 501 }, (_, i) => task(`T-${i}`)) }, "tasks must hold 1 to 500 tasks, not 501"],
    ["a task that is null", { tasks: [null] }, "tasks[0] must be a JSON object, not null"],
    ["a body that is an array", [task("A")], "The request body must be a JSON object, not an array"],
    ["a body that is null", null, "The request body must be a JSON object, not null"],
    ["a dependency cycle", { tasks: [task("A", { depends_on: ["B"] }), task("B", { depends_on: ["A"] })] }, "tasks[1].depends_on forms a cycle: A -> B -> A"],
    ["a task that depends on itself", { tasks: [task("A", { depends_on: ["A"] })] }, "tasks[0].depends_on forms a cycle: A -> A"],
    ["a dependency on an unknown task", { tasks: [task("A", { depends_on: ["GHOST"] })] }, "tasks[0].depends_on[0] names an unknown task: GHOST"],
  ];
  for (const [what, body, sentence] of badBatches) {
    test(`rejects ${what} with 400 naming it, and adds nothing`, async () => {
      expectError(await t.request("POST", "/tasks/batch", { body }), 400, "validation_failed", sentence);
      expect((await t.request("GET", "/tasks/A")).status).toBe(404);
    });
  }

  test("rejects malformed JSON, an empty body and bad UTF-8 with 400", async () => {
    expectError(await t.request("POST", "/tasks/batch", { rawBody: '{"tasks": [' }), 400, "validation_failed", "The request body is not valid JSON");
    expectError(await t.request("POST", "/tasks/batch", { rawBody: "" }), 400, "validation_failed");
    expectError(await t.request("POST", "/tasks/batch", { rawBody: new Uint8Array([0x7b, 0xff, 0x7d]) }), 400, "validation_failed", "The request body is not valid UTF-8");
  });

  test("a task that exists, or repeats in the batch, is 409 and nothing is added", async () => {
    await addTasks(task("OLD"));
    expectError(await t.request("POST", "/tasks/batch", { body: { tasks: [task("NEW"), task("OLD")] } }), 409, "conflict", "Task already exists: OLD in project proj");
    expectError(await t.request("POST", "/tasks/batch", { body: { tasks: [task("NEW"), task("NEW")] } }), 409, "conflict");
    expect((await t.request("GET", "/tasks/NEW")).status).toBe(404);
  });

  test("a dependency must be in the same project", async () => {
    await addTasks(task("OTHER", { project_id: "elsewhere" }));
    const response = await t.request("POST", "/tasks/batch", { body: { tasks: [task("A", { depends_on: ["OTHER"] })] } });
    expectError(response, 400, "validation_failed", "tasks[0].depends_on[0] names OTHER of project elsewhere, not of proj");
  });

  test("accepts 500 tasks in a chain, dependencies inside the batch in any order", async () => {
    const tasks = Array.from({ length: 500 }, (_, i) => task(`C-${i}`, i === 0 ? {} : { depends_on: [`C-${i - 1}`] }));
    tasks.reverse();
    expect((await addTasks(...tasks)).body.tasks_added).toBe(500);
    expect((await t.request("GET", "/tasks/next?project=proj")).body.task.task_id).toBe("C-0");
  });
});

describe("GET /tasks/<task_id>", () => {
  test("404 names the task", async () => {
    expectError(await t.request("GET", "/tasks/TASK-999"), 404, "not_found", "Task not found: TASK-999");
  });

  test("odd characters or an over-long ID in the path are 400", async () => {
    expectError(await t.request("GET", "/tasks/bad%20id"), 400, "validation_failed", "task_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
    expectError(await t.request("GET", `/tasks/${"x".repeat(65)}`), 400, "validation_failed");
    expectError(await t.request("GET", "/tasks/%E0%A4%A"), 400, "validation_failed", "task_id in the path is not valid percent-encoding");
  });

  test("a percent-encoded ID is decoded", async () => {
    await addTasks(task("T-1"));
    expect((await t.request("GET", "/tasks/T%2D1")).body.task.task_id).toBe("T-1");
  });
});

describe("GET /tasks/next", () => {
  test("orders by priority, then by insertion, and skips tasks that are not ready", async () => {
    await addTasks(
      task("LOW", { priority: "low" }),
      task("MED-1"),
      task("BLOCKED-HIGH", { priority: "high", depends_on: ["MED-1"] }),
      task("MED-2", { priority: "medium" }),
    );
    await addTasks(task("HIGH-LATER", { priority: "high" }));
    const next = async (status?: string) => {
      const query = status ? `&status=${status}` : "";
      const response = await t.request("GET", `/tasks/next?project=proj${query}`);
      expect(response.status).toBe(200);
      return response.body.task?.task_id ?? null;
    };
    expect(await next()).toBe("HIGH-LATER");
    expect((await setStatus("HIGH-LATER", "in_progress")).status).toBe(200);
    expect(await next("pending")).toBe("MED-1");
    expect(await next("in_progress")).toBe("HIGH-LATER");
    expect(await next("completed")).toBeNull();
    await setStatus("MED-1", "in_progress");
    await setStatus("MED-1", "completed");
    expect(await next()).toBe("BLOCKED-HIGH");
    expect(await next("completed")).toBe("MED-1");
  });

  test("changes nothing and answers null for an empty project", async () => {
    await addTasks(task("A"));
    expect((await t.request("GET", "/tasks/next?project=other")).body).toEqual({ task: null });
    expect((await t.request("GET", "/tasks/next?project=proj")).body.task.status).toBe("pending");
    expect((await t.request("GET", "/tasks/A")).body.task.status).toBe("pending");
  });

  test("a missing project or an unknown status is 400", async () => {
    expectError(await t.request("GET", "/tasks/next"), 400, "validation_failed", "project is required");
    expectError(await t.request("GET", "/tasks/next?project=a%20b"), 400, "validation_failed");
    expectError(await t.request("GET", "/tasks/next?project=proj&status=done"), 400, "validation_failed", "status must be one of pending, in_progress, completed");
  });
});

describe("PUT /tasks/<task_id>/status", () => {
  test("claim, release, claim again and complete, with the fields each sets", async () => {
    await addTasks(task("T-1"));
    const claimed = await setStatus("T-1", "in_progress", { "X-Agent-Id": "agent-7" });
    expect(claimed.status).toBe(200);
    const at = clock.now().toISOString();
    expect(claimed.body.updated_task).toMatchObject({ status: "in_progress", claimed_by: "agent-7", started_at: at, completed_at: null });

    const released = await setStatus("T-1", "pending", { "X-Agent-Id": "agent-7" });
    expect(released.body.updated_task).toMatchObject({ status: "pending", claimed_by: null, started_at: null });

    expect((await setStatus("T-1", "in_progress")).body.updated_task.claimed_by).toBeNull();
    clock.advance(1000);
    const done = await setStatus("T-1", "completed", {}, "Done");
    expect(done.body.updated_task).toMatchObject({
      status: "completed",
      completion_notes: "Done",
      completed_at: clock.now().toISOString(),
      updated_at: clock.now().toISOString(),
    });
  });

  test("everything else is 400 invalid_transition naming the task and both states", async () => {
    await addTasks(task("T-1"));
    expectError(await setStatus("T-1", "completed"), 400, "invalid_transition", "cannot change T-1 from pending to completed");
    expectError(await setStatus("T-1", "pending"), 400, "invalid_transition", "cannot change T-1 from pending to pending");
    await setStatus("T-1", "in_progress");
    expectError(await setStatus("T-1", "in_progress"), 400, "invalid_transition", "cannot change T-1 from in_progress to in_progress");
    await setStatus("T-1", "completed");
    expectError(await setStatus("T-1", "in_progress"), 400, "invalid_transition", "cannot change T-1 from completed to in_progress");
    expectError(await setStatus("T-1", "pending"), 400, "invalid_transition");
  });

  test("a claim waits until every dependency is completed", async () => {
    await addTasks(task("A"), task("B"), task("C", { depends_on: ["A", "B"] }));
    await setStatus("A", "in_progress");
    await setStatus("A", "completed");
    expectError(await setStatus("C", "in_progress"), 400, "invalid_transition", "cannot change C from pending to in_progress: B is not completed");
    await setStatus("B", "in_progress");
    await setStatus("B", "completed");
    expect((await setStatus("C", "in_progress")).status).toBe(200);
  });

  test("unknown task 404, bad bodies and a bad X-Agent-Id are 400", async () => {
    expectError(await setStatus("TASK-999", "completed"), 404, "not_found", "Task not found: TASK-999");
    await addTasks(task("T-1"));
    expectError(await setStatus("T-1", "done"), 400, "validation_failed", "status must be one of pending, in_progress, completed");
    expectError(await t.request("PUT", "/tasks/T-1/status", { body: {} }), 400, "validation_failed", "status is required");
    expectError(await t.request("PUT", "/tasks/T-1/status", { body: { status: "pending", note: "x" } }), 400, "validation_failed", "note is not a known field");
    expectError(await t.request("PUT", "/tasks/T-1/status", { body: { status: "completed", completion_notes: 5 } }), 400, "validation_failed", "completion_notes must be a string, not a number");
    expectError(await setStatus("T-1", "completed", {}, "n".repeat(10_001)), 400, "validation_failed", "completion_notes must be at most 10000 characters");
    expectError(await setStatus("T-1", "in_progress", { "X-Agent-Id": "a".repeat(129) }), 400, "validation_failed", "X-Agent-Id must be 1 to 128 printable ASCII characters");
    expect((await t.request("GET", "/tasks/T-1")).body.task.status).toBe("pending");
  });

  test("20 concurrent claims of one task give exactly one winner", async () => {
    await addTasks(task("CONTESTED"));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => setStatus("CONTESTED", "in_progress", { "X-Agent-Id": `agent-${i}` })),
    );
    const winners = results.filter((response) => response.status === 200);
    expect(winners).toHaveLength(1);
    for (const loser of results.filter((response) => response.status !== 200)) {
      expectError(loser, 400, "invalid_transition", "cannot change CONTESTED from in_progress to in_progress");
    }
    const stored = await t.request("GET", "/tasks/CONTESTED");
    expect(stored.body.task.claimed_by).toBe(winners[0]!.body.updated_task.claimed_by);
  });
});

describe("IDs", () => {
  test("GET /ids/next starts at 001 and pads to three digits, wider past 999", async () => {
    const first = await t.request("GET", "/ids/next?type=US&project=proj");
    expect(first.body).toEqual({ next_id: "US-001", artifact_type: "US", project_id: "proj", number: 1 });
    expect((await t.request("PUT", "/ids/registry/proj/US", { body: { last_assigned_id: 998 } })).status).toBe(200);
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.next_id).toBe("US-999");
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.next_id).toBe("US-1000");
    expect((await t.request("GET", "/ids/next?type=US&project=other")).body.next_id).toBe("US-001");
    expect((await t.request("GET", "/ids/next?type=SPEC2&project=proj")).body.next_id).toBe("SPEC2-001");
  });

  test("a bad type or project is 400", async () => {
    expectError(await t.request("GET", "/ids/next?type=us&project=proj"), 400, "validation_failed", "type must be 1 to 16 characters: an upper-case letter, then upper-case letters or digits");
    expectError(await t.request("GET", "/ids/next?type=1US&project=proj"), 400, "validation_failed");
    expectError(await t.request("GET", `/ids/next?type=${"A".repeat(17)}&project=proj`), 400, "validation_failed");
    expectError(await t.request("GET", "/ids/next?project=proj"), 400, "validation_failed", "type is required");
    expectError(await t.request("GET", "/ids/next?type=US"), 400, "validation_failed", "project is required");
  });

  test("a reservation is contiguous, expires after the TTL and keeps its IDs", async () => {
    await t.request("PUT", "/ids/registry/proj/US", { body: { last_assigned_id: 27 } });
    const created = await t.request("POST", "/ids/reserve", { body: { type: "US", count: 6, project_id: "proj" } });
    expect(created.status).toBe(201);
    const expiresAt = new Date(clock.now().getTime() + TTL_SECONDS * 1000).toISOString();
    expect(created.body).toEqual({
      // A version 7 UUID: time-ordered, so new reservations append to the table (see server.ts).
      reservation_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      reserved_ids: ["US-028", "US-029", "US-030", "US-031", "US-032", "US-033"],
      expires_at: expiresAt,
      artifact_type: "US",
      project_id: "proj",
    });
    const path = `/ids/reservations/${created.body.reservation_id}`;
    expect((await t.request("GET", path)).body).toEqual({ ...created.body, status: "active" });
    clock.advance(TTL_SECONDS * 1000);
    expect((await t.request("GET", path)).body).toEqual({ ...created.body, status: "expired" });
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.next_id).toBe("US-034");
  });

  test("reservation errors: count out of range, bad fields, unknown or malformed IDs", async () => {
    const reserve = (body: unknown) => t.request("POST", "/ids/reserve", { body });
    expectError(await reserve({ type: "US", count: 0, project_id: "proj" }), 400, "validation_failed", "count must be between 1 and 100");
    expectError(await reserve({ type: "US", count: 101, project_id: "proj" }), 400, "validation_failed", "count must be between 1 and 100");
    expectError(await reserve({ type: "US", count: 1.5, project_id: "proj" }), 400, "validation_failed", "count must be an integer, not a number");
    expectError(await reserve({ type: "US", count: "6", project_id: "proj" }), 400, "validation_failed", "count must be an integer, not a string");
    expectError(await reserve({ type: "US", count: 6 }), 400, "validation_failed", "project_id is required");
    expectError(await reserve({ type: "US", count: 6, project_id: "proj", ttl: 5 }), 400, "validation_failed", "ttl is not a known field");
    expectError(await t.request("GET", "/ids/reservations/00000000-0000-4000-8000-000000000000"), 404, "not_found", "Reservation not found: 00000000-0000-4000-8000-000000000000");
    expectError(await t.request("GET", "/ids/reservations/not-a-uuid"), 400, "validation_failed", "reservation_id must be a UUID");
  });

  test("the registry import raises the counter, and 409 when it would lower it", async () => {
    const put = (path: string, body: unknown) => t.request("PUT", path, { body });
    expect((await put("/ids/registry/proj/US", { last_assigned_id: 27 })).body).toEqual({ project_id: "proj", artifact_type: "US", last_assigned_id: 27 });
    expect((await put("/ids/registry/proj/US", { last_assigned_id: 27 })).status).toBe(200);
    expectError(await put("/ids/registry/proj/US", { last_assigned_id: 26 }), 409, "conflict", "Cannot lower the US counter of project proj from 27 to 26");
    expect((await t.request("GET", "/ids/next?type=US&project=proj")).body.next_id).toBe("US-028");
    expectError(await put("/ids/registry/proj/US", { last_assigned_id: 28 - 1 }), 409, "conflict");
    expectError(await put("/ids/registry/proj/us", { last_assigned_id: 30 }), 400, "validation_failed");
    expectError(await put("/ids/registry/bad%20project/US", { last_assigned_id: 30 }), 400, "validation_failed");
    expectError(await put("/ids/registry/proj/US", { last_assigned_id: -1 }), 400, "validation_failed");
    expectError(await put("/ids/registry/proj/US", { last_assigned_id: "30" }), 400, "validation_failed");
    expectError(await put("/ids/registry/proj/US", {}), 400, "validation_failed", "last_assigned_id is required");
  });

  test("100 concurrent allocations and 10 concurrent reservations give unique, gap-free IDs", async () => {
    const allocations = Array.from({ length: 100 }, () => t.request("GET", "/ids/next?type=TASK&project=proj"));
    const reservations = Array.from({ length: 10 }, () =>
      t.request("POST", "/ids/reserve", { body: { type: "TASK", count: 5, project_id: "proj" } }),
    );
    const numbers: number[] = [];
    for (const response of await Promise.all(allocations)) numbers.push(response.body.number);
    for (const response of await Promise.all(reservations)) {
      const ids: string[] = response.body.reserved_ids;
      const reservedNumbers = ids.map((id) => Number(id.slice("TASK-".length)));
      // Each reservation is contiguous.
      expect(reservedNumbers).toEqual(reservedNumbers.map((_, i) => reservedNumbers[0]! + i));
      numbers.push(...reservedNumbers);
    }
    numbers.sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
  });
});

describe("Idempotency-Key", () => {
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

  test("the same key for a different request is 422", async () => {
    const headers = { "Idempotency-Key": "reused" };
    await t.request("POST", "/ids/reserve", { body: { type: "US", count: 2, project_id: "proj" }, headers });
    expectError(await t.request("POST", "/ids/reserve", { body: { type: "US", count: 3, project_id: "proj" }, headers }), 422, "idempotency_mismatch");
    expectError(await t.request("GET", "/ids/next?type=US&project=proj", { headers }), 422, "idempotency_mismatch");
    await t.request("GET", "/ids/next?type=US&project=proj", { headers: { "Idempotency-Key": "query" } });
    expectError(await t.request("GET", "/ids/next?type=SPEC&project=proj", { headers: { "Idempotency-Key": "query" } }), 422, "idempotency_mismatch");
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
    expectError(first, 404, "not_found");
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
      expect(await response.json()).toEqual({ error: "Idempotency-Key must be 1 to 255 printable ASCII characters", code: "validation_failed" });
    }
    expect((await t.request("GET", "/ids/next?type=US&project=proj", { headers: { "Idempotency-Key": "k".repeat(255) } })).status).toBe(200);
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
    const entries = t.logText().trim().split("\n").map((line) => JSON.parse(line));
    expect(entries.filter((entry) => entry.level === "error")).toEqual([]);
    expect(entries.find((entry) => entry.msg === "request")).toMatchObject({ level: "info", method: "POST", path: "/tasks/batch", status: 499 });
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
    const request = fetch(`${stalled.url}/tasks/batch`, { method: "POST", headers: { Authorization: `Bearer ${TEST_API_KEY}` }, body });
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
