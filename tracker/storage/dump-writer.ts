// Writing a dump (dump.ts has the format): the lines, the same from either storage, page by page
// from a storage's DumpSnapshot.

import {
  DUMP_FORMAT,
  DUMP_VERSION,
  type DumpCounter,
  type DumpCounts,
  type DumpEnd,
  type DumpEvent,
  type DumpHeader,
  type DumpNote,
  type DumpReservation,
  type DumpSnapshot,
  type DumpTask,
} from "./dump.ts";

/** The fields of each kind of line, in the order a line lists them. */
const FIELD_ORDER = {
  task: [
    "kind",
    "project_id",
    "task_id",
    "description",
    "inputs",
    "outputs",
    "priority",
    "depends_on",
    "status",
    "claimed_by",
    "claimed_by_key",
    "lease_expires_at",
    "lease_seconds",
    "lost_by",
    "lost_by_key",
    "lost_at",
    "completion_notes",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "labels",
    "parent_id",
    "acceptance_criteria",
    "released_by",
  ],
  note: ["kind", "project_id", "task_id", "at", "by", "text"],
  event: [
    "kind",
    "event_id",
    "project_id",
    "task_id",
    "type",
    "at",
    "agent_id",
    "key_name",
    "from_status",
    "to_status",
    "details",
  ],
  counter: ["kind", "project_id", "artifact_type", "last_assigned_id"],
  reservation: ["kind", "reservation_id", "project_id", "artifact_type", "first_number", "count", "created_at", "expires_at"],
} as const;

/** JSON with object keys in sorted order at every depth: PostgreSQL's jsonb reorders keys, SQLite keeps them. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted;
}

/** One line of a dump, the same from either storage: its fields in FIELD_ORDER, the keys of details sorted. */
function formatRecord(record: DumpTask | DumpNote | DumpEvent | DumpCounter | DumpReservation): string {
  const ordered: Record<string, unknown> = {};
  for (const field of FIELD_ORDER[record.kind]) ordered[field] = (record as unknown as Record<string, unknown>)[field];
  if (record.kind === "event") ordered.details = sortKeys(record.details);
  return `${JSON.stringify(ordered)}\n`;
}

/**
 * The dump as chunks of text, one page of records each: header, tasks, events, counters,
 * reservations, end. Closes the snapshot when done, or when the reader stops early.
 */
export async function* dumpLines(snapshot: DumpSnapshot, createdAt: Date): AsyncGenerator<string> {
  try {
    const header: DumpHeader = {
      kind: "header",
      format: DUMP_FORMAT,
      version: DUMP_VERSION,
      format_version: DUMP_VERSION,
      schema_version: snapshot.schemaVersion,
      created_at: createdAt.toISOString(),
    };
    yield `${JSON.stringify(header)}\n`;
    const counts: DumpCounts = { tasks: 0, events: 0, counters: 0, reservations: 0, notes: 0 };
    yield* taskLines(snapshot, counts);
    const sections = [
      ["events", snapshot.events()],
      ["counters", snapshot.counters()],
      ["reservations", snapshot.reservations()],
    ] as const;
    for (const [name, pages] of sections) {
      for await (const page of pages) {
        counts[name] += page.length;
        if (page.length > 0) yield page.map(formatRecord).join("");
      }
    }
    const end: DumpEnd = { kind: "end", counts };
    yield `${JSON.stringify(end)}\n`;
  } finally {
    await snapshot.close();
  }
}

/** The task lines, each followed by its notes (both read in the tasks' insertion order). */
async function* taskLines(snapshot: DumpSnapshot, counts: DumpCounts): AsyncGenerator<string> {
  const notes = snapshot.notes()[Symbol.asyncIterator]();
  let waiting: DumpNote[] = [];
  let next = 0;
  const noteOf = async (): Promise<DumpNote | undefined> => {
    if (next === waiting.length) {
      const page = await notes.next();
      waiting = page.done ? [] : page.value;
      next = 0;
    }
    return waiting[next];
  };
  for await (const page of snapshot.tasks()) {
    counts.tasks += page.length;
    let chunk = "";
    for (const task of page) {
      chunk += formatRecord(task);
      for (
        let note = await noteOf();
        note?.task_id === task.task_id && note.project_id === task.project_id;
        note = await noteOf()
      ) {
        chunk += formatRecord(note);
        counts.notes! += 1;
        next++;
      }
    }
    if (chunk !== "") yield chunk;
  }
}

/** The chunks as a byte stream, read as fast as the client takes them (GET /admin/dump). */
export function textStream(chunks: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}
