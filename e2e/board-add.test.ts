// The board's add form, in a real browser (Debian's chromium, driven by playwright-core) against the
// real tracker, at a desktop's size and at a phone's, with the keyboard alone: the description is
// asked first, the task ID is optional (the tracker assigns the next TASK-nnn), and the tracker's
// errors read in the form's words.

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { hasChromium, launchChromium } from "../testkit/browser.ts";
import { type Stack, useStack } from "./harness.ts";

const NAME_STORAGE = "task-board.name";
const PERSON = "dana.example";

const SIZES = [
  { name: "a desktop", project: "add-desk", viewport: { width: 1280, height: 800 } },
  { name: "a phone", project: "add-phone", viewport: { width: 390, height: 844 } },
] as const;

setDefaultTimeout(20_000);

// Under CI a missing browser fails (the launch in beforeAll throws); elsewhere the file is skipped.
const browserTests = hasChromium() || process.env.CI === "true" ? describe : describe.skip;

let browser: Browser;
let stack: Stack<never>;
const pageErrors: string[] = [];

/** The element that has the focus, by its ID (the form's fields have one). */
const FOCUSED_ID = `document.activeElement?.id ?? ""`;

async function openAddForm(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Add task" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("dialog", { name: "Add a task" }).waitFor();
}

/** Clears the focused field and types `text` into it, as a person would. */
async function retype(page: Page, text: string): Promise<void> {
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Backspace");
  if (text !== "") await page.keyboard.type(text);
}

/** Tabs (or `key`: Shift+Tab to go back) from the focused field to the field `id`, at most 12 presses. */
async function tabTo(page: Page, id: string, key = "Tab"): Promise<void> {
  for (let presses = 0; presses < 12 && (await page.evaluate(FOCUSED_ID)) !== id; presses++) await page.keyboard.press(key);
  expect(await page.evaluate(FOCUSED_ID)).toBe(id);
}

browserTests("the board's add form", () => {
  stack = useStack();

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    expect(pageErrors).toEqual([]);
  });

  for (const size of SIZES) {
    describe(`on ${size.name}`, () => {
      let context: BrowserContext;
      let page: Page;

      beforeAll(async () => {
        // An agent took TASK-001 from the registry before anyone used the form.
        const allocated = await stack.tracker.api("GET", `/ids/next?type=TASK&project=${size.project}`);
        expect(allocated.body).toMatchObject({ next_id: "TASK-001" });
        const added = await stack.tracker.api("POST", "/tasks/batch", {
          tasks: [{ task_id: "TASK-001", project_id: size.project, description: "The agent's task" }],
        });
        expect(added.status).toBe(201);
        context = await browser.newContext({ viewport: size.viewport, locale: "en-US" });
        context.setDefaultTimeout(5000);
        await context.addInitScript({
          content: `if (location.protocol.startsWith("http")) localStorage.setItem(${JSON.stringify(NAME_STORAGE)}, ${JSON.stringify(PERSON)});`,
        });
        context.on("weberror", (error) => pageErrors.push(error.error().message));
        page = await context.newPage();
        await page.goto(`${stack.tracker.url}/#project=${size.project}`);
        await page.getByLabel("API key").fill(stack.apiKey);
        await page.getByRole("button", { name: "Open board" }).click();
        await page.locator('button.card[data-task-id="TASK-001"]').waitFor({ state: "attached" });
      });
      afterAll(async () => {
        await context.close();
      });

      test("asks for the description first; the task ID is optional and says it is assigned", async () => {
        await openAddForm(page);
        expect(await page.evaluate(FOCUSED_ID)).toBe("add-description");
        const fields = await page
          .locator("#add-form")
          .locator("input, textarea, select")
          .evaluateAll((all) => all.map((f) => f.id));
        expect(fields).toEqual(["add-description", "add-project", "add-priority", "add-depends", "add-id"]);
        const taskId = page.getByLabel("Task ID", { exact: true });
        expect(await taskId.getAttribute("placeholder")).toBe("assigned: TASK-nnn");
        expect(await taskId.getAttribute("required")).toBeNull();
        expect(await page.locator("#add-id-hint").textContent()).toBe(
          "Optional: left empty, the tracker assigns the project's next TASK-nnn.",
        );
        await page.keyboard.press("Escape");
      });

      test("a task added without an ID gets the project's next TASK-nnn, after the agent's", async () => {
        await openAddForm(page);
        await page.keyboard.type("Write the release notes");
        await tabTo(page, "add-id");
        await page.keyboard.press("Enter");
        await page.getByRole("dialog", { name: "Add a task" }).waitFor({ state: "hidden" });
        await page.locator('button.card[data-task-id="TASK-002"]').waitFor({ state: "attached" });
        const stored = await stack.tracker.api("GET", `/tasks/TASK-002?project=${size.project}`);
        expect(stored.body.task).toMatchObject({ description: "Write the release notes", project_id: size.project });
        const next = await stack.tracker.api("GET", `/ids/next?type=TASK&project=${size.project}`);
        expect(next.body).toMatchObject({ next_id: "TASK-003" });
      });

      test("the tracker's errors name the form's fields, and the field is marked and focused", async () => {
        const error = page.locator("#add-error");
        await openAddForm(page);
        await page.keyboard.type("Check the links");
        await tabTo(page, "add-id");
        await page.keyboard.type("bad id");
        await page.keyboard.press("Enter");
        await page.locator("#add-error:not(:empty)").waitFor();
        expect(await error.textContent()).toBe("Task ID must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
        expect(await page.evaluate(FOCUSED_ID)).toBe("add-id");
        expect(await page.getByLabel("Task ID", { exact: true }).getAttribute("aria-invalid")).toBe("true");

        await retype(page, "");
        await tabTo(page, "add-depends", "Shift+Tab");
        await page.keyboard.type("ghost");
        await page.keyboard.press("Enter");
        await page.locator("#add-error", { hasText: /^Depends on/ }).waitFor();
        expect(await error.textContent()).toBe("Depends on (entry 1) names an unknown task: ghost");
        expect(await page.evaluate(FOCUSED_ID)).toBe("add-depends");
        expect(await page.getByLabel("Task ID", { exact: true }).getAttribute("aria-invalid")).toBeNull();

        await retype(page, "");
        await tabTo(page, "add-description", "Shift+Tab");
        await retype(page, "");
        await tabTo(page, "add-id");
        await page.keyboard.press("Enter");
        expect(await error.textContent()).toBe("Enter the description.");
        expect(await page.evaluate(FOCUSED_ID)).toBe("add-description");
        await page.keyboard.press("Escape");
      });
    });
  }
});
