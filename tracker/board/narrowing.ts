// What a person narrowed the board to: a search, filters by label, agent and priority, and grouping by
// parent. Kept in the address (`#project=web&label=bug&priority=high&q=login`), so a link shows the
// same board. Labels and agent are the tracker's filters (GET /tasks?label=&claimed_by=); priority,
// which GET /tasks does not take, is applied to the pages as they arrive.

import type { Priority, Task } from "./api.ts";

export interface Narrowing {
  /** Full-text search (GET /tasks?q=): shown as a ranked list instead of the columns. */
  query: string;
  /** A task must carry all of them. */
  labels: string[];
  /** The agent that holds or completed the task. */
  agent: string;
  priority: Priority | "";
  byParent: boolean;
}

export const NOTHING_NARROWED: Narrowing = { query: "", labels: [], agent: "", priority: "", byParent: false };

const PRIORITIES: readonly string[] = ["high", "medium", "low"];

/** Labels as the tracker stores them: lower-cased, without repeats. */
export function labelsOf(text: string): string[] {
  return [
    ...new Set(
      text
        .split(",")
        .map((label) => label.trim().toLowerCase())
        .filter(Boolean),
    ),
  ];
}

export function narrowingOf(place: URLSearchParams): Narrowing {
  const priority = place.get("priority") ?? "";
  return {
    query: place.get("q") ?? "",
    labels: labelsOf(place.getAll("label").join(",")),
    agent: place.get("agent") ?? "",
    priority: PRIORITIES.includes(priority) ? (priority as Priority) : "",
    byParent: place.get("group") === "parent",
  };
}

/** Writes the narrowing into the address's parameters (nothing for what is not narrowed). */
export function writeNarrowing(place: URLSearchParams, narrowing: Narrowing): void {
  if (narrowing.query) place.set("q", narrowing.query);
  for (const label of narrowing.labels) place.append("label", label);
  if (narrowing.agent) place.set("agent", narrowing.agent);
  if (narrowing.priority) place.set("priority", narrowing.priority);
  if (narrowing.byParent) place.set("group", "parent");
}

/** The part of GET /tasks's query the tracker filters on: `&label=a&label=b&claimed_by=x`. */
export function trackerFilters(narrowing: Narrowing): string {
  const query = new URLSearchParams();
  for (const label of narrowing.labels) query.append("label", label);
  if (narrowing.agent) query.set("claimed_by", narrowing.agent);
  const text = query.toString();
  return text ? `&${text}` : "";
}

/** What the board filters itself, or null when the tracker's pages are taken whole. */
export function boardFilter(narrowing: Narrowing): ((task: Task) => boolean) | null {
  const { priority } = narrowing;
  return priority ? (task) => task.priority === priority : null;
}

/** Whether any filter (not the search, not the grouping) is set: column totals then no longer apply. */
export function isFiltered(narrowing: Narrowing): boolean {
  return narrowing.labels.length > 0 || narrowing.agent !== "" || narrowing.priority !== "";
}

export function sameNarrowing(a: Narrowing, b: Narrowing): boolean {
  return (
    a.query === b.query &&
    a.labels.join(",") === b.labels.join(",") &&
    a.agent === b.agent &&
    a.priority === b.priority &&
    a.byParent === b.byParent
  );
}
