// A team on one tracker (issue 24): a key per person, made by the tracker, used by the compiled MCP
// server. A viewer's writes are refused with 403 naming the key and its role; a member limited to a
// project neither touches nor sees another; a revoked key is refused, on two PostgreSQL instances
// within a second on the one that did not revoke it; an agent is bound to its key: an MCP server
// under another key, sending the same agent ID, cannot complete its claim.

import { describe, expect, test } from "bun:test";
import { type McpProcess, mcpEnv, type Stack, startMcp, textOf, useStack } from "./harness.ts";

async function addKey(stack: Stack<never>, name: string, role: string, projects?: string[]): Promise<string> {
  const response = await stack.tracker.api("POST", "/admin/keys", { name, role, ...(projects ? { projects } : {}) });
  expect(response.status).toBe(201);
  return response.body.key;
}

function task(taskId: string, projectId: string) {
  return { task_id: taskId, project_id: projectId, description: `Do ${taskId}` };
}

async function listed(mcp: McpProcess, projectId: string): Promise<string[]> {
  const result = await mcp.call("list_tasks", { project_id: projectId });
  if (result.isError) throw new Error(textOf(result));
  return (result.structuredContent as { tasks: Array<{ task_id: string }> }).tasks.map((t) => t.task_id).sort();
}

/**
 * Two people's MCP servers with one TASK_TRACKING_AGENT_ID, under keys alice and bob (bob's through
 * `bobUrl`): bob's cannot complete alice's claim, and the task shows which key holds it.
 */
async function sameAgentUnderAnotherKey(stack: Stack<never>, bobUrl: string): Promise<void> {
  await stack.tracker.api("POST", "/tasks/batch", { tasks: [task("K-1", "bound")] });
  const agent = { TASK_TRACKING_AGENT_ID: "claude-3f2a9c1e-77b" };
  const alice = await startMcp(mcpEnv(stack.url, await addKey(stack, "alice", "member"), agent));
  const bob = await startMcp(mcpEnv(bobUrl, await addKey(stack, "bob", "member"), agent));
  try {
    const claimed = await alice.call("get_next_task", { project_id: "bound", claim: true });
    expect(claimed.isError).toBeFalsy();
    const complete = { task_id: "K-1", project_id: "bound", status: "completed", completion_notes: "done" };
    const refused = await bob.call("update_task_status", complete);
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toStartWith('K-1 is claimed by key "alice" · agent "claude-3f2a9c1e-77b" until ');
    const held = (await stack.tracker.api("GET", "/tasks/K-1?project=bound")).body.task;
    expect(held).toMatchObject({ status: "in_progress", claimed_by: "claude-3f2a9c1e-77b", claimed_by_key: "alice" });
    expect((await alice.call("update_task_status", complete)).isError).toBeFalsy();
    const events = (await stack.tracker.api("GET", "/tasks/K-1/events?project=bound")).body.events;
    expect(events.map((event: { type: string; key_name: string | null }) => [event.type, event.key_name])).toEqual([
      ["created", "operator"],
      ["claimed", "alice"],
      ["completed", "alice"],
    ]);
  } finally {
    expect(await alice.close()).toBe(0);
    expect(await bob.close()).toBe(0);
  }
}

describe("a team on one SQLite tracker", () => {
  const stack = useStack();

  test("a viewer's MCP server reads, and its writes are refused naming the key and its role", async () => {
    await stack.tracker.api("POST", "/tasks/batch", { tasks: [task("T-1", "web")] });
    const viewer = await startMcp(mcpEnv(stack.url, await addKey(stack, "pm", "viewer"), { TASK_TRACKING_AGENT_ID: "pm-agent" }));
    try {
      expect(await listed(viewer, "web")).toEqual(["T-1"]);
      const refused = await viewer.call("add_task", { tasks: [task("T-2", "web")] });
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toContain(
        "The key pm is a viewer: it may read but not write, and POST /tasks/batch writes; a member key may",
      );
      expect((await stack.tracker.api("GET", "/tasks/T-2?project=web")).status).toBe(404);
    } finally {
      expect(await viewer.close()).toBe(0);
    }
  });

  test("a member of one project adds and lists there only, and a revoked key is refused", async () => {
    await stack.tracker.api("POST", "/tasks/batch", { tasks: [task("A-1", "api")] });
    const member = await startMcp(
      mcpEnv(stack.url, await addKey(stack, "web-dev", "member", ["web"]), { TASK_TRACKING_AGENT_ID: "web-agent" }),
    );
    try {
      expect((await member.call("add_task", { tasks: [task("W-1", "web")] })).isError).toBeFalsy();
      const elsewhere = await member.call("add_task", { tasks: [task("A-2", "api")] });
      expect(textOf(elsewhere)).toContain("The key web-dev is a member of project web only: project api is not among them");
      expect(await listed(member, "web")).toEqual(["T-1", "W-1"]);
      const otherList = await member.call("list_tasks", { project_id: "api" });
      expect(textOf(otherList)).toContain("The key web-dev is a member of project web only: project api is not among them");
      expect((await stack.tracker.api("DELETE", "/admin/keys/web-dev")).status).toBe(200);
      const revoked = await member.call("list_tasks", { project_id: "web" });
      expect([revoked.isError, textOf(revoked)]).toEqual([true, expect.stringContaining("Unauthorized")]);
    } finally {
      expect(await member.close()).toBe(0);
    }
  });

  test("an MCP server under another key, with the same agent ID, cannot complete a claim", async () => {
    await sameAgentUnderAnotherKey(stack, stack.url);
  });
});

const onPostgres = Boolean(process.env.TRACKER_TEST_DATABASE_URL);

describe.skipIf(!onPostgres)("a team on two PostgreSQL instances", () => {
  const stack = useStack({ database: "postgres", trackers: 2 });

  test("a key revoked through one instance is refused by the other within a second", async () => {
    const key = await addKey(stack, "leaver", "member");
    const other = stack.trackers[1]!;
    const onOther = await startMcp(mcpEnv(other.url, key, { TASK_TRACKING_AGENT_ID: "leaver-agent" }));
    try {
      expect((await onOther.call("list_tasks", { project_id: "web" })).isError).toBeFalsy();
      expect((await stack.tracker.api("DELETE", "/admin/keys/leaver")).status).toBe(200);
      const started = performance.now();
      let refused = false;
      while (!refused && performance.now() - started < 3000) {
        const response = await fetch(`${other.url}/projects`, { headers: { Authorization: `Bearer ${key}` } });
        await response.arrayBuffer();
        refused = response.status === 401;
      }
      expect(refused).toBe(true);
      expect(performance.now() - started).toBeLessThan(1000);
      expect((await onOther.call("list_tasks", { project_id: "web" })).isError).toBe(true);
    } finally {
      expect(await onOther.close()).toBe(0);
    }
  });

  test("an MCP server under another key, on the other instance, with the same agent ID, cannot complete a claim", async () => {
    await sameAgentUnderAnotherKey(stack, stack.trackers[1]!.url);
  });
});
