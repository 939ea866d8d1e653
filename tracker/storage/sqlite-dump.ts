// Backup, dump and restore on SQLite (dump.ts has the format). The running tracker holds its file
// exclusively, so a copy can only be made through its own connection: VACUUM INTO writes a
// consistent copy of the whole database in one step, between two group commits. A backup streams
// that copy; a dump reads it page by page through a connection of its own, while the tracker goes on.

import { Database } from "bun:sqlite";
import { closeSync, lstatSync, openSync, readdirSync, rmSync } from "node:fs";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { priorityRank, SCHEMA_VERSION } from "../domain.ts";
import {
  type BackupFile,
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
import { canonicalJson } from "./dump-writer.ts";
import { type TaskRow, toTask } from "./sqlite-rows.ts";

const COPY_CHUNK_BYTES = 1024 * 1024;

/** The copies this process is writing or reading now; any other copy of its database is a crash's leftover. */
const copiesInUse = new Set<string>();

/**
 * A new, empty file beside the database (readable by its owner only, like the database), for
 * VACUUM INTO. Its name starts with the database's, so the leftovers of a tracker that died while it
 * made one are known (only one process holds a database) and removed here.
 */
function newCopyPath(db: Database, purpose: string): string {
  const file = db.filename;
  const inMemory = file === "" || file === ":memory:";
  const dir = inMemory ? tmpdir() : dirname(file);
  const prefix = inMemory ? ".task-tracker-memory." : `.${basename(file)}.`;
  if (!inMemory) removeLeftoverCopies(dir, prefix);
  const path = join(dir, `${prefix}${purpose}-${crypto.randomUUID()}.copy`);
  closeSync(openSync(path, "wx", 0o600));
  copiesInUse.add(path);
  return path;
}

/** What newCopyPath names a copy, after the database's prefix: `dump-<uuid>.copy`, `backup-<uuid>.copy`. */
const COPY_NAME = /^(backup|dump)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.copy$/;

/** Only the regular files named exactly as newCopyPath names them: anything else is not ours to delete. */
function removeLeftoverCopies(dir: string, prefix: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!name.startsWith(prefix) || !COPY_NAME.test(name.slice(prefix.length)) || copiesInUse.has(path)) continue;
    if (lstatSync(path, { throwIfNoEntry: false })?.isFile()) rmSync(path, { force: true });
  }
}

function removeCopy(path: string): void {
  rmSync(path, { force: true });
  copiesInUse.delete(path);
}

/** A consistent copy of the whole database; VACUUM INTO accepts an empty file, and keeps its mode. */
function copyDatabase(db: Database, purpose: string): string {
  const path = newCopyPath(db, purpose);
  try {
    db.run("VACUUM INTO ?", [path]);
  } catch (error) {
    removeCopy(path);
    throw error;
  }
  return path;
}

function streamFile(handle: FileHandle): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(COPY_CHUNK_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead > 0) return controller.enqueue(buffer.subarray(0, bytesRead));
      await handle.close();
      controller.close();
    },
    async cancel() {
      await handle.close();
    },
  });
}

/**
 * A backup leaves out the responses stored under Idempotency-Keys: their rows name the API key that
 * wrote them by its SHA-256 (the scope), which a short key cannot keep from an offline guess. They are
 * kept 24 hours for retries only, and a dump leaves them out too. secure_delete overwrites their bytes
 * with zeros, where a plain DELETE would leave them in free pages. The copy is ours alone: no journal.
 */
function dropIdempotencyKeys(path: string): void {
  const copy = new Database(path);
  try {
    copy.run("PRAGMA journal_mode = OFF");
    copy.run("PRAGMA secure_delete = ON");
    copy.run("DELETE FROM idempotency_keys");
  } finally {
    copy.close(false);
  }
}

/** GET /admin/backup: the copy is opened, then unlinked at once, so nothing of it outlives the stream. */
export async function openSqliteBackup(db: Database): Promise<BackupFile> {
  const path = copyDatabase(db, "backup");
  let handle: FileHandle;
  try {
    dropIdempotencyKeys(path);
    handle = await open(path, "r");
  } finally {
    await unlink(path);
    copiesInUse.delete(path);
  }
  const { size } = await handle.stat();
  return { size, stream: streamFile(handle) };
}

// ---------------------------------------------------------------------------
// Dump: pages of a private copy.

/** The task as the API shows it, with what only a dump keeps (the line's fields are ordered by the writer). */
function toDumpTask(row: TaskRow): DumpTask {
  const { lease_seconds, lost_by, lost_by_key, lost_at } = row;
  return { kind: "task", ...toTask(row), lease_seconds, lost_by, lost_by_key, lost_at };
}

type NoteRow = Omit<DumpNote, "kind"> & { task_seq: number; note_id: number };

/** Keyset pages of one query: `after` is the key of the previous page's last row. */
async function* pages<Row, Key>(read: (after: Key) => Row[], keyOf: (row: Row) => Key, first: Key): AsyncGenerator<Row[]> {
  let after = first;
  for (;;) {
    const rows = read(after);
    if (rows.length > 0) yield rows;
    if (rows.length < DUMP_PAGE_SIZE) return;
    after = keyOf(rows.at(-1)!);
  }
}

function snapshotOf(copy: Database, path: string): DumpSnapshot {
  const limit = DUMP_PAGE_SIZE;
  const taskPage = copy.prepare<TaskRow, [number, number]>("SELECT * FROM tasks WHERE seq > ? ORDER BY seq LIMIT ?");
  const eventPage = copy.prepare<Omit<DumpEvent, "kind" | "details"> & { details: string }, [number, number]>(
    `SELECT event_id, project_id, task_id, type, at, agent_id, key_name, from_status, to_status, details
     FROM task_events WHERE event_id > ? ORDER BY event_id LIMIT ?`,
  );
  const notePage = copy.prepare<NoteRow, [number, number, number]>(
    `SELECT task_notes.task_seq, task_notes.note_id, tasks.project_id, tasks.task_id, task_notes.at, task_notes.by,
            task_notes.text
     FROM task_notes INDEXED BY task_notes_by_task JOIN tasks ON tasks.seq = task_notes.task_seq
     WHERE (task_notes.task_seq, task_notes.note_id) > (?, ?) ORDER BY task_notes.task_seq, task_notes.note_id LIMIT ?`,
  );
  const counterPage = copy.prepare<Omit<DumpCounter, "kind">, [string, string, number]>(
    `SELECT project_id, artifact_type, last_assigned AS last_assigned_id FROM id_counters
     WHERE (project_id, artifact_type) > (?, ?) ORDER BY project_id, artifact_type LIMIT ?`,
  );
  const reservationPage = copy.prepare<Omit<DumpReservation, "kind">, [string, string, number, number]>(
    `SELECT reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at FROM reservations
     WHERE (project_id, artifact_type, first_number) > (?, ?, ?) ORDER BY project_id, artifact_type, first_number LIMIT ?`,
  );
  return {
    schemaVersion: SCHEMA_VERSION,
    async *tasks() {
      for await (const rows of pages(
        (after: number) => taskPage.all(after, limit),
        (row) => row.seq,
        0,
      ))
        yield rows.map(toDumpTask);
    },
    async *notes() {
      const read = ([seq, id]: [number, number]) => notePage.all(seq, id, limit);
      for await (const rows of pages(read, (row) => [row.task_seq, row.note_id] as [number, number], [0, 0])) {
        yield rows.map(({ task_seq: _, note_id: __, ...note }) => ({ kind: "note" as const, ...note }));
      }
    },
    async *events() {
      const read = (after: number) => eventPage.all(after, limit);
      for await (const rows of pages(read, (row) => row.event_id, 0)) {
        yield rows.map((row) => ({
          kind: "event" as const,
          ...row,
          details: JSON.parse(row.details) as Record<string, unknown>,
        }));
      }
    },
    async *counters() {
      const read = ([project, type]: [string, string]) => counterPage.all(project, type, limit);
      for await (const rows of pages(read, (row) => [row.project_id, row.artifact_type] as [string, string], ["", ""])) {
        yield rows.map((row) => ({ kind: "counter" as const, ...row }));
      }
    },
    async *reservations() {
      const read = ([project, type, first]: [string, string, number]) => reservationPage.all(project, type, first, limit);
      const keyOf = (row: Omit<DumpReservation, "kind">) =>
        [row.project_id, row.artifact_type, row.first_number] as [string, string, number];
      for await (const rows of pages(read, keyOf, ["", "", 0]))
        yield rows.map((row) => ({ kind: "reservation" as const, ...row }));
    },
    async close() {
      for (const statement of [taskPage, notePage, eventPage, counterPage, reservationPage]) statement.finalize();
      copy.close(false);
      removeCopy(path);
    },
  };
}

/** GET /admin/dump: a private copy (VACUUM INTO), read through its own read-only connection, removed at close. */
export async function openSqliteSnapshot(db: Database): Promise<DumpSnapshot> {
  const path = copyDatabase(db, "dump");
  try {
    return snapshotOf(new Database(path, { readonly: true, strict: true }), path);
  } catch (error) {
    removeCopy(path);
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Restore: one transaction on the storage's own connection (no tracker runs on it meanwhile).

function countRows(db: Database): DumpCounts {
  const count = (table: string) => db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}`).get()!.n;
  return {
    tasks: count("tasks"),
    events: count("task_events"),
    counters: count("id_counters"),
    reservations: count("reservations"),
  };
}

function prepareRestoreStatements(db: Database) {
  const insertTask = db.prepare(
    `INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                        unfinished_deps, status, claimed_by, lease_expires_at, lease_seconds, lost_by, lost_at,
                        completion_notes, created_at, updated_at, started_at, completed_at, labels, parent_id,
                        acceptance_criteria, released_by, claimed_by_key, lost_by_key)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertNote = db.prepare("INSERT INTO task_notes (task_seq, at, by, text) VALUES (?, ?, ?, ?)");
  const summarize = db.prepare(
    "UPDATE tasks SET children_total = ?, open_children = ?, notes_count = ?, last_note = ? WHERE seq = ?",
  );
  const insertDependency = db.prepare("INSERT INTO task_dependencies (dependency_seq, dependent_seq) VALUES (?, ?)");
  const setUnfinished = db.prepare("UPDATE tasks SET unfinished_deps = ? WHERE seq = ?");
  const insertEvent = db.prepare(
    `INSERT INTO task_events (event_id, task_seq, project_id, task_id, type, at, agent_id, key_name, from_status, to_status,
                              details)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertReservation = db.prepare(
    `INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertCounter = db.prepare("INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES (?, ?, ?)");
  return {
    insertTask,
    insertNote,
    summarize,
    insertDependency,
    setUnfinished,
    insertEvent,
    insertReservation,
    insertCounter,
  };
}

/** The notes, and what the other lines say of each task (children, notes). */
function contentTarget(
  insertNote: ReturnType<typeof prepareRestoreStatements>["insertNote"],
  summarize: ReturnType<typeof prepareRestoreStatements>["summarize"],
): Pick<RestoreTarget, "insertNotes" | "summarizeTasks"> {
  return {
    async insertNotes(notes) {
      for (const n of notes) insertNote.run(n.task_seq, n.at, n.by, n.text);
    },
    async summarizeTasks(summaries) {
      for (const t of summaries) {
        const last = t.last_note === null ? null : JSON.stringify(t.last_note);
        summarize.run(t.children_total, t.open_children, t.notes_count, last, t.seq);
      }
    },
  };
}

function restoreTarget(db: Database): RestoreTarget & { finalize(): void } {
  const statements = prepareRestoreStatements(db);
  const { insertTask, insertNote, summarize, insertDependency, setUnfinished, insertEvent, insertReservation, insertCounter } =
    statements;
  return {
    // An unfinalized statement would keep the connection, and its lock on the file, alive after close().
    finalize: () => Object.values(statements).forEach((statement) => statement.finalize()),
    async insertTasks(tasks) {
      for (const t of tasks) {
        insertTask.run(
          t.seq,
          t.task_id,
          t.project_id,
          t.description,
          JSON.stringify(t.inputs),
          JSON.stringify(t.outputs),
          t.priority,
          priorityRank[t.priority],
          JSON.stringify(t.depends_on),
          t.status,
          t.claimed_by,
          t.lease_expires_at,
          t.lease_seconds,
          t.lost_by,
          t.lost_at,
          t.completion_notes,
          t.created_at,
          t.updated_at,
          t.started_at,
          t.completed_at,
          JSON.stringify(t.labels),
          t.parent_id,
          JSON.stringify(t.acceptance_criteria),
          t.released_by,
          t.claimed_by_key,
          t.lost_by_key,
        );
      }
    },
    ...contentTarget(insertNote, summarize),
    async linkDependencies(links, unfinished) {
      for (const link of links) insertDependency.run(link.dependencySeq, link.dependentSeq);
      for (const task of unfinished) setUnfinished.run(task.count, task.seq);
    },
    async insertEvents(events) {
      for (const e of events) {
        insertEvent.run(
          e.event_id,
          e.task_seq,
          e.project_id,
          e.task_id,
          e.type,
          e.at,
          e.agent_id,
          e.key_name,
          e.from_status,
          e.to_status,
          canonicalJson(e.details),
        );
      }
    },
    async insertReservations(reservations) {
      for (const r of reservations) {
        insertReservation.run(
          r.reservation_id,
          r.project_id,
          r.artifact_type,
          r.first_number,
          r.count,
          r.created_at,
          r.expires_at,
        );
      }
    },
    // seq and event_id are INTEGER PRIMARY KEYs: SQLite continues after the highest by itself.
    async setCounters(counters) {
      for (const c of counters) insertCounter.run(c.project_id, c.artifact_type, c.last_assigned_id);
    },
  };
}

/** `task-tracker restore` on SQLite: all or nothing, into a database that holds nothing yet. */
export async function restoreSqlite(db: Database, lines: AsyncIterable<NumberedLine>): Promise<DumpCounts> {
  const target = restoreTarget(db);
  db.run("BEGIN IMMEDIATE");
  try {
    const held = countRows(db);
    if (held.tasks + held.events + held.counters + held.reservations > 0) throw notEmpty(held, `The database ${db.filename}`);
    const counts = await loadDump(lines, target);
    db.run("COMMIT");
    return counts;
  } catch (error) {
    if (db.inTransaction) db.run("ROLLBACK");
    throw error;
  } finally {
    target.finalize();
  }
}
