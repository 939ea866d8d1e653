// The Storage contract (storage.ts), run against the implementation chosen by TRACKER_TEST_STORAGE.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  ApiError,
  type BatchTask,
  type Priority,
  type StatusChange,
  type TaskChange,
  type TaskListQuery,
  type TaskPage,
  type TaskRef,
  type TaskStatus,
} from "../domain.ts";
import { makeStorage, newTask, type TestStorage } from "../testing.ts";
import { numberedLines } from "./dump-reader.ts";
import type { IdempotencyClaim, Storage } from "./storage.ts";

let target: TestStorage;
let storage: Storage;
const now = new Date("2026-11-24T21:46:59.123Z");

beforeEach(async () => {
  target = await makeStorage();
  storage = target.storage;
});
afterEach(async () => {
  await target.cleanup();
});

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("expected a rejection");
}

function ref(taskId: string, projectId: string | null = null): TaskRef {
  return { projectId, taskId };
}

async function move(taskId: string, to: TaskStatus, extra: Partial<StatusChange> = {}) {
  return storage.changeTaskStatus({
    ref: ref(taskId),
    to,
    completionNotes: "",
    agentId: "agent-1",
    leaseSeconds: 60,
    force: false,
    now,
    ...extra,
  });
}

/** A task sent without task_id: the tracker names it. */
function unnamedTask(extra: Partial<BatchTask> = {}): BatchTask {
  const { task_id: _, ...task } = newTask("unnamed", { description: "An unnamed task" });
  return { ...task, ...extra };
}

function add(tasks: BatchTask[], at = now, agentId: string | null = null, keyName: string | null = null) {
  return storage.addTasks(tasks, at, agentId, undefined, keyName);
}

describe("tasks", () => {
  test("a stored task reads back whole, with defaults", async () => {
    await add([newTask("T-1", { inputs: ["a"], outputs: ["b"], priority: "high" })]);
    expect(await storage.getTask(ref("T-1"))).toEqual({
      task_id: "T-1",
      project_id: "p",
      description: "Do T-1",
      inputs: ["a"],
      outputs: ["b"],
      priority: "high",
      depends_on: [],
      status: "pending",
      claimed_by: null,
      claimed_by_key: null,
      lease_expires_at: null,
      completion_notes: "",
      created_at: now.toISOString(),
      updated_at: now.toISOString(),
      started_at: null,
      completed_at: null,
      labels: [],
      parent_id: null,
      acceptance_criteria: [],
      notes_count: 0,
      last_note: null,
      children: { total: 0, done: 0 },
      released_by: null,
      notes: [],
    });
    expect(await storage.getTask(ref("T-2"))).toBeNull();
  });

  test("next task follows priority, then insertion order, and only ready tasks", async () => {
    await add(
      [
        newTask("low", { priority: "low" }),
        newTask("blocked", { priority: "high", depends_on: ["base"] }),
        newTask("base", { priority: "medium" }),
        newTask("medium-2", { priority: "medium" }),
      ],
      now,
    );
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("base");
    await move("base", "in_progress");
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("medium-2");
    expect((await storage.findNextTask("p", "in_progress"))?.task_id).toBe("base");
    await move("base", "completed");
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("blocked");
    expect((await storage.findNextTask("p", "completed"))?.task_id).toBe("base");
    expect(await storage.findNextTask("other", "pending")).toBeNull();
  });

  test("a claim waits for every dependency and the state machine holds", async () => {
    await add([newTask("a"), newTask("b", { depends_on: ["a", "a"] })]);
    expect(await rejection(move("b", "in_progress"))).toEqual({
      code: "invalid_transition",
      message: "cannot change b from pending to in_progress: a is not completed",
    });
    expect(await rejection(move("a", "completed"))).toEqual(nobodyHolds("a"));
    const claimed = await move("a", "in_progress");
    expect([claimed.status, claimed.claimed_by, claimed.started_at]).toEqual(["in_progress", "agent-1", now.toISOString()]);
    const released = await move("a", "pending");
    expect([released.status, released.claimed_by, released.started_at]).toEqual(["pending", null, null]);
    await move("a", "in_progress");
    const done = await move("a", "completed", { completionNotes: "ok" });
    expect([done.status, done.completion_notes, done.completed_at]).toEqual(["completed", "ok", now.toISOString()]);
    expect((await move("b", "in_progress")).status).toBe("in_progress");
    expect(await rejection(move("missing", "in_progress"))).toEqual({
      code: "task_not_found",
      message: "Task not found: missing",
    });
  });
});

describe("claimNextTask", () => {
  const claimNext = (agentId: string | null = "agent-1", projectId = "p") =>
    storage.claimNextTask({ projectId, agentId, leaseSeconds: 60, now });

  test("a claim answers the task as stored, whether it was new, released or noted, by either way", async () => {
    await add([newTask("a"), newTask("b")]);
    const stored = async (taskId: string) => (await storage.getTask(ref(taskId)))!;
    expect(await move("a", "in_progress", { now: at(1), leaseSeconds: 30 })).toEqual(await stored("a"));
    await move("a", "pending", { now: at(2) }); // released by agent-1
    await storage.addNote({ ref: ref("a"), text: "half done", agentId: "agent-1", now: at(3) });
    expect(await move("a", "in_progress", { agentId: "agent-2", now: at(4), leaseSeconds: 10 })).toEqual(await stored("a"));
    expect(await storage.claimNextTask({ projectId: "p", agentId: "agent-1", leaseSeconds: 60, now: at(5) })).toEqual(
      await stored("b"),
    );
  });

  test("claims the task findNextTask answers, as a claim by status change does, and null when none is ready", async () => {
    await add([
      newTask("low", { priority: "low" }),
      newTask("blocked", { priority: "high", depends_on: ["base"] }),
      newTask("base"),
      newTask("elsewhere", { project_id: "q", priority: "high" }),
    ]);
    const next = await storage.findNextTask("p", "pending");
    const claimed = await claimNext();
    expect(claimed).toEqual({
      ...next!,
      status: "in_progress",
      claimed_by: "agent-1",
      started_at: now.toISOString(),
      updated_at: now.toISOString(),
      lease_expires_at: claimed!.lease_expires_at,
      notes: [], // a claim's answer carries every note, as the status change's does
    });
    expect(claimed!.task_id).toBe("base");
    expect(await storage.getTask(ref("base"))).toEqual(claimed);
    expect((await history(ref("base"))).map((event) => [event.type, event.agent_id, event.to_status])).toEqual([
      ["created", null, "pending"],
      ["claimed", "agent-1", "in_progress"],
    ]);
    expect((await claimNext("agent-2"))?.task_id).toBe("low");
    expect(await claimNext("agent-3")).toBeNull();
    expect((await storage.getTask(ref("elsewhere")))?.status).toBe("pending");
  });

  test("32 concurrent claimers take the 32 best tasks, each once, and the rest find none", async () => {
    const tasks = Array.from({ length: 40 }, (_, i) => newTask(`T-${String(i).padStart(2, "0")}`));
    await add(tasks);
    const claims = await Promise.all(Array.from({ length: 32 }, (_, i) => claimNext(`agent-${i}`)));
    const taken = claims.map((task) => task!.task_id);
    expect(new Set(taken).size).toBe(32);
    expect(taken.toSorted()).toEqual(tasks.slice(0, 32).map((task) => task.task_id));
    for (const task of claims) expect((await storage.getTask(ref(task!.task_id)))?.claimed_by).toBe(task!.claimed_by);
    const more = await Promise.all(Array.from({ length: 32 }, (_, i) => claimNext(`late-${i}`)));
    expect(
      more
        .filter((task) => task !== null)
        .map((task) => task!.task_id)
        .toSorted(),
    ).toEqual(tasks.slice(32).map((task) => task.task_id));
    for (const task of tasks)
      expect((await history(ref(task.task_id))).filter((event) => event.type === "claimed")).toHaveLength(1);
  });

  test("concurrent claimers and status changes of the same tasks never make two holders", async () => {
    const tasks = Array.from({ length: 16 }, (_, i) => newTask(`T-${String(i).padStart(2, "0")}`));
    await add(tasks);
    const byStatus = tasks.map((task, i) => move(task.task_id, "in_progress", { agentId: `direct-${i}` }).catch(() => null));
    const byNext = Array.from({ length: 32 }, (_, i) => claimNext(`next-${i}`));
    const won = (await Promise.all([...byStatus, ...byNext])).filter((task) => task !== null);
    expect(won.map((task) => task!.task_id).toSorted()).toEqual(tasks.map((task) => task.task_id));
    for (const task of won) expect((await storage.getTask(ref(task!.task_id)))?.claimed_by).toBe(task!.claimed_by);
  });
});

/** What completing a pending task that the caller did not lose to someone else says. */
function nobodyHolds(taskId: string) {
  return {
    code: "invalid_transition",
    message: `cannot complete ${taskId}: it is pending and nobody holds it; claim it first (get_next_task with claim: true, or update_task_status to in_progress)`,
  };
}

describe("completing a pending task", () => {
  test("an agent whose claim a person released hears who released it, when, and what to do", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { now: at(1) });
    await move("a", "pending", { agentId: "dana.example", force: true, now: at(5) });
    const releasedByDana = {
      code: "invalid_transition",
      message: `cannot complete a: it is pending, released by agent "dana.example" at ${at(5).toISOString()}; take another task with get_next_task, or claim it again`,
    };
    expect(await rejection(move("a", "completed", { now: at(6) }))).toEqual(releasedByDana);
    expect(await rejection(move("a", "completed", { agentId: "agent-2", now: at(6) }))).toEqual(nobodyHolds("a"));
    expect((await storage.getTask(ref("a")))?.status).toBe("pending"); // a refused change changes nothing
    await move("a", "in_progress", { now: at(7) });
    expect((await move("a", "completed", { now: at(8) })).status).toBe("completed");
  });

  test("a claim without an agent ID released by a person: an agent without an ID hears who released it", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { agentId: null, now: at(1) });
    await move("a", "pending", { agentId: "dana.example", now: at(5) });
    expect((await rejection(move("a", "completed", { agentId: null, now: at(6) }))).message).toBe(
      `cannot complete a: it is pending, released by agent "dana.example" at ${at(5).toISOString()}; take another task with get_next_task, or claim it again`,
    );
  });

  test("a task never claimed, or released by the caller itself, is claimed first", async () => {
    await add([newTask("a")]);
    expect(await rejection(move("a", "completed"))).toEqual(nobodyHolds("a"));
    await move("a", "in_progress", { now: at(1) });
    await move("a", "pending", { now: at(2) });
    expect(await rejection(move("a", "completed", { now: at(3) }))).toEqual(nobodyHolds("a"));
    expect(await rejection(move("a", "completed", { agentId: null, now: at(3) }))).toEqual(nobodyHolds("a"));
  });

  test("every other refused change keeps its sentence", async () => {
    await add([newTask("a")]);
    expect(await rejection(move("a", "pending"))).toEqual({
      code: "invalid_transition",
      message: "cannot change a from pending to pending",
    });
  });
});

describe("IDs", () => {
  test("allocations, reservations and imports share one counter", async () => {
    expect(await storage.allocateId("p", "US")).toBe(1);
    expect(await storage.allocateId("p", "US")).toBe(2);
    expect(await storage.allocateId("p", "SPEC")).toBe(1);
    const reservation = await storage.reserveIds({
      reservationId: "00000000-0000-4000-8000-000000000001",
      projectId: "p",
      artifactType: "US",
      count: 3,
      createdAt: now,
      expiresAt: new Date(now.getTime() + 1000),
    });
    expect(reservation).toEqual({
      reservationId: "00000000-0000-4000-8000-000000000001",
      projectId: "p",
      artifactType: "US",
      firstNumber: 3,
      count: 3,
      expiresAt: new Date(now.getTime() + 1000).toISOString(),
    });
    expect(await storage.getReservation(reservation.reservationId)).toEqual(reservation);
    expect(await storage.allocateId("p", "US")).toBe(6);
    expect(await storage.raiseIdCounter("p", "US", 27)).toBe(27);
    expect(await storage.raiseIdCounter("p", "US", 27)).toBe(27);
    expect(await rejection(storage.raiseIdCounter("p", "US", 26))).toEqual({
      code: "conflict",
      message: "Cannot lower the US counter of project p from 27 to 26",
    });
    expect(await storage.allocateId("p", "US")).toBe(28);
  });
});

describe("idempotency keys", () => {
  const base = { scope: "s", key: "k", fingerprint: "f", now, leaseMs: 1000, retentionMs: 10_000 };

  async function claim(overrides: Partial<typeof base> = {}): Promise<IdempotencyClaim> {
    const outcome = await storage.claimIdempotencyKey({ ...base, ...overrides });
    if (outcome.outcome !== "claimed") throw new Error(`expected a claim, got ${outcome.outcome}`);
    return outcome.claim;
  }

  test("a key is claimed once, replayed after its write, and refused for another request", async () => {
    const first = await claim();
    expect(await storage.claimIdempotencyKey(base)).toEqual({ outcome: "in_flight" });
    expect(await storage.claimIdempotencyKey({ ...base, fingerprint: "g" })).toEqual({ outcome: "mismatch" });
    await storage.allocateId("p", "US", { claim: first, respond: (n) => ({ status: 200, body: `{"n":${n}}` }) });
    expect(await storage.claimIdempotencyKey(base)).toEqual({
      outcome: "replay",
      response: { status: 200, body: '{"n":1}' },
    });
    expect(await storage.claimIdempotencyKey({ ...base, fingerprint: "g" })).toEqual({ outcome: "mismatch" });
    // Scoped per API key.
    await claim({ scope: "other" });
  });

  test("a write whose claim was taken over changes nothing", async () => {
    const stale = await claim();
    const later = new Date(now.getTime() + 2000); // past the lease: the first holder is presumed dead
    const fresh = await claim({ now: later });
    expect(stale.token).not.toBe(fresh.token);
    const write = storage.allocateId("p", "US", { claim: stale, respond: () => ({ status: 200, body: "{}" }) });
    expect((await rejection(write)).code).toBe("idempotency_in_flight");
    expect(await storage.allocateId("p", "US")).toBe(1);
  });

  test("a released key runs afresh; a 4xx is stored; old keys expire", async () => {
    const first = await claim();
    await storage.releaseIdempotencyKey(first);
    const second = await claim();
    await storage.saveIdempotentResponse(second, { status: 400, body: "{}" });
    expect(await storage.claimIdempotencyKey(base)).toEqual({
      outcome: "replay",
      response: { status: 400, body: "{}" },
    });
    await claim({ now: new Date(now.getTime() + 10_000) });
    expect(await storage.deleteIdempotencyKeysBefore(new Date(now.getTime() + 10_001))).toBe(1);
  });
});

test("ping fails once the storage is closed", async () => {
  await storage.ping();
  await storage.close();
  expect(storage.ping()).rejects.toThrow();
});

describe("task identity", () => {
  test("the same task ID may exist in two projects; a ref without project must not be ambiguous", async () => {
    await add([newTask("T-1", { project_id: "web" }), newTask("T-1", { project_id: "api", priority: "high" })]);
    expect((await storage.getTask(ref("T-1", "web")))?.priority).toBe("medium");
    expect((await storage.getTask(ref("T-1", "api")))?.priority).toBe("high");
    expect(await storage.getTask(ref("T-1", "docs"))).toBeNull();
    const ambiguous = {
      code: "ambiguous_task_id",
      message: "Task T-1 exists in projects api, web; pass ?project=<project_id>",
    };
    expect(await rejection(storage.getTask(ref("T-1")))).toEqual(ambiguous);
    expect(await rejection(move("T-1", "in_progress"))).toEqual(ambiguous);
    expect(await rejection(move("T-1", "in_progress", { ref: ref("T-1", "docs") }))).toEqual({
      code: "task_not_found",
      message: "Task not found: T-1 in project docs",
    });
    const claimed = await move("T-1", "in_progress", { ref: ref("T-1", "api") });
    expect([claimed.project_id, claimed.status]).toEqual(["api", "in_progress"]);
    expect((await storage.getTask(ref("T-1", "web")))?.status).toBe("pending");
  });

  test("a task that exists in its project is a conflict naming the project; in another project it is not", async () => {
    await add([newTask("T-1", { project_id: "web" })]);
    expect(await rejection(add([newTask("T-1", { project_id: "web" })]))).toEqual({
      code: "conflict",
      message: "Task already exists: T-1 in project web",
    });
    expect(await add([newTask("T-1", { project_id: "api" })])).toEqual(["T-1"]);
  });

  test("dependencies resolve inside the task's own project", async () => {
    await add([newTask("base", { project_id: "web" }), newTask("base", { project_id: "api" })]);
    await add([newTask("next", { project_id: "api", depends_on: ["base"] })]);
    await move("base", "in_progress", { ref: ref("base", "web") });
    await move("base", "completed", { ref: ref("base", "web") });
    // web's base is done, api's is not: api's next still waits.
    expect((await storage.findNextTask("api", "pending"))?.task_id).toBe("base");
    await move("base", "in_progress", { ref: ref("base", "api") });
    await move("base", "completed", { ref: ref("base", "api") });
    expect((await storage.findNextTask("api", "pending"))?.task_id).toBe("next");
  });
});

describe("batches", () => {
  test("a batch is all or nothing", async () => {
    await add([newTask("old")]);
    expect(await rejection(add([newTask("new"), newTask("old")]))).toEqual({
      code: "conflict",
      message: "Task already exists: old in project p",
    });
    expect(await rejection(add([newTask("new"), newTask("x", { depends_on: ["ghost"] })]))).toEqual({
      code: "validation_failed",
      message: "tasks[1].depends_on[0] names an unknown task: ghost",
    });
    expect(await rejection(add([newTask("y", { project_id: "q", depends_on: ["old"] })]))).toEqual({
      code: "validation_failed",
      message: "tasks[0].depends_on[0] names old of project p, not of q",
    });
    expect(await storage.getTask(ref("new"))).toBeNull();
  });

  test("a dependency completed before the batch does not block", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress");
    await move("a", "completed");
    await add([newTask("b", { depends_on: ["a"] })]);
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("b");
  });
  test("a task added as completed is stored completed and counts as a finished dependency", async () => {
    const later = new Date(now.getTime() + 5000);
    await add([newTask("done", { status: "completed", completion_notes: "imported" })], later, "importer");
    expect(await storage.getTask(ref("done"))).toMatchObject({
      status: "completed",
      completion_notes: "imported",
      started_at: later.toISOString(),
      completed_at: later.toISOString(),
      claimed_by: null,
      lease_expires_at: null,
    });
    await add([newTask("after", { depends_on: ["done"] })]);
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("after");
  });

  test("a completed task may depend only on completed tasks", async () => {
    await add([newTask("open")]);
    expect(await rejection(add([newTask("done", { status: "completed", depends_on: ["open"] })]))).toEqual({
      code: "validation_failed",
      message: "tasks[0].depends_on[0] names open, which is not completed: a completed task may depend only on completed tasks",
    });
    expect(await rejection(add([newTask("x"), newTask("y", { status: "completed", depends_on: ["x"] })]))).toEqual({
      code: "validation_failed",
      message: "tasks[1].depends_on[0] names x, which is not completed: a completed task may depend only on completed tasks",
    });
    expect(
      await add([newTask("d1", { status: "completed" }), newTask("d2", { status: "completed", depends_on: ["d1"] })]),
    ).toEqual(["d1", "d2"]);
  });
});

describe("tasks without an ID", () => {
  test("are named TASK-nnn from their project's counter, in batch order, between tasks that have IDs", async () => {
    expect(await storage.allocateId("p", "TASK")).toBe(1);
    const batch = [unnamedTask(), newTask("X-1"), unnamedTask({ project_id: "q" }), unnamedTask()];
    expect(await add(batch)).toEqual(["TASK-002", "X-1", "TASK-001", "TASK-003"]);
    expect(await storage.getTask(ref("TASK-003", "p"))).toMatchObject({ description: "An unnamed task", project_id: "p" });
    expect(await storage.allocateId("p", "TASK")).toBe(4);
    expect(await storage.allocateId("q", "TASK")).toBe(2);
  });

  test("a batch that fails takes no number", async () => {
    expect(await rejection(add([unnamedTask(), newTask("x", { depends_on: ["ghost"] })]))).toMatchObject({
      code: "validation_failed",
    });
    expect(await add([unnamedTask()])).toEqual(["TASK-001"]);
  });

  test("depends_on names only tasks known before the batch, and says so when it names an unnamed one", async () => {
    expect(await rejection(add([unnamedTask(), newTask("b", { depends_on: ["TASK-001"] })]))).toEqual({
      code: "validation_failed",
      message:
        "tasks[1].depends_on[0] names an unknown task: TASK-001 (depends_on names only tasks known before the batch; " +
        "tasks[0] and any other task sent without task_id get their IDs as the batch is added, so nothing can name them: " +
        "give such a task a task_id, or add it in an earlier batch)",
    });
    expect(await rejection(add([unnamedTask({ depends_on: ["ghost"] }), newTask("c", { project_id: "q" })]))).toEqual({
      code: "validation_failed",
      message: "tasks[0].depends_on[0] names an unknown task: ghost",
    });
    expect(await add([unnamedTask()])).toEqual(["TASK-001"]);
    expect(await add([unnamedTask({ depends_on: ["TASK-001"] })])).toEqual(["TASK-002"]);
    expect(await storage.getTask(ref("TASK-002"))).toMatchObject({ depends_on: ["TASK-001"] });
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("TASK-001");
  });

  test("an explicit ID of the registry's form is kept and raises its type's counter, so the next ID is past it", async () => {
    expect(await add([newTask("TASK-047")])).toEqual(["TASK-047"]);
    expect(await storage.allocateId("p", "TASK")).toBe(48);
    expect(await add([newTask("TASK-7"), newTask("TASK-0100", { project_id: "q" })])).toEqual(["TASK-7", "TASK-0100"]);
    expect(await storage.allocateId("p", "TASK")).toBe(49);
    expect(await storage.allocateId("q", "TASK")).toBe(101);
  });

  test("the batch's named IDs raise the counter before its unnamed tasks are numbered from it, wherever they stand", async () => {
    expect(await add([unnamedTask(), newTask("TASK-010"), unnamedTask()])).toEqual(["TASK-011", "TASK-010", "TASK-012"]);
    expect(await add([newTask("TASK-001"), unnamedTask()])).toEqual(["TASK-001", "TASK-013"]);
    expect(await storage.allocateId("p", "TASK")).toBe(14);
  });

  test("a lower ID never lowers a counter; other types raise their own; IDs of another form raise none", async () => {
    await storage.allocateId("p", "UX");
    await storage.raiseIdCounter("p", "TASK", 20);
    const batch = ["TASK-005", "UX-003", "UX-002", "md-3f2a", "Task-9", "TASK-000", "TASK-1000000000000"].map((id) =>
      newTask(id),
    );
    await add(batch);
    const { counters } = await storage.listRegistry("p", now);
    expect(counters).toEqual([
      { project_id: "p", artifact_type: "TASK", last_assigned_id: 20 },
      { project_id: "p", artifact_type: "UX", last_assigned_id: 3 },
    ]);
  });

  test("a failed batch raises no counter", async () => {
    await add([newTask("TASK-002")]);
    expect(await rejection(add([newTask("TASK-050"), newTask("TASK-002")]))).toMatchObject({ code: "conflict" });
    expect(await storage.allocateId("p", "TASK")).toBe(3);
  });

  test("a task named by hand before batches raised counters (a restored dump) is still a conflict saying what to do", async () => {
    const task = {
      ...newTask("TASK-001"),
      claimed_by: null,
      lease_expires_at: null,
      lease_seconds: null,
      lost_by: null,
      lost_at: null,
    };
    const times = { created_at: now.toISOString(), updated_at: now.toISOString(), started_at: null, completed_at: null };
    const lines = [
      { kind: "header", format: "task-tracking-dump", version: 1, schema_version: 2, created_at: now.toISOString() },
      { kind: "task", ...task, ...times },
      { kind: "end", counts: { tasks: 1, events: 0, counters: 0, reservations: 0 } },
    ];
    const text = new TextEncoder().encode(lines.map((line) => JSON.stringify(line)).join("\n") + "\n");
    await storage.restore(
      numberedLines(
        (async function* () {
          yield text;
        })(),
      ),
    );
    expect(await rejection(add([newTask("a"), unnamedTask()]))).toEqual({
      code: "conflict",
      message:
        "tasks[1] has no task_id and would be TASK-001, the next TASK ID of project p, but a task given that ID by hand " +
        "already exists: raise the counter past it (PUT /ids/registry/p/TASK) or give the task a task_id",
    });
    await storage.raiseIdCounter("p", "TASK", 1);
    expect(await add([unnamedTask()])).toEqual(["TASK-002"]);
  });

  test("8 concurrent batches and allocations interleaved never hand out one number twice", async () => {
    const batches = Array.from({ length: 8 }, () => add([unnamedTask(), newTask(crypto.randomUUID()), unnamedTask()]));
    const allocations = Array.from({ length: 8 }, () => storage.allocateId("p", "TASK"));
    const added = (await Promise.all(batches)).flat().filter((id) => id.startsWith("TASK-"));
    const allocated = (await Promise.all(allocations)).map((number) => `TASK-${String(number).padStart(3, "0")}`);
    const all = [...added, ...allocated].sort();
    expect(all).toEqual(Array.from({ length: 24 }, (_, i) => `TASK-${String(i + 1).padStart(3, "0")}`));
    for (const batch of await Promise.all(batches)) expect(Number(batch[2]!.slice(5))).toBe(Number(batch[0]!.slice(5)) + 1);
  });

  test("concurrent batches naming TASK-nnn, unnamed tasks and allocations never hand out one number twice", async () => {
    const named = (i: number) => `TASK-${100 * (i + 1)}`;
    const batches = Array.from({ length: 8 }, (_, i) => add([unnamedTask(), newTask(named(i)), unnamedTask()]));
    const allocations = Array.from({ length: 8 }, () => storage.allocateId("p", "TASK"));
    const added = await Promise.all(batches);
    const numbers = [
      ...added.flatMap((batch) => [batch[0]!, batch[2]!]).map((id) => Number(id.slice(5))),
      ...(await Promise.all(allocations)),
    ];
    expect(new Set(numbers).size).toBe(24);
    added.forEach((batch, i) => {
      expect(batch[1]).toBe(named(i));
      // Unnamed tasks come after their own batch's named one.
      expect(Number(batch[0]!.slice(5))).toBeGreaterThan(100 * (i + 1));
    });
    expect(await storage.allocateId("p", "TASK")).toBe(Math.max(...numbers, 800) + 1);
  });

  test("a batch replayed by its Idempotency-Key answers the same IDs and takes no number", async () => {
    const base = { scope: "s", key: "k", fingerprint: "f", now, leaseMs: 1000, retentionMs: 10_000 };
    const claimed = await storage.claimIdempotencyKey(base);
    if (claimed.outcome !== "claimed") throw new Error(`expected a claim, got ${claimed.outcome}`);
    const respond = (ids: string[]) => ({ status: 201, body: JSON.stringify({ task_ids: ids }) });
    expect(await storage.addTasks([unnamedTask(), unnamedTask()], now, null, { claim: claimed.claim, respond })).toEqual([
      "TASK-001",
      "TASK-002",
    ]);
    expect(await storage.claimIdempotencyKey(base)).toEqual({
      outcome: "replay",
      response: { status: 201, body: '{"task_ids":["TASK-001","TASK-002"]}' },
    });
    expect(await storage.allocateId("p", "TASK")).toBe(3);
  });
});

/** The events without their IDs (which only have to grow), for one toEqual on the whole history. */
async function history(taskRef: TaskRef) {
  const events = await storage.listTaskEvents(taskRef);
  const ids = events.map((event) => event.event_id);
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(new Set(ids).size).toBe(ids.length);
  return events.map(({ event_id: _, ...event }) => event);
}

function at(seconds: number): Date {
  return new Date(now.getTime() + seconds * 1000);
}

describe("history", () => {
  test("every change writes its event, oldest first, with the details of API.md", async () => {
    await add([newTask("a")], now, "planner");
    // The leases as the claims set them (PostgreSQL runs them by the database's clock).
    const leases: Array<string | null> = [];
    leases.push((await move("a", "in_progress", { leaseSeconds: 60, now: at(1) })).lease_expires_at);
    await move("a", "pending", { now: at(2) });
    leases.push((await move("a", "in_progress", { agentId: "agent-2", now: at(3) })).lease_expires_at);
    await move("a", "pending", { agentId: "board-alice", force: true, now: at(4) });
    leases.push((await move("a", "in_progress", { now: at(5) })).lease_expires_at);
    expect(leases.every((lease) => lease !== null)).toBe(true);
    await move("a", "completed", { completionNotes: "done", now: at(6) });
    const base = { project_id: "p", task_id: "a" };
    expect(await history(ref("a"))).toEqual([
      {
        ...base,
        type: "created",
        at: now.toISOString(),
        agent_id: "planner",
        key_name: null,
        from_status: null,
        to_status: "pending",
        details: { status: "pending" },
      },
      {
        ...base,
        type: "claimed",
        at: at(1).toISOString(),
        agent_id: "agent-1",
        key_name: null,
        from_status: "pending",
        to_status: "in_progress",
        details: { lease_expires_at: leases[0] },
      },
      {
        ...base,
        type: "released",
        at: at(2).toISOString(),
        agent_id: "agent-1",
        key_name: null,
        from_status: "in_progress",
        to_status: "pending",
        details: {},
      },
      {
        ...base,
        type: "claimed",
        at: at(3).toISOString(),
        agent_id: "agent-2",
        key_name: null,
        from_status: "pending",
        to_status: "in_progress",
        details: { lease_expires_at: leases[1] },
      },
      {
        ...base,
        type: "force_released",
        at: at(4).toISOString(),
        agent_id: "board-alice",
        key_name: null,
        from_status: "in_progress",
        to_status: "pending",
        details: { former_holder: "agent-2" },
      },
      {
        ...base,
        type: "claimed",
        at: at(5).toISOString(),
        agent_id: "agent-1",
        key_name: null,
        from_status: "pending",
        to_status: "in_progress",
        details: { lease_expires_at: leases[2] },
      },
      {
        ...base,
        type: "completed",
        at: at(6).toISOString(),
        agent_id: "agent-1",
        key_name: null,
        from_status: "in_progress",
        to_status: "completed",
        details: { completion_notes: "done" },
      },
    ]);
  });
});

describe("history of imports, failures and unknown tasks", () => {
  test("a task added as completed has one created event saying so", async () => {
    await add([newTask("a", { status: "completed" })]);
    expect(await history(ref("a"))).toEqual([
      {
        project_id: "p",
        task_id: "a",
        type: "created",
        at: now.toISOString(),
        agent_id: null,
        key_name: null,
        from_status: null,
        to_status: "completed",
        details: { status: "completed" },
      },
    ]);
  });

  test("a change that fails writes no event", async () => {
    await add([newTask("a"), newTask("b", { depends_on: ["a"] })]);
    await rejection(move("b", "in_progress"));
    await rejection(move("a", "completed"));
    await rejection(add([newTask("c"), newTask("a")]));
    expect((await history(ref("a"))).map((event) => event.type)).toEqual(["created"]);
    expect((await history(ref("b"))).map((event) => event.type)).toEqual(["created"]);
    expect(await storage.getTask(ref("c"))).toBeNull();
  });

  test("the history of an unknown or ambiguous task is an error like getTask's", async () => {
    expect(await rejection(storage.listTaskEvents(ref("ghost", "p")))).toEqual({
      code: "task_not_found",
      message: "Task not found: ghost in project p",
    });
    await add([newTask("t", { project_id: "x" }), newTask("t", { project_id: "y" })]);
    expect((await rejection(storage.listTaskEvents(ref("t")))).code).toBe("ambiguous_task_id");
    expect((await history(ref("t", "y"))).map((event) => event.project_id)).toEqual(["y"]);
  });
});

describe("subscribe", () => {
  test("a subscriber hears each committed change with the task after it, until it unsubscribes", async () => {
    const heard: TaskChange[] = [];
    const unsubscribe = storage.subscribe((change) => heard.push(change));
    await add([newTask("a"), newTask("b")], now, "planner");
    const claimed = await move("a", "in_progress");
    expect(heard.map((change) => [change.event.type, change.task.task_id, change.task.status])).toEqual([
      ["created", "a", "pending"],
      ["created", "b", "pending"],
      ["claimed", "a", "in_progress"],
    ]);
    // The claim's answer adds every note; the change carries the task object of a list.
    const { notes, ...claimedTask } = claimed;
    expect([heard[2]!.task, notes]).toEqual([claimedTask, []]);
    const events = await storage.listTaskEvents(ref("a"));
    expect(heard[2]!.event).toEqual(events[1]!);
    unsubscribe();
    await move("a", "completed");
    expect(heard).toHaveLength(3);
  });

  test("a write rolled back after its change is heard by nobody; a listener that throws harms nothing", async () => {
    const heard: string[] = [];
    storage.subscribe(() => {
      throw new Error("a broken listener");
    });
    storage.subscribe((change) => heard.push(`${change.event.type} ${change.task.task_id}`));
    await add([newTask("a"), newTask("b")]);
    // The claim is made, then its Idempotency-Key turns out to be another request's: all of it rolls back.
    const request = { scope: "s", key: "k", fingerprint: "f", now, leaseMs: 1000, retentionMs: 10_000 };
    const stale = await storage.claimIdempotencyKey(request);
    await storage.claimIdempotencyKey({ ...request, now: at(2) });
    if (stale.outcome !== "claimed") throw new Error("expected a claim");
    const respond = () => ({ status: 200, body: "{}" });
    const results = await Promise.allSettled([
      storage.changeTaskStatus(
        {
          ref: ref("a"),
          to: "in_progress",
          completionNotes: "",
          agentId: "agent-1",
          leaseSeconds: 60,
          force: false,
          now,
        },
        { claim: stale.claim, respond },
      ),
      move("b", "in_progress"),
    ]);
    expect(results.map((result) => result.status)).toEqual(["rejected", "fulfilled"]);
    expect(heard).toEqual(["created a", "created b", "claimed b"]);
    expect((await storage.getTask(ref("a")))?.status).toBe("pending");
    expect((await history(ref("a"))).map((event) => event.type)).toEqual(["created"]);
  });
});

/**
 * The lease tests that move the clock. SQLite runs leases by the `now` it is given; PostgreSQL by the
 * database's clock (storage.ts), which a test cannot move: there these are covered by postgres.test.ts.
 */
const leasesFollowTheGivenClock = (process.env.TRACKER_TEST_STORAGE ?? "sqlite") === "sqlite";

describe.skipIf(!leasesFollowTheGivenClock)("leases by the given clock", () => {
  test("a claim sets the lease; leaving in_progress clears it", async () => {
    await add([newTask("a")]);
    const claimed = await move("a", "in_progress", { leaseSeconds: 90 });
    expect([claimed.claimed_by, claimed.started_at, claimed.lease_expires_at]).toEqual([
      "agent-1",
      now.toISOString(),
      at(90).toISOString(),
    ]);
    const released = await move("a", "pending");
    expect([released.claimed_by, released.started_at, released.lease_expires_at]).toEqual([null, null, null]);
    await move("a", "in_progress");
    const done = await move("a", "completed");
    expect([done.claimed_by, done.lease_expires_at]).toEqual(["agent-1", null]);
  });

  test("the holder renews by the claim's own length or by the one it asks for, with no event", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { leaseSeconds: 30 });
    const renew = (seconds: number | null, when: Date) =>
      storage.renewLease({ ref: ref("a"), agentId: "agent-1", leaseSeconds: seconds, now: when });
    expect((await renew(null, at(20))).lease_expires_at).toBe(at(50).toISOString());
    expect((await renew(120, at(40))).lease_expires_at).toBe(at(160).toISOString());
    expect((await renew(null, at(100))).lease_expires_at).toBe(at(130).toISOString());
    expect((await history(ref("a"))).map((event) => event.type)).toEqual(["created", "claimed"]);
  });

  test("an expired lease makes the task pending again, recorded with its former holder, and next hands it out", async () => {
    await add([newTask("first", { priority: "high" }), newTask("second")]);
    await move("first", "in_progress", { leaseSeconds: 60 });
    await move("second", "in_progress", { agentId: "agent-2", leaseSeconds: 120 });
    expect(await storage.expireLeases(at(59))).toBe(0);
    expect(await storage.expireLeases(at(60))).toBe(1);
    expect(await storage.getTask(ref("first"))).toMatchObject({
      status: "pending",
      claimed_by: null,
      lease_expires_at: null,
      started_at: null,
      updated_at: at(60).toISOString(),
    });
    expect((await history(ref("first"))).at(-1)).toEqual({
      project_id: "p",
      task_id: "first",
      type: "claim_expired",
      at: at(60).toISOString(),
      agent_id: null,
      key_name: null,
      from_status: "in_progress",
      to_status: "pending",
      details: { former_holder: "agent-1", lease_expires_at: at(60).toISOString() },
    });
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("first");
    expect((await storage.getTask(ref("second")))?.status).toBe("in_progress");
    expect(await storage.expireLeases(at(600))).toBe(1);
  });
});

describe.skipIf(!leasesFollowTheGivenClock)("lost claims by the given clock", () => {
  test("a lost claim is its agent's under its key: the same agent ID under another key does not hear claim_lost", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { agentId: "agent-1", keyName: "alice", leaseSeconds: 60 });
    await storage.expireLeases(at(61));
    expect((await history(ref("a"))).at(-1)).toMatchObject({
      type: "claim_expired",
      key_name: null,
      details: { former_holder: "agent-1", former_holder_key: "alice" },
    });
    const bobs = { agentId: "agent-1", keyName: "bob" };
    // Not claim_lost: bob's agent of that ID never held it (the sentence tells of the lease, as to any agent of that ID).
    expect((await rejection(move("a", "completed", { ...bobs, now: at(62) }))).code).toBe("invalid_transition");
    await move("a", "in_progress", { ...bobs, now: at(63) });
    const alices = { ref: ref("a"), agentId: "agent-1", keyName: "alice", leaseSeconds: null, now: at(64) };
    const lost = await rejection(storage.renewLease(alices));
    expect(lost).toEqual({
      code: "claim_lost",
      message: `Your claim on a expired at ${at(60).toISOString()}; it is now claimed by key "bob" · agent "agent-1"`,
    });
  });

  test("a claim answers the task as stored after a lease that lapsed or was lost, by either way", async () => {
    await add([newTask("a"), newTask("c")]);
    const stored = async (taskId: string) => (await storage.getTask(ref(taskId)))!;
    await move("a", "in_progress", { agentId: "agent-2", now: at(4), leaseSeconds: 10 });
    // agent-2's lease ran out: the next claim first ends it, then claims, in one write.
    expect(await move("a", "in_progress", { agentId: "agent-3", now: at(20) })).toEqual(await stored("a"));
    await move("c", "in_progress", { leaseSeconds: 5, now: at(22) });
    await storage.expireLeases(at(30)); // c lost by agent-1, who claims it again
    expect(await storage.claimNextTask({ projectId: "p", agentId: "agent-1", leaseSeconds: 60, now: at(31) })).toEqual(
      await stored("c"),
    );
    // A claim under a key answers its key as stored too.
    await add([newTask("k")]);
    expect(await move("k", "in_progress", { agentId: "agent-4", keyName: "alice", now: at(32) })).toEqual(await stored("k"));
    expect((await stored("k")).claimed_by_key).toBe("alice");
  });

  test("the former holder of an expired lease gets claim_lost, whether the task is pending or held again", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { leaseSeconds: 60 });
    await storage.expireLeases(at(61));
    const lostPending = {
      code: "claim_lost",
      message: `Your claim on a expired at ${at(60).toISOString()}; it is pending again: claim it again to go on`,
    };
    expect(await rejection(move("a", "completed", { now: at(62) }))).toEqual(lostPending);
    expect(await rejection(move("a", "pending", { now: at(62) }))).toEqual(lostPending);
    expect(await rejection(storage.renewLease({ ref: ref("a"), agentId: "agent-1", leaseSeconds: null, now: at(62) }))).toEqual(
      lostPending,
    );
    await move("a", "in_progress", { agentId: "agent-2", now: at(63), leaseSeconds: 60 });
    expect(await rejection(move("a", "completed", { now: at(64) }))).toEqual({
      code: "claim_lost",
      message: `Your claim on a expired at ${at(60).toISOString()}; it is now claimed by agent "agent-2"`,
    });
    expect(await rejection(move("a", "completed", { agentId: "agent-3", now: at(64) }))).toEqual({
      code: "not_claim_holder",
      message: `a is claimed by agent "agent-2" until ${at(123).toISOString()}; only its holder can complete, release or renew it`,
    });
    // Claiming it again makes agent-1 a holder like any other.
    await storage.expireLeases(at(200));
    await move("a", "in_progress", { now: at(201) });
    expect((await move("a", "completed", { now: at(202) })).status).toBe("completed");
  });

  test("the former holder hears claim_lost with force and on a claim without a holder, until it claims again", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { leaseSeconds: 60 });
    await storage.expireLeases(at(61));
    await move("a", "in_progress", { agentId: null, now: at(62) });
    const lostToAnonymous = {
      code: "claim_lost",
      message: `Your claim on a expired at ${at(60).toISOString()}; it is now claimed by an agent that sent no X-Agent-Id`,
    };
    expect(await rejection(move("a", "completed", { now: at(63) }))).toEqual(lostToAnonymous);
    expect(await rejection(move("a", "pending", { force: true, now: at(63) }))).toEqual(lostToAnonymous);
    await move("a", "pending", { agentId: null, now: at(64) });
    await move("a", "in_progress", { now: at(65) });
    await move("a", "pending", { now: at(66) });
    await move("a", "in_progress", { agentId: "agent-2", now: at(67) });
    expect((await rejection(move("a", "completed", { now: at(68) }))).code).toBe("not_claim_holder");
  });

  test("completing a pending task whose lease ran out: its holder hears claim_lost; a holder without an ID, when", async () => {
    await add([newTask("a"), newTask("b")]);
    await move("a", "in_progress", { leaseSeconds: 60 });
    await move("b", "in_progress", { agentId: null, leaseSeconds: 60 });
    await storage.expireLeases(at(61));
    expect(await rejection(move("a", "completed", { now: at(62) }))).toEqual({
      code: "claim_lost",
      message: `Your claim on a expired at ${at(60).toISOString()}; it is pending again: claim it again to go on`,
    });
    expect(await rejection(move("b", "completed", { agentId: null, now: at(62) }))).toEqual({
      code: "invalid_transition",
      message: `cannot complete b: it is pending, its lease ran out at ${at(61).toISOString()}; take another task with get_next_task, or claim it again`,
    });
  });

  test("a lease that ran out before the expiry sweep still ends the claim of its holder", async () => {
    await add([newTask("a"), newTask("b")]);
    await move("a", "in_progress", { leaseSeconds: 60 });
    await move("b", "in_progress", { leaseSeconds: 60 });
    expect((await rejection(move("a", "completed", { now: at(61) }))).code).toBe("claim_lost");
    expect((await storage.getTask(ref("a")))?.status).toBe("in_progress"); // a refused change changes nothing
    // Another agent claims b after its lease ran out: one step expires the lease and claims it.
    const claimed = await move("b", "in_progress", { agentId: "agent-2", now: at(62) });
    expect(claimed.claimed_by).toBe("agent-2");
    expect((await history(ref("b"))).map((event) => [event.type, event.agent_id])).toEqual([
      ["created", null],
      ["claimed", "agent-1"],
      ["claim_expired", null],
      ["claimed", "agent-2"],
    ]);
  });
});

describe("holders", () => {
  test("only the holder moves a claim on or renews it; force releases it, recorded with who did it", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { agentId: "agent-1" });
    const notHolder = await rejection(move("a", "completed", { agentId: "agent-2" }));
    expect(notHolder.code).toBe("not_claim_holder");
    expect(notHolder.message).toStartWith('a is claimed by agent "agent-1" until ');
    expect((await rejection(move("a", "pending", { agentId: null }))).code).toBe("not_claim_holder");
    expect((await rejection(storage.renewLease({ ref: ref("a"), agentId: "agent-2", leaseSeconds: null, now }))).code).toBe(
      "not_claim_holder",
    );
    expect((await storage.getTask(ref("a")))?.claimed_by).toBe("agent-1");
    const released = await move("a", "pending", { agentId: "board-alice", force: true });
    expect([released.status, released.claimed_by]).toEqual(["pending", null]);
    expect((await history(ref("a"))).at(-1)).toMatchObject({
      type: "force_released",
      agent_id: "board-alice",
      details: { former_holder: "agent-1" },
    });
  });

  test("the holder's own release is a plain release, force or not", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress");
    await move("a", "pending", { force: true });
    expect((await history(ref("a"))).at(-1)).toMatchObject({ type: "released", agent_id: "agent-1", details: {} });
  });

  test("a claim made without an agent ID has no holder: anyone moves it on", async () => {
    await add([newTask("a"), newTask("b")]);
    expect((await move("a", "in_progress", { agentId: null })).claimed_by).toBeNull();
    expect((await storage.renewLease({ ref: ref("a"), agentId: "agent-9", leaseSeconds: 30, now })).status).toBe("in_progress");
    expect((await move("a", "completed", { agentId: "agent-2" })).status).toBe("completed");
    await move("b", "in_progress", { agentId: null });
    expect((await move("b", "pending", { agentId: null })).status).toBe("pending");
  });

  test("the holder is the key and the agent: the same agent ID under another key cannot complete, release, cancel or renew", async () => {
    await add([newTask("a"), newTask("b")], now, "planner", "alice");
    const claimed = await move("a", "in_progress", { agentId: "agent-1", keyName: "alice" });
    expect([claimed.claimed_by, claimed.claimed_by_key]).toEqual(["agent-1", "alice"]);
    const bobs = { agentId: "agent-1", keyName: "bob" };
    const refused = await rejection(move("a", "completed", bobs));
    expect(refused.code).toBe("not_claim_holder");
    expect(refused.message).toStartWith('a is claimed by key "alice" · agent "agent-1" until ');
    for (const to of ["pending", "cancelled"] as const) expect(await rejection(move("a", to, bobs))).toEqual(refused);
    expect(await rejection(storage.renewLease({ ref: ref("a"), ...bobs, leaseSeconds: null, now }))).toEqual(refused);
    expect(await storage.getTask(ref("a"))).toMatchObject({
      status: "in_progress",
      claimed_by: "agent-1",
      claimed_by_key: "alice",
    });
    const renewed = await storage.renewLease({
      ref: ref("a"),
      agentId: "agent-1",
      keyName: "alice",
      leaseSeconds: null,
      now: at(1),
    });
    expect(renewed.claimed_by_key).toBe("alice");
    const done = await move("a", "completed", { agentId: "agent-1", keyName: "alice", now: at(2) });
    expect([done.status, done.claimed_by, done.claimed_by_key]).toEqual(["completed", "agent-1", "alice"]);
    expect((await history(ref("a"))).map((event) => [event.type, event.agent_id, event.key_name])).toEqual([
      ["created", "planner", "alice"],
      ["claimed", "agent-1", "alice"],
      ["completed", "agent-1", "alice"],
    ]);
  });

  test("a person's forced release ends another key's claim, recording both keys; the key is cleared with the claim", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress", { agentId: "agent-1", keyName: "alice" });
    const released = await move("a", "pending", { agentId: "board-bob", keyName: "bob", force: true });
    expect([released.status, released.claimed_by, released.claimed_by_key]).toEqual(["pending", null, null]);
    expect((await history(ref("a"))).at(-1)).toMatchObject({
      type: "force_released",
      agent_id: "board-bob",
      key_name: "bob",
      details: { former_holder: "agent-1", former_holder_key: "alice" },
    });
    const next = await storage.claimNextTask({
      projectId: "p",
      agentId: "agent-2",
      keyName: "carol",
      leaseSeconds: 60,
      now: at(1),
    });
    expect([next?.claimed_by, next?.claimed_by_key]).toEqual(["agent-2", "carol"]);
    const cancelled = await move("a", "cancelled", { agentId: "board-bob", keyName: "bob", force: true, now: at(2) });
    expect([cancelled.status, cancelled.claimed_by_key]).toEqual(["cancelled", null]);
  });

  test("a claim made without an agent ID is bound to its key alone", async () => {
    await add([newTask("a")]);
    expect(await move("a", "in_progress", { agentId: null, keyName: "alice" })).toMatchObject({
      claimed_by: null,
      claimed_by_key: "alice",
    });
    const refused = await rejection(move("a", "completed", { agentId: null, keyName: "bob" }));
    expect(refused.code).toBe("not_claim_holder");
    expect(refused.message).toStartWith('a is claimed by key "alice" · an agent that sent no X-Agent-Id until ');
    expect((await move("a", "completed", { agentId: "agent-9", keyName: "alice" })).status).toBe("completed");
  });

  test("notes and edits record the key that made them", async () => {
    await add([newTask("a")]);
    await storage.addNote({ ref: ref("a"), text: "looked", agentId: "agent-1", keyName: "alice", now: at(1) });
    await storage.updateTask({ ref: ref("a"), priority: "high", agentId: "board-bob", keyName: "bob", now: at(2) });
    expect((await history(ref("a"))).map((event) => [event.type, event.key_name])).toEqual([
      ["created", null],
      ["noted", "alice"],
      ["updated", "bob"],
    ]);
  });

  test("renewing a task that is not in progress is invalid_transition", async () => {
    await add([newTask("a")]);
    expect(await rejection(storage.renewLease({ ref: ref("a"), agentId: "agent-1", leaseSeconds: null, now }))).toEqual({
      code: "invalid_transition",
      message: "cannot renew a: it is pending",
    });
    expect((await rejection(storage.renewLease({ ref: ref("ghost"), agentId: null, leaseSeconds: null, now }))).code).toBe(
      "task_not_found",
    );
  });
});

describe("updateTask", () => {
  const edit = (taskId: string, fields: { priority?: Priority; description?: string }, when = at(1)) =>
    storage.updateTask({ ref: ref(taskId), agentId: "board-alice", now: when, ...fields });

  test("changes priority and description, records what changed, and keeps the next-task order right", async () => {
    await add([newTask("a"), newTask("b"), newTask("c", { priority: "low" })]);
    const edited = await edit("c", { priority: "high", description: "Do c first" });
    expect(edited).toMatchObject({ priority: "high", description: "Do c first", updated_at: at(1).toISOString() });
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("c");
    await edit("c", { priority: "low" }, at(2));
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("a");
    expect((await history(ref("c"))).slice(1)).toEqual([
      {
        project_id: "p",
        task_id: "c",
        type: "updated",
        at: at(1).toISOString(),
        agent_id: "board-alice",
        key_name: null,
        from_status: null,
        to_status: null,
        details: { priority: { from: "low", to: "high" }, description: { from: "Do c", to: "Do c first" } },
      },
      {
        project_id: "p",
        task_id: "c",
        type: "updated",
        at: at(2).toISOString(),
        agent_id: "board-alice",
        key_name: null,
        from_status: null,
        to_status: null,
        details: { priority: { from: "high", to: "low" } },
      },
    ]);
  });

  test("an edit that changes nothing records nothing", async () => {
    await add([newTask("a")]);
    expect((await edit("a", { priority: "medium", description: "Do a" })).updated_at).toBe(now.toISOString());
    expect((await history(ref("a"))).map((event) => event.type)).toEqual(["created"]);
  });

  test("a task in progress may be edited, a completed one not", async () => {
    await add([newTask("a")]);
    await move("a", "in_progress");
    expect((await edit("a", { priority: "high" })).status).toBe("in_progress");
    await move("a", "completed");
    expect(await rejection(edit("a", { priority: "low" }))).toEqual({
      code: "invalid_transition",
      message: "cannot edit a: it is completed",
    });
    expect((await rejection(edit("ghost", { priority: "low" }))).code).toBe("task_not_found");
  });
});

describe("updateTask of depends_on", () => {
  const edit = (taskId: string, dependsOn: string[], when = at(1)) =>
    storage.updateTask({ ref: ref(taskId), agentId: "board-alice", now: when, depends_on: dependsOn });
  const counts = async () => (await storage.listProjects())[0];

  test("a dependency not completed blocks the task; removed, it no longer counts; none left, the task is ready", async () => {
    await add([newTask("a"), newTask("b"), newTask("c")]);
    expect((await edit("b", ["a", "c"])).depends_on).toEqual(["a", "c"]);
    expect(await listedIds({ ready: false })).toEqual(["b"]);
    expect(await listedIds({ ready: true })).toEqual(["a", "c"]);
    expect(await counts()).toMatchObject({ ready: 2, blocked: 1 });
    expect(await rejection(move("b", "in_progress"))).toEqual({
      code: "invalid_transition",
      message: "cannot change b from pending to in_progress: a, c are not completed",
    });
    await edit("b", ["c"], at(2));
    // a's completion no longer counts for b: its dependency row went with the edit.
    await move("a", "in_progress");
    await move("a", "completed");
    expect(await listedIds({ ready: false })).toEqual(["b"]);
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("c");
    await edit("b", [], at(3));
    expect((await storage.findNextTask("p", "pending"))?.task_id).toBe("b");
    expect(await counts()).toMatchObject({ ready: 2, blocked: 0, completed: 1 });
  });

  test("a dependency added by an edit readies the task when it completes", async () => {
    await add([newTask("a"), newTask("b")]);
    await edit("b", ["a"]);
    await move("a", "in_progress");
    await move("a", "completed");
    expect(await listedIds({ ready: true })).toEqual(["b"]);
    expect((await edit("b", ["a"], at(2))).updated_at).toBe(at(1).toISOString());
  });

  test("a cycle through stored tasks is refused with the batch's sentence, and nothing is written", async () => {
    await add([newTask("a"), newTask("b", { depends_on: ["a"] }), newTask("c", { depends_on: ["b"] })]);
    expect(await rejection(edit("a", ["c"]))).toEqual({
      code: "validation_failed",
      message: "depends_on forms a cycle: a -> c -> b -> a",
    });
    expect(await rejection(edit("a", ["a"]))).toEqual({ code: "validation_failed", message: "depends_on forms a cycle: a -> a" });
    expect(await storage.getTask(ref("a"))).toMatchObject({ depends_on: [], updated_at: now.toISOString() });
    expect((await history(ref("a"))).map((event) => event.type)).toEqual(["created"]);
    expect(await listedIds({ ready: true })).toEqual(["a"]);
  });

  test("unknown tasks are refused, named; a task of another project is unknown here", async () => {
    await add([newTask("a"), newTask("z", { project_id: "q" })]);
    expect(await rejection(edit("a", ["x", "z"]))).toEqual({
      code: "validation_failed",
      message: "depends_on names unknown tasks of project p: x, z",
    });
    expect((await storage.getTask(ref("a")))?.depends_on).toEqual([]);
  });

  test("the change is an event under its author, heard with the task after it", async () => {
    await add([newTask("a"), newTask("b", { depends_on: ["a"] }), newTask("c")]);
    const heard: TaskChange[] = [];
    storage.subscribe((change) => heard.push(change));
    const edited = await edit("b", ["c", "a"]);
    const events = await history(ref("b"));
    expect(events.at(-1)).toEqual({
      project_id: "p",
      task_id: "b",
      type: "updated",
      at: at(1).toISOString(),
      agent_id: "board-alice",
      key_name: null,
      from_status: null,
      to_status: null,
      details: { depends_on: { from: ["a"], to: ["c", "a"] } },
    });
    expect(heard.map((change) => change.task)).toEqual([edited]);
    expect(heard[0]!.event.details).toEqual({ depends_on: { from: ["a"], to: ["c", "a"] } });
  });

  test("a completed task is refused; a task in progress keeps its holder, and gains no dependency that is not completed", async () => {
    await add([newTask("a"), newTask("b"), newTask("done", { status: "completed" })]);
    await move("a", "in_progress");
    expect(await edit("a", ["done"])).toMatchObject({ status: "in_progress", claimed_by: "agent-1", depends_on: ["done"] });
    expect(await rejection(edit("a", ["done", "b"], at(2)))).toEqual({
      code: "invalid_transition",
      message:
        "cannot make a depend on b: a is in_progress and b is not completed; a task leaves pending only when every dependency is completed (release it first)",
    });
    expect((await storage.getTask(ref("a")))?.depends_on).toEqual(["done"]);
    expect(await rejection(edit("done", ["b"]))).toEqual({
      code: "invalid_transition",
      message: "cannot edit done: it is completed",
    });
  });
});

// The listing tests' queries and tasks.
const listQuery = (extra: Partial<TaskListQuery> = {}): TaskListQuery => ({
  projectId: "p",
  status: null,
  ready: null,
  claimedBy: null,
  limit: 100,
  cursor: null,
  ...extra,
});
const listedIds = async (extra: Partial<TaskListQuery> = {}) =>
  (await storage.listTasks(listQuery(extra))).tasks.map((task) => task.task_id);

/** Every page of a query, following next_cursor. */
async function allPages(extra: Partial<TaskListQuery>): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const page: TaskPage = await storage.listTasks(listQuery({ ...extra, cursor }));
    pages.push(page.tasks.map((task) => task.task_id));
    cursor = page.nextCursor;
  } while (cursor !== null);
  return pages;
}

/** ready: r-high, r-med, r-low; blocked: b-high, b-low; in progress: w-1 (older), w-2; completed: d-1, d-2 (newer). */
async function addMixedProject(): Promise<void> {
  await add([
    newTask("d-1"),
    newTask("d-2"),
    newTask("w-1"),
    newTask("w-2"),
    newTask("r-low", { priority: "low" }),
    newTask("b-low", { priority: "low", depends_on: ["w-1"] }),
    newTask("r-med"),
    newTask("b-high", { priority: "high", depends_on: ["w-2"] }),
    newTask("r-high", { priority: "high" }),
  ]);
  await add([newTask("elsewhere", { project_id: "q" })]);
  await move("d-2", "in_progress", { now: at(1) });
  await move("d-1", "in_progress", { now: at(2) });
  await move("d-2", "completed", { now: at(3) });
  await move("d-1", "completed", { now: at(4) });
  await move("w-2", "in_progress", { now: at(6), agentId: "agent-2" });
  await move("w-1", "in_progress", { now: at(5) });
}

const fullOrder = ["r-high", "r-med", "r-low", "b-high", "b-low", "w-1", "w-2", "d-1", "d-2"];

describe("listTasks", () => {
  test("lists in API.md's order: ready, blocked, in progress by claim, completed newest first", async () => {
    await addMixedProject();
    expect(await storage.listTasks(listQuery())).toMatchObject({ nextCursor: null });
    expect(await listedIds()).toEqual(fullOrder);
    expect(await listedIds({ projectId: "q" })).toEqual(["elsewhere"]);
    // Without a project the same order runs across projects: elsewhere is a medium ready task added last.
    expect(await listedIds({ projectId: null })).toEqual([
      "r-high",
      "r-med",
      "elsewhere",
      "r-low",
      "b-high",
      "b-low",
      "w-1",
      "w-2",
      "d-1",
      "d-2",
    ]);
  });

  test("filters by status, readiness and holder", async () => {
    await addMixedProject();
    expect(await listedIds({ status: "pending" })).toEqual(["r-high", "r-med", "r-low", "b-high", "b-low"]);
    expect(await listedIds({ ready: true })).toEqual(["r-high", "r-med", "r-low"]);
    expect(await listedIds({ ready: false })).toEqual(["b-high", "b-low"]);
    expect(await listedIds({ status: "in_progress" })).toEqual(["w-1", "w-2"]);
    expect(await listedIds({ status: "completed" })).toEqual(["d-1", "d-2"]);
    expect(await listedIds({ claimedBy: "agent-1" })).toEqual(["w-1", "d-1", "d-2"]);
    expect(await listedIds({ claimedBy: "agent-2", projectId: null })).toEqual(["w-2"]);
    expect(await listedIds({ claimedBy: "agent-1", status: "completed" })).toEqual(["d-1", "d-2"]);
    expect(await listedIds({ status: "completed", ready: true })).toEqual([]);
  });

  test("pages follow each other without a gap or a repeat, across the parts of the order", async () => {
    await addMixedProject();
    for (const limit of [1, 2, 4, 8, 9]) {
      const pages = await allPages({ limit });
      expect(pages.flat()).toEqual(fullOrder);
      expect(pages.every((page) => page.length === limit || page === pages.at(-1))).toBe(true);
    }
    expect(await allPages({ limit: 2, claimedBy: "agent-1" })).toEqual([["w-1", "d-1"], ["d-2"]]);
    expect(await allPages({ limit: 3, ready: true })).toEqual([["r-high", "r-med", "r-low"]]);
  });

  test("a page ends exactly at the last task: no cursor to an empty page", async () => {
    await add([newTask("a"), newTask("b")]);
    expect((await storage.listTasks(listQuery({ limit: 2 }))).nextCursor).toBeNull();
    const first = await storage.listTasks(listQuery({ limit: 1 }));
    expect(first.nextCursor).not.toBeNull();
  });

  test("a cursor is refused for other filters, and a malformed one names cursor", async () => {
    await addMixedProject();
    const { nextCursor } = await storage.listTasks(listQuery({ limit: 2 }));
    expect(nextCursor).not.toBeNull();
    const otherFilters = await rejection(storage.listTasks(listQuery({ limit: 2, status: "pending", cursor: nextCursor })));
    expect(otherFilters.code).toBe("validation_failed");
    expect(otherFilters.message).toStartWith("cursor ");
    // The page size may change between pages.
    expect((await storage.listTasks(listQuery({ limit: 3, cursor: nextCursor }))).tasks.map((task) => task.task_id)).toEqual([
      "r-low",
      "b-high",
      "b-low",
    ]);
    for (const cursor of ["garbage", "", Buffer.from('{"part":"ready","key":"x","seq":1}').toString("base64url")]) {
      const refused = await rejection(storage.listTasks(listQuery({ cursor })));
      expect(refused.code).toBe("validation_failed");
      expect(refused.message).toStartWith("cursor ");
    }
  });
});

describe("listProjects", () => {
  test("every project with a task or an ID counter, by project_id, with its counts and last change", async () => {
    await add([
      newTask("a", { project_id: "web" }),
      newTask("b", { project_id: "web", depends_on: ["a"] }),
      newTask("c", { project_id: "web" }),
    ]);
    await add([newTask("x", { project_id: "api", status: "completed" })], at(1));
    await storage.allocateId("docs", "US");
    await storage.allocateId("web", "US");
    await move("a", "in_progress", { now: at(5) });
    await move("a", "completed", { now: at(6) });
    await move("c", "in_progress", { now: at(7) });
    expect(await storage.listProjects()).toEqual([
      {
        project_id: "api",
        ready: 0,
        blocked: 0,
        in_progress: 0,
        completed: 1,
        cancelled: 0,
        last_change_at: at(1).toISOString(),
      },
      { project_id: "docs", ready: 0, blocked: 0, in_progress: 0, completed: 0, cancelled: 0, last_change_at: null },
      {
        project_id: "web",
        ready: 1,
        blocked: 0,
        in_progress: 1,
        completed: 1,
        cancelled: 0,
        last_change_at: at(7).toISOString(),
      },
    ]);
  });

  test("counts follow releases, expiries and blocked tasks", async () => {
    await add([newTask("a"), newTask("b", { depends_on: ["a"] }), newTask("c", { depends_on: ["a"] })]);
    expect(await storage.listProjects()).toEqual([
      { project_id: "p", ready: 1, blocked: 2, in_progress: 0, completed: 0, cancelled: 0, last_change_at: now.toISOString() },
    ]);
    await move("a", "in_progress", { now: at(1) });
    await move("a", "pending", { now: at(2) });
    expect((await storage.listProjects())[0]).toMatchObject({ ready: 1, blocked: 2, in_progress: 0 });
    expect(await storage.listProjects()).toHaveLength(1);
  });

  test("claims in progress count, and their time is the last change, through every way a claim ends", async () => {
    await add([newTask("a"), newTask("b"), newTask("c"), newTask("d"), newTask("e", { depends_on: ["a"] })]);
    await storage.claimNextTask({ projectId: "p", agentId: "agent-1", leaseSeconds: 60, now: at(1) }); // a
    await move("b", "in_progress", { now: at(2) });
    await move("c", "in_progress", { now: at(3) });
    await move("d", "in_progress", { now: at(4) });
    expect(await storage.listProjects()).toEqual([
      { project_id: "p", ready: 0, blocked: 1, in_progress: 4, completed: 0, cancelled: 0, last_change_at: at(4).toISOString() },
    ]);
    await move("a", "completed", { now: at(5) }); // e is ready now
    await move("c", "cancelled", { now: at(6), force: true });
    await move("b", "pending", { agentId: "agent-9", force: true, now: at(8) });
    expect((await storage.listProjects())[0]).toMatchObject({ ready: 2, blocked: 0, in_progress: 1, completed: 1, cancelled: 1 });
    await move("d", "pending", { now: at(9) });
    await move("e", "in_progress", { now: at(10) });
    expect(await storage.listProjects()).toEqual([
      { project_id: "p", ready: 2, blocked: 0, in_progress: 1, completed: 1, cancelled: 1, last_change_at: at(10).toISOString() },
    ]);
  });
});

describe("listRegistry", () => {
  test("the counters of a project or of all, and the reservations not yet expired", async () => {
    await storage.allocateId("web", "US");
    await storage.allocateId("web", "SPEC");
    await storage.allocateId("api", "US");
    const reserve = (id: string, projectId: string, expiresInSeconds: number) =>
      storage.reserveIds({
        reservationId: id,
        projectId,
        artifactType: "US",
        count: 2,
        createdAt: now,
        expiresAt: at(expiresInSeconds),
      });
    const expired = await reserve("00000000-0000-4000-8000-000000000001", "web", 10);
    const active = await reserve("00000000-0000-4000-8000-000000000002", "web", 100);
    const otherProject = await reserve("00000000-0000-4000-8000-000000000003", "api", 100);
    expect(await storage.listRegistry("web", at(50))).toEqual({
      counters: [
        { project_id: "web", artifact_type: "SPEC", last_assigned_id: 1 },
        { project_id: "web", artifact_type: "US", last_assigned_id: 5 },
      ],
      reservations: [active],
    });
    expect(await storage.listRegistry(null, at(5))).toEqual({
      counters: [
        { project_id: "api", artifact_type: "US", last_assigned_id: 3 },
        { project_id: "web", artifact_type: "SPEC", last_assigned_id: 1 },
        { project_id: "web", artifact_type: "US", last_assigned_id: 5 },
      ],
      reservations: [expired, active, otherProject],
    });
    expect(await storage.listRegistry("nobody", now)).toEqual({ counters: [], reservations: [] });
  });
});
