// The request schemas on their own: what they accept (with the defaults filled in) and the one
// sentence they give for what they refuse. The routes' tests check the same over HTTP.

import { describe, expect, test } from "bun:test";
import { ApiError } from "../domain.ts";
import { checkBatch, parseInput, statusBody, taskBatchBody } from "./schemas.ts";

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

/** What a task sent with no more than its ID, project and description gets. */
const defaults = {
  inputs: [],
  outputs: [],
  priority: "medium" as const,
  depends_on: [],
  labels: [],
  parent_id: null,
  acceptance_criteria: [],
  notes: [],
};

/** A batch body as POST /tasks/batch takes it: the schema, then the rules across its tasks. */
function parseBatch(body: unknown) {
  const { tasks } = parseInput(taskBatchBody, body);
  checkBatch(tasks);
  return tasks;
}

describe("the body of POST /tasks/batch", () => {
  test("a task is pending unless it says completed, with notes only then", () => {
    expect(parseBatch({ tasks: [task("a"), task("b", { status: "completed", completion_notes: "imported" })] })).toEqual([
      { ...task("a"), ...defaults, status: "pending", completion_notes: "" },
      { ...task("b"), ...defaults, status: "completed", completion_notes: "imported" },
    ]);
    const refused: Array<[Record<string, unknown>, string]> = [
      [
        task("a", { status: "in_progress" }),
        "tasks[0].status must be pending, completed or cancelled (a new task starts in one of them)",
      ],
      [task("a", { completion_notes: "early" }), "tasks[0].completion_notes is only for status completed"],
      [
        task("a", { status: "completed", completion_notes: "x".repeat(10_001) }),
        "tasks[0].completion_notes must be at most 10000 characters",
      ],
    ];
    for (const [body, message] of refused)
      expect(failure(() => parseBatch({ tasks: [body] }))).toEqual({ code: "validation_failed", message });
  });

  test("counts characters as people do: 10,000 emoji fit a description, 10,001 do not", () => {
    expect(parseBatch({ tasks: [task("a", { description: "😀".repeat(10_000) })] })).toHaveLength(1);
    expect(failure(() => parseBatch({ tasks: [task("a", { description: "😀".repeat(10_001) })] }))).toEqual({
      code: "validation_failed",
      message: "tasks[0].description must be 1 to 10000 characters",
    });
  });

  test("a task ID repeats only within its project; cycles are within a project", () => {
    expect(parseBatch({ tasks: [task("a"), task("a", { project_id: "api" })] })).toHaveLength(2);
    expect(failure(() => parseBatch({ tasks: [task("a"), task("a")] }))).toEqual({
      code: "conflict",
      message: "Task a of project web appears more than once in the batch",
    });
    // b of api depends on api's a, which does not depend on anything: no cycle across projects.
    const acrossProjects = [
      task("a", { depends_on: ["b"] }),
      task("b"),
      task("a", { project_id: "api" }),
      task("b", { project_id: "api", depends_on: ["a"] }),
    ];
    expect(parseBatch({ tasks: acrossProjects })).toHaveLength(4);
    expect(failure(() => parseBatch({ tasks: [task("a", { depends_on: ["b"] }), task("b", { depends_on: ["a"] })] }))).toEqual({
      code: "validation_failed",
      message: "tasks[1].depends_on forms a cycle: a -> b -> a",
    });
  });
});

describe("the body of PUT /tasks/<task_id>/status", () => {
  test("a claim may ask for a lease of 5 to 86,400 seconds; a release may force", () => {
    expect(parseInput(statusBody, { status: "in_progress", lease_seconds: 120 })).toEqual({
      status: "in_progress",
      completion_notes: "",
      lease_seconds: 120,
      force: false,
    });
    expect(parseInput(statusBody, { status: "pending", force: true })).toEqual({
      status: "pending",
      completion_notes: "",
      force: true,
    });
    expect(parseInput(statusBody, { status: "completed", completion_notes: "Done" })).toEqual({
      status: "completed",
      completion_notes: "Done",
      force: false,
    });
    const refused: Array<[Record<string, unknown>, string]> = [
      [{ status: "in_progress", lease_seconds: 4 }, "lease_seconds must be between 5 and 86400"],
      [{ status: "in_progress", lease_seconds: 86_401 }, "lease_seconds must be between 5 and 86400"],
      [{ status: "in_progress", lease_seconds: 1.5 }, "lease_seconds must be an integer, not a number"],
      [{ status: "in_progress", lease_seconds: "60" }, "lease_seconds must be an integer, not a string"],
      [{ status: "completed", lease_seconds: 60 }, "lease_seconds is only for status in_progress (a claim)"],
      [{ status: "pending", force: "yes" }, "force must be a boolean, not a string"],
      [{ status: "completed", force: true }, "force is only for status pending (a release) or cancelled"],
      [{ status: "pending", forced: true }, "forced is not a known field"],
      [{}, "status is required"],
    ];
    for (const [body, message] of refused) {
      expect(failure(() => parseInput(statusBody, body))).toEqual({ code: "validation_failed", message });
    }
  });
});
