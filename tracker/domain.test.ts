// The rules of domain.ts that need no storage: the cursor of GET /tasks (request bodies: tracker/http/schemas.test.ts).

import { describe, expect, test } from "bun:test";
import {
  ApiError,
  decodeTaskCursor,
  encodeTaskCursor,
  isProjectId,
  isTaskId,
  type TaskListQuery,
  taskListParts,
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

describe("the cursor of GET /tasks", () => {
  const query: TaskListQuery = {
    projectId: "web",
    status: null,
    ready: null,
    claimedBy: null,
    limit: 10,
    cursor: null,
  };

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
    for (const cursor of [
      "",
      "%%%",
      forged([1]),
      forged({ part: "ready", key: "high", seq: 1 }),
      forged({ part: "done", key: 1, seq: 1 }),
      forged({ part: "completed", key: 1, seq: 1 }),
    ]) {
      expect(failure(() => decodeTaskCursor(cursor, query))).toEqual({
        code: "validation_failed",
        message: "cursor is not a next_cursor of GET /tasks",
      });
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

describe("task and project IDs", () => {
  test("are refused when made only of dots (a URL reads those as path steps), by the routes and by restore alike", () => {
    for (const dots of [".", "..", "..."]) expect([isTaskId(dots), isProjectId(dots)]).toEqual([false, false]);
    for (const id of [".hidden", "v1.2", "a..b", "..x", "x."]) expect([isTaskId(id), isProjectId(id)]).toEqual([true, true]);
  });
});
