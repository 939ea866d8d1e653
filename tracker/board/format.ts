// How the board words things: times, leases, and the lines of a task's history.

import type { TaskEvent } from "./api.ts";

export function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? "";
}

/** "4 min 05 s left", "1 h 20 min left", "expiring". */
export function leaseLeft(expiresAt: string | null, now: number): string {
  if (expiresAt === null) return "no lease";
  const seconds = Math.floor((Date.parse(expiresAt) - now) / 1000);
  if (seconds <= 0) return "lease expiring";
  if (seconds < 60) return `${seconds} s left`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, "0")} s left`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min left`;
}

/** A local date and time, to the second. */
export function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function who(agentId: string | null): string {
  return agentId ?? "someone without a name";
}

/** One sentence per history entry: what happened and who did it. */
export function describeEvent(event: TaskEvent): string {
  const by = who(event.agent_id);
  const details = event.details;
  switch (event.type) {
    case "created":
      return `Added by ${by}${details.status === "completed" ? " as already completed" : ""}`;
    case "claimed":
      return `Claimed by ${by}`;
    case "released":
      return `Released by ${by}`;
    case "force_released":
      return `Claim of ${String(details.former_holder ?? "nobody")} released by ${by}`;
    case "completed":
      return `Completed by ${by}${details.completion_notes ? `: ${String(details.completion_notes)}` : ""}`;
    case "claim_expired":
      return `Lease of ${String(details.former_holder ?? "its holder")} ran out; pending again`;
    case "updated":
      return `Edited by ${by}: ${describeEdits(details)}`;
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
  return parts.join(", ") || "no change";
}
