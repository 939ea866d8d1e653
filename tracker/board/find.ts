// The search box and the filters above the columns: they read what the person asks for into a
// Narrowing and show the one the board uses (from the address, say). The filters stay folded, to keep
// the columns near the top, until one is on. Labels and agents the board has seen are suggested.

import type { Priority, Task } from "./api.ts";
import { byId, el, fill } from "./dom.ts";
import { labelsOf, type Narrowing } from "./narrowing.ts";

export class FindControls {
  private readonly searchInput = byId<HTMLInputElement>("search-input");
  private readonly clearSearch = byId<HTMLButtonElement>("clear-search");
  private readonly box = byId<HTMLDetailsElement>("filters-box");
  private readonly label = byId<HTMLInputElement>("filter-label");
  private readonly agent = byId<HTMLInputElement>("filter-agent");
  private readonly priority = byId<HTMLSelectElement>("filter-priority");
  private readonly byParent = byId<HTMLInputElement>("group-by-parent");
  private readonly labelsSeen = new Set<string>();
  private readonly agentsSeen = new Set<string>();

  constructor(private readonly onChange: (narrowing: Narrowing) => void) {
    byId("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.onChange(this.read());
    });
    this.clearSearch.addEventListener("click", () => {
      this.searchInput.value = "";
      this.onChange(this.read());
      this.searchInput.focus();
    });
    const filters = byId<HTMLFormElement>("filters");
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      this.onChange(this.read());
    });
    for (const control of [this.label, this.agent, this.priority, this.byParent])
      control.addEventListener("change", () => this.onChange(this.read()));
    // A suggestion picked (or typed out in full) applies at once: Enter would only pick it.
    this.agent.addEventListener("input", () => {
      if (this.agentsSeen.has(this.agent.value.trim())) this.onChange(this.read());
    });
    this.label.addEventListener("input", () => {
      if (labelsOf(this.label.value).every((label) => this.labelsSeen.has(label))) this.onChange(this.read());
    });
    byId("clear-filters").addEventListener("click", () => {
      this.label.value = "";
      this.agent.value = "";
      this.priority.value = "";
      this.byParent.checked = false;
      this.onChange(this.read());
    });
  }

  private read(): Narrowing {
    return {
      query: this.searchInput.value.trim(),
      labels: labelsOf(this.label.value),
      agent: this.agent.value.trim(),
      priority: this.priority.value as Priority | "",
      byParent: this.byParent.checked,
    };
  }

  /** Shows `narrowing` in the controls (what the address asked for, or what was just applied). */
  show(narrowing: Narrowing): void {
    if (this.searchInput.value.trim() !== narrowing.query) this.searchInput.value = narrowing.query;
    if (labelsOf(this.label.value).join(",") !== narrowing.labels.join(",")) this.label.value = narrowing.labels.join(", ");
    this.agent.value = narrowing.agent;
    this.priority.value = narrowing.priority;
    this.byParent.checked = narrowing.byParent;
    this.clearSearch.hidden = narrowing.query === "";
    const count = narrowing.labels.length + (narrowing.agent ? 1 : 0) + (narrowing.priority ? 1 : 0);
    const parts = [count === 0 ? "" : `${count} ${count === 1 ? "filter" : "filters"}`, narrowing.byParent ? "by parent" : ""];
    const active = parts.filter(Boolean).join(", ");
    byId("filters-summary").textContent = active ? `Filter and group (${active})` : "Filter and group";
    if (active) this.box.open = true;
  }

  /** Offers the labels and agents of `tasks` as suggestions (kept for as long as the board is open). */
  suggest(tasks: Iterable<Task>): void {
    const before = this.labelsSeen.size + this.agentsSeen.size;
    for (const task of tasks) {
      for (const label of task.labels) this.labelsSeen.add(label);
      if (task.claimed_by) this.agentsSeen.add(task.claimed_by);
    }
    if (this.labelsSeen.size + this.agentsSeen.size === before) return;
    const options = (values: Set<string>) => [...values].sort().map((value) => el("option", { value }));
    fill(byId("known-labels"), ...options(this.labelsSeen));
    fill(byId("known-agents"), ...options(this.agentsSeen));
  }
}
