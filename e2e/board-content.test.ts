// What a task carries, on the board (issue 21), in a real browser (Debian's chromium, driven by
// playwright-core) against the real tracker, at a desktop's size and at a phone's, with the keyboard
// alone: labels as chips and a label filter, criteria progress on the cards and a checklist in the
// dialog, the notes as a thread with a box to add one, a search over the project with its snippet,
// parents with their children's progress (and grouping under them), cancel with a reason and reopen.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { hasChromium, launchChromium } from "../testkit/browser.ts";
import { type ColumnName, cardsOf, column, FOCUSED, tabTo as tabUntil } from "./board-page.ts";
import { type Stack, useStack } from "./harness.ts";

const PERSON = "dana.example";
const NAME_STORAGE = "task-board.name";
const AGENT = "claude-gina";
/** A payload an audit would try: in a note, a criterion and a label-free description it must stay text. */
const PAYLOAD = `<img src=x onerror="window.pwned=1">`;

const SIZES = [
  { name: "a desktop", phone: false, project: "content-desk", viewport: { width: 1280, height: 800 } },
  { name: "a phone", phone: true, project: "content-phone", viewport: { width: 390, height: 844 } },
] as const;
type Size = (typeof SIZES)[number];

setDefaultTimeout(20_000);

// Under CI a missing browser fails (the launch in beforeAll throws); elsewhere the file is skipped.
const browserTests = hasChromium() || process.env.CI === "true" ? describe : describe.skip;

let browser: Browser;
let stack: Stack<never>;
const pageErrors: string[] = [];

/** What these tests read of a task the tracker returns. */
interface TrackerTask {
  status: string;
  claimed_by: string | null;
  acceptance_criteria: { text: string; done: boolean }[];
  notes: { at: string; by: string | null; text: string }[];
}

/** A request as an agent makes it; the answer's body. */
async function asAgent<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${stack.tracker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json", "x-agent-id": AGENT },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.status).toBeLessThan(300);
  return (await response.json()) as T;
}

async function taskOf(project: string, taskId: string): Promise<TrackerTask> {
  return (await asAgent<{ task: TrackerTask }>("GET", `/tasks/${taskId}?project=${project}`)).task;
}

/** The project of one size: an epic and its two children, two loose tasks, notes and criteria. */
async function plan(project: string): Promise<void> {
  const tasks = [
    { task_id: "C-1", description: "Checkout epic", priority: "high", labels: ["epic"] },
    {
      task_id: "C-2",
      description: "Build the cart service",
      parent_id: "C-1",
      labels: ["Backend", "cart"],
      acceptance_criteria: ["tests pass", { text: "docs updated", done: true }],
    },
    { task_id: "C-3", description: "Payment step", parent_id: "C-1", labels: ["frontend"] },
    { task_id: "C-4", description: "Release notes", priority: "low", labels: ["docs"] },
    { task_id: "C-5", description: "Old idea nobody will do", priority: "low" },
    { task_id: "C-6", description: "Spike a second payment provider", priority: "low" },
  ];
  await asAgent("POST", "/tasks/batch", { tasks: tasks.map((task) => ({ project_id: project, ...task })) });
  await asAgent("PUT", `/tasks/C-6/status?project=${project}`, { status: "in_progress" });
  await asAgent("POST", `/tasks/C-2/notes?project=${project}`, { text: "tried the stripe mock; webhooks are left" });
  await asAgent("POST", `/tasks/C-2/notes?project=${project}`, { text: PAYLOAD });
}

async function newPage(size: Size): Promise<Page> {
  const context: BrowserContext = await browser.newContext({ viewport: size.viewport, locale: "en-US" });
  context.setDefaultTimeout(5000);
  await context.addInitScript({
    content: `if (location.protocol.startsWith("http")) localStorage.setItem(${JSON.stringify(NAME_STORAGE)}, ${JSON.stringify(PERSON)});`,
  });
  context.on("weberror", (error) => pageErrors.push(error.error().message));
  return context.newPage();
}

async function openBoard(page: Page, hash: string): Promise<void> {
  await page.goto(`${stack.tracker.url}/${hash}`);
  await page.getByLabel("API key").fill(stack.apiKey);
  await page.getByRole("button", { name: "Open board" }).click();
  await page.getByRole("status").filter({ hasText: "Live" }).waitFor();
}

async function card(page: Page, size: Size, name: ColumnName, taskId: string): Promise<Locator> {
  const found = (await column(page, size, name)).locator(`button.card[data-task-id="${taskId}"]`);
  await found.waitFor();
  return found;
}

/** Tab (or `key`) to `target`: the dialog's checklist and thread take more presses than the steering tests' controls. */
const tabTo = (page: Page, target: string, key = "Tab") => tabUntil(page, target, key, 80);

/** Opens a task's dialog by its card, with the keyboard; waits for its notes and history. */
async function openTask(page: Page, size: Size, name: ColumnName, taskId: string): Promise<Locator> {
  await (await card(page, size, name, taskId)).focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: taskId });
  await dialog.locator("#history li").first().waitFor();
  return dialog;
}

async function closeDialog(page: Page): Promise<void> {
  await page.keyboard.press("Escape");
  await page.locator("#task-dialog").waitFor({ state: "hidden" });
}

browserTests("what a task carries, on the board", () => {
  stack = useStack();

  beforeAll(async () => {
    browser = await launchChromium();
    for (const size of SIZES) await plan(size.project);
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const size of SIZES) {
    describe(`on ${size.name}`, () => {
      const project = size.project;
      let page: Page;
      beforeAll(async () => {
        page = await newPage(size);
        await openBoard(page, `#project=${project}`);
      });
      afterAll(async () => {
        await page.context().close();
      });

      test("a card shows its labels as chips, its criteria's progress and its parent's title on a small line", async () => {
        const cart = await card(page, size, "Ready", "C-2");
        expect(await cart.locator(".label-chip").allInnerTexts()).toEqual(["backend", "cart"]);
        expect(await cart.locator(".progress-line").innerText()).toBe("Criteria 1 of 2 done");
        await cart.locator(".parent-line").filter({ hasText: "“" }).waitFor();
        expect(await cart.locator(".parent-line").innerText()).toBe("In “Checkout epic”");
      });

      test("a parent shows its children's progress and waits for them", async () => {
        const epic = await card(page, size, "Blocked", "C-1");
        expect(await epic.locator(".progress-line").innerText()).toBe("Subtasks 0 of 2 done");
        expect(await epic.locator(".waits").innerText()).toBe("Waits for its subtasks");
      });

      test("the label filter, typed with the keyboard alone, keeps the tasks that carry the label", async () => {
        // The filters start folded.
        await tabTo(page, "filters-summary");
        await page.keyboard.press("Enter");
        await tabTo(page, "filter-label");
        await page.keyboard.type("BACKEND");
        await page.keyboard.press("Enter");
        expect(await cardsOf(page, size, "Ready", ["C-2"])).toEqual(["C-2"]);
        expect(await cardsOf(page, size, "Blocked", [])).toEqual([]);
        expect(new URLSearchParams(new URL(page.url()).hash.slice(1)).getAll("label")).toEqual(["backend"]);
        await page.getByRole("button", { name: "Clear filters" }).click();
        expect(await cardsOf(page, size, "Ready", ["C-2", "C-3", "C-4", "C-5"])).toEqual(["C-2", "C-3", "C-4", "C-5"]);
      });

      test("a label chosen in a task's dialog filters the board by it", async () => {
        await openTask(page, size, "Ready", "C-3");
        await tabTo(page, "frontend");
        expect(await page.evaluate(`document.activeElement.getAttribute("aria-label")`)).toBe(
          "Show only tasks labelled frontend",
        );
        await page.keyboard.press("Enter");
        await page.locator("#task-dialog").waitFor({ state: "hidden" });
        expect(await cardsOf(page, size, "Ready", ["C-3"])).toEqual(["C-3"]);
        expect(await page.locator("#filter-label").inputValue()).toBe("frontend");
        await page.getByRole("button", { name: "Clear filters" }).click();
        expect(await cardsOf(page, size, "Ready", ["C-2", "C-3", "C-4", "C-5"])).toEqual(["C-2", "C-3", "C-4", "C-5"]);
      });

      test("grouping by parent puts the children under their parent's title, with its progress", async () => {
        await page.getByLabel("Group by parent").check();
        const ready = await column(page, size, "Ready");
        await ready.locator(".group-title").filter({ hasText: "“Checkout epic”" }).waitFor();
        expect(await ready.locator(".group-title").allInnerTexts()).toEqual(["“Checkout epic” · 0 of 2 done", "No parent"]);
        expect(await ready.locator(".group").first().locator("button.card").count()).toBe(2);
        expect(await ready.locator(".parent-line").count()).toBe(0);
        await page.getByLabel("Group by parent").uncheck();
        await ready.locator(".group-title").first().waitFor({ state: "detached" });
      });

      test("the search box finds a word that is only in a note, and shows where it matched", async () => {
        await tabTo(page, "search-input");
        await page.keyboard.type("webhook");
        await page.keyboard.press("Enter");
        const results = page.getByRole("region", { name: /^Search results for “webhook”/ });
        await results.waitFor();
        expect(await results.locator("button.card").count()).toBe(1);
        const found = results.locator('button.card[data-task-id="C-2"]');
        expect(await found.locator(".snippet mark").allInnerTexts()).toEqual(["webhooks"]);
        expect(await found.locator(".snippet").innerText()).toContain("tried the stripe mock");
        expect(await found.locator(".status").innerText()).toBe("Pending");
        expect(await page.locator("#columns").isHidden()).toBe(true);
        // A snippet of a payload is text: its matched word marked, nothing run.
        await page.locator("#search-input").fill("onerror");
        await page.keyboard.press("Enter");
        await page.getByRole("region", { name: /^Search results for “onerror”/ }).waitFor();
        expect(await page.locator("#results .snippet mark").allInnerTexts()).toEqual(["onerror"]);
        expect(await page.locator("#results .snippet").innerText()).toContain("<img src=x");
        expect(await page.locator("#results img").count()).toBe(0);
        expect(new URLSearchParams(new URL(page.url()).hash.slice(1)).get("q")).toBe("onerror");
        await page.getByRole("button", { name: "Clear search" }).click();
        await results.waitFor({ state: "hidden" });
        await card(page, size, "Ready", "C-2");
      });

      test("the dialog shows the notes as a thread, oldest first, as text; a note is added with the keyboard", async () => {
        const dialog = await openTask(page, size, "Ready", "C-2");
        const notes = dialog.locator("#notes");
        expect(await notes.locator(".note-text").allInnerTexts()).toEqual(["tried the stripe mock; webhooks are left", PAYLOAD]);
        expect(await notes.locator(".note-head strong").allInnerTexts()).toEqual([AGENT, AGENT]);
        expect(await page.locator("#task-dialog img").count()).toBe(0);
        await tabTo(page, "new-note");
        await page.keyboard.type("careful: the cart table is shared\nask omar first");
        await tabTo(page, "Add note");
        await page.keyboard.press("Enter");
        await notes.locator(".note-text").nth(2).waitFor();
        expect(await notes.locator(".note-text").nth(2).innerText()).toBe("careful: the cart table is shared\nask omar first");
        expect(await notes.locator(".note-head strong").nth(2).innerText()).toBe(PERSON);
        expect((await taskOf(project, "C-2")).notes.at(-1)).toMatchObject({
          by: PERSON,
          text: "careful: the cart table is shared\nask omar first",
        });
        await dialog.getByText(`Note by ${PERSON}`).waitFor();
        expect(await page.evaluate("window.pwned")).toBeUndefined();
        await closeDialog(page);
      });

      test("the checklist: a person ticks, adds, edits and removes criteria with the keyboard alone", async () => {
        const dialog = await openTask(page, size, "Ready", "C-2");
        const checklist = dialog.locator("#criteria");
        await tabTo(page, "criterion-1");
        await page.keyboard.press("Space");
        await dialog.locator("#criteria-progress").filter({ hasText: "2 of 2 done" }).waitFor();
        expect((await taskOf(project, "C-2")).acceptance_criteria).toEqual([
          { text: "tests pass", done: true },
          { text: "docs updated", done: true },
        ]);
        // The focus stays on the box that was ticked, though the list was drawn again.
        expect(await page.evaluate(FOCUSED)).toBe("criterion-1");

        await tabTo(page, "new-criterion");
        await page.keyboard.type(`bench row ${PAYLOAD}`);
        await page.keyboard.press("Enter");
        await checklist.locator("li").nth(2).waitFor();
        expect(await page.evaluate(FOCUSED)).toBe("new-criterion");

        await tabTo(page, "edit-criterion-3", "Shift+Tab");
        await page.keyboard.press("Enter");
        expect(await page.evaluate(FOCUSED)).toBe("criterion-text-3");
        await page.keyboard.press("ControlOrMeta+A");
        await page.keyboard.type("bench row at 10,000 tasks");
        await page.keyboard.press("Enter");
        await checklist.getByText("bench row at 10,000 tasks").waitFor();
        expect(await page.evaluate(FOCUSED)).toBe("edit-criterion-3");
        // Escape while editing leaves the criterion as it was and keeps the dialog open.
        await page.keyboard.press("Enter");
        await page.keyboard.type(" and more");
        await page.keyboard.press("Escape");
        expect(await page.evaluate(FOCUSED)).toBe("edit-criterion-3");
        expect(await dialog.isVisible()).toBe(true);

        await tabTo(page, "criterion-2", "Shift+Tab");
        await page.keyboard.press("Space");
        await dialog.locator("#criteria-progress").filter({ hasText: "1 of 3 done" }).waitFor();
        await checklist.getByRole("button", { name: "Remove criterion 1" }).click();
        await dialog.locator("#criteria-progress").filter({ hasText: "0 of 2 done" }).waitFor();
        expect((await taskOf(project, "C-2")).acceptance_criteria).toEqual([
          { text: "docs updated", done: false },
          { text: "bench row at 10,000 tasks", done: false },
        ]);
        const history = await dialog.locator("#history").innerText();
        for (const edit of [
          "ticked “tests pass”",
          "added “bench row <img",
          "criterion 3 now “bench row at 10,000 tasks”",
          "unticked “docs updated”",
          "removed “tests pass”",
        ])
          expect(history).toContain(`Edited by ${PERSON}: ${edit}`);
        await closeDialog(page);
        // The card follows the live stream, which delivers the last edit within about 200 ms.
        const progress = (await card(page, size, "Ready", "C-2")).locator(".progress-line");
        await progress.filter({ hasText: /^Criteria 0 of 2 done$/ }).waitFor();
      });

      test("a child's dialog opens its parent, which lists its subtasks with their states", async () => {
        const dialog = await openTask(page, size, "Ready", "C-3");
        await dialog.getByRole("button", { name: "“Checkout epic” (C-1)" }).click();
        const parent = page.getByRole("dialog", { name: "C-1" });
        const subtasks = parent.locator("#subtasks li");
        await subtasks.first().waitFor();
        expect(await subtasks.allInnerTexts()).toEqual(["Build the cart service C-2 · pending", "Payment step C-3 · pending"]);
        expect(await parent.locator("#subtasks-progress").innerText()).toBe("0 of 2 done");
        expect(new URLSearchParams(new URL(page.url()).hash.slice(1)).get("task")).toBe("C-1");
        await parent.getByRole("button", { name: "Payment step" }).click();
        await page.getByRole("dialog", { name: "C-3" }).waitFor();
        await closeDialog(page);
      });

      test("a task is cancelled with a reason, shows in Cancelled, and is reopened from there", async () => {
        const dialog = await openTask(page, size, "Ready", "C-5");
        await tabTo(page, "Cancel this task");
        await page.keyboard.press("Enter");
        await tabTo(page, "cancel-reason");
        await page.keyboard.type("superseded by C-4");
        await tabTo(page, "Cancel the task");
        await page.keyboard.press("Enter");
        await dialog.getByText(`Cancelled by ${PERSON}: superseded by C-4`).waitFor();
        expect(await dialog.locator("#task-summary").innerText()).toBe("cancelled · low priority");
        expect(await dialog.locator(".note-text").last().innerText()).toBe("superseded by C-4");
        expect(await dialog.getByRole("checkbox").count()).toBe(0);
        // The button used is gone: the focus is on what a cancelled task offers.
        expect(await page.evaluate(FOCUSED)).toBe("reopen-task");
        await closeDialog(page);
        expect(await cardsOf(page, size, "Cancelled", ["C-5"])).toEqual(["C-5"]);
        if (size.phone) {
          const tabs = page.getByRole("tablist", { name: "Columns" }).getByRole("tab");
          expect(await tabs.allInnerTexts()).toEqual(["In progress 1", "Ready 3", "Blocked 1", "Completed 0", "Cancelled 1"]);
          expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(size.viewport.width);
        }

        const cancelled = await openTask(page, size, "Cancelled", "C-5");
        await tabTo(page, "reopen-task");
        await page.keyboard.press("Enter");
        await cancelled.getByText(`Reopened by ${PERSON}`).waitFor();
        expect(await page.evaluate(FOCUSED)).toBe("Cancel this task");
        await closeDialog(page);
        expect(await cardsOf(page, size, "Ready", ["C-2", "C-3", "C-4", "C-5"])).toEqual(["C-2", "C-3", "C-4", "C-5"]);
        await page.locator("#region-cancelled").waitFor({ state: "hidden" });
      });

      test("cancelling a task an agent holds releases its claim; the reason is kept as the person's note", async () => {
        const dialog = await openTask(page, size, "In progress", "C-6");
        await dialog.getByText("Cancel this task").click();
        await dialog.getByLabel("Why is it cancelled? (optional: kept as a note)").fill("the first provider is enough");
        await dialog.getByRole("button", { name: "Cancel the task" }).click();
        await dialog.getByText(`Cancelled by ${PERSON}: the first provider is enough`).waitFor();
        await closeDialog(page);
        expect(await cardsOf(page, size, "Cancelled", ["C-6"])).toEqual(["C-6"]);
        expect(await cardsOf(page, size, "In progress", [])).toEqual([]);
        const task = await taskOf(project, "C-6");
        expect([task.status, task.claimed_by, task.notes.at(-1)]).toEqual([
          "cancelled",
          null,
          { at: expect.any(String), by: PERSON, text: "the first provider is enough" },
        ]);
      });

      test("a task an agent completed is reopened from the board", async () => {
        await asAgent("PUT", `/tasks/C-4/status?project=${project}`, { status: "in_progress" });
        await asAgent("PUT", `/tasks/C-4/status?project=${project}`, { status: "completed", completion_notes: "done" });
        const dialog = await openTask(page, size, "Completed", "C-4");
        await dialog.getByRole("button", { name: "Reopen" }).click();
        await dialog.getByText(`Reopened by ${PERSON}`).waitFor();
        await closeDialog(page);
        await card(page, size, "Ready", "C-4");
      });

      test("a task an agent gave back says who gave it back and why", async () => {
        await asAgent("PUT", `/tasks/C-4/status?project=${project}`, { status: "in_progress" });
        await asAgent("PUT", `/tasks/C-4/status?project=${project}`, {
          status: "pending",
          completion_notes: "needs the ops team",
        });
        const given = (await card(page, size, "Ready", "C-4")).locator(".detail").filter({ hasText: "Given back" });
        await given.waitFor();
        expect(await given.innerText()).toBe(`Given back by ${AGENT}: needs the ops team`);
      });
    });
  }

  test("no page threw an error", () => {
    expect(pageErrors).toEqual([]);
  });
});
