// MCP over HTTP, served by the tracker at /mcp (docs/API.md): the acceptance criteria of US-053 with an SDK
// client over Streamable HTTP against the tracker running as its own process, as acceptance.test.ts runs them
// over stdio against the binary. No proxy sits between: the tool calls reach the tracker's pipeline in process,
// so its access log shows the requests of each call (by the call's X-Request-Id) and its database the effect.
// On two instances of one PostgreSQL database, a claim made over one's /mcp shows on the other, and a session
// lives on the instance that opened it. Then Claude Code's own CLI adds the tracker as an HTTP server
// (`claude mcp add --transport http`) and sees it connected.

import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { parseRecord } from "../testkit/lines.ts";
import { runProcess } from "../testkit/processes.ts";
import { makeTempDir } from "../testkit/temp.ts";
import {
  type AccessLogEntry,
  inDb,
  PROJECT,
  ROOT,
  startTrackerProcess,
  type TrackerProcess,
  textOf,
  useStack,
} from "./harness.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

/** An MCP client on `<url>/mcp` with this key, as Claude Code connects over HTTP. */
async function connectHttp(url: string, apiKey: string) {
  const client = new Client({ name: "task-tracking-e2e-http", version: "1" });
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${apiKey}` } },
  });
  await client.connect(transport);
  clients.push(client);
  return (name: string, args: Record<string, unknown> = {}) =>
    client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
}

describe("US-053 acceptance criteria over /mcp, with the microservice running", () => {
  const stack = useStack({ perTest: true });
  const claudeCode = () => connectHttp(stack.tracker.url, stack.apiKey);

  /** The requests the tool calls made of the API (not /mcp itself, nor the start's health check), in order. */
  const apiRequests = () =>
    stack.tracker
      .accessLog()
      .filter((entry) => entry.path !== "/mcp" && entry.path !== "/healthz")
      .map(({ method, path, status }: AccessLogEntry) => `${method} ${path} ${status}`);

  async function addTask051() {
    const task = {
      task_id: "TASK-051",
      project_id: PROJECT,
      description: "Implement US-053: the MCP tools for task tracking",
      inputs: ["US-053"],
      outputs: ["index.ts"],
      priority: "high",
    };
    expect((await stack.tracker.api("POST", "/tasks/batch", { tasks: [task] })).status).toBe(201);
  }

  async function importRegistry(lastAssignedId: number) {
    const imported = await stack.tracker.api("PUT", `/ids/registry/${PROJECT}/US`, { last_assigned_id: lastAssignedId });
    expect(imported.status).toBe(200);
  }

  /**
   * The requests a tool call made of the API, as the tracker answered them: the ones carrying the X-Request-Id
   * that the tracker's log line of the call names (every request of one call carries the call's own).
   */
  async function requestsOf(tool: string): Promise<string[]> {
    const isCall = (line: string) => parseRecord(line)?.msg === "MCP call" && parseRecord(line)?.tool === tool;
    const { request_id } = JSON.parse(await stack.tracker.stderr.waitFor(isCall, `the log line of ${tool}`));
    return stack.tracker
      .accessLog()
      .filter((entry) => entry.request_id === request_id)
      .map(({ method, path, status }) => `${method} ${path} ${status}`);
  }

  test("Scenario 1: get_next_task returns pending task", async () => {
    await addTask051();
    const call = await claudeCode();

    const result = await call("get_next_task", { project_id: PROJECT, status_filter: "pending" });

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
    expect(await requestsOf("get_next_task")).toEqual(["GET /tasks/next 200"]);
  });

  test("Scenario 2: get_next_task returns None when no tasks", async () => {
    await stack.tracker.api("POST", "/tasks/batch", {
      tasks: [
        { task_id: "TASK-001", project_id: PROJECT, description: "Already done" },
        { task_id: "OTHER-001", project_id: "another-project", description: "Someone else's" },
      ],
    });
    await stack.tracker.api("PUT", "/tasks/TASK-001/status", { status: "in_progress" });
    await stack.tracker.api("PUT", "/tasks/TASK-001/status", { status: "completed" });
    const call = await claudeCode();

    const result = await call("get_next_task", { project_id: PROJECT });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ task: null });
    expect(textOf(result)).toBe(`No pending task is ready in project ${PROJECT}.`);
    expect(await requestsOf("get_next_task")).toEqual(["GET /tasks/next 200", "GET /projects 200"]);
  });

  test("Scenario 3: update_task_status updates task to completed", async () => {
    await addTask051();
    expect((await stack.tracker.api("PUT", "/tasks/TASK-051/status", { status: "in_progress" })).status).toBe(200);
    const call = await claudeCode();

    const result = await call("update_task_status", { task_id: "TASK-051", status: "completed", completion_notes: "Done" });

    expect(result.isError).toBeFalsy();
    const task = (result.structuredContent as { task: Record<string, unknown> }).task;
    expect(task).toMatchObject({ task_id: "TASK-051", status: "completed", completion_notes: "Done" });
    expect(task.completed_at).toMatch(TIMESTAMP);
    expect(await requestsOf("update_task_status")).toEqual(["PUT /tasks/TASK-051/status 200"]);
    const row = inDb(stack.tracker, (db) => db.task("TASK-051"));
    expect(row).toMatchObject({ status: "completed", completion_notes: "Done", completed_at: task.completed_at });
  });

  test("Scenario 4: get_next_available_id returns next sequential ID", async () => {
    await importRegistry(27);
    const call = await claudeCode();

    const result = await call("get_next_available_id", { artifact_type: "US", project_id: PROJECT });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ next_id: "US-028" });
    expect(await requestsOf("get_next_available_id")).toEqual(["GET /ids/next 200"]);
    expect(inDb(stack.tracker, (db) => db.lastAssigned(PROJECT, "US"))).toBe(28);
  });

  test("Scenario 5: reserve_id_range reserves contiguous ID range", async () => {
    await importRegistry(27);
    const call = await claudeCode();

    const result = await call("reserve_id_range", { artifact_type: "US", count: 6, project_id: PROJECT });

    expect(result.isError).toBeFalsy();
    const reservation = result.structuredContent as { reservation_id: string; reserved_ids: string[]; expires_at: string };
    expect(reservation.reserved_ids).toEqual(["US-028", "US-029", "US-030", "US-031", "US-032", "US-033"]);
    expect(reservation.reservation_id).toMatch(UUID);
    expect(reservation.expires_at).toMatch(TIMESTAMP);
    await stack.tracker.waitForAccess((e) => e.path === "/ids/reserve" && e.status === 201, "POST /ids/reserve");
    expect(inDb(stack.tracker, (db) => [db.lastAssigned(PROJECT, "US"), db.reservations(PROJECT)])).toEqual([
      33,
      [expect.objectContaining({ reservation_id: reservation.reservation_id, first_number: 28, count: 6 })],
    ]);
  });

  test("Scenario 6: add_task adds batch of tasks", async () => {
    const call = await claudeCode();

    const result = await call("add_task", {
      tasks: [
        { task_id: "TASK-046", project_id: PROJECT, description: "Generate HLS-006", priority: "high" },
        { task_id: "TASK-047", project_id: PROJECT, description: "Generate HLS-007", depends_on: ["TASK-046"] },
      ],
    });

    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ success: true, tasks_added: 2, task_ids: ["TASK-046", "TASK-047"] });
    expect(await requestsOf("add_task")).toEqual(["POST /tasks/batch 201"]);
    const rows = inDb(stack.tracker, (db) => db.tasks(PROJECT));
    expect(rows.map((row) => [row.task_id, row.status, row.priority, JSON.parse(row.depends_on)])).toEqual([
      ["TASK-046", "pending", "high", []],
      ["TASK-047", "pending", "medium", ["TASK-046"]],
    ]);
  });

  test("Scenario 8: Handle HTTP 404 error (task not found)", async () => {
    const call = await claudeCode();

    const result = await call("update_task_status", { task_id: "TASK-999", status: "completed" });

    expect(result.isError).toBe(true);
    expect(textOf(result)).toBe("Task not found: TASK-999");
    expect(await requestsOf("update_task_status")).toEqual(["PUT /tasks/TASK-999/status 404"]);
  });

  test("Scenario 9: Handle HTTP 401 error (invalid API key): the session is refused before any tool", async () => {
    await expect(connectHttp(stack.tracker.url, "this-is-not-the-tracker-key-0123456789")).rejects.toThrow(
      '{"error":"Unauthorized","code":"unauthorized"}',
    );
    await stack.tracker.waitForAccess((e) => e.path === "/mcp" && e.status === 401, "the 401 of POST /mcp");
    expect(apiRequests()).toEqual([]);
  });

  test("Scenario 10: without a key there is no session either (401)", async () => {
    const response = await fetch(`${stack.tracker.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "e2e", version: "1" } },
      }),
    });
    expect({ status: response.status, body: await response.json() }).toEqual({
      status: 401,
      body: { error: "Unauthorized", code: "unauthorized" },
    });
  });
});

describe("US-053 acceptance criteria over /mcp, with the microservice not running", () => {
  test("Scenario 7: the client cannot connect, and says so itself", async () => {
    const tracker = await startTrackerProcess();
    expect(await tracker.stop()).toBe(0);
    await tracker.kill();
    await expect(connectHttp(tracker.url, tracker.apiKey)).rejects.toThrow(/Unable to connect|ECONNREFUSED|refused/i);
  });
});

const havePostgres = Boolean(process.env.TRACKER_TEST_DATABASE_URL);

// In CI PostgreSQL is always there (scripts/with-postgres.sh): a missing one fails rather than skips.
describe.skipIf(!havePostgres && process.env.CI !== "true")("/mcp on two tracker instances of one PostgreSQL database", () => {
  const stack = useStack({ database: "postgres", trackers: 2 });

  test("a claim over one instance's /mcp is the other's to see; a session lives on the instance that opened it", async () => {
    const [first, second] = stack.trackers as [TrackerProcess, TrackerProcess];
    await first.api("POST", "/tasks/batch", { tasks: [{ task_id: "TASK-001", project_id: PROJECT, description: "Shared" }] });
    const call = await connectHttp(first.url, stack.apiKey);
    const claimed = await call("get_next_task", { project_id: PROJECT, claim: true });
    const agent = (claimed.structuredContent as { task: { claimed_by: string } }).task.claimed_by;
    expect(agent).toMatch(/^mcp-[0-9a-f]{12}$/);
    expect((await second.api("GET", "/tasks/TASK-001")).body.task).toMatchObject({ status: "in_progress", claimed_by: agent });

    const sessionId = (clients.at(-1)!.transport as StreamableHTTPClientTransport).sessionId!;
    const elsewhere = await fetch(`${second.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${stack.apiKey}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": sessionId,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list", params: {} }),
    });
    expect(elsewhere.status).toBe(404);
  });
});

describe("Claude Code's own CLI, with the tracker added as an HTTP MCP server", () => {
  const stack = useStack();
  const CLAUDE = join(ROOT, "node_modules", ".bin", "claude");
  /** Two runs of the CLI, each a Node process that loads Claude Code: seconds on a loaded machine. */
  const CLI_TIMEOUT_MS = 60_000;

  /** `claude …` in a fresh throw-away HOME each time it is made, offline, with nothing of this machine's environment but PATH. */
  function claudeIn() {
    const home = makeTempDir("ttmcp-claude-http-");
    const env = {
      HOME: home,
      PATH: process.env.PATH ?? "",
      DISABLE_AUTOUPDATER: "1",
      DISABLE_TELEMETRY: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      // The CLI's own bound on a server's connection (5 s by default): a loaded machine must not decide the test.
      MCP_TIMEOUT: "20000",
    };
    return (...args: string[]) => runProcess([CLAUDE, ...args], { env, cwd: home });
  }

  test(
    "`claude mcp add --transport http … --header Authorization` then `claude mcp list` shows it connected",
    async () => {
      const run = claudeIn();
      const url = `${stack.tracker.url}/mcp`;
      const added = await run(
        "mcp",
        "add",
        "--transport",
        "http",
        "task-tracking",
        url,
        "--header",
        `Authorization: Bearer ${stack.apiKey}`,
      );
      expect(added.code).toBe(0);
      const list = await run("mcp", "list");
      expect({ code: list.code, line: list.stdout.split("\n").find((line) => line.startsWith("task-tracking:")) }).toEqual({
        code: 0,
        line: `task-tracking: ${url} (HTTP) - ✔ Connected`,
      });
      await stack.tracker.waitForAccess(
        (e) => e.path === "/mcp" && e.method === "POST" && e.status === 200,
        "the CLI's initialize",
      );
    },
    CLI_TIMEOUT_MS,
  );

  test(
    "with a wrong key it is not connected",
    async () => {
      const run = claudeIn();
      const url = `${stack.tracker.url}/mcp`;
      await run(
        "mcp",
        "add",
        "--transport",
        "http",
        "task-tracking",
        url,
        "--header",
        "Authorization: Bearer not-the-key-0123456789",
      );
      const list = await run("mcp", "list");
      const line = list.stdout.split("\n").find((line) => line.startsWith("task-tracking:"));
      // How Claude Code words the refusal is its own ("✘ Failed to connect" here); what matters is that it is one.
      expect(list.code).toBe(0);
      expect(line).toStartWith(`task-tracking: ${url} (HTTP) - `);
      expect(line).not.toContain("✔ Connected");
      await stack.tracker.waitForAccess((e) => e.path === "/mcp" && e.status === 401, "the 401 of the CLI's initialize");
    },
    CLI_TIMEOUT_MS,
  );
});
