// The four columns of one project, each a region named after its column, a card per task, loaded
// page by page (GET /tasks?project=&…&limit=50&cursor=…). A card is one button: it opens the
// task's history. Cards are kept per task, so a card that moves keeps its focus. A card leads with
// the first line of its description; what it waits for is named by the other tasks' first lines.
// On a narrow screen a tab list shows one column at a time (In progress first); on a wide one,
// skip links jump from column to column.

import { type Api, type ProjectSummary, type Task, type TaskPage, taskPath } from "./api.ts";
import { el, fill } from "./dom.ts";
import { ago, firstLine, lasted, when } from "./format.ts";
import { inlineMarkup, plainText } from "./markup.ts";

export const PAGE_SIZE = 50;
const MAX_LIMIT = 500;

interface ColumnSpec {
  key: "ready" | "blocked" | "in_progress" | "completed";
  title: string;
  filter: string;
  empty: string;
}

type ColumnKey = ColumnSpec["key"];

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
  private readonly loadMoreButton = el("button", { type: "button", class: "load-more", hidden: "" }, "Load more");

  constructor(
    readonly spec: ColumnSpec,
    onLoadMore: (column: Column) => void,
  ) {
    const titleId = `column-${spec.key}`;
    this.emptyNote = el("p", { class: "empty" }, spec.empty);
    this.section = el(
      "section",
      { class: `column column-${spec.key}`, id: `region-${spec.key}`, "aria-labelledby": titleId },
      el("div", { class: "column-head" }, el("h2", { id: titleId, tabindex: "-1" }, spec.title), this.count),
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

/** The phone's order: what the agents are doing now comes first. */
const TAB_ORDER: readonly ColumnKey[] = ["in_progress", "ready", "blocked", "completed"];
/** style.css's phone layout: there the columns are the tab list's panels. */
const NARROW = "(max-width: 640px)";
/** A blocked card names at most this many of the tasks it waits for. */
const WAITS_SHOWN = 3;

export class ColumnsView {
  private readonly columns: Column[];
  private readonly cards = new Map<string, HTMLLIElement>();
  /** Every task the board has seen (columns, stream, look-ups): the titles and statuses of dependencies. */
  private readonly known = new Map<string, Task>();
  private readonly lookups = new Set<string>();
  private readonly tabs: HTMLButtonElement[];
  private projectId: string | null = null;

  constructor(
    container: HTMLElement,
    private readonly api: Api,
    private readonly openTask: (task: Task) => void,
    private readonly onError: (error: unknown) => void,
  ) {
    this.columns = COLUMNS.map((spec) => new Column(spec, (column) => void this.loadMore(column)));
    this.tabs = TAB_ORDER.map((key) => this.tabFor(this.column(key)));
    const tabList = el("div", { role: "tablist", "aria-label": "Columns", class: "column-tabs" }, ...this.tabs);
    const jumps = el("nav", { "aria-label": "Jump to a column", class: "column-jumps" }, "Jump to ");
    for (const column of this.columns) jumps.append(this.jumpTo(column), " ");
    fill(container, jumps, tabList, el("div", { class: "columns" }, ...this.columns.map((column) => column.section)));
    this.selectTab(0);
    const narrow = matchMedia(NARROW);
    const setRoles = () => {
      for (const column of this.columns) {
        if (narrow.matches) column.section.setAttribute("role", "tabpanel");
        else column.section.removeAttribute("role");
      }
    };
    narrow.addEventListener("change", setRoles);
    setRoles();
  }

  private column(key: ColumnKey): Column {
    return this.columns.find((column) => column.spec.key === key)!;
  }

  /** A tab of the phone's tab list (WAI-ARIA tabs: arrows, Home and End move and select). */
  private tabFor(column: Column): HTMLButtonElement {
    const tab = el(
      "button",
      { type: "button", role: "tab", id: `tab-${column.spec.key}`, "aria-controls": column.section.id },
      column.spec.title,
    );
    tab.addEventListener("click", () => this.selectTab(this.tabs.indexOf(tab)));
    tab.addEventListener("keydown", (event) => {
      const index = this.tabs.indexOf(tab);
      const last = this.tabs.length - 1;
      const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: last }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      this.selectTab((next + this.tabs.length) % this.tabs.length);
      this.tabs[(next + this.tabs.length) % this.tabs.length]!.focus();
    });
    return tab;
  }

  private selectTab(index: number): void {
    this.tabs.forEach((tab, at) => {
      const selected = at === index;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      this.column(TAB_ORDER[at]!).section.classList.toggle("phone-hidden", !selected);
    });
  }

  /** A skip link: to the column's first card (or its heading when it has none), keeping the address. */
  private jumpTo(column: Column): HTMLAnchorElement {
    const link = el("a", { href: `#${column.section.id}`, class: "jump" }, column.spec.title);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const target = column.list.querySelector<HTMLElement>("button.card") ?? column.section.querySelector("h2")!;
      target.focus();
    });
    return link;
  }

  show(projectId: string): void {
    if (projectId === this.projectId) return;
    this.projectId = projectId;
    this.known.clear();
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
    this.known.set(task.task_id, task);
  }

  forget(): void {
    this.known.clear();
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
    for (const column of this.columns) for (const task of column.tasks) this.known.set(task.task_id, task);
    const focused = document.activeElement;
    const shown = new Set<string>();
    const now = Date.now();
    for (const column of this.columns) {
      const cards = column.tasks.map((task) => {
        shown.add(task.task_id);
        return this.cardFor(task, column.spec.key, now);
      });
      const total = summary ? summary[column.spec.key] : null;
      column.render(cards, total);
      const tab = this.tabs[TAB_ORDER.indexOf(column.spec.key)]!;
      fill(tab, column.spec.title, total === null ? null : el("span", { class: "count" }, ` ${total.toLocaleString()}`));
    }
    for (const id of this.cards.keys()) if (!shown.has(id)) this.cards.delete(id);
    if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
  }

  /** The card: the description's first line, then the ID and priority small, then what the column tells. */
  private cardFor(task: Task, column: ColumnKey, now: number): HTMLLIElement {
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
      el("span", { class: "description" }, ...inlineMarkup(firstLine(task.description))),
      el(
        "span",
        { class: "card-meta" },
        el("span", { class: "task-id" }, task.task_id),
        el("span", { class: `priority priority-${task.priority}` }, task.priority),
      ),
      ...this.detailsOf(task, column, now),
    );
    return card;
  }

  private detailsOf(task: Task, column: ColumnKey, now: number): (HTMLElement | null)[] {
    switch (column) {
      case "blocked":
        return [this.waitsFor(task)];
      case "in_progress":
        return [working(task, now)];
      case "completed":
        return [
          completedBy(task, now),
          task.completion_notes ? el("span", { class: "detail notes" }, task.completion_notes) : null,
        ];
      default:
        return [el("span", { class: "detail" }, "Added ", relative(task.created_at, now))];
    }
  }

  /** 'Waits for “Design the API”, “Build the cart” · 2 of 4 done': by title where the board knows it. */
  private waitsFor(task: Task): HTMLElement {
    const open = task.depends_on.filter((id) => this.known.get(id)?.status !== "completed");
    const done = task.depends_on.length - open.length;
    const names = open.slice(0, WAITS_SHOWN).map((id) => {
      const dependency = this.known.get(id);
      const title = dependency ? plainText(firstLine(dependency.description)) : "";
      return title ? `“${title}”` : id;
    });
    if (open.length > WAITS_SHOWN) names.push(`${open.length - WAITS_SHOWN} more`);
    const detail = el("span", { class: "detail waits" }, `Waits for ${names.join(", ") || "…"}`);
    if (task.depends_on.length > 1)
      detail.append(el("span", { class: "progress" }, ` · ${done} of ${task.depends_on.length} done`));
    detail.title = `Waits for ${open.join(", ")}`;
    return detail;
  }

  /** Brings every relative time on screen up to date ("working 12 min", "3 min ago"). */
  tick(now: number): void {
    for (const column of this.columns) {
      for (const since of column.list.querySelectorAll<HTMLElement>("[data-since]")) {
        since.textContent = `working ${lasted(since.dataset.since!, now)}`;
      }
      for (const time of column.list.querySelectorAll<HTMLTimeElement>("time[datetime]")) {
        time.textContent = ago(time.dateTime, now);
      }
    }
  }

  /** Dependencies of blocked cards the board has not seen: asked once each, four at a time. */
  private lookUpDependencies(): void {
    const projectId = this.projectId;
    if (projectId === null) return;
    const unknown = new Set<string>();
    for (const task of this.column("blocked").tasks) {
      for (const id of task.depends_on) if (!this.known.has(id) && !this.lookups.has(id)) unknown.add(id);
    }
    if (unknown.size === 0) return;
    const queue = [...unknown];
    for (const id of queue) this.lookups.add(id);
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const { task } = await this.api.get<{ task: Task }>(taskPath({ project_id: projectId, task_id: id }));
          if (projectId === this.projectId) this.known.set(id, task);
        } catch {
          // Shown by its ID, as still waiting; the next reload asks again.
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

/** "3 min ago", the exact time in its tooltip; kept current by tick(). */
function relative(iso: string, now: number): HTMLTimeElement {
  return el("time", { datetime: iso, title: when(iso) }, ago(iso, now));
}

/** "claude-gina · working 12 min", the lease's expiry in the tooltip (it is renewed while the agent works). */
function working(task: Task, now: number): HTMLElement {
  const holder = task.claimed_by ?? "an agent without a name";
  const detail = el("span", { class: "detail" }, `${holder} · `);
  if (task.started_at)
    detail.append(el("span", { class: "working", "data-since": task.started_at }, `working ${lasted(task.started_at, now)}`));
  if (task.lease_expires_at) detail.title = `Lease runs until ${when(task.lease_expires_at)}; the agent renews it while it works`;
  return detail;
}

/** "Completed by claude-gina · 3 min ago": only the holder completes a task, and completing keeps claimed_by. */
function completedBy(task: Task, now: number): HTMLElement {
  const by = task.claimed_by ? `Completed by ${task.claimed_by} · ` : "Completed ";
  return el("span", { class: "detail" }, by, task.completed_at ? relative(task.completed_at, now) : "");
}
