// The SQLite storage (bun:sqlite). All of the service's SQL for SQLite lives here and in
// schema/. One connection, holding the file exclusively. Every write runs synchronously
// inside a BEGIN IMMEDIATE transaction (shared with the writes of the same event-loop turn, each in
// its own savepoint: see runWrite), so a read and the write that depends on it never interleave
// with another writer.

import { Database, type Statement } from "bun:sqlite";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import {
  ambiguousTaskId,
  type BatchCounterMove,
  type BatchTask,
  batchChildCounts,
  batchCounterMoves,
  batchTaskExists,
  CLAIM_EVENT_TYPES,
  cannotEditCompleted,
  checkCounterRaise,
  checkEditedDependencies,
  checkEditedParent,
  checkRenewal,
  checkStoredParents,
  childrenOpen,
  claimBlocked,
  claimEndOf,
  claimExpiredDetails,
  claimOfNext,
  clipSnippet,
  countUnfinishedDependencies,
  criteriaOpen,
  decideStatusChange,
  decodeSearchCursor,
  decodeTaskCursor,
  editChanges,
  encodeSearchCursor,
  encodeTaskCursor,
  type IdCounter,
  idsExhausted,
  isFinished,
  keyNameOf,
  type LeaseRenewal,
  leaseRanOut,
  lostClaimAfterClaim,
  lostClaimOf,
  lostRace,
  MAX_ID_NUMBER,
  type NewNote,
  type NewReservation,
  type NewTask,
  type NextClaim,
  nameBatch,
  needsClaimEnd,
  type ProjectSummary,
  PURGE_BATCH_SIZE,
  parentFinished,
  priorityRank,
  type Reservation,
  renewalLeaseSeconds,
  SCHEMA_VERSION,
  SEARCH_RANKED_MATCHES,
  type StatusChange,
  type StatusStep,
  searchWords,
  statusEventDetails,
  TASK_STATUSES,
  type Task,
  type TaskChange,
  type TaskEdit,
  type TaskEvent,
  type TaskEventType,
  type TaskListPart,
  type TaskListPosition,
  type TaskListQuery,
  type TaskNote,
  type TaskPage,
  type TaskRef,
  type TaskStatus,
  taskListParts,
  taskNotFound,
  validationError,
} from "../domain.ts";
import type { ApiKeyRecord, NewApiKey } from "../keys.ts";
import type { BackupFile, DumpCounts, DumpSnapshot, NumberedLine } from "./dump.ts";
// Imported as text so that a compiled binary carries them (no file beside the binary to read).
import schemaSql from "./schema/sqlite.sql" with { type: "text" };
import upgradeFromVersion1Sql from "./schema/sqlite-v1-to-v2.sql" with { type: "text" };
import upgradeFromVersion3Sql from "./schema/sqlite-v3-to-v4.sql" with { type: "text" };
import { InFlightKeys } from "./shared.ts";
import { openSqliteBackup, openSqliteSnapshot, restoreSqlite } from "./sqlite-dump.ts";
import {
  applyApiKeysSchema,
  insertApiKey,
  markApiKeyRevoked,
  markApiKeyUsed,
  selectActiveApiKey,
  selectApiKeys,
} from "./sqlite-keys.ts";
import {
  type EventRow,
  type IdempotencyRow,
  type NoteRow,
  type ReservationRow,
  type TaskRow,
  toEvent,
  toReservation,
  toTask,
} from "./sqlite-rows.ts";
import type {
  IdempotencyClaim,
  IdempotencyOutcome,
  IdempotencyRequest,
  IdempotentWrite,
  Storage,
  StoredResponse,
} from "./storage.ts";

const START_LOCK_TIMEOUT_MS = 2000;
const BUSY_TIMEOUT_MS = 5000;
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
const WAL_FLUSH_INTERVAL_MS = 10;
/** The database file holds every task and stored response: readable by its owner only, like the key file. */
const DATABASE_FILE_MODE = 0o600;

export type SyncMode = "normal" | "full";

export interface SqliteOptions {
  /** A file path, or `:memory:`. The directory of a file path is created. */
  path: string;
  /** `normal`: a committed write survives a crash of the process; `full`: also a power loss. */
  sync?: SyncMode;
}

/** What SQLite notes of a claimed Idempotency-Key (InFlightKeys), for writing its row. */
interface KeyNote {
  lookup: number;
  /** An expired row of the same key is still stored and must make way. */
  replacesExpiredRow: boolean;
}

function addSeconds(date: Date, seconds: number): string {
  return new Date(date.getTime() + seconds * 1000).toISOString();
}

// ---------------------------------------------------------------------------
// Opening: the file, the pragmas, the schema.

function applySchema(db: Database): void {
  const current = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `The database has schema version ${current}, newer than this service knows (${SCHEMA_VERSION}); run a newer tracker.`,
    );
  }
  if (current === SCHEMA_VERSION) return;
  if (current === 1) return rebuildTables(db, "v1_", upgradeFromVersion1Sql);
  // Version 3 changed only PostgreSQL's tables: versions 2 and 3 are the same here.
  if (current === 2 || current === 3) return rebuildTables(db, "v3_", upgradeFromVersion3Sql);
  db.transaction(() => {
    db.run(schemaSql);
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * An upgrade that changes what SQLite cannot alter (a UNIQUE or CHECK constraint, a generated
 * column) builds the tables anew: the old tables are renamed to <prefix><name> (their indexes and
 * triggers dropped, as their names are taken again), the current schema is created beside them,
 * `copySql` copies every row across and drops the old tables, in one transaction. Foreign keys are
 * off meanwhile (SQLite's documented procedure), and checked before the commit.
 */
function rebuildTables(db: Database, prefix: string, copySql: string): void {
  db.run("PRAGMA foreign_keys = OFF");
  try {
    db.transaction(() => {
      const objects = db
        .query<{ type: string; name: string }, []>(
          "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type DESC, name",
        )
        .all();
      for (const { type, name } of objects) {
        if (type === "index" || type === "trigger") db.run(`DROP ${type.toUpperCase()} ${name}`);
      }
      for (const { type, name } of objects) if (type === "table") db.run(`ALTER TABLE ${name} RENAME TO ${prefix}${name}`);
      db.run(schemaSql);
      db.run(copySql);
      const broken = db.query("PRAGMA foreign_key_check").all();
      if (broken.length > 0)
        throw new Error(`The upgrade to schema version ${SCHEMA_VERSION} broke ${broken.length} foreign keys.`);
      db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  } finally {
    db.run("PRAGMA foreign_keys = ON");
  }
}

/** Creates the file, if new, readable by its owner only; SQLite gives its -wal file the same mode. */
function createOwnerOnlyFile(path: string): void {
  try {
    closeSync(openSync(path, "wx", DATABASE_FILE_MODE));
  } catch (error) {
    if ((error as { code?: unknown }).code !== "EEXIST") throw error;
  }
}

export async function openSqliteStorage(options: SqliteOptions): Promise<SqliteStorage> {
  const inMemory = options.path === ":memory:";
  if (!inMemory) {
    mkdirSync(dirname(options.path), { recursive: true });
    createOwnerOnlyFile(options.path);
  }
  const db = new Database(options.path, { create: true, readwrite: true, strict: true });
  try {
    // A tracker that is just stopping may hold the file for a moment: wait for it, briefly.
    db.run(`PRAGMA busy_timeout = ${START_LOCK_TIMEOUT_MS}`);
    // This process alone uses the file: SQLite then takes no file lock per transaction and keeps
    // the WAL index in memory, and a second tracker on the same file fails at start instead of
    // racing this one. Must come before the first read.
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    if (!inMemory) {
      const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal") throw new Error(`Could not switch ${options.path} to WAL mode (got ${mode}).`);
    }
    // In WAL mode NORMAL loses no committed transaction when the process dies, only on power loss.
    db.run(`PRAGMA synchronous = ${options.sync === "full" ? "FULL" : "NORMAL"}`);
    db.run("PRAGMA foreign_keys = ON");
    // Statement journals (each write's savepoint; a statement that moves several indexes) and
    // temporary b-trees in memory, not in temporary files: a claim's UPDATE, event and stored
    // response cost half as much (bench/, issue 22).
    db.run("PRAGMA temp_store = MEMORY");
    // 32 MiB of page cache (the default is 2): keeps the hot index pages of 100,000s of tasks.
    db.run("PRAGMA cache_size = -32768");
    // A checkpoint stops every request while it copies the WAL and fsyncs the file. Few large ones
    // (every ~40 MiB of WAL) stall far less in total than the default's many small ones.
    db.run(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.run(`PRAGMA journal_size_limit = ${64 * 1024 * 1024}`);
    // Takes the exclusive lock now, so "in use by another process" shows at start.
    db.transaction(() => {}).immediate();
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    applySchema(db);
    applyApiKeysSchema(db);
    // With TRACKER_SYNC=full every commit already syncs the WAL.
    const flusher = inMemory || options.sync === "full" ? undefined : new WalFlusher(`${options.path}-wal`);
    return new SqliteStorage(db, flusher);
  } catch (error) {
    db.close();
    if (error instanceof Error && /database is locked|SQLITE_BUSY/i.test(error.message)) {
      throw new Error(`${options.path} is in use by another process (is another tracker running on it?)`);
    }
    throw error;
  }
}

/**
 * Writes the WAL to disk in the background while it grows. A checkpoint (every
 * WAL_AUTOCHECKPOINT_PAGES) must fsync the WAL before it copies pages back, on the one thread that
 * serves every request: with all of the ~40 MiB written since the last one still to write, that
 * stopped every request for 35-50 ms, every ~300-450 ms at 10,000 reservations/s (bench/, the p99 at 32
 * clients). A datasync every WAL_FLUSH_INTERVAL_MS on the thread pool leaves the checkpoint's fsync
 * little to write. It only ever adds syncs: nothing is acknowledged later or kept less durably.
 * A failed background sync is not an error of any request: the checkpoint's own fsync, which
 * SQLite checks, still decides.
 */
class WalFlusher {
  private handle: FileHandle | undefined;
  private dirty = false;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly walPath: string) {}

  /** Called after each commit. */
  written(): void {
    this.dirty = true;
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (this.dirty && !this.stopped) {
      await Bun.sleep(WAL_FLUSH_INTERVAL_MS);
      this.dirty = false;
      try {
        this.handle ??= await open(this.walPath, "r+");
        await this.handle.datasync();
      } catch {
        // See above: the checkpoint's fsync decides.
      }
    }
    this.loop = undefined;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.handle?.close();
  }
}

// ---------------------------------------------------------------------------
// The statements, prepared once.

/**
 * GET /tasks/next, one statement per status with the status written into it: bound as a parameter,
 * it would make SQLite compile the statement anew at every call (a bound value may enable a partial
 * index on status), at ten times the cost of the read. blocked = 0 holds for every task that is not
 * pending (see the schema's CHECK); for a pending one it means no unfinished dependency and no open
 * child. notReleasedBy: the next one not released by this agent, on the same index, past the agent's
 * own releases (few).
 */
function prepareNextTask<Params extends [string] | [string, string]>(db: Database, notReleasedBy: boolean) {
  const byStatus = TASK_STATUSES.map((status) => [
    status,
    db.prepare<TaskRow, Params>(
      `SELECT * FROM tasks WHERE project_id = ? AND status = '${status}' AND blocked = 0
       ${notReleasedBy ? "AND released_by IS NOT ?" : ""} ORDER BY priority_rank, seq LIMIT 1`,
    ),
  ]);
  return Object.fromEntries(byStatus) as Record<TaskStatus, Statement<TaskRow, Params>>;
}

function prepareTaskReads(db: Database) {
  return {
    byRef: db.prepare<TaskRow, [string, string]>("SELECT * FROM tasks WHERE task_id = ? AND project_id = ?"),
    byTaskId: db.prepare<TaskRow, [string]>("SELECT * FROM tasks WHERE task_id = ? ORDER BY project_id LIMIT 2"),
    projectsOfTaskId: db.prepare<{ project_id: string }, [string]>(
      "SELECT project_id FROM tasks WHERE task_id = ? ORDER BY project_id",
    ),
    // The task of that ID in the asking project if there is one, else any other (to say so).
    dependency: db.prepare<{ seq: number; project_id: string; status: TaskStatus }, [string, string]>(
      "SELECT seq, project_id, status FROM tasks WHERE task_id = ? ORDER BY project_id = ? DESC, project_id LIMIT 1",
    ),
    children: db.prepare<{ task_id: string; status: TaskStatus }, [string, string]>(
      "SELECT task_id, status FROM tasks WHERE project_id = ? AND parent_id = ? ORDER BY seq",
    ),
    // An edit of parent_id: the new parent and its ancestors, nearest first (depth-limited: a cycle
    // among stored tasks cannot exist, the limit only keeps a broken database from looping).
    ancestors: db.prepare<{ task_id: string; status: TaskStatus }, [string, string]>(
      `WITH RECURSIVE chain (task_id, depth) AS (
         SELECT ?2, 0
         UNION ALL
         SELECT tasks.parent_id, chain.depth + 1 FROM chain JOIN tasks ON tasks.project_id = ?1 AND tasks.task_id = chain.task_id
         WHERE tasks.parent_id IS NOT NULL AND chain.depth < 10000
       )
       SELECT tasks.task_id, tasks.status FROM chain JOIN tasks ON tasks.project_id = ?1 AND tasks.task_id = chain.task_id
       ORDER BY chain.depth`,
    ),
    notes: db.prepare<NoteRow, [number]>("SELECT at, by, text FROM task_notes WHERE task_seq = ? ORDER BY note_id"),
    // A reopened task waits again for each dependency that is not finished.
    unfinishedCount: db.prepare<{ count: number }, [number]>(
      `SELECT count(*) AS count FROM task_dependencies JOIN tasks ON tasks.seq = task_dependencies.dependency_seq
       WHERE task_dependencies.dependent_seq = ? AND tasks.status NOT IN ('completed', 'cancelled')`,
    ),
    events: db.prepare<EventRow, [number]>(
      `SELECT event_id, project_id, task_id, type, at, agent_id, key_name, from_status, to_status, details
       FROM task_events WHERE task_seq = ? ORDER BY event_id`,
    ),
    // The last two claim events (CLAIM_EVENT_TYPES), newest first: how the last claim ended (claimEndOf).
    lastClaimEvents: db.prepare<{ type: TaskEventType; agent_id: string | null; at: string }, [number]>(
      `SELECT type, agent_id, at FROM task_events
       WHERE task_seq = ? AND type IN (${CLAIM_EVENT_TYPES.map((type) => `'${type}'`).join(", ")})
       ORDER BY event_id DESC LIMIT 2`,
    ),
    // project_counts, and the claims in progress counted from their index (see the schema).
    projects: db.prepare<ProjectSummary, []>(
      `WITH claims AS (
         SELECT project_id, count(*) AS in_progress, max(coalesce(started_at, '')) AS last_claim_at
         FROM tasks INDEXED BY tasks_claimed WHERE status = 'in_progress' GROUP BY project_id
       )
       SELECT project_id, ready_or_claimed - coalesce(claims.in_progress, 0) AS ready, blocked,
              coalesce(claims.in_progress, 0) AS in_progress, completed, cancelled,
              nullif(max(coalesce(last_change_at, ''), coalesce(claims.last_claim_at, '')), '') AS last_change_at
       FROM project_counts LEFT JOIN claims USING (project_id)
       UNION ALL
       SELECT DISTINCT project_id, 0, 0, 0, 0, 0, NULL FROM id_counters
       WHERE project_id NOT IN (SELECT project_id FROM project_counts)
       ORDER BY project_id`,
    ),
  };
}

/** A claim's parameters: agent, at, lease, its length, the lost claim (by, at), seq, key, the lost claim's key. */
type ClaimParameters = [
  string | null,
  string,
  string,
  number,
  string | null,
  string | null,
  number,
  string | null,
  string | null,
];
/** An event's parameters: task seq, project, task, type, at, agent, key, from, to, details. */
type EventParameters = [
  number,
  string,
  string,
  string,
  string,
  string | null,
  string | null,
  string | null,
  string | null,
  string,
];

function prepareTaskWrites(db: Database) {
  return {
    insert: db.prepare<
      TaskRow,
      [
        string,
        string,
        string,
        string,
        string,
        string,
        number,
        string,
        number,
        string,
        string,
        string,
        string,
        string | null,
        string | null,
        string,
        string | null,
        string,
      ]
    >(
      `INSERT INTO tasks (task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                          unfinished_deps, status, completion_notes, created_at, updated_at, started_at, completed_at,
                          labels, parent_id, acceptance_criteria)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ),
    insertDependency: db.prepare<unknown, [number, number]>(
      "INSERT OR IGNORE INTO task_dependencies (dependency_seq, dependent_seq) VALUES (?, ?)",
    ),
    // Compare-and-set: each names the status it expects, so a lost race changes no row. (claim() follows its SET.)
    claim: db.prepare<unknown, ClaimParameters>(
      `UPDATE tasks SET status = 'in_progress', claimed_by = ?1, claimed_by_key = ?8, started_at = ?2, updated_at = ?2,
                        lease_expires_at = ?3, lease_seconds = ?4, lost_by = ?5, lost_at = ?6, lost_by_key = ?9,
                        released_by = NULL
       WHERE seq = ?7 AND status = 'pending' AND blocked = 0`,
    ),
    complete: db.prepare<TaskRow, [string, string, number]>(
      `UPDATE tasks SET status = 'completed', completion_notes = ?1, completed_at = ?2, updated_at = ?2,
                        lease_expires_at = NULL, lease_seconds = NULL
       WHERE seq = ?3 AND status = 'in_progress' RETURNING *`,
    ),
    release: db.prepare<TaskRow, [string, string | null, number]>(
      `UPDATE tasks SET status = 'pending', claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, updated_at = ?,
                        lease_expires_at = NULL, lease_seconds = NULL, released_by = ?
       WHERE seq = ? AND status = 'in_progress' RETURNING *`,
    ),
    expireOne: db.prepare<TaskRow, [string | null, string | null, string, number, string | null]>(
      `UPDATE tasks SET status = 'pending', lost_by = ?1, lost_at = ?2, lost_by_key = ?5,
                        claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, lease_expires_at = NULL, lease_seconds = NULL,
                        updated_at = ?3
       WHERE seq = ?4 AND status = 'in_progress' RETURNING *`,
    ),
    // The claims in progress are few: their index is scanned for the leases that ran out. SET reads
    // the row as it was: lost_by and lost_at take the holder and lease being cleared (lostClaimOf).
    expireDue: db.prepare<TaskRow, [string, string]>(
      `UPDATE tasks INDEXED BY tasks_in_progress SET status = 'pending', lost_by = claimed_by, lost_at = lease_expires_at,
                        lost_by_key = claimed_by_key, claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, lease_expires_at = NULL, lease_seconds = NULL,
                        updated_at = ?1
       WHERE status = 'in_progress' AND lease_expires_at <= ?2 RETURNING *`,
    ),
    renew: db.prepare<TaskRow, [string, number]>(
      "UPDATE tasks SET lease_expires_at = ? WHERE seq = ? AND status = 'in_progress' RETURNING *",
    ),
    edit: db.prepare<TaskRow, [string, number, string, string, string, string | null, string, number]>(
      `UPDATE tasks SET priority = ?, priority_rank = ?, description = ?, labels = ?, acceptance_criteria = ?,
                        parent_id = ?, updated_at = ?
       WHERE seq = ? AND status NOT IN ('completed', 'cancelled') RETURNING *`,
    ),
    insertEvent: db.prepare<unknown, EventParameters>(
      `INSERT INTO task_events (task_seq, project_id, task_id, type, at, agent_id, key_name, from_status, to_status, details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
  };
}

/** What a task's content adds: its notes, its children counts, a cancel and a reopening. */
function prepareContentWrites(db: Database) {
  return {
    countChildren: db.prepare<unknown, [number, number, string, string]>(
      `UPDATE tasks SET children_total = children_total + ?, open_children = open_children + ?
       WHERE project_id = ? AND task_id = ?`,
    ),
    insertNote: db.prepare<unknown, [number, string, string | null, string]>(
      "INSERT INTO task_notes (task_seq, at, by, text) VALUES (?, ?, ?, ?)",
    ),
    // The task as its notes show: how many, the last one (a batch's notes may come in any time order).
    noted: db.prepare<TaskRow, [number, string, string | null, number]>(
      `UPDATE tasks SET notes_count = notes_count + ?, last_note = ?, updated_at = coalesce(?, updated_at)
       WHERE seq = ? RETURNING *`,
    ),
    // A cancelled task waits for nothing and is held by nobody; completed_at: when it was cancelled.
    cancel: db.prepare<TaskRow, [string, number, string]>(
      `UPDATE tasks SET status = 'cancelled', claimed_by = NULL, claimed_by_key = NULL, updated_at = ?1, completed_at = ?1,
                        lease_expires_at = NULL, lease_seconds = NULL, unfinished_deps = 0
       WHERE seq = ?2 AND status = ?3 RETURNING *`,
    ),
    reopen: db.prepare<TaskRow, [string, number, number, string]>(
      `UPDATE tasks SET status = 'pending', claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, completed_at = NULL,
                        updated_at = ?1,
                        unfinished_deps = ?2
       WHERE seq = ?3 AND status = ?4 RETURNING *`,
    ),
    // A task that finishes, or reopens, changes the count of its pending dependents (only theirs:
    // a task leaves pending only when ready) and of its parent's open children.
    changeDependents: db.prepare<unknown, [number, number]>(
      `UPDATE tasks SET unfinished_deps = unfinished_deps + ?
       WHERE seq IN (SELECT dependent_seq FROM task_dependencies WHERE dependency_seq = ?) AND status = 'pending'`,
    ),
  };
}

/** An edit of depends_on: the stored graph it is checked against, and its rows and count. */
function prepareDependencyEdits(db: Database) {
  return {
    // An edit of depends_on: the tasks of the project the new list leads to, directly or not.
    reachable: db.prepare<{ task_id: string; status: TaskStatus; depends_on: string }, [string, string]>(
      `WITH RECURSIVE reach (task_id) AS (
         SELECT value FROM json_each(?2)
         UNION
         SELECT dependency.value FROM reach JOIN tasks ON tasks.task_id = reach.task_id AND tasks.project_id = ?1,
                json_each(tasks.depends_on) AS dependency
       )
       SELECT tasks.task_id, tasks.status, tasks.depends_on FROM reach
       JOIN tasks ON tasks.task_id = reach.task_id AND tasks.project_id = ?1`,
    ),
    deleteDependency: db.prepare<unknown, [number, number]>(
      "DELETE FROM task_dependencies WHERE dependency_seq = ? AND dependent_seq = ?",
    ),
    setDependencies: db.prepare<TaskRow, [string, number, number]>(
      "UPDATE tasks SET depends_on = ?, unfinished_deps = ? WHERE seq = ? RETURNING *",
    ),
  };
}

function prepareIdStatements(db: Database) {
  return {
    bumpCounter: db.prepare<{ last_assigned: number }, [string, string, number, number]>(
      `INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES (?, ?, ?)
       ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = last_assigned + ?
       RETURNING last_assigned`,
    ),
    moveCounter: db.prepare<{ last_assigned: number }, [string, string, number, number]>(
      `INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES (?1, ?2, ?3 + ?4)
       ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = max(last_assigned, ?3) + ?4
       RETURNING last_assigned`,
    ),
    selectCounter: db.prepare<{ last_assigned: number }, [string, string]>(
      "SELECT last_assigned FROM id_counters WHERE project_id = ? AND artifact_type = ?",
    ),
    setCounter: db.prepare<unknown, [string, string, number]>(
      `INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES (?, ?, ?)
       ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = excluded.last_assigned`,
    ),
    insertReservation: db.prepare<unknown, [string, string, string, number, number, string, string]>(
      `INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    selectReservation: db.prepare<ReservationRow, [string]>(
      `SELECT reservation_id, project_id, artifact_type, first_number, count, expires_at
       FROM reservations WHERE reservation_id = ?`,
    ),
    counters: db.prepare<IdCounter, [string | null]>(
      `SELECT project_id, artifact_type, last_assigned AS last_assigned_id FROM id_counters
       WHERE ?1 IS NULL OR project_id = ?1 ORDER BY project_id, artifact_type`,
    ),
    activeReservations: db.prepare<ReservationRow, [string, string | null]>(
      `SELECT reservation_id, project_id, artifact_type, first_number, count, expires_at FROM reservations
       WHERE expires_at > ?1 AND (?2 IS NULL OR project_id = ?2) ORDER BY expires_at, reservation_id`,
    ),
  };
}

function prepareIdempotencyStatements(db: Database) {
  return {
    select: db.prepare<IdempotencyRow, [number, string, string]>(
      `SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys
       WHERE lookup = ? AND scope = ? AND idempotency_key = ?`,
    ),
    insert: db.prepare<unknown, [number, string, string, string, number, string, number]>(
      `INSERT INTO idempotency_keys (lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    delete: db.prepare<unknown, [number, string, string]>(
      "DELETE FROM idempotency_keys WHERE lookup = ? AND scope = ? AND idempotency_key = ?",
    ),
    // Rows are appended in time order, so the expired ones are at the head: look only there.
    deleteOld: db.prepare<unknown, [number, number]>(
      `DELETE FROM idempotency_keys
       WHERE id IN (SELECT id FROM idempotency_keys ORDER BY id LIMIT ?) AND created_at < ?`,
    ),
  };
}

function prepareTransactionStatements(db: Database) {
  return {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    savepoint: db.prepare("SAVEPOINT one_write"),
    releaseSavepoint: db.prepare("RELEASE one_write"),
    rollbackToSavepoint: db.prepare("ROLLBACK TO one_write"),
    selectOne: db.prepare<{ one: number }, []>("SELECT 1 AS one"),
  };
}

// ---------------------------------------------------------------------------
// GET /tasks: range scans of one index per part of the order (domain.ts, taskListParts).

const LIST_PART_SQL: Record<TaskListPart, { where: string; key: string; direction: "ASC" | "DESC" }> = {
  ready: { where: "status = 'pending' AND blocked = 0", key: "priority_rank", direction: "ASC" },
  blocked: { where: "status = 'pending' AND blocked = 1", key: "priority_rank", direction: "ASC" },
  in_progress: { where: "status = 'in_progress'", key: "started_at", direction: "ASC" },
  completed: { where: "status = 'completed'", key: "completed_at", direction: "DESC" },
  cancelled: { where: "status = 'cancelled'", key: "completed_at", direction: "DESC" },
};

/**
 * The index that serves a part under these filters, named in the query (INDEXED BY) so that the
 * plan cannot drift to one that scans the table: a page then costs the same at any table size.
 * Claims in progress are few (one or a few per agent): the holder's are filtered from them.
 */
function listIndex(part: TaskListPart, byProject: boolean, byHolder: boolean): string {
  switch (part) {
    case "ready":
    case "blocked":
      return byProject ? "tasks_next" : "tasks_pending_everywhere";
    case "in_progress":
      return byProject ? "tasks_claimed" : "tasks_in_progress";
    case "completed":
      if (byHolder) return byProject ? "tasks_completed_by_in_project" : "tasks_completed_by";
      return byProject ? "tasks_completed" : "tasks_completed_everywhere";
    case "cancelled":
      return byProject ? "tasks_cancelled" : "tasks_cancelled_everywhere";
  }
}

interface ListQuery {
  sql: string;
  params: Array<string | number>;
}

/**
 * The SQL of one part of a page. From a cursor it is two range scans: the rest of the cursor's
 * sort key (ties broken by seq), then the keys after it (a row-value comparison would scan the
 * whole of the cursor's key from its start).
 */
export function listPartQueries(part: TaskListPart, query: TaskListQuery, after: TaskListPosition | null): ListQuery[] {
  const { where, key, direction } = LIST_PART_SQL[part];
  const conditions = [where];
  const params: Array<string | number> = [];
  if (query.projectId !== null) {
    conditions.push("project_id = ?");
    params.push(query.projectId);
  }
  if (query.claimedBy !== null) {
    conditions.push("claimed_by = ?");
    params.push(query.claimedBy);
  }
  // Filters on the part's range scan: the part's index still gives the order.
  if (query.parent) {
    conditions.push("parent_id = ?");
    params.push(query.parent);
  }
  for (const label of query.labels ?? []) {
    conditions.push("EXISTS (SELECT 1 FROM json_each(labels) WHERE value = ?)");
    params.push(label);
  }
  // A parent's children are few: found by their own index, and sorted.
  const index =
    query.parent && query.projectId !== null
      ? "tasks_children"
      : listIndex(part, query.projectId !== null, query.claimedBy !== null);
  const build = (extra: string[]): string =>
    `SELECT * FROM tasks INDEXED BY ${index} WHERE ${[...conditions, ...extra].join(" AND ")}
     ORDER BY ${key} ${direction}, seq ${direction} LIMIT ?`;
  if (after === null) return [{ sql: build([]), params }];
  const beyond = direction === "ASC" ? ">" : "<";
  return [
    { sql: build([`${key} = ?`, `seq ${beyond} ?`]), params: [...params, after.key, after.seq] },
    { sql: build([`${key} ${beyond} ?`]), params: [...params, after.key] },
  ];
}

/**
 * The SQL of a search: every word as a prefix (FTS5 `"word"*`, implicitly AND), ranked by bm25, ties
 * by insertion; the snippet from the column that matched best, matched words in [ ]. Ranking costs
 * each match, so only the SEARCH_RANKED_MATCHES most recently added are ranked: `cutoff` finds the
 * seq of the last of them (none: fewer match), in rowid order without ranking; `page` ranks from it.
 */
function searchQueries(query: TaskListQuery, words: readonly string[]): { cutoff: ListQuery; page: ListQuery } {
  const conditions = ["task_search MATCH ?"];
  const params: Array<string | number> = [words.map((word) => `"${word}"*`).join(" ")];
  const where = (condition: string, ...values: Array<string | number>) => {
    conditions.push(condition);
    params.push(...values);
  };
  if (query.projectId !== null) where("tasks.project_id = ?", query.projectId);
  if (query.status !== null) where("tasks.status = ?", query.status);
  if (query.ready !== null) where("tasks.blocked = ?", query.ready ? 0 : 1);
  if (query.claimedBy !== null) where("tasks.claimed_by = ?", query.claimedBy);
  if (query.parent) where("tasks.parent_id = ?", query.parent);
  for (const label of query.labels ?? []) where("EXISTS (SELECT 1 FROM json_each(tasks.labels) WHERE value = ?)", label);
  const matches = `FROM task_search JOIN tasks ON tasks.seq = task_search.rowid WHERE ${conditions.join(" AND ")}`;
  return {
    cutoff: {
      sql: `SELECT task_search.rowid AS seq ${matches} ORDER BY task_search.rowid DESC LIMIT 1 OFFSET ${SEARCH_RANKED_MATCHES - 1}`,
      params,
    },
    page: {
      sql: `SELECT tasks.*, snippet(task_search, -1, '[', ']', '…', 20) AS snippet ${matches} AND task_search.rowid >= ?
            ORDER BY task_search.rank, tasks.seq LIMIT ? OFFSET ?`,
      params,
    },
  };
}

function listPosition(part: TaskListPart, row: TaskRow): TaskListPosition {
  const key =
    part === "in_progress" ? row.started_at! : part === "ready" || part === "blocked" ? row.priority_rank : row.completed_at!;
  return { part, key, seq: row.seq };
}

interface QueuedWrite {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * 48 bits of SHA-256 of scope and key: the indexed column. Its index entries are small, so the
 * random inserts of client-chosen keys dirty few pages; a lookup still compares scope and key.
 */
function idempotencyLookup(scope: string, key: string): number {
  const digest = Bun.SHA256.hash(`${scope}\n${key}`);
  return Buffer.from(digest.buffer, digest.byteOffset, 6).readUIntBE(0, 6);
}

export class SqliteStorage implements Storage {
  private closed = false;
  /**
   * Idempotency-Keys whose first request is still running. They live in memory because the
   * database file is held by this process alone (locking_mode EXCLUSIVE): no other instance can
   * be running a request on it, and after a crash nothing is in flight.
   */
  private readonly inFlight = new InFlightKeys<KeyNote>();
  private readonly listeners = new Set<(change: TaskChange) => void>();

  private readonly taskReads: ReturnType<typeof prepareTaskReads>;
  private readonly nextTask: Record<TaskStatus, Statement<TaskRow, [string]>>;
  /** The next task not released by this agent (an agent's own release comes last). */
  private readonly nextNotReleasedBy: Record<TaskStatus, Statement<TaskRow, [string, string]>>;
  private readonly taskWrites: ReturnType<typeof prepareTaskWrites>;
  private readonly contentWrites: ReturnType<typeof prepareContentWrites>;
  private readonly dependencyEdits: ReturnType<typeof prepareDependencyEdits>;
  private readonly ids: ReturnType<typeof prepareIdStatements>;
  private readonly idempotencyKeys: ReturnType<typeof prepareIdempotencyStatements>;
  private readonly transaction: ReturnType<typeof prepareTransactionStatements>;

  /** Writes waiting for the next group commit (see runWrite). */
  private queuedWrites: QueuedWrite[] = [];
  private flushScheduled = false;
  /** The task changes of the group being written, heard by the subscribers once it commits. */
  private uncommittedChanges: TaskChange[] = [];

  constructor(
    private readonly db: Database,
    private readonly walFlusher?: WalFlusher,
  ) {
    this.taskReads = prepareTaskReads(db);
    this.nextTask = prepareNextTask<[string]>(db, false);
    this.nextNotReleasedBy = prepareNextTask<[string, string]>(db, true);
    this.taskWrites = prepareTaskWrites(db);
    this.contentWrites = prepareContentWrites(db);
    this.dependencyEdits = prepareDependencyEdits(db);
    this.ids = prepareIdStatements(db);
    this.idempotencyKeys = prepareIdempotencyStatements(db);
    this.transaction = prepareTransactionStatements(db);
  }

  // --- Writing: group commit ------------------------------------------------------------------

  /**
   * Runs `work` as one all-or-nothing write and resolves once it is committed.
   *
   * Group commit: the writes that arrive in the same turn of the event loop share one
   * BEGIN IMMEDIATE ... COMMIT, each inside its own savepoint, so one that fails (an ApiError, a
   * constraint) is rolled back alone while the others commit. A commit costs several system calls
   * and a WAL append; sharing it is what keeps allocations fast under concurrency. No promise
   * resolves before the COMMIT, so an acknowledged write is always a durable one; if the COMMIT
   * fails, every write of the group fails.
   */
  private runWrite<Result>(work: () => Result): Promise<Result> {
    if (this.closed) return Promise.reject(new Error("The SQLite database is closed."));
    return new Promise<Result>((resolve, reject) => {
      this.queuedWrites.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushWrites());
      }
    });
  }

  private flushWrites(): void {
    this.flushScheduled = false;
    const group = this.queuedWrites;
    this.queuedWrites = [];
    if (group.length === 0) return;
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    const { begin, commit, rollback, savepoint, releaseSavepoint, rollbackToSavepoint } = this.transaction;
    try {
      begin.run();
      for (const write of group) {
        const changesBefore = this.uncommittedChanges.length;
        savepoint.run();
        try {
          outcomes.push({ ok: true, value: write.work() });
          releaseSavepoint.run();
        } catch (error) {
          rollbackToSavepoint.run();
          releaseSavepoint.run();
          // Its events were rolled back with it: nobody hears of them.
          this.uncommittedChanges.length = changesBefore;
          outcomes.push({ ok: false, error });
        }
      }
      commit.run();
      this.walFlusher?.written();
    } catch (error) {
      this.uncommittedChanges = [];
      // SQLite may already have rolled the transaction back (I/O error, disk full).
      if (this.db.inTransaction) rollback.run();
      for (const write of group) write.reject(error);
      return;
    }
    for (let i = 0; i < group.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome.ok) group[i]!.resolve(outcome.value);
      else group[i]!.reject(outcome.error);
    }
    this.announceCommittedChanges();
  }

  private announceCommittedChanges(): void {
    const changes = this.uncommittedChanges;
    this.uncommittedChanges = [];
    for (const change of changes) {
      for (const listener of this.listeners) {
        try {
          listener(change);
        } catch {
          // A listener's failure is its own: the write is committed and the others still hear it.
        }
      }
    }
  }

  /** The write of one request: its effect, then (with a key) its stored response. */
  private idempotentWrite<Result>(effect: () => Result, idempotency: IdempotentWrite<Result> | undefined): Promise<Result> {
    return this.runWrite(() => {
      const result = effect();
      if (idempotency) this.storeResponse(idempotency.claim, idempotency.respond(result));
      return result;
    });
  }

  // --- Inside a write: tasks ------------------------------------------------------------------

  /** The task a ref names, or null; several projects have the ID and the ref names none: ambiguous. */
  private findTaskRow(ref: TaskRef): TaskRow | null {
    if (ref.projectId !== null) return this.taskReads.byRef.get(ref.taskId, ref.projectId);
    const rows = this.taskReads.byTaskId.all(ref.taskId);
    if (rows.length < 2) return rows[0] ?? null;
    const projects = this.taskReads.projectsOfTaskId.all(ref.taskId).map((row) => row.project_id);
    throw ambiguousTaskId(ref.taskId, projects);
  }

  private requireTaskRow(ref: TaskRef): TaskRow {
    const row = this.findTaskRow(ref);
    if (!row) throw taskNotFound(ref);
    return row;
  }

  private recordEvent(
    row: TaskRow,
    type: TaskEventType,
    change: { agentId: string | null; keyName: string | null; from: TaskStatus | null; at: string },
    details: Record<string, unknown>,
  ): void {
    const to = type === "updated" || type === "noted" ? null : row.status;
    const { lastInsertRowid } = this.taskWrites.insertEvent.run(
      row.seq,
      row.project_id,
      row.task_id,
      type,
      change.at,
      change.agentId,
      change.keyName,
      change.from,
      to,
      JSON.stringify(details),
    );
    if (this.listeners.size === 0) return;
    const event: TaskEvent = {
      event_id: Number(lastInsertRowid),
      project_id: row.project_id,
      task_id: row.task_id,
      type,
      at: change.at,
      agent_id: change.agentId,
      key_name: change.keyName,
      from_status: change.from,
      to_status: to,
      details,
    };
    this.uncommittedChanges.push({ event, task: toTask(row) });
  }

  private insertTasks(batch: readonly BatchTask[], now: Date, agentId: string | null, keyName: string | null): string[] {
    // Check and count the dependencies of each task, and check its parent, before inserting anything.
    const stored = (projectId: string, taskId: string) => this.taskReads.dependency.get(taskId, projectId);
    const unfinished = countUnfinishedDependencies(batch, stored);
    checkStoredParents(batch, stored);
    const firstNumbers = new Map<string, number>();
    for (const move of batchCounterMoves(batch)) {
      const first = this.moveCounter(move);
      if (move.take > 0) firstNumbers.set(move.projectId, first);
    }
    const tasks = nameBatch(batch, firstNumbers);
    for (const task of tasks) {
      if (this.taskReads.byRef.get(task.task_id, task.project_id)) throw batchTaskExists(batch, tasks, task);
    }
    const at = now.toISOString();
    // Keyed by project and task ID: a batch may hold tasks of one ID in two projects.
    const seqByTask = new Map<string, number>();
    tasks.forEach((task, i) => {
      const row = this.insertTaskRow(task, unfinished[i]!, at);
      seqByTask.set(`${task.project_id}\n${task.task_id}`, row.seq);
      this.recordEvent(row, "created", { agentId, keyName, from: null, at }, { status: task.status });
      const notes = (task.notes ?? []).map((note) => ({ at: note.at ?? at, by: note.by ?? agentId, text: note.text }));
      this.appendNotes(row, notes, null);
    });
    for (const task of tasks) {
      const dependentSeq = seqByTask.get(`${task.project_id}\n${task.task_id}`)!;
      for (const dependencyId of task.depends_on) {
        const dependencySeq =
          seqByTask.get(`${task.project_id}\n${dependencyId}`) ?? this.taskReads.byRef.get(dependencyId, task.project_id)!.seq;
        this.taskWrites.insertDependency.run(dependencySeq, dependentSeq);
      }
    }
    for (const count of batchChildCounts(tasks)) {
      this.contentWrites.countChildren.run(count.total, count.open, count.projectId, count.parentId);
    }
    return tasks.map((task) => task.task_id);
  }

  /** One task of a batch; one added finished was, in effect, started and finished now. */
  private insertTaskRow(task: NewTask, unfinished: number, at: string): TaskRow {
    const done = task.status === "pending" ? null : at;
    return this.taskWrites.insert.get(
      task.task_id,
      task.project_id,
      task.description,
      JSON.stringify(task.inputs),
      JSON.stringify(task.outputs),
      task.priority,
      priorityRank[task.priority],
      JSON.stringify(task.depends_on),
      unfinished,
      task.status,
      task.completion_notes,
      at,
      at,
      task.status === "completed" ? at : null,
      done,
      JSON.stringify(task.labels ?? []),
      task.parent_id ?? null,
      JSON.stringify(task.acceptance_criteria ?? []),
    )!;
  }

  /** Appends notes to a task, oldest first, and returns the task as it then is (`at`: its new updated_at, if any). */
  private appendNotes(row: TaskRow, notes: readonly TaskNote[], at: string | null): TaskRow {
    if (notes.length === 0) return row;
    for (const note of notes) this.contentWrites.insertNote.run(row.seq, note.at, note.by, note.text);
    return this.contentWrites.noted.get(notes.length, JSON.stringify(notes.at(-1)), at, row.seq)!;
  }

  /** A claim whose lease ran out by `now` ends here, before anything else reads the row. */
  private endLapsedClaim(row: TaskRow, now: Date): TaskRow {
    if (!leaseRanOut(row, now)) return row;
    const lost = lostClaimOf(row);
    const expired = this.taskWrites.expireOne.get(lost.lost_by, lost.lost_at, now.toISOString(), row.seq, lost.lost_by_key)!;
    this.recordExpiry(expired, now.toISOString());
    return expired;
  }

  private recordExpiry(row: TaskRow, at: string): void {
    this.recordEvent(row, "claim_expired", { agentId: null, keyName: null, from: "in_progress", at }, claimExpiredDetails(row));
  }

  private applyStatusChange(change: StatusChange): Task {
    const row = this.endLapsedClaim(this.requireTaskRow(change.ref), change.now);
    const claimEnd = needsClaimEnd(row, change) ? claimEndOf(this.taskReads.lastClaimEvents.all(row.seq)) : null;
    const decided = decideStatusChange(row, change, claimEnd);
    switch (decided.step) {
      case "claim":
        return this.claim(row, change);
      case "complete":
        return this.complete(row, change);
      case "reopen":
        return this.reopen(row, change);
      default:
        return this.giveBack(row, change, decided);
    }
  }

  private claim(row: TaskRow, change: StatusChange): Task {
    if (row.unfinished_deps > 0) throw claimBlocked(row, this.unfinishedDependencyIds(row));
    if (row.open_children > 0)
      throw childrenOpen(row.task_id, "in_progress", this.taskReads.children.all(row.project_id, row.task_id));
    const at = change.now.toISOString();
    const leaseExpiresAt = addSeconds(change.now, change.leaseSeconds);
    const lost = lostClaimAfterClaim(row, change.agentId, keyNameOf(change));
    const { changes } = this.taskWrites.claim.run(
      change.agentId,
      at,
      leaseExpiresAt,
      change.leaseSeconds,
      lost.lost_by,
      lost.lost_at,
      row.seq,
      keyNameOf(change),
      lost.lost_by_key,
    );
    if (changes === 0) throw lostRace(row.task_id, row.status, "in_progress");
    // The row read before with what the UPDATE's SET wrote: RETURNING * would have SQLite buffer the
    // row in a temporary table and copy it back, an eighth of the statement's cost.
    const claimed: TaskRow = {
      ...row,
      status: "in_progress",
      blocked: 0,
      claimed_by: change.agentId,
      claimed_by_key: keyNameOf(change),
      started_at: at,
      updated_at: at,
      lease_expires_at: leaseExpiresAt,
      lease_seconds: change.leaseSeconds,
      lost_by: lost.lost_by,
      lost_at: lost.lost_at,
      lost_by_key: lost.lost_by_key,
      released_by: null,
    };
    const by = { agentId: change.agentId, keyName: keyNameOf(change), from: "pending" as const, at };
    this.recordEvent(claimed, "claimed", by, { lease_expires_at: leaseExpiresAt });
    // The claim's answer carries the notes, so a resumed agent reads where work stopped.
    return this.withNotes(claimed);
  }

  private complete(row: TaskRow, change: StatusChange): Task {
    const task = toTask(row);
    const gate = criteriaOpen(task);
    if (gate) throw gate;
    if (row.open_children > 0)
      throw childrenOpen(row.task_id, "completed", this.taskReads.children.all(row.project_id, row.task_id));
    const at = change.now.toISOString();
    const completed = this.taskWrites.complete.get(change.completionNotes, at, row.seq);
    if (!completed) throw lostRace(row.task_id, row.status, "completed");
    this.finished(completed, -1);
    const details = { completion_notes: change.completionNotes };
    this.recordEvent(
      completed,
      "completed",
      { agentId: change.agentId, keyName: keyNameOf(change), from: "in_progress", at },
      details,
    );
    return toTask(completed);
  }

  /** A task finished (-1) or reopened (+1): its pending dependents and its parent count it. */
  private finished(row: TaskRow, by: -1 | 1): void {
    this.contentWrites.changeDependents.run(by, row.seq);
    if (row.parent_id !== null) this.contentWrites.countChildren.run(0, by, row.project_id, row.parent_id);
  }

  /** A release or a cancel: the reason becomes a note by the agent, and the event's details.reason. */
  private giveBack(row: TaskRow, change: StatusChange, step: Extract<StatusStep, { step: "release" | "cancel" }>): Task {
    const at = change.now.toISOString();
    const released =
      step.step === "release"
        ? this.taskWrites.release.get(at, step.forced ? null : change.agentId, row.seq)
        : this.contentWrites.cancel.get(at, row.seq, row.status);
    if (!released) throw lostRace(row.task_id, row.status, change.to);
    if (step.step === "cancel") this.finished(released, -1);
    const reason = change.completionNotes;
    const noted = reason === "" ? released : this.appendNotes(released, [{ at, by: change.agentId, text: reason }], null);
    const type = step.step === "cancel" ? "cancelled" : step.forced ? "force_released" : "released";
    const details = statusEventDetails(step, row.status, reason, row);
    this.recordEvent(noted, type, { agentId: change.agentId, keyName: keyNameOf(change), from: row.status, at }, details);
    return toTask(noted);
  }

  /** Back to pending from completed or cancelled: it waits again for what is not finished. */
  private reopen(row: TaskRow, change: StatusChange): Task {
    const parent = row.parent_id === null ? null : this.taskReads.byRef.get(row.parent_id, row.project_id);
    if (parent?.status === "completed") throw parentFinished(row.task_id, row.status, parent.task_id);
    const at = change.now.toISOString();
    const unfinished = this.taskReads.unfinishedCount.get(row.seq)!.count;
    const reopened = this.contentWrites.reopen.get(at, unfinished, row.seq, row.status);
    if (!reopened) throw lostRace(row.task_id, row.status, "pending");
    this.finished(reopened, 1);
    const details = statusEventDetails({ step: "reopen" }, row.status, "", null);
    this.recordEvent(
      reopened,
      "reopened",
      { agentId: change.agentId, keyName: keyNameOf(change), from: row.status, at },
      details,
    );
    return toTask(reopened);
  }

  /** The task with every note, oldest first (none read when it has none). */
  private withNotes(row: TaskRow): Task {
    return { ...toTask(row), notes: row.notes_count === 0 ? [] : this.taskReads.notes.all(row.seq) };
  }

  /** The task's dependencies that are not finished (completed or cancelled), each once. */
  private unfinishedDependencyIds(row: TaskRow): string[] {
    return [...new Set(JSON.parse(row.depends_on) as string[])].filter(
      (id) => !isFinished(this.taskReads.byRef.get(id, row.project_id)?.status ?? "pending"),
    );
  }

  private applyLeaseRenewal(renewal: LeaseRenewal): Task {
    const row = this.endLapsedClaim(this.requireTaskRow(renewal.ref), renewal.now);
    checkRenewal(row, renewal.agentId, keyNameOf(renewal));
    const seconds = renewalLeaseSeconds(renewal.leaseSeconds, row.lease_seconds);
    const renewed = this.taskWrites.renew.get(addSeconds(renewal.now, seconds), row.seq);
    if (!renewed) throw lostRace(row.task_id, row.status, "in_progress");
    return toTask(renewed);
  }

  private applyEdit(edit: TaskEdit): Task {
    const row = this.requireTaskRow(edit.ref);
    const task = toTask(row);
    const details = editChanges(task, edit);
    if (details === null) return task;
    if (details.parent_id?.to)
      checkEditedParent(row, details.parent_id.to, this.taskReads.ancestors.all(row.project_id, details.parent_id.to));
    const priority = edit.priority ?? row.priority;
    const at = edit.now.toISOString();
    const edited = this.taskWrites.edit.get(
      priority,
      priorityRank[priority],
      edit.description ?? row.description,
      JSON.stringify(details.labels?.to ?? task.labels),
      JSON.stringify(details.acceptance_criteria?.to ?? task.acceptance_criteria),
      details.parent_id ? details.parent_id.to : row.parent_id,
      at,
      row.seq,
    );
    if (!edited) throw cannotEditCompleted(row.task_id, row.status);
    if (details.parent_id) this.moveChild(edited, details.parent_id.from, details.parent_id.to);
    const done = details.depends_on ? this.replaceDependencies(edited, task.depends_on, details.depends_on.to) : edited;
    this.recordEvent(done, "updated", { agentId: edit.agentId, keyName: keyNameOf(edit), from: null, at }, details);
    return toTask(done);
  }

  /** A child (open: an edit never moves a finished task) leaves one parent's counts for another's. */
  private moveChild(row: TaskRow, from: string | null, to: string | null): void {
    if (from !== null) this.contentWrites.countChildren.run(-1, -1, row.project_id, from);
    if (to !== null) this.contentWrites.countChildren.run(1, 1, row.project_id, to);
  }

  private appendNote(note: NewNote): { note: TaskNote; task: Task } {
    const row = this.requireTaskRow(note.ref);
    const at = note.now.toISOString();
    const added = { at, by: note.agentId, text: note.text };
    const noted = this.appendNotes(row, [added], at);
    this.recordEvent(noted, "noted", { agentId: note.agentId, keyName: keyNameOf(note), from: null, at }, {});
    return { note: added, task: toTask(noted) };
  }

  /**
   * Gives the task a new depends_on once domain.ts has checked it against the stored graph: its
   * dependency rows and its count of unfinished ones follow, so it is ready or blocked at once.
   */
  private replaceDependencies(row: TaskRow, before: readonly string[], after: readonly string[]): TaskRow {
    const reachable = this.dependencyEdits.reachable.all(row.project_id, JSON.stringify(after)).map((node) => ({
      task_id: node.task_id,
      status: node.status,
      depends_on: JSON.parse(node.depends_on) as string[],
    }));
    const unfinished = checkEditedDependencies(row, after, reachable);
    for (const id of new Set(before)) {
      const dependency = this.taskReads.byRef.get(id, row.project_id);
      if (dependency) this.dependencyEdits.deleteDependency.run(dependency.seq, row.seq);
    }
    for (const id of new Set(after))
      this.taskWrites.insertDependency.run(this.taskReads.byRef.get(id, row.project_id)!.seq, row.seq);
    return this.dependencyEdits.setDependencies.get(JSON.stringify(after), unfinished, row.seq)!;
  }

  private expireDueLeases(now: Date): number {
    const at = now.toISOString();
    const expired = this.taskWrites.expireDue.all(at, at);
    for (const row of expired) this.recordExpiry(row, at);
    return expired.length;
  }

  // --- Inside a write: IDs and idempotency ----------------------------------------------------

  /** Advances the counter by `count` and returns the first new number. */
  private takeNumbers(projectId: string, artifactType: string, count: number): number {
    const last = this.ids.bumpCounter.get(projectId, artifactType, count, count)!.last_assigned;
    if (last > MAX_ID_NUMBER) throw idsExhausted(projectId, artifactType);
    return last - count + 1;
  }

  /** Raises the counter to at least `atLeast`, then advances it by `take`; returns the first number taken. */
  private moveCounter({ projectId, artifactType, atLeast, take }: BatchCounterMove): number {
    const last = this.ids.moveCounter.get(projectId, artifactType, atLeast, take)!.last_assigned;
    if (last > MAX_ID_NUMBER) throw idsExhausted(projectId, artifactType);
    return last - take + 1;
  }

  private storeResponse(claim: IdempotencyClaim, response: StoredResponse): void {
    const claimed = this.inFlight.current(claim);
    const { lookup, replacesExpiredRow } = claimed.note;
    if (replacesExpiredRow) this.idempotencyKeys.delete.run(lookup, claim.scope, claim.key);
    this.idempotencyKeys.insert.run(
      lookup,
      claim.scope,
      claim.key,
      claimed.fingerprint,
      response.status,
      response.body,
      claimed.claimedAt.getTime(),
    );
    // Still inside the same synchronous turn as the commit: no other request sees the gap.
    this.inFlight.release(claim);
  }

  private insertReservation(reservation: NewReservation): Reservation {
    const first = this.takeNumbers(reservation.projectId, reservation.artifactType, reservation.count);
    const expiresAt = reservation.expiresAt.toISOString();
    this.ids.insertReservation.run(
      reservation.reservationId,
      reservation.projectId,
      reservation.artifactType,
      first,
      reservation.count,
      reservation.createdAt.toISOString(),
      expiresAt,
    );
    return {
      reservationId: reservation.reservationId,
      projectId: reservation.projectId,
      artifactType: reservation.artifactType,
      firstNumber: first,
      count: reservation.count,
      expiresAt,
    };
  }

  private raiseCounter(projectId: string, artifactType: string, lastAssigned: number): number {
    const current = this.ids.selectCounter.get(projectId, artifactType)?.last_assigned ?? 0;
    checkCounterRaise(projectId, artifactType, current, lastAssigned);
    this.ids.setCounter.run(projectId, artifactType, lastAssigned);
    return lastAssigned;
  }

  // --- Reading tasks --------------------------------------------------------------------------

  async getTask(ref: TaskRef): Promise<Task | null> {
    const row = this.findTaskRow(ref);
    return row ? this.withNotes(row) : null;
  }

  async findNextTask(projectId: string, status: TaskStatus, agentId: string | null = null): Promise<Task | null> {
    const row = this.pickNextTask(projectId, status, agentId);
    return row ? toTask(row) : null;
  }

  /**
   * GET /tasks/next's pick, for findNextTask and claimNextTask alike: the first ready task in order;
   * the agent that released it gets it back only when no other task is ready.
   */
  private pickNextTask(projectId: string, status: TaskStatus, agentId: string | null): TaskRow | null {
    const row = this.nextTask[status].get(projectId);
    if (row && agentId !== null && row.released_by === agentId) {
      return this.nextNotReleasedBy[status].get(projectId, agentId) ?? row;
    }
    return row;
  }

  async claimNextTask(claim: NextClaim, idempotency?: IdempotentWrite<Task | null>): Promise<Task | null> {
    // The read and the claim run in one synchronous turn of the one connection: no writer between them.
    // (One UPDATE … WHERE seq = (SELECT …) measured no faster, and would repeat the claim's rules in SQL.)
    return this.idempotentWrite(() => {
      const row = this.pickNextTask(claim.projectId, "pending", claim.agentId);
      return row ? this.claim(row, claimOfNext(claim, row)) : null;
    }, idempotency);
  }

  async listTasks(query: TaskListQuery): Promise<TaskPage> {
    if (query.q) return this.searchTasks(query, query.q);
    const parts = taskListParts(query);
    const cursor = query.cursor === null ? null : decodeTaskCursor(query.cursor, query);
    const first = cursor === null ? 0 : parts.indexOf(cursor.part);
    if (first < 0) throw validationError("cursor was made for other filters");
    const found: Array<{ part: TaskListPart; row: TaskRow }> = [];
    // One row more than asked for tells whether there is a next page.
    for (let i = first; i < parts.length; i++) {
      const part = parts[i]!;
      for (const { sql, params } of listPartQueries(part, query, i === first ? cursor : null)) {
        if (found.length > query.limit) break;
        const rows = this.db.query<TaskRow, Array<string | number>>(sql).all(...params, query.limit + 1 - found.length);
        for (const row of rows) found.push({ part, row });
      }
    }
    const page = found.slice(0, query.limit);
    const last = page.at(-1);
    const nextCursor = found.length > query.limit && last ? encodeTaskCursor(listPosition(last.part, last.row), query) : null;
    return { tasks: page.map(({ row }) => toTask(row)), nextCursor };
  }

  /** GET /tasks?q=: the best matches first (bm25), by the index of their words (task_search). */
  private searchTasks(query: TaskListQuery, q: string): TaskPage {
    const offset = query.cursor === null ? 0 : decodeSearchCursor(query.cursor, query);
    const { cutoff, page } = searchQueries(query, searchWords(q));
    const from = this.db.query<{ seq: number }, Array<string | number>>(cutoff.sql).get(...cutoff.params)?.seq ?? 0;
    const rows = this.db
      .query<TaskRow & { snippet: string }, Array<string | number>>(page.sql)
      .all(...page.params, from, query.limit + 1, offset);
    return {
      tasks: rows.slice(0, query.limit).map((row) => ({ ...toTask(row), match: { snippet: clipSnippet(row.snippet) } })),
      nextCursor: rows.length > query.limit ? encodeSearchCursor(offset + query.limit, query) : null,
    };
  }

  async listProjects(): Promise<ProjectSummary[]> {
    return this.taskReads.projects.all();
  }

  async listTaskEvents(ref: TaskRef): Promise<TaskEvent[]> {
    const row = this.requireTaskRow(ref);
    return this.taskReads.events.all(row.seq).map(toEvent);
  }

  // --- Changing tasks -------------------------------------------------------------------------

  async addTasks(
    tasks: readonly BatchTask[],
    now: Date,
    agentId: string | null,
    idempotency?: IdempotentWrite<string[]>,
    keyName: string | null = null,
  ): Promise<string[]> {
    return this.idempotentWrite(() => this.insertTasks(tasks, now, agentId, keyName), idempotency);
  }

  async changeTaskStatus(change: StatusChange, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.idempotentWrite(() => this.applyStatusChange(change), idempotency);
  }

  async renewLease(renewal: LeaseRenewal, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.idempotentWrite(() => this.applyLeaseRenewal(renewal), idempotency);
  }

  async updateTask(edit: TaskEdit, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.idempotentWrite(() => this.applyEdit(edit), idempotency);
  }

  async addNote(note: NewNote, idempotency?: IdempotentWrite<{ note: TaskNote; task: Task }>) {
    return this.idempotentWrite(() => this.appendNote(note), idempotency);
  }

  async expireLeases(now: Date): Promise<number> {
    return this.runWrite(() => this.expireDueLeases(now));
  }

  subscribe(listener: (change: TaskChange) => void): () => void {
    // A wrapper of its own, so the same function subscribed twice is two subscriptions.
    const subscription = (change: TaskChange) => listener(change);
    this.listeners.add(subscription);
    return () => this.listeners.delete(subscription);
  }

  // --- IDs ------------------------------------------------------------------------------------

  async allocateId(projectId: string, artifactType: string, idempotency?: IdempotentWrite<number>): Promise<number> {
    return this.idempotentWrite(() => this.takeNumbers(projectId, artifactType, 1), idempotency);
  }

  async reserveIds(reservation: NewReservation, idempotency?: IdempotentWrite<Reservation>): Promise<Reservation> {
    return this.idempotentWrite(() => this.insertReservation(reservation), idempotency);
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    const row = this.ids.selectReservation.get(reservationId);
    return row ? toReservation(row) : null;
  }

  async raiseIdCounter(
    projectId: string,
    artifactType: string,
    lastAssigned: number,
    idempotency?: IdempotentWrite<number>,
  ): Promise<number> {
    return this.idempotentWrite(() => this.raiseCounter(projectId, artifactType, lastAssigned), idempotency);
  }

  async listRegistry(projectId: string | null, now: Date): Promise<{ counters: IdCounter[]; reservations: Reservation[] }> {
    const counters = this.ids.counters.all(projectId);
    const reservations = this.ids.activeReservations.all(now.toISOString(), projectId).map(toReservation);
    return { counters, reservations };
  }

  // --- Idempotency ----------------------------------------------------------------------------

  async claimIdempotencyKey(request: IdempotencyRequest): Promise<IdempotencyOutcome> {
    const busy = this.inFlight.busy(request);
    if (busy) return { outcome: busy };
    const lookup = idempotencyLookup(request.scope, request.key);
    const row = this.idempotencyKeys.select.get(lookup, request.scope, request.key);
    if (row && row.created_at > request.now.getTime() - request.retentionMs) {
      if (row.fingerprint !== request.fingerprint) return { outcome: "mismatch" };
      return { outcome: "replay", response: { status: row.response_status, body: row.response_body } };
    }
    return { outcome: "claimed", claim: this.inFlight.claim(request, { lookup, replacesExpiredRow: row !== null }) };
  }

  async saveIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    await this.runWrite(() => this.storeResponse(claim, response));
  }

  async releaseIdempotencyKey(claim: IdempotencyClaim): Promise<void> {
    this.inFlight.release(claim);
  }

  async deleteIdempotencyKeysBefore(before: Date): Promise<number> {
    // In batches, yielding between them, so a large purge never stalls requests.
    let deleted = 0;
    for (;;) {
      if (this.closed) return deleted;
      const changes = await this.runWrite(() => this.idempotencyKeys.deleteOld.run(PURGE_BATCH_SIZE, before.getTime()).changes);
      deleted += changes;
      if (changes < PURGE_BATCH_SIZE) return deleted;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  // --- Keys (sqlite-keys.ts) -----------------------------------------------------------------

  async addApiKey(key: NewApiKey): Promise<ApiKeyRecord> {
    return this.runWrite(() => insertApiKey(this.db, key));
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return selectApiKeys(this.db);
  }

  async findApiKey(hash: string): Promise<ApiKeyRecord | null> {
    return selectActiveApiKey(this.db, hash);
  }

  async revokeApiKey(name: string, now: Date): Promise<ApiKeyRecord> {
    return this.runWrite(() => markApiKeyRevoked(this.db, name, now));
  }

  async touchApiKey(name: string, now: Date): Promise<void> {
    await this.runWrite(() => markApiKeyUsed(this.db, name, now));
  }

  // --- Keeping the data (sqlite-dump.ts) ------------------------------------------------------

  async openBackup(): Promise<BackupFile> {
    return openSqliteBackup(this.db);
  }

  async openSnapshot(): Promise<DumpSnapshot> {
    return openSqliteSnapshot(this.db);
  }

  async restore(lines: AsyncIterable<NumberedLine>): Promise<DumpCounts> {
    return restoreSqlite(this.db, lines);
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error("The SQLite database is closed.");
    this.transaction.selectOne.get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushWrites();
    this.closed = true;
    await this.walFlusher?.close();
    // Checkpoint the WAL into the main file so a clean stop leaves one self-contained file.
    try {
      this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      // A statement left unfinalized keeps the connection, and its exclusive lock on the file, alive.
      for (const statements of [
        this.taskReads,
        this.nextTask,
        this.nextNotReleasedBy,
        this.taskWrites,
        this.contentWrites,
        this.dependencyEdits,
        this.ids,
        this.idempotencyKeys,
        this.transaction,
      ]) {
        for (const statement of Object.values(statements)) statement.finalize();
      }
      this.db.close(false);
    }
  }
}
