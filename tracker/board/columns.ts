// The four columns of one project, each a region named after its column, a card per task, loaded
// page by page (GET /tasks?project=&…&limit=50&cursor=…). A card is one button: it opens the
// task's history. Cards are kept per task, so a card that moves keeps its focus.

import { type Api, type ProjectSummary, type Task, type TaskPage, type TaskStatus, taskPath } from "./api.ts";
import { el, fill } from "./dom.ts";
import { firstLine, leaseLeft } from "./format.ts";

export const PAGE_SIZE = 50;
const MAX_LIMIT = 500;

interface ColumnSpec {
  key: "ready" | "blocked" | "in_progress" | "completed";
  title: string;
  filter: string;
  empty: string;
}

const COLUMNS: readonly ColumnSpec[] = [
  { key: "ready", title: "Ready", filter: "ready=true", empty: "Nothing ready." },
  { key: "blocked", title: "Blocked", filter: "ready=false", empty: "Nothing blocked." },
  { key: "in_progress", title: "In progress", filter: "status=in_progress", empty: "Nobody at work." },
  { key: "completed", title: "Completed", filter: "status=completed", empty: "Nothing completed yet." },
];

class Column {
  tasks: Task[] = [];
  nextCursor: string | null = null;
  readonly section: HTMLElement;
  readonly list = el("ul", { class: "cards" });
  private readonly count = el("span", { class: "count" });
  private readonly emptyNote: HTMLParagraphElement;
  private readonly loadMoreButton = el("button", { type: "button", class: "load-more" }, "Load more");

  constructor(
    readonly spec: ColumnSpec,
    onLoadMore: (column: Column) => void,
  ) {
    const titleId = `column-${spec.key}`;
    this.emptyNote = el("p", { class: "empty" }, spec.empty);
    this.section = el(
      "section",
      { class: `column column-${spec.key}`, "aria-labelledby": titleId },
      el("div", { class: "column-head" }, el("h2", { id: titleId }, spec.title), this.count),
      this.list,
      this.emptyNote,
      this.loadMoreButton,
    );
    this.loadMoreButton.addEventListener("click", () => onLoadMore(this));
  }

  path(projectId: string, limit: number, cursor: string | null): string {
    const query = `project=${encodeURIComponent(projectId)}&${this.spec.filter}&limit=${limit}`;
    return `/tasks?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
  }

  /** The same number of rows as shown now (at least a page), from the top: a reload keeps "Load more"s. */
  async reload(api: Api, projectId: string): Promise<void> {
    const wanted = Math.max(PAGE_SIZE, this.tasks.length);
    const tasks: Task[] = [];
    let cursor: string | null = null;
    do {
      const page: TaskPage = await api.get(this.path(projectId, Math.min(MAX_LIMIT, wanted - tasks.length), cursor));
      tasks.push(...page.tasks);
      cursor = page.next_cursor;
    } while (cursor !== null && tasks.length < wanted);
    this.tasks = tasks;
    this.nextCursor = cursor;
  }

  async loadNext(api: Api, projectId: string): Promise<void> {
    if (this.nextCursor === null) return;
    const page: TaskPage = await api.get(this.path(projectId, PAGE_SIZE, this.nextCursor));
    const shown = new Set(this.tasks.map((task) => task.task_id));
    this.tasks.push(...page.tasks.filter((task) => !shown.has(task.task_id)));
    this.nextCursor = page.next_cursor;
  }

  render(cards: HTMLLIElement[], total: number | null): void {
    cards.forEach((card, index) => {
      if (this.list.children[index] !== card) this.list.insertBefore(card, this.list.children[index] ?? null);
    });
    while (this.list.children.length > cards.length) this.list.lastElementChild!.remove();
    this.count.textContent = total === null ? "" : total.toLocaleString();
    this.emptyNote.hidden = cards.length > 0;
    this.loadMoreButton.hidden = this.nextCursor === null;
  }
}

export class ColumnsView {
  private readonly columns: Column[];
  private readonly cards = new Map<string, HTMLLIElement>();
  /** What the board knows of each task's status: for the "waits for" line of blocked cards. */
  private readonly statuses = new Map<string, TaskStatus>();
  private readonly lookups = new Set<string>();
  private projectId: string | null = null;

  constructor(
    container: HTMLElement,
    private readonly api: Api,
    private readonly openTask: (task: Task) => void,
    private readonly onError: (error: unknown) => void,
  ) {
    this.columns = COLUMNS.map((spec) => new Column(spec, (column) => void this.loadMore(column)));
    fill(container, ...this.columns.map((column) => column.section));
  }

  show(projectId: string): void {
    if (projectId === this.projectId) return;
    this.projectId = projectId;
    this.statuses.clear();
    this.cards.clear();
    for (const column of this.columns) column.tasks = [];
  }

  /** Reloads every column; `summary` gives the column totals. */
  async reload(summary: ProjectSummary | undefined): Promise<void> {
    const projectId = this.projectId;
    if (projectId === null) return;
    await Promise.all(this.columns.map((column) => column.reload(this.api, projectId)));
    if (projectId !== this.projectId) return;
    this.render(summary);
    this.lookUpDependencies();
  }

  /** What the stream says a task is now. */
  learn(task: Task): void {
    this.statuses.set(task.task_id, task.status);
  }

  forget(): void {
    this.statuses.clear();
  }

  private async loadMore(column: Column): Promise<void> {
    if (this.projectId === null) return;
    try {
      await column.loadNext(this.api, this.projectId);
      this.render(this.lastSummary);
      this.lookUpDependencies();
    } catch (error) {
      this.onError(error);
    }
  }

  private lastSummary: ProjectSummary | undefined;

  private render(summary: ProjectSummary | undefined): void {
    this.lastSummary = summary;
    for (const column of this.columns) for (const task of column.tasks) this.statuses.set(task.task_id, task.status);
    const focused = document.activeElement;
    const shown = new Set<string>();
    for (const column of this.columns) {
      const cards = column.tasks.map((task) => {
        shown.add(task.task_id);
        return this.cardFor(task, column.spec.key);
      });
      column.render(cards, summary ? summary[column.spec.key] : null);
    }
    for (const id of this.cards.keys()) if (!shown.has(id)) this.cards.delete(id);
    if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
  }

  private cardFor(task: Task, column: ColumnSpec["key"]): HTMLLIElement {
    let card = this.cards.get(task.task_id);
    if (!card) {
      card = el("li", { class: "card-item" }, el("button", { type: "button", class: "card" }));
      this.cards.set(task.task_id, card);
    }
    const button = card.firstElementChild as HTMLButtonElement;
    button.onclick = () => this.openTask(task);
    button.dataset.taskId = task.task_id;
    fill(
      button,
      el(
        "span",
        { class: "card-top" },
        el("span", { class: "task-id" }, task.task_id),
        el("span", { class: `priority priority-${task.priority}` }, task.priority),
      ),
      el("span", { class: "description" }, firstLine(task.description)),
      this.detailsOf(task, column),
    );
    return card;
  }

  private detailsOf(task: Task, column: ColumnSpec["key"]): HTMLElement | null {
    switch (column) {
      case "blocked": {
        const waiting = task.depends_on.filter((id) => this.statuses.get(id) !== "completed");
        return el("span", { class: "detail" }, `Waits for ${waiting.join(", ") || "…"}`);
      }
      case "in_progress": {
        const lease = el("span", { class: "lease" }, leaseLeft(task.lease_expires_at, Date.now()));
        if (task.lease_expires_at) lease.dataset.expires = task.lease_expires_at;
        return el("span", { class: "detail" }, `${task.claimed_by ?? "no holder"} · `, lease);
      }
      case "completed":
        return task.completion_notes ? el("span", { class: "detail notes" }, task.completion_notes) : null;
      default:
        return null;
    }
  }

  /** Ticks the "time left" of every lease on screen. */
  tick(now: number): void {
    for (const lease of this.columns[2]!.list.querySelectorAll<HTMLElement>(".lease[data-expires]")) {
      lease.textContent = leaseLeft(lease.dataset.expires!, now);
    }
  }

  /** Dependencies of blocked cards whose status the board has not seen: asked once each. */
  private lookUpDependencies(): void {
    const projectId = this.projectId;
    if (projectId === null) return;
    const unknown = new Set<string>();
    for (const task of this.columns[1]!.tasks) {
      for (const id of task.depends_on) if (!this.statuses.has(id) && !this.lookups.has(id)) unknown.add(id);
    }
    if (unknown.size === 0) return;
    const queue = [...unknown];
    for (const id of queue) this.lookups.add(id);
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const { task } = await this.api.get<{ task: Task }>(taskPath({ project_id: projectId, task_id: id }));
          if (projectId === this.projectId) this.statuses.set(id, task.status);
        } catch {
          // Shown as still waiting; the next reload asks again.
        } finally {
          this.lookups.delete(id);
        }
      }
    };
    void Promise.all([worker(), worker(), worker(), worker()]).then(() => {
      if (projectId === this.projectId) this.render(this.lastSummary);
    });
  }
}
