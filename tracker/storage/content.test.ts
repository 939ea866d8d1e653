// The Storage contract of a task's content (issue 21): labels, parents, acceptance criteria, notes,
// cancel and reopen, and the gates they set; run against the storage TRACKER_TEST_STORAGE chooses.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  ApiError,
  SEARCH_RANKED_MATCHES,
  type StatusChange,
  type TaskListQuery,
  type TaskRef,
  type TaskStatus,
} from "../domain.ts";
import { makeStorage, newTask, type TestStorage } from "../testing.ts";
import type { Storage } from "./storage.ts";

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

function at(seconds: number): Date {
  return new Date(now.getTime() + seconds * 1000);
}

function ref(taskId: string): TaskRef {
  return { projectId: "p", taskId };
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("expected a rejection");
}

function move(taskId: string, to: TaskStatus, extra: Partial<StatusChange> = {}) {
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

function edit(taskId: string, changes: Record<string, unknown>, agentId: string | null = "alice") {
  return storage.updateTask({ ref: ref(taskId), ...changes, agentId, now: at(5) });
}

async function list(query: Partial<TaskListQuery>): Promise<string[]> {
  const page = await storage.listTasks({
    projectId: "p",
    status: null,
    ready: null,
    claimedBy: null,
    limit: 100,
    cursor: null,
    ...query,
  });
  return page.tasks.map((task) => task.task_id);
}

async function nextId(agentId: string | null = null): Promise<string | undefined> {
  return (await storage.findNextTask("p", "pending", agentId))?.task_id;
}

const criteria = (...states: boolean[]) => states.map((done, i) => ({ text: `criterion ${i + 1}`, done }));

describe("a task's content", () => {
  test("labels, parent, criteria and notes are stored, read back, and counted on the parent", async () => {
    await storage.addTasks(
      [
        newTask("E", { labels: ["backend", "bug"] }),
        newTask("C-1", {
          parent_id: "E",
          acceptance_criteria: criteria(true, false),
          notes: [
            { text: "first", by: "importer", at: "2026-11-01T10:00:00.000Z" },
            { text: "second", by: null, at: null },
          ],
        }),
        newTask("C-2", { parent_id: "E", status: "completed" }),
      ],
      now,
      "planner",
    );
    expect(await storage.getTask(ref("E"))).toMatchObject({
      labels: ["backend", "bug"],
      parent_id: null,
      children: { total: 2, done: 1 },
      notes_count: 0,
      last_note: null,
      notes: [],
    });
    const child = await storage.getTask(ref("C-1"));
    expect(child).toMatchObject({
      parent_id: "E",
      acceptance_criteria: criteria(true, false),
      notes_count: 2,
      last_note: { at: now.toISOString(), by: "planner", text: "second" },
      notes: [
        { at: "2026-11-01T10:00:00.000Z", by: "importer", text: "first" },
        { at: now.toISOString(), by: "planner", text: "second" },
      ],
    });
    // A list page carries the count and the last note, not every note.
    const [listed] = (
      await storage.listTasks({
        projectId: "p",
        status: null,
        ready: null,
        claimedBy: null,
        limit: 100,
        cursor: null,
        parent: "E",
      })
    ).tasks;
    expect(listed).toMatchObject({ task_id: "C-1", notes_count: 2 });
    expect(listed).not.toHaveProperty("notes");
  });

  test("a parent must exist in the task's project, and a completed one takes no open child", async () => {
    await storage.addTasks([newTask("DONE", { status: "completed" }), newTask("X", { project_id: "other" })], now, null);
    expect(await rejection(storage.addTasks([newTask("A", { parent_id: "NOPE" })], now, null))).toEqual({
      code: "validation_failed",
      message: "tasks[0].parent_id names an unknown task: NOPE",
    });
    expect(await rejection(storage.addTasks([newTask("A", { parent_id: "X" })], now, null))).toEqual({
      code: "validation_failed",
      message: "tasks[0].parent_id names X of project other, not of p",
    });
    expect((await rejection(storage.addTasks([newTask("A", { parent_id: "DONE" })], now, null))).message).toBe(
      "tasks[0].parent_id names DONE, which is completed: an open task cannot be its child (reopen DONE first)",
    );
    await storage.addTasks([newTask("A", { parent_id: "DONE", status: "cancelled" })], now, null);
    expect(await storage.getTask(ref("DONE"))).toMatchObject({ children: { total: 1, done: 1 } });
  });
});

describe("done means done", () => {
  test("a task completes only once every criterion is ticked off", async () => {
    await storage.addTasks([newTask("T", { acceptance_criteria: criteria(true, false, true, false) })], now, null);
    await move("T", "in_progress");
    expect(await rejection(move("T", "completed"))).toEqual({
      code: "criteria_open",
      message:
        'cannot complete T: acceptance criteria still open: 2. "criterion 2", 4. "criterion 4"; tick them off first (update_task with check: [2, 4])',
    });
    expect(await rejection(edit("T", { check: [2, 5] }))).toEqual({
      code: "validation_failed",
      message: "check names criterion 5, but T has 4",
    });
    const ticked = await edit("T", { check: [2, 4], uncheck: [1] });
    expect(ticked.acceptance_criteria).toEqual(criteria(false, true, true, true));
    await edit("T", { check: [1] });
    expect((await move("T", "completed")).status).toBe("completed");
    const events = await storage.listTaskEvents(ref("T"));
    expect(events.filter((event) => event.type === "updated").map((event) => [event.agent_id, event.details])).toEqual([
      ["alice", { acceptance_criteria: { from: criteria(true, false, true, false), to: criteria(false, true, true, true) } }],
      ["alice", { acceptance_criteria: { from: criteria(false, true, true, true), to: criteria(true, true, true, true) } }],
    ]);
  });

  test("a parent with an open child is not ready, cannot be claimed or completed, and is ready once they are done", async () => {
    await storage.addTasks([newTask("E", { priority: "high" }), newTask("C-1", { parent_id: "E" })], now, null);
    await storage.addTasks([newTask("C-2", { parent_id: "E" })], now, null);
    expect(await nextId()).toBe("C-1");
    expect(await list({ ready: false, status: "pending" })).toEqual(["E"]);
    expect(await rejection(move("E", "in_progress"))).toEqual({
      code: "children_open",
      message: "cannot claim E: its children are not done: C-1 (pending), C-2 (pending)",
    });
    expect((await storage.listProjects())[0]).toMatchObject({ ready: 2, blocked: 1 });
    await move("C-1", "in_progress");
    await move("C-2", "cancelled", { completionNotes: "not needed" });
    expect(await list({ ready: true })).toEqual([]);
    await move("C-1", "completed");
    expect(await nextId()).toBe("E");
    expect(await storage.getTask(ref("E"))).toMatchObject({ children: { total: 2, done: 2 } });
    await move("E", "in_progress");
    // A child added to a parent in progress gates its completion.
    await storage.addTasks([newTask("C-3", { parent_id: "E" })], now, null);
    expect(await rejection(move("E", "completed"))).toEqual({
      code: "children_open",
      message: "cannot complete E: its children are not done: C-3 (pending)",
    });
    await move("C-3", "in_progress");
    await move("C-3", "completed");
    expect((await move("E", "completed")).status).toBe("completed");
    expect(await rejection(move("C-3", "pending"))).toEqual({
      code: "invalid_transition",
      message: "cannot change C-3 from completed to pending: its parent E is completed; reopen E first",
    });
  });
});

describe("cancel and reopen", () => {
  test("a cancelled task is never handed out and frees its dependents; reopened, they wait again", async () => {
    await storage.addTasks([newTask("A"), newTask("B", { depends_on: ["A"] })], now, null);
    const cancelled = await move("A", "cancelled", { completionNotes: "duplicate of X", agentId: "bob", now: at(1) });
    expect(cancelled).toMatchObject({
      status: "cancelled",
      completed_at: at(1).toISOString(),
      claimed_by: null,
      notes_count: 1,
      last_note: { at: at(1).toISOString(), by: "bob", text: "duplicate of X" },
    });
    expect(await nextId()).toBe("B");
    expect(await list({ status: "cancelled" })).toEqual(["A"]);
    expect((await storage.listProjects())[0]).toMatchObject({ ready: 1, blocked: 0, cancelled: 1 });
    const reopened = await move("A", "pending", { agentId: "bob", now: at(2) });
    expect(reopened).toMatchObject({ status: "pending", completed_at: null });
    expect(await list({ ready: false, status: "pending" })).toEqual(["B"]);
    expect(await nextId()).toBe("A");
    const events = await storage.listTaskEvents(ref("A"));
    expect(events.slice(1).map((event) => [event.type, event.from_status, event.to_status, event.details])).toEqual([
      ["cancelled", "pending", "cancelled", { reason: "duplicate of X" }],
      ["reopened", "cancelled", "pending", { from_status: "cancelled" }],
    ]);
  });

  test("a claim waiting for dependencies names only those not finished", async () => {
    await storage.addTasks([newTask("A"), newTask("B"), newTask("D", { depends_on: ["A", "B"] })], now, null);
    await move("A", "cancelled");
    expect(await rejection(move("D", "in_progress"))).toEqual({
      code: "invalid_transition",
      message: "cannot change D from pending to in_progress: B is not completed",
    });
  });

  test("a task in progress is cancelled by its holder, or by another with force", async () => {
    await storage.addTasks([newTask("A")], now, null);
    await move("A", "in_progress", { agentId: "agent-1" });
    expect((await rejection(move("A", "cancelled", { agentId: "agent-2" }))).code).toBe("not_claim_holder");
    const cancelled = await move("A", "cancelled", { agentId: "agent-2", force: true });
    expect(cancelled.status).toBe("cancelled");
    const [, , event] = await storage.listTaskEvents(ref("A"));
    expect([event?.type, event?.details]).toEqual(["cancelled", { former_holder: "agent-1" }]);
    expect(await rejection(move("A", "in_progress"))).toEqual({
      code: "invalid_transition",
      message: "cannot change A from cancelled to in_progress",
    });
    expect(await rejection(edit("A", { priority: "high" }))).toEqual({
      code: "invalid_transition",
      message: "cannot edit A: it is cancelled",
    });
  });

  test("a completed task reopens: its pending dependents wait for it again", async () => {
    await storage.addTasks([newTask("A"), newTask("B", { depends_on: ["A"] })], now, null);
    await move("A", "in_progress");
    await move("A", "completed", { completionNotes: "done" });
    expect(await nextId()).toBe("B");
    await move("A", "pending");
    expect(await nextId()).toBe("A");
    await move("A", "in_progress");
    await move("A", "completed");
    expect(await nextId()).toBe("B");
  });
});

describe("releases and notes", () => {
  test("a release's reason is a note; the releasing agent gets the task back only when no other is ready", async () => {
    await storage.addTasks([newTask("A", { priority: "high" }), newTask("B")], now, null);
    await move("A", "in_progress", { agentId: "agent-1" });
    const released = await move("A", "pending", { agentId: "agent-1", completionNotes: "tried X, Y is left", now: at(1) });
    expect(released).toMatchObject({ released_by: "agent-1", notes_count: 1, last_note: { text: "tried X, Y is left" } });
    expect((await storage.listTaskEvents(ref("A"))).at(-1)?.details).toEqual({ reason: "tried X, Y is left" });
    expect(await nextId("agent-1")).toBe("B");
    expect(await nextId("agent-2")).toBe("A");
    expect(await nextId()).toBe("A");
    // POST /tasks/claim picks as GET /tasks/next does: the releaser's claim takes B, the release stays.
    const claimedByReleaser = await storage.claimNextTask({ projectId: "p", agentId: "agent-1", leaseSeconds: 60, now: at(2) });
    expect(claimedByReleaser).toMatchObject({ task_id: "B", claimed_by: "agent-1" });
    await move("B", "pending", { agentId: "agent-1", now: at(2) });
    // The next claim clears released_by, and its answer carries every note.
    const claimed = await move("A", "in_progress", { agentId: "agent-2" });
    expect(claimed).toMatchObject({
      released_by: null,
      notes: [{ at: at(1).toISOString(), by: "agent-1", text: "tried X, Y is left" }],
    });
    await move("B", "in_progress", { agentId: "agent-1" });
    await move("B", "pending", { agentId: "agent-1" });
    // Alone in the ready part, the agent's own release is handed back to it.
    expect(await nextId("agent-1")).toBe("B");
    // A forced release sets no released_by.
    await move("B", "in_progress", { agentId: "agent-1" });
    expect((await move("B", "pending", { agentId: "board", force: true })).released_by).toBeNull();
  });

  test("any caller notes any task in any status; the note is in the task and its history", async () => {
    await storage.addTasks([newTask("A", { status: "completed" })], now, null);
    const added = await storage.addNote({ ref: ref("A"), text: "careful: flaky test", agentId: "dana", now: at(3) });
    expect(added.note).toEqual({ at: at(3).toISOString(), by: "dana", text: "careful: flaky test" });
    expect(added.task).toMatchObject({ notes_count: 1, last_note: added.note, updated_at: at(3).toISOString() });
    await storage.addNote({ ref: ref("A"), text: "second", agentId: null, now: at(4) });
    expect((await storage.getTask(ref("A")))?.notes).toEqual([added.note, { at: at(4).toISOString(), by: null, text: "second" }]);
    const noted = (await storage.listTaskEvents(ref("A"))).at(-1);
    expect([noted?.type, noted?.agent_id, noted?.from_status, noted?.to_status, noted?.details]).toEqual([
      "noted",
      null,
      null,
      null,
      {},
    ]);
    expect((await rejection(storage.addNote({ ref: ref("NOPE"), text: "x", agentId: null, now }))).code).toBe("task_not_found");
  });
});

describe("an edit of labels and parent", () => {
  test("labels replace the set; parent_id moves a child between parents, never into a cycle", async () => {
    await storage.addTasks([newTask("E-1"), newTask("E-2", { parent_id: "E-1" }), newTask("T")], now, null);
    const edited = await edit("T", { labels: ["ui"], parent_id: "E-2" });
    expect(edited).toMatchObject({ labels: ["ui"], parent_id: "E-2" });
    expect((await storage.getTask(ref("E-2")))?.children).toEqual({ total: 1, done: 0 });
    expect(await rejection(edit("E-1", { parent_id: "T" }))).toEqual({
      code: "validation_failed",
      message: "parent_id forms a cycle: E-1 -> T -> E-2 -> E-1",
    });
    expect(await rejection(edit("T", { parent_id: "NOPE" }))).toEqual({
      code: "validation_failed",
      message: "parent_id names an unknown task of project p: NOPE",
    });
    await edit("T", { parent_id: null });
    expect((await storage.getTask(ref("E-2")))?.children).toEqual({ total: 0, done: 0 });
    expect(await list({ labels: ["ui"] })).toEqual(["T"]);
    expect(await list({ parent: "E-1" })).toEqual(["E-2"]);
    const [, , updated] = await storage.listTaskEvents(ref("T"));
    expect(updated?.details).toEqual({ parent_id: { from: "E-2", to: null } });
  });
});

describe("search (GET /tasks?q=)", () => {
  async function search(q: string, extra: Partial<TaskListQuery> = {}) {
    return storage.listTasks({
      projectId: "p",
      status: null,
      ready: null,
      claimedBy: null,
      limit: 100,
      cursor: null,
      q,
      ...extra,
    });
  }
  const ids = async (q: string, extra: Partial<TaskListQuery> = {}) => (await search(q, extra)).tasks.map((task) => task.task_id);

  test("finds every word as a prefix in descriptions, criteria and notes, best match first, with a snippet", async () => {
    await storage.addTasks(
      [
        newTask("D", { description: "Build the login form for the shop" }),
        newTask("C", { description: "Polish the shop", acceptance_criteria: [{ text: "LOGIN works on a phone", done: false }] }),
        newTask("N", { description: "Unrelated chore" }),
        newTask("X", { description: "Login login login: the login page, login everywhere" }),
        newTask("Y", { description: "Something else", project_id: "other" }),
      ],
      now,
      null,
    );
    await storage.addNote({ ref: ref("N"), text: "the zebra-login bug is back", agentId: "dana", now });
    const found = await search("log");
    expect(new Set(found.tasks.map((task) => task.task_id))).toEqual(new Set(["X", "D", "C", "N"]));
    expect(found.tasks[0]?.task_id).toBe("X");
    expect(found.tasks.find((task) => task.task_id === "D")?.match?.snippet).toContain("[login]");
    expect(found.tasks.find((task) => task.task_id === "C")?.match?.snippet).toContain("[LOGIN]");
    expect(found.tasks.find((task) => task.task_id === "N")?.match?.snippet).toContain("[login]");
    for (const task of found.tasks) expect(task.match!.snippet.length).toBeLessThanOrEqual(160);
    // Every word must match; punctuation is not syntax; case does not matter.
    expect(await ids('LOGIN "form" -shop')).toEqual(["D"]);
    expect(await ids("zebra")).toEqual(["N"]);
    expect(await ids("nothing-like-it")).toEqual([]);
    expect(await ids("login", { status: "pending", ready: true })).toHaveLength(4);
  });

  test("pages with next_cursor, and filters by label and parent", async () => {
    await storage.addTasks(
      Array.from({ length: 5 }, (_, i) =>
        newTask(`T-${i}`, {
          description: `alpha task ${i}`,
          labels: i % 2 === 0 ? ["even"] : [],
          parent_id: i === 0 ? null : "T-0",
        }),
      ),
      now,
      null,
    );
    const first = await search("alpha", { limit: 2 });
    expect(first.tasks).toHaveLength(2);
    const second = await search("alpha", { limit: 2, cursor: first.nextCursor });
    const third = await search("alpha", { limit: 2, cursor: second.nextCursor });
    expect(third.nextCursor).toBeNull();
    const all = [...first.tasks, ...second.tasks, ...third.tasks].map((task) => task.task_id);
    expect(new Set(all)).toEqual(new Set(["T-0", "T-1", "T-2", "T-3", "T-4"]));
    expect(await rejection(search("beta", { cursor: first.nextCursor }))).toMatchObject({ code: "validation_failed" });
    expect(await ids("alpha", { labels: ["even"], parent: "T-0" })).toEqual(["T-2", "T-4"]);
  });

  test(`ranks the ${SEARCH_RANKED_MATCHES} most recently added matches, so a word in every task costs as little as a rare one`, async () => {
    // The oldest task is the best match by far, but 1,000 newer tasks match too.
    await storage.addTasks([newTask("OLD", { description: "common common common common" })], now, null);
    for (let start = 0; start < SEARCH_RANKED_MATCHES; start += 500) {
      const batch = Array.from({ length: 500 }, (_, i) =>
        newTask(`N-${start + i}`, { description: `common thing ${start + i}` }),
      );
      await storage.addTasks(batch, now, null);
    }
    const first = await search("common", { limit: 500 });
    const second = await search("common", { limit: 500, cursor: first.nextCursor });
    expect(second.nextCursor).toBeNull();
    const found = [...first.tasks, ...second.tasks].map((task) => task.task_id);
    expect(found).toHaveLength(SEARCH_RANKED_MATCHES);
    expect(found).not.toContain("OLD");
    expect(await ids("common common")).toHaveLength(100);
  });

  test("a project's search ranks its own newest matches, however many newer ones other projects hold", async () => {
    await storage.addTasks([newTask("OLD", { description: "common common common rare" })], now, null);
    await storage.addTasks(
      Array.from({ length: SEARCH_RANKED_MATCHES - 1 }, (_, i) => newTask(`N-${i}`, { description: `common thing ${i}` })),
      now,
      null,
    );
    const others = Array.from({ length: 500 }, (_, i) =>
      newTask(`O-${i}`, { project_id: "other", description: "common common common common rare" }),
    );
    await storage.addTasks(others, now, null);
    const first = await search("common", { limit: 500 });
    const second = await search("common", { limit: 500, cursor: first.nextCursor });
    expect(second.nextCursor).toBeNull();
    const found = [...first.tasks, ...second.tasks].map((task) => task.task_id);
    expect(found).toHaveLength(SEARCH_RANKED_MATCHES);
    expect(found[0]).toBe("OLD");
    expect(found.every((id) => !id.startsWith("O-"))).toBe(true);
    expect(await ids("rare")).toEqual(["OLD"]);
    expect(await ids("common", { status: "pending", limit: 1 })).toEqual(["OLD"]);
  });

  test("an edit of the description or criteria is found at once; a claim leaves the index as it was", async () => {
    await storage.addTasks([newTask("T", { description: "first words" })], now, null);
    await edit("T", { description: "second words", acceptance_criteria: [{ text: "quokka", done: false }] });
    expect(await ids("first")).toEqual([]);
    expect(await ids("second quokka")).toEqual(["T"]);
    await move("T", "in_progress");
    expect(await ids("second")).toEqual(["T"]);
  });
});
