// Steering from the board, in a real browser (Debian's chromium, driven by playwright-core) against the
// real tracker, at a desktop's size and at a phone's, with the keyboard alone: filters by agent and
// priority, kept in the address; grouping by parent; `#task=ID` opening a task's dialog (and the
// dialog putting it there); dependencies edited from the dialog.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { hasChromium, launchChromium } from "../testkit/browser.ts";
import { cardsOf, column, FOCUSED, tabTo } from "./board-page.ts";
import { type Stack, useStack } from "./harness.ts";

const PROJECT = "steer";
const PERSON = "dana.example";
const NAME_STORAGE = "task-board.name";
const GINA = "claude-gina";
const OMAR = "claude-omar";

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
const pageErrors: string[] = [];

/** A request in an agent's name, as the MCP server makes it. */
async function asAgent(agent: string, method: string, path: string, body: unknown): Promise<void> {
  const response = await fetch(`${stack.tracker.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json", "x-agent-id": agent },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
}

async function claim(agent: string, taskId: string): Promise<void> {
  await asAgent(agent, "PUT", `/tasks/${taskId}/status?project=${PROJECT}`, { status: "in_progress" });
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

async function openBoard(page: Page, hash = `#project=${PROJECT}`): Promise<void> {
  await page.goto(`${stack.tracker.url}/${hash}`);
  await page.getByLabel("API key").fill(stack.apiKey);
  await page.getByRole("button", { name: "Open board" }).click();
  await page.getByRole("status").filter({ hasText: "Live" }).waitFor();
}

function addressOf(page: Page): URLSearchParams {
  return new URLSearchParams(new URL(page.url()).hash.slice(1));
}

/** Waits until the address's `name` is `value` (null: absent); a dialog's close event comes a moment after it hides. */
async function addressHas(page: Page, name: string, value: string | null): Promise<void> {
  for (let tries = 0; tries < 50 && addressOf(page).get(name) !== value; tries++) await page.waitForTimeout(20);
  expect(addressOf(page).get(name)).toBe(value);
}

/** The filters start folded (until one is on): the keyboard opens them. */
async function unfoldFilters(page: Page): Promise<void> {
  const box = page.locator("#filters-box");
  if ((await box.getAttribute("open")) !== null) return;
  await tabTo(page, "filters-summary");
  await page.keyboard.press("Enter");
  expect(await box.getAttribute("open")).not.toBeNull();
}

browserTests("steering from the board", () => {
  stack = useStack();

  beforeAll(async () => {
    browser = await launchChromium();
    const tasks = [
      { task_id: "S-1", description: "Design the checkout API", priority: "high" },
      { task_id: "S-2", description: "Payment sandbox account", priority: "high" },
      { task_id: "S-3", description: "Order confirmation e-mail", priority: "medium" },
      { task_id: "S-4", description: "Release notes", priority: "low" },
      { task_id: "S-5", description: "Fraud rules for first orders", priority: "low" },
      { task_id: "S-6", description: "Ship the checkout", priority: "high", depends_on: ["S-1"] },
    ];
    const added = await stack.tracker.api("POST", "/tasks/batch", {
      tasks: tasks.map((task) => ({ project_id: PROJECT, ...task })),
    });
    expect(added.status).toBe(201);
    await claim(GINA, "S-1");
    await claim(OMAR, "S-2");
    await claim(GINA, "S-3");
    await asAgent(GINA, "PUT", `/tasks/S-3/status?project=${PROJECT}`, { status: "completed" });
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const size of SIZES) {
    describe(`on ${size.name}`, () => {
      let page: Page;
      beforeAll(async () => {
        page = await newPage(size);
        await openBoard(page);
      });
      afterAll(async () => {
        await page.context().close();
      });

      test("the agent filter, typed and applied with the keyboard alone, keeps that agent's tasks", async () => {
        await unfoldFilters(page);
        await tabTo(page, "filter-agent");
        await page.keyboard.type(GINA);
        await page.keyboard.press("Enter");
        expect(await cardsOf(page, size, "In progress", ["S-1"])).toEqual(["S-1"]);
        expect(await cardsOf(page, size, "Completed", ["S-3"])).toEqual(["S-3"]);
        // Pending tasks have no agent: the column says why it is empty.
        expect(await (await column(page, size, "Ready")).innerText()).toContain("No task here matches the filters.");
        expect(addressOf(page).get("agent")).toBe(GINA);
        expect(await page.locator("#filters-summary").innerText()).toBe("Filter and group (1 filter)");
      });

      test("the priority filter narrows every column; Clear filters shows everything again", async () => {
        await page.locator("#filter-agent").fill("");
        await page.locator("#filter-agent").press("Enter");
        await page.locator("#filter-priority").focus();
        await page.keyboard.press("ArrowDown"); // any → high
        expect(await page.locator("#filter-priority").inputValue()).toBe("high");
        expect(await cardsOf(page, size, "In progress", ["S-1", "S-2"])).toEqual(["S-1", "S-2"]);
        expect(await cardsOf(page, size, "Blocked", ["S-6"])).toEqual(["S-6"]);
        expect(await cardsOf(page, size, "Ready", [])).toEqual([]);
        expect(await cardsOf(page, size, "Completed", [])).toEqual([]);
        expect(addressOf(page).get("priority")).toBe("high");
        await unfoldFilters(page);
        await page.getByRole("button", { name: "Clear filters" }).click();
        expect(await cardsOf(page, size, "Ready", ["S-4", "S-5"])).toEqual(["S-4", "S-5"]);
        expect(addressOf(page).has("priority")).toBe(false);
      });

      test("filters in the address are applied as the board opens", async () => {
        const linked = await newPage(size);
        await openBoard(linked, `#project=${PROJECT}&priority=low`);
        expect(await cardsOf(linked, size, "Ready", ["S-4", "S-5"])).toEqual(["S-4", "S-5"]);
        expect(await cardsOf(linked, size, "In progress", [])).toEqual([]);
        expect(await linked.locator("#filter-priority").inputValue()).toBe("low");
        await linked.context().close();
      });

      test("grouping by parent puts tasks without a parent under one heading", async () => {
        await unfoldFilters(page);
        await page.getByLabel("Group by parent").check();
        const ready = await column(page, size, "Ready");
        await ready.locator(".group-title").first().waitFor();
        expect(await ready.locator(".group-title").allInnerTexts()).toEqual(["No parent"]);
        expect(await ready.locator(".group button.card").count()).toBe(2);
        expect(addressOf(page).get("group")).toBe("parent");
        await page.getByLabel("Group by parent").uncheck();
        await ready.locator(".group-title").first().waitFor({ state: "detached" });
      });

      test("a card opens its dialog and puts task=ID in the address; closing takes it out", async () => {
        const card = (await column(page, size, "Ready")).locator('button.card[data-task-id="S-4"]');
        await card.focus();
        await page.keyboard.press("Enter");
        await page.getByRole("dialog", { name: "S-4" }).waitFor();
        expect(addressOf(page).get("task")).toBe("S-4");
        await page.keyboard.press("Escape");
        await page.getByRole("dialog", { name: "S-4" }).waitFor({ state: "hidden" });
        await addressHas(page, "task", null);
        expect(await page.evaluate(FOCUSED)).toBe("S-4");
      });

      test("#task=ID opens that task's dialog, as the board opens and when the address changes", async () => {
        const linked = await newPage(size);
        await openBoard(linked, `#project=${PROJECT}&task=S-6`);
        const dialog = linked.getByRole("dialog", { name: "S-6" });
        await dialog.waitFor();
        await dialog.getByText("Added by").first().waitFor();
        await linked.evaluate(`location.hash = "project=${PROJECT}&task=S-2"`);
        await linked.getByRole("dialog", { name: "S-2" }).waitFor();
        expect(await linked.locator("#task-summary").innerText()).toBe(`in progress · high priority, claimed by ${OMAR}`);
        await linked.evaluate(`location.hash = "project=${PROJECT}&task=NOPE"`);
        await linked.getByRole("alert").filter({ hasText: "Task not found: NOPE" }).waitFor();
        await linked.context().close();
      });
    });
  }

  test("dependencies edited in the dialog move the card, and the history says so (keyboard alone)", async () => {
    const size = SIZES[0];
    const page = await newPage(size);
    await openBoard(page, `#project=${PROJECT}&task=S-5`);
    const dialog = page.getByRole("dialog", { name: "S-5" });
    await dialog.getByText("Added by").first().waitFor();
    await tabTo(page, "edit-depends");
    await page.keyboard.type("S-4");
    await tabTo(page, "Save changes");
    await page.keyboard.press("Enter");
    await dialog.getByText(`Edited by ${PERSON}: depends on S-4`, { exact: true }).waitFor();
    await page.keyboard.press("Escape");
    expect(await cardsOf(page, size, "Blocked", ["S-6", "S-5"])).toEqual(["S-6", "S-5"]);
    expect(await (await column(page, size, "Blocked")).locator('[data-task-id="S-5"] .waits').innerText()).toBe(
      "Waits for “Release notes”",
    );
    // A cycle is refused with the tracker's sentence, in the dialog.
    await (await column(page, size, "Ready")).locator('button.card[data-task-id="S-4"]').click();
    await page.getByRole("dialog", { name: "S-4" }).getByText("Added by").first().waitFor();
    await page.locator("#edit-depends").fill("S-5");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.locator("#task-error").filter({ hasText: "cycle" }).waitFor();
    await page.context().close();
  });

  test("no page threw an error", () => {
    expect(pageErrors).toEqual([]);
  });
});
