/**
 * Import and export (transfer.ts), in process: the parsers and the plan directly; the commands against
 * an in-memory stand-in of the tracker that follows docs/API.md and the content contract of issue 21
 * (GET /tasks pages, the registry, the batch with parents, labels, criteria and notes, PATCH, statuses
 * with cancelled and reopened, each change an event under its X-Agent-Id, GET /tasks/{id} with its
 * notes) and can be told to fail. e2e/import.test.ts drives the compiled binary.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as server from "./index.ts";
import { main, transferHost } from "./index.ts";
import { closedPort, trackerTask } from "./testkit/stand-in.ts";
import * as transfer from "./transfer.ts";
import {
  batchesOf,
  derivedTaskId,
  type FileTask,
  importAuthor,
  parseMarkdown,
  parseTaskFile,
  renderMarkdown,
  runExport,
  runImport,
} from "./transfer.ts";

const API_KEY = "test-key-5f2c9a1e8b7d4c3a";
const PROJECT = "ai-agent-mcp-server";

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) => Response.json(body, { status, headers });
const apiError = (status: number, code: string, error: string) => json({ error, code }, status);

const task = (overrides: Record<string, unknown> = {}) => trackerTask(PROJECT, overrides);

const FIXTURES = join(import.meta.dir, "e2e", "fixtures");
const todo = () => Bun.file(join(FIXTURES, "TODO.md")).text();
const compact = (tasks: FileTask[]) =>
  tasks.map(({ task_id, line, status, priority, depends_on, parent_id }) => ({
    task_id,
    line,
    status,
    priority,
    depends_on,
    ...(parent_id && { parent_id }),
  }));
const numbers = (counters: transfer.Counters) => Object.fromEntries([...counters].map(([type, { number }]) => [type, number]));
const countersOf = (text: string) => numbers(parseTaskFile(text).counters);
const mentionsOf = (text: string) => numbers(parseTaskFile(text).mentions);
const problemsOf = (text: string) => parseTaskFile(text).problems;

/**
 * GET /tasks's order (docs/API.md): pending tasks ready first, by priority, in the order added; then
 * in-progress ones; then finished ones (completed, cancelled), most recently finished first.
 */
function inListOrder(tasks: Record<string, any>[], added: Map<object, number>, finished: Map<object, number>) {
  const rank = { high: 0, medium: 1, low: 2 } as Record<string, number>;
  const done = new Set(tasks.filter((task) => isFinished(task.status)).map((task) => task.task_id));
  const key = (task: Record<string, any>): number[] => {
    if (task.status === "pending") {
      const blocked = task.depends_on.some((id: string) => !done.has(id)) ? 1 : 0;
      return [0, blocked, rank[task.priority]!, added.get(task) ?? 0];
    }
    if (task.status === "in_progress") return [1, 0, 0, added.get(task) ?? 0];
    return [2, -(finished.get(task) ?? 0), -(added.get(task) ?? 0), 0];
  };
  const compare = (a: number[], b: number[]) => a.findIndex((value, i) => value !== b[i]);
  return [...tasks].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    const at = compare(x, y);
    return at === -1 ? 0 : x[at]! - y[at]!;
  });
}

const isFinished = (status: string) => status === "completed" || status === "cancelled";

/** The content fields (contract of issue 21) as the tracker stores a batch's or a PATCH's input. */
function contentOf(input: Record<string, any>) {
  const fields: Record<string, unknown> = {};
  if (input.labels) fields.labels = [...new Set<string>(input.labels.map((label: string) => label.toLowerCase()))].sort();
  if (input.parent_id !== undefined) fields.parent_id = input.parent_id;
  if (input.acceptance_criteria)
    fields.acceptance_criteria = input.acceptance_criteria.map((item: any) =>
      typeof item === "string" ? { text: item, done: false } : { text: item.text, done: item.done },
    );
  return fields;
}

/**
 * The tracker as docs/API.md and the content contract describe it, in memory: enough for import and
 * export (the batch with labels, parents, criteria and notes; PATCH; statuses, cancelled and reopened
 * included; every change an event under its X-Agent-Id; GET /tasks/{id} with its notes), and a switch
 * to fail a request.
 */
function standInTracker(pageSize = 500) {
  const tasks: Record<string, any>[] = [];
  /** When each task was added and finished, in steps: the order GET /tasks lists them in. */
  const added = new Map<object, number>();
  const finished = new Map<object, number>();
  const notes = new Map<object, { at: string; by: string | null; text: string }[]>();
  const events = new Map<object, Record<string, unknown>[]>();
  let clock = 0;
  const counters = new Map<string, number>();
  const writes: { method: string; path: string; body: any; agent: string | null }[] = [];
  /** From this write on, every write fails with 503. */
  const state = { failFromWrite: Infinity, hideCounters: false, listBody: undefined as unknown };
  const at = () => new Date(Date.UTC(2026, 11, 6, 9, 0, clock)).toISOString();
  let eventId = 0;
  const record = (row: object, agent: string | null, type: string, details: Record<string, unknown> = {}) =>
    events.get(row)!.push({ event_id: ++eventId, type, at: at(), agent_id: agent, details });
  const listed = (row: Record<string, any>) => {
    const log = notes.get(row) ?? [];
    return { ...row, notes_count: log.length, last_note: log.at(-1) ?? null };
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const body: any = request.method === "GET" ? undefined : await request.json();
      const agent = request.headers.get("x-agent-id");
      const [, first, second, third, fourth] = url.pathname.split("/");
      const project = url.searchParams.get("project");
      if (request.method !== "GET") {
        writes.push({ method: request.method, path: url.pathname + url.search, body, agent });
        if (writes.length >= state.failFromWrite) return apiError(503, "unavailable", "database unreachable");
      }
      const find = (id: string) => tasks.find((task) => task.task_id === id && task.project_id === project);
      if (request.method === "GET" && first === "tasks" && !second) {
        const start = Number(url.searchParams.get("cursor") ?? 0);
        const parent = url.searchParams.get("parent");
        const inProject = inListOrder(
          tasks.filter((task) => task.project_id === project && (parent === null || task.parent_id === parent)),
          added,
          finished,
        );
        const next = start + pageSize < inProject.length ? String(start + pageSize) : null;
        return json(state.listBody ?? { tasks: inProject.slice(start, start + pageSize).map(listed), next_cursor: next });
      }
      if (request.method === "GET" && first === "ids") {
        const list = [...counters].filter(([key]) => !state.hideCounters && key.startsWith(`${project}/`));
        return json({
          counters: list.map(([key, last]) => ({
            project_id: project,
            artifact_type: key.split("/")[1],
            last_assigned_id: last,
          })),
          reservations: [],
        });
      }
      if (request.method === "PUT" && first === "ids") {
        const key = `${third}/${fourth}`;
        if ((counters.get(key) ?? 0) > body.last_assigned_id) return apiError(409, "conflict", "that would lower the counter");
        counters.set(key, body.last_assigned_id);
        return json({ project_id: third, artifact_type: fourth, last_assigned_id: body.last_assigned_id });
      }
      if (request.method === "POST" && second === "batch") {
        clock++;
        for (const { notes: log = [], ...input } of body.tasks) {
          const row = task({
            labels: [],
            parent_id: null,
            acceptance_criteria: [],
            ...input,
            ...contentOf(input),
            claimed_by: null,
          });
          tasks.push(row);
          added.set(row, tasks.length);
          notes.set(
            row,
            log.map((note: any) => ({ at: note.at ?? at(), by: note.by ?? agent, text: note.text })),
          );
          events.set(row, []);
          record(row, agent, "created", { status: row.status });
          if (isFinished(input.status)) finished.set(row, clock);
        }
        return json({ success: true, tasks_added: body.tasks.length, task_ids: body.tasks.map((t: any) => t.task_id) }, 201);
      }
      const existing = find(decodeURIComponent(second ?? ""));
      if (!existing) return apiError(404, "task_not_found", `Task not found: ${second}`);
      if (request.method === "GET" && third === "events") return json({ events: events.get(existing) });
      if (request.method === "GET" && !third) return json({ task: { ...listed(existing), notes: notes.get(existing) } });
      if (request.method === "PATCH") {
        const changes = { ...body, ...contentOf(body) };
        const details = Object.fromEntries(
          Object.keys(changes).map((field) => [field, { from: existing[field], to: changes[field] }]),
        );
        clock++;
        record(existing, agent, "updated", details);
        return json({ task: Object.assign(existing, changes) });
      }
      if (request.method === "PUT" && third === "status") {
        clock++;
        const from = existing.status;
        if (isFinished(body.status)) finished.set(existing, clock);
        const type =
          body.status === "in_progress"
            ? "claimed"
            : body.status === "pending"
              ? isFinished(from)
                ? "reopened"
                : "released"
              : body.status;
        record(existing, agent, type, { from_status: from });
        const claimedBy = body.status === "in_progress" ? agent : body.status === "completed" ? existing.claimed_by : null;
        const { completion_notes, ...change } = body;
        const stored = body.status === "completed" ? { completion_notes } : {};
        return json({ updated_task: Object.assign(existing, change, stored, { claimed_by: claimedBy }) });
      }
      return apiError(400, "validation_failed", "unexpected request");
    },
  });
  const env = { TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: `http://127.0.0.1:${server.port}`, USER: "gina" };
  /** A person's edit on the board: a PATCH under their name, as the board sends it. */
  const edit = (row: Record<string, any>, changes: Record<string, unknown>, person = "alice") => {
    clock++;
    const details = Object.fromEntries(Object.keys(changes).map((field) => [field, { from: row[field], to: changes[field] }]));
    record(row, person, "updated", details);
    Object.assign(row, changes);
  };
  return { tasks, counters, writes, state, env, notes, events, edit, stop: () => server.stop(true) };
}

async function cli(command: typeof runImport, args: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const exitCode = await command(args, { env, out: (line) => out.push(line), err: (line) => err.push(line) }, transferHost);
  return { exitCode, stdout: out.join("\n"), stderr: err.join("\n") };
}

function fileWith(text: string, name = "TODO.md"): string {
  const path = join(mkdtempSync(join(tmpdir(), "tt-import-")), name);
  writeFileSync(path, text);
  return path;
}

describe("the module beside the server", () => {
  test("keeps the API's rules for IDs, statuses and priorities, and the command's name, as index.ts does", () => {
    const rules = (module: typeof server | typeof transfer) => ({
      idCharacters: module.ID_CHARACTERS.source,
      onlyDots: module.ONLY_DOTS.source,
      artifactType: module.ARTIFACT_TYPE.source,
      statuses: module.TASK_STATUSES,
      priorities: module.PRIORITIES,
    });
    expect(rules(transfer)).toEqual(rules(server));
    expect(transfer.COMMAND).toBe(server.NAME);
  });

  test("refuses a project ID with the tools' own sentence", async () => {
    const result = await cli(runExport, ["--project", ".."], { TASK_TRACKING_API_KEY: API_KEY });
    expect(result).toEqual({
      exitCode: 2,
      stdout: "",
      stderr: `task-tracking-mcp: --project: project_id must not be made only of dots\nUsage: task-tracking-mcp export --project P [--format markdown|json]`,
    });
  });
});

describe("markdown", () => {
  test("a TODO.md becomes tasks: checkboxes are statuses, nested items are children as urgent as their item, (high) and IDs are kept", async () => {
    const parsed = parseMarkdown(await todo());
    expect(parsed.problems).toEqual([]);
    const id = (line: number) => parsed.tasks.find((task) => task.line === line)!.task_id;
    expect(compact(parsed.tasks)).toEqual([
      { task_id: "TASK-012", line: 10, status: "pending", priority: "high", depends_on: [] },
      { task_id: "TASK-010", line: 11, status: "completed", priority: "high", depends_on: [], parent_id: "TASK-012" },
      { task_id: id(12), line: 12, status: "pending", priority: "high", depends_on: [], parent_id: "TASK-012" },
      { task_id: id(13), line: 13, status: "pending", priority: "low", depends_on: [], parent_id: id(12) },
      { task_id: id(14), line: 14, status: "completed", priority: "high", depends_on: [], parent_id: "TASK-012" },
      { task_id: id(15), line: 15, status: "pending", priority: "medium", depends_on: [] },
      { task_id: id(20), line: 20, status: "completed", priority: "medium", depends_on: [] },
      { task_id: id(21), line: 21, status: "pending", priority: "high", depends_on: [] },
      { task_id: id(22), line: 22, status: "pending", priority: "medium", depends_on: ["TASK-012"] },
      { task_id: id(29), line: 29, status: "pending", priority: "medium", depends_on: [] },
      { task_id: id(30), line: 30, status: "completed", priority: "medium", depends_on: [] },
      { task_id: id(39), line: 39, status: "pending", priority: "low", depends_on: [] },
      { task_id: id(40), line: 40, status: "pending", priority: "medium", depends_on: [] },
    ]);
    expect(
      parsed.tasks
        .map((task) => task.task_id)
        .filter((taskId) => taskId.startsWith("md-"))
        .every((taskId) => /^md-[0-9a-f]{10}$/.test(taskId)),
    ).toBe(true);
  });

  test("an item's description is its text, its own lines, and one line naming the headings it sat under", async () => {
    const tag = parseMarkdown(await todo()).tasks.find((task) => task.line === 15)!;
    expect(tag.description).toBe(
      "Tag `v1.0.0` and push the tag\nRun `git tag -s v1.0.0` from a clean checkout; the CI builds the binaries.\n\n" +
        "Section: TODO › Release 1.0",
    );
  });

  test("items' own IDs count for the counters; artifact IDs in the text are mentions; code spans, links, UTF-8 and code blocks neither", async () => {
    expect(countersOf(await todo())).toEqual({ TASK: 12 });
    expect(mentionsOf(await todo())).toEqual({ US: 31, SPEC: 4, TASK: 12 });
    expect(parseMarkdown(await todo()).tasks.some((task) => task.description.startsWith("inside a code block"))).toBe(false);
    const text = "- [ ] Fix UTF-8 and HTTP-2, `ADR-900`, [spec](https://x.test/SPEC-777)\n- [ ] TASK-7: small\n";
    expect({ counters: countersOf(text), mentions: mentionsOf(text) }).toEqual({ counters: { TASK: 7 }, mentions: {} });
    expect(mentionsOf("- [ ] Hash with SHA-256 as RFC-7231 says\n")).toEqual({ SHA: 256, RFC: 7231 });
    expect(countersOf("- [ ] Hash with SHA-256 as RFC-7231 says\n")).toEqual({});
  });

  test("a derived ID follows the item's text and place, not its checkbox or priority", () => {
    const [pending] = parseMarkdown("## A\n- [ ] Write the docs\n").tasks;
    const [checked] = parseMarkdown("## A\n- [x] Write the docs (high)\n").tasks;
    const [edited] = parseMarkdown("## A\n- [ ] Write the docs well\n").tasks;
    const [moved] = parseMarkdown("## B\n- [ ] Write the docs\n").tasks;
    expect(checked!.task_id).toBe(pending!.task_id);
    expect(pending!.task_id).toBe(derivedTaskId(["A"], "Write the docs"));
    expect(new Set([pending!.task_id, edited!.task_id, moved!.task_id]).size).toBe(3);
  });

  test("CRLF line endings and a byte-order mark read the same as LF", async () => {
    const text = await todo();
    expect(parseMarkdown(`\uFEFF${text.replaceAll("\n", "\r\n")}`)).toEqual(parseMarkdown(text));
  });

  test("an empty file, or one without task items, holds no tasks and no problems", () => {
    expect(parseTaskFile("")).toEqual({
      format: "markdown",
      tasks: [],
      counters: new Map(),
      mentions: new Map(),
      problems: [],
      warnings: [],
    });
    expect(parseTaskFile("# Notes\n\n- a plain list\n- [link](https://x.test)\n").tasks).toEqual([]);
  });

  test("bad input is named with its line: checkboxes, IDs, repeated IDs, cycles, a checked item with an open step", () => {
    expect(
      problemsOf("# T\n- [ x] spaced mark\n- [WIP] a tag\n-[ ] no space\n- [x]glued\n- [ ]\n- [ ] **`bad id`** text\n"),
    ).toEqual([
      { line: 2, message: '"[ x]" is not a task checkbox; write "[ ]" (pending) or "[x]" (completed)' },
      { line: 3, message: '"[WIP]" is not a task checkbox; write "[ ]" (pending) or "[x]" (completed)' },
      { line: 4, message: 'write a space between the list marker and the checkbox: "-[ ] no space"' },
      { line: 5, message: 'write a space after the checkbox: "[x]glued"' },
      { line: 6, message: "the item has no text: write what is to be done after the checkbox" },
      { line: 7, message: '"bad id" is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -' },
    ]);
    expect(problemsOf("- [ ] TASK-001: a\n- [ ] TASK-001: b\n- [ ] same\n- [ ] same\n")).toEqual([
      { line: 2, message: "task ID TASK-001 is used already (line 1)" },
    ]);
    expect(problemsOf("- [ ] TASK-001: a\n  - depends on: TASK-002\n- [ ] TASK-002: b\n  - depends on: TASK-001\n")).toEqual([
      { line: 1, message: "dependency cycle: TASK-001 (line 1) → TASK-002 (line 3) → TASK-001" },
    ]);
    expect(problemsOf("- [x] Ship it\n  - [ ] Test it\n  - [-] Dropped\n  - [x] Done\n")).toEqual([
      {
        line: 1,
        message: `${derivedTaskId([], "Ship it")} is checked but its step ${derivedTaskId([derivedTaskId([], "Ship it")], "Test it")} (line 2) is not; check the step, or mark it "[-]" (cancelled)`,
      },
    ]);
    expect(problemsOf("- [x] TASK-001: a\n  - depends on: TASK-002\n- [ ] TASK-002: b\n")).toEqual([
      {
        line: 1,
        message:
          "TASK-001 is checked but depends on TASK-002 (line 3), which is not; a completed task may depend only on completed ones",
      },
    ]);
    expect(problemsOf("- [ ] TASK-001: a\n  - depends on: not/valid\n")[0]!.line).toBe(2);
    expect(problemsOf(`- [ ] TASK-001: ${"x".repeat(10_001)}\n- [ ] TASK-002: nul \0\n`)).toEqual([
      { line: 1, message: "TASK-001: its description is 10001 characters (its section line included); at most 10000" },
      { line: 2, message: "TASK-002: its text holds a NUL character" },
    ]);
  });

  test("labels, acceptance criteria and notes under an item are its own, not its steps", () => {
    const [item, ...rest] = parseMarkdown(
      [
        "- [ ] Login form (high)",
        "  - labels: Frontend, bug, frontend",
        "  - acceptance criteria:",
        "    - [x] tests pass",
        "    - [ ] docs updated",
        "      in README.md too",
        "  - note by claude-gina at 2026-12-05T10:00:00.000Z: tried X,",
        "    Y is left",
        "  - note at 2026-12-05T11:00:00.000Z: no author",
        "  - [ ] A real step",
      ].join("\n"),
    ).tasks;
    expect({ labels: item!.labels, criteria: item!.acceptance_criteria, notes: item!.notes }).toEqual({
      labels: ["bug", "frontend"],
      criteria: [
        { text: "tests pass", done: true },
        { text: "docs updated\nin README.md too", done: false },
      ],
      notes: [
        { at: "2026-12-05T10:00:00.000Z", by: "claude-gina", text: "tried X,\nY is left" },
        { at: "2026-12-05T11:00:00.000Z", by: null, text: "no author" },
      ],
    });
    expect(rest.map(({ description, parent_id, priority }) => ({ description, parent_id, priority }))).toEqual([
      { description: "A real step", parent_id: item!.task_id, priority: "high" },
    ]);
    expect(
      problemsOf("- [ ] a\n  - labels: ok, not ok!\n- [x] b\n  - acceptance criteria:\n    - [ ] open\n    - [x] done\n"),
    ).toEqual([
      { line: 2, message: 'label "ok!" is not 1 to 40 characters of a-z 0-9 . _ - : /' },
      { line: 3, message: `${derivedTaskId([], "b")} is checked but its acceptance criteria are not all ticked off: 1. "open"` },
    ]);
  });

  test("an 'Acceptance criteria:' line in an item's text makes the checklist under it, up to a blank line, criteria", () => {
    const tasks = parseMarkdown(
      [
        "- [ ] Login form",
        "  Acceptance criteria:",
        "  - [x] tests pass",
        "  - [ ] docs updated",
        "",
        "  - [ ] A real step",
        "- [ ] Signup",
        "  **Acceptance criteria**",
        "    - [ ] works",
        "",
        "Acceptance criteria:",
        "- [ ] Outside any item, the line is the section's text",
      ].join("\n"),
    ).tasks;
    expect(
      tasks.map(({ description, acceptance_criteria, parent_id }) => ({ description, acceptance_criteria, parent_id })),
    ).toEqual([
      {
        description: "Login form",
        acceptance_criteria: [
          { text: "tests pass", done: true },
          { text: "docs updated", done: false },
        ],
        parent_id: undefined,
      },
      { description: "A real step", acceptance_criteria: [], parent_id: tasks[0]!.task_id },
      { description: "Signup", acceptance_criteria: [{ text: "works", done: false }], parent_id: undefined },
      { description: "Outside any item, the line is the section's text", acceptance_criteria: [], parent_id: undefined },
    ]);
  });

  test("5,000 items parse in one pass, each with its own ID", () => {
    const text = Array.from({ length: 5000 }, (_, i) => `- [${i % 3 ? " " : "x"}] Item number ${i}`).join("\n");
    const parsed = parseMarkdown(text);
    expect({
      tasks: parsed.tasks.length,
      ids: new Set(parsed.tasks.map((task) => task.task_id)).size,
      problems: parsed.problems,
    }).toEqual({ tasks: 5000, ids: 5000, problems: [] });
  });
});

describe("GitHub issues", () => {
  test("open issues are pending, closed ones completed, priority:* labels the priority", async () => {
    const parsed = parseTaskFile(await Bun.file(join(FIXTURES, "gh-issues.json")).text());
    expect(
      parsed.tasks.map(({ task_id, status, priority, completion_notes }) => ({ task_id, status, priority, completion_notes })),
    ).toEqual([
      { task_id: "gh-42", status: "pending", priority: "high", completion_notes: "" },
      { task_id: "gh-41", status: "pending", priority: "medium", completion_notes: "" },
      { task_id: "gh-40", status: "completed", priority: "low", completion_notes: "Closed on GitHub as issue #40" },
      { task_id: "gh-7", status: "completed", priority: "medium", completion_notes: "Closed on GitHub as issue #7" },
    ]);
    expect(parsed.tasks.map((issue) => issue.labels)).toEqual([["bug"], ["enhancement"], [], []]);
    expect(parsed.tasks[0]!.description).toStartWith("Claims survive a tracker restart\n\nWhen the tracker restarts");
    expect(parsed.tasks[0]!.description).not.toContain("\r");
    expect({ counters: numbers(parsed.counters), mentions: numbers(parsed.mentions) }).toEqual({
      counters: {},
      mentions: { SPEC: 7, US: 27 },
    });
  });

  test("what is wrong names the issue: a missing title, an unknown priority, JSON that is not JSON", () => {
    expect(problemsOf('[{"number": 3, "state": "OPEN"}]')).toEqual([
      { line: 0, message: "issue 1 of the list: title: Invalid input: expected string, received undefined" },
    ]);
    expect(problemsOf('[{"number": 3, "title": "x", "state": "OPEN", "labels": [{"name": "priority:whenever"}]}]')).toEqual([
      {
        line: 0,
        message: "issue #3: label priority:whenever is not a priority; use priority:high, priority:medium or priority:low",
      },
    ]);
    expect(problemsOf("[{oops")[0]!.message).toStartWith("the file starts like JSON but is not:");
    expect(problemsOf('{"issues": []}')[0]!.message).toStartWith("JSON input must be");
  });

  test("labels come as task labels: lower-cased, spaces as dashes; one that cannot be a label is left out with a warning", () => {
    const labels = ["Good first issue", "area/CLI", "priority:high", "🚀", "x".repeat(41)].map((name) => ({ name }));
    const parsed = parseTaskFile(JSON.stringify([{ number: 5, title: "T", body: "", state: "OPEN", labels }]));
    expect(parsed.tasks[0]!.labels).toEqual(["area/cli", "good-first-issue"]);
    expect(parsed.warnings).toEqual([
      { line: 0, message: 'issue #5: label "🚀" cannot be a task label; left out' },
      { line: 0, message: `issue #5: label "${"x".repeat(41)}" cannot be a task label; left out` },
    ]);
  });

  test("a body past 10,000 characters is cut, saying where the rest is", () => {
    const [issue] = parseTaskFile(
      JSON.stringify([{ number: 9, title: "Long", body: "y".repeat(20_000), state: "OPEN", labels: [] }]),
    ).tasks;
    expect(issue!.description.length).toBeLessThanOrEqual(10_000);
    expect(issue!.description).toEndWith("…(cut: the rest is in issue #9)");
  });
});

describe("export", () => {
  const tracked = (fields: Record<string, unknown>) => task(fields) as any;
  const asTracked = (tasks: FileTask[]) => tasks.map(({ line: _, ...rest }) => tracked({ ...rest, project_id: "p" }));

  test("the markdown export reads back to the same tasks, tricky descriptions and notes included", async () => {
    const tasks = asTracked(parseMarkdown(await todo()).tasks);
    tasks.push(
      tracked({
        task_id: "login-form",
        description: "Ends like (high)\n- [ ] not a step\n\\- [x] escaped already\n- depends on: nothing\n  indented",
        priority: "medium",
      }),
      tracked({
        task_id: "fenced",
        description: "Code:\n```\n- [ ] in a block\n\\- kept\n```\nafter",
        depends_on: ["unclosed"],
      }),
      tracked({
        task_id: "unclosed",
        description: "Open fence:\n~~~\n- [ ] inside",
        status: "completed",
        completion_notes: "```\n- [x] in notes",
      }),
      tracked({
        task_id: "TASK-099",
        status: "completed",
        completion_notes: "Done.\n- [x] with a list\n\nand a blank line",
        inputs: ["US-053"],
        outputs: ["index.ts", "README.md"],
      }),
      tracked({
        task_id: "TASK-100",
        status: "in_progress",
        claimed_by: "agent-7",
        lease_expires_at: "2026-12-01T12:00:00.000Z",
      }),
    );
    const back = parseTaskFile(renderMarkdown("p", tasks));
    expect(back.problems).toEqual([]);
    const fields = ({ task_id, description, priority, depends_on, inputs, outputs, status, completion_notes }: any) => ({
      task_id,
      description,
      priority,
      depends_on,
      inputs,
      outputs,
      status: status === "in_progress" ? "pending" : status,
      completion_notes,
    });
    const byId = (list: any[]) => list.map(fields).sort((a, b) => a.task_id.localeCompare(b.task_id));
    expect(byId(back.tasks)).toEqual(byId(tasks));
  });
});

describe("batchesOf", () => {
  test("batches hold 500 tasks and stay under 1 MiB, in dependency order", () => {
    const chain: FileTask[] = Array.from({ length: 1200 }, (_, i) => ({
      task_id: `T-${i}`,
      line: i + 1,
      status: "pending",
      priority: "medium",
      description: `step ${i}`,
      depends_on: i ? [`T-${i - 1}`] : [],
      inputs: [],
      outputs: [],
      completion_notes: "",
      labels: [],
      acceptance_criteria: [],
      notes: [],
    }));
    expect(batchesOf(chain, "p").map((batch) => batch.length)).toEqual([500, 500, 200]);
    const big = chain.slice(0, 300).map((item) => ({ ...item, description: "z".repeat(9000) }));
    const batches = batchesOf(big, "p");
    expect(batches.flat().map((input) => input.task_id)).toEqual(big.map((item) => item.task_id));
    expect(batches.length).toBe(4);
    for (const batch of batches) expect(Buffer.byteLength(JSON.stringify({ tasks: batch }))).toBeLessThan(1024 * 1024);
  });
});

describe("the commands", () => {
  test("import adds the tasks and raises the counters; a second import adds and changes nothing", async () => {
    const tracker = standInTracker(4);
    try {
      const path = fileWith(await todo());
      const first = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect({ exitCode: first.exitCode, stderr: first.stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(first.stdout).toContain(
        "Added 13 tasks:\n  + TASK-012       pending   high   Publish the npm package  (line 10)\n  + TASK-010       completed high   Write `scripts/pack.ts` for the five platforms  under TASK-012  (line 11)",
      );
      expect(first.stdout).toContain("Raised 1 ID counter:\n  ↑ TASK           0 → 12 (next TASK-013)  (line 10)");
      expect(first.stdout).toEndWith("Done: added 13 tasks, changed 0, raised 1 ID counter; 0 already up to date.");
      expect(tracker.tasks.length).toBe(13);
      expect(tracker.writes.filter((write) => write.path === "/tasks/batch").length).toBe(1);
      const children = (id: string) => tracker.tasks.filter((t) => t.parent_id === id).map((t) => t.task_id);
      expect(children("TASK-012")).toEqual(
        parseMarkdown(await todo())
          .tasks.filter((item) => item.parent_id === "TASK-012")
          .map((item) => item.task_id),
      );
      expect(children("TASK-012").length).toBe(3);
      expect(tracker.tasks.find((t) => t.task_id === "TASK-012")!.depends_on).toEqual([]);
      expect(tracker.writes.every((write) => write.agent === "gina")).toBe(true);
      expect(Object.fromEntries(tracker.counters)).toEqual({ "web/TASK": 12 });

      const writesBefore = tracker.writes.length;
      const second = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(second).toEqual({
        exitCode: 0,
        stdout: "Done: added 0 tasks, changed 0, raised 0 ID counters; 13 already up to date.",
        stderr: "",
      });
      expect(tracker.writes.length).toBe(writesBefore);
    } finally {
      tracker.stop();
    }
  });

  test("--dry-run prints what it would do and sends no write", async () => {
    const tracker = standInTracker();
    try {
      const result = await cli(
        runImport,
        [fileWith("# Plan\n- [ ] US-040: Write the story (high)\n"), "--project", "web", "--dry-run"],
        tracker.env,
      );
      expect(result).toEqual({
        exitCode: 0,
        stdout: [
          "Would add 1 task:",
          "  + US-040         pending   high   Write the story  (line 2)",
          "Would raise 1 ID counter:",
          "  ↑ US             0 → 40 (next US-041)  (line 2)",
          "Dry run, nothing was changed: would add 1 task, change 0, raise 1 ID counter; 0 already up to date.",
        ].join("\n"),
        stderr: "",
      });
      expect(tracker.writes).toEqual([]);
    } finally {
      tracker.stop();
    }
  });

  test("an edited file changes priorities and texts, completes checked items, and leaves held and completed ones be", async () => {
    const tracker = standInTracker();
    try {
      const file = (lines: string[]) => fileWith(lines.join("\n"));
      await cli(
        runImport,
        [
          file(["- [ ] TASK-001: One", "- [ ] TASK-002: Two", "- [ ] TASK-003: Three", "- [ ] TASK-004: Four"]),
          "--project",
          "web",
        ],
        tracker.env,
      );
      tracker.tasks[2]!.status = "in_progress";
      tracker.tasks[2]!.claimed_by = "agent-7";
      tracker.tasks[3]!.status = "completed";
      tracker.writes.length = 0;
      const edited = file([
        "- [ ] TASK-001: One, reworded (high)",
        "- [x] TASK-002: Two",
        "- [x] TASK-003: Three",
        "- [ ] TASK-004: Four, reworded (low)",
        "- [ ] TASK-005: Five",
      ]);
      const result = await cli(runImport, [edited, "--project", "web"], tracker.env);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe(
        [
          "Added 1 task:",
          "  + TASK-005       pending   medium Five  (line 5)",
          "Changed 2 tasks:",
          '  ~ TASK-001       priority medium → high; description → "One, reworded"  (line 1)',
          "  ~ TASK-002       pending → completed  (line 2)",
          "Raised 1 ID counter:",
          "  ↑ TASK           4 → 5 (next TASK-006)  (line 5)",
          "Note: line 3: TASK-003 is checked, but agent-7 is working on it: it is left to its holder",
          "Note: line 4: TASK-004 is completed in the project, so its text and priority stay as they are there",
          "Done: added 1 task, changed 2, raised 1 ID counter; 2 already up to date.",
        ].join("\n"),
      );
      expect(
        tracker.writes.map(({ method, path, body }) => [method, path, body.status ?? body.priority ?? body.tasks?.length]),
      ).toEqual([
        ["POST", "/tasks/batch", 1],
        ["PATCH", "/tasks/TASK-001?project=web", "high"],
        ["PUT", "/tasks/TASK-002/status?project=web", "in_progress"],
        ["PUT", "/tasks/TASK-002/status?project=web", "completed"],
        ["PUT", "/ids/registry/web/TASK", undefined],
      ]);
      expect(tracker.writes[3]!.body.completion_notes).toBe("Checked in TODO.md");
    } finally {
      tracker.stop();
    }
  });

  test("a project imported before 0.3.0, whose items depended on their steps, gets items with children from the next import", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith("- [ ] Parent\n  - [ ] Step\n");
      await cli(runImport, [path, "--project", "web"], tracker.env);
      const [parent, step] = tracker.tasks;
      Object.assign(parent!, { depends_on: [step!.task_id] });
      Object.assign(step!, { parent_id: null });
      tracker.writes.length = 0;
      const result = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(result.stdout).toBe(
        [
          "Changed 2 tasks:",
          `  ~ ${parent!.task_id}  depends on ${step!.task_id} → none  (line 1)`,
          `  ~ ${step!.task_id}  step of nothing → ${parent!.task_id}  (line 2)`,
          "Done: added 0 tasks, changed 2, raised 0 ID counters; 0 already up to date.",
        ].join("\n"),
      );
      expect(tracker.writes.map(({ method, path, body }) => [method, path, body])).toEqual([
        ["PATCH", `/tasks/${parent!.task_id}?project=web`, { depends_on: [] }],
        ["PATCH", `/tasks/${step!.task_id}?project=web`, { parent_id: parent!.task_id }],
      ]);
    } finally {
      tracker.stop();
    }
  });

  test("derived-ID tasks the file no longer holds are named; --archive cancels the pending ones and leaves an agent's", async () => {
    const tracker = standInTracker();
    try {
      await cli(
        runImport,
        [fileWith("- [ ] Parent\n  - [ ] Step\n- [ ] Gone soon\n- [ ] Held\n- [x] Done\n"), "--project", "web"],
        tracker.env,
      );
      const [, step, gone, held] = tracker.tasks;
      Object.assign(held!, { status: "in_progress", claimed_by: "agent-7" });
      const path = fileWith("- [ ] Parent\n- [x] Done\n");
      const noted = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(noted.stdout).toBe(
        [
          `Note: 3 tasks of the project with a derived ID are not in this file (an item reworded or moved, or another file's): ${step!.task_id}, ${gone!.task_id}, ${held!.task_id}; --archive cancels them`,
          "Done: added 0 tasks, changed 0, raised 0 ID counters; 2 already up to date.",
        ].join("\n"),
      );
      tracker.writes.length = 0;
      const archived = await cli(runImport, [path, "--project", "web", "--archive"], tracker.env);
      expect(archived.stdout).toBe(
        [
          "Cancelled 2 tasks no longer in the file:",
          `  - ${step!.task_id}  Step`,
          `  - ${gone!.task_id}  Gone soon`,
          `Note: 1 task no longer in this file is in progress, left to its holder: ${held!.task_id}`,
          "Done: added 0 tasks, changed 0, cancelled 2, raised 0 ID counters; 2 already up to date.",
        ].join("\n"),
      );
      expect(tracker.writes.map(({ path, body }) => [path, body])).toEqual([
        [
          `/tasks/${step!.task_id}/status?project=web`,
          { status: "cancelled", completion_notes: "No longer in TODO.md (import --archive)" },
        ],
        [
          `/tasks/${gone!.task_id}/status?project=web`,
          { status: "cancelled", completion_notes: "No longer in TODO.md (import --archive)" },
        ],
      ]);
      expect([step!.status, gone!.status, held!.status]).toEqual(["cancelled", "cancelled", "in_progress"]);
      const again = await cli(runImport, [path, "--project", "web", "--archive"], tracker.env);
      expect(again.stdout).toEndWith("Done: added 0 tasks, changed 0, raised 0 ID counters; 2 already up to date.");
      const empty = await cli(runImport, [fileWith("# Nothing here yet\n"), "--project", "web", "--archive"], tracker.env);
      expect(empty.stdout).toContain("Note: --archive cancels nothing when the file holds no task: is it the right file?\n");
      expect(tracker.tasks.filter((row) => row.status === "cancelled").length).toBe(2);
    } finally {
      tracker.stop();
    }
  });

  test("a checked item may not depend on a task still open in the project", async () => {
    const tracker = standInTracker();
    try {
      await cli(runImport, [fileWith("- [ ] TASK-001: Open\n"), "--project", "web"], tracker.env);
      const checked = await cli(
        runImport,
        [fileWith("- [x] TASK-009: Done already\n  - depends on: TASK-001\n"), "--project", "web"],
        tracker.env,
      );
      expect(checked.stderr).toContain(":1: TASK-009 is checked but depends on TASK-001, which is pending in the project\n");
    } finally {
      tracker.stop();
    }
  });

  test("a counter raised by someone else meanwhile is fine; a malformed answer of the service is named", async () => {
    const tracker = standInTracker();
    try {
      tracker.counters.set("web/US", 90);
      tracker.state.hideCounters = true;
      const raced = await cli(runImport, [fileWith("- [ ] Write US-012\n"), "--project", "web"], tracker.env);
      expect({ exitCode: raced.exitCode, counter: tracker.counters.get("web/US") }).toEqual({ exitCode: 0, counter: 90 });
      tracker.state.listBody = { tasks: "none" };
      const broken = await cli(runExport, ["--project", "web"], tracker.env);
      expect(broken).toEqual({
        exitCode: 1,
        stdout: "",
        stderr: "Task Tracking API returned an invalid response: tasks: Invalid input: expected array, received string",
      });
      expect(problemsOf('{"tasks": [{"task_id": "a", "status": "done"}]}')[0]!.message).toStartWith("tasks[0].description: ");
      expect(problemsOf('{"tasks": [{"task_id": "a b", "description": "x", "status": "pending"}]}')[0]!.message).toBe(
        'tasks[0].task_id "a b" is not a valid task ID',
      );
      // URLs drop "." and "..": a task so named could never be claimed, completed or edited.
      expect(problemsOf('{"tasks": [{"task_id": "..", "description": "x", "status": "pending"}]}')[0]!.message).toBe(
        'tasks[0].task_id ".." is not a valid task ID',
      );
      expect(problemsOf("- [ ] **`.`** a step nobody could reach\n")).toEqual([
        { line: 1, message: '"." is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -' },
      ]);
    } finally {
      tracker.stop();
    }
  });

  test("bad input: every problem with its line on stderr, exit 1, and nothing sent", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith("- [ ] TASK-001: a\n- [] b\n- [ ] TASK-002: c\n  - depends on: not/valid\n");
      const result = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(result).toEqual({
        exitCode: 1,
        stdout: "",
        stderr: [
          `${path}:2: warning: "[]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`,
          `${path}:4: depends on "not/valid", which is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -`,
          `Nothing was imported: 1 problem in ${path}.`,
        ].join("\n"),
      });
      const unknown = await cli(
        runImport,
        [fileWith("- [ ] TASK-001: a\n  - depends on: TASK-404\n"), "--project", "web"],
        tracker.env,
      );
      expect(unknown.stderr).toContain(
        ":1: TASK-001 depends on TASK-404, which is neither in the file nor in the project\nNothing was imported: 1 problem in",
      );
      expect(tracker.writes).toEqual([]);
    } finally {
      tracker.stop();
    }
  });

  test("when the service fails between batches, the user is told, and running the import again finishes it", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith(Array.from({ length: 1200 }, (_, i) => `- [ ] Item ${i}`).join("\n"));
      tracker.state.failFromWrite = 2;
      const failed = await cli(runImport, [path, "--project", "web"], { ...tracker.env, TASK_TRACKING_TIMEOUT_MS: "2000" });
      expect(failed.exitCode).toBe(1);
      expect(failed.stderr).toStartWith(
        "Stopped after adding 500 of 1200 tasks and changing 0 of 0. Run the same import again to finish",
      );
      expect(failed.stderr).toEndWith("Task Tracking API error: 503 - database unreachable");
      tracker.state.failFromWrite = Infinity;
      const again = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(again.stdout).toEndWith("Done: added 700 tasks, changed 0, raised 0 ID counters; 500 already up to date.");
      expect(tracker.tasks.length).toBe(1200);
    } finally {
      tracker.stop();
    }
  });

  test("usage errors exit 2; an unreadable file, a missing key or an unreachable service exit 1", async () => {
    const env = { TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: `http://127.0.0.1:${await closedPort()}` };
    expect(await cli(runImport, ["--project", "web"], env)).toEqual({
      exitCode: 2,
      stdout: "",
      stderr:
        "task-tracking-mcp: import needs a FILE\nUsage: task-tracking-mcp import FILE --project P [--dry-run] [--force] [--archive]",
    });
    expect((await cli(runImport, ["a.md", "b.md", "--project", "web"], env)).exitCode).toBe(2);
    expect((await cli(runImport, ["a.md"], env)).stderr).toStartWith("task-tracking-mcp: import needs --project P");
    expect((await cli(runImport, ["a.md", "--project", "no spaces"], env)).stderr).toStartWith(
      "task-tracking-mcp: --project: project_id may hold only",
    );
    expect((await cli(runImport, ["a.md", "--project"], env)).stderr).toStartWith("task-tracking-mcp: --project needs a value");
    expect((await cli(runImport, ["a.md", "--project=web", "--yes"], env)).stderr).toStartWith(
      'task-tracking-mcp: import does not take "--yes"',
    );
    expect((await cli(runExport, ["--project", "web", "--format", "xml"], env)).stderr).toStartWith(
      'task-tracking-mcp: --format must be markdown or json, not "xml"',
    );
    expect((await cli(runExport, ["out.md", "--project", "web"], env)).exitCode).toBe(2);
    expect(await cli(runImport, ["/nonexistent/TODO.md", "--project", "web"], env)).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: "cannot read /nonexistent/TODO.md: ENOENT",
    });
    expect(await cli(runImport, ["a.md", "--project", "web"], {})).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: "TASK_TRACKING_API_KEY environment variable not set",
    });
    expect(await cli(runExport, ["--project", "web"], { ...env, TASK_TRACKING_TIMEOUT_MS: "1000" })).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: `Task Tracking microservice unavailable: Connection refused at ${env.TASK_TRACKING_URL}`,
    });
    expect(await main(["import"])).toBe(2);
    expect(await main(["export", "--format", "json"])).toBe(2);
  });

  test("export reads every page; markdown imports back into another project as the same tasks, JSON too", async () => {
    const tracker = standInTracker(5);
    try {
      await cli(runImport, [fileWith(await todo()), "--project", "web"], tracker.env);
      const markdown = await cli(runExport, ["--project", "web"], tracker.env);
      expect(markdown.exitCode).toBe(0);
      expect(markdown.stdout.match(/^\s*- \[[ x]\] \*\*/gm)!.length).toBe(13);
      const json = await cli(runExport, ["--project=web", "--format=json"], tracker.env);
      expect(JSON.parse(json.stdout).tasks.length).toBe(13);
      const same = ({ task_id, description, priority, depends_on, status, completion_notes }: any) => ({
        task_id,
        description,
        priority,
        depends_on,
        status,
        completion_notes,
      });
      const tasksOf = (project: string) =>
        tracker.tasks
          .filter((t) => t.project_id === project)
          .map(same)
          .sort((a, b) => a.task_id.localeCompare(b.task_id));
      const web = tasksOf("web");
      for (const [copy, text, name] of [
        ["copy-md", markdown.stdout, "export.md"],
        ["copy-json", json.stdout, "export.json"],
      ] as const) {
        const result = await cli(runImport, [fileWith(text, name), "--project", copy], tracker.env);
        expect(result.stdout).toEndWith("Done: added 13 tasks, changed 0, raised 1 ID counter; 0 already up to date.");
        expect(tasksOf(copy)).toEqual(web);
        const reimport = await cli(runImport, [fileWith(text, name), "--project", "web"], tracker.env);
        expect(reimport.stdout).toBe("Done: added 0 tasks, changed 0, raised 0 ID counters; 13 already up to date.");
      }
    } finally {
      tracker.stop();
    }
  });
});

describe("real files import whole", () => {
  const roadmap = () => Bun.file(join(FIXTURES, "ROADMAP.md")).text();

  test("a repeated item is a task of its own, its derived ID telling the two apart, the same on every read", () => {
    const text = "## A\n- [ ] a\n- [ ] b\n- [ ] a\n  - [ ] step\n- [ ] a\n";
    const parsed = parseMarkdown(text);
    expect(parsed.problems).toEqual([]);
    const [first, , second, step, third] = parsed.tasks;
    expect([first!.task_id, second!.task_id, third!.task_id]).toEqual([
      derivedTaskId(["A"], "a"),
      derivedTaskId(["A", "#2"], "a"),
      derivedTaskId(["A", "#3"], "a"),
    ]);
    expect(step!.task_id).toBe(derivedTaskId(["A", second!.task_id], "step"));
    expect(parseMarkdown(text)).toEqual(parsed);
    // An ID written twice is still two tasks claiming one ID.
    expect(problemsOf("- [ ] TASK-001: a\n- [ ] TASK-001: a\n")).toEqual([
      { line: 2, message: "task ID TASK-001 is used already (line 1)" },
    ]);
  });

  test("[-] is cancelled; a mark other than [ ], [x], [X] and [-] imports the item as pending, with a warning naming its line", () => {
    const parsed = parseMarkdown("- [-] Dropped\n- [/] Half done\n- [~] Maybe\n- [?] Unsure\n- [] Empty\n- [X] Done\n");
    expect(parsed.problems).toEqual([]);
    expect(parsed.tasks.map((task) => task.status)).toEqual([
      "cancelled",
      "pending",
      "pending",
      "pending",
      "pending",
      "completed",
    ]);
    const neither = (mark: string) => `"[${mark}]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`;
    expect(parsed.warnings).toEqual([
      { line: 2, message: neither("/") },
      { line: 3, message: neither("~") },
      { line: 4, message: neither("?") },
      { line: 5, message: neither("") },
    ]);
    expect(parsed.tasks[0]!.task_id).toBe(derivedTaskId([], "Dropped"));
  });

  test("a section's text stays out of its tasks: one line names the headings, bold label and plain items above", async () => {
    const parsed = parseMarkdown(await roadmap());
    const described = (line: number) => parsed.tasks.find((task) => task.line === line)!.description;
    expect(described(15)).toBe("Set up the database schema\n\nSection: Roadmap › Phase 1: Foundations › Backend");
    expect(described(24)).toBe("Draft\n\nSection: Roadmap › Phase 1: Foundations › Frontend");
    expect(described(32)).toBe("Support Internet Explorer\n\nSection: Roadmap › Phase 2: Polish");
    expect(parsed.tasks.some((task) => /---|review by someone|SHA-256|\*\*/.test(task.description))).toBe(false);
    const plain = parseMarkdown("# Plan\n\nSome words.\n\n- Backend\n  - [ ] Write it\n").tasks[0]!;
    expect(plain.description).toBe("Write it\n\nSection: Plan › Backend");
    const afterRule = parseMarkdown("# Plan\n**Backend**\n- [ ] a\n\n---\n\n- [ ] b\n").tasks[1]!;
    expect(afterRule.description).toBe("b\n\nSection: Plan");
  });

  test("derived IDs stay those of 0.2.0, which put the section's text into the description", async () => {
    expect(parseMarkdown(await todo()).tasks.map((task) => task.task_id)).toEqual([
      "TASK-012",
      "TASK-010",
      "md-bf39a799df",
      "md-8b45aec1ac",
      "md-6796934d30",
      "md-685529c1bf",
      "md-db938dbdc5",
      "md-4d2a610245",
      "md-e31d17dde5",
      "md-6b227b6310",
      "md-58409cd114",
      "md-bb14bdafac",
      "md-9589d53e78",
    ]);
  });

  test("an item's wrapped lines stay in its description: indented ones without the indentation they share, lazy ones too", async () => {
    const parsed = parseMarkdown(await roadmap());
    expect(parsed.tasks.find((task) => task.line === 16)!.description).toBe(
      "Write the migration tool, which reads the old schema\nand writes the new one in one transaction\n\n" +
        "Section: Roadmap › Phase 1: Foundations › Backend",
    );
    const [code] = parseMarkdown("- [ ] Run it\n      ```\n      make\n        --all\n      ```\n").tasks;
    expect(code!.description).toBe("Run it\n```\nmake\n  --all\n```");
    // Wrapped without indentation (CommonMark's lazy continuation) too, up to a blank line or a new block.
    const lazy = parseMarkdown(
      "# A\n- [ ] Long item that\nwraps lazily\n  - [ ] Step\ntoo\n\nA paragraph.\n- [ ] Next\n<!-- a comment -->\n## B\n",
    ).tasks;
    expect(lazy.map((item) => item.description)).toEqual([
      "Long item that\nwraps lazily\n\nSection: A",
      "Step\ntoo\n\nSection: A",
      "Next\n\nSection: A",
    ]);
  });

  test("a type only mentioned raises no counter, unless an item is named by it or the project has one", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith(await roadmap());
      const fresh = await cli(runImport, [path, "--project", "web", "--dry-run"], tracker.env);
      expect(fresh.stdout).toContain("Would raise 1 ID counter:\n  ↑ TASK           0 → 7 (next TASK-008)  (line 36)\n");
      const typed = await cli(
        runImport,
        [fileWith("- [ ] TASK-002: Hash with SHA-256, after TASK-031\n"), "--project", "web", "--dry-run"],
        tracker.env,
      );
      expect(typed.stdout).toContain("Would raise 1 ID counter:\n  ↑ TASK           0 → 31 (next TASK-032)  (line 1)\n");
      tracker.counters.set("web/RFC", 12);
      const known = await cli(runImport, [path, "--project", "web", "--dry-run"], tracker.env);
      expect(known.stdout).toContain(
        "Would raise 2 ID counters:\n  ↑ TASK           0 → 7 (next TASK-008)  (line 36)\n  ↑ RFC            12 → 7231 (next RFC-7232)  (line 3)\n",
      );
    } finally {
      tracker.stop();
    }
  });

  test("import prints the warnings and imports the whole file; a second import adds nothing", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith(await roadmap(), "ROADMAP.md");
      const first = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(first.exitCode).toBe(0);
      expect(first.stderr.split("\n").map((line) => line.slice(path.length))).toEqual([
        ':20: warning: "[/]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending',
        ':25: warning: "[~]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending',
        ':33: warning: "[?]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending',
      ]);
      expect(first.stdout).toEndWith("Done: added 16 tasks, changed 0, raised 1 ID counter; 0 already up to date.");
      const writes = tracker.writes.length;
      const second = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(second.stdout).toBe("Done: added 0 tasks, changed 0, raised 0 ID counters; 16 already up to date.");
      expect(tracker.writes.length).toBe(writes);
    } finally {
      tracker.stop();
    }
  });

  test("a file imported by 0.2.0 imports again with no new task: the shorter descriptions are changes", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith(await todo());
      await cli(runImport, [path, "--project", "web"], tracker.env);
      const publish = tracker.tasks.find((row) => row.task_id === "TASK-012")!;
      const tag = tracker.tasks.find((row) => row.description.startsWith("Tag `v1.0.0`"))!;
      const paragraph = "\nThe release needs a green CI on every platform and a signed tag.";
      publish.description += paragraph;
      tag.description += paragraph;
      const again = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(again.stdout).toBe(
        [
          "Changed 2 tasks:",
          '  ~ TASK-012       description → "Publish the npm package" (and more lines)  (line 10)',
          `  ~ ${tag.task_id}  description → "Tag \`v1.0.0\` and push the tag" (and more lines)  (line 15)`,
          "Done: added 0 tasks, changed 2, raised 0 ID counters; 11 already up to date.",
        ].join("\n"),
      );
      expect(publish.description).toBe("Publish the npm package\n\nSection: TODO › Release 1.0");
    } finally {
      tracker.stop();
    }
  });
});

describe("the file people keep", () => {
  const tracked = (fields: Record<string, unknown>) => task({ inputs: [], outputs: [], ...fields }) as any;

  test("the export writes sections as headings, steps under their item, labels, criteria and notes, and reads back to the same tasks", () => {
    const tasks = [
      tracked({
        task_id: "TASK-002",
        description: "Waiting\n\nSection: Plan › Backend",
        depends_on: ["TASK-003"],
        labels: ["backend", "bug"],
      }),
      tracked({
        task_id: "TASK-004",
        description: "Child step\n\nSection: Plan › Backend",
        parent_id: "TASK-002",
        acceptance_criteria: [
          { text: "tests pass", done: true },
          { text: "docs updated", done: false },
        ],
      }),
      tracked({
        task_id: "TASK-005",
        description: "Low step\n\nSection: Plan › Backend",
        parent_id: "TASK-002",
        priority: "low",
      }),
      tracked({ task_id: "TASK-001", description: "Claimed", status: "in_progress", claimed_by: "agent-7", priority: "medium" }),
      tracked({ task_id: "TASK-006", description: "Frontend thing\n\nSection: Plan › Frontend", priority: "medium" }),
      tracked({
        task_id: "TASK-007",
        description: "Dropped\n\nSection: Plan › Frontend",
        status: "cancelled",
        priority: "medium",
        notes: [{ at: "2026-12-05T11:00:00.000Z", by: null, text: "no longer needed" }],
      }),
      tracked({
        task_id: "TASK-003",
        description: "Done\n\nSection: Plan",
        status: "completed",
        priority: "low",
        claimed_by: "claude-gina",
        completed_at: "2026-12-05T17:02:11.000Z",
        completion_notes: "Shipped",
        notes: [{ at: "2026-12-05T10:00:00.000Z", by: "alice", text: "careful, X\n- [ ] not a step" }],
      }),
    ];
    const text = renderMarkdown("web", tasks);
    expect(text).toBe(
      [
        "<!-- task-tracking-mcp export: project web; headings are sections; `task-tracking-mcp import FILE --project web` reads it back -->",
        "",
        "- [ ] **TASK-001** Claimed",
        "  - held by: agent-7",
        "",
        "# Plan",
        "",
        "- [x] **TASK-003** Done (low)",
        "  - completed by: claude-gina on 2026-12-05",
        "  - completion notes: Shipped",
        "  - note by alice at 2026-12-05T10:00:00.000Z: careful, X",
        "    \\- [ ] not a step",
        "",
        "## Backend",
        "",
        "- [ ] **TASK-002** Waiting (high)",
        "  - depends on: TASK-003",
        "  - labels: backend, bug",
        "  - [ ] **TASK-004** Child step",
        "    - acceptance criteria:",
        "      - [x] tests pass",
        "      - [ ] docs updated",
        "  - [ ] **TASK-005** Low step (low)",
        "",
        "## Frontend",
        "",
        "- [ ] **TASK-006** Frontend thing",
        "- [-] **TASK-007** Dropped",
        "  - note at 2026-12-05T11:00:00.000Z: no longer needed",
        "",
      ].join("\n"),
    );
    const back = parseMarkdown(text);
    expect({ problems: back.problems, warnings: back.warnings }).toEqual({ problems: [], warnings: [] });
    const fields = (item: any) => ({
      task_id: item.task_id,
      description: item.description,
      status: item.status === "in_progress" ? "pending" : item.status,
      priority: item.priority,
      depends_on: item.depends_on,
      parent_id: item.parent_id ?? null,
      labels: item.labels ?? [],
      acceptance_criteria: item.acceptance_criteria ?? [],
      notes: item.notes ?? [],
      completion_notes: item.status === "completed" ? item.completion_notes : "",
    });
    const byId = (list: any[]) => list.map(fields).sort((a, b) => a.task_id.localeCompare(b.task_id));
    expect(byId(back.tasks)).toEqual(byId(tasks));
  });

  test("an export of 0.2.0, grouped by status, still reads back: its headings are no sections", () => {
    const old = [
      "<!-- task-tracking-mcp export: project web; `task-tracking-mcp import FILE --project web` reads it back -->",
      "# Tasks of web",
      "",
      "## Pending (1)",
      "",
      "- [ ] **TASK-002** Waiting (high)",
      "",
      "  Section: TODO › Release 1.0",
      "  - depends on: TASK-003",
      "",
      "## Completed (1)",
      "",
      "- [x] **TASK-003** Done",
      "  - completion notes: Shipped",
    ].join("\n");
    const back = parseMarkdown(old);
    expect(back.problems).toEqual([]);
    expect(back.tasks.map(({ task_id, description, depends_on }) => ({ task_id, description, depends_on }))).toEqual([
      { task_id: "TASK-002", description: "Waiting\n\nSection: TODO › Release 1.0", depends_on: ["TASK-003"] },
      { task_id: "TASK-003", description: "Done", depends_on: [] },
    ]);
  });

  test("a completed task says who completed it and on which day; an open one who holds it", () => {
    const text = renderMarkdown("web", [
      tracked({ task_id: "TASK-001", description: "Held", status: "in_progress", claimed_by: "agent-7" }),
      tracked({
        task_id: "TASK-002",
        description: "Done",
        status: "completed",
        claimed_by: "claude-gina",
        completed_at: "2026-12-05T17:02:11.000Z",
        completion_notes: "Shipped",
      }),
    ]);
    expect(text).toContain("- [ ] **TASK-001** Held (high)\n  - held by: agent-7\n");
    expect(text).toContain(
      "- [x] **TASK-002** Done (high)\n  - completed by: claude-gina on 2026-12-05\n  - completion notes: Shipped\n",
    );
    expect(parseMarkdown(text).problems).toEqual([]);
  });

  test("an item's own lines come before its metadata, so that lines indented past its text stay its own", () => {
    const text = renderMarkdown("web", [
      tracked({ task_id: "TASK-001", description: "Parent\n    wrapped deep\n  - a bullet", depends_on: ["TASK-002"] }),
      tracked({ task_id: "TASK-002", description: "Step\n      wrapped deeper", status: "completed", completion_notes: "ok" }),
    ]);
    expect(text).toContain("- [ ] **TASK-001** Parent (high)\n      wrapped deep\n    - a bullet\n  - depends on: TASK-002\n");
    const back = parseMarkdown(text);
    expect(back.problems).toEqual([]);
    expect(
      back.tasks.map(({ task_id, description, depends_on, completion_notes }) => ({
        task_id,
        description,
        depends_on,
        completion_notes,
      })),
    ).toEqual([
      {
        task_id: "TASK-001",
        description: "Parent\n    wrapped deep\n  - a bullet",
        depends_on: ["TASK-002"],
        completion_notes: "",
      },
      { task_id: "TASK-002", description: "Step\n      wrapped deeper", depends_on: [], completion_notes: "ok" },
    ]);
  });

  test("wrapped lines of a step under its parent survive export and import", async () => {
    const tracker = standInTracker();
    try {
      const file = "- [ ] Parent\n  - [ ] Step that wraps\n        onto a second line\n";
      await cli(runImport, [fileWith(file), "--project", "web"], tracker.env);
      const exported = await cli(runExport, ["--project", "web"], tracker.env);
      const back = await cli(runImport, [fileWith(exported.stdout, "export.md"), "--project", "copy"], tracker.env);
      expect({ exitCode: back.exitCode, stderr: back.stderr }).toEqual({ exitCode: 0, stderr: "" });
      const step = tracker.tasks.find((row) => row.project_id === "copy" && row.description.startsWith("Step"))!;
      expect(step.description).toBe("Step that wraps\nonto a second line");
    } finally {
      tracker.stop();
    }
  });

  for (const name of ["TODO.md", "ROADMAP.md"]) {
    test(`${name}: the export keeps the file's headings, nesting and order, and read back and exported again is the same text`, async () => {
      const [source, copy] = [standInTracker(), standInTracker()];
      try {
        const file = await Bun.file(join(FIXTURES, name)).text();
        expect((await cli(runImport, [fileWith(file, name), "--project", "web"], source.env)).exitCode).toBe(0);
        const first = await cli(runExport, ["--project", "web"], source.env);
        const parsed = parseMarkdown(file);
        const completed = parsed.tasks.filter((item) => item.status === "completed");
        const listed = first.stdout.match(/^\s*- \[x\] \*\*`?([^*`]+)`?\*\*/gm)!;
        expect(listed.map((line) => line.replace(/^\s*- \[x\] \*\*`?|`?\*\*$/g, ""))).toEqual(
          completed.map((item) => item.task_id),
        );
        const headings = (text: string) => text.match(/^#{1,6} .*$/gm)!;
        expect(headings(first.stdout).filter((line) => headings(file).includes(line))).toEqual(
          headings(file).filter((line) => !line.includes("not a task")),
        );
        // Every item in file order, whatever its status, each step under its item, as in the file.
        const ids = first.stdout
          .match(/^\s*- \[[ x-]\] \*\*`?[^*`]+/gm)!
          .map((line) => line.replace(/^\s*- \[[ x-]\] \*\*`?/, ""));
        expect(ids).toEqual(parsed.tasks.map((item) => item.task_id));
        const back = parseMarkdown(first.stdout);
        const parents = (tasks: FileTask[]) => tasks.map((item) => [item.task_id, item.parent_id ?? null]).sort();
        expect(parents(back.tasks)).toEqual(parents(parsed.tasks));
        expect((await cli(runImport, [fileWith(first.stdout, "export.md"), "--project", "web"], copy.env)).exitCode).toBe(0);
        const second = await cli(runExport, ["--project", "web"], copy.env);
        expect(second.stdout).toBe(first.stdout);
      } finally {
        source.stop();
        copy.stop();
      }
    });
  }
});

describe("re-importing after changes on the board", () => {
  test("an import that would undo a change made since the last import changes nothing and names it; --force overwrites", async () => {
    const tracker = standInTracker();
    try {
      const path = fileWith(await todo());
      await cli(runImport, [path, "--project", "web"], tracker.env);
      const tag = tracker.tasks.find((row) => row.description.startsWith("Tag `v1.0.0`"))!;
      tracker.edit(tag, { priority: "high" }, "alice");
      tracker.writes.length = 0;
      // The file says medium: it would lower what alice raised.
      const refused = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect(refused).toEqual({
        exitCode: 1,
        stdout: "",
        stderr: [
          `${path}:15: ${tag.task_id}: alice changed its priority at 2026-12-06T09:00:02.000Z, since the last import; the import would undo it: priority high → medium`,
          "Nothing was imported: the file would overwrite 1 change made in the project since it was last imported; change the file to match, or run the import with --force to overwrite them.",
        ].join("\n"),
      });
      expect(tracker.writes).toEqual([]);
      // A file that says high, as the board does, has nothing to undo.
      const agreeing = fileWith((await todo()).replace("push the tag", "push the tag (high)"));
      expect((await cli(runImport, [agreeing, "--project", "web", "--dry-run"], tracker.env)).stdout).toEndWith(
        "would add 0 tasks, change 0, raise 0 ID counters; 13 already up to date.",
      );
      const forced = await cli(runImport, [path, "--project", "web", "--force"], tracker.env);
      expect(forced.stdout).toBe(
        [
          "Changed 1 task:",
          `  ~ ${tag.task_id}  priority high → medium  (line 15)`,
          "Done: added 0 tasks, changed 1, raised 0 ID counters; 12 already up to date.",
        ].join("\n"),
      );
      expect(tag.priority).toBe("medium");
      // What the import did itself, and a change it would not touch, are no reason to refuse.
      tracker.edit(tag, { description: `${tag.description}\nmore` }, "gina");
      tracker.edit(tag, { labels: ["release"] }, "alice");
      const again = await cli(runImport, [path, "--project", "web"], tracker.env);
      expect({ exitCode: again.exitCode, stderr: again.stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(again.stdout).toContain(
        `~ ${tag.task_id}  description → "Tag \`v1.0.0\` and push the tag" (and more lines)  (line 15)`,
      );
      expect(tag.labels).toEqual(["release"]);
    } finally {
      tracker.stop();
    }
  });

  test("an item reopened on the board is not completed again without --force", async () => {
    const tracker = standInTracker();
    try {
      await cli(runImport, [fileWith("- [ ] TASK-001: One\n"), "--project", "web"], tracker.env);
      const [one] = tracker.tasks;
      tracker.events.get(one!)!.push({ type: "reopened", at: "2026-12-06T09:30:00.000Z", agent_id: "alice", details: {} });
      const result = await cli(runImport, [fileWith("- [x] TASK-001: One\n"), "--project", "web"], tracker.env);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(
        "TASK-001: alice reopened it at 2026-12-06T09:30:00.000Z, since the last import; the import would undo it: pending → completed",
      );
    } finally {
      tracker.stop();
    }
  });

  test("[-] cancels a pending task, leaves an agent's; steps complete before their item", async () => {
    const tracker = standInTracker();
    try {
      const first = [
        "- [ ] TASK-001: Item",
        "  - [ ] TASK-002: Step",
        "- [ ] TASK-003: Dropped",
        "- [ ] TASK-004: Held",
        "- [-] TASK-005: Never",
      ];
      await cli(runImport, [fileWith(first.join("\n")), "--project", "web"], tracker.env);
      expect(tracker.tasks.map((row) => row.status)).toEqual(["pending", "pending", "pending", "pending", "cancelled"]);
      Object.assign(tracker.tasks[3]!, { status: "in_progress", claimed_by: "agent-7" });
      tracker.writes.length = 0;
      const second = [
        "- [x] TASK-001: Item",
        "  - [x] TASK-002: Step",
        "- [-] TASK-003: Dropped",
        "- [-] TASK-004: Held",
        "- [ ] TASK-005: Never",
      ];
      const result = await cli(runImport, [fileWith(second.join("\n")), "--project", "web"], tracker.env);
      expect(result.stdout).toBe(
        [
          "Changed 3 tasks:",
          "  ~ TASK-001       pending → completed  (line 1)",
          "  ~ TASK-002       pending → completed  (line 2)",
          "  ~ TASK-003       pending → cancelled  (line 3)",
          "Note: line 4: TASK-004 is marked cancelled, but agent-7 is working on it: it is left to its holder",
          "Note: line 5: TASK-005 is cancelled in the project: reopen it there to take it up again",
          "Done: added 0 tasks, changed 3, raised 0 ID counters; 2 already up to date.",
        ].join("\n"),
      );
      expect(tracker.writes.map(({ path, body }) => `${path.split("?")[0]} ${body.status}`)).toEqual([
        "/tasks/TASK-002/status in_progress",
        "/tasks/TASK-002/status completed",
        "/tasks/TASK-001/status in_progress",
        "/tasks/TASK-001/status completed",
        "/tasks/TASK-003/status cancelled",
      ]);
    } finally {
      tracker.stop();
    }
  });

  test("a checked item whose step an agent holds, or whose criteria are open in the project, stays open, with a note", async () => {
    const tracker = standInTracker();
    try {
      await cli(
        runImport,
        [fileWith("- [ ] TASK-001: Item\n  - [ ] TASK-002: Step\n- [ ] TASK-003: Gated\n"), "--project", "web"],
        tracker.env,
      );
      Object.assign(tracker.tasks[1]!, { status: "in_progress", claimed_by: "agent-7" });
      Object.assign(tracker.tasks[2]!, { acceptance_criteria: [{ text: "tests pass", done: false }] });
      tracker.writes.length = 0;
      const result = await cli(
        runImport,
        [fileWith("- [x] TASK-001: Item\n  - [x] TASK-002: Step\n- [x] TASK-003: Gated\n"), "--project", "web"],
        tracker.env,
      );
      expect(result.stdout).toBe(
        [
          "Note: line 2: TASK-002 is checked, but agent-7 is working on it: it is left to its holder",
          "Note: line 1: TASK-001 is checked, but its step TASK-002 (in_progress) is not done in the project: it stays open",
          "Note: line 3: TASK-003 is checked, but 1 of its acceptance criteria is open in the project: it stays open",
          "Done: added 0 tasks, changed 0, raised 0 ID counters; 3 already up to date.",
        ].join("\n"),
      );
      expect(tracker.writes).toEqual([]);
    } finally {
      tracker.stop();
    }
  });

  test("the changes are the person's: USER, else LOGNAME, in agent-ID characters; TASK_TRACKING_AGENT_ID says it explicitly", () => {
    expect(importAuthor({ USER: "gina", LOGNAME: "other" })).toBe("gina");
    expect(importAuthor({ LOGNAME: "Gina Maria (admin)" })).toBe("Gina-Maria-admin");
    expect(importAuthor({ USER: "gina", TASK_TRACKING_AGENT_ID: "release-bot" })).toBe("release-bot");
    expect(importAuthor({ USER: "  " })).toBeUndefined();
  });
});

describe("export of what the tracker keeps", () => {
  test("notes, labels, criteria and children travel through the markdown and the JSON export into another project", async () => {
    const tracker = standInTracker(3);
    try {
      const file = [
        "# Plan",
        "- [ ] TASK-001: Login form (high)",
        "  - labels: frontend",
        "  - acceptance criteria:",
        "    - [x] tests pass",
        "    - [ ] docs updated",
        "  - note by claude-gina at 2026-12-05T10:00:00.000Z: tried X, Y is left",
        "  - [ ] TASK-002: Its step",
        "- [-] TASK-003: Dropped",
      ].join("\n");
      await cli(runImport, [fileWith(file), "--project", "web"], tracker.env);
      tracker.notes.get(tracker.tasks[2]!)!.push({ at: "2026-12-06T09:00:00.000Z", by: "alice", text: "nobody uses IE" });
      const tasksOf = (project: string) =>
        tracker.tasks
          .filter((row) => row.project_id === project)
          .map((row) => ({
            task_id: row.task_id,
            description: row.description,
            priority: row.priority,
            status: row.status,
            labels: row.labels,
            parent_id: row.parent_id,
            acceptance_criteria: row.acceptance_criteria,
            notes: tracker.notes.get(row),
          }))
          .sort((a, b) => a.task_id.localeCompare(b.task_id));
      for (const [format, name] of [
        ["markdown", "export.md"],
        ["json", "export.json"],
      ]) {
        const exported = await cli(runExport, ["--project", "web", "--format", format!], tracker.env);
        expect(exported.stderr).toBe("");
        const imported = await cli(runImport, [fileWith(exported.stdout, name), "--project", `copy-${format}`], tracker.env);
        expect({ exitCode: imported.exitCode, stderr: imported.stderr }).toEqual({ exitCode: 0, stderr: "" });
        expect(tasksOf(`copy-${format}`)).toEqual(tasksOf("web"));
      }
      const markdown = await cli(runExport, ["--project", "web"], tracker.env);
      expect(markdown.stdout).toContain(
        "- [-] **TASK-003** Dropped\n  - note by alice at 2026-12-06T09:00:00.000Z: nobody uses IE",
      );
    } finally {
      tracker.stop();
    }
  });
});
