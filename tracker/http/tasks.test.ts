// The task routes of API.md beyond the first contract, over HTTP against a tracker on port 0:
// projects as namespaces (?project=), listing, projects, history, leases and edits.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { TaskChange } from "../domain.ts";
import {
  type ApiResponse,
  expectApiError,
  ManualClock,
  startTestTracker,
  type TestTracker,
  taskInput as task,
} from "../testing.ts";

const onPostgres = process.env.TRACKER_TEST_STORAGE === "postgres";
const CLAIM_TTL_SECONDS = 120;
let t: TestTracker;
let clock: ManualClock;

beforeEach(async () => {
  clock = new ManualClock();
  t = await startTestTracker({ now: clock.now, claimTtlSeconds: CLAIM_TTL_SECONDS });
});
afterEach(async () => {
  await t.stop();
});

async function addTasks(tasks: Record<string, unknown>[], agentId?: string): Promise<void> {
  const headers: Record<string, string> = agentId ? { "X-Agent-Id": agentId } : {};
  const response = await t.request("POST", "/tasks/batch", { body: { tasks }, headers });
  expect(response.status).toBe(201);
}

function put(path: string, body: Record<string, unknown>, agentId?: string): Promise<ApiResponse> {
  return t.request("PUT", path, { body, headers: agentId ? { "X-Agent-Id": agentId } : {} });
}

function post(path: string, body: Record<string, unknown>, agentId?: string): Promise<ApiResponse> {
  return t.request("POST", path, { body, headers: agentId ? { "X-Agent-Id": agentId } : {} });
}

/** On SQLite leases run on the tracker's clock; on PostgreSQL on the database's (real time). */
function expectLeaseOf(task: { lease_expires_at: string }, seconds: number): void {
  const start = onPostgres ? Date.now() : clock.now().getTime();
  const length = (Date.parse(task.lease_expires_at) - start) / 1000;
  if (onPostgres) expect(Math.abs(length - seconds)).toBeLessThan(5);
  else expect(length).toBe(seconds);
}

describe("?project= on the per-task routes", () => {
  beforeEach(async () => {
    await addTasks([task("T-1", { project_id: "web" }), task("T-1", { project_id: "api" }), task("ONLY", { project_id: "web" })]);
  });

  test("an ID in two projects is 409 ambiguous_task_id without it, and the project's task with it", async () => {
    const ambiguous = "Task T-1 exists in projects api, web; pass ?project=<project_id>";
    expectApiError(await t.request("GET", "/tasks/T-1"), 409, "ambiguous_task_id", ambiguous);
    expectApiError(await put("/tasks/T-1/status", { status: "in_progress" }), 409, "ambiguous_task_id", ambiguous);
    expect((await t.request("GET", "/tasks/T-1?project=api")).body.task.project_id).toBe("api");
    const claimed = await put("/tasks/T-1/status?project=web", { status: "in_progress" });
    expect([claimed.body.updated_task.project_id, claimed.body.updated_task.status]).toEqual(["web", "in_progress"]);
    expect((await t.request("GET", "/tasks/T-1?project=api")).body.task.status).toBe("pending");
  });

  test("a task of that ID in another project does not count", async () => {
    expectApiError(
      await t.request("GET", "/tasks/ONLY?project=api"),
      404,
      "task_not_found",
      "Task not found: ONLY in project api",
    );
    expect((await t.request("GET", "/tasks/ONLY")).body.task.project_id).toBe("web");
    expectApiError(
      await t.request("GET", "/tasks/T-1/events?project=nowhere"),
      404,
      "task_not_found",
      "Task not found: T-1 in project nowhere",
    );
    expectApiError(
      await t.request("GET", "/tasks/T-1?project=bad%20name"),
      400,
      "validation_failed",
      "project must be 1 to 128 characters of A-Z a-z 0-9 . _ -",
    );
  });
});

describe("GET /tasks", () => {
  beforeEach(async () => {
    await addTasks([
      task("LOW", { priority: "low" }),
      task("BLOCKED", { priority: "high", depends_on: ["DONE-LATER"] }),
      task("HIGH", { priority: "high" }),
      task("DONE-LATER"),
      task("OTHER", { project_id: "elsewhere" }),
    ]);
    await put("/tasks/HIGH/status", { status: "in_progress" }, "agent-a");
    await put("/tasks/HIGH/status", { status: "completed" }, "agent-a");
    await put("/tasks/DONE-LATER/status", { status: "in_progress" }, "agent-b");
  });

  const ids = (response: ApiResponse) => response.body.tasks.map((listed: { task_id: string }) => listed.task_id);

  test("lists ready pending tasks, then blocked ones, then in progress, then completed", async () => {
    const page = await t.request("GET", "/tasks?project=proj");
    expect([page.status, ids(page), page.body.next_cursor]).toEqual([200, ["LOW", "BLOCKED", "DONE-LATER", "HIGH"], null]);
    expect(ids(await t.request("GET", "/tasks"))).toContain("OTHER");
  });

  test("filters by status, readiness and holder", async () => {
    expect(ids(await t.request("GET", "/tasks?project=proj&status=pending"))).toEqual(["LOW", "BLOCKED"]);
    expect(ids(await t.request("GET", "/tasks?project=proj&ready=true"))).toEqual(["LOW"]);
    expect(ids(await t.request("GET", "/tasks?project=proj&ready=false"))).toEqual(["BLOCKED"]);
    expect(ids(await t.request("GET", "/tasks?claimed_by=agent-b"))).toEqual(["DONE-LATER"]);
    expect(ids(await t.request("GET", "/tasks?project=proj&status=completed"))).toEqual(["HIGH"]);
  });

  test("pages with limit and cursor, each task once", async () => {
    const seen: string[] = [];
    let path = "/tasks?project=proj&limit=1";
    for (let pages = 0; pages < 10; pages++) {
      const page = await t.request("GET", path);
      expect(page.body.tasks).toHaveLength(1);
      seen.push(...ids(page));
      if (page.body.next_cursor === null) break;
      path = `/tasks?project=proj&limit=1&cursor=${encodeURIComponent(page.body.next_cursor)}`;
    }
    expect(seen).toEqual(["LOW", "BLOCKED", "DONE-LATER", "HIGH"]);
  });

  test("bad parameters are 400 naming them", async () => {
    const limitRule = "limit must be a whole number from 1 to 500";
    for (const limit of ["0", "501", "ten", "1.5", ""]) {
      expectApiError(await t.request("GET", `/tasks?limit=${limit}`), 400, "validation_failed", limitRule);
    }
    expectApiError(await t.request("GET", "/tasks?ready=yes"), 400, "validation_failed", "ready must be one of true, false");
    expectApiError(
      await t.request("GET", "/tasks?ready=true&status=completed"),
      400,
      "validation_failed",
      "ready needs status pending (or no status): ready is about pending tasks",
    );
    const first = await t.request("GET", "/tasks?project=proj&limit=1");
    const cursor = encodeURIComponent(first.body.next_cursor);
    const mismatched = await t.request("GET", `/tasks?project=elsewhere&limit=1&cursor=${cursor}`);
    expectApiError(
      mismatched,
      400,
      "validation_failed",
      "cursor was made for other filters: pass the same project, status, ready, claimed_by, q, label and parent as for the first page",
    );
    expectApiError(
      await t.request("GET", "/tasks?cursor=%25%25%25"),
      400,
      "validation_failed",
      "cursor is not a next_cursor of GET /tasks",
    );
  });
});

describe("GET /projects", () => {
  test("lists every project with a task or an ID counter, by project_id, with its counts", async () => {
    await addTasks([task("A"), task("B", { depends_on: ["A"] }), task("C"), task("D", { project_id: "alpha" })]);
    await put("/tasks/C/status", { status: "in_progress" });
    await t.request("GET", "/ids/next?type=US&project=counters-only");
    const response = await t.request("GET", "/projects");
    expect(response.status).toBe(200);
    const counts = response.body.projects.map(({ last_change_at: _, ...rest }: Record<string, unknown>) => rest);
    expect(counts).toEqual([
      { project_id: "alpha", ready: 1, blocked: 0, in_progress: 0, completed: 0, cancelled: 0 },
      { project_id: "counters-only", ready: 0, blocked: 0, in_progress: 0, completed: 0, cancelled: 0 },
      { project_id: "proj", ready: 1, blocked: 1, in_progress: 1, completed: 0, cancelled: 0 },
    ]);
  });
});

describe("GET /tasks/<task_id>/events", () => {
  test("records every change, oldest first, with the X-Agent-Id that made it", async () => {
    await addTasks([task("T-1")], "planner");
    await put("/tasks/T-1/status", { status: "in_progress", lease_seconds: 60 }, "agent-a");
    await put("/tasks/T-1/status", { status: "completed", completion_notes: "Done" }, "agent-a");
    const response = await t.request("GET", "/tasks/T-1/events");
    expect(response.status).toBe(200);
    const events = response.body.events.map(({ event_id: _, at: __, ...rest }: Record<string, any>) => rest);
    const claimedUntil = response.body.events[1].details.lease_expires_at;
    expect(events).toEqual([
      {
        project_id: "proj",
        task_id: "T-1",
        type: "created",
        agent_id: "planner",
        key_name: "operator-1",
        from_status: null,
        to_status: "pending",
        details: { status: "pending" },
      },
      {
        project_id: "proj",
        task_id: "T-1",
        type: "claimed",
        agent_id: "agent-a",
        key_name: "operator-1",
        from_status: "pending",
        to_status: "in_progress",
        details: { lease_expires_at: claimedUntil },
      },
      {
        project_id: "proj",
        task_id: "T-1",
        type: "completed",
        agent_id: "agent-a",
        key_name: "operator-1",
        from_status: "in_progress",
        to_status: "completed",
        details: { completion_notes: "Done" },
      },
    ]);
    const eventIds = response.body.events.map((event: { event_id: number }) => event.event_id);
    expect(eventIds).toEqual([...eventIds].sort((a, b) => a - b));
  });
});

describe("leases: claims and their holders", () => {
  beforeEach(async () => {
    await addTasks([task("T-1")]);
  });

  test("a claim lasts TRACKER_CLAIM_TTL, or the lease_seconds it asks for", async () => {
    expectLeaseOf((await put("/tasks/T-1/status", { status: "in_progress" }, "agent-a")).body.updated_task, CLAIM_TTL_SECONDS);
    await put("/tasks/T-1/status", { status: "pending" }, "agent-a");
    expectLeaseOf(
      (await put("/tasks/T-1/status", { status: "in_progress", lease_seconds: 30 }, "agent-a")).body.updated_task,
      30,
    );
  });

  test("lease_seconds and force are checked and belong to their transition", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ status: "in_progress", lease_seconds: 4 }, "lease_seconds must be between 5 and 86400"],
      [{ status: "in_progress", lease_seconds: 86_401 }, "lease_seconds must be between 5 and 86400"],
      [{ status: "in_progress", lease_seconds: "60" }, "lease_seconds must be an integer, not a string"],
      [{ status: "completed", lease_seconds: 60 }, "lease_seconds is only for status in_progress (a claim)"],
      [{ status: "completed", force: true }, "force is only for status pending (a release) or cancelled"],
      [{ status: "pending", force: "yes" }, "force must be a boolean, not a string"],
    ];
    for (const [body, sentence] of cases)
      expectApiError(await put("/tasks/T-1/status", body), 400, "validation_failed", sentence);
    expect((await t.request("GET", "/tasks/T-1")).body.task.status).toBe("pending");
  });

  test("only the holder completes or releases; force releases anyone's claim, recorded with who did it", async () => {
    const claimed = (await put("/tasks/T-1/status", { status: "in_progress" }, "agent-a")).body.updated_task;
    const holder = `T-1 is claimed by agent "agent-a" until ${claimed.lease_expires_at}; only its holder can complete, release or renew it`;
    expectApiError(await put("/tasks/T-1/status", { status: "completed" }, "agent-b"), 409, "not_claim_holder", holder);
    expectApiError(await put("/tasks/T-1/status", { status: "pending" }), 409, "not_claim_holder", holder);
    const released = await put("/tasks/T-1/status", { status: "pending", force: true }, "person-c");
    expect(released.body.updated_task).toMatchObject({ status: "pending", claimed_by: null, lease_expires_at: null });
    const events = (await t.request("GET", "/tasks/T-1/events")).body.events;
    expect(events.at(-1)).toMatchObject({ type: "force_released", agent_id: "person-c", details: { former_holder: "agent-a" } });
  });
});

describe("leases: renewal and expiry", () => {
  beforeEach(async () => {
    await addTasks([task("T-1")]);
  });

  test("POST /tasks/<task_id>/heartbeat renews the holder's lease, and only the holder's", async () => {
    await put("/tasks/T-1/status", { status: "in_progress", lease_seconds: 30 }, "agent-a");
    clock.advance(10_000);
    const renewed = await post("/tasks/T-1/heartbeat", {}, "agent-a");
    expect(renewed.status).toBe(200);
    expectLeaseOf(renewed.body.task, 30);
    expectLeaseOf((await post("/tasks/T-1/heartbeat", { lease_seconds: 300 }, "agent-a")).body.task, 300);
    expectApiError(await post("/tasks/T-1/heartbeat", {}, "agent-b"), 409, "not_claim_holder");
    expectApiError(
      await post("/tasks/T-1/heartbeat", { lease_seconds: 1 }, "agent-a"),
      400,
      "validation_failed",
      "lease_seconds must be between 5 and 86400",
    );
    await put("/tasks/T-1/status", { status: "completed" }, "agent-a");
    expectApiError(
      await post("/tasks/T-1/heartbeat", {}, "agent-a"),
      400,
      "invalid_transition",
      "cannot renew T-1: it is completed",
    );
  });

  test("a lease that runs out makes the task pending again within a second, and its holder hears claim_lost", async () => {
    // SQLite expires by the tracker's clock, which the test moves; PostgreSQL by the database's, so
    // there the shortest lease (5 s) runs out in real time.
    const leaseSeconds = onPostgres ? 5 : 30;
    const claimed = (await put("/tasks/T-1/status", { status: "in_progress", lease_seconds: leaseSeconds }, "agent-a")).body
      .updated_task;
    const expired = new Promise<TaskChange>((resolve) => {
      const unsubscribe = t.storage.subscribe((change) => {
        if (change.event.type !== "claim_expired") return;
        unsubscribe();
        resolve(change);
      });
    });
    clock.advance(leaseSeconds * 1000);
    const ranOut = onPostgres ? Date.parse(claimed.lease_expires_at) : Date.now();
    // The tracker's own timer (every 250 ms) expires it: no request triggers it.
    const change = await expired;
    expect(Date.now() - ranOut).toBeLessThan(1000);
    expect(change.event).toMatchObject({
      agent_id: null,
      details: { former_holder: "agent-a", lease_expires_at: claimed.lease_expires_at },
    });
    expect((await t.request("GET", "/tasks/T-1")).body.task).toMatchObject({
      status: "pending",
      claimed_by: null,
      lease_expires_at: null,
    });
    expectApiError(
      await put("/tasks/T-1/status", { status: "completed" }, "agent-a"),
      409,
      "claim_lost",
      `Your claim on T-1 expired at ${claimed.lease_expires_at}; it is pending again: claim it again to go on`,
    );
  }, 15_000);
});

describe("PATCH /tasks/<task_id>", () => {
  beforeEach(async () => {
    await addTasks([task("T-1")]);
  });

  test("changes priority and description, recording what changed", async () => {
    const response = await t.request("PATCH", "/tasks/T-1", {
      body: { priority: "high", description: "Sharper" },
      headers: { "X-Agent-Id": "Ada" },
    });
    expect(response.status).toBe(200);
    expect(response.body.task).toMatchObject({ priority: "high", description: "Sharper", status: "pending" });
    const events = (await t.request("GET", "/tasks/T-1/events")).body.events;
    expect(events.at(-1)).toMatchObject({
      type: "updated",
      agent_id: "Ada",
      details: { priority: { from: "medium", to: "high" }, description: { from: "Do T-1", to: "Sharper" } },
    });
  });

  test("bad edits are 400 and a completed task cannot be edited", async () => {
    const patch = (body: unknown) => t.request("PATCH", "/tasks/T-1", { body });
    expectApiError(
      await patch({}),
      400,
      "validation_failed",
      "The request body must hold priority, description, depends_on, labels, parent_id, acceptance_criteria, check or uncheck (one or several)",
    );
    expectApiError(await patch({ status: "completed" }), 400, "validation_failed", "status is not a known field");
    expectApiError(await patch({ priority: "urgent" }), 400, "validation_failed", "priority must be one of high, medium, low");
    expectApiError(await patch({ description: "" }), 400, "validation_failed", "description must be 1 to 10000 characters");
    await put("/tasks/T-1/status", { status: "in_progress" });
    await put("/tasks/T-1/status", { status: "completed" });
    expectApiError(await patch({ priority: "low" }), 400, "invalid_transition");
  });

  test("replaces depends_on: the task is blocked until its dependencies are done, or gone from the list", async () => {
    await addTasks([task("T-2"), task("T-3", { depends_on: ["T-1"] })]);
    const patch = (taskId: string, depends_on: string[]) =>
      t.request("PATCH", `/tasks/${taskId}`, { body: { depends_on }, headers: { "X-Agent-Id": "Ada" } });
    const edited = await patch("T-1", ["T-2"]);
    expect(edited.status).toBe(200);
    expect(edited.body.task).toMatchObject({ task_id: "T-1", depends_on: ["T-2"], status: "pending" });
    const blocked = (await t.request("GET", "/tasks?ready=false")).body.tasks.map((one: { task_id: string }) => one.task_id);
    expect(blocked).toEqual(["T-1", "T-3"]);
    expect((await t.request("GET", "/tasks/next?project=proj")).body.task.task_id).toBe("T-2");
    const events = (await t.request("GET", "/tasks/T-1/events")).body.events;
    expect(events.at(-1)).toMatchObject({
      type: "updated",
      agent_id: "Ada",
      details: { depends_on: { from: [], to: ["T-2"] } },
    });
    expectApiError(await patch("T-2", ["T-3"]), 400, "validation_failed", "depends_on forms a cycle: T-2 -> T-3 -> T-1 -> T-2");
    expectApiError(
      await patch("T-2", ["T-9"]),
      400,
      "validation_failed",
      "depends_on names an unknown task of project proj: T-9",
    );
    expect((await patch("T-1", [])).body.task.depends_on).toEqual([]);
    expect((await t.request("GET", "/tasks/next?project=proj")).body.task.task_id).toBe("T-1");
  });

  test("a depends_on that is no list of task IDs, names one twice or too many is 400", async () => {
    const patch = (depends_on: unknown) => t.request("PATCH", "/tasks/T-1", { body: { depends_on } });
    expectApiError(await patch("T-2"), 400, "validation_failed", "depends_on must be an array of strings, not a string");
    expectApiError(
      await patch(["T 2"]),
      400,
      "validation_failed",
      "depends_on[0] must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
    );
    expectApiError(await patch(["T-2", "T-2"]), 400, "validation_failed", "depends_on names T-2 more than once");
    const many = Array.from({ length: 501 }, (_, i) => `T-${i}`);
    expectApiError(await patch(many), 400, "validation_failed", "depends_on must name at most 500 tasks");
  });
});

describe("GET /ids/registry", () => {
  test("lists the counters and the active reservations, of one project or of all", async () => {
    await t.request("PUT", "/ids/registry/proj/US", { body: { last_assigned_id: 27 } });
    await t.request("GET", "/ids/next?type=SPEC&project=other");
    const reserved = await post("/ids/reserve", { type: "US", count: 2, project_id: "proj" });
    const response = await t.request("GET", "/ids/registry?project=proj");
    expect(response.body).toEqual({
      counters: [{ project_id: "proj", artifact_type: "US", last_assigned_id: 29 }],
      reservations: [{ ...reserved.body, status: "active" }],
    });
    const all = await t.request("GET", "/ids/registry");
    expect(all.body.counters).toEqual([
      { project_id: "other", artifact_type: "SPEC", last_assigned_id: 1 },
      { project_id: "proj", artifact_type: "US", last_assigned_id: 29 },
    ]);
    clock.advance(3600 * 1000);
    expect((await t.request("GET", "/ids/registry?project=proj")).body.reservations).toEqual([]);
  });
});

describe("POST /tasks/batch without task_id", () => {
  test("names the tasks TASK-nnn in order from the counter GET /ids/next advances; a retry answers the same IDs", async () => {
    expect((await t.request("GET", "/ids/next?type=TASK&project=web")).body.next_id).toBe("TASK-001");
    const body = {
      tasks: [
        { project_id: "web", description: "Write it" },
        task("W-1", { project_id: "web" }),
        { project_id: "web", description: "Test it" },
      ],
    };
    const headers = { "Idempotency-Key": "unnamed-1" };
    const first = await t.request("POST", "/tasks/batch", { body, headers });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ success: true, tasks_added: 3, task_ids: ["TASK-002", "W-1", "TASK-003"] });
    const retry = await t.request("POST", "/tasks/batch", { body, headers });
    expect({ status: retry.status, body: retry.body }).toEqual({ status: 201, body: first.body });
    expect((await t.request("GET", "/ids/next?type=TASK&project=web")).body.next_id).toBe("TASK-004");
    expect((await t.request("GET", "/tasks/TASK-003")).body.task).toMatchObject({ description: "Test it", project_id: "web" });
  });
});

describe("POST /tasks/claim", () => {
  test("claims the task GET /tasks/next answers, with the lease asked for, then null when none is ready", async () => {
    await addTasks([task("T-1", { priority: "low" }), task("T-2", { depends_on: ["T-1"], priority: "high" }), task("T-3")]);
    const next = (await t.request("GET", "/tasks/next?project=proj")).body.task;
    const claimed = await post("/tasks/claim", { project_id: "proj", lease_seconds: 30 }, "agent-a");
    expect(claimed.status).toBe(200);
    expect(claimed.body.task).toMatchObject({ task_id: next.task_id, status: "in_progress", claimed_by: "agent-a" });
    expectLeaseOf(claimed.body.task, 30);
    const events = (await t.request("GET", `/tasks/${next.task_id}/events`)).body.events;
    expect(events.at(-1)).toMatchObject({
      type: "claimed",
      agent_id: "agent-a",
      from_status: "pending",
      to_status: "in_progress",
    });
    expectLeaseOf((await post("/tasks/claim", { project_id: "proj" }, "agent-b")).body.task, CLAIM_TTL_SECONDS);
    expect(await post("/tasks/claim", { project_id: "proj", status: "pending" }, "agent-c")).toMatchObject({
      status: 200,
      body: { task: null },
    });
  });

  test("a retry with the same Idempotency-Key answers the same task and claims nothing more", async () => {
    await addTasks([task("T-1"), task("T-2")]);
    const request = { body: { project_id: "proj" }, headers: { "Idempotency-Key": "claim-1", "X-Agent-Id": "agent-a" } };
    const first = await t.request("POST", "/tasks/claim", request);
    const retry = await t.request("POST", "/tasks/claim", request);
    expect({ status: retry.status, body: retry.body }).toEqual({ status: 200, body: first.body });
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect((await t.request("GET", "/tasks/T-2")).body.task.status).toBe("pending");
  });

  test("the body is checked: a project is required, status can only be pending, lease_seconds as a claim's", async () => {
    await addTasks([task("T-1")]);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, "project_id is required"],
      [
        { project_id: "proj", status: "in_progress" },
        'status must be pending (only a pending task can be claimed), not "in_progress"',
      ],
      [{ project_id: "proj", lease_seconds: 4 }, "lease_seconds must be between 5 and 86400"],
      [{ project_id: "proj", force: true }, "force is not a known field"],
    ];
    for (const [body, sentence] of cases) expectApiError(await post("/tasks/claim", body), 400, "validation_failed", sentence);
    expect((await t.request("GET", "/tasks/T-1")).body.task.status).toBe("pending");
  });

  test("32 concurrent claimers over HTTP take 32 distinct tasks, and the rest get null", async () => {
    await addTasks(Array.from({ length: 24 }, (_, i) => task(`T-${i}`)));
    const claims = await Promise.all(
      Array.from({ length: 32 }, (_, i) => post("/tasks/claim", { project_id: "proj" }, `agent-${i}`)),
    );
    const taken = claims.map((response) => response.body.task?.task_id).filter((id) => id !== undefined);
    expect(taken).toHaveLength(24);
    expect(new Set(taken).size).toBe(24);
    expect((await t.request("GET", "/tasks?project=proj&status=in_progress")).body.tasks).toHaveLength(24);
  });

  test("a task called claim is still read with GET and edited with PATCH", async () => {
    await addTasks([task("claim")]);
    expect((await t.request("GET", "/tasks/claim")).body.task.task_id).toBe("claim");
    expect((await t.request("PATCH", "/tasks/claim", { body: { priority: "high" } })).body.task.priority).toBe("high");
  });
});

describe("a task's content over HTTP (labels, criteria, parents, notes)", () => {
  test("a batch lower-cases and sorts labels, takes criteria as strings or objects, and names a bad one", async () => {
    await addTasks([
      task("E"),
      task("T", {
        labels: ["UI", "bug", "ui"],
        parent_id: "E",
        acceptance_criteria: ["tests pass", { text: "docs", done: true }],
        notes: [{ text: "imported", by: "gh", at: "2026-11-01T10:00:00Z" }],
      }),
    ]);
    expect((await t.request("GET", "/tasks/T")).body.task).toMatchObject({
      labels: ["bug", "ui"],
      parent_id: "E",
      acceptance_criteria: [
        { text: "tests pass", done: false },
        { text: "docs", done: true },
      ],
      notes: [{ at: "2026-11-01T10:00:00.000Z", by: "gh", text: "imported" }],
    });
    const bad = (extra: Record<string, unknown>) => t.request("POST", "/tasks/batch", { body: { tasks: [task("X", extra)] } });
    expectApiError(
      await bad({ labels: ["a", "b", "no spaces"] }),
      400,
      "validation_failed",
      "tasks[0].labels[2] must be 1 to 40 characters of a-z 0-9 . _ - : /",
    );
    expectApiError(
      await bad({ labels: Array.from({ length: 21 }, (_, i) => `l${i}`) }),
      400,
      "validation_failed",
      "tasks[0].labels must hold at most 20 names",
    );
    expectApiError(
      await bad({ acceptance_criteria: [""] }),
      400,
      "validation_failed",
      "tasks[0].acceptance_criteria[0].text must be 1 to 1000 characters",
    );
    expectApiError(await bad({ parent_id: "X" }), 400, "validation_failed", "tasks[0].parent_id forms a cycle: X -> X");
  });

  test("POST /tasks/<id>/notes appends a note by the caller: 201, the note and the task; a retry adds none", async () => {
    await addTasks([task("T")]);
    const headers = { "X-Agent-Id": "dana", "Idempotency-Key": "note-1" };
    const first = await t.request("POST", "/tasks/T/notes", { body: { text: "careful: flaky" }, headers });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({
      note: { at: clock.now().toISOString(), by: "dana", text: "careful: flaky" },
      task: expect.objectContaining({ task_id: "T", notes_count: 1 }),
    });
    const again = await t.request("POST", "/tasks/T/notes", { body: { text: "careful: flaky" }, headers });
    expect([again.status, again.headers.get("idempotent-replayed")]).toEqual([201, "true"]);
    expect((await t.request("GET", "/tasks/T")).body.task.notes_count).toBe(1);
    expectApiError(await post("/tasks/T/notes", { text: "" }), 400, "validation_failed", "text must be 1 to 10000 characters");
    expectApiError(await post("/tasks/NOPE/notes", { text: "x" }), 404, "task_not_found", "Task not found: NOPE");
  });

  test("completing with open criteria is 409 criteria_open; PATCH check ticks them off; cancel and reopen", async () => {
    await addTasks([task("T", { acceptance_criteria: ["tests pass", "docs updated"] })]);
    await put("/tasks/T/status", { status: "in_progress" }, "agent-a");
    expectApiError(
      await put("/tasks/T/status", { status: "completed" }, "agent-a"),
      409,
      "criteria_open",
      'cannot complete T: acceptance criteria still open: 1. "tests pass", 2. "docs updated"; tick them off first (update_task with check: [1, 2])',
    );
    expectApiError(
      await t.request("PATCH", "/tasks/T", { body: { check: [3] } }),
      400,
      "validation_failed",
      "check names criterion 3, but T has 2",
    );
    const checked = await t.request("PATCH", "/tasks/T", { body: { check: [1, 2] }, headers: { "X-Agent-Id": "agent-a" } });
    expect(checked.body.task.acceptance_criteria.map((criterion: { done: boolean }) => criterion.done)).toEqual([true, true]);
    expect((await put("/tasks/T/status", { status: "completed" }, "agent-a")).status).toBe(200);
    const reopened = await put("/tasks/T/status", { status: "pending" }, "agent-a");
    expect(reopened.body.updated_task).toMatchObject({ status: "pending", completed_at: null });
    const cancelled = await put("/tasks/T/status", { status: "cancelled", completion_notes: "not needed" }, "agent-a");
    expect(cancelled.body.updated_task).toMatchObject({ status: "cancelled", last_note: { by: "agent-a", text: "not needed" } });
    expect((await t.request("GET", "/projects")).body.projects[0]).toMatchObject({ cancelled: 1 });
  });

  test("GET /tasks filters by every label given (repeatable) and by parent", async () => {
    await addTasks([
      task("E"),
      task("A", { labels: ["ui", "bug"], parent_id: "E" }),
      task("B", { labels: ["ui"] }),
      task("C", { parent_id: "E" }),
    ]);
    const ids = async (query: string) =>
      (await t.request("GET", `/tasks?${query}`)).body.tasks.map((listed: { task_id: string }) => listed.task_id);
    expect(await ids("label=ui")).toEqual(["A", "B"]);
    expect(await ids("label=ui&label=BUG")).toEqual(["A"]);
    expect(await ids("parent=E")).toEqual(["A", "C"]);
    expectApiError(
      await t.request("GET", "/tasks?label=a%20b"),
      400,
      "validation_failed",
      "label[0] must be 1 to 40 characters of a-z 0-9 . _ - : /",
    );
  });
});

describe("GET /tasks?q=", () => {
  test("a ranked page of matches, each with its snippet; a q without a word is 400", async () => {
    await addTasks([task("A", { description: "Fix the login form" }), task("B", { description: "Write docs" })]);
    await post("/tasks/B/notes", { text: "mention the login page" }, "dana");
    const response = await t.request("GET", "/tasks?q=logi&project=proj");
    expect(response.status).toBe(200);
    expect(response.body.tasks.map((found: { task_id: string }) => found.task_id).sort()).toEqual(["A", "B"]);
    const a = response.body.tasks.find((found: { task_id: string }) => found.task_id === "A");
    expect(a.match).toEqual({ snippet: "Fix the [login] form" });
    expectApiError(await t.request("GET", "/tasks?q=%22-%22"), 400, "validation_failed", "q must hold a word to search for");
  });
});

describe("a release with a reason", () => {
  test("becomes a note by the agent; GET /tasks/next with its X-Agent-Id hands it another task while one is ready", async () => {
    await addTasks([task("A", { priority: "high" }), task("B")]);
    await put("/tasks/A/status", { status: "in_progress" }, "agent-a");
    const released = await put("/tasks/A/status", { status: "pending", completion_notes: "tried X, Y is left" }, "agent-a");
    expect(released.body.updated_task).toMatchObject({
      released_by: "agent-a",
      last_note: { by: "agent-a", text: "tried X, Y is left" },
    });
    const next = (agentId?: string) =>
      t.request("GET", "/tasks/next?project=proj", { headers: agentId ? { "X-Agent-Id": agentId } : {} });
    expect((await next("agent-a")).body.task.task_id).toBe("B");
    expect((await next("agent-b")).body.task.task_id).toBe("A");
    const claimed = await put("/tasks/A/status", { status: "in_progress" }, "agent-b");
    expect(claimed.body.updated_task).toMatchObject({
      released_by: null,
      notes: [{ by: "agent-a", text: "tried X, Y is left" }],
    });
  });
});
