// What a card says, as text nodes: its parent on a small line, the description's first line, the ID,
// priority and labels small, how far its criteria and children are, then what its column tells (what
// it waits for, who works on it, who completed it). A search result adds where it matched.

import type { Task } from "./api.ts";
import { el } from "./dom.ts";
import { ago, firstLine, holderOf, lasted, when } from "./format.ts";
import { isFinished, type KnownTasks } from "./known.ts";
import { inlineMarkup } from "./markup.ts";

export type ColumnKey = "ready" | "blocked" | "in_progress" | "completed" | "cancelled";

/** A blocked card names at most this many of the tasks it waits for. */
const WAITS_SHOWN = 3;

export interface CardContext {
  known: KnownTasks;
  now: number;
  /** Cards under their parent's heading need not name it again. */
  grouped: boolean;
}

/** The column a task of a search's list would be in. */
export function columnOf(task: Task, known: KnownTasks): ColumnKey {
  if (task.status !== "pending") return task.status;
  return task.depends_on.every((id) => isFinished(known.get(id))) ? "ready" : "blocked";
}

export function cardContent(task: Task, column: ColumnKey, context: CardContext): (HTMLElement | null)[] {
  return [
    context.grouped ? null : parentLine(task, context.known),
    el("span", { class: "description" }, ...inlineMarkup(firstLine(task.description))),
    el(
      "span",
      { class: "card-meta" },
      el("span", { class: "task-id" }, task.task_id),
      el("span", { class: `priority priority-${task.priority}` }, task.priority),
      ...labelChips(task.labels),
    ),
    progressLine(task),
    ...detailsOf(task, column, context),
    task.match ? snippet(task.match.snippet) : null,
  ];
}

/** "In “Checkout epic”": where an imported step or a child belongs. */
function parentLine(task: Task, known: KnownTasks): HTMLElement | null {
  if (!task.parent_id) return null;
  const title = known.title(task.parent_id);
  const line = el("span", { class: "parent-line" }, "In ", title ? `“${title}”` : task.parent_id);
  line.title = `Part of ${task.parent_id}`;
  return line;
}

export function labelChips(labels: string[]): HTMLElement[] {
  if (labels.length === 0) return [];
  return [
    el("span", { class: "visually-hidden" }, "Labels:"),
    ...labels.map((label) => el("span", { class: "label-chip" }, label)),
  ];
}

/** "Criteria 2 of 5 · Subtasks 1 of 3 done": nothing when the task has neither. */
function progressLine(task: Task): HTMLElement | null {
  const parts: string[] = [];
  const criteria = task.acceptance_criteria;
  if (criteria.length > 0) parts.push(`Criteria ${criteria.filter((c) => c.done).length} of ${criteria.length}`);
  if (task.children.total > 0) parts.push(`Subtasks ${task.children.done} of ${task.children.total}`);
  if (parts.length === 0) return null;
  return el("span", { class: "detail progress-line" }, `${parts.join(" · ")} done`);
}

function detailsOf(task: Task, column: ColumnKey, context: CardContext): (HTMLElement | null)[] {
  switch (column) {
    case "blocked":
      return [waitsFor(task, context.known)];
    case "in_progress":
      return [working(task, context.now)];
    case "completed":
      return [
        completedBy(task, context.now),
        task.completion_notes ? el("span", { class: "detail notes" }, task.completion_notes) : null,
      ];
    case "cancelled":
      return [el("span", { class: "detail" }, "Cancelled ", relative(task.completed_at ?? task.updated_at, context.now))];
    default:
      return [
        task.released_by ? givenBack(task) : el("span", { class: "detail" }, "Added ", relative(task.created_at, context.now)),
      ];
  }
}

/** "Given back by claude-gina: needs the ops team": an agent released it, with its reason (its last note) when it gave one. */
function givenBack(task: Task): HTMLElement {
  const reason = task.last_note?.by === task.released_by ? `: ${task.last_note.text}` : "";
  return el("span", { class: "detail notes" }, `Given back by ${task.released_by}${reason}`);
}

/**
 * 'Waits for “Design the API”, “Build the cart” · 2 of 4 done': by title where the board knows it. A
 * parent whose dependencies are done waits for its subtasks (its progress line counts them).
 */
function waitsFor(task: Task, known: KnownTasks): HTMLElement {
  const open = task.depends_on.filter((id) => !isFinished(known.get(id)));
  if (open.length === 0 && task.children.done < task.children.total)
    return el("span", { class: "detail waits" }, "Waits for its subtasks");
  const done = task.depends_on.length - open.length;
  const names = open.slice(0, WAITS_SHOWN).map((id) => {
    const title = known.title(id);
    return title ? `“${title}”` : id;
  });
  if (open.length > WAITS_SHOWN) names.push(`${open.length - WAITS_SHOWN} more`);
  const detail = el("span", { class: "detail waits" }, `Waits for ${names.join(", ") || "…"}`);
  if (task.depends_on.length > 1)
    detail.append(el("span", { class: "progress" }, ` · ${done} of ${task.depends_on.length} done`));
  detail.title = `Waits for ${open.join(", ")}`;
  return detail;
}

/** "3 min ago", the exact time in its tooltip; kept current by the columns' tick. */
function relative(iso: string, now: number): HTMLTimeElement {
  return el("time", { datetime: iso, title: when(iso) }, ago(iso, now));
}

/** "claude-gina · working 12 min", the lease's expiry in the tooltip (it is renewed while the agent works). */
function working(task: Task, now: number): HTMLElement {
  const holder = holderOf(task);
  const detail = el("span", { class: "detail" }, `${holder} · `);
  if (task.started_at)
    detail.append(el("span", { class: "working", "data-since": task.started_at }, `working ${lasted(task.started_at, now)}`));
  if (task.lease_expires_at) detail.title = `Lease runs until ${when(task.lease_expires_at)}; the agent renews it while it works`;
  return detail;
}

/** "Completed by claude-gina · 3 min ago": only the holder completes a task, and completing keeps claimed_by. */
function completedBy(task: Task, now: number): HTMLElement {
  const by = task.claimed_by ? `Completed by ${holderOf(task)} · ` : "Completed ";
  return el("span", { class: "detail" }, by, task.completed_at ? relative(task.completed_at, now) : "");
}

/** The tracker's snippet, "…the [login] form…", its matched words marked: text nodes inside <mark>. */
export function snippet(text: string): HTMLElement {
  const line = el("span", { class: "detail snippet" });
  for (const [index, part] of text.split(/\[([^\]]*)\]/).entries()) {
    if (part === "") continue;
    line.append(index % 2 === 1 ? el("mark", {}, part) : part);
  }
  return line;
}

/** Brings every relative time inside `root` up to date ("working 12 min", "3 min ago"). */
export function tick(root: ParentNode, now: number): void {
  for (const since of root.querySelectorAll<HTMLElement>("[data-since]")) {
    since.textContent = `working ${lasted(since.dataset.since!, now)}`;
  }
  for (const time of root.querySelectorAll<HTMLTimeElement>("time[datetime]")) {
    time.textContent = ago(time.dateTime, now);
  }
}
