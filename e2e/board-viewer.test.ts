// A viewer's board, in a real browser (Debian's chromium, driven by playwright-core) against the real
// tracker, at a desktop's size and at a phone's, with the keyboard alone: a key made with
// POST /admin/keys as a viewer opens the board, sees the cards, is told once that it may watch and not
// steer, and finds no control that writes; the tracker refuses that key's writes anyway. A member's
// board has every control and only its projects; a tracker without GET /whoami gets the board as before.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { hasChromium, launchChromium } from "../testkit/browser.ts";
import { type Stack, useStack } from "./harness.ts";

const PROJECT = "watch";
const OTHER_PROJECT = "secret";
const PERSON = "dana.example";
const NAME_STORAGE = "task-board.name";
const VIEWER_SENTENCE = "Signed in as pm, a viewer: you can watch, not steer.";

const SIZES = [
  { name: "a desktop", phone: false, viewport: { width: 1280, height: 800 } },
  { name: "a phone", phone: true, viewport: { width: 390, height: 844 } },
] as const;
type Size = (typeof SIZES)[number];

setDefaultTimeout(20_000);

// Under CI a missing browser fails (the launch in beforeAll throws); elsewhere the file is skipped.
const browserTests = hasChromium() || process.env.CI === "true" ? describe : describe.skip;

let browser: Browser;
let stack: Stack<never>;
const keys = { viewer: "", member: "" };
const pageErrors: string[] = [];

/** A key made the way an admin makes one: POST /admin/keys, with the operator's key. */
async function makeKey(name: string, role: string, projects?: string[]): Promise<string> {
  const made = await stack.tracker.api("POST", "/admin/keys", { name, role, ...(projects && { projects }) });
  expect(made.status).toBe(201);
  return made.body.key;
}

/** A request with `key`, in an agent's name, as a script or the MCP server would send it. */
function send(key: string, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${stack.tracker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-agent-id": "pm-script" },
    body: JSON.stringify(body),
  });
}

/** A fresh browser; `name`: the steering name already kept on the device (a viewer's device has none). */
async function newPage(size: Size, name?: string): Promise<Page> {
  const context = await browser.newContext({ viewport: size.viewport, locale: "en-US" });
  context.setDefaultTimeout(5000);
  if (name !== undefined) {
    await context.addInitScript({
      content: `if (location.protocol.startsWith("http")) localStorage.setItem(${JSON.stringify(NAME_STORAGE)}, ${JSON.stringify(name)});`,
    });
  }
  context.on("weberror", (error) => pageErrors.push(error.error().message));
  return context.newPage();
}

/** The key typed into the open form, which has the focus, and sent with Enter. */
async function openBoard(page: Page, key: string): Promise<void> {
  await page.goto(`${stack.tracker.url}/#project=${PROJECT}`);
  expect(await page.evaluate(FOCUSED)).toBe("api-key");
  await page.keyboard.type(key);
  await page.keyboard.press("Enter");
  await page.getByRole("status").filter({ hasText: "Live" }).waitFor();
}

const FOCUSED = `document.activeElement?.id || document.activeElement?.dataset.taskId || document.activeElement?.textContent || ""`;

/** Presses Tab (or `key`) until the focused element is `target` (an ID, task ID or text), at most 60 times. */
async function pressTo(page: Page, target: string, key = "Tab"): Promise<void> {
  for (let presses = 0; presses < 60 && (await page.evaluate(FOCUSED)) !== target; presses++) await page.keyboard.press(key);
  expect(await page.evaluate(FOCUSED)).toBe(target);
}

/** The card's dialog, reached with the keyboard: on a phone, its column's tab is chosen with the arrows first. */
async function openCard(page: Page, size: Size, taskId: string, columnTab: string): Promise<void> {
  if (size.phone) {
    const selectedTab = page.getByRole("tablist", { name: "Columns" }).locator('[aria-selected="true"]');
    await pressTo(page, (await selectedTab.getAttribute("id"))!);
    await pressTo(page, columnTab, "ArrowRight");
  }
  await pressTo(page, taskId);
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: taskId }).waitFor();
}

/** The task IDs of the cards on the board, every column's (a phone's hidden columns too). */
/** The cards' task IDs once the columns have drawn `count` cards ("Live" may come before the first page). */
async function cardIds(page: Page, count: number): Promise<string[]> {
  const cards = page.locator("#columns button.card");
  await cards.nth(count - 1).waitFor({ state: "attached" });
  return cards.evaluateAll((all) => all.map((card) => card.getAttribute("data-task-id")!));
}

const IN_DIALOG = `document.querySelector("dialog[open]")?.contains(document.activeElement) ?? false`;

/** What Tab reaches in the open dialog, in order, once round (past its end the focus leaves the page a moment). */
async function tabStops(page: Page): Promise<string[]> {
  const stops: string[] = [];
  for (let presses = 0; presses < 30; presses++) {
    await page.keyboard.press("Tab");
    if (!(await page.evaluate(IN_DIALOG))) continue;
    const focused = await page.evaluate<string>(FOCUSED);
    if (stops.includes(focused)) break;
    stops.push(focused);
  }
  return stops;
}

browserTests("a viewer's board", () => {
  stack = useStack();

  beforeAll(async () => {
    browser = await launchChromium();
    const tasks = [
      {
        task_id: "W-1",
        description: "Design the checkout API",
        priority: "high",
        acceptance_criteria: ["tests pass", "docs updated"],
      },
      { task_id: "W-2", description: "Release notes", priority: "low" },
      { task_id: "W-3", description: "Payment sandbox account", priority: "medium" },
    ];
    const added = await stack.tracker.api("POST", "/tasks/batch", {
      tasks: [
        ...tasks.map((task) => ({ project_id: PROJECT, ...task })),
        { project_id: OTHER_PROJECT, task_id: "X-1", description: "Not for the web team" },
      ],
    });
    expect(added.status).toBe(201);
    keys.viewer = await makeKey("pm", "viewer");
    keys.member = await makeKey("web-dev", "member", [PROJECT]);
    const agent = await makeKey("agents", "member");
    for (const [taskId, status] of [
      ["W-1", "in_progress"],
      ["W-3", "in_progress"],
      ["W-3", "completed"],
    ]) {
      expect((await send(agent, "PUT", `/tasks/${taskId}/status?project=${PROJECT}`, { status })).status).toBe(200);
    }
  });
  afterAll(async () => {
    await browser?.close();
    expect(pageErrors).toEqual([]);
  });

  for (const size of SIZES) {
    describe(`on ${size.name}`, () => {
      test("a viewer's key shows the cards, says once that it may only watch, and offers no steering", async () => {
        const page = await newPage(size);
        await openBoard(page, keys.viewer);
        expect((await cardIds(page, 3)).sort()).toEqual(["W-1", "W-2", "W-3"]);
        expect(await page.getByText("agents · pm-script · working").count()).toBe(1);
        expect(await page.getByText("Completed by agents · pm-script").count()).toBe(1);
        expect(await page.locator("#who-name").innerText()).toBe(VIEWER_SENTENCE);
        expect(await page.getByText("you can watch, not steer").count()).toBe(1);
        // A viewer writes nothing: no name is asked for, and nothing on the board adds or changes a task.
        expect(await page.getByRole("dialog", { name: "Who is steering?" }).count()).toBe(0);
        for (const name of ["Add task", "Change name"]) expect(await page.getByRole("button", { name }).count()).toBe(0);

        await openCard(page, size, "W-1", "tab-in_progress");
        const dialog = page.getByRole("dialog", { name: "W-1" });
        await dialog.getByText("docs updated").waitFor();
        // The holder is the key and the agent together: the key "agents" claimed it as "pm-script".
        await dialog.locator("#history").getByText("Claimed by agents · pm-script").waitFor();
        expect(await dialog.innerText()).toContain("claimed by agents · pm-script");
        expect(await dialog.getByRole("button").allInnerTexts()).toEqual(["Close"]);
        for (const role of ["textbox", "combobox", "group"] as const) expect(await dialog.getByRole(role).count()).toBe(0);
        expect(await dialog.getByText("Cancel this task").isVisible()).toBe(false);
        expect(await dialog.getByRole("heading", { name: "Edit" }).count()).toBe(0);
        const boxes = dialog.getByRole("checkbox");
        expect(await boxes.count()).toBe(2);
        for (const box of await boxes.all()) expect(await box.isDisabled()).toBe(true);
        // The keyboard reaches nothing in the dialog but its close button.
        expect(await tabStops(page)).toEqual(["Close"]);
        await page.keyboard.press("Escape");
        await dialog.waitFor({ state: "hidden" });
        await page.context().close();
      });

      test("a member's key has every steering control, and only its projects", async () => {
        const page = await newPage(size, PERSON);
        await openBoard(page, keys.member);
        expect(await page.locator("#who-name").innerText()).toBe(`Steering as ${PERSON}`);
        expect(await page.getByText("you can watch, not steer").count()).toBe(0);
        expect(await page.getByRole("navigation", { name: "Projects" }).locator(".project-name").allInnerTexts()).toEqual([
          PROJECT,
        ]);
        expect(await page.getByRole("button", { name: "Add task" }).isVisible()).toBe(true);
        await openCard(page, size, "W-1", "tab-in_progress");
        const dialog = page.getByRole("dialog", { name: "W-1" });
        await dialog.getByText("docs updated").waitFor();
        for (const name of ["Release claim", "Add criterion", "Add note", "Save changes", "Edit criterion 1"]) {
          expect([name, await dialog.getByRole("button", { name }).isVisible()]).toEqual([name, true]);
        }
        expect(await dialog.getByText("Cancel this task").isVisible()).toBe(true);
        for (const box of await dialog.getByRole("checkbox").all()) expect(await box.isEnabled()).toBe(true);
        await page.context().close();
      });
    });
  }

  test("the tracker refuses a viewer's forced writes: 403 naming the key and its role, and nothing changes", async () => {
    const release = await send(keys.viewer, "PUT", `/tasks/W-1/status?project=${PROJECT}`, { status: "pending", force: true });
    expect([release.status, await release.json()]).toEqual([
      403,
      {
        error: "The key pm is a viewer: it may read but not write, and PUT /tasks/<task_id>/status writes; a member key may",
        code: "forbidden",
      },
    ]);
    const note = await send(keys.viewer, "POST", `/tasks/W-2/notes?project=${PROJECT}`, { text: "steer anyway" });
    expect(note.status).toBe(403);
    const add = await send(keys.viewer, "POST", "/tasks/batch", {
      tasks: [{ project_id: PROJECT, task_id: "W-9", description: "x" }],
    });
    expect(add.status).toBe(403);
    const { body } = await stack.tracker.api("GET", `/tasks/W-1?project=${PROJECT}`);
    expect([body.task.status, body.task.notes_count]).toEqual(["in_progress", 0]);
    expect((await stack.tracker.api("GET", `/tasks/W-2?project=${PROJECT}`)).body.task.notes_count).toBe(0);
  });

  test("a tracker without GET /whoami (404) gets the board as before, every control shown", async () => {
    const page = await newPage(SIZES[0], PERSON);
    await page.route("**/whoami", (route) =>
      route.fulfill({
        status: 404,
        contentType: "application/json",
        body: JSON.stringify({ error: "No such endpoint: GET /whoami", code: "not_found" }),
      }),
    );
    await openBoard(page, keys.viewer);
    expect(await page.locator("#who-name").innerText()).toBe(`Steering as ${PERSON}`);
    expect(await page.getByRole("button", { name: "Add task" }).isVisible()).toBe(true);
    await page.context().close();
  });
});
