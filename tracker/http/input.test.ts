// Input the audit found answered with a 5xx (on one storage or both): now a clear 4xx before any
// storage sees it. And the board's files, served without a key.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { expectApiError, startTestTracker, TEST_API_KEY, type TestTracker, taskInput as task } from "../testing.ts";

let t: TestTracker;
beforeAll(async () => {
  t = await startTestTracker();
  const added = await t.request("POST", "/tasks/batch", { body: { tasks: [task("T-1")] } });
  expect(added.status).toBe(201);
});
afterAll(async () => {
  await t.stop();
});

/** JSON text with `\u0000` or `\ud800` escapes, as a client would send them. */
function withEscape(value: unknown, placeholder: string, escape: string): string {
  return JSON.stringify(value).replaceAll(placeholder, escape);
}

describe("a NUL character or a lone surrogate in a text field", () => {
  const NUL = "must not contain a NUL character";
  const SURROGATE = "must not contain a lone surrogate (invalid UTF-16)";
  const bodies: Array<[string, string, unknown, string]> = [
    ["POST", "/tasks/batch", { tasks: [task("N-1", { description: "a@b" })] }, "tasks[0].description"],
    ["POST", "/tasks/batch", { tasks: [task("N-1", { inputs: ["ok", "a@b"] })] }, "tasks[0].inputs[1]"],
    ["POST", "/tasks/batch", { tasks: [task("N-1", { outputs: ["a@b"] })] }, "tasks[0].outputs[0]"],
    [
      "POST",
      "/tasks/batch",
      { tasks: [task("N-1", { status: "completed", completion_notes: "a@b" })] },
      "tasks[0].completion_notes",
    ],
    ["PUT", "/tasks/T-1/status", { status: "completed", completion_notes: "a@b" }, "completion_notes"],
    ["PATCH", "/tasks/T-1", { description: "a@b" }, "description"],
  ];
  for (const [method, path, body, field] of bodies) {
    test(`in ${field} of ${method} ${path} is 400 naming the field`, async () => {
      for (const [escape, rule] of [
        ["\\u0000", NUL],
        ["\\ud800", SURROGATE],
        ["\\udfff", SURROGATE],
      ] as const) {
        const rawBody = withEscape(body, "@", escape);
        const response = await t.request(method, path, { rawBody, headers: { "Content-Type": "application/json" } });
        expectApiError(response, 400, "validation_failed", `${field} ${rule}`);
      }
    });
  }

  test("in an ID field of a body is 400 naming the field", async () => {
    const rawBody = withEscape({ tasks: [task("A@B")] }, "@", "\\u0000");
    expectApiError(
      await t.request("POST", "/tasks/batch", { rawBody }),
      400,
      "validation_failed",
      "tasks[0].task_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
    );
    const reserve = withEscape({ type: "US", count: 1, project_id: "p@" }, "@", "\\ud800");
    expectApiError(
      await t.request("POST", "/ids/reserve", { rawBody: reserve }),
      400,
      "validation_failed",
      "project_id must be 1 to 128 characters of A-Z a-z 0-9 . _ -",
    );
  });

  test("in a query value or a path parameter is 400 naming it", async () => {
    const cases: Array<[string, string]> = [
      ["/tasks?cursor=a%00b", `cursor ${NUL}`],
      ["/tasks?claimed_by=a%00b", "claimed_by must be 1 to 128 printable ASCII characters"],
      ["/tasks?project=a%00b", "project must be 1 to 128 characters of A-Z a-z 0-9 . _ -"],
      ["/tasks/T%00-1", "task_id must be 1 to 64 characters of A-Z a-z 0-9 . _ -"],
      ["/tasks/T-1?project=%00", "project must be 1 to 128 characters of A-Z a-z 0-9 . _ -"],
      ["/ids/next?type=US&project=p%00", "project must be 1 to 128 characters of A-Z a-z 0-9 . _ -"],
      ["/ids/reservations/%00", "reservation_id must be a UUID"],
      // A lone surrogate cannot be percent-encoded as UTF-8; its bytes decode as nothing valid.
      ["/tasks/T%ED%A0%80", "task_id in the path is not valid percent-encoding"],
    ];
    for (const [path, sentence] of cases) expectApiError(await t.request("GET", path), 400, "validation_failed", sentence);
    expectApiError(
      await t.request("PUT", "/ids/registry/p%00/US", { body: { last_assigned_id: 1 } }),
      400,
      "validation_failed",
      "project_id must be 1 to 128 characters of A-Z a-z 0-9 . _ -",
    );
  });

  test("leaves nothing half-written", async () => {
    expect(
      (await t.request("GET", "/tasks?project=proj")).body.tasks.map((listed: { task_id: string }) => listed.task_id),
    ).toEqual(["T-1"]);
    expect((await t.request("GET", "/tasks/T-1")).body.task).toMatchObject({ status: "pending", description: "Do T-1" });
  });
});

describe("an ID made only of dots", () => {
  const DOTS = "must not be only dots";

  test("is refused in every body field that names a task or a project", async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ["POST", "/tasks/batch", { tasks: [task("..")] }, `tasks[0].task_id ${DOTS}`],
      ["POST", "/tasks/batch", { tasks: [task("N-1"), task(".")] }, `tasks[1].task_id ${DOTS}`],
      ["POST", "/tasks/batch", { tasks: [task("N-1", { project_id: "..." })] }, `tasks[0].project_id ${DOTS}`],
      ["POST", "/tasks/batch", { tasks: [task("N-1", { depends_on: ["T-1", ".."] })] }, `tasks[0].depends_on[1] ${DOTS}`],
      ["POST", "/ids/reserve", { type: "US", count: 1, project_id: ".." }, `project_id ${DOTS}`],
    ];
    for (const [method, path, body, sentence] of cases) {
      expectApiError(await t.request(method, path, { body }), 400, "validation_failed", sentence);
    }
  });

  test("is refused in a query value and in a path segment (which a URL would not normalise away)", async () => {
    const cases: Array<[string, string, string]> = [
      ["GET", "/tasks?project=..", `project ${DOTS}`],
      ["GET", "/tasks/next?project=.", `project ${DOTS}`],
      ["GET", "/events?project=...", `project ${DOTS}`],
      ["GET", "/ids/next?type=US&project=..", `project ${DOTS}`],
      ["GET", "/tasks/T-1?project=..", `project ${DOTS}`],
      ["GET", "/tasks/...", `task_id ${DOTS}`],
      ["GET", "/tasks/%2E%2E%2E/events", `task_id ${DOTS}`],
      ["PUT", "/tasks/.../status", `task_id ${DOTS}`],
      ["PUT", "/ids/registry/.../US", `project_id ${DOTS}`],
    ];
    for (const [method, path, sentence] of cases) {
      const body = method === "PUT" ? (path.startsWith("/ids") ? { last_assigned_id: 1 } : { status: "in_progress" }) : undefined;
      expectApiError(await t.request(method, path, { body }), 400, "validation_failed", sentence);
    }
  });

  test("is refused only when it is all dots: dots among other characters are fine", async () => {
    const ids = [".hidden", "v1.2", "a..b", "..x"];
    const added = await t.request("POST", "/tasks/batch", {
      body: { tasks: ids.map((id) => task(id, { project_id: "..dots" })) },
    });
    expect([added.status, added.body.task_ids]).toEqual([201, ids]);
    expect((await t.request("GET", "/tasks/a..b?project=..dots")).body.task.task_id).toBe("a..b");
  });
});

describe("a CONNECT request", () => {
  test("is 405 with Allow, not a 500", async () => {
    const port = Number(new URL(t.url).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.write(
          `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nAuthorization: Bearer ${TEST_API_KEY}\r\nConnection: close\r\n\r\n`,
        );
      });
      let text = "";
      socket.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      socket.once("close", () => resolve(text));
      socket.once("error", reject);
    });
    const [head = "", body = ""] = answer.split("\r\n\r\n");
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(head.toLowerCase()).toContain("\r\nallow: get, head, post, put, patch, delete\r\n");
    expect(JSON.parse(body)).toEqual({
      error: "Method CONNECT is not allowed here; use GET or HEAD or POST or PUT or PATCH or DELETE",
      code: "method_not_allowed",
    });
  });
});

describe("the board", () => {
  test("GET / serves its page without a key", async () => {
    const response = await fetch(`${t.url}/`);
    expect([response.status, response.headers.get("content-type")]).toEqual([200, "text/html;charset=utf-8"]);
    expect(await response.text()).toContain("<title>");
  });

  test("its files answer any method but GET and HEAD with 405 and Allow, without a key", async () => {
    const page = await (await fetch(`${t.url}/`)).text();
    const script = page.match(/src="\.(\/[^"]+\.js)"/)?.[1];
    expect(script).toStartWith("/");
    for (const path of ["/", script!]) {
      expect((await fetch(`${t.url}${path}`, { method: "HEAD" })).status).toBe(200);
      for (const method of ["DELETE", "POST", "PUT", "PATCH", "OPTIONS", "PROPFIND"]) {
        const response = await fetch(`${t.url}${path}`, { method });
        expect({ status: response.status, allow: response.headers.get("allow"), body: await response.json() }).toEqual({
          status: 405,
          allow: "GET, HEAD",
          body: { error: `Method ${method} is not allowed here; use GET or HEAD`, code: "method_not_allowed" },
        });
      }
    }
  });
});
