// The rules of domain.ts that need no storage: request bodies, and the cursor of GET /tasks.

import { describe, expect, test } from "bun:test";
import {
  ApiError,
  decodeTaskCursor,
  encodeTaskCursor,
  parseStatusUpdate,
  parseTaskBatch,
  taskListParts,
  type TaskListQuery,
} from "./domain.ts";

function failure(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("expected an ApiError");
}

const task = (taskId: string, extra: Record<string, unknown> = {}) => ({
  task_id: taskId,
  project_id: "web",
  description: `Do ${taskId}`,
  ...extra,
});

describe("parseTaskBatch", () => {
  test("a task is pending unless it says completed, with notes only then", () => {
    expect(parseTaskBatch({ tasks: [task("a"), task("b", { status: "completed", completion_notes: "imported" })] })).toEqual([
      { ...task("a"), inputs: [], outputs: [], priority: "medium", depends_on: [], status: "pending", completion_notes: "" },
      { ...task("b"), inputs: [], outputs: [], priority: "medium", depends_on: [], status: "completed", completion_notes: "imported" },
    ]);
    expect(failure(() => parseTaskBatch({ tasks: [task("a", { status: "in_progress" })] }))).toEqual({
      code: "validation_failed",
      message: "tasks[0].status must be pending or completed (a new task starts in one of them)",
    });
    expect(failure(() => parseTaskBatch({ tasks: [task("a", { completion_notes: "early" })] }))).toEqual({
      code: "validation_failed",
      message: "tasks[0].completion_notes is only for status completed",
    });
    expect(failure(() => parseTaskBatch({ tasks: [task("a", { status: "completed", completion_notes: "x".repeat(10_001) })] }))).toEqual({
      code: "validation_failed",
      message: "tasks[0].completion_notes must be at most 10000 characters",
    });
  });

  test("a task ID repeats only within its project; cycles are within a project", () => {
    expect(parseTaskBatch({ tasks: [task("a"), task("a", { project_id: "api" })] })).toHaveLength(2);
    expect(failure(() => parseTaskBatch({ tasks: [task("a"), task("a")] }))).toEqual({
      code: "conflict",
      message: "Task a of project web appears more than once in the batch",
    });
    // b of api depends on api's a, which does not depend on anything: no cycle across projects.
    const acrossProjects = [task("a", { depends_on: ["b"] }), task("b"), task("a", { project_id: "api" }), task("b", { project_id: "api", depends_on: ["a"] })];
    expect(parseTaskBatch({ tasks: acrossProjects })).toHaveLength(4);
    expect(failure(() => parseTaskBatch({ tasks: [task("a", { depends_on: ["b"] }), task("b", { depends_on: ["a"] })] }))).toEqual({
      code: "validation_failed",
      message: "tasks[1].depends_on forms a cycle: a -> b -> a",
    });
  });
});

describe("parseStatusUpdate", () => {
  test("a claim may ask for a lease of 5 to 86,400 seconds; a release may force", () => {
    expect(parseStatusUpdate({ status: "in_progress", lease_seconds: 120 })).toEqual({
      status: "in_progress",
      completionNotes: "",
      leaseSeconds: 120,
      force: false,
    });
    expect(parseStatusUpdate({ status: "pending", force: true })).toEqual({ status: "pending", completionNotes: "", leaseSeconds: null, force: true });
    expect(parseStatusUpdate({ status: "completed", completion_notes: "Done" })).toEqual({
      status: "completed",
      completionNotes: "Done",
      leaseSeconds: null,
      force: false,
    });
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ status: "in_progress", lease_seconds: 4 }, "lease_seconds must be between 5 and 86400"],
      [{ status: "in_progress", lease_seconds: 86_401 }, "lease_seconds must be between 5 and 86400"],
      [{ status: "in_progress", lease_seconds: 1.5 }, "lease_seconds must be an integer, not a number"],
      [{ status: "in_progress", lease_seconds: "60" }, "lease_seconds must be an integer, not a string"],
      [{ status: "completed", lease_seconds: 60 }, "lease_seconds is only for status in_progress (a claim)"],
      [{ status: "pending", force: "yes" }, "force must be a boolean, not a string"],
      [{ status: "completed", force: true }, "force is only for status pending (a release)"],
      [{ status: "pending", forced: true }, "forced is not a known field"],
    ];
    for (const [body, message] of refused) {
      expect(failure(() => parseStatusUpdate(body))).toEqual({ code: "validation_failed", message });
    }
  });
});

describe("the cursor of GET /tasks", () => {
  const query: TaskListQuery = { projectId: "web", status: null, ready: null, claimedBy: null, limit: 10, cursor: null };

  test("reads back what it was made of, for the same filters whatever the page size", () => {
    const position = { part: "in_progress" as const, key: "2026-12-01T12:00:00.000Z", seq: 42 };
    const cursor = encodeTaskCursor(position, query);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeTaskCursor(cursor, { ...query, limit: 500 })).toEqual(position);
    expect(failure(() => decodeTaskCursor(cursor, { ...query, claimedBy: "agent-1" }))).toEqual({
      code: "validation_failed",
      message: "cursor was made for other filters: pass the same project, status, ready and claimed_by as for the first page",
    });
  });

  test("anything else is refused naming cursor", () => {
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    for (const cursor of ["", "%%%", forged([1]), forged({ part: "ready", key: "high", seq: 1 }), forged({ part: "done", key: 1, seq: 1 }), forged({ part: "completed", key: 1, seq: 1 })]) {
      expect(failure(() => decodeTaskCursor(cursor, query))).toEqual({ code: "validation_failed", message: "cursor is not a next_cursor of GET /tasks" });
    }
  });

  test("the parts a query reads follow its filters", () => {
    expect(taskListParts(query)).toEqual(["ready", "blocked", "in_progress", "completed"]);
    expect(taskListParts({ ...query, ready: false })).toEqual(["blocked"]);
    expect(taskListParts({ ...query, status: "pending" })).toEqual(["ready", "blocked"]);
    expect(taskListParts({ ...query, claimedBy: "agent-1" })).toEqual(["in_progress", "completed"]);
    expect(taskListParts({ ...query, status: "completed", ready: true })).toEqual([]);
  });
});
