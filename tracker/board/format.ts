// How the board words things: times, leases, and the lines of a task's history.

import { isOperatorKeyName } from "../operator-keys.ts";
import type { Criterion, TaskEvent } from "./api.ts";

export function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? "";
}

/** How long since `iso`, in words: "12 min", "1 h 05 min", "3 days". */
export function lasted(iso: string, now: number): string {
  const minutes = Math.max(0, Math.floor((now - Date.parse(iso)) / 60_000));
  if (minutes < 1) return "under a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${String(minutes % 60).padStart(2, "0")} min`;
  const days = Math.floor(hours / 24);
  return days === 1 ? "1 day" : `${days} days`;
}

/** "just now", "3 min ago", "2 h ago", "yesterday", "5 days ago", then the date. */
export function ago(iso: string, now: number): string {
  const minutes = Math.floor((now - Date.parse(iso)) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days === 1) return "yesterday";
  if (days < 30) return `${days} days ago`;
  return new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" });
}

/** A local date and time, to the second. */
export function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/**
 * Who made a change: `alice · claude-3f2a9c1e-77b` for a key a person or agent was given (`task-tracker
 * keys add alice`); the agent alone under the operator's own keys, as on one machine every change is theirs.
 */
export function who(agentId: string | null, keyName?: string | null): string {
  const agent = agentId ?? "someone without a name";
  return keyName && !isOperatorKeyName(keyName) ? `${keyName} · ${agent}` : agent;
}

/** Who holds (or held) a task: its key and agent, as `who` says them. */
export function holderOf(task: { claimed_by: string | null; claimed_by_key?: string | null }): string {
  return who(task.claimed_by ?? "an agent without a name", task.claimed_by_key);
}

/** One sentence per history entry: what happened and who did it. */
export function describeEvent(event: TaskEvent): string {
  const by = who(event.agent_id, event.key_name);
  const details = event.details;
  switch (event.type) {
    case "created":
      return `Added by ${by}${details.status === "completed" ? " as already completed" : ""}`;
    case "claimed":
      return `Claimed by ${by}`;
    case "released":
      return `Released by ${by}${details.reason ? `: ${String(details.reason)}` : ""}`;
    case "force_released":
      return `Claim of ${who(String(details.former_holder ?? "nobody"), details.former_holder_key as string | null | undefined)} released by ${by}`;
    case "completed":
      return `Completed by ${by}${details.completion_notes ? `: ${String(details.completion_notes)}` : ""}`;
    case "claim_expired":
      return `Lease of ${who(String(details.former_holder ?? "its holder"), details.former_holder_key as string | null | undefined)} ran out; pending again`;
    case "updated":
      return `Edited by ${by}: ${describeEdits(details)}`;
    case "cancelled":
      return `Cancelled by ${by}${details.reason ? `: ${String(details.reason)}` : ""}`;
    case "reopened":
      return `Reopened by ${by}`;
    case "noted":
      return `Note by ${by}`;
    default:
      return `${event.type} by ${by}`;
  }
}

function describeEdits(details: Record<string, unknown>): string {
  const parts: string[] = [];
  const priority = details.priority as { from?: string; to?: string } | undefined;
  if (priority) parts.push(`priority ${priority.from} → ${priority.to}`);
  const description = details.description as { from?: string; to?: string } | undefined;
  if (description) parts.push(`description "${firstLine(description.to ?? "")}"`);
  const dependsOn = details.depends_on as { from?: string[]; to?: string[] } | undefined;
  if (dependsOn) parts.push(dependsOn.to?.length ? `depends on ${dependsOn.to.join(", ")}` : "no dependencies");
  const labels = details.labels as { to?: string[] } | undefined;
  if (labels) parts.push(labels.to?.length ? `labels ${labels.to.join(", ")}` : "no labels");
  const parent = details.parent_id as { to?: string | null } | undefined;
  if (parent) parts.push(parent.to ? `part of ${parent.to}` : "no parent");
  const criteria = details.acceptance_criteria as { from?: Criterion[]; to?: Criterion[] } | undefined;
  if (criteria) parts.push(describeCriteria(criteria.from ?? [], criteria.to ?? []));
  return parts.join(", ") || "no change";
}

/** What an edit did to the criteria: 'ticked “tests pass”', 'criterion 3 now “…”', 'added “bench row”'. */
function describeCriteria(from: Criterion[], to: Criterion[]): string {
  const parts: string[] = [];
  if (from.length === to.length) {
    to.forEach((criterion, index) => {
      const was = from[index]!;
      if (was.text !== criterion.text) parts.push(`criterion ${index + 1} now “${criterion.text}”`);
      if (was.done !== criterion.done) parts.push(`${criterion.done ? "ticked" : "unticked"} “${criterion.text}”`);
    });
  } else {
    const texts = (list: Criterion[]) => new Set(list.map((criterion) => criterion.text));
    const [before, after] = [texts(from), texts(to)];
    for (const text of after) if (!before.has(text)) parts.push(`added “${text}”`);
    for (const text of before) if (!after.has(text)) parts.push(`removed “${text}”`);
  }
  return parts.join(", ") || "criteria unchanged";
}
