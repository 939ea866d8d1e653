// Many agents at once: eight MCP server processes, each with its own TASK_TRACKING_AGENT_ID, work
// through a few hundred tasks with dependencies on one tracker, and allocate IDs side by side.

import { expect, test } from "bun:test";
import { inDb, type McpProcess, textOf, useStack } from "./harness.ts";

const AGENTS = 8;
const TASKS = 240;
const PROJECT = "many-agents";

const AGENT_IDS = Array.from({ length: AGENTS }, (_, i) => `agent-${i + 1}`);
const stack = useStack({
  mcp: Object.fromEntries(AGENT_IDS.map((id) => [id, { TASK_TRACKING_AGENT_ID: id, LOG_LEVEL: "warn" }])),
});
const agents = () => AGENT_IDS.map((id) => ({ id, mcp: stack.mcp[id]! }));

/** A small seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Tasks in layers: each depends on up to three of the twenty before it, so chains and parallel work mix. */
function makeTasks(seed: number) {
  const next = random(seed);
  const priorities = ["high", "medium", "low"] as const;
  return Array.from({ length: TASKS }, (_, i) => {
    const depends = new Set<string>();
    const wanted = i === 0 ? 0 : Math.floor(next() * 4);
    for (let d = 0; d < wanted; d++) depends.add(`MA-${String(Math.max(0, i - 1 - Math.floor(next() * 20))).padStart(3, "0")}`);
    return {
      task_id: `MA-${String(i).padStart(3, "0")}`,
      project_id: PROJECT,
      description: `Task ${i} of the many-agents run`,
      priority: priorities[Math.floor(next() * 3)]!,
      depends_on: [...depends],
    };
  });
}

/** Lets an agent that found nothing ready wait for the next completion instead of polling. */
class Progress {
  generation = 0;
  completed = 0;
  private waiters: (() => void)[] = [];

  complete(): void {
    this.completed++;
    this.generation++;
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves once something completed after `seen` (at once if it already has). */
  after(seen: number): Promise<void> {
    if (this.generation !== seen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no task completed for 10 s while agents waited: stuck")), 10_000);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

test(`${AGENTS} agents claim and complete ${TASKS} tasks: each exactly once, never before its dependencies`, async () => {
  const seed = Date.now() % 100_000;
  const tasks = makeTasks(seed);
  const added = await agents()[0]!.mcp.call("add_task", { tasks });
  expect(added.structuredContent).toMatchObject({ success: true, tasks_added: TASKS });

  const progress = new Progress();
  const claims: { task_id: string; agent: string }[] = [];
  let claimCalls = 0;
  let claimRetries = 0;

  async function work(agent: { id: string; mcp: McpProcess }) {
    while (progress.completed < TASKS) {
      const seen = progress.generation;
      const next = await agent.mcp.call("get_next_task", { project_id: PROJECT, claim: true });
      claimCalls++;
      if (next.isError) {
        // Other agents took each of the next tasks first; the text tells the model to call again.
        if (textOf(next).startsWith("Could not claim a task")) {
          claimRetries++;
          continue;
        }
        throw new Error(`${agent.id}: get_next_task failed: ${textOf(next)}`);
      }
      const task = (next.structuredContent as { task: { task_id: string; status: string; claimed_by: string } | null }).task;
      if (task === null) {
        await progress.after(seen);
        continue;
      }
      expect({ status: task.status, claimed_by: task.claimed_by }).toEqual({ status: "in_progress", claimed_by: agent.id });
      claims.push({ task_id: task.task_id, agent: agent.id });
      const done = await agent.mcp.call("update_task_status", {
        task_id: task.task_id,
        status: "completed",
        completion_notes: `done by ${agent.id}`,
      });
      if (done.isError) throw new Error(`${agent.id}: completing ${task.task_id} failed: ${textOf(done)}`);
      progress.complete();
    }
  }

  await Promise.all(agents().map(work));

  // Claimed exactly once each, by the agent the service recorded.
  expect(claims.map((claim) => claim.task_id).sort()).toEqual(tasks.map((task) => task.task_id).sort());
  const rows = inDb(stack.tracker, (db) => db.tasks(PROJECT));
  expect(rows).toHaveLength(TASKS);
  const byId = new Map(rows.map((row) => [row.task_id, row]));
  const claimedBy = new Map(claims.map((claim) => [claim.task_id, claim.agent]));
  for (const row of rows) {
    expect({ task: row.task_id, status: row.status, claimed_by: row.claimed_by, notes: row.completion_notes }).toEqual({
      task: row.task_id,
      status: "completed",
      claimed_by: claimedBy.get(row.task_id)!,
      notes: `done by ${claimedBy.get(row.task_id)}`,
    });
    expect(row.started_at! <= row.completed_at!).toBe(true);
    // Never started before every dependency was completed (same-format ISO times compare as strings).
    for (const dependency of JSON.parse(row.depends_on) as string[]) {
      const before = byId.get(dependency)!;
      if (!(before.completed_at! <= row.started_at!)) {
        throw new Error(
          `seed ${seed}: ${row.task_id} started at ${row.started_at}, before ${dependency} completed at ${before.completed_at}`,
        );
      }
    }
  }
  // The work really was shared.
  expect(new Set(claims.map((claim) => claim.agent)).size).toBeGreaterThan(1);
  console.error(
    `many agents: seed ${seed}; ${claimRetries} of ${claimCalls} claiming calls lost every race; ` +
      `tasks per agent ${JSON.stringify(countBy(claims.map((c) => c.agent)))}`,
  );
}, 60_000);

test(`${AGENTS} agents allocate and reserve IDs at once: no ID twice, no gaps`, async () => {
  const perAgent = async ({ mcp }: { mcp: McpProcess }, index: number) => {
    const next = random(index + 1);
    const calls = Array.from({ length: 16 }, (_, i) =>
      i % 4 === 0
        ? mcp.call("reserve_id_range", { artifact_type: "SPEC", count: 1 + Math.floor(next() * 10), project_id: PROJECT })
        : mcp.call("get_next_available_id", { artifact_type: "SPEC", project_id: PROJECT }),
    );
    const results = await Promise.all(calls);
    return results.flatMap((result) => {
      if (result.isError) throw new Error(`an ID call failed: ${textOf(result)}`);
      const data = result.structuredContent as { next_id?: string; reserved_ids?: string[] };
      return data.reserved_ids ?? [data.next_id!];
    });
  };
  const ids = (await Promise.all(agents().map(perAgent))).flat();

  const numbers = ids.map((id) => Number(/^SPEC-(\d{3,})$/.exec(id)![1])).sort((a, b) => a - b);
  expect(numbers).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
  const [last, reserved] = inDb(stack.tracker, (db) => [
    db.lastAssigned(PROJECT, "SPEC"),
    db.reservations(PROJECT).reduce((sum, r) => sum + r.count, 0),
  ]);
  expect(last).toBe(ids.length);
  expect(reserved).toBe(ids.length - AGENTS * 12); // 12 single allocations per agent; the rest came in reservations
});

test(`${AGENTS} agents add tasks without IDs while they allocate TASK IDs: each TASK-nnn once, no gaps`, async () => {
  const project = "many-agents-unnamed";
  const perAgent = async ({ mcp }: { mcp: McpProcess }, index: number) => {
    const calls = Array.from({ length: 4 }, (_, i) =>
      i % 2 === 0
        ? mcp.call("add_task", {
            tasks: [
              { project_id: project, description: `Agent ${index}, batch ${i}, first` },
              { task_id: `U-${index}-${i}`, project_id: project, description: "Named" },
              { project_id: project, description: `Agent ${index}, batch ${i}, second` },
            ],
          })
        : mcp.call("get_next_available_id", { artifact_type: "TASK", project_id: project }),
    );
    return (await Promise.all(calls)).flatMap((result) => {
      if (result.isError) throw new Error(`a call failed: ${textOf(result)}`);
      const data = result.structuredContent as { next_id?: string; task_ids?: string[] };
      return data.task_ids ?? [data.next_id!];
    });
  };
  const ids = (await Promise.all(agents().map(perAgent))).flat().filter((id) => id.startsWith("TASK-"));
  const numbers = ids.map((id) => Number(/^TASK-(\d{3,})$/.exec(id)![1])).sort((a, b) => a - b);
  expect(numbers).toEqual(Array.from({ length: AGENTS * 6 }, (_, i) => i + 1));
  expect(inDb(stack.tracker, (db) => db.lastAssigned(project, "TASK"))).toBe(AGENTS * 6);
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
