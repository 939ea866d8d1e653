// Reading GET /tasks page by page. The tracker filters what it can (status, readiness, labels, agent,
// search); a filter the board applies itself (priority) sifts each page as it arrives.

import type { Api, Task, TaskPage } from "./api.ts";

/** What the board asks for at a time: the first screen reads one such page per column. */
export const PAGE_SIZE = 50;
const MAX_LIMIT = 500;
/** With a filter of the board's own, one load reads at most this many pages: a rare priority never reads the whole project at once. */
const MAX_SIFTED_PAGES = 10;

export interface Pages {
  tasks: Task[];
  /** Where the next load goes on; null at the end. */
  cursor: string | null;
}

/**
 * Tasks of `path` (GET /tasks with its filters, without limit and cursor) from `cursor` until `wanted`
 * are kept or the pages run out. Without `keep` that is exactly the rows wanted; with it, whole pages.
 */
export async function collectTasks(
  api: Api,
  path: string,
  keep: ((task: Task) => boolean) | null,
  wanted: number,
  cursor: string | null,
): Promise<Pages> {
  const tasks: Task[] = [];
  let pages = 0;
  do {
    const limit = keep ? MAX_LIMIT : Math.min(MAX_LIMIT, wanted - tasks.length);
    const page: TaskPage = await api.get(`${path}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    tasks.push(...(keep ? page.tasks.filter(keep) : page.tasks));
    cursor = page.next_cursor;
    pages++;
  } while (cursor !== null && tasks.length < wanted && !(keep && pages >= MAX_SIFTED_PAGES));
  return { tasks, cursor };
}
