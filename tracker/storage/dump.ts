// The dump: everything a tracker keeps (tasks with their statuses and times, their history, the ID
// counters and the reservations) as JSON lines, the same from both storages, so a dump of one
// restores into the other (docs/API.md, "Keeping the data"). Not in it: stored Idempotency-Key
// responses (kept 24 hours for retries, meaningless after a move).
//
// This file is the format: its records and what a storage hands over. The jobs are beside it:
// dump-writer.ts writes the lines (dumpLines, fed page by page by a storage's DumpSnapshot),
// dump-reader.ts checks and parses each line, dump-loader.ts feeds the records to a storage's
// RestoreTarget in batches (loadDump). sqlite-dump.ts and postgres-dump.ts hold the SQL.

import type { Criterion, Priority, TaskEventType, TaskStatus } from "../domain.ts";

export const DUMP_FORMAT = "task-tracking-dump";
/**
 * Version 2 (0.3.0): tasks carry labels, parent_id, acceptance_criteria, released_by and claimed_by_key,
 * events key_name; note lines.
 */
export const DUMP_VERSION = 2;
/** The versions restore reads: a dump of version 1 has none of version 2's fields and no note lines. */
export const READABLE_DUMP_VERSIONS: readonly number[] = [1, 2];
/** Rows a storage reads per query while dumping, and writes per statement while restoring. */
export const DUMP_PAGE_SIZE = 1000;

export interface DumpHeader {
  kind: "header";
  format: typeof DUMP_FORMAT;
  /** 1 or 2; format_version says the same (the name issue 21 gave it), absent in version 1. */
  version: number;
  format_version?: number;
  schema_version: number;
  created_at: string;
}

/** One task, with every column needed to restore it exactly; unfinished dependencies are derived. */
export interface DumpTask {
  kind: "task";
  project_id: string;
  task_id: string;
  description: string;
  inputs: string[];
  outputs: string[];
  priority: Priority;
  depends_on: string[];
  status: TaskStatus;
  claimed_by: string | null;
  /** Version 2 (a version-1 line reads as null): the key of the claim. */
  claimed_by_key: string | null;
  lease_expires_at: string | null;
  /** The length the claim asked for: a renewal without lease_seconds uses it. */
  lease_seconds: number | null;
  /** The holder of the last lease that ran out, and when it ran out: that agent hears claim_lost. */
  lost_by: string | null;
  /** Version 2 (a version-1 line reads as null): the key of lost_by. */
  lost_by_key: string | null;
  lost_at: string | null;
  completion_notes: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  /** Version 2 (a version-1 line reads as none of them). Children and note counts are derived. */
  labels: string[];
  parent_id: string | null;
  acceptance_criteria: Criterion[];
  released_by: string | null;
}

/** One note of a task, after its task's line (and its earlier notes), oldest first. */
export interface DumpNote {
  kind: "note";
  project_id: string;
  task_id: string;
  at: string;
  by: string | null;
  text: string;
}

export interface DumpEvent {
  kind: "event";
  event_id: number;
  project_id: string;
  task_id: string;
  type: TaskEventType;
  at: string;
  agent_id: string | null;
  /** Version 2 (a version-1 line reads as null). */
  key_name: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: Record<string, unknown>;
}

export interface DumpCounter {
  kind: "counter";
  project_id: string;
  artifact_type: string;
  last_assigned_id: number;
}

export interface DumpReservation {
  kind: "reservation";
  reservation_id: string;
  project_id: string;
  artifact_type: string;
  first_number: number;
  count: number;
  created_at: string;
  expires_at: string;
}

export interface DumpCounts {
  tasks: number;
  events: number;
  counters: number;
  reservations: number;
  /** Version 2; a version-1 end line has none (and its dump no note). */
  notes?: number;
}

export interface DumpEnd {
  kind: "end";
  counts: DumpCounts;
}

/**
 * A consistent view of one storage at one moment, read page by page: tasks in insertion order,
 * events by event_id, counters and reservations by project and type (bytewise, so both storages
 * list them alike). close() frees what the view holds; it is called whatever happens.
 */
export interface DumpSnapshot {
  schemaVersion: number;
  tasks(): AsyncIterable<DumpTask[]>;
  /** Every note, by its task's insertion order, then oldest first. */
  notes(): AsyncIterable<DumpNote[]>;
  events(): AsyncIterable<DumpEvent[]>;
  counters(): AsyncIterable<DumpCounter[]>;
  reservations(): AsyncIterable<DumpReservation[]>;
  close(): Promise<void>;
}

/** A consistent copy of a storage's database file (SQLite), as a stream of its bytes. */
export interface BackupFile {
  size: number;
  stream: ReadableStream<Uint8Array>;
}

/** One line of a dump, as dump-reader.ts parses it. */
export type DumpRecord = DumpHeader | DumpTask | DumpNote | DumpEvent | DumpCounter | DumpReservation | DumpEnd;

export interface NumberedLine {
  number: number;
  text: string;
}

/** A line of a dump that cannot be restored: the sentence starts with its line number. */
export class DumpError extends Error {
  override readonly name = "DumpError";
  constructor(line: number | null, problem: string) {
    super(line === null ? problem : `line ${line} ${problem}`);
  }
}
