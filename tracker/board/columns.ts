// The columns of one project, each a region named after its column, a card per task, loaded page by
// page (GET /tasks?project=&…&limit=50&cursor=…). A card is one button: it opens the task's dialog.
// Cards are kept per task, so a card that moves keeps its focus. Cancelled tasks get a fifth column
// once the project has any. Filters narrow every column; grouping puts the cards of a column under
// their parent's title. On a narrow screen a tab list shows one column at a time (In progress first);
// on a wide one, skip links jump from column to column.

import type { Api, ProjectSummary, Task } from "./api.ts";
import { type ColumnKey, cardContent, tick } from "./cards.ts";
import { el, fill } from "./dom.ts";
import type { KnownTasks } from "./known.ts";
import { boardFilter, isFiltered, type Narrowing, NOTHING_NARROWED, trackerFilters } from "./narrowing.ts";
import { collectTasks, PAGE_SIZE } from "./pages.ts";

interface ColumnSpec {
  key: ColumnKey;
  title: string;
  filter: string;
  empty: string;
}

const COLUMNS: readonly ColumnSpec[] = [
  { key: "ready", title: "Ready", filter: "ready=true", empty: "Nothing ready." },
  { key: "blocked", title: "Blocked", filter: "ready=false", empty: "Nothing blocked." },
  { key: "in_progress", title: "In progress", filter: "status=in_progress", empty: "Nobody at work." },
  { key: "completed", title: "Completed", filter: "status=completed", empty: "Nothing completed yet." },
  { key: "cancelled", title: "Cancelled", filter: "status=cancelled", empty: "Nothing cancelled." },
];

/** How a column's pages are asked for and sifted. */
interface Sieve {
  /** Appended to the query: the tracker's filters. */
  query: string;
  /** Applied to each page as it arrives: the board's own filter. */
  keep: ((task: Task) => boolean) | null;
}

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

  private path(projectId: string, sieve: Sieve): string {
    return `/tasks?project=${encodeURIComponent(projectId)}&${this.spec.filter}${sieve.query}`;
  }

  /** The same number of rows as shown now (at least a page), from the top: a reload keeps "Load more"s. */
  async reload(api: Api, projectId: string, sieve: Sieve): Promise<void> {
    const wanted = Math.max(PAGE_SIZE, this.tasks.length);
    const { tasks, cursor } = await collectTasks(api, this.path(projectId, sieve), sieve.keep, wanted, null);
    this.tasks = tasks;
    this.nextCursor = cursor;
  }

  async loadNext(api: Api, projectId: string, sieve: Sieve): Promise<void> {
    if (this.nextCursor === null) return;
    const { tasks, cursor } = await collectTasks(api, this.path(projectId, sieve), sieve.keep, PAGE_SIZE, this.nextCursor);
    const shown = new Set(this.tasks.map((task) => task.task_id));
    this.tasks.push(...tasks.filter((task) => !shown.has(task.task_id)));
    this.nextCursor = cursor;
  }

  /** `items`: the cards, or the groups that hold them. `total`: the column's count, when known. */
  render(items: HTMLLIElement[], cardCount: number, total: string, emptyNote: string): void {
    items.forEach((item, index) => {
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] ?? null);
    });
    while (this.list.children.length > items.length) this.list.lastElementChild!.remove();
    this.count.textContent = total;
    this.emptyNote.textContent = emptyNote;
    this.emptyNote.hidden = cardCount > 0;
    this.loadMoreButton.hidden = this.nextCursor === null;
  }
}

/** The phone's order: what the agents are doing now comes first. */
const TAB_ORDER: readonly ColumnKey[] = ["in_progress", "ready", "blocked", "completed", "cancelled"];
/** style.css's phone layout: there the columns are the tab list's panels. */
const NARROW = "(max-width: 640px)";

export class ColumnsView {
  private readonly columns: Column[];
  private readonly cards = new Map<string, HTMLLIElement>();
  private readonly tabs: HTMLButtonElement[];
  private readonly jumps = new Map<ColumnKey, HTMLAnchorElement>();
  private readonly grid = el("div", { class: "columns" });
  private projectId: string | null = null;
  private narrowing: Narrowing = NOTHING_NARROWED;
  private lastSummary: ProjectSummary | undefined;

  constructor(
    container: HTMLElement,
    private readonly api: Api,
    private readonly known: KnownTasks,
    private readonly openTask: (task: Task) => void,
    private readonly onError: (error: unknown) => void,
  ) {
    this.columns = COLUMNS.map((spec) => new Column(spec, (column) => void this.loadMore(column)));
    this.tabs = TAB_ORDER.map((key) => this.tabFor(this.column(key)));
    const tabList = el("div", { role: "tablist", "aria-label": "Columns", class: "column-tabs" }, ...this.tabs);
    const jumps = el("nav", { "aria-label": "Jump to a column", class: "column-jumps" }, "Jump to ");
    for (const column of this.columns) {
      const link = this.jumpTo(column);
      this.jumps.set(column.spec.key, link);
      jumps.append(link, " ");
    }
    this.grid.append(...this.columns.map((column) => column.section));
    fill(container, jumps, tabList, this.grid);
    this.selectTab(0);
    this.showCancelled(false);
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
      const shown = this.tabs.filter((each) => !each.hidden);
      const index = shown.indexOf(tab);
      const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: shown.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      const target = shown[(next + shown.length) % shown.length]!;
      this.selectTab(this.tabs.indexOf(target));
      target.focus();
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

  /** The Cancelled column, its tab and its skip link exist only while the project has cancelled tasks. */
  private showCancelled(shown: boolean): void {
    const column = this.column("cancelled");
    column.section.hidden = !shown;
    this.tabs[TAB_ORDER.indexOf("cancelled")]!.hidden = !shown;
    this.jumps.get("cancelled")!.hidden = !shown;
    this.grid.classList.toggle("with-cancelled", shown);
    if (!shown) column.tasks = [];
    if (!shown && this.tabs[TAB_ORDER.indexOf("cancelled")]!.getAttribute("aria-selected") === "true") this.selectTab(0);
  }

  show(projectId: string): void {
    if (projectId === this.projectId) return;
    this.projectId = projectId;
    this.known.show(projectId);
    this.cards.clear();
    for (const column of this.columns) column.tasks = [];
  }

  /** New filters or grouping: the columns start again from their first page. */
  narrow(narrowing: Narrowing): void {
    this.narrowing = narrowing;
    for (const column of this.columns) column.tasks = [];
  }

  private sieve(): Sieve {
    return { query: trackerFilters(this.narrowing), keep: boardFilter(this.narrowing) };
  }

  /** Reloads every column shown; `summary` gives the column totals. */
  async reload(summary: ProjectSummary | undefined): Promise<void> {
    const projectId = this.projectId;
    if (projectId === null) return;
    this.showCancelled((summary?.cancelled ?? 0) > 0);
    const sieve = this.sieve();
    const shown = this.columns.filter((column) => !column.section.hidden);
    await Promise.all(shown.map((column) => column.reload(this.api, projectId, sieve)));
    if (projectId !== this.projectId) return;
    this.render(summary);
    void this.lookUpRelatives();
  }

  private async loadMore(column: Column): Promise<void> {
    if (this.projectId === null) return;
    try {
      await column.loadNext(this.api, this.projectId, this.sieve());
      this.render(this.lastSummary);
      void this.lookUpRelatives();
    } catch (error) {
      this.onError(error);
    }
  }

  private render(summary: ProjectSummary | undefined): void {
    this.lastSummary = summary;
    for (const column of this.columns) for (const task of column.tasks) this.known.learn(task);
    const focused = document.activeElement;
    const shown = new Set<string>();
    const now = Date.now();
    const filtered = isFiltered(this.narrowing);
    for (const column of this.columns) {
      const cards = column.tasks.map((task) => {
        shown.add(task.task_id);
        return this.cardFor(task, column.spec.key, now);
      });
      const items = this.narrowing.byParent ? this.groupsOf(column, cards) : cards;
      const total = this.totalOf(column, summary, filtered);
      const empty = filtered ? "No task here matches the filters." : column.spec.empty;
      column.render(items, cards.length, total, empty);
      const tab = this.tabs[TAB_ORDER.indexOf(column.spec.key)]!;
      fill(tab, column.spec.title, total === "" ? null : el("span", { class: "count" }, ` ${total}`));
    }
    for (const id of this.cards.keys()) if (!shown.has(id)) this.cards.delete(id);
    if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
  }

  /** The project's count for the column; filtered, how many cards match so far ("12+" while there are more pages). */
  private totalOf(column: Column, summary: ProjectSummary | undefined, filtered: boolean): string {
    if (filtered) return `${column.tasks.length.toLocaleString()}${column.nextCursor === null ? "" : "+"}`;
    const total = summary?.[column.spec.key];
    return total === undefined ? "" : total.toLocaleString();
  }

  /** The column's cards under their parents' titles, the groups in the order of their first card. */
  private groupsOf(column: Column, cards: HTMLLIElement[]): HTMLLIElement[] {
    const groups = new Map<string, HTMLLIElement[]>();
    column.tasks.forEach((task, index) => {
      const parent = task.parent_id ?? "";
      groups.set(parent, [...(groups.get(parent) ?? []), cards[index]!]);
    });
    return [...groups].map(([parentId, members]) => {
      const heading = el("h3", { class: "group-title" }, ...this.groupTitle(parentId));
      return el("li", { class: "group" }, heading, el("ul", { class: "cards" }, ...members));
    });
  }

  /** "“Checkout epic” · 2 of 4 done" (its ID until the board has seen it), or "No parent". */
  private groupTitle(parentId: string): (string | HTMLElement)[] {
    if (parentId === "") return ["No parent"];
    const parent = this.known.get(parentId);
    if (!parent) return [parentId];
    const { done, total } = parent.children;
    return [`“${this.known.title(parentId)}”`, el("span", { class: "count" }, ` · ${done} of ${total} done`)];
  }

  /** The card: kept per task, so that a card that moves keeps its focus. */
  private cardFor(task: Task, column: ColumnKey, now: number): HTMLLIElement {
    let card = this.cards.get(task.task_id);
    if (!card) {
      card = el("li", { class: "card-item" }, el("button", { type: "button", class: "card" }));
      this.cards.set(task.task_id, card);
    }
    const button = card.firstElementChild as HTMLButtonElement;
    button.onclick = () => this.openTask(task);
    button.dataset.taskId = task.task_id;
    fill(button, ...cardContent(task, column, { known: this.known, now, grouped: this.narrowing.byParent }));
    return card;
  }

  /** Brings every relative time on screen up to date. */
  tick(now: number): void {
    tick(this.grid, now);
  }

  /** What blocked cards wait for and the parents of every card, when the board has not seen them. */
  private async lookUpRelatives(): Promise<void> {
    const projectId = this.projectId;
    const ids: string[] = [];
    for (const task of this.column("blocked").tasks) ids.push(...task.depends_on);
    for (const column of this.columns) for (const task of column.tasks) if (task.parent_id) ids.push(task.parent_id);
    if ((await this.known.lookUp(ids)) && projectId === this.projectId) this.render(this.lastSummary);
  }
}
