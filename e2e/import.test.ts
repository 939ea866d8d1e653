// Issues 17, 21 and 23: `task-tracking-mcp import` and `export`, through the compiled binary against
// the tracker running as its own process on a temporary SQLite database. What the binary says is checked
// with its exit code; what it did is checked through the tracker's REST API and its access log.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../testkit/temp.ts";
import { runBinary, useStack } from "./harness.ts";

const FIXTURES = join(import.meta.dir, "fixtures");
const TODO = join(FIXTURES, "TODO.md");
const GH_ISSUES = join(FIXTURES, "gh-issues.json");

const stack = useStack();
/** Removed with the stack. */
const scratch = makeTempDir("tt-import-e2e-");

/** As a person runs it: the import's changes are USER's. */
const cli = (...args: string[]) =>
  runBinary(args, { TASK_TRACKING_URL: stack.tracker.url, TASK_TRACKING_API_KEY: stack.tracker.apiKey, USER: "gina" });

function fileWith(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

/** Every task of a project, through GET /tasks and its cursors. */
async function tasksOf(project: string): Promise<Record<string, any>[]> {
  const tasks: Record<string, any>[] = [];
  let cursor: string | null = null;
  do {
    const query: URLSearchParams = new URLSearchParams({ project, limit: "500", ...(cursor ? { cursor } : {}) });
    const { status, body } = await stack.tracker.api("GET", `/tasks?${query}`);
    expect(status).toBe(200);
    tasks.push(...body.tasks);
    cursor = body.next_cursor;
  } while (cursor);
  return tasks;
}

async function countersOf(project: string): Promise<Record<string, number>> {
  const { body } = await stack.tracker.api("GET", `/ids/registry?project=${project}`);
  return Object.fromEntries(body.counters.map((counter: any) => [counter.artifact_type, counter.last_assigned_id]));
}

/** The requests the tracker answered since `mark` (its access log), as `METHOD path`. */
const requestsSince = (mark: number) =>
  stack.tracker
    .accessLog()
    .slice(mark)
    .map((entry) => `${entry.method} ${entry.path.split("?")[0]}`);

/** What the import and export commands keep of a task: the rest (times, holder) belongs to the tracker. */
const essentials = (task: Record<string, any>) => ({
  task_id: task.task_id,
  description: task.description,
  priority: task.priority,
  depends_on: task.depends_on,
  parent_id: task.parent_id,
  labels: task.labels,
  status: task.status,
  completion_notes: task.completion_notes,
});
const byId = (tasks: Record<string, any>[]) => tasks.map(essentials).sort((a, b) => a.task_id.localeCompare(b.task_id));
/** An export with its project's name, where the header says it, made another's. */
const renamed = (exported: string, from: string, to: string) =>
  exported.replace(`project ${from};`, `project ${to};`).replace(`--project ${from}\``, `--project ${to}\``);

describe("import of a TODO.md", () => {
  const project = "todo";

  test("adds its tasks with their statuses, priorities and steps as children, and raises the counter of the items' IDs", async () => {
    const result = await cli("import", TODO, "--project", project);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(result.stdout).toEndWith("Done: added 13 tasks, changed 0, raised 1 ID counter; 0 already up to date.\n");

    const tasks = await tasksOf(project);
    expect(tasks.length).toBe(13);
    const count = (status: string) => tasks.filter((task) => task.status === status).length;
    expect({ pending: count("pending"), completed: count("completed") }).toEqual({ pending: 9, completed: 4 });
    const publish = tasks.find((task) => task.task_id === "TASK-012")!;
    expect(publish.priority).toBe("high");
    expect(publish.depends_on).toEqual([]);
    const children = (await stack.tracker.api("GET", `/tasks?project=${project}&parent=TASK-012`)).body.tasks;
    expect(children.map((task: any) => task.task_id).sort()[0]).toBe("TASK-010");
    expect(children.length).toBe(3);
    // A step is as urgent as its item, unless it says otherwise.
    expect(tasks.find((task) => task.task_id === "TASK-010")!).toMatchObject({ status: "completed", priority: "high" });
    expect(publish.description).toBe("Publish the npm package\n\nSection: TODO › Release 1.0");
    // US-031 and SPEC-004 are only mentioned in the text, and the project has no such counters.
    expect(await countersOf(project)).toEqual({ TASK: 12 });
    expect((await stack.tracker.api("GET", `/ids/next?type=TASK&project=${project}`)).body.next_id).toBe("TASK-013");
  });

  test("a second import of the same file adds, changes and raises nothing", async () => {
    const before = await tasksOf(project);
    const mark = stack.tracker.accessLog().length;
    const result = await cli("import", TODO, "--project", project);
    expect(result).toEqual({
      code: 0,
      stdout: "Done: added 0 tasks, changed 0, raised 0 ID counters; 13 already up to date.\n",
      stderr: "",
    });
    expect(requestsSince(mark).every((request) => request.startsWith("GET "))).toBe(true);
    expect(await tasksOf(project)).toEqual(before);
  });

  test("after items were added to the file, an import adds only those", async () => {
    const grown = fileWith("TODO-grown.md", `${await Bun.file(TODO).text()}\n## Later\n\n- [ ] Write the 1.1 plan (low)\n`);
    const result = await cli("import", grown, "--project", project);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^Added 1 task:\n {2}\+ md-[0-9a-f]{10} {2}pending {3}low {4}Write the 1\.1 plan {2}\(line \d+\)\n/,
    );
    expect((await tasksOf(project)).length).toBe(14);
  });

  test("an edited file changes the priority and text of open tasks and completes the items checked since", async () => {
    const original = await Bun.file(TODO).text();
    const edited = original
      .replace(
        "- [ ] **TASK-012** Publish the npm package (high)",
        "- [ ] **TASK-012** Publish the npm package to the registry (low)",
      )
      .replace(
        "  - [ ] Smoke-test `npx task-tracking-mcp --version` on macOS and Windows\n    - [ ] Borrow",
        "  - [ ] Smoke-test `npx task-tracking-mcp --version` on macOS and Windows\n    - [x] Borrow",
      );
    expect(edited).not.toBe(original);
    const result = await cli("import", fileWith("TODO-edited.md", edited), "--project", project);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(result.stdout).toContain(
      '  ~ TASK-012       priority high → low; description → "Publish the npm package to the registry" (and more lines)  (line 10)\n',
    );
    // The smoke test is as urgent as its item, which is low now; the step below it says low itself.
    expect(result.stdout).toMatch(/ {2}~ md-[0-9a-f]{10} {2}priority high → low {2}\(line 12\)\n/);
    expect(result.stdout).toMatch(/ {2}~ md-[0-9a-f]{10} {2}pending → completed {2}\(line 13\)\n/);
    const tasks = await tasksOf(project);
    const publish = tasks.find((task) => task.task_id === "TASK-012")!;
    expect({ priority: publish.priority, first: publish.description.split("\n")[0] }).toEqual({
      priority: "low",
      first: "Publish the npm package to the registry",
    });
    const borrow = tasks.find((task) => task.description.startsWith("Borrow a Windows machine"))!;
    expect({ status: borrow.status, completion_notes: borrow.completion_notes }).toEqual({
      status: "completed",
      completion_notes: "Checked in TODO-edited.md",
    });
    const events = (await stack.tracker.api("GET", `/tasks/${borrow.task_id}/events?project=${project}`)).body.events.map(
      (event: any) => event.type,
    );
    expect(events).toEqual(["created", "claimed", "completed"]);
    // The item the previous test added is not in this file: the import names it and leaves it be.
    const plan = tasks.find((task) => task.description.startsWith("Write the 1.1 plan"))!;
    expect((await cli("import", fileWith("TODO-edited.md", edited), "--project", project)).stdout).toBe(
      `Note: 1 task of the project with a derived ID is not in this file (an item reworded or moved, or another file's): ${plan.task_id}; --archive cancels it\n` +
        "Done: added 0 tasks, changed 0, raised 0 ID counters; 13 already up to date.\n",
    );
  });

  test("--dry-run prints what it would add and raise, and sends nothing but reads", async () => {
    const mark = stack.tracker.accessLog().length;
    const result = await cli("import", TODO, "--project", "dry", "--dry-run");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Would add 13 tasks:\n");
    expect(result.stdout).toContain("Would raise 1 ID counter:\n  ↑ TASK           0 → 12 (next TASK-013)  (line 10)\n");
    expect(result.stdout).toEndWith(
      "Dry run, nothing was changed: would add 13 tasks, change 0, raise 1 ID counter; 0 already up to date.\n",
    );
    expect(requestsSince(mark).every((request) => request.startsWith("GET "))).toBe(true);
    expect(await tasksOf("dry")).toEqual([]);
    expect(await countersOf("dry")).toEqual({});
  });

  test("CRLF line endings give the same tasks as LF", async () => {
    // Named TODO.md too, as the completion notes of checked items name the file.
    const crlf = join(mkdtempSync(join(scratch, "crlf-")), "TODO.md");
    writeFileSync(crlf, (await Bun.file(TODO).text()).replaceAll("\n", "\r\n"));
    expect((await cli("import", crlf, "--project", "crlf")).code).toBe(0);
    expect((await cli("import", TODO, "--project", "lf")).code).toBe(0);
    expect(byId(await tasksOf("crlf"))).toEqual(byId(await tasksOf("lf")));
  });
});

describe("export", () => {
  test("markdown keeps the file's headings and nesting, and imports back, into another project, as the same tasks and the same text", async () => {
    expect((await cli("import", TODO, "--project", "source")).code).toBe(0);
    const exported = await cli("export", "--project", "source");
    expect(exported.code).toBe(0);
    expect(exported.stdout).toStartWith("<!-- task-tracking-mcp export: project source; headings are sections;");
    expect(exported.stdout.match(/^#+ .*$/gm)).toEqual([
      "# TODO",
      "## Release 1.0",
      "## Import and export (US-027, US-031)",
      "### Edge cases",
      "## Someday",
    ]);
    expect(exported.stdout).toContain(
      [
        "## Release 1.0",
        "",
        "- [ ] **TASK-012** Publish the npm package (high)",
        "  - [x] **TASK-010** Write `scripts/pack.ts` for the five platforms",
        "    - completion notes: Checked in TODO.md",
        "  - [ ] **`md-bf39a799df`** Smoke-test `npx task-tracking-mcp --version` on macOS and Windows",
        "    - [ ] **`md-8b45aec1ac`** Borrow a Windows machine (low)",
        "  - [x] **`md-6796934d30`** Update CHANGELOG.md for 1.0",
        "    - completion notes: Checked in TODO.md",
        "- [ ] **`md-685529c1bf`** Tag `v1.0.0` and push the tag",
        "",
      ].join("\n"),
    );

    const file = fileWith("export.md", exported.stdout);
    expect((await cli("import", file, "--project", "copy")).code).toBe(0);
    expect(byId(await tasksOf("copy"))).toEqual(byId(await tasksOf("source")));
    expect(await countersOf("copy")).toEqual(await countersOf("source"));

    const copied = await cli("export", "--project", "copy");
    expect(renamed(copied.stdout, "copy", "source")).toBe(exported.stdout);

    const again = await cli("import", file, "--project", "source");
    expect(again.stdout).toBe("Done: added 0 tasks, changed 0, raised 0 ID counters; 13 already up to date.\n");
  });

  test("JSON lists every task for scripts, and imports back too", async () => {
    const exported = await cli("export", "--project", "source", "--format", "json");
    expect(exported.code).toBe(0);
    const body = JSON.parse(exported.stdout);
    expect(body.project_id).toBe("source");
    expect(body.tasks.length).toBe(13);
    expect((await cli("import", fileWith("export.json", exported.stdout), "--project", "copy-json")).code).toBe(0);
    expect(byId(await tasksOf("copy-json"))).toEqual(byId(await tasksOf("source")));
  });
});

describe("import of a real roadmap: repeated items, odd marks, wrapped lines, sections", () => {
  const ROADMAP = join(FIXTURES, "ROADMAP.md");
  test("imports whole, [-] as cancelled, warning of each other odd mark by its line; a second import adds nothing", async () => {
    const result = await cli("import", ROADMAP, "--project", "roadmap");
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      [
        `${ROADMAP}:20: warning: "[/]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`,
        `${ROADMAP}:25: warning: "[~]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`,
        `${ROADMAP}:33: warning: "[?]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`,
        "",
      ].join("\n"),
    );
    expect(result.stdout).toEndWith("Done: added 16 tasks, changed 0, raised 1 ID counter; 0 already up to date.\n");
    const tasks = await tasksOf("roadmap");
    const titled = (first: string) => tasks.filter((task) => task.description.split("\n")[0] === first);
    expect(titled("Write the docs").length).toBe(2);
    expect(titled("Draft").length).toBe(3);
    expect(titled("Write the migration tool, which reads the old schema")[0]!.description).toBe(
      "Write the migration tool, which reads the old schema\nand writes the new one in one transaction\n\nSection: Roadmap › Phase 1: Foundations › Backend",
    );
    expect(titled("Support Internet Explorer")[0]!.status).toBe("cancelled");
    expect(await countersOf("roadmap")).toEqual({ TASK: 7 });
    const again = await cli("import", ROADMAP, "--project", "roadmap");
    expect(again.stdout).toBe("Done: added 0 tasks, changed 0, raised 0 ID counters; 16 already up to date.\n");
  });

  test("its export lists completed items in file order, and read back and exported again is the same text", async () => {
    const first = await cli("export", "--project", "roadmap");
    expect(first.code).toBe(0);
    expect(first.stdout.match(/^- \[x\] .*$/gm)).toEqual([
      expect.stringContaining("Set up the database schema"),
      "- [x] **TASK-007** Publish the changelog",
      expect.stringContaining("Announce the release"),
    ]);
    expect(first.stdout).not.toContain("held by");
    const back = await cli("import", fileWith("roadmap-export.md", first.stdout), "--project", "roadmap-copy");
    expect({ code: back.code, stderr: back.stderr }).toEqual({ code: 0, stderr: "" });
    const second = await cli("export", "--project", "roadmap-copy");
    expect(renamed(second.stdout, "roadmap-copy", "roadmap")).toBe(first.stdout);
  });
});

describe("import of a gh issue list dump", () => {
  test("open issues are pending, closed ones completed, priority:* labels set the priority, the others are labels", async () => {
    const result = await cli("import", GH_ISSUES, "--project", "gh");
    expect(result.code).toBe(0);
    const tasks = await tasksOf("gh");
    expect(
      tasks
        .map(({ task_id, status, priority, labels }) => ({ task_id, status, priority, labels }))
        .sort((a, b) => a.task_id.localeCompare(b.task_id)),
    ).toEqual([
      { task_id: "gh-40", status: "completed", priority: "low", labels: [] },
      { task_id: "gh-41", status: "pending", priority: "medium", labels: ["enhancement"] },
      { task_id: "gh-42", status: "pending", priority: "high", labels: ["bug"] },
      { task_id: "gh-7", status: "completed", priority: "medium", labels: [] },
    ]);
    // The issues mention SPEC-007 and US-027, but the project has no such counters to raise.
    expect(await countersOf("gh")).toEqual({});
    expect((await cli("import", GH_ISSUES, "--project", "gh")).stdout).toBe(
      "Done: added 0 tasks, changed 0, raised 0 ID counters; 4 already up to date.\n",
    );
  });
});

describe("edge cases", () => {
  test("an empty file imports nothing and says so", async () => {
    const result = await cli("import", fileWith("empty.md", ""), "--project", "empty");
    expect(result).toEqual({
      code: 0,
      stdout: `${join(scratch, "empty.md")} holds no task items ("- [ ] …" or "- [x] …" lines).\nDone: added 0 tasks, changed 0, raised 0 ID counters; 0 already up to date.\n`,
      stderr: "",
    });
    expect(await tasksOf("empty")).toEqual([]);
  });

  test("5,000 items go in as 10 batches of 500; importing them again adds nothing", async () => {
    const items = Array.from(
      { length: 5000 },
      (_, i) => `- [${i % 5 ? " " : "x"}] Item ${i} of the long backlog${i % 7 ? "" : " (high)"}`,
    );
    const big = fileWith("backlog.md", `# Backlog\n\n${items.join("\n")}\n`);
    const mark = stack.tracker.accessLog().length;
    const result = await cli("import", big, "--project", "big");
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: "" });
    expect(requestsSince(mark).filter((request) => request === "POST /tasks/batch").length).toBe(10);
    const tasks = await tasksOf("big");
    expect(tasks.length).toBe(5000);
    expect(tasks.filter((task) => task.status === "completed").length).toBe(1000);
    expect(tasks.filter((task) => task.priority === "high").length).toBe(715);
    expect((await cli("import", big, "--project", "big")).stdout).toBe(
      "Done: added 0 tasks, changed 0, raised 0 ID counters; 5000 already up to date.\n",
    );
  });
});

describe("bad input", () => {
  test("every problem is named with its line on stderr, warnings too, exit 1, and nothing is added", async () => {
    const bad = fileWith(
      "bad.md",
      [
        "# Plan",
        "- [ ] TASK-001: First",
        "  - depends on: TASK-002",
        "- [ ] TASK-002: Second",
        "  - depends on: TASK-001",
        "- [~] Maybe",
        "- [ ] **`no spaces allowed`** Third",
        "",
      ].join("\n"),
    );
    const mark = stack.tracker.accessLog().length;
    const result = await cli("import", bad, "--project", "bad");
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: [
        `${bad}:6: warning: "[~]" is neither "[ ]", "[x]" nor "[-]" (cancelled): the item imports as pending`,
        `${bad}:2: dependency cycle: TASK-001 (line 2) → TASK-002 (line 4) → TASK-001`,
        `${bad}:7: "no spaces allowed" is not a valid task ID: 1-64 characters of A-Z a-z 0-9 . _ -`,
        `Nothing was imported: 2 problems in ${bad}.`,
        "",
      ].join("\n"),
    });
    expect(requestsSince(mark)).toEqual([]);
    expect(await tasksOf("bad")).toEqual([]);
  });

  test("a checked item whose step is open, or a dependency on a task that is nowhere, is refused before anything is sent", async () => {
    const open = await cli("import", fileWith("open-step.md", "- [x] Ship it\n  - [ ] Test it\n"), "--project", "bad");
    expect(open.code).toBe(1);
    expect(open.stderr).toContain(":1: md-");
    expect(open.stderr).toContain(" is checked but its step md-");
    expect(open.stderr).toContain(' (line 2) is not; check the step, or mark it "[-]" (cancelled)');
    const nowhere = await cli(
      "import",
      fileWith("nowhere.md", "- [ ] TASK-001: a\n  - depends on: TASK-404\n"),
      "--project",
      "bad",
    );
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toContain(":1: TASK-001 depends on TASK-404, which is neither in the file nor in the project\n");
    expect(await tasksOf("bad")).toEqual([]);
  });

  test("usage errors exit 2 and say how to call it", async () => {
    expect(await cli("import", "--project", "x")).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "task-tracking-mcp: import needs a FILE\nUsage: task-tracking-mcp import FILE --project P [--dry-run] [--force] [--archive]\n",
    });
    expect(await cli("export", "--project", "x", "--format", "csv")).toEqual({
      code: 2,
      stdout: "",
      stderr:
        'task-tracking-mcp: --format must be markdown or json, not "csv"\nUsage: task-tracking-mcp export --project P [--format markdown|json]\n',
    });
  });
});

describe("the file people keep", () => {
  test("a priority raised on the board makes the re-import refuse, naming it; --force overwrites; the export keeps the headings", async () => {
    const project = "steered";
    expect((await cli("import", TODO, "--project", project)).code).toBe(0);
    const tag = (await tasksOf(project)).find((task) => task.description.startsWith("Tag `v1.0.0`"))!;
    // A person raises it on the board (the board sends their name; this request sends none).
    const raised = await stack.tracker.api("PATCH", `/tasks/${tag.task_id}?project=${project}`, { priority: "high" });
    expect(raised.status).toBe(200);
    await stack.tracker.waitForAccess(
      (entry) => entry.method === "PATCH" && entry.path.startsWith(`/tasks/${tag.task_id}`),
      "the board's PATCH",
    );
    const mark = stack.tracker.accessLog().length;
    const refused = await cli("import", TODO, "--project", project);
    expect({ code: refused.code, stdout: refused.stdout }).toEqual({ code: 1, stdout: "" });
    expect(refused.stderr).toMatch(
      new RegExp(
        `^${TODO}:15: ${tag.task_id}: someone changed its priority at \\S+, since the last import; the import would undo it: priority high → medium\n`,
      ),
    );
    expect(refused.stderr).toEndWith("run the import with --force to overwrite them.\n");
    expect(requestsSince(mark).every((request) => request.startsWith("GET "))).toBe(true);
    expect((await tasksOf(project)).find((task) => task.task_id === tag.task_id)!.priority).toBe("high");

    const exported = await cli("export", "--project", project);
    expect(exported.stdout).toContain("\n## Release 1.0\n\n- [ ] **TASK-012** Publish the npm package (high)\n");
    expect(exported.stdout).toContain(`- [ ] **\`${tag.task_id}\`** Tag \`v1.0.0\` and push the tag (high)\n`);

    const forced = await cli("import", TODO, "--project", project, "--force");
    expect(forced.stdout).toContain(`  ~ ${tag.task_id}  priority high → medium  (line 15)\n`);
    expect((await tasksOf(project)).find((task) => task.task_id === tag.task_id)!.priority).toBe("medium");
    const events = (await stack.tracker.api("GET", `/tasks/${tag.task_id}/events?project=${project}`)).body.events;
    expect(events.map((event: any) => [event.type, event.agent_id])).toEqual([
      ["created", "gina"],
      ["updated", null],
      ["updated", "gina"],
    ]);
  });

  test("--archive cancels the tasks the file no longer holds", async () => {
    const project = "archived";
    expect((await cli("import", TODO, "--project", project)).code).toBe(0);
    const shorter = fileWith("TODO.md", (await Bun.file(TODO).text()).replace("* [ ] CRLF line endings\n", ""));
    const result = await cli("import", shorter, "--project", project, "--archive");
    expect(result.stdout).toMatch(/^Cancelled 1 task no longer in the file:\n {2}- md-[0-9a-f]{10} {2}CRLF line endings\n/);
    const crlf = (await tasksOf(project)).find((task) => task.description.startsWith("CRLF line endings"))!;
    expect(crlf.status).toBe("cancelled");
  });
});
