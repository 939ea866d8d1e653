// SQLite's rows as its statements read them, and how they become the domain's objects: shared by
// the storage (sqlite.ts) and its dump (sqlite-dump.ts).

import type { Criterion, Priority, Reservation, Task, TaskEvent, TaskEventType, TaskNote, TaskStatus } from "../domain.ts";

/** A row of `tasks`, as `SELECT *` reads it (the dump reads the same rows). */
export interface TaskRow {
  seq: number;
  task_id: string;
  project_id: string;
  description: string;
  inputs: string;
  outputs: string;
  priority: Priority;
  priority_rank: number;
  depends_on: string;
  unfinished_deps: number;
  blocked: number;
  status: TaskStatus;
  claimed_by: string | null;
  claimed_by_key: string | null;
  lease_expires_at: string | null;
  lease_seconds: number | null;
  lost_by: string | null;
  lost_by_key: string | null;
  lost_at: string | null;
  completion_notes: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  labels: string; // JSON array
  parent_id: string | null;
  acceptance_criteria: string; // JSON array of {text, done}
  released_by: string | null;
  children_total: number;
  open_children: number;
  notes_count: number;
  last_note: string | null; // JSON {at, by, text}
}

/** A row of `task_notes`. */
export interface NoteRow {
  at: string;
  by: string | null;
  text: string;
}

export interface EventRow {
  event_id: number;
  project_id: string;
  task_id: string;
  type: TaskEventType;
  at: string;
  agent_id: string | null;
  key_name: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: string;
}

export interface ReservationRow {
  reservation_id: string;
  project_id: string;
  artifact_type: string;
  first_number: number;
  count: number;
  expires_at: string;
}

export interface IdempotencyRow {
  fingerprint: string;
  response_status: number;
  response_body: string;
  created_at: number;
}

export function toTask(row: TaskRow): Task {
  return {
    task_id: row.task_id,
    project_id: row.project_id,
    description: row.description,
    inputs: JSON.parse(row.inputs) as string[],
    outputs: JSON.parse(row.outputs) as string[],
    priority: row.priority,
    depends_on: JSON.parse(row.depends_on) as string[],
    status: row.status,
    claimed_by: row.claimed_by,
    claimed_by_key: row.claimed_by_key,
    lease_expires_at: row.lease_expires_at,
    completion_notes: row.completion_notes,
    created_at: row.created_at,
    updated_at: row.updated_at,
    started_at: row.started_at,
    completed_at: row.completed_at,
    labels: JSON.parse(row.labels) as string[],
    parent_id: row.parent_id,
    acceptance_criteria: JSON.parse(row.acceptance_criteria) as Criterion[],
    notes_count: row.notes_count,
    last_note: row.last_note === null ? null : (JSON.parse(row.last_note) as TaskNote),
    children: { total: row.children_total, done: row.children_total - row.open_children },
    released_by: row.released_by,
  };
}

export function toEvent(row: EventRow): TaskEvent {
  return { ...row, details: JSON.parse(row.details) as Record<string, unknown> };
}

export function toReservation(row: ReservationRow): Reservation {
  return {
    reservationId: row.reservation_id,
    projectId: row.project_id,
    artifactType: row.artifact_type,
    firstNumber: row.first_number,
    count: row.count,
    expiresAt: row.expires_at,
  };
}
