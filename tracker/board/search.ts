// A search over the project (GET /tasks?project=&q=): the tasks that match, best match first, each a
// card that says where it matched. It takes the place of the columns until the search is cleared, and
// the filters narrow it as they narrow the columns.

import type { Api, Task } from "./api.ts";
import { cardContent, columnOf, tick } from "./cards.ts";
import { byId, el, fill } from "./dom.ts";
import type { KnownTasks } from "./known.ts";
import { boardFilter, type Narrowing, trackerFilters } from "./narrowing.ts";
import { collectTasks, PAGE_SIZE } from "./pages.ts";

/** The tracker's statuses in the board's words. */
const STATUS_WORDS: Record<Task["status"], string> = {
  pending: "Pending",
  in_progress: "In progress",
  completed: "Completed",
  cancelled: "Cancelled",
};

export class SearchView {
  private readonly section = byId("search-results");
  private readonly heading = byId("search-title");
  private readonly list = byId("results");
  private readonly emptyNote = byId("no-results");
  private readonly loadMoreButton = byId<HTMLButtonElement>("more-results");
  private tasks: Task[] = [];
  private nextCursor: string | null = null;
  private searched = "";
  private query = "";
  private keep: ((task: Task) => boolean) | null = null;

  constructor(
    private readonly api: Api,
    private readonly known: KnownTasks,
    private readonly openTask: (task: Task) => void,
    private readonly onError: (error: unknown) => void,
  ) {
    this.loadMoreButton.addEventListener("click", () => void this.loadMore());
  }

  /** The search and filters to show, from the first page (the same number of rows when only reloading). */
  async run(projectId: string, narrowing: Narrowing): Promise<void> {
    const path = `/tasks?project=${encodeURIComponent(projectId)}&q=${encodeURIComponent(narrowing.query)}${trackerFilters(narrowing)}`;
    const wanted = path === this.searched ? Math.max(PAGE_SIZE, this.tasks.length) : PAGE_SIZE;
    const keep = boardFilter(narrowing);
    const { tasks, cursor } = await collectTasks(this.api, path, keep, wanted, null);
    this.searched = path;
    this.query = narrowing.query;
    this.keep = keep;
    this.tasks = tasks;
    this.nextCursor = cursor;
    this.render();
    const relatives = this.tasks.flatMap((task) => (task.parent_id ? [...task.depends_on, task.parent_id] : task.depends_on));
    if (await this.known.lookUp(relatives)) this.render();
  }

  private async loadMore(): Promise<void> {
    if (this.nextCursor === null) return;
    try {
      const { tasks, cursor } = await collectTasks(this.api, this.searched, this.keep, PAGE_SIZE, this.nextCursor);
      const shown = new Set(this.tasks.map((task) => task.task_id));
      this.tasks.push(...tasks.filter((task) => !shown.has(task.task_id)));
      this.nextCursor = cursor;
      this.render();
    } catch (error) {
      this.onError(error);
    }
  }

  private render(): void {
    for (const task of this.tasks) this.known.learn(task);
    const focusedId = (document.activeElement as HTMLElement | null)?.dataset.taskId;
    const count = `${this.tasks.length}${this.nextCursor === null ? "" : "+"}`;
    fill(this.heading, `Search results for “${this.query}”`, el("span", { class: "count" }, ` ${count} found`));
    const now = Date.now();
    fill(
      this.list,
      ...this.tasks.map((task) => {
        const button = el("button", { type: "button", class: "card" });
        button.dataset.taskId = task.task_id;
        const content = cardContent(task, columnOf(task, this.known), { known: this.known, now, grouped: false });
        fill(button, ...content);
        button
          .querySelector(".card-meta")
          ?.prepend(el("span", { class: `status status-${task.status}` }, STATUS_WORDS[task.status]));
        button.addEventListener("click", () => this.openTask(task));
        return el("li", { class: "card-item" }, button);
      }),
    );
    this.emptyNote.hidden = this.tasks.length > 0;
    this.loadMoreButton.hidden = this.nextCursor === null;
    if (focusedId)
      this.list.querySelector<HTMLElement>(`[data-task-id="${CSS.escape(focusedId)}"]`)?.focus({ preventScroll: true });
  }

  show(shown: boolean): void {
    this.section.hidden = !shown;
    if (!shown) this.searched = "";
  }

  tick(now: number): void {
    tick(this.list, now);
  }
}
