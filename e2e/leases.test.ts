// Claims that heal themselves (docs/API.md, Leases; docs/TOOLS.md, Leases): compiled MCP servers with
// short leases against the real tracker. An agent killed with kill -9 right after its claim, one
// killed in the middle of its claim, and one that exits cleanly: each task is claimable by another
// agent within the lease + 1 s. An agent that stays alive keeps its claim through 10 leases; nobody
// else can complete it; the former holder of an expired lease hears claim_lost; an agent whose claim a
// person released hears who and when; a restarted agent with the same ID keeps its claims. The same on
// PostgreSQL with two tracker instances.

import { describe, expect, test } from "bun:test";
import { type McpProcess, mcpEnv, type StackOptions, startMcp, startProxy, textOf, useStack } from "./harness.ts";

const LEASE_SECONDS = 5;
const LEASE_MS = LEASE_SECONDS * 1000;
/** The contract: an expired claim is never shown as held for more than a second. */
const EXPIRY_SLACK_MS = 1000;

interface Task {
  task_id: string;
  project_id: string;
  status: string;
  claimed_by: string | null;
  lease_expires_at: string | null;
}

const havePostgres = Boolean(process.env.TRACKER_TEST_DATABASE_URL);
if (!havePostgres && process.env.CI === "true") {
  throw new Error("CI=true but TRACKER_TEST_DATABASE_URL is not set: run under scripts/with-postgres.sh");
}

// Agents alternate between the trackers: on PostgreSQL two instances share one database.
describeLeases("SQLite, one tracker", {});
if (havePostgres) describeLeases("PostgreSQL, two trackers", { database: "postgres", trackers: 2 });

function describeLeases(name: string, stackOptions: StackOptions<never>) {
  describe(`leases (${name})`, () => {
    const stack = useStack(stackOptions);
    let projectCount = 0;
    const trackerFor = (i: number) => stack.trackers[i % stack.trackers.length]!;

    async function agent(id: string, i: number, extra: Record<string, string> = {}): Promise<McpProcess> {
      return startMcp(
        mcpEnv(trackerFor(i).url, stack.apiKey, {
          TASK_TRACKING_AGENT_ID: id,
          TASK_TRACKING_LEASE_SECONDS: String(LEASE_SECONDS),
          LOG_LEVEL: "warn",
          ...extra,
        }),
      );
    }

    async function project(taskCount: number): Promise<string> {
      const projectId = `leases-${++projectCount}`;
      const tasks = Array.from({ length: taskCount }, (_, i) => ({
        task_id: `L-${i + 1}`,
        project_id: projectId,
        description: `lease test task ${i + 1}`,
      }));
      const added = await trackerFor(0).api("POST", "/tasks/batch", { tasks });
      expect(added.status).toBe(201);
      return projectId;
    }

    async function readTask(projectId: string, taskId: string, via = 0): Promise<Task> {
      const response = await trackerFor(via).api("GET", `/tasks/${taskId}?project=${projectId}`);
      expect(response.status).toBe(200);
      return response.body.task as Task;
    }

    async function claimNext(mcp: McpProcess, projectId: string): Promise<Task | null> {
      const result = await mcp.call("get_next_task", { project_id: projectId, claim: true });
      if (result.isError) throw new Error(`get_next_task failed: ${textOf(result)}`);
      return (result.structuredContent as { task: Task | null }).task;
    }

    /** Polls (through the other instance, if any) until the task is pending again; ms since `since`. */
    async function waitUntilPending(projectId: string, taskId: string, since: number): Promise<number> {
      const deadline = since + LEASE_MS + EXPIRY_SLACK_MS + 3000;
      for (;;) {
        const task = await readTask(projectId, taskId, 1);
        if (task.status === "pending") return performance.now() - since;
        if (performance.now() > deadline)
          throw new Error(`${taskId} still ${task.status} (${task.claimed_by}) long after its lease`);
        await Bun.sleep(50);
      }
    }

    test("an agent killed with kill -9 right after its claim: the task is claimable again within lease + 1 s", async () => {
      const projectId = await project(1);
      const doomed = await agent("doomed", 0);
      const claimed = await claimNext(doomed, projectId);
      const claimedAt = performance.now();
      expect(claimed).toMatchObject({ task_id: "L-1", status: "in_progress", claimed_by: "doomed" });
      expect(Date.parse(claimed!.lease_expires_at!) - Date.now()).toBeLessThanOrEqual(LEASE_MS + 500);
      process.kill(doomed.pid, "SIGKILL");

      const waited = await waitUntilPending(projectId, "L-1", claimedAt);
      expect(waited).toBeLessThanOrEqual(LEASE_MS + EXPIRY_SLACK_MS);
      const rescuer = await agent("rescuer", 1);
      expect(await claimNext(rescuer, projectId)).toMatchObject({ task_id: "L-1", claimed_by: "rescuer" });
      const events = await trackerFor(1).api("GET", `/tasks/L-1/events?project=${projectId}`);
      expect(events.body.events.map((event: { type: string }) => event.type)).toEqual([
        "created",
        "claimed",
        "claim_expired",
        "claimed",
      ]);
      expect(events.body.events[2].details.former_holder).toBe("doomed");
      expect(await rescuer.close()).toBe(0);
    }, 30_000);

    test("an agent killed in the middle of its claim (the claim committed, its answer never came back)", async () => {
      const projectId = await project(1);
      const proxy = await startProxy(trackerFor(0).url);
      // The claim (POST /tasks/claim) reaches the tracker, which commits it; its answer is held back until the agent is dead.
      proxy.setPlan((request) =>
        request.target.startsWith("/tasks/claim") ? { type: "forward", holdMs: 60_000 } : { type: "forward" },
      );
      const doomed = await startMcp(
        mcpEnv(proxy.url, stack.apiKey, {
          TASK_TRACKING_AGENT_ID: "cut-off",
          TASK_TRACKING_LEASE_SECONDS: String(LEASE_SECONDS),
        }),
      );
      const claiming = doomed.call("get_next_task", { project_id: projectId, claim: true }).catch(() => undefined);
      let claimedAt = 0;
      for (;;) {
        const task = await readTask(projectId, "L-1");
        if (task.status === "in_progress") {
          claimedAt = performance.now();
          expect(task.claimed_by).toBe("cut-off");
          break;
        }
        await Bun.sleep(20);
      }
      process.kill(doomed.pid, "SIGKILL");
      void claiming;

      const waited = await waitUntilPending(projectId, "L-1", claimedAt);
      expect(waited).toBeLessThanOrEqual(LEASE_MS + EXPIRY_SLACK_MS);
      const rescuer = await agent("rescuer-2", 1);
      expect(await claimNext(rescuer, projectId)).toMatchObject({ task_id: "L-1", claimed_by: "rescuer-2" });
      expect(await rescuer.close()).toBe(0);
      await proxy.kill();
    }, 30_000);

    test("an agent that exits cleanly keeps no claim alive: the task is claimable again within lease + 1 s", async () => {
      const projectId = await project(1);
      const leaving = await agent("leaving", 0);
      await claimNext(leaving, projectId);
      const claimedAt = performance.now();
      expect(await leaving.close()).toBe(0);
      const waited = await waitUntilPending(projectId, "L-1", claimedAt);
      expect(waited).toBeLessThanOrEqual(LEASE_MS + EXPIRY_SLACK_MS);
    }, 30_000);

    test(
      "an agent that stays alive keeps its claim through 10 leases; another agent can neither complete nor release it",
      async () => {
        const projectId = await project(1);
        const keeper = await agent("keeper", 0);
        const intruder = await agent("intruder", 1);
        await claimNext(keeper, projectId);
        const until = performance.now() + 10 * LEASE_MS;
        let checks = 0;
        while (performance.now() < until) {
          const task = await readTask(projectId, "L-1", 1);
          expect({ status: task.status, claimed_by: task.claimed_by }).toEqual({ status: "in_progress", claimed_by: "keeper" });
          checks++;
          await Bun.sleep(250);
        }
        expect(checks).toBeGreaterThan(100);

        const completed = await intruder.call("update_task_status", {
          task_id: "L-1",
          project_id: projectId,
          status: "completed",
        });
        expect(completed.isError).toBe(true);
        expect(textOf(completed)).toStartWith('L-1 is claimed by agent "keeper" until ');
        const released = await intruder.call("update_task_status", { task_id: "L-1", project_id: projectId, status: "pending" });
        expect(released.isError).toBe(true);
        expect(textOf(released)).toContain("only its holder can complete, release or renew it");

        const done = await keeper.call("update_task_status", { task_id: "L-1", status: "completed", completion_notes: "kept" });
        expect(done.isError).toBeFalsy();
        expect((done.structuredContent as { task: Task }).task).toMatchObject({ status: "completed", claimed_by: "keeper" });
        expect(await keeper.close()).toBe(0);
        expect(await intruder.close()).toBe(0);
      },
      10 * LEASE_MS + 20_000,
    );

    test("the former holder of an expired lease hears claim_lost, naming who holds the task now", async () => {
      const projectId = await project(1);
      // A claim by "sleeper" that nobody renews (made straight through the API, as a paused session's would be).
      const claim = await fetch(`${trackerFor(0).url}/tasks/L-1/status?project=${projectId}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json", "x-agent-id": "sleeper" },
        body: JSON.stringify({ status: "in_progress", lease_seconds: LEASE_SECONDS }),
      });
      expect(claim.status).toBe(200);
      await waitUntilPending(projectId, "L-1", performance.now());
      const other = await agent("wide-awake", 1);
      await claimNext(other, projectId);

      const sleeper = await agent("sleeper", 0);
      const result = await sleeper.call("update_task_status", { task_id: "L-1", project_id: projectId, status: "completed" });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/^Your claim on L-1 expired at \S+; it is now claimed by agent "wide-awake"/);
      expect(await sleeper.close()).toBe(0);
      expect(await other.close()).toBe(0);
    }, 30_000);

    test("an agent whose claim a person released, or that never claimed its task, reads what to do", async () => {
      const projectId = await project(2);
      const worker = await agent("worker", 0);
      expect(await claimNext(worker, projectId)).toMatchObject({ task_id: "L-1", claimed_by: "worker" });
      // A person on the board gives the task back.
      const release = await fetch(`${trackerFor(1).url}/tasks/L-1/status?project=${projectId}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json", "x-agent-id": "dana.example" },
        body: JSON.stringify({ status: "pending", force: true }),
      });
      expect(release.status).toBe(200);
      const events = await trackerFor(0).api("GET", `/tasks/L-1/events?project=${projectId}`);
      const releasedAt = events.body.events.at(-1).at as string;

      const late = await worker.call("update_task_status", { task_id: "L-1", project_id: projectId, status: "completed" });
      const never = await worker.call("update_task_status", { task_id: "L-2", project_id: projectId, status: "completed" });
      expect([late, never].map((result) => ({ isError: result.isError, text: textOf(result) }))).toEqual([
        {
          isError: true,
          text: `Invalid status transition: cannot complete L-1: it is pending, released by agent "dana.example" at ${releasedAt}; take another task with get_next_task, or claim it again`,
        },
        {
          isError: true,
          text: "Invalid status transition: cannot complete L-2: it is pending and nobody holds it; claim it first (get_next_task with claim: true, or update_task_status to in_progress)",
        },
      ]);
      expect(await worker.close()).toBe(0);
    }, 30_000);

    test(
      "a restarted agent with the same ID adopts its claims and keeps them alive",
      async () => {
        const projectId = await project(2);
        const first = await agent("phoenix", 0);
        const a = await claimNext(first, projectId);
        const b = await claimNext(first, projectId);
        expect([a?.task_id, b?.task_id]).toEqual(["L-1", "L-2"]);
        expect(await first.close()).toBe(0);

        const second = await agent("phoenix", 1);
        await Bun.sleep(2 * LEASE_MS);
        for (const taskId of ["L-1", "L-2"]) {
          const task = await readTask(projectId, taskId);
          expect({ task: taskId, status: task.status, claimed_by: task.claimed_by }).toEqual({
            task: taskId,
            status: "in_progress",
            claimed_by: "phoenix",
          });
        }
        const mine = await second.call("list_tasks", { project_id: projectId, mine: true });
        expect((mine.structuredContent as { tasks: { task_id: string }[] }).tasks.map((task) => task.task_id)).toEqual([
          "L-1",
          "L-2",
        ]);
        for (const taskId of ["L-1", "L-2"]) {
          const done = await second.call("update_task_status", { task_id: taskId, project_id: projectId, status: "completed" });
          expect(done.isError).toBeFalsy();
        }
        expect(await second.close()).toBe(0);
      },
      3 * LEASE_MS + 20_000,
    );
  });
}
