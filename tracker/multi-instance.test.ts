// Two tracker processes (`bun tracker/main.ts`) on one PostgreSQL database, many concurrent clients
// spread over both: API.md's guarantees hold across instances. Runs in the PostgreSQL target of the
// suite (TRACKER_TEST_STORAGE=postgres, see postgres-target.test.ts).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import type { ChildProcess } from "../testkit/processes.ts";
import { startTracker } from "../testkit/tracker.ts";
import { makePostgresSchema, type PostgresTestSchema } from "./testing.ts";

const onPostgres = process.env.TRACKER_TEST_STORAGE === "postgres";
const API_KEY = "multi-instance-test-key-0123456789";

interface Instance {
  url: string;
  process: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  log: () => string;
}

/** Starts `bun tracker/main.ts` on a free port and waits until it serves. */
async function startInstance(databaseUrl: string): Promise<Instance> {
  const { url, process: child } = await startTracker({
    env: { ...process.env, DATABASE_URL: databaseUrl, TRACKER_API_KEYS: API_KEY, LOG_LEVEL: "info" },
    stdout: "ignore",
  });
  return { url, process: child, log: () => child.stderr.text() };
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  replayed: boolean;
}

async function call(
  instance: Instance,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${instance.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    replayed: response.headers.get("Idempotent-Replayed") === "true",
  };
}

/** A GET /events stream, read as it comes: `next(test)` resolves with the first change that passes. */
async function openStream(instance: Instance, project: string) {
  const response = await fetch(`${instance.url}/events?project=${project}`, {
    headers: { Authorization: `Bearer ${API_KEY}` },
  });
  expect(response.status).toBe(200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(test: (change: { event: { type: string; task_id: string }; task: { status: string } }) => boolean) {
      for (;;) {
        let end: number;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const frame = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = frame.split("\n").find((line) => line.startsWith("data: "));
          if (data && test(JSON.parse(data.slice("data: ".length)))) return JSON.parse(data.slice("data: ".length));
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the stream ended");
        buffered += value;
      }
    },
    close: () => reader.cancel(),
  };
}

// Registered only in the PostgreSQL run; the SQLite run says loudly that it skipped that one.
if (onPostgres)
  describe("two tracker instances on one PostgreSQL", () => {
    let schema: PostgresTestSchema;
    let instances: Instance[] = [];
    /** Spreads the clients over both instances. */
    const pick = (i: number): Instance => instances[i % instances.length]!;

    beforeAll(async () => {
      schema = await makePostgresSchema();
      instances = await Promise.all([startInstance(schema.url), startInstance(schema.url)]);
    });

    afterAll(async () => {
      const password = new URL(schema.url).password;
      for (const instance of instances) {
        instance.process.kill("SIGTERM");
        expect(await instance.process.exited).toBe(0);
        if (password) expect(instance.log()).not.toContain(password);
      }
      await schema.drop();
    });

    test("IDs allocated and reserved on both instances at once are never handed out twice", async () => {
      const answers = await Promise.all([
        ...Array.from({ length: 200 }, (_, i) => call(pick(i), "GET", "/ids/next?type=US&project=p")),
        ...Array.from({ length: 20 }, (_, i) => call(pick(i), "POST", "/ids/reserve", { type: "US", count: 5, project_id: "p" })),
      ]);
      expect(answers.every((answer) => answer.status === 200 || answer.status === 201)).toBe(true);
      const numbers = answers.flatMap((answer) =>
        answer.status === 200
          ? [answer.body.number as number]
          : (answer.body.reserved_ids as string[]).map((id) => Number(id.slice("US-".length))),
      );
      expect(numbers.length).toBe(300);
      expect(numbers.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    });

    test("a task claimed on both instances at once has one winner", async () => {
      const tasks = Array.from({ length: 25 }, (_, i) => ({
        task_id: `CLAIM-${i}`,
        project_id: "claims",
        description: "d",
      }));
      expect((await call(pick(0), "POST", "/tasks/batch", { tasks })).status).toBe(201);
      const attempts = tasks.flatMap((task) =>
        Array.from({ length: 8 }, (_, i) =>
          call(pick(i), "PUT", `/tasks/${task.task_id}/status`, { status: "in_progress" }, { "X-Agent-Id": `agent-${i}` }),
        ),
      );
      const answers = await Promise.all(attempts);
      const winners = answers.filter((answer) => answer.status === 200);
      expect(winners.length).toBe(tasks.length);
      expect(new Set(answers.filter((answer) => answer.status !== 200).map((answer) => answer.body.code))).toEqual(
        new Set(["invalid_transition"]),
      );
      for (const winner of winners) {
        const task = winner.body.updated_task as { task_id: string; claimed_by: string };
        const seenElsewhere = await call(pick(1), "GET", `/tasks/${task.task_id}`);
        expect((seenElsewhere.body.task as { claimed_by: string }).claimed_by).toBe(task.claimed_by);
      }
    });

    test("32 claimers of the next task on both instances at once take distinct tasks, the best first", async () => {
      const tasks = Array.from({ length: 40 }, (_, i) => ({
        task_id: `NEXT-${String(i).padStart(2, "0")}`,
        project_id: "claim-next",
        description: "d",
      }));
      expect((await call(pick(0), "POST", "/tasks/batch", { tasks })).status).toBe(201);
      const answers = await Promise.all(
        Array.from({ length: 32 }, (_, i) =>
          call(pick(i), "POST", "/tasks/claim", { project_id: "claim-next" }, { "X-Agent-Id": `agent-${i}` }),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual(Array(32).fill(200));
      const taken = answers.map((answer) => (answer.body.task as { task_id: string }).task_id);
      expect(taken.toSorted()).toEqual(tasks.slice(0, 32).map((task) => task.task_id));
    });

    test("a retried request is replayed by the other instance", async () => {
      const key = { "Idempotency-Key": crypto.randomUUID() };
      const request = { type: "SPEC", count: 3, project_id: "replay" };
      const first = await call(pick(0), "POST", "/ids/reserve", request, key);
      expect(first.status).toBe(201);
      const retry = await call(pick(1), "POST", "/ids/reserve", request, key);
      expect(retry).toEqual({ ...first, replayed: true });
      const misuse = await call(pick(1), "POST", "/ids/reserve", { ...request, count: 4 }, key);
      expect([misuse.status, misuse.body.code]).toEqual([422, "idempotency_mismatch"]);
      expect((await call(pick(1), "GET", "/ids/next?type=SPEC&project=replay")).body.number).toBe(4);
    });

    test("one request sent to both instances at once takes effect once", async () => {
      const keys = Array.from({ length: 30 }, () => crypto.randomUUID());
      const pairs = await Promise.all(
        keys.map((key) =>
          Promise.all(
            instances.map((instance) =>
              call(instance, "POST", "/ids/reserve", { type: "RACE", count: 1, project_id: "race" }, { "Idempotency-Key": key }),
            ),
          ),
        ),
      );
      for (const pair of pairs) {
        const done = pair.filter((answer) => answer.status === 201);
        // The loser saw the winner's key in flight (409) or, once the winner committed, its stored response.
        expect(done.length).toBeGreaterThanOrEqual(1);
        for (const answer of pair.filter((candidate) => candidate.status !== 201)) {
          expect([answer.status, answer.body.code]).toEqual([409, "idempotency_in_flight"]);
        }
        if (done.length === 2) expect(done[0]!.body).toEqual(done[1]!.body);
      }
      expect((await call(pick(0), "GET", "/ids/next?type=RACE&project=race")).body.number).toBe(keys.length + 1);
    });

    test("batches that overlap, sent to both instances at once, are each all or nothing", async () => {
      // Batch i adds OVERLAP-i and OVERLAP-(i+1): neighbours conflict, so some batches lose.
      const batches = Array.from({ length: 20 }, (_, i) => [`OVERLAP-${i}`, `OVERLAP-${i + 1}`]);
      const answers = await Promise.all(
        batches.map((ids, i) =>
          call(pick(i), "POST", "/tasks/batch", {
            tasks: ids.map((id) => ({ task_id: id, project_id: "overlap", description: "d" })),
          }),
        ),
      );
      const added = new Set<string>();
      answers.forEach((answer, i) => {
        expect([201, 409]).toContain(answer.status);
        if (answer.status === 201)
          for (const id of batches[i]!) {
            expect(added.has(id)).toBe(false); // no task is added by two batches
            added.add(id);
          }
      });
      for (let i = 0; i <= batches.length; i++) {
        const id = `OVERLAP-${i}`;
        expect((await call(pick(i), "GET", `/tasks/${id}`)).status).toBe(added.has(id) ? 200 : 404);
      }
    });

    test("a claim through one instance whose lease runs out is handed out again through the other", async () => {
      const [a, b] = instances as [Instance, Instance];
      const project = "leases";
      expect(
        (await call(a, "POST", "/tasks/batch", { tasks: [{ task_id: "L-1", project_id: project, description: "d" }] })).status,
      ).toBe(201);
      const claim = await call(
        a,
        "PUT",
        `/tasks/L-1/status?project=${project}`,
        { status: "in_progress", lease_seconds: 5 },
        { "X-Agent-Id": "agent-a" },
      );
      expect(claim.status).toBe(200);
      // Five seconds pass, as the database sees it (the lease runs by its clock): no waiting.
      const admin = new SQL(schema.url, { max: 1 });
      await admin`UPDATE tasks SET lease_expires_at = now() WHERE task_id = 'L-1'`;
      await admin.close();
      // Either instance's sweep (every 250 ms) expires it; B hands it out again.
      const started = performance.now();
      let next: Answer;
      do next = await call(b, "GET", `/tasks/next?project=${project}`);
      while ((next.body.task as { task_id: string } | null)?.task_id !== "L-1" && performance.now() - started < 3000);
      expect(next.body.task).toMatchObject({ task_id: "L-1", status: "pending", claimed_by: null, lease_expires_at: null });
      expect(performance.now() - started).toBeLessThan(1500);
      const again = await call(
        b,
        "PUT",
        `/tasks/L-1/status?project=${project}`,
        { status: "in_progress" },
        { "X-Agent-Id": "agent-b" },
      );
      expect(again.body.updated_task).toMatchObject({ status: "in_progress", claimed_by: "agent-b" });
      const late = await call(
        a,
        "PUT",
        `/tasks/L-1/status?project=${project}`,
        { status: "completed" },
        { "X-Agent-Id": "agent-a" },
      );
      expect([late.status, late.body.code]).toEqual([409, "claim_lost"]);
      const history = await call(a, "GET", `/tasks/L-1/events?project=${project}`);
      expect((history.body.events as { type: string; agent_id: string | null }[]).map((e) => [e.type, e.agent_id])).toEqual([
        ["created", null],
        ["claimed", "agent-a"],
        ["claim_expired", null],
        ["claimed", "agent-b"],
      ]);
    });

    test("a change made through one instance reaches a viewer of the other's stream within a second", async () => {
      const [a, b] = instances as [Instance, Instance];
      const project = "stream";
      const stream = await openStream(b, project);
      try {
        const started = performance.now();
        const tasks = [{ task_id: "S-1", project_id: project, description: "d" }];
        expect((await call(a, "POST", "/tasks/batch", { tasks })).status).toBe(201);
        const created = await stream.next((change) => change.event.task_id === "S-1");
        expect(created).toMatchObject({ event: { type: "created", project_id: project }, task: { status: "pending" } });
        expect(performance.now() - started).toBeLessThan(1000);
        await call(a, "PUT", `/tasks/S-1/status?project=${project}`, { status: "in_progress" }, { "X-Agent-Id": "agent-a" });
        const claimed = await stream.next((change) => change.event.type === "claimed");
        expect(claimed).toMatchObject({ event: { task_id: "S-1", agent_id: "agent-a" }, task: { status: "in_progress" } });
        expect(performance.now() - started).toBeLessThan(2000);
      } finally {
        await stream.close();
      }
    });
  });
