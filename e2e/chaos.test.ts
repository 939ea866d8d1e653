// Chaos among the agents, not the tracker: 8 compiled MCP servers work a few hundred tasks with
// dependencies while agents are killed with kill -9 at random and restarted under the same ID. A
// restarted agent does what a model does after losing its context: it asks list_tasks (mine: true)
// for the claims it still holds and finishes them. At the end every task is completed exactly once,
// by the agent that held it then, and none is stranded.

import { expect, test } from "bun:test";
import { type McpProcess, mcpEnv, startMcp, textOf, useStack } from "./harness.ts";

const AGENTS = 8;
const TASKS = 200;
const PROJECT = "chaos";
const LEASE_SECONDS = 5;
/** How long an agent "works" on a task between its claim and its completion. */
const WORK_MS = [20, 60] as const;
const KILL_EVERY_MS = 250;

const stack = useStack();

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function makeTasks(next: () => number) {
  return Array.from({ length: TASKS }, (_, i) => {
    const depends = new Set<string>();
    const wanted = i === 0 ? 0 : Math.floor(next() * 3);
    for (let d = 0; d < wanted; d++) depends.add(`C-${Math.max(0, i - 1 - Math.floor(next() * 15))}`);
    return { task_id: `C-${i}`, project_id: PROJECT, description: `chaos task ${i}`, depends_on: [...depends] };
  });
}

interface Task {
  task_id: string;
  status: string;
  claimed_by: string | null;
}

interface Event {
  type: string;
  agent_id: string | null;
  details: Record<string, unknown>;
}

test(`${AGENTS} agents, killed with kill -9 at random and restarted, complete ${TASKS} tasks exactly once`, async () => {
  const seed = Date.now() % 100_000;
  const next = random(seed);
  const added = await stack.tracker.api("POST", "/tasks/batch", { tasks: makeTasks(next) });
  expect(added.status).toBe(201);

  const start = (id: string) =>
    startMcp(
      mcpEnv(stack.tracker.url, stack.tracker.apiKey, {
        TASK_TRACKING_AGENT_ID: id,
        TASK_TRACKING_LEASE_SECONDS: String(LEASE_SECONDS),
        LOG_LEVEL: "error",
      }),
    );
  const agents = new Map<string, McpProcess>();
  for (let i = 0; i < AGENTS; i++) agents.set(`chaos-${i}`, await start(`chaos-${i}`));

  let finished = false;
  let kills = 0;
  const completions: { task_id: string; agent: string }[] = [];

  /** One agent's session: first its own claims (after a restart), then new ones, until it dies or all is done. */
  async function session(id: string, mcp: McpProcess): Promise<void> {
    const mine = await mcp.call("list_tasks", { project_id: PROJECT, mine: true, limit: 500 });
    if (mine.isError) return; // killed while asking
    const held = (mine.structuredContent as { tasks: Task[] }).tasks.filter((task) => task.status === "in_progress");
    for (const task of held) if (!(await finish(id, mcp, task.task_id))) return;
    while (!finished) {
      const result = await mcp.call("get_next_task", { project_id: PROJECT, claim: true });
      if (result.isError) {
        if (textOf(result).startsWith("Could not claim a task")) continue;
        return; // killed: the process is gone
      }
      const task = (result.structuredContent as { task: Task | null }).task;
      if (task === null) {
        await Bun.sleep(20);
        continue;
      }
      await Bun.sleep(WORK_MS[0] + next() * (WORK_MS[1] - WORK_MS[0]));
      if (!(await finish(id, mcp, task.task_id))) return;
    }
  }

  async function finish(id: string, mcp: McpProcess, taskId: string): Promise<boolean> {
    const done = await mcp.call("update_task_status", {
      task_id: taskId,
      project_id: PROJECT,
      status: "completed",
      completion_notes: `done by ${id}`,
    });
    if (done.isError) {
      // A lost claim is possible only if this agent was dead for longer than a lease: say which.
      const text = textOf(done);
      if (text.startsWith("Your claim on") || text.includes("is claimed by")) return true;
      return false;
    }
    completions.push({ task_id: taskId, agent: id });
    return true;
  }

  const sessions = new Set<Promise<void>>();
  const run = (id: string, mcp: McpProcess) => {
    const running: Promise<void> = session(id, mcp)
      .catch(() => undefined)
      .finally(() => sessions.delete(running));
    sessions.add(running);
  };
  for (const [id, mcp] of agents) run(id, mcp);

  const killer = (async () => {
    while (!finished) {
      await Bun.sleep(KILL_EVERY_MS);
      if (finished) break;
      const id = `chaos-${Math.floor(next() * AGENTS)}`;
      process.kill(agents.get(id)!.pid, "SIGKILL");
      kills++;
      const restarted = await start(id);
      agents.set(id, restarted);
      run(id, restarted);
    }
  })();

  const deadline = performance.now() + 120_000;
  for (;;) {
    const page = await stack.tracker.api("GET", `/projects`);
    const counts = (page.body.projects as { project_id: string; completed: number }[]).find((p) => p.project_id === PROJECT);
    if (counts?.completed === TASKS) break;
    if (performance.now() > deadline)
      throw new Error(`seed ${seed}: only ${counts?.completed} of ${TASKS} completed after 120 s`);
    await Bun.sleep(100);
  }
  finished = true;
  await killer;
  await Promise.allSettled([...sessions]);
  for (const mcp of agents.values()) await mcp.close().catch(() => undefined);

  // Exactly once each, by the agent that held it at the time: one `completed` event per task, whose
  // agent is the holder the task records.
  const completedBy = new Map<string, string>();
  for (let i = 0; i < TASKS; i++) {
    const [task, events] = await Promise.all([
      stack.tracker.api("GET", `/tasks/C-${i}?project=${PROJECT}`),
      stack.tracker.api("GET", `/tasks/C-${i}/events?project=${PROJECT}`),
    ]);
    const row = task.body.task as Task;
    const completedEvents = (events.body.events as Event[]).filter((event) => event.type === "completed");
    expect({ task: row.task_id, status: row.status, completions: completedEvents.length }).toEqual({
      task: `C-${i}`,
      status: "completed",
      completions: 1,
    });
    expect(completedEvents[0]!.agent_id).toBe(row.claimed_by);
    completedBy.set(row.task_id, row.claimed_by!);
  }
  // What the agents were told matches: no completion reported twice, none to the wrong agent. (A kill
  // between the commit and its answer leaves one unreported, so the reports may be fewer than TASKS.)
  const reported = completions.map((c) => c.task_id);
  expect(new Set(reported).size).toBe(reported.length);
  for (const completion of completions) expect(completedBy.get(completion.task_id)).toBe(completion.agent);
  expect(kills).toBeGreaterThan(3);
  console.error(`chaos: seed ${seed}; ${kills} agents killed with kill -9 and restarted`);
}, 150_000);
