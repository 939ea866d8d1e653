// What the board's keyboard tests (board-steer, board-content) read of the page: a column at a desktop's
// size or a phone's, the cards in it, and the focus moved with the keyboard alone.

import { expect } from "bun:test";
import type { Locator, Page } from "playwright-core";

export type ColumnName = "Ready" | "Blocked" | "In progress" | "Completed" | "Cancelled";

/** A column: a region on a desktop, the tab list's panel on a phone (its tab chosen first). */
export async function column(page: Page, size: { phone: boolean }, name: ColumnName): Promise<Locator> {
  if (size.phone) await page.getByRole("tablist", { name: "Columns" }).getByRole("tab", { name }).click();
  return page.getByRole(size.phone ? "tabpanel" : "region", { name, exact: true });
}

/** The task IDs of a column's cards, in order, once they are `expected` (or after 5 s, whatever they are). */
export async function cardsOf(page: Page, size: { phone: boolean }, name: ColumnName, expected: string[]): Promise<string[]> {
  const shown = (await column(page, size, name)).locator("button.card");
  // Read at once, in the page: a card redrawn between two reads would leave a locator waiting.
  const ids = (): Promise<string[]> => shown.evaluateAll((cards) => cards.map((card) => card.getAttribute("data-task-id") ?? ""));
  for (let tries = 0; tries < 50 && JSON.stringify(await ids()) !== JSON.stringify(expected); tries++) {
    await page.waitForTimeout(100);
  }
  return ids();
}

/** What has the focus: its ID, its task ID or its text. */
export const FOCUSED = `document.activeElement?.id || document.activeElement?.dataset.taskId || document.activeElement?.textContent || ""`;

/** Presses Tab (or `key`) until the focused element is `target` (an ID, task ID or text), at most `most` times. */
export async function tabTo(page: Page, target: string, key = "Tab", most = 60): Promise<void> {
  for (let presses = 0; presses < most && (await page.evaluate(FOCUSED)) !== target; presses++) await page.keyboard.press(key);
  expect(await page.evaluate(FOCUSED)).toBe(target);
}
