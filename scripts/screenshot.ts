/**
 * `bun run scripts/screenshot.ts`: docs/board.png, the board with a few agents at work, for the README.
 *
 * Starts the tracker on a temporary database, plans a small project, lets three compiled MCP servers
 * (one per agent) claim and finish some of it, opens the board in Debian's chromium and takes the
 * picture, as the board looks a quarter of an hour later (the browser's clock is moved on, so the cards
 * say "working 14 min" rather than "under a minute"). `--phone FILE` also takes one at a phone's size
 * (390 × 844). Needs `bun run build` first (dist/task-tracking-mcp).
 */
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { type McpProcess, mcpEnv, ROOT, startMcp, startTrackerProcess, stopEverything, textOf } from "../e2e/harness.ts";
import { launchChromium } from "../testkit/browser.ts";

const PROJECT = "checkout";
const OUTPUT = join(ROOT, "docs", "board.png");
const LATER_MS = 14 * 60_000;

const PLAN = [
  {
    task_id: "TASK-101",
    description: "Design the checkout API\nEndpoints for cart, payment and order status",
    priority: "high",
    status: "completed",
    completion_notes: "SPEC-12 agreed with the web team",
  },
  {
    task_id: "TASK-102",
    description: "Payment provider sandbox account",
    priority: "high",
    status: "completed",
    completion_notes: "Keys are in the vault, not in the repo",
  },
  {
    task_id: "TASK-103",
    description: "Build the cart service behind `/api/cart`",
    priority: "high",
    depends_on: ["TASK-101"],
    labels: ["backend"],
  },
  {
    task_id: "TASK-104",
    description: "Card payments through the provider",
    priority: "high",
    depends_on: ["TASK-101", "TASK-102"],
    labels: ["backend", "payments"],
    acceptance_criteria: [{ text: "3-D Secure challenge passes", done: true }, "Declined cards say why", "Webhook retries"],
  },
  { task_id: "TASK-105", description: "Order confirmation e-mail", priority: "medium", depends_on: ["TASK-101"] },
  { task_id: "TASK-113", description: "The checkout pages", priority: "medium", labels: ["frontend"] },
  {
    task_id: "TASK-106",
    description: "Address and delivery",
    priority: "medium",
    depends_on: ["TASK-103"],
    parent_id: "TASK-113",
    labels: ["frontend"],
  },
  {
    task_id: "TASK-107",
    description: "Payment step",
    priority: "medium",
    depends_on: ["TASK-103", "TASK-104"],
    parent_id: "TASK-113",
    labels: ["frontend"],
  },
  {
    task_id: "TASK-108",
    description: "Load test the checkout at **200 orders a minute**",
    priority: "low",
    depends_on: ["TASK-106", "TASK-107"],
  },
  {
    task_id: "TASK-109",
    description: "Accessibility review of the checkout pages",
    priority: "medium",
    depends_on: ["TASK-106"],
    parent_id: "TASK-113",
  },
  { task_id: "TASK-110", description: "Release notes for the checkout", priority: "low", labels: ["docs"] },
  { task_id: "TASK-111", description: "Refund flow for support staff", priority: "low", depends_on: ["TASK-104"] },
  { task_id: "TASK-112", description: "Fraud rules for *first* orders", priority: "medium" },
];

const OTHER_PROJECT = [
  { task_id: "DOC-1", description: "Move the docs to the new site generator", priority: "medium" },
  { task_id: "DOC-2", description: "Redirects from the old URLs", priority: "low", depends_on: ["DOC-1"] },
];

async function call(agent: McpProcess, tool: string, args: Record<string, unknown>): Promise<any> {
  const result = await agent.call(tool, args);
  if (result.isError) throw new Error(`${tool} failed: ${textOf(result)}`);
  return result.structuredContent;
}

async function main(): Promise<void> {
  const tracker = await startTrackerProcess();
  const tasks = [
    ...PLAN.map((task) => ({ project_id: PROJECT, ...task })),
    ...OTHER_PROJECT.map((task) => ({ project_id: "docs-site", ...task })),
  ];
  const added = await tracker.api("POST", "/tasks/batch", { tasks });
  if (added.status !== 201) throw new Error(`adding the plan failed: ${JSON.stringify(added.body)}`);

  const agents = await Promise.all(
    ["claude-gina", "claude-omar", "claude-lin"].map((name) =>
      startMcp(mcpEnv(tracker.url, tracker.apiKey, { TASK_TRACKING_AGENT_ID: name, LOG_LEVEL: "warn" })),
    ),
  );
  const [first, second, third] = agents as [McpProcess, McpProcess, McpProcess];
  const { task: cart } = await call(first, "get_next_task", { project_id: PROJECT, claim: true });
  await call(first, "update_task_status", {
    task_id: cart.task_id,
    status: "completed",
    completion_notes: "Cart service with 94% coverage",
  });
  await call(first, "get_next_task", { project_id: PROJECT, claim: true });
  await call(second, "get_next_task", { project_id: PROJECT, claim: true });
  await call(third, "get_next_task", { project_id: PROJECT, claim: true });
  await call(third, "reserve_id_range", { artifact_type: "TASK", count: 5, project_id: PROJECT });
  await call(second, "get_next_available_id", { artifact_type: "SPEC", project_id: PROJECT });

  const browser = await launchChromium();
  const phoneOutput = process.argv[process.argv.indexOf("--phone") + 1];
  try {
    await picture(browser, tracker, { width: 1360, height: 760 }, OUTPUT);
    if (process.argv.includes("--phone") && phoneOutput)
      await picture(browser, tracker, { width: 390, height: 844 }, phoneOutput);
  } finally {
    await browser.close();
  }
}

/** The board of PROJECT at this size, a quarter of an hour on, the person's name already given. */
async function picture(
  browser: Browser,
  tracker: { url: string; apiKey: string },
  viewport: { width: number; height: number },
  path: string,
): Promise<void> {
  const page = await browser.newPage({ viewport, locale: "en-US", colorScheme: "light" });
  await page.clock.setFixedTime(Date.now() + LATER_MS);
  await page.goto(`${tracker.url}/#project=${PROJECT}`);
  await page.evaluate(() => localStorage.setItem("task-board.name", "dana.lead"));
  await page.getByLabel("API key").fill(tracker.apiKey);
  await page.getByRole("button", { name: "Open board" }).click();
  await page.locator("#region-in_progress button.card").nth(2).waitFor();
  await page.getByRole("status").filter({ hasText: "Live" }).waitFor();
  await page.locator("#region-blocked .waits").filter({ hasText: "“" }).first().waitFor({ state: "attached" });
  await page.locator("#region-blocked .parent-line").filter({ hasText: "“" }).first().waitFor({ state: "attached" });
  await page.mouse.move(0, 0);
  await page.screenshot({ path });
  await page.close();
  console.log(`wrote ${path}`);
}

try {
  await main();
} finally {
  await stopEverything();
}
