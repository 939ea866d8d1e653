// Projects are namespaces, and agents can read the backlog (docs/API.md, docs/TOOLS.md): the compiled
// MCP server, spoken to by the SDK client over stdio, against the real tracker. Starts with the recipe
// that broke before: reserve TASK IDs in a second project, then add tasks with them.

import { describe, expect, test } from "bun:test";
import { type McpProcess, mcpEnv, startMcp, textOf, useStack } from "./harness.ts";

const stack = useStack({ mcp: { lister: { TASK_TRACKING_AGENT_ID: "lister" } } });

function data<T>(result: Awaited<ReturnType<McpProcess["call"]>>): T {
  if (result.isError) throw new Error(textOf(result));
  return result.structuredContent as T;
}

async function reserveAndAdd(projectId: string, descriptions: string[]): Promise<string[]> {
  const reservation = data<{ reserved_ids: string[] }>(
    await stack.mcp.lister.call("reserve_id_range", { artifact_type: "TASK", count: descriptions.length, project_id: projectId }),
  );
  const tasks = reservation.reserved_ids.map((task_id, i) => ({ task_id, project_id: projectId, description: descriptions[i]! }));
  expect(data(await stack.mcp.lister.call("add_task", { tasks }))).toEqual({
    success: true,
    tasks_added: tasks.length,
    task_ids: reservation.reserved_ids,
  });
  return reservation.reserved_ids;
}

describe("projects are namespaces", () => {
  test("the recipe: reserve TASK IDs in a second project, add tasks with them (the same IDs as the first project's)", async () => {
    expect(await reserveAndAdd("first-proj", ["Write the spec", "Build it"])).toEqual(["TASK-001", "TASK-002"]);
    expect(await reserveAndAdd("other-proj", ["Other work", "More other work"])).toEqual(["TASK-001", "TASK-002"]);
    const first = await stack.tracker.api("GET", "/tasks/TASK-001?project=first-proj");
    const other = await stack.tracker.api("GET", "/tasks/TASK-001?project=other-proj");
    expect([first.body.task.description, other.body.task.description]).toEqual(["Write the spec", "Other work"]);
  });

  test("an ID that two projects have is ambiguous without project_id, and says to pass it", async () => {
    const result = await stack.mcp.lister.call("update_task_status", { task_id: "TASK-002", status: "in_progress" });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("Task TASK-002 exists in projects first-proj, other-proj; pass");
    const direct = await stack.tracker.api("GET", "/tasks/TASK-002");
    expect(direct).toMatchObject({ status: 409, body: { code: "ambiguous_task_id" } });
  });

  test("update_task_status without project_id uses the project of a task this server claimed", async () => {
    const claimed = data<{ task: { task_id: string; project_id: string } }>(
      await stack.mcp.lister.call("get_next_task", { project_id: "other-proj", claim: true }),
    );
    expect(claimed.task).toMatchObject({ task_id: "TASK-001", project_id: "other-proj" });
    const done = data<{ task: { project_id: string; status: string } }>(
      await stack.mcp.lister.call("update_task_status", { task_id: "TASK-001", status: "completed", completion_notes: "done" }),
    );
    expect(done.task).toMatchObject({ project_id: "other-proj", status: "completed" });
    const untouched = await stack.tracker.api("GET", "/tasks/TASK-001?project=first-proj");
    expect(untouched.body.task.status).toBe("pending");
  });
});

describe("reading the backlog", () => {
  test("list_tasks: a compact result and one short line per task", async () => {
    const result = await stack.mcp.lister.call("list_tasks", { project_id: "other-proj" });
    const listed = data<{ tasks: { task_id: string; status: string }[]; next_cursor: string | null }>(result);
    expect(listed.tasks.map((task) => [task.task_id, task.status])).toEqual([
      ["TASK-002", "pending"],
      ["TASK-001", "completed"],
    ]);
    expect(listed.next_cursor).toBeNull();
    const lines = textOf(result).split("\n");
    expect(lines[0]).toStartWith("TASK-002");
    expect(lines[1]).toStartWith("TASK-001");
    expect(textOf(result).length).toBeLessThan(400);
  });

  test("list_tasks pages with a cursor and finds this agent's claims with mine: true", async () => {
    await reserveAndAdd(
      "paged",
      Array.from({ length: 7 }, (_, i) => `paged task ${i + 1}`),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { tasks: { task_id: string }[]; next_cursor: string | null } = data(
        await stack.mcp.lister.call("list_tasks", { project_id: "paged", limit: 3, ...(cursor ? { cursor } : {}) }),
      );
      seen.push(...page.tasks.map((task) => task.task_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(["TASK-001", "TASK-002", "TASK-003", "TASK-004", "TASK-005", "TASK-006", "TASK-007"]);

    await stack.mcp.lister.call("get_next_task", { project_id: "paged", claim: true });
    const mine = data<{ tasks: { task_id: string; claimed_by: string }[] }>(
      await stack.mcp.lister.call("list_tasks", { project_id: "paged", mine: true }),
    );
    expect(mine.tasks).toEqual([expect.objectContaining({ task_id: "TASK-001", claimed_by: "lister" })]);
  });

  test("GET /projects counts each project; the history of a task names who changed it", async () => {
    const projects = await stack.tracker.api("GET", "/projects");
    expect(projects.body.projects.find((p: { project_id: string }) => p.project_id === "other-proj")).toMatchObject({
      ready: 1,
      blocked: 0,
      in_progress: 0,
      completed: 1,
    });
    const events = await stack.tracker.api("GET", "/tasks/TASK-001/events?project=other-proj");
    expect(events.body.events.map((event: { type: string; agent_id: string | null }) => [event.type, event.agent_id])).toEqual([
      ["created", "lister"],
      ["claimed", "lister"],
      ["completed", "lister"],
    ]);
  });

  test("get_next_task on a project with no tasks at all names the known projects (a typo is caught)", async () => {
    const result = await stack.mcp.lister.call("get_next_task", { project_id: "otherproj" });
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as { task: unknown }).task).toBeNull();
    expect(textOf(result)).toContain("otherproj");
    expect(textOf(result)).toContain("other-proj");
    expect(textOf(result)).toContain("first-proj");
  });

  test("resources: task://{project_id}/{task_id} holds the task and its history; project:// the counts and holders", async () => {
    const task = await stack.mcp.lister.client.readResource({ uri: "task://other-proj/TASK-001" });
    const body = JSON.parse((task.contents[0] as { text: string }).text);
    expect(body.task).toMatchObject({ task_id: "TASK-001", project_id: "other-proj", status: "completed" });
    expect(body.events.map((event: { type: string }) => event.type)).toEqual(["created", "claimed", "completed"]);
    const project = await stack.mcp.lister.client.readResource({ uri: "project://paged" });
    const text = (project.contents[0] as { text: string }).text;
    expect(text).toContain("TASK-001");
    expect(text).toContain("lister");
    const templates = await stack.mcp.lister.client.listResourceTemplates();
    expect(templates.resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      "project://{project_id}",
      "task://{project_id}/{task_id}",
    ]);
  });

  test("prompts: one works the next task, one plans a goal into tasks", async () => {
    const prompts = await stack.mcp.lister.client.listPrompts();
    expect(prompts.prompts.map((p) => p.name).sort()).toEqual(["plan_goal", "work_next_task"]);
    const work = await stack.mcp.lister.client.getPrompt({ name: "work_next_task", arguments: { project_id: "paged" } });
    const text = (work.messages[0]!.content as { text: string }).text;
    expect(text).toContain("get_next_task");
    expect(text).toContain("update_task_status");
    expect(text).toContain("paged");
    const plan = await stack.mcp.lister.client.getPrompt({
      name: "plan_goal",
      arguments: { project_id: "paged", goal: "Ship the board" },
    });
    const planText = (plan.messages[0]!.content as { text: string }).text;
    expect(planText).toContain("reserve_id_range");
    expect(planText).toContain("add_task");
    expect(planText).toContain("Ship the board");
  });
});

describe("the server's manners", () => {
  test("an unknown argument is an error naming it (claim_task is not claim)", async () => {
    const result = await stack.mcp.lister.call("get_next_task", { project_id: "paged", claim_task: true });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("claim_task");
    const untouched = await stack.tracker.api("GET", "/tasks/TASK-002?project=paged");
    expect(untouched.body.task.status).toBe("pending");
  });

  test("every tool is of a closed world; list_tasks reads only", async () => {
    const { tools } = await stack.mcp.lister.client.listTools();
    for (const tool of tools)
      expect({ tool: tool.name, openWorld: tool.annotations?.openWorldHint }).toEqual({ tool: tool.name, openWorld: false });
    const list = tools.find((tool) => tool.name === "list_tasks")!;
    expect(list.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true });
  });

  test("without TASK_TRACKING_AGENT_ID the agent is named after Claude Code's session; TASK_TRACKING_PROJECT is in the instructions", async () => {
    const session = "5b1f0c3e-9a7d-4e2b-8c61-0f3a9d2e7b44";
    const claude = await startMcp(
      mcpEnv(stack.tracker.url, stack.tracker.apiKey, {
        CLAUDE_CODE_SESSION_ID: session,
        CLAUDE_PROJECT_DIR: "/tmp",
        TASK_TRACKING_PROJECT: "paged",
      }),
    );
    expect(claude.client.getInstructions()).toContain("paged");
    const claimed = data<{ task: { claimed_by: string } }>(
      await claude.call("get_next_task", { project_id: "paged", claim: true }),
    );
    expect(claimed.task.claimed_by).toBe(`claude-${session.slice(0, 12)}`);
    expect(await claude.close()).toBe(0);
  });
});
