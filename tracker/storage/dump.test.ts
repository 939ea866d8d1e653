// The dump format (dump.ts) on both storages: a dump of SQLite restores into PostgreSQL and into
// SQLite and dumps the same again, with the holders of lost leases (which SQLite keeps in columns
// and PostgreSQL reads from the history); a snapshot does not see later writes; restore checks
// every line and writes nothing when one is wrong. The PostgreSQL cases need
// TRACKER_TEST_DATABASE_URL (scripts/with-postgres.sh): skipped with a warning without it, except
// in CI, where they must run.

import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiError, SCHEMA_VERSION, type StatusChange } from "../domain.ts";
import { makePostgresSchema, makeTempDir, newTask } from "../testing.ts";
import { DUMP_PAGE_SIZE, type DumpCounts } from "./dump.ts";
import { numberedLines } from "./dump-reader.ts";
import { dumpLines } from "./dump-writer.ts";
import { openPostgresStorage } from "./postgres.ts";
import { openSqliteStorage } from "./sqlite.ts";
import type { Storage } from "./storage.ts";

const hasPostgres = Boolean(process.env.TRACKER_TEST_DATABASE_URL);
const inCi = process.env.CI === "true";
if (!hasPostgres && !inCi) {
  console.warn("tracker/storage/dump.test.ts: TRACKER_TEST_DATABASE_URL is not set; the PostgreSQL cases are skipped");
}

const start = new Date("2026-11-24T21:46:59.123Z");
const later = (seconds: number) => new Date(start.getTime() + seconds * 1000);
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function sqlite(dir = makeTempDir("tracker-dump-")): Promise<Storage> {
  const storage = await openSqliteStorage({ path: join(dir, "tracker.db") });
  cleanups.push(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return storage;
}

async function postgres(): Promise<Storage> {
  const schema = await makePostgresSchema();
  const storage = await openPostgresStorage({ url: schema.url });
  cleanups.push(async () => {
    await storage.close();
    await schema.drop();
  });
  return storage;
}

const storages = { sqlite, postgres } as const;

function move(
  storage: Storage,
  taskId: string,
  to: StatusChange["to"],
  agentId: string | null,
  now: Date,
  extra: Partial<StatusChange> = {},
) {
  const change = { ref: { projectId: "p", taskId }, to, completionNotes: "", agentId, leaseSeconds: 60, force: false, now };
  return storage.changeTaskStatus({ ...change, ...extra });
}

/** The dump's text, the header's created_at fixed. */
async function dumpText(storage: Storage): Promise<string> {
  let text = "";
  for await (const chunk of dumpLines(await storage.openSnapshot(), start)) text += chunk;
  return text;
}

async function restoreText(storage: Storage, text: string): Promise<DumpCounts> {
  async function* bytes() {
    yield new TextEncoder().encode(text);
  }
  return storage.restore(numberedLines(bytes()));
}

async function errorOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected a rejection");
}

/**
 * On SQLite, whose clock the test holds: leases that ran out (one lost for good, one claimed again
 * by the agent that lost it, one of a claim without an agent), a claim held, a dependency chain.
 */
async function fillWithLostLeases(storage: Storage): Promise<void> {
  await storage.addTasks(
    [newTask("L-1"), newTask("L-2"), newTask("L-3"), newTask("H-1"), newTask("D-1", { depends_on: ["L-1", "H-1"] })],
    start,
    "planner",
  );
  await move(storage, "L-1", "in_progress", "agent-a", start, { leaseSeconds: 5 });
  await move(storage, "L-2", "in_progress", "agent-b", start, { leaseSeconds: 5 });
  await move(storage, "L-3", "in_progress", null, start, { leaseSeconds: 5 });
  expect(await storage.expireLeases(later(10))).toBe(3);
  await move(storage, "L-2", "in_progress", "agent-b", later(11), { leaseSeconds: 600 });
  await move(storage, "H-1", "in_progress", "agent-c", later(12), { leaseSeconds: 900 });
  await move(storage, "H-1", "completed", "agent-c", later(13), { completionNotes: "Done" });
  await storage.allocateId("p", "US", undefined);
}

describe("a dump of SQLite", () => {
  test("read only in part leaves no copy beside the database, nor does a tracker that died making one", async () => {
    const dir = makeTempDir("tracker-dump-");
    const source = await sqlite(dir);
    await source.addTasks(
      Array.from({ length: DUMP_PAGE_SIZE + 1 }, (_, i) => newTask(`T-${i}`)),
      start,
      null,
    );
    writeFileSync(join(dir, `.tracker.db.dump-${crypto.randomUUID()}.copy`), "old");
    const chunks = dumpLines(await source.openSnapshot(), start);
    expect(readdirSync(dir).filter((name) => name.endsWith(".copy"))).toHaveLength(1);
    expect((await chunks.next()).value).toStartWith('{"kind":"header"');
    expect((await chunks.next()).value).toStartWith('{"kind":"task"');
    await chunks.return(undefined);
    expect(readdirSync(dir).filter((name) => name.endsWith(".copy"))).toEqual([]);
  });

  test("holds the lost holders, restores into SQLite and dumps the same again", async () => {
    const source = await sqlite();
    await fillWithLostLeases(source);
    const text = await dumpText(source);
    const tasks = text
      .split("\n")
      .filter((line) => line.includes('"kind":"task"'))
      .map((line) => JSON.parse(line));
    expect(tasks.map((task) => [task.task_id, task.status, task.lost_by, task.lost_at])).toEqual([
      ["L-1", "pending", "agent-a", "2026-11-24T21:47:04.123Z"],
      ["L-2", "in_progress", null, null],
      ["L-3", "pending", null, "2026-11-24T21:47:04.123Z"],
      ["H-1", "completed", null, null],
      ["D-1", "pending", null, null],
    ]);
    const copy = await sqlite();
    expect(await restoreText(copy, text)).toEqual({ tasks: 5, events: 14, counters: 4, reservations: 0, notes: 0 });
    expect(await dumpText(copy)).toBe(text);
  });

  test.skipIf(!hasPostgres && !inCi)(
    "restores into PostgreSQL, which dumps the same and still knows who lost a lease",
    async () => {
      const source = await sqlite();
      await fillWithLostLeases(source);
      const text = await dumpText(source);
      const target = await postgres();
      await restoreText(target, text);
      expect(await dumpText(target)).toBe(text);
      const lost = await errorOf(move(target, "L-1", "completed", "agent-a", later(20)));
      expect(lost).toBe(await errorOf(move(source, "L-1", "completed", "agent-a", later(20))));
      // The restored dependency rows and counts: D-1 waits for L-1 alone (H-1 is completed).
      expect(await errorOf(move(target, "D-1", "in_progress", "x", later(20)))).toContain("L-1");
      expect(await target.allocateId("p", "US", undefined)).toBe(2);
      expect(await target.addTasks([newTask("N-1")], later(30), null)).toEqual(["N-1"]);
    },
  );

  test("of more tasks than a page comes out whole, in insertion order", async () => {
    const source = await sqlite();
    const count = DUMP_PAGE_SIZE * 2 + 17;
    for (let first = 0; first < count; first += 500) {
      const batch = Array.from({ length: Math.min(500, count - first) }, (_, i) => newTask(`T-${first + i}`));
      await source.addTasks(batch, start, null);
    }
    const lines = (await dumpText(source))
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    const taskIds = lines.filter((line) => line.kind === "task").map((line) => line.task_id);
    expect(taskIds).toEqual(Array.from({ length: count }, (_, i) => `T-${i}`));
    expect(lines.at(-1)).toEqual({
      kind: "end",
      counts: { tasks: count, events: count, counters: 1, reservations: 0, notes: 0 },
    });
  });
});

// The lines of a one-task dump, for the refusals of restore.
const dumpHeaderLine =
  '{"kind":"header","format":"task-tracking-dump","version":1,"schema_version":2,"created_at":"2026-11-24T21:46:59.123Z"}';
const taskLine = (extra: Record<string, unknown>) =>
  JSON.stringify({
    kind: "task",
    project_id: "p",
    task_id: "A-1",
    description: "Do",
    inputs: [],
    outputs: [],
    priority: "medium",
    depends_on: [],
    status: "pending",
    claimed_by: null,
    lease_expires_at: null,
    lease_seconds: null,
    lost_by: null,
    lost_at: null,
    completion_notes: "",
    created_at: "2026-11-24T21:46:59.123Z",
    updated_at: "2026-11-24T21:46:59.123Z",
    started_at: null,
    completed_at: null,
    ...extra,
  });
const dumpEndLine = '{"kind":"end","counts":{"tasks":1,"events":0,"counters":0,"reservations":0}}';

for (const [name, open] of Object.entries(storages)) {
  describe.skipIf(name === "postgres" && !hasPostgres && !inCi)(`on ${name}`, () => {
    test("a task's content (labels, parent, criteria, notes, released_by, cancelled) survives a dump and a restore into either storage", async () => {
      const source = await open();
      await source.addTasks(
        [
          newTask("E", { labels: ["epic"] }),
          newTask("C-1", {
            parent_id: "E",
            acceptance_criteria: [{ text: "tests pass", done: true }],
            notes: [{ text: "imported", by: "gh", at: "2026-11-01T10:00:00.000Z" }],
          }),
          newTask("C-2", { parent_id: "E" }),
          newTask("W", { depends_on: ["C-2"] }),
        ],
        start,
        "planner",
      );
      await source.addNote({
        ref: { projectId: "p", taskId: "E" },
        text: "only in a note: zebra",
        agentId: "dana",
        now: later(1),
      });
      await move(source, "C-1", "in_progress", "agent-a", later(2));
      await move(source, "C-1", "pending", "agent-a", later(3), { completionNotes: "tried X" });
      await move(source, "C-2", "cancelled", "agent-b", later(4), { completionNotes: "not needed" });
      const text = await dumpText(source);
      const lines = text
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line));
      expect(lines[0]).toMatchObject({ version: 2, format_version: 2 });
      expect(lines.slice(1, 7).map((line) => [line.kind, line.task_id, line.text ?? null])).toEqual([
        ["task", "E", null],
        ["note", "E", "only in a note: zebra"],
        ["task", "C-1", null],
        ["note", "C-1", "imported"],
        ["note", "C-1", "tried X"],
        ["task", "C-2", null],
      ]);
      expect(lines.at(-1)).toMatchObject({ counts: { tasks: 4, notes: 4 } });
      for (const into of Object.values(storages)) {
        if (into === postgres && !hasPostgres) continue;
        const target = await into();
        expect(await restoreText(target, text)).toMatchObject({ tasks: 4, notes: 4 });
        for (const taskId of ["E", "C-1", "C-2", "W"]) {
          const ref = { projectId: "p", taskId };
          expect(await target.getTask(ref)).toEqual(await source.getTask(ref));
        }
        expect(await dumpText(target)).toBe(text);
        expect((await target.findNextTask("p", "pending"))?.task_id).toBe("C-1");
        expect((await target.findNextTask("p", "pending", "agent-a"))?.task_id).toBe("W");
      }
    });

    test("the key of a claim and of each event survive a dump and a restore; a dump of version 1 restores them as none", async () => {
      const source = await open();
      await source.addTasks([newTask("A-1")], start, "planner", undefined, "alice");
      await move(source, "A-1", "in_progress", "agent-1", start, { keyName: "alice" });
      const text = await dumpText(source);
      const lines = text
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line));
      expect(lines.find((line) => line.kind === "task")).toMatchObject({ claimed_by: "agent-1", claimed_by_key: "alice" });
      expect(lines.filter((line) => line.kind === "event").map((line) => [line.type, line.key_name])).toEqual([
        ["created", "alice"],
        ["claimed", "alice"],
      ]);
      const ref = { projectId: "p", taskId: "A-1" };
      const target = await open();
      await restoreText(target, text);
      expect(await target.getTask(ref)).toEqual(await source.getTask(ref));
      expect(await errorOf(move(target, "A-1", "completed", "agent-1", start, { keyName: "bob" }))).toStartWith(
        'A-1 is claimed by key "alice" · agent "agent-1" until ',
      );

      const claimedBefore = { claimed_by: "agent-1", lease_seconds: 600, started_at: "2026-11-24T21:46:59.123Z" };
      const claimEvent = {
        kind: "event",
        event_id: 1,
        project_id: "p",
        task_id: "A-1",
        type: "claimed",
        at: "2026-11-24T21:46:59.123Z",
        agent_id: "agent-1",
        from_status: "pending",
        to_status: "in_progress",
        details: {},
      };
      const version1 = [
        dumpHeaderLine,
        taskLine({ status: "in_progress", lease_expires_at: "2099-01-01T00:00:00.000Z", ...claimedBefore }),
        JSON.stringify(claimEvent),
        '{"kind":"end","counts":{"tasks":1,"events":1,"counters":0,"reservations":0}}',
      ].join("\n");
      const older = await open();
      await restoreText(older, `${version1}\n`);
      expect(await older.getTask(ref)).toMatchObject({ claimed_by: "agent-1", claimed_by_key: null });
      expect((await older.listTaskEvents(ref)).map((event) => event.key_name)).toEqual([null]);
      // A claim from before keys is bound to its agent alone, under any key.
      expect((await move(older, "A-1", "completed", "agent-1", start, { keyName: "bob" })).status).toBe("completed");
    });

    test("a snapshot shows the moment it was opened, whatever is written while it is read", async () => {
      const storage = await open();
      await storage.addTasks([newTask("A-1")], start, null);
      const snapshot = await storage.openSnapshot();
      await storage.addTasks([newTask("A-2")], start, null);
      await storage.allocateId("p", "US", undefined);
      let text = "";
      for await (const chunk of dumpLines(snapshot, start)) text += chunk;
      expect(text.trimEnd().split("\n").at(-1)).toBe(
        '{"kind":"end","counts":{"tasks":1,"events":1,"counters":1,"reservations":0,"notes":0}}',
      );
    });

    test("a dump of release 0.2.0 (schema_version 2: the same lines) restores, lost claims included", async () => {
      const source = await sqlite();
      await source.addTasks([newTask("A-1")], start, null);
      await move(source, "A-1", "in_progress", "agent-1", start);
      await source.expireLeases(new Date(start.getTime() + 61_000));
      const text = await dumpText(source);
      const older = text.replace(`"schema_version":${SCHEMA_VERSION}`, '"schema_version":2');
      expect(older).not.toBe(text);
      const target = await open();
      expect(await restoreText(target, older)).toEqual({ tasks: 1, events: 3, counters: 1, reservations: 0, notes: 0 });
      const [, ...lines] = (await dumpText(target)).split("\n");
      expect(lines).toEqual(text.split("\n").slice(1));
    });

    test("dependencies edited after the batch restore as edited: the same rows, the same ready and blocked tasks", async () => {
      const source = await open();
      await source.addTasks([newTask("A-1"), newTask("A-2", { depends_on: ["A-1"] }), newTask("A-3")], start, null);
      const edit = (taskId: string, dependsOn: string[]) =>
        source.updateTask({ ref: { projectId: "p", taskId }, agentId: "alice", now: start, depends_on: dependsOn });
      await edit("A-2", []);
      await edit("A-1", ["A-3"]);
      const text = await dumpText(source);
      const target = await open();
      expect(await restoreText(target, text)).toEqual({ tasks: 3, events: 5, counters: 1, reservations: 0, notes: 0 });
      expect(await target.listProjects()).toEqual(await source.listProjects());
      expect((await target.getTask({ projectId: "p", taskId: "A-1" }))?.depends_on).toEqual(["A-3"]);
      // A-1 waits for A-3 alone now: A-3's completion readies it.
      await move(target, "A-3", "in_progress", "agent-1", start);
      await move(target, "A-3", "completed", "agent-1", start);
      expect((await target.findNextTask("p", "pending"))?.task_id).toBe("A-1");
    });

    test("restore refuses a database that holds anything, and a dump cut short, writing nothing", async () => {
      const source = await sqlite();
      await source.addTasks([newTask("A-1"), newTask("A-2", { depends_on: ["A-1"] })], start, null);
      const text = await dumpText(source);
      const storage = await open();
      await storage.allocateId("other", "US", undefined);
      expect(await errorOf(restoreText(storage, text))).toEndWith(
        "already holds data (0 tasks, 0 events, 1 ID counters, 0 reservations); restore loads only into an empty database: point it at a new one",
      );
      const empty = await open();
      const cut = text.split("\n").slice(0, -2).join("\n");
      expect(await errorOf(restoreText(empty, cut))).toBe(
        "The dump stops after line 6 without its end line: it was cut short; make it again",
      );
      expect(await empty.listProjects()).toEqual([]);
      expect(await empty.getTask({ projectId: "p", taskId: "A-1" })).toBeNull();
      expect(await restoreText(empty, text)).toEqual({ tasks: 2, events: 2, counters: 1, reservations: 0, notes: 0 });
    });

    test("restore names the line and what is wrong with it", async () => {
      const cases: Array<[string, string]> = [
        [
          `${dumpHeaderLine}\n${taskLine({ status: "in_progress" })}\n${dumpEndLine}\n`,
          "line 2 (task): an in_progress task needs lease_expires_at, lease_seconds and started_at",
        ],
        [
          `${dumpHeaderLine}\n${taskLine({ created_at: "2026-11-24 21:46" })}\n${dumpEndLine}\n`,
          "line 2 (task): created_at must be a UTC time such as 2026-12-01T12:00:00.000Z",
        ],
        [
          `${dumpHeaderLine}\n${taskLine({ depends_on: ["B-9"] })}\n${dumpEndLine}\n`,
          "line 2 (task): depends_on names B-9, which the dump does not hold in project p",
        ],
        [
          `${dumpHeaderLine}\n${taskLine({ colour: "red" })}\n${dumpEndLine}\n`,
          "line 2 (task): colour is not a field of a task line",
        ],
        [`${dumpHeaderLine}\n${taskLine({})}\n${taskLine({})}\n${dumpEndLine}\n`, "line 3 repeats task A-1 of project p"],
        [`${taskLine({})}\n${dumpEndLine}\n`, "line 1 must be the header line of a dump"],
        [
          `${dumpHeaderLine}\n${dumpEndLine}\n${taskLine({})}\n`,
          'line 2 (end): its counts {"tasks":1,"events":0,"counters":0,"reservations":0,"notes":0} are not what the dump holds ({"tasks":0,"events":0,"counters":0,"reservations":0,"notes":0}): lines are missing; make the dump again',
        ],
        [`${dumpHeaderLine}\nnot json\n`, "line 2 is not valid JSON"],
      ];
      for (const [text, sentence] of cases) {
        const storage = await open();
        expect(await errorOf(restoreText(storage, text))).toBe(sentence);
        expect(await storage.listProjects()).toEqual([]);
      }
    });
  });
}

// Only where CI has no database: there a missing PostgreSQL must fail, never pass as skipped.
if (inCi && !hasPostgres)
  test("the PostgreSQL cases run in CI", () => {
    throw new Error("CI=true but TRACKER_TEST_DATABASE_URL is not set: run under scripts/with-postgres.sh");
  });

describe("a backup", () => {
  test.skipIf(!hasPostgres && !inCi)("on PostgreSQL is a 409 saying to use pg_dump", async () => {
    const storage = await postgres();
    const error = await storage.openBackup().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect([(error as ApiError).status, (error as ApiError).message]).toEqual([
      409,
      "This tracker keeps its data in PostgreSQL: back the database up with pg_dump, or copy its data with task-tracker dump (GET /admin/dump)",
    ]);
  });
});
