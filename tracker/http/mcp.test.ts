// /mcp: the MCP server of index.ts over Streamable HTTP, with an SDK client against a tracker on port 0.
// The sessions' clock, idle sweep and claim renewals are the tests' own: time moves, nothing waits for it.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { TOOL_NAMES } from "../../index.ts";
import { RetryLater } from "../domain.ts";
import { createLogger } from "../log.ts";
import { expectApiError, OTHER_API_KEY, startTestTracker, TEST_API_KEY, type TestTracker, taskInput } from "../testing.ts";
import { MCP_LEASE_SECONDS, McpSessions, toolsFor } from "./mcp-sessions.ts";

let t: TestTracker;
let clock = 0;
/** The idle sweep: run by hand. */
let sweep: () => void = () => {};
/** The claim renewals scheduled so far (each session's ClaimKeeper), ticked by hand. */
let renewals: { tick: () => void; cancelled: boolean }[] = [];
const clients: Client[] = [];

beforeEach(async () => {
  clock = Date.parse("2026-12-06T10:00:00Z");
  renewals = [];
  t = await startTestTracker({
    mcp: {
      now: () => clock,
      maxPerKey: 3,
      every: (run) => {
        sweep = run;
        return () => {};
      },
      schedule: (_ms, tick) => {
        const renewal = { tick, cancelled: false };
        renewals.push(renewal);
        return () => void (renewal.cancelled = true);
      },
    },
  });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await t.stop();
});

/** An MCP client on /mcp with this key (and these headers), as Claude Code connects. */
async function connect(apiKey = TEST_API_KEY, headers: Record<string, string> = {}) {
  const client = new Client({ name: "mcp-test", version: "1" });
  const transport = new StreamableHTTPClientTransport(new URL(`${t.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${apiKey}`, ...headers } },
  });
  await client.connect(transport);
  clients.push(client);
  return {
    client,
    transport,
    call: (name: string, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
  };
}

const initialize = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
});

function post(headers: Record<string, string>, body = initialize) {
  return fetch(`${t.url}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body,
  });
}

describe("/mcp", () => {
  test("serves the binary's tools, resource templates and prompts", async () => {
    const { client } = await connect();
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    const templates = (await client.listResourceTemplates()).resourceTemplates.map((template) => template.uriTemplate);
    const prompts = (await client.listPrompts()).prompts.map((prompt) => prompt.name);
    expect({ tools: tools.sort(), templates, prompts }).toEqual({
      tools: [...TOOL_NAMES].sort(),
      templates: ["task://{project_id}/{task_id}", "project://{project_id}"],
      prompts: ["work_next_task", "plan_goal"],
    });
  });

  test("a tool call goes through the tracker's own pipeline, under the caller's key", async () => {
    const { call } = await connect();
    const added = await call("add_task", { tasks: [taskInput("TASK-001")] });
    expect(added.structuredContent).toEqual({ success: true, tasks_added: 1, task_ids: ["TASK-001"] });
    const log = t.logText();
    expect(log).toContain('"method":"POST","path":"/tasks/batch","status":201');
    expect(log).not.toContain(TEST_API_KEY);
  });

  test("a wrong key, or none, is 401 before any session exists", async () => {
    expectApiError(
      await t.request("POST", "/mcp", { rawBody: initialize, apiKey: "not-a-key-of-this-tracker" }),
      401,
      "unauthorized",
    );
    expectApiError(await t.request("POST", "/mcp", { rawBody: initialize, apiKey: null }), 401, "unauthorized");
    await expect(connect("not-a-key-of-this-tracker")).rejects.toThrow("unauthorized");
  });

  test("a session is its key's alone: another key's request for it is 404, as an unknown session's", async () => {
    const { transport } = await connect();
    const asOther = await post({ authorization: `Bearer ${OTHER_API_KEY}`, "mcp-session-id": transport.sessionId! });
    const unknown = await post({ authorization: `Bearer ${TEST_API_KEY}`, "mcp-session-id": crypto.randomUUID() });
    expect([asOther.status, unknown.status]).toEqual([404, 404]);
    expect(await asOther.json()).toEqual({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null });
  });

  test("the agent is the session's own, or the X-Agent-Id its first request sends", async () => {
    await t.request("POST", "/tasks/batch", { body: { tasks: [taskInput("TASK-001"), taskInput("TASK-002")] } });
    const first = await connect();
    const named = await connect(TEST_API_KEY, { "X-Agent-Id": "alice-laptop" });
    const claimed = async (session: typeof first) =>
      (
        (await session.call("get_next_task", { project_id: "proj", claim: true })).structuredContent as {
          task: { claimed_by: string };
        }
      ).task.claimed_by;
    const agents = [await claimed(first), await claimed(named)];
    expect(agents[0]).toMatch(/^mcp-[0-9a-f]{12}$/);
    expect(agents[0]).toBe(`mcp-${first.transport.sessionId!.replace("-", "").slice(0, 12)}`);
    expect(agents[1]).toBe("alice-laptop");
  });

  test("claims are renewed while the session lives and no longer once it is ended (DELETE)", async () => {
    await t.request("POST", "/tasks/batch", { body: { tasks: [taskInput("TASK-001")] } });
    const { call, transport } = await connect();
    await call("get_next_task", { project_id: "proj", claim: true });
    expect(renewals).toHaveLength(1);
    renewals[0]!.tick();
    await t.waitForLog("renewed a claim");
    expect(t.logText()).toContain('"path":"/tasks/TASK-001/heartbeat","status":200');

    await transport.terminateSession();
    expect(renewals[0]!.cancelled).toBe(true);
    const after = await post({ authorization: `Bearer ${TEST_API_KEY}`, "mcp-session-id": transport.sessionId! });
    expect(after.status).toBe(404);
  });

  test("a session idle past the lease ends and its claims lapse; one whose client holds its stream open lives on", async () => {
    await t.request("POST", "/tasks/batch", { body: { tasks: [taskInput("TASK-001")] } });
    const gone = await connect();
    const open = await connect();
    await gone.call("get_next_task", { project_id: "proj", claim: true });
    // The client goes away without ending its session (a crash): its stream closes, nothing else is said.
    const goneId = gone.transport.sessionId!;
    await gone.client.close();
    await t.waitForLog("an MCP session's stream ended");
    clock += MCP_LEASE_SECONDS * 1000 - 1;
    sweep();
    await open.call("list_tasks", { project_id: "proj" });
    expect(renewals[0]!.cancelled).toBe(false);

    clock += 2;
    sweep();
    await t.waitForLog("closed an MCP session");
    expect(renewals[0]!.cancelled).toBe(true);
    expect((await open.call("list_tasks", { project_id: "proj" })).isError).toBeFalsy();
    const after = await post({ authorization: `Bearer ${TEST_API_KEY}`, "mcp-session-id": goneId });
    expect(after.status).toBe(404);
  });

  test("a key holds a bounded number of sessions: one more is 429 with Retry-After, another key is served", async () => {
    for (let i = 0; i < 3; i++) await connect();
    const refused = await post({ authorization: `Bearer ${TEST_API_KEY}` });
    expect({ status: refused.status, retryAfter: refused.headers.get("retry-after"), body: await refused.json() }).toEqual({
      status: 429,
      retryAfter: "30",
      body: {
        error: "This API key has 3 MCP sessions open already, the most at once; end one (DELETE /mcp) or let an idle one end",
        code: "too_many_requests",
      },
    });
    await connect(OTHER_API_KEY);
  });

  test("a GET or DELETE without a session is 400 and opens none", async () => {
    for (const method of ["GET", "DELETE"]) {
      const response = await fetch(`${t.url}/mcp`, {
        method,
        headers: { authorization: `Bearer ${TEST_API_KEY}`, accept: "application/json, text/event-stream" },
      });
      expect({ status: response.status, body: await response.json() }).toEqual({
        status: 400,
        body: { jsonrpc: "2.0", error: { code: -32000, message: "Bad Request: Mcp-Session-Id header is required" }, id: null },
      });
    }
    expect(t.logText()).not.toContain("opened an MCP session");
  });

  test("initializes sent at once cannot pass the bound together", async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => post({ authorization: `Bearer ${TEST_API_KEY}` })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 200, 200, 429, 429]);
  });

  test("a message over 1 MiB is 413 and opens nothing", async () => {
    const huge = JSON.stringify({ ...JSON.parse(initialize), padding: "x".repeat(1024 * 1024) });
    const response = await post({ authorization: `Bearer ${TEST_API_KEY}` }, huge);
    // Closed rather than read to its end, as the pipeline's own 413: a client still sending is not left hanging.
    expect([response.status, response.headers.get("connection")]).toEqual([413, "close"]);
    expect(t.logText()).not.toContain("opened an MCP session");
  });

  test("a request without a session that is no initialize opens none", async () => {
    const notInitialize = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} });
    const response = await post({ authorization: `Bearer ${TEST_API_KEY}` }, notInitialize);
    expect(response.status).toBe(400);
    for (let i = 0; i < 3; i++) await connect(); // the bound counts only the sessions kept
  });
});

describe("roles", () => {
  async function addKey(name: string, role: string, projects?: string[]): Promise<string> {
    const response = await t.request("POST", "/admin/keys", { body: { name, role, ...(projects ? { projects } : {}) } });
    expect(response.status).toBe(201);
    return response.body.key;
  }

  test("a viewer's session lists only the tools that read, and reads", async () => {
    await t.request("POST", "/tasks/batch", { body: { tasks: [taskInput("TASK-001")] } });
    const { client, call } = await connect(await addKey("watcher", "viewer"));
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(["list_tasks", "get_task"]);
    const listed = await call("list_tasks", { project_id: "proj" });
    expect((listed.structuredContent as { tasks: { task_id: string }[] }).tasks.map((task) => task.task_id)).toEqual([
      "TASK-001",
    ]);
  });

  test("a member's session is refused, as the member is, outside its projects", async () => {
    const { client, call } = await connect(await addKey("alice", "member", ["web"]));
    expect((await client.listTools()).tools).toHaveLength(TOOL_NAMES.length);
    const refused = await call("add_task", { tasks: [taskInput("TASK-001")] });
    expect(refused.isError).toBe(true);
    expect(refused.content).toEqual([
      {
        type: "text",
        text: "Task Tracking API error: 403 - The key alice is a member of project web only: project proj is not among them",
      },
    ]);
  });
});

describe("stopping", () => {
  test("stopping the tracker ends every session: no claim is renewed any more", async () => {
    await t.request("POST", "/tasks/batch", { body: { tasks: [taskInput("TASK-001")] } });
    const { call } = await connect();
    await call("get_next_task", { project_id: "proj", claim: true });
    await t.tracker.stop();
    expect(renewals.map((renewal) => renewal.cancelled)).toEqual([true]);
    expect(t.logText()).toContain('"msg":"closed an MCP session"');
  });

  test("once stopped, a new session is refused with 503 and Retry-After", async () => {
    const sessions = new McpSessions({ logger: createLogger("error", () => {}), maxBodyBytes: 1024 });
    await sessions.closeAll();
    const request = new Request("http://tracker/mcp", { method: "POST", body: initialize });
    const refused = await sessions.handle(request, { scope: "s", apiKey: "k", agentId: null }).catch((error) => error);
    expect(refused).toBeInstanceOf(RetryLater);
    expect({ code: refused.code, message: refused.message, retryAfter: refused.retryAfterSeconds }).toEqual({
      code: "unavailable",
      message: "The tracker is stopping",
      retryAfter: 30,
    });
  });
});

describe("toolsFor", () => {
  test("a viewer gets the tools that read, every other role all of them", async () => {
    const server = await import("../../index.ts");
    expect(toolsFor("viewer", server)).toEqual(["list_tasks", "get_task"]);
    expect(toolsFor("member", server)).toEqual(TOOL_NAMES);
    expect(toolsFor(undefined, server)).toEqual(TOOL_NAMES);
  });
});
