// Issue 21, tasks that carry the work: the compiled MCP server, spoken to over stdio, against the real
// tracker as its own process, on SQLite and on PostgreSQL. Each sentence of the "Done when":
// a note survives a restart and a dump/restore, a criterion gates completion, a parent is not handed
// out, search finds a word that is only in a note.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runProcess } from "../testkit/processes.ts";
import { makeTempDir } from "../testkit/temp.ts";
import { trackerCommand } from "../testkit/tracker.ts";
import { makePostgresSchema, type PostgresTestSchema } from "../tracker/testing.ts";
import {
  type McpProcess,
  makeApiKey,
  mcpEnv,
  startMcp,
  startTrackerProcess,
  stopEverything,
  type TrackerProcess,
  textOf,
} from "./harness.ts";

const havePostgres = Boolean(process.env.TRACKER_TEST_DATABASE_URL);
if (!havePostgres && process.env.CI === "true") {
  throw new Error("CI=true but TRACKER_TEST_DATABASE_URL is not set: run under scripts/with-postgres.sh");
}

type Result = Awaited<ReturnType<McpProcess["call"]>>;
interface Note {
  at: string;
  by: string | null;
  text: string;
}
interface Task {
  task_id: string;
  status: string;
  parent_id: string | null;
  labels: string[];
  acceptance_criteria: { text: string; done: boolean }[];
  notes?: Note[];
  notes_count: number;
}

function data<T>(result: Result): T {
  if (result.isError) throw new Error(textOf(result));
  return result.structuredContent as T;
}

describeContent("SQLite", false);
if (havePostgres) describeContent("PostgreSQL", true);

function describeContent(name: string, onPostgres: boolean) {
  describe(`tasks that carry the work (${name})`, () => {
    const project = "content";
    const apiKey = makeApiKey();
    let schema: PostgresTestSchema | undefined;
    let tracker: TrackerProcess;
    let agent: McpProcess;
    let databaseEnv: Record<string, string>;

    beforeAll(async () => {
      schema = onPostgres ? await makePostgresSchema() : undefined;
      databaseEnv = schema ? { DATABASE_URL: schema.url } : {};
      tracker = await startTrackerProcess({ apiKey, env: databaseEnv });
      if (!schema) databaseEnv = { TRACKER_DB: tracker.dbPath };
      agent = await startMcp(mcpEnv(tracker.url, apiKey, { TASK_TRACKING_AGENT_ID: "claude-e2e", LOG_LEVEL: "warn" }));
    });

    afterAll(async () => {
      try {
        expect(await agent.close()).toBe(0);
        expect(await tracker.stop()).toBe(0);
      } finally {
        await stopEverything(); // the trackers' directories, the first one's database included
        await schema?.drop();
      }
    });

    test("add_task takes an epic with children, labels and acceptance criteria", async () => {
      const added = data<{ task_ids: string[] }>(
        await agent.call("add_task", {
          tasks: [
            { task_id: "EPIC-1", project_id: project, description: "Sign-in", priority: "high", labels: ["Auth"] },
            {
              task_id: "LOGIN-1",
              project_id: project,
              description: "Login form",
              parent_id: "EPIC-1",
              labels: ["frontend", "auth"],
              acceptance_criteria: ["form validates", "tests pass"],
            },
          ],
        }),
      );
      expect(added.task_ids).toEqual(["EPIC-1", "LOGIN-1"]);
      const read = await tracker.api("GET", `/tasks/LOGIN-1?project=${project}`);
      expect(read.body.task).toMatchObject({
        parent_id: "EPIC-1",
        labels: ["auth", "frontend"],
        acceptance_criteria: [
          { text: "form validates", done: false },
          { text: "tests pass", done: false },
        ],
      });
      const epic = await tracker.api("GET", `/tasks/EPIC-1?project=${project}`);
      expect(epic.body.task).toMatchObject({ labels: ["auth"], children: { total: 1, done: 0 } });
    });

    test("a parent with an open child is not handed out: the claim takes the child", async () => {
      const claimed = data<{ task: Task }>(await agent.call("get_next_task", { project_id: project, claim: true }));
      expect(claimed.task).toMatchObject({ task_id: "LOGIN-1", status: "in_progress" });
      const next = await tracker.api("GET", `/tasks/next?project=${project}`);
      expect(next.body.task).toBeNull();
    });

    test("update_task records a note; completing with an open criterion is refused with the tracker's sentence", async () => {
      data(
        await agent.call("update_task", {
          task_id: "LOGIN-1",
          project_id: project,
          note: "the zanzibar cookie is lost on reload",
        }),
      );
      const refused = await agent.call("update_task_status", { task_id: "LOGIN-1", project_id: project, status: "completed" });
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toContain("cannot complete LOGIN-1");
      expect(textOf(refused)).toContain('1. "form validates"');
      expect(textOf(refused)).toContain('2. "tests pass"');
      const still = await tracker.api("GET", `/tasks/LOGIN-1?project=${project}`);
      expect(still.body.task.status).toBe("in_progress");
    });

    test("search finds a word that is only in a note", async () => {
      const found = await agent.call("list_tasks", { project_id: project, query: "zanzibar" });
      const listed = data<{ tasks: { task_id: string; match?: string }[] }>(found);
      expect(listed.tasks.map((task) => task.task_id)).toEqual(["LOGIN-1"]);
      expect(listed.tasks[0]!.match?.toLowerCase()).toContain("[zanzibar]");
      expect(
        data<{ tasks: unknown[] }>(await agent.call("list_tasks", { project_id: project, query: "nowhere-word" })).tasks,
      ).toEqual([]);
    });

    test("completing the parent while its child is open is refused, naming the child", async () => {
      const claim = await tracker.api("PUT", `/tasks/EPIC-1/status?project=${project}`, { status: "in_progress" });
      expect(claim).toMatchObject({ status: 409, body: { code: "children_open" } });
      expect(claim.body.error ?? claim.body.message ?? JSON.stringify(claim.body)).toContain("LOGIN-1");
    });

    test("a note survives a restart of the tracker", async () => {
      expect(await tracker.stop()).toBe(0);
      tracker = await startTrackerProcess({ apiKey, env: { ...databaseEnv, PORT: String(tracker.port) } });
      const task = data<{ task: Task }>(await agent.call("get_task", { task_id: "LOGIN-1", project_id: project })).task;
      expect(task.notes?.map((note) => [note.by, note.text])).toEqual([["claude-e2e", "the zanzibar cookie is lost on reload"]]);
      expect(textOf(await agent.call("get_task", { task_id: "LOGIN-1", project_id: project }))).toContain("zanzibar");
    });

    test("ticking the criteria off lets the child complete, and then the parent", async () => {
      data(await agent.call("update_task", { task_id: "LOGIN-1", project_id: project, check: [1, 2] }));
      const done = data<{ task: Task }>(
        await agent.call("update_task_status", {
          task_id: "LOGIN-1",
          project_id: project,
          status: "completed",
          completion_notes: "ok",
        }),
      );
      expect(done.task.status).toBe("completed");
      const epic = data<{ task: Task }>(await agent.call("get_next_task", { project_id: project, claim: true }));
      expect(epic.task).toMatchObject({ task_id: "EPIC-1", status: "in_progress" });
      const finished = data<{ task: Task }>(
        await agent.call("update_task_status", { task_id: "EPIC-1", project_id: project, status: "completed" }),
      );
      expect(finished.task.status).toBe("completed");
    });

    test("a note, labels, criteria and parent survive a dump and a restore", async () => {
      const dir = makeTempDir("tt-content-");
      const env = { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...databaseEnv };
      const dumped = await runProcess([...trackerCommand(), "dump", "--out", join(dir, "dump.jsonl")], {
        env: { ...env, PORT: String(tracker.port), HOST: "127.0.0.1", TRACKER_API_KEYS: apiKey },
      });
      expect(dumped.code).toBe(0);
      const restoredDb = { TRACKER_DB: join(dir, "restored.db"), TRACKER_API_KEYS: makeApiKey() };
      const restored = await runProcess([...trackerCommand(), "restore", join(dir, "dump.jsonl")], {
        env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...restoredDb },
      });
      expect(restored.code).toBe(0);
      const copy = await startTrackerProcess({ apiKey: restoredDb.TRACKER_API_KEYS, env: restoredDb });
      try {
        const [before, after] = await Promise.all(
          [tracker, copy].map(async (one) => (await one.api("GET", `/tasks/LOGIN-1?project=${project}`)).body.task),
        );
        expect(after.notes).toEqual(before.notes);
        expect(after).toMatchObject({
          parent_id: "EPIC-1",
          labels: ["auth", "frontend"],
          acceptance_criteria: before.acceptance_criteria,
          notes_count: 1,
        });
      } finally {
        expect(await copy.stop()).toBe(0);
      }
    });
  });
}
