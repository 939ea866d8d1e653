// The board read at a glance, in a real browser (Debian's chromium, driven by playwright-core) against
// the real tracker, at a desktop's size and at a phone's (390 px wide): what a card says, the phone's
// column tabs and the desktop's skip links (with the keyboard alone), an empty project, a lost
// connection, a remembered key and the steering name asked once.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { hasChromium, launchChromium } from "../testkit/browser.ts";
import { type Stack, startTrackerProcess, useStack } from "./harness.ts";

const PROJECT = "glance";
const EMPTY_PROJECT = "glance-empty";
const AGENT = "claude-gina";
const PERSON = "dana.example";
const NAME_STORAGE = "task-board.name";
const KEY_STORAGE = "task-board.api-key";
/** A payload an audit would try, in backticks: it must show as code, as text. */
const PAYLOAD = `<img src=x onerror="window.pwned=1">`;
/** The pages look at the board 12 minutes after the agent started. */
const LATER_MS = 12 * 60_000 + 10_000;

const SIZES = [
  { name: "a desktop", phone: false, viewport: { width: 1280, height: 800 } },
  { name: "a phone", phone: true, viewport: { width: 390, height: 844 } },
] as const;
type Size = (typeof SIZES)[number];
type ColumnName = "Ready" | "Blocked" | "In progress" | "Completed";

setDefaultTimeout(20_000);

// Under CI a missing browser fails (the launch in beforeAll throws); elsewhere the file is skipped.
const browserTests = hasChromium() || process.env.CI === "true" ? describe : describe.skip;

let browser: Browser;
let stack: Stack<never>;
const pageErrors: string[] = [];

/** A status change in an agent's name, as the MCP server makes it. */
async function moveAs(agent: string, taskId: string, body: Record<string, unknown>): Promise<{ started_at: string }> {
  const response = await fetch(`${stack.tracker.url}/tasks/${taskId}/status?project=${PROJECT}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json", "x-agent-id": agent },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { updated_task: { started_at: string } }).updated_task;
}

async function newContext(size: Size, options: { named?: boolean; at?: number } = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: size.viewport, locale: "en-US" });
  context.setDefaultTimeout(5000);
  if (options.named !== false) {
    // about:blank, where every page starts, has no localStorage.
    await context.addInitScript({
      content: `if (location.protocol.startsWith("http")) localStorage.setItem(${JSON.stringify(NAME_STORAGE)}, ${JSON.stringify(PERSON)});`,
    });
  }
  if (options.at !== undefined) await context.clock.setFixedTime(options.at);
  context.on("weberror", (error) => pageErrors.push(error.error().message));
  return context;
}

async function openBoard(page: Page, hash = `#project=${PROJECT}`, remember = false): Promise<void> {
  await page.goto(`${stack.tracker.url}/${hash}`);
  await page.getByLabel("API key").fill(stack.apiKey);
  if (remember) await page.getByLabel("Remember the key on this device").check();
  await page.getByRole("button", { name: "Open board" }).click();
}

/** A column: a region on a desktop, the tab list's panel on a phone. */
function column(page: Page, name: ColumnName): Locator {
  return page.getByRole(page.viewportSize()!.width <= 640 ? "tabpanel" : "region", { name, exact: true });
}

/** The card of a task; on a phone its column's tab is chosen first. */
async function card(page: Page, size: Size, name: ColumnName, taskId: string): Promise<Locator> {
  if (size.phone) await page.getByRole("tablist", { name: "Columns" }).getByRole("tab", { name }).click();
  const found = column(page, name).locator(`button.card[data-task-id="${taskId}"]`);
  await found.waitFor();
  return found;
}

const FOCUSED = `document.activeElement?.dataset.taskId ?? document.activeElement?.textContent ?? ""`;

/** Presses Tab (or `key`) until `done` holds for the focused element (at most 40 times). */
async function tabUntil(page: Page, done: (focused: string) => boolean, key = "Tab"): Promise<string> {
  let focused = "";
  for (let presses = 0; presses < 40 && !done(focused); presses++) {
    await page.keyboard.press(key);
    focused = await page.evaluate(FOCUSED);
  }
  return focused;
}

function useBrowser(): void {
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
}

browserTests("the board at a glance", () => {
  useBrowser();
  stack = useStack();
  let startedAt = 0;

  beforeAll(async () => {
    const tasks = [
      { task_id: "G-1", description: "Design the `checkout` API\nwith a second line", priority: "high" },
      { task_id: "G-2", description: "Payment **sandbox** account" },
      { task_id: "G-3", description: "Write the *release* notes", priority: "low" },
      { task_id: "G-4", description: `Run \`${PAYLOAD}\` then *check* the **logs**` },
      { task_id: "G-6", description: "Load test the checkout", depends_on: ["G-2"] },
      { task_id: "G-5", description: "Ship the checkout", depends_on: ["G-1", "G-2", "G-3", "G-6"] },
    ];
    const added = await stack.tracker.api("POST", "/tasks/batch", {
      tasks: tasks.map((task) => ({ project_id: PROJECT, ...task })),
    });
    expect(added.status).toBe(201);
    await moveAs(AGENT, "G-1", { status: "in_progress" });
    await moveAs(AGENT, "G-1", { status: "completed", completion_notes: "SPEC-7 agreed" });
    startedAt = Date.parse((await moveAs(AGENT, "G-2", { status: "in_progress" })).started_at);
    // A project with an ID counter and no task yet.
    expect((await stack.tracker.api("GET", `/ids/next?type=TASK&project=${EMPTY_PROJECT}`)).status).toBe(200);
  });

  for (const size of SIZES) {
    describe(`on ${size.name}`, () => {
      let context: BrowserContext;
      let page: Page;

      beforeAll(async () => {
        context = await newContext(size, { at: startedAt + LATER_MS });
        page = await context.newPage();
        await openBoard(page);
        await page.locator('button.card[data-task-id="G-3"]').waitFor({ state: "attached" });
      });
      afterAll(async () => {
        await context.close();
      });

      test("a card leads with its description's first line; the ID is small beneath it", async () => {
        const ready = await card(page, size, "Ready", "G-3");
        expect(await ready.innerText()).toBe("Write the release notes\nG-3\nLOW\nAdded 12 min ago");
        // A string, evaluated in the page: this file is compiled without the DOM's types.
        const fontSize = (part: string): Promise<number> =>
          page.evaluate(`parseFloat(getComputedStyle(document.querySelector('[data-task-id="G-3"] ${part}')).fontSize)`);
        expect(await fontSize(".task-id")).toBeLessThan(await fontSize(".description"));
        expect(await ready.locator("time").getAttribute("title")).toMatch(/\d{4}/);
      });

      test("inline code and emphasis show as such, and a payload in backticks stays text", async () => {
        const ready = await card(page, size, "Ready", "G-4");
        const description = ready.locator(".description");
        expect(await description.locator("code").allTextContents()).toEqual([PAYLOAD]);
        expect(await description.locator("em").allTextContents()).toEqual(["check"]);
        expect(await description.locator("strong").allTextContents()).toEqual(["logs"]);
        expect(await description.textContent()).toBe(`Run ${PAYLOAD} then check the logs`);
        expect(await page.locator("img").count()).toBe(0);
        expect(await page.evaluate("window.pwned")).toBeUndefined();
        const completed = await card(page, size, "Completed", "G-1");
        expect(await completed.locator(".description code").textContent()).toBe("checkout");
      });

      test("a blocked task names what it waits for by title, with how many are done", async () => {
        const blocked = await card(page, size, "Blocked", "G-5");
        expect(await blocked.locator(".waits").innerText()).toBe(
          "Waits for “Payment sandbox account”, “Write the release notes”, “Load test the checkout” · 1 of 4 done",
        );
        expect(await blocked.locator(".waits").getAttribute("title")).toBe("Waits for G-2, G-3, G-6");
      });

      test("an in-progress card says who works on it and for how long; the lease is in its tooltip", async () => {
        const working = await card(page, size, "In progress", "G-2");
        expect(await working.innerText()).toBe(`Payment sandbox account\nG-2\nMEDIUM\n${AGENT} · working 12 min`);
        expect(await working.locator(".detail").getAttribute("title")).toMatch(
          /^Lease runs until .*\d{4}.*; the agent renews it while it works$/,
        );
      });

      test("a completed card says who completed it and when", async () => {
        const completed = await card(page, size, "Completed", "G-1");
        expect(await completed.innerText()).toBe(
          `Design the checkout API\nG-1\nHIGH\nCompleted by ${AGENT} · 12 min ago\nSPEC-7 agreed`,
        );
      });

      test("an empty project says how to start and shows no Load more", async () => {
        await page.getByRole("button", { name: new RegExp(`^${EMPTY_PROJECT}\\s*0 ready`) }).click();
        const start = page.getByRole("region", { name: "Nothing to steer yet" });
        await start.waitFor();
        expect(await start.innerText()).toContain(`task-tracking-mcp import TODO.md --project ${EMPTY_PROJECT}`);
        expect(await start.innerText()).toContain("plan_goal");
        expect(await page.getByRole("button", { name: "Load more" }).count()).toBe(0);
        expect(await column(page, "Ready").count()).toBe(0);
        await page.getByRole("button", { name: new RegExp(`^${PROJECT}\\s*2 ready`) }).click();
        await start.waitFor({ state: "hidden" });
      });
    });
  }

  describe("on a phone", () => {
    let context: BrowserContext;
    let page: Page;
    beforeAll(async () => {
      context = await newContext(SIZES[1]);
      page = await context.newPage();
      await openBoard(page);
      await column(page, "In progress").locator("button.card").first().waitFor();
    });
    afterAll(async () => {
      await context.close();
    });

    test("a tab list switches the columns, In progress first, with the arrow keys alone", async () => {
      const tabs = page.getByRole("tablist", { name: "Columns" }).getByRole("tab");
      expect(await tabs.allInnerTexts()).toEqual(["In progress 1", "Ready 2", "Blocked 2", "Completed 1"]);
      const shown = async () =>
        Promise.all((["Ready", "Blocked", "In progress", "Completed"] as const).map((name) => column(page, name).isVisible()));
      expect(await shown()).toEqual([false, false, true, false]);
      expect(await tabUntil(page, (focused) => focused.startsWith("In progress"))).toStartWith("In progress");
      await page.keyboard.press("ArrowRight");
      expect(await shown()).toEqual([true, false, false, false]);
      expect(await page.evaluate(FOCUSED)).toStartWith("Ready");
      await page.keyboard.press("End");
      expect(await shown()).toEqual([false, false, false, true]);
      await page.keyboard.press("ArrowRight");
      expect(await shown()).toEqual([false, false, true, false]);
      await page.keyboard.press("ArrowLeft");
      expect(await shown()).toEqual([false, false, false, true]);
      await page.keyboard.press("Home");
      expect(await tabs.first().getAttribute("aria-selected")).toBe("true");
      // One Tab from the tab list is the first card of the column it shows.
      await page.keyboard.press("Tab");
      expect(await page.evaluate(FOCUSED)).toBe("G-2");
    });

    test("the page stays short and nothing runs off the side; no skip links", async () => {
      expect(await page.evaluate("document.documentElement.scrollHeight")).toBeLessThan(1200);
      expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
      expect(await page.getByRole("navigation", { name: "Jump to a column" }).count()).toBe(0);
    });
  });

  describe("on a desktop", () => {
    let context: BrowserContext;
    let page: Page;
    beforeAll(async () => {
      context = await newContext(SIZES[0]);
      page = await context.newPage();
      await openBoard(page);
      await column(page, "In progress").locator("button.card").first().waitFor();
    });
    afterAll(async () => {
      await context.close();
    });

    test("skip links jump to a column's first card with the keyboard alone", async () => {
      expect(await page.getByRole("tablist", { name: "Columns" }).count()).toBe(0);
      const jumps = page.getByRole("navigation", { name: "Jump to a column" });
      expect(await jumps.getByRole("link").allInnerTexts()).toEqual(["Ready", "Blocked", "In progress", "Completed"]);
      expect(await tabUntil(page, (focused) => focused === "In progress")).toBe("In progress");
      await page.keyboard.press("Enter");
      expect(await page.evaluate(FOCUSED)).toBe("G-2");
      await page.keyboard.press("Enter");
      await page.getByRole("dialog", { name: "G-2" }).waitFor();
      await page.keyboard.press("Escape");
      // Back to the jump links, then to the last column.
      expect(await tabUntil(page, (focused) => focused === "Completed", "Shift+Tab")).toBe("Completed");
      await page.keyboard.press("Enter");
      expect(await page.evaluate(FOCUSED)).toBe("G-1");
      expect(new URL(page.url()).hash).toBe(`#project=${PROJECT}`);
    });
  });

  for (const size of SIZES) {
    describe(`the key and the name, on ${size.name}`, () => {
      test("the name is asked once, as the board opens, and kept on this device", async () => {
        const context = await newContext(size, { named: false });
        const page = await context.newPage();
        await openBoard(page);
        const question = page.getByRole("dialog", { name: "Who is steering?" });
        await question.waitFor();
        await page.keyboard.type(PERSON);
        await page.keyboard.press("Enter");
        await question.waitFor({ state: "hidden" });
        expect(await page.evaluate((key) => localStorage.getItem(key), NAME_STORAGE)).toBe(PERSON);
        await page.reload();
        await column(page, "In progress").locator("button.card").first().waitFor({ state: "attached" });
        await page.getByRole("button", { name: "Add task" }).click();
        await page.getByRole("dialog", { name: "Add a task" }).waitFor();
        expect(await question.isHidden()).toBe(true);
        await context.close();
      });

      test("the key is kept for the tab only, unless Remember is ticked: then a new tab opens the board", async () => {
        const context = await newContext(size);
        const page = await context.newPage();
        await openBoard(page);
        await page.getByRole("button", { name: "Close board" }).waitFor();
        expect(await page.getByLabel("Remember the key on this device").isChecked()).toBe(false);
        expect(await page.evaluate((key) => [sessionStorage.getItem(key), localStorage.getItem(key)], KEY_STORAGE)).toEqual([
          stack.apiKey,
          null,
        ]);
        const second = await context.newPage();
        await second.goto(stack.tracker.url);
        await second.getByLabel("API key").waitFor();

        await page.getByRole("button", { name: "Close board" }).click();
        await openBoard(page, `#project=${PROJECT}`, true);
        await page.getByRole("button", { name: "Close board" }).waitFor();
        expect(await page.evaluate((key) => [sessionStorage.getItem(key), localStorage.getItem(key)], KEY_STORAGE)).toEqual([
          null,
          stack.apiKey,
        ]);
        const third = await context.newPage();
        await third.goto(stack.tracker.url);
        await third.getByRole("button", { name: "Close board" }).waitFor();
        await third.getByRole("button", { name: "Close board" }).click();
        expect(await third.evaluate((key) => localStorage.getItem(key), KEY_STORAGE)).toBeNull();
        await context.close();
      });
    });
  }

  test("a lost connection shows a banner until the tracker is back, at both sizes", async () => {
    const pages: Page[] = [];
    for (const size of SIZES) {
      const page = await (await newContext(size)).newPage();
      await openBoard(page);
      await page.getByRole("status").filter({ hasText: "Live" }).waitFor();
      pages.push(page);
    }
    const banner = (page: Page) => page.getByRole("alert").filter({ hasText: "connection to the tracker is lost" });
    expect(await stack.tracker.stop()).toBe(0);
    for (const page of pages) await banner(page).waitFor();
    stack.tracker = await startTrackerProcess({
      apiKey: stack.tracker.apiKey,
      env: { PORT: String(stack.tracker.port), TRACKER_DB: stack.tracker.dbPath },
    });
    for (const page of pages) await banner(page).waitFor({ state: "hidden", timeout: 10_000 });
    for (const page of pages) await page.context().close();
  });

  test("no page threw an error", () => {
    expect(pageErrors).toEqual([]);
  });
});
