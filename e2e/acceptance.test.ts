// The ten acceptance criteria of US-053, word for word, against the compiled MCP server and the
// tracker running as its own process. A recording proxy sits between the two, so each test can show
// the request that reached the tracker; the tracker's access log and database confirm the effect.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  inDb,
  isPort8080Free,
  type McpProcess,
  PROJECT,
  runBinary,
  startMcp,
  startTrackerProcess,
  stopEverything,
  textOf,
  timed,
  useStack,
} from "./harness.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

afterAll(stopEverything);

describe("US-053 acceptance criteria, with the microservice running", () => {
  // A fresh tracker and recording proxy for every scenario.
  const stack = useStack({ proxy: true, perTest: true });

  /** An MCP server as Claude Code starts it, talking to the tracker through the recording proxy. */
  async function claudeCode(apiKey = stack.apiKey): Promise<McpProcess> {
    const mcp = await stack.startMcp({ TASK_TRACKING_API_KEY: apiKey });
    // At start the server adopts the claims of its agent (docs/TOOLS.md, Leases): wait for that
    // request, so each scenario shows only the requests of its own tool call.
    await stack.proxy.waitFor(
      (request) => request.target.startsWith("/tasks?status=in_progress&claimed_by="),
      "the adoption of this agent's claims",
    );
    stack.proxy.reset();
    return mcp;
  }

  async function addTask051() {
    const added = await stack.tracker.api("POST", "/tasks/batch", {
      tasks: [
        {
          task_id: "TASK-051",
          project_id: PROJECT,
          description: "Implement US-053: the MCP tools for task tracking",
          inputs: ["US-053"],
          outputs: ["index.ts"],
          priority: "high",
        },
      ],
    });
    expect(added.status).toBe(201);
  }

  async function importRegistry(lastAssignedId: number) {
    const imported = await stack.tracker.api("PUT", `/ids/registry/${PROJECT}/US`, { last_assigned_id: lastAssignedId });
    expect(imported).toEqual({
      status: 200,
      body: { project_id: PROJECT, artifact_type: "US", last_assigned_id: lastAssignedId },
    });
  }

  test("Scenario 1: get_next_task returns pending task", async () => {
    await addTask051();
    const mcp = await claudeCode();

    const result = await mcp.call("get_next_task", { project_id: PROJECT, status_filter: "pending" });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({
      task: expect.objectContaining({
        task_id: "TASK-051",
        project_id: PROJECT,
        description: "Implement US-053: the MCP tools for task tracking",
        inputs: ["US-053"],
        outputs: ["index.ts"],
        status: "pending",
      }),
    });
    expect(stack.proxy.requests).toHaveLength(1);
    expect(stack.proxy.requests[0]).toMatchObject({
      method: "GET",
      target: `/tasks/next?project=${PROJECT}&status=pending`,
      headers: { authorization: `Bearer ${stack.tracker.apiKey}` },
    });
    await stack.tracker.waitForAccess(
      (e) => e.method === "GET" && e.path === "/tasks/next" && e.status === 200,
      "GET /tasks/next",
    );
  });

  test("Scenario 2: get_next_task returns None when no tasks", async () => {
    // The project has a finished task, and another project has a pending one: neither may come back.
    await stack.tracker.api("POST", "/tasks/batch", {
      tasks: [
        { task_id: "TASK-001", project_id: PROJECT, description: "Already done" },
        { task_id: "OTHER-001", project_id: "another-project", description: "Someone else's" },
      ],
    });
    await stack.tracker.api("PUT", "/tasks/TASK-001/status", { status: "in_progress" });
    await stack.tracker.api("PUT", "/tasks/TASK-001/status", { status: "completed" });
    const mcp = await claudeCode();

    const result = await mcp.call("get_next_task", { project_id: PROJECT });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ task: null });
    expect(textOf(result)).toBe(`No pending task is ready in project ${PROJECT}.`);
    // After a null it asks which projects exist: a project with no tasks at all would be named a typo.
    expect(stack.proxy.requests.map((r) => `${r.method} ${r.target}`)).toEqual([
      `GET /tasks/next?project=${PROJECT}&status=pending`,
      "GET /projects",
    ]);
  });

  test("Scenario 3: update_task_status updates task to completed", async () => {
    await addTask051();
    expect((await stack.tracker.api("PUT", "/tasks/TASK-051/status", { status: "in_progress" })).status).toBe(200);
    const mcp = await claudeCode();

    const result = await mcp.call("update_task_status", { task_id: "TASK-051", status: "completed", completion_notes: "Done" });

    expect(result.isError).toBeFalsy();
    const task = (result.structuredContent as { task: Record<string, unknown> }).task;
    expect(task).toMatchObject({ task_id: "TASK-051", status: "completed", completion_notes: "Done" });
    expect(task.completed_at).toMatch(TIMESTAMP);
    expect(stack.proxy.requests).toHaveLength(1);
    const [request] = stack.proxy.requests;
    expect(request).toMatchObject({ method: "PUT", target: "/tasks/TASK-051/status" });
    expect(request!.headers.authorization).toBe(`Bearer ${stack.tracker.apiKey}`);
    expect(JSON.parse(request!.body)).toEqual({ status: "completed", completion_notes: "Done" });
    await stack.tracker.waitForAccess(
      (e) => e.method === "PUT" && e.path === "/tasks/TASK-051/status" && e.status === 200,
      "the PUT",
    );
    const row = inDb(stack.tracker, (db) => db.task("TASK-051"));
    expect(row).toMatchObject({ status: "completed", completion_notes: "Done", completed_at: task.completed_at });
  });

  test("Scenario 4: get_next_available_id returns next sequential ID", async () => {
    await importRegistry(27);
    const mcp = await claudeCode();

    const result = await mcp.call("get_next_available_id", { artifact_type: "US", project_id: PROJECT });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ next_id: "US-028" });
    expect(stack.proxy.requests).toHaveLength(1);
    expect(stack.proxy.requests[0]).toMatchObject({
      method: "GET",
      target: `/ids/next?type=US&project=${PROJECT}`,
      headers: { authorization: `Bearer ${stack.tracker.apiKey}` },
    });
    await stack.tracker.waitForAccess((e) => e.method === "GET" && e.path === "/ids/next" && e.status === 200, "GET /ids/next");
    expect(inDb(stack.tracker, (db) => db.lastAssigned(PROJECT, "US"))).toBe(28);
  });

  test("Scenario 5: reserve_id_range reserves contiguous ID range", async () => {
    await importRegistry(27);
    const mcp = await claudeCode();

    const result = await mcp.call("reserve_id_range", { artifact_type: "US", count: 6, project_id: PROJECT });

    expect(result.isError).toBeFalsy();
    const reservation = result.structuredContent as { reservation_id: string; reserved_ids: string[]; expires_at: string };
    expect(reservation.reserved_ids).toEqual(["US-028", "US-029", "US-030", "US-031", "US-032", "US-033"]);
    expect(reservation.reservation_id).toMatch(UUID);
    expect(reservation.expires_at).toMatch(TIMESTAMP);
    expect(Date.parse(reservation.expires_at)).toBeGreaterThan(Date.now());
    expect(inDb(stack.tracker, (db) => [db.lastAssigned(PROJECT, "US"), db.reservations(PROJECT)])).toEqual([
      33,
      [expect.objectContaining({ reservation_id: reservation.reservation_id, first_number: 28, count: 6 })],
    ]);
  });

  test("Scenario 6: add_task adds batch of tasks", async () => {
    const mcp = await claudeCode();

    const result = await mcp.call("add_task", {
      tasks: [
        {
          task_id: "TASK-046",
          project_id: PROJECT,
          description: "Generate HLS-006",
          inputs: ["PRD-006"],
          outputs: ["HLS-006"],
          priority: "high",
        },
        { task_id: "TASK-047", project_id: PROJECT, description: "Generate HLS-007", depends_on: ["TASK-046"] },
      ],
    });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ success: true, tasks_added: 2, task_ids: ["TASK-046", "TASK-047"] });
    expect(stack.proxy.requests).toHaveLength(1);
    expect(stack.proxy.requests[0]).toMatchObject({
      method: "POST",
      target: "/tasks/batch",
      headers: { authorization: `Bearer ${stack.tracker.apiKey}`, "content-type": "application/json" },
    });
    await stack.tracker.waitForAccess(
      (e) => e.method === "POST" && e.path === "/tasks/batch" && e.status === 201,
      "POST /tasks/batch",
    );
    const rows = inDb(stack.tracker, (db) => db.tasks(PROJECT));
    expect(rows.map((row) => [row.task_id, row.status, row.priority, JSON.parse(row.depends_on)])).toEqual([
      ["TASK-046", "pending", "high", []],
      ["TASK-047", "pending", "medium", ["TASK-046"]],
    ]);
  });

  test("Scenario 8: Handle HTTP 404 error (task not found)", async () => {
    const mcp = await claudeCode();

    const result = await mcp.call("update_task_status", { task_id: "TASK-999", status: "completed" });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Task not found: TASK-999");
    expect(stack.proxy.requests).toHaveLength(1); // a 404 is an answer, not a transient failure: no retry
    await stack.tracker.waitForAccess((e) => e.path === "/tasks/TASK-999/status" && e.status === 404, "the 404");
  });

  test("Scenario 9: Handle HTTP 401 error (invalid API key)", async () => {
    const mcp = await claudeCode("this-is-not-the-tracker-key-0123456789");
    const anyTool: [string, Record<string, unknown>][] = [
      ["get_next_task", { project_id: PROJECT }],
      ["get_next_task", { project_id: PROJECT, claim: true }],
      ["update_task_status", { task_id: "TASK-051", status: "completed", completion_notes: "Done" }],
      ["get_next_available_id", { artifact_type: "US", project_id: PROJECT }],
      ["reserve_id_range", { artifact_type: "US", count: 6, project_id: PROJECT }],
      ["add_task", { tasks: [{ task_id: "TASK-046", project_id: PROJECT, description: "Generate HLS-006" }] }],
    ];

    for (const [tool, args] of anyTool) {
      const result = await mcp.call(tool, args);
      expect({ tool, isError: result.isError, text: textOf(result) }).toEqual({
        tool,
        isError: true,
        text: "Task Tracking API error: 401 - Unauthorized",
      });
    }

    expect(stack.proxy.requests).toHaveLength(anyTool.length); // never retried
    // Six 401s of the tools, beside the one of the adoption at start (GET /tasks).
    const toolUnauthorized = () => stack.tracker.accessLog().filter((e) => e.status === 401 && e.path !== "/tasks");
    await stack.tracker.waitForAccess(() => toolUnauthorized().length === anyTool.length, "six 401s");
    expect(inDb(stack.tracker, (db) => [db.tasks().length, db.lastAssigned(PROJECT, "US"), db.reservations().length])).toEqual([
      0, 0, 0,
    ]);
  });
});

describe("US-053 acceptance criteria, with the microservice not running", () => {
  test("Scenario 7: Handle microservice unavailable (ConnectionError)", async () => {
    const tracker = await startTrackerProcess();
    expect(await tracker.stop()).toBe(0);
    await tracker.kill();
    // The story's literal URL is the default one; if something else listens on 8080 here, the
    // stopped tracker's URL stands in for it.
    const useDefaultUrl = await isPort8080Free();
    const env: Record<string, string> = useDefaultUrl
      ? { TASK_TRACKING_API_KEY: tracker.apiKey }
      : { TASK_TRACKING_API_KEY: tracker.apiKey, TASK_TRACKING_URL: tracker.url };
    const expectedUrl = useDefaultUrl ? "http://localhost:8080" : tracker.url;
    const mcp = await startMcp(env);

    const { value: result, ms } = await timed(() => mcp.call("get_next_task", { project_id: PROJECT }));

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe(`Task Tracking microservice unavailable: Connection refused at ${expectedUrl}`);
    if (useDefaultUrl) {
      expect(textOf(result)).toBe("Task Tracking microservice unavailable: Connection refused at http://localhost:8080");
    }
    // Three retries (100 + 200 + 400 ms) before giving up, and no more.
    expect(ms).toBeGreaterThanOrEqual(690);
    expect(ms).toBeLessThan(5000);
    expect(await mcp.close()).toBe(0);
    const logged = mcp.stderr.records().find((record) => record.tool === "get_next_task");
    expect(logged).toMatchObject({ attempts: 4, outcome: "error", status: null });
  });

  test("Scenario 10: Environment variable validation on startup", async () => {
    const initialize = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "e2e", version: "1" } },
    });
    const unset: Record<string, string>[] = [{}, { TASK_TRACKING_API_KEY: "" }, { TASK_TRACKING_API_KEY: "   " }];
    for (const env of unset) {
      // A HOME without the local tracker's key file, which is read when no key is configured.
      const home = mkdtempSync(join(tmpdir(), "ttmcp-home-"));
      const run = await runBinary([], { TASK_TRACKING_URL: "http://127.0.0.1:9", HOME: home, ...env }, `${initialize}\n`);
      expect(run).toEqual({ code: 1, stdout: "", stderr: "TASK_TRACKING_API_KEY environment variable not set\n" });
    }
  });
});
