// Dump and restore on PostgreSQL (dump.ts has the format). A dump reads one REPEATABLE READ
// snapshot page by page on a connection of its own, so it is consistent while every instance goes
// on writing. A backup of the database file is pg_dump's job, not the tracker's.

import type { ReservedSQL, SQL, TransactionSQL } from "bun";
import { priorityRank, SCHEMA_VERSION, type TaskEventType, type TaskStatus } from "../domain.ts";
import {
  DUMP_PAGE_SIZE,
  type DumpCounter,
  type DumpCounts,
  type DumpEvent,
  type DumpNote,
  type DumpReservation,
  type DumpSnapshot,
  type DumpTask,
  type NumberedLine,
} from "./dump.ts";
import { loadDump, notEmpty, type RestoreTarget } from "./dump-loader.ts";

/** A dump that waits this long for its reader gives up (its transaction would hold back VACUUM). */
const SNAPSHOT_IDLE_LIMIT = "10min";

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

type TaskRow = Omit<
  DumpTask,
  "kind" | "lease_expires_at" | "lost_at" | "created_at" | "updated_at" | "started_at" | "completed_at"
> & {
  seq: string;
  lease_expires_at: Date | null;
  lost_at: Date | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
};

function toDumpTask(row: TaskRow): DumpTask {
  return {
    kind: "task",
    project_id: row.project_id,
    task_id: row.task_id,
    description: row.description,
    inputs: row.inputs,
    outputs: row.outputs,
    priority: row.priority,
    depends_on: row.depends_on,
    status: row.status,
    claimed_by: row.claimed_by,
    claimed_by_key: row.claimed_by_key,
    lease_expires_at: iso(row.lease_expires_at),
    lease_seconds: row.lease_seconds,
    lost_by: row.lost_by,
    lost_by_key: row.lost_by_key,
    lost_at: iso(row.lost_at),
    completion_notes: row.completion_notes,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    started_at: iso(row.started_at),
    completed_at: iso(row.completed_at),
    labels: row.labels,
    parent_id: row.parent_id,
    // jsonb orders an object's keys its own way: text first, as SQLite keeps them.
    acceptance_criteria: row.acceptance_criteria.map(({ text, done }) => ({ text, done })),
    released_by: row.released_by,
  };
}

/** The notes after (task seq, note_id) `after`, by task, oldest first. */
function notePage(connection: ReservedSQL, after: [string, string]) {
  return connection<(Omit<DumpNote, "kind" | "at"> & { task_seq: string; note_id: string; at: Date })[]>`
    SELECT n.task_seq, n.note_id, t.project_id, t.task_id, n.at, n.by, n.text
    FROM task_notes n JOIN tasks t ON t.seq = n.task_seq
    WHERE (n.task_seq, n.note_id) > (${after[0]}::bigint, ${after[1]}::bigint)
    ORDER BY n.task_seq, n.note_id LIMIT ${DUMP_PAGE_SIZE}`;
}

interface EventRow {
  event_id: string;
  project_id: string;
  task_id: string;
  type: TaskEventType;
  at: Date;
  agent_id: string | null;
  key_name: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: Record<string, unknown>;
}

/** The tasks after seq `after`. */
function taskPage(connection: ReservedSQL, after: string) {
  return connection<TaskRow[]>`
    SELECT seq, project_id, task_id, description, inputs, outputs, priority, depends_on, status, claimed_by,
           lease_expires_at, lease_seconds, lost_by, lost_at, completion_notes, created_at, updated_at, started_at,
           completed_at, labels, parent_id, acceptance_criteria, released_by, claimed_by_key,
           lost_by_key
    FROM tasks WHERE seq > ${after}::bigint ORDER BY seq LIMIT ${DUMP_PAGE_SIZE}`;
}

function eventPage(connection: ReservedSQL, after: string) {
  return connection<EventRow[]>`
    SELECT e.event_id, t.project_id, t.task_id, e.type, e.at, e.agent_id, e.key_name, e.from_status, e.to_status, e.details
    FROM task_events e JOIN tasks t ON t.seq = e.task_seq
    WHERE e.event_id > ${after}::bigint ORDER BY e.event_id LIMIT ${DUMP_PAGE_SIZE}`;
}

// COLLATE "C": bytewise, as SQLite orders, whatever the database's collation.
function counterPage(connection: ReservedSQL, project: string, type: string) {
  return connection<{ project_id: string; artifact_type: string; last_assigned: string }[]>`
    SELECT project_id, artifact_type, last_assigned FROM id_counters
    WHERE (project_id COLLATE "C", artifact_type COLLATE "C") > (${project}::text, ${type}::text)
    ORDER BY project_id COLLATE "C", artifact_type COLLATE "C" LIMIT ${DUMP_PAGE_SIZE}`;
}

function reservationPage(connection: ReservedSQL, project: string, type: string, first: number) {
  return connection<
    (Omit<DumpReservation, "kind" | "first_number" | "created_at" | "expires_at"> & {
      first_number: string;
      created_at: Date;
      expires_at: Date;
    })[]
  >`
    SELECT reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at FROM reservations
    WHERE (project_id COLLATE "C", artifact_type COLLATE "C", first_number) > (${project}::text, ${type}::text, ${first}::bigint)
    ORDER BY project_id COLLATE "C", artifact_type COLLATE "C", first_number LIMIT ${DUMP_PAGE_SIZE}`;
}

async function* notePages(connection: ReservedSQL): AsyncGenerator<DumpNote[]> {
  for (let after: [string, string] = ["0", "0"]; ; ) {
    const rows = await notePage(connection, after);
    if (rows.length > 0) {
      yield rows.map(({ task_seq: _, note_id: __, ...note }): DumpNote => ({ kind: "note", ...note, at: note.at.toISOString() }));
    }
    if (rows.length < DUMP_PAGE_SIZE) return;
    after = [rows.at(-1)!.task_seq, rows.at(-1)!.note_id];
  }
}

function snapshotOn(connection: ReservedSQL): DumpSnapshot {
  let closed = false;
  return {
    schemaVersion: SCHEMA_VERSION,
    async *tasks() {
      for (let after = "0"; ; ) {
        const rows = await taskPage(connection, after);
        if (rows.length > 0) yield rows.map(toDumpTask);
        if (rows.length < DUMP_PAGE_SIZE) return;
        after = rows.at(-1)!.seq;
      }
    },
    notes: () => notePages(connection),
    async *events() {
      for (let after = "0"; ; ) {
        const rows = await eventPage(connection, after);
        if (rows.length > 0) {
          yield rows.map(
            (row): DumpEvent => ({ kind: "event", ...row, event_id: Number(row.event_id), at: row.at.toISOString() }),
          );
        }
        if (rows.length < DUMP_PAGE_SIZE) return;
        after = rows.at(-1)!.event_id;
      }
    },
    async *counters() {
      for (let after = ["", ""]; ; ) {
        const rows = await counterPage(connection, after[0]!, after[1]!);
        if (rows.length > 0) {
          yield rows.map(
            (row): DumpCounter => ({
              kind: "counter",
              project_id: row.project_id,
              artifact_type: row.artifact_type,
              last_assigned_id: Number(row.last_assigned),
            }),
          );
        }
        if (rows.length < DUMP_PAGE_SIZE) return;
        after = [rows.at(-1)!.project_id, rows.at(-1)!.artifact_type];
      }
    },
    async *reservations() {
      for (let after: [string, string, number] = ["", "", 0]; ; ) {
        const rows = await reservationPage(connection, ...after);
        const page = rows.map(
          (row): DumpReservation => ({
            kind: "reservation",
            ...row,
            first_number: Number(row.first_number),
            created_at: row.created_at.toISOString(),
            expires_at: row.expires_at.toISOString(),
          }),
        );
        if (page.length > 0) yield page;
        if (page.length < DUMP_PAGE_SIZE) return;
        const last = page.at(-1)!;
        after = [last.project_id, last.artifact_type, last.first_number];
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await connection`COMMIT`;
      } finally {
        connection.release();
      }
    },
  };
}

/** GET /admin/dump: one read-only REPEATABLE READ transaction on a connection of its own. */
export async function openPostgresSnapshot(pool: SQL): Promise<DumpSnapshot> {
  const connection = await pool.reserve();
  try {
    await connection.unsafe("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    await connection.unsafe(`SET LOCAL idle_in_transaction_session_timeout = '${SNAPSHOT_IDLE_LIMIT}'`);
    // The snapshot is taken by the first query, not by BEGIN: take it now, before openSnapshot returns.
    await connection`SELECT 1`;
  } catch (error) {
    connection.release();
    throw error;
  }
  return snapshotOn(connection);
}

// ---------------------------------------------------------------------------
// Restore.

/** Notes in the order given (their note_id follows it): a restore's, and a batch's (postgres.ts). */
export async function insertNoteRows(
  tx: TransactionSQL,
  notes: readonly { task_seq: number | string; at: string; by: string | null; text: string }[],
): Promise<void> {
  await tx`
    INSERT INTO task_notes (task_seq, at, by, text)
    SELECT r.task_seq, r.at, r.by, r.text
    FROM jsonb_to_recordset(${notes.map((note, i) => ({ ...note, i }))}::jsonb)
         AS r(i integer, task_seq bigint, at timestamptz, by text, text text)
    ORDER BY r.i`;
}

/** The notes, and what the other lines say of each task (children, notes). */
function contentTarget(tx: TransactionSQL): Pick<RestoreTarget, "insertNotes" | "summarizeTasks"> {
  return {
    insertNotes: (notes) => insertNoteRows(tx, notes),
    async summarizeTasks(summaries) {
      for (let i = 0; i < summaries.length; i += DUMP_PAGE_SIZE) {
        const chunk = summaries.slice(i, i + DUMP_PAGE_SIZE);
        await tx`
          UPDATE tasks SET children_total = r.children_total, open_children = r.open_children, notes_count = r.notes_count,
                           last_note = r.last_note
          FROM jsonb_to_recordset(${chunk}::jsonb) AS r(seq bigint, children_total integer, open_children integer,
                                                       notes_count integer, last_note jsonb)
          WHERE tasks.seq = r.seq`;
      }
    },
  };
}

function restoreTarget(tx: TransactionSQL): RestoreTarget {
  return {
    async insertTasks(tasks) {
      const rows = tasks.map((task) => ({ ...task, priority_rank: priorityRank[task.priority] }));
      await tx`
        INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                           unfinished_deps, status, claimed_by, completion_notes, created_at, updated_at, started_at,
                           completed_at, lease_expires_at, lease_seconds, lost_by, lost_at, labels, parent_id,
                           acceptance_criteria, released_by, claimed_by_key, lost_by_key)
        SELECT r.seq, r.task_id, r.project_id, r.description, r.inputs, r.outputs, r.priority, r.priority_rank, r.depends_on,
               0, r.status, r.claimed_by, r.completion_notes, r.created_at, r.updated_at, r.started_at, r.completed_at,
               r.lease_expires_at, r.lease_seconds, r.lost_by, r.lost_at, r.labels, r.parent_id, r.acceptance_criteria,
               r.released_by, r.claimed_by_key, r.lost_by_key
        FROM jsonb_to_recordset(${rows}::jsonb) AS r(
          seq bigint, task_id text, project_id text, description text, inputs jsonb, outputs jsonb, priority text,
          priority_rank smallint, depends_on jsonb, status text, claimed_by text, completion_notes text,
          created_at timestamptz, updated_at timestamptz, started_at timestamptz, completed_at timestamptz,
          lease_expires_at timestamptz, lease_seconds integer, lost_by text, lost_at timestamptz, labels jsonb,
          parent_id text, acceptance_criteria jsonb, released_by text, claimed_by_key text,
          lost_by_key text)
        ORDER BY r.seq`;
    },
    ...contentTarget(tx),
    async linkDependencies(links, unfinished) {
      for (let i = 0; i < links.length; i += DUMP_PAGE_SIZE * 10) {
        const chunk = links.slice(i, i + DUMP_PAGE_SIZE * 10);
        await tx`
          INSERT INTO task_dependencies (dependency_seq, dependent_seq)
          SELECT * FROM unnest(${chunk.map((link) => link.dependencySeq)}::bigint[], ${chunk.map((link) => link.dependentSeq)}::bigint[])`;
      }
      if (unfinished.length === 0) return;
      await tx`
        UPDATE tasks SET unfinished_deps = u.count
        FROM unnest(${unfinished.map((task) => task.seq)}::bigint[], ${unfinished.map((task) => task.count)}::integer[]) AS u(seq, count)
        WHERE tasks.seq = u.seq`;
    },
    async insertEvents(events) {
      await tx`
        INSERT INTO task_events (event_id, task_seq, type, at, agent_id, key_name, from_status, to_status, details)
        OVERRIDING SYSTEM VALUE
        SELECT r.event_id, r.task_seq, r.type, r.at, r.agent_id, r.key_name, r.from_status, r.to_status, r.details
        FROM jsonb_to_recordset(${events}::jsonb) AS r(
          event_id bigint, task_seq bigint, type text, at timestamptz, agent_id text, key_name text, from_status text,
          to_status text, details jsonb)
        ORDER BY r.event_id`;
    },
    async insertReservations(reservations) {
      await tx`
        INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
        SELECT r.reservation_id, r.project_id, r.artifact_type, r.first_number, r.count, r.created_at, r.expires_at
        FROM jsonb_to_recordset(${reservations}::jsonb) AS r(
          reservation_id text, project_id text, artifact_type text, first_number bigint, count integer,
          created_at timestamptz, expires_at timestamptz)`;
    },
    async setCounters(counters) {
      if (counters.length > 0) {
        await tx`
          INSERT INTO id_counters (project_id, artifact_type, last_assigned)
          SELECT * FROM unnest(${counters.map((c) => c.project_id)}::text[], ${counters.map((c) => c.artifact_type)}::text[],
                               ${counters.map((c) => c.last_assigned_id)}::bigint[])`;
      }
      // The identities continue after the highest restored value (setval of NULL, no rows, does nothing).
      await tx`SELECT setval(pg_get_serial_sequence('tasks', 'seq'), (SELECT max(seq) FROM tasks))`;
      await tx`SELECT setval(pg_get_serial_sequence('task_events', 'event_id'), (SELECT max(event_id) FROM task_events))`;
    },
  };
}

/**
 * `task-tracker restore` on PostgreSQL: one transaction, which first locks the tables (a tracker
 * running on the database waits meanwhile) and checks that they hold nothing.
 */
export async function restorePostgres(pool: SQL, lines: AsyncIterable<NumberedLine>): Promise<DumpCounts> {
  return (await pool.begin(async (tx) => {
    await tx`LOCK TABLE tasks, task_dependencies, task_events, task_notes, id_counters, reservations IN EXCLUSIVE MODE`;
    const [held] = await tx<{ tasks: string; events: string; counters: string; reservations: string }[]>`
      SELECT (SELECT count(*) FROM tasks) AS tasks, (SELECT count(*) FROM task_events) AS events,
             (SELECT count(*) FROM id_counters) AS counters, (SELECT count(*) FROM reservations) AS reservations`;
    const counts = {
      tasks: Number(held!.tasks),
      events: Number(held!.events),
      counters: Number(held!.counters),
      reservations: Number(held!.reservations),
    };
    if (counts.tasks + counts.events + counts.counters + counts.reservations > 0)
      throw notEmpty(counts, "The PostgreSQL database (DATABASE_URL)");
    return loadDump(lines, restoreTarget(tx));
  })) as DumpCounts;
}
