// Faults between the MCP server and the tracker, injected by a proxy: refused connections, slow
// answers, answers lost after the tracker acted, bursts of 503, a connection reset inside a body, a 2xx
// that is not JSON. Each gives the documented text (or success after a retry) within a bounded time,
// and the database shows exactly what one call should do: nothing reserved, allocated or added twice.

import { beforeEach, describe, expect, test } from "bun:test";
import { type Action, inDb, textOf, timed, useStack } from "./harness.ts";

/** The MCP servers' per-attempt timeout in the timeout tests. */
const SHORT_TIMEOUT_MS = 300;
const BACKOFF_MS = 100 + 200 + 400;
const UNAVAILABLE_503: Action = {
  type: "reply",
  status: 503,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ error: "Service temporarily unavailable", code: "unavailable" }),
};

// Two MCP servers behind the fault proxy: patient with the default timeout (5 s), impatient with 300 ms.
const stack = useStack({
  proxy: true,
  mcp: { patient: {}, impatient: { TASK_TRACKING_TIMEOUT_MS: String(SHORT_TIMEOUT_MS) } },
});
let projectCount = 0;
let project: string;

beforeEach(() => {
  project = `faults-${++projectCount}`; // each test on its own project: its effects alone
});

/** The Idempotency-Keys the proxy saw, one per request. */
function idempotencyKeys(): (string | undefined)[] {
  return stack.proxy.requests.map((request) => request.headers["idempotency-key"]);
}

function expectOneKeyForEveryAttempt(attempts: number) {
  const keys = idempotencyKeys();
  expect(keys).toHaveLength(attempts);
  expect(keys[0]).toBeString();
  expect(new Set(keys).size).toBe(1);
}

/** What a project holds: tasks, ID counter of type US, reservations. */
function effects(projectId = project): Effects {
  return inDb(stack.tracker, (db) => ({
    tasks: db.tasks(projectId).map((task) => `${task.task_id}:${task.status}`),
    lastUs: db.lastAssigned(projectId, "US"),
    reservations: db.reservations(projectId).map((r) => `${r.artifact_type}-${r.first_number}+${r.count}`),
  }));
}

async function addTasks(ids: string[]) {
  const added = await stack.tracker.api("POST", "/tasks/batch", {
    tasks: ids.map((task_id) => ({ task_id, project_id: project, description: `Do ${task_id}` })),
  });
  expect(added.status).toBe(201);
}

interface Effects {
  tasks: string[];
  lastUs: number;
  reservations: string[];
}

/** One call of each tool that changes something, with what it must leave behind when it succeeds once. */
interface WriteCase {
  tool: string;
  args: () => Record<string, unknown>;
  setup: () => Promise<void>;
  expected: () => Effects;
  result: Record<string, unknown>;
}

const nothing = async () => {};
const writes: WriteCase[] = [
  {
    tool: "reserve_id_range",
    args: () => ({ artifact_type: "US", count: 3, project_id: project }),
    setup: nothing,
    expected: () => ({ tasks: [], lastUs: 3, reservations: ["US-1+3"] }),
    result: { reserved_ids: ["US-001", "US-002", "US-003"] },
  },
  {
    tool: "get_next_available_id",
    args: () => ({ artifact_type: "US", project_id: project }),
    setup: nothing,
    expected: () => ({ tasks: [], lastUs: 1, reservations: [] }),
    result: { next_id: "US-001" },
  },
  {
    tool: "add_task",
    args: () => ({ tasks: [{ task_id: `${project}-A`, project_id: project, description: "Write it" }] }),
    setup: nothing,
    expected: () => ({ tasks: [`${project}-A:pending`], lastUs: 0, reservations: [] }),
    result: { success: true, tasks_added: 1 },
  },
  {
    tool: "update_task_status",
    args: () => ({ task_id: `${project}-A`, status: "in_progress" }),
    setup: () => addTasks([`${project}-A`]),
    expected: () => ({ tasks: [`${project}-A:in_progress`], lastUs: 0, reservations: [] }),
    result: { task: { status: "in_progress" } },
  },
  {
    tool: "get_next_task",
    args: () => ({ project_id: project, claim: true }),
    setup: () => addTasks([`${project}-A`, `${project}-B`]),
    expected: () => ({ tasks: [`${project}-A:in_progress`, `${project}-B:pending`], lastUs: 0, reservations: [] }),
    result: { task: { status: "in_progress" } },
  },
];

describe("connection refused", () => {
  test("gives the documented text after three retries, changes nothing, and the server recovers", async () => {
    await stack.proxy.refuse();
    try {
      const { value: result, ms } = await timed(() =>
        stack.mcp.patient.call("reserve_id_range", { artifact_type: "US", count: 5, project_id: project }),
      );
      expect(result.isError).toBe(true);
      expect(textOf(result)).toBe(`Task Tracking microservice unavailable: Connection refused at ${stack.proxy.url}`);
      expect(ms).toBeGreaterThanOrEqual(BACKOFF_MS - 10);
      expect(ms).toBeLessThan(BACKOFF_MS + 3000);
    } finally {
      await stack.proxy.accept();
    }
    expect(effects()).toEqual({ tasks: [], lastUs: 0, reservations: [] });

    const after = await stack.mcp.patient.call("reserve_id_range", { artifact_type: "US", count: 5, project_id: project });
    expect(after.structuredContent).toMatchObject({ reserved_ids: ["US-001", "US-002", "US-003", "US-004", "US-005"] });
  });
});

describe("a response slower than the timeout", () => {
  test("a read that never answers in time: the timeout text after four attempts", async () => {
    stack.proxy.setPlan(() => ({ type: "forward", holdMs: 10_000 }));
    const { value: result, ms } = await timed(() => stack.mcp.impatient.call("get_next_task", { project_id: project }));

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Task Tracking microservice timeout: No response within 0.3 seconds");
    expect(stack.proxy.requests).toHaveLength(4);
    expect(ms).toBeGreaterThanOrEqual(4 * SHORT_TIMEOUT_MS + BACKOFF_MS - 10);
    expect(ms).toBeLessThan(4 * SHORT_TIMEOUT_MS + BACKOFF_MS + 3000);
  });

  test("a write whose every answer is late: four attempts with one key, the effect only once", async () => {
    stack.proxy.setPlan(() => ({ type: "forward", holdMs: 10_000 }));
    const result = await stack.mcp.impatient.call("reserve_id_range", { artifact_type: "US", count: 4, project_id: project });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Task Tracking microservice timeout: No response within 0.3 seconds");
    expectOneKeyForEveryAttempt(4);
    // The tracker ran the first attempt; the three retries were replays of it.
    expect(effects()).toEqual({ tasks: [], lastUs: 4, reservations: ["US-1+4"] });
  });

  test.each(writes.map((write) => [write.tool, write] as const))(
    "%s: the first answer is late, the retry succeeds with the first attempt's result",
    async (_tool, write) => {
      await write.setup();
      stack.proxy.script({ type: "forward", holdMs: 10_000 });
      const { value: result, ms } = await timed(() => stack.mcp.impatient.call(write.tool, write.args()));

      expect(result.isError ? textOf(result) : "ok").toBe("ok");
      expect(result.structuredContent).toMatchObject(write.result);
      expect(ms).toBeLessThan(SHORT_TIMEOUT_MS + 100 + 2000);
      expect(effects()).toEqual(write.expected());
    },
  );
});

describe("the connection dropped after the tracker processed the request", () => {
  test.each(writes.map((write) => [write.tool, write] as const))(
    "%s: the lost answer is fetched again with the same Idempotency-Key, nothing is done twice",
    async (_tool, write) => {
      await write.setup();
      // get_next_task with claim claims in one POST /tasks/claim: drop its answer, as every write's.
      stack.proxy.setPlan((request, index) =>
        request.method !== "GET" || request.target.startsWith("/ids/next")
          ? stack.proxy.requests.slice(0, index).some((r) => r.method === request.method && r.target === request.target)
            ? { type: "forward" }
            : { type: "forward-then-drop" }
          : { type: "forward" },
      );
      const { value: result, ms } = await timed(() => stack.mcp.patient.call(write.tool, write.args()));

      expect(result.isError ? textOf(result) : "ok").toBe("ok");
      expect(result.structuredContent).toMatchObject(write.result);
      expect(ms).toBeLessThan(2000);
      const writesSeen = stack.proxy.requests.filter((r) => r.headers["idempotency-key"] !== undefined);
      expect(writesSeen).toHaveLength(2);
      expect(writesSeen[0]!.headers["idempotency-key"]).toBe(writesSeen[1]!.headers["idempotency-key"]!);
      expect(effects()).toEqual(write.expected());
    },
  );
});

describe("bursts of 503", () => {
  test("three 503s without Retry-After: success on the fourth attempt after 100, 200 and 400 ms", async () => {
    stack.proxy.script(UNAVAILABLE_503, UNAVAILABLE_503, UNAVAILABLE_503);
    const { value: result, ms } = await timed(() =>
      stack.mcp.patient.call("reserve_id_range", { artifact_type: "US", count: 2, project_id: project }),
    );

    expect(result.structuredContent).toMatchObject({ reserved_ids: ["US-001", "US-002"] });
    expectOneKeyForEveryAttempt(4);
    expect(ms).toBeGreaterThanOrEqual(BACKOFF_MS - 10);
    expect(ms).toBeLessThan(BACKOFF_MS + 2000);
    expect(effects()).toEqual({ tasks: [], lastUs: 2, reservations: ["US-1+2"] });
  });

  test("four 503s: the service's sentence, and nothing reached the tracker", async () => {
    stack.proxy.script(UNAVAILABLE_503, UNAVAILABLE_503, UNAVAILABLE_503, UNAVAILABLE_503);
    const { value: result, ms } = await timed(() =>
      stack.mcp.patient.call("add_task", { tasks: [{ task_id: `${project}-A`, project_id: project, description: "Write it" }] }),
    );

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Task Tracking API error: 503 - Service temporarily unavailable");
    expectOneKeyForEveryAttempt(4);
    expect(ms).toBeLessThan(BACKOFF_MS + 2000);
    expect(effects()).toEqual({ tasks: [], lastUs: 0, reservations: [] });
  });

  test("two 503s with Retry-After: 1: each wait is the second the service asked for", async () => {
    const retryAfter: Action = { ...UNAVAILABLE_503, headers: { ...UNAVAILABLE_503.headers, "retry-after": "1" } };
    stack.proxy.script(retryAfter, retryAfter);
    const { value: result, ms } = await timed(() =>
      stack.mcp.patient.call("get_next_available_id", { artifact_type: "US", project_id: project }),
    );

    expect(result.structuredContent).toEqual({ next_id: "US-001" });
    expectOneKeyForEveryAttempt(3);
    expect(ms).toBeGreaterThanOrEqual(2000 - 10);
    expect(ms).toBeLessThan(2000 + 1500);
    expect(effects()).toEqual({ tasks: [], lastUs: 1, reservations: [] });
  });

  test("a Retry-After of a minute is capped at 2 seconds", async () => {
    stack.proxy.script({ ...UNAVAILABLE_503, headers: { "retry-after": "60" } });
    const { value: result, ms } = await timed(() => stack.mcp.patient.call("get_next_task", { project_id: project }));

    expect(result.structuredContent).toEqual({ task: null });
    // The 503, its retry, then GET /projects (a null from a project with no tasks names the known ones).
    expect(stack.proxy.requests.map((request) => request.target.split("?")[0])).toEqual([
      "/tasks/next",
      "/tasks/next",
      "/projects",
    ]);
    expect(ms).toBeGreaterThanOrEqual(2000 - 10);
    expect(ms).toBeLessThan(2000 + 1500);
  });

  test("a 503 in place of the tracker's answer: the retry gets the stored answer, no second reservation", async () => {
    stack.proxy.script({ type: "forward-then-replace", replace: () => ({ ...UNAVAILABLE_503 }) });
    const { value: result, ms } = await timed(() =>
      stack.mcp.patient.call("reserve_id_range", { artifact_type: "US", count: 3, project_id: project }),
    );
    expect(ms).toBeLessThan(100 + 2000);

    expect(result.structuredContent).toMatchObject({ reserved_ids: ["US-001", "US-002", "US-003"] });
    expectOneKeyForEveryAttempt(2);
    expect(effects()).toEqual({ tasks: [], lastUs: 3, reservations: ["US-1+3"] });
  });
});

describe("a connection reset in the middle of a body", () => {
  test.each(writes.map((write) => [write.tool, write] as const))(
    "%s: the retry gets the whole answer, nothing is done twice",
    async (_tool, write) => {
      await write.setup();
      stack.proxy.setPlan((request, index) =>
        request.method !== "GET" || request.target.startsWith("/ids/next")
          ? stack.proxy.requests.slice(0, index).some((r) => r.method === request.method && r.target === request.target)
            ? { type: "forward" }
            : { type: "forward-then-cut-body" }
          : { type: "forward" },
      );
      const { value: result, ms } = await timed(() => stack.mcp.patient.call(write.tool, write.args()));

      expect(result.isError ? textOf(result) : "ok").toBe("ok");
      expect(result.structuredContent).toMatchObject(write.result);
      expect(ms).toBeLessThan(2000);
      expect(effects()).toEqual(write.expected());
    },
  );

  test("a read cut on every attempt: the network error text after four attempts", async () => {
    stack.proxy.setPlan(() => ({ type: "forward-then-cut-body" }));
    const { value: result, ms } = await timed(() => stack.mcp.patient.call("get_next_task", { project_id: project }));

    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(
      new RegExp(`^Task Tracking microservice unavailable: .+ at ${stack.proxy.url.replace(/\./g, "\\.")}$`),
    );
    expect(stack.proxy.requests).toHaveLength(4);
    expect(ms).toBeLessThan(BACKOFF_MS + 2000);
  });
});

describe("a 2xx whose body is not JSON", () => {
  test("a read: the invalid-response text at once, no retry", async () => {
    stack.proxy.script({
      type: "reply",
      status: 200,
      headers: { "content-type": "text/html" },
      body: "<html>Welcome to nginx!</html>",
    });
    const { value: result, ms } = await timed(() => stack.mcp.patient.call("get_next_task", { project_id: project }));
    expect(ms).toBeLessThan(2000);

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(
      'Task Tracking API returned an invalid response: the body is not JSON ("<html>Welcome to nginx!</html>")',
    );
    expect(stack.proxy.requests).toHaveLength(1);
  });

  test("a write the tracker did: reported, not retried, so its effect is there exactly once", async () => {
    stack.proxy.script({ type: "forward-then-replace", replace: (upstream) => ({ ...upstream, body: "OK" }) });
    const { value: result, ms } = await timed(() =>
      stack.mcp.patient.call("reserve_id_range", { artifact_type: "US", count: 2, project_id: project }),
    );
    expect(ms).toBeLessThan(2000);

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe('Task Tracking API returned an invalid response: the body is not JSON ("OK")');
    expect(stack.proxy.requests).toHaveLength(1);
    expect(effects()).toEqual({ tasks: [], lastUs: 2, reservations: ["US-1+2"] });
  });

  test("JSON of the wrong shape: the text names the field", async () => {
    stack.proxy.script({ type: "forward-then-replace", replace: (upstream) => ({ ...upstream, body: '{"next_id": 28}' }) });
    const result = await stack.mcp.patient.call("get_next_available_id", { artifact_type: "US", project_id: project });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toStartWith("Task Tracking API returned an invalid response: next_id: ");
    expect(stack.proxy.requests).toHaveLength(1);
  });
});
