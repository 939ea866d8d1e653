// The SQLite storage (bun:sqlite). All of the service's SQL for SQLite lives here and in
// schema/sqlite.sql. One connection, holding the file exclusively. Every write runs synchronously
// inside a BEGIN IMMEDIATE transaction (shared with the writes of the same event-loop turn, each in
// its own savepoint: see runWrite), so a read and the write that depends on it never interleave
// with another writer.

import { Database, type Statement } from "bun:sqlite";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
// Imported as text so that a compiled binary carries it (no file beside the binary to read).
import schemaSql from "./schema/sqlite.sql" with { type: "text" };
import {
  ApiError,
  countUnfinishedDependencies,
  invalidTransition,
  isAllowedTransition,
  MAX_ID_NUMBER,
  priorityRank,
  taskNotFound,
  validationError,
  type NewReservation,
  type NewTask,
  type Priority,
  type Reservation,
  type StatusChange,
  type Task,
  type TaskStatus,
} from "../domain.ts";
import type {
  IdempotencyClaim,
  IdempotencyOutcome,
  IdempotencyRequest,
  IdempotentWrite,
  Storage,
  StoredResponse,
} from "./storage.ts";

export const SCHEMA_VERSION = 1;
const START_LOCK_TIMEOUT_MS = 2000;
const BUSY_TIMEOUT_MS = 5000;
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
const WAL_FLUSH_INTERVAL_MS = 10;

export type SyncMode = "normal" | "full";

export interface SqliteOptions {
  /** A file path, or `:memory:`. The directory of a file path is created. */
  path: string;
  /** `normal`: a committed write survives a crash of the process; `full`: also a power loss. */
  sync?: SyncMode;
}

interface TaskRow {
  seq: number;
  task_id: string;
  project_id: string;
  description: string;
  inputs: string;
  outputs: string;
  priority: Priority;
  depends_on: string;
  unfinished_deps: number;
  status: TaskStatus;
  claimed_by: string | null;
  completion_notes: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
}

interface ReservationRow {
  reservation_id: string;
  project_id: string;
  artifact_type: string;
  first_number: number;
  count: number;
  expires_at: string;
}

interface IdempotencyRow {
  fingerprint: string;
  response_status: number;
  response_body: string;
  created_at: number;
}

/** A request holding an Idempotency-Key that has not answered yet. */
interface InFlightKey {
  fingerprint: string;
  token: string;
  claimedAt: number;
  leaseUntil: number;
  lookup: number;
  /** An expired row of the same key is still stored and must make way. */
  replacesExpiredRow: boolean;
}

function toTask(row: TaskRow): Task {
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
    completion_notes: row.completion_notes,
    created_at: row.created_at,
    updated_at: row.updated_at,
    started_at: row.started_at,
    completed_at: row.completed_at,
  };
}

function toReservation(row: ReservationRow): Reservation {
  return {
    reservationId: row.reservation_id,
    projectId: row.project_id,
    artifactType: row.artifact_type,
    firstNumber: row.first_number,
    count: row.count,
    expiresAt: row.expires_at,
  };
}

function applySchema(db: Database): void {
  const current = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
  if (current > SCHEMA_VERSION) {
    throw new Error(
      `The database has schema version ${current}, newer than this service knows (${SCHEMA_VERSION}); run a newer tracker.`,
    );
  }
  if (current === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.run(schemaSql);
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

export async function openSqliteStorage(options: SqliteOptions): Promise<SqliteStorage> {
  const inMemory = options.path === ":memory:";
  if (!inMemory) mkdirSync(dirname(options.path), { recursive: true });
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

const PURGE_BATCH_SIZE = 2000;

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

interface QueuedWrite {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

function inFlightSlot(scope: string, key: string): string {
  return `${scope}\n${key}`;
}

/**
 * 48 bits of SHA-256 of scope and key: the indexed column. Its index entries are small, so the
 * random inserts of client-chosen keys dirty few pages; a lookup still compares scope and key.
 */
function idempotencyLookup(slot: string): number {
  return createHash("sha256").update(slot).digest().readUIntBE(0, 6);
}

export class SqliteStorage implements Storage {
  private closed = false;
  /**
   * Idempotency-Keys whose first request is still running. They live in memory because the
   * database file is held by this process alone (locking_mode EXCLUSIVE): no other instance can
   * be running a request on it, and after a crash nothing is in flight.
   */
  private readonly inFlight = new Map<string, InFlightKey>();

  private readonly selectTask: Statement<TaskRow, [string]>;
  private readonly selectNextTask: Statement<TaskRow, [string, string]>;
  private readonly selectTaskStatus: Statement<{ seq: number; project_id: string; status: TaskStatus }, [string]>;
  private readonly insertTask: Statement<unknown, [string, string, string, string, string, string, number, string, number, string, string]>;
  private readonly insertDependency: Statement<unknown, [number, number]>;
  private readonly claimTask: Statement<TaskRow, [string | null, string, string, number]>;
  private readonly completeTask: Statement<TaskRow, [string, string, string, number]>;
  private readonly releaseTask: Statement<TaskRow, [string, number]>;
  private readonly decrementDependents: Statement<unknown, [number]>;

  private readonly bumpCounter: Statement<{ last_assigned: number }, [string, string, number, number]>;
  private readonly selectCounter: Statement<{ last_assigned: number }, [string, string]>;
  private readonly setCounter: Statement<unknown, [string, string, number]>;
  private readonly insertReservation: Statement<unknown, [string, string, string, number, number, string, string]>;
  private readonly selectReservation: Statement<ReservationRow, [string]>;

  private readonly selectIdempotencyKey: Statement<IdempotencyRow, [number, string, string]>;
  private readonly insertIdempotencyKey: Statement<unknown, [number, string, string, string, number, string, number]>;
  private readonly deleteIdempotencyKey: Statement<unknown, [number, string, string]>;
  private readonly deleteOldIdempotencyKeys: Statement<unknown, [number, number]>;
  private readonly selectOne: Statement<{ one: number }, []>;

  private readonly begin: Statement<unknown, []>;
  private readonly commit: Statement<unknown, []>;
  private readonly rollback: Statement<unknown, []>;
  private readonly savepoint: Statement<unknown, []>;
  private readonly releaseSavepoint: Statement<unknown, []>;
  private readonly rollbackToSavepoint: Statement<unknown, []>;

  /** Writes waiting for the next group commit (see runWrite). */
  private queuedWrites: QueuedWrite[] = [];
  private flushScheduled = false;

  constructor(
    private readonly db: Database,
    private readonly walFlusher?: WalFlusher,
  ) {
    this.selectTask = db.prepare("SELECT * FROM tasks WHERE task_id = ?");
    // unfinished_deps = 0 holds for every task that is not pending (see the schema's CHECK).
    this.selectNextTask = db.prepare(
      "SELECT * FROM tasks WHERE project_id = ? AND status = ? AND unfinished_deps = 0 ORDER BY priority_rank, seq LIMIT 1",
    );
    this.selectTaskStatus = db.prepare("SELECT seq, project_id, status FROM tasks WHERE task_id = ?");
    this.insertTask = db.prepare(
      `INSERT INTO tasks (task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                          unfinished_deps, status, completion_notes, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', '', ?, ?)`,
    );
    this.insertDependency = db.prepare(
      "INSERT OR IGNORE INTO task_dependencies (dependency_seq, dependent_seq) VALUES (?, ?)",
    );
    // Compare-and-set: each names the status it expects, so a lost race changes no row.
    this.claimTask = db.prepare(
      `UPDATE tasks SET status = 'in_progress', claimed_by = ?, started_at = ?, updated_at = ?
       WHERE seq = ? AND status = 'pending' AND unfinished_deps = 0 RETURNING *`,
    );
    this.completeTask = db.prepare(
      `UPDATE tasks SET status = 'completed', completion_notes = ?, completed_at = ?, updated_at = ?
       WHERE seq = ? AND status = 'in_progress' RETURNING *`,
    );
    this.releaseTask = db.prepare(
      `UPDATE tasks SET status = 'pending', claimed_by = NULL, started_at = NULL, updated_at = ?
       WHERE seq = ? AND status = 'in_progress' RETURNING *`,
    );
    this.decrementDependents = db.prepare(
      `UPDATE tasks SET unfinished_deps = unfinished_deps - 1
       WHERE seq IN (SELECT dependent_seq FROM task_dependencies WHERE dependency_seq = ?)`,
    );

    this.bumpCounter = db.prepare(
      `INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES (?, ?, ?)
       ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = last_assigned + ?
       RETURNING last_assigned`,
    );
    this.selectCounter = db.prepare(
      "SELECT last_assigned FROM id_counters WHERE project_id = ? AND artifact_type = ?",
    );
    this.setCounter = db.prepare(
      `INSERT INTO id_counters (project_id, artifact_type, last_assigned) VALUES (?, ?, ?)
       ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = excluded.last_assigned`,
    );
    this.insertReservation = db.prepare(
      `INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.selectReservation = db.prepare(
      `SELECT reservation_id, project_id, artifact_type, first_number, count, expires_at
       FROM reservations WHERE reservation_id = ?`,
    );

    this.selectIdempotencyKey = db.prepare(
      `SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys
       WHERE lookup = ? AND scope = ? AND idempotency_key = ?`,
    );
    this.insertIdempotencyKey = db.prepare(
      `INSERT INTO idempotency_keys (lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.deleteIdempotencyKey = db.prepare(
      "DELETE FROM idempotency_keys WHERE lookup = ? AND scope = ? AND idempotency_key = ?",
    );
    // Rows are appended in time order, so the expired ones are at the head: look only there.
    this.deleteOldIdempotencyKeys = db.prepare(
      `DELETE FROM idempotency_keys
       WHERE id IN (SELECT id FROM idempotency_keys ORDER BY id LIMIT ?) AND created_at < ?`,
    );
    this.selectOne = db.prepare("SELECT 1 AS one");

    this.begin = db.prepare("BEGIN IMMEDIATE");
    this.commit = db.prepare("COMMIT");
    this.rollback = db.prepare("ROLLBACK");
    this.savepoint = db.prepare("SAVEPOINT one_write");
    this.releaseSavepoint = db.prepare("RELEASE one_write");
    this.rollbackToSavepoint = db.prepare("ROLLBACK TO one_write");
  }

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
    try {
      this.begin.run();
      for (const write of group) {
        this.savepoint.run();
        try {
          outcomes.push({ ok: true, value: write.work() });
          this.releaseSavepoint.run();
        } catch (error) {
          this.rollbackToSavepoint.run();
          this.releaseSavepoint.run();
          outcomes.push({ ok: false, error });
        }
      }
      this.commit.run();
      this.walFlusher?.written();
    } catch (error) {
      // SQLite may already have rolled the transaction back (I/O error, disk full).
      if (this.db.inTransaction) this.rollback.run();
      for (const write of group) write.reject(error);
      return;
    }
    for (let i = 0; i < group.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome.ok) group[i]!.resolve(outcome.value);
      else group[i]!.reject(outcome.error);
    }
  }

  /** The write of one request: its effect, then (with a key) its stored response. */
  private idempotentWrite<Result>(effect: () => Result, idempotency: IdempotentWrite<Result> | undefined): Promise<Result> {
    return this.runWrite(() => {
      const result = effect();
      if (idempotency) this.storeResponse(idempotency, result);
      return result;
    });
  }

  /** Inside a write: advances the counter by `count` and returns the first new number. */
  private takeNumbers(projectId: string, artifactType: string, count: number): number {
    const last = this.bumpCounter.get(projectId, artifactType, count, count)!.last_assigned;
    if (last > MAX_ID_NUMBER) {
      throw new ApiError("conflict", `The ${artifactType} IDs of project ${projectId} are exhausted`);
    }
    return last - count + 1;
  }

  /** Inside a write: store its response with the effect, or give the effect up. */
  private storeResponse<Result>(idempotency: IdempotentWrite<Result>, result: Result): void {
    this.saveResponse(idempotency.claim, idempotency.respond(result));
  }

  private saveResponse(claim: IdempotencyClaim, response: StoredResponse): void {
    const slot = inFlightSlot(claim.scope, claim.key);
    const inFlight = this.inFlight.get(slot);
    if (inFlight?.token !== claim.token) {
      // The lease ran out and another request took the key over: it owns the effect now.
      throw new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still running; retry later");
    }
    if (inFlight.replacesExpiredRow) this.deleteIdempotencyKey.run(inFlight.lookup, claim.scope, claim.key);
    this.insertIdempotencyKey.run(
      inFlight.lookup,
      claim.scope,
      claim.key,
      inFlight.fingerprint,
      response.status,
      response.body,
      inFlight.claimedAt,
    );
    // Still inside the same synchronous turn as the commit: no other request sees the gap.
    this.inFlight.delete(slot);
  }

  private insertReservationRow(reservation: NewReservation): Reservation {
    const first = this.takeNumbers(reservation.projectId, reservation.artifactType, reservation.count);
    const expiresAt = reservation.expiresAt.toISOString();
    this.insertReservation.run(
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
    const current = this.selectCounter.get(projectId, artifactType)?.last_assigned ?? 0;
    if (current > lastAssigned) {
      throw new ApiError(
        "conflict",
        `Cannot lower the ${artifactType} counter of project ${projectId} from ${current} to ${lastAssigned}`,
      );
    }
    this.setCounter.run(projectId, artifactType, lastAssigned);
    return lastAssigned;
  }

  private insertTasks(tasks: readonly NewTask[], now: Date): string[] {
    for (const task of tasks) {
      if (this.selectTaskStatus.get(task.task_id)) throw new ApiError("conflict", `Task already exists: ${task.task_id}`);
    }
    // Count the unfinished dependencies of each task before inserting anything.
    const unfinished = countUnfinishedDependencies(tasks, (taskId) => this.selectTaskStatus.get(taskId));
    const timestamp = now.toISOString();
    const seqById = new Map<string, number>();
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i]!;
      const { lastInsertRowid } = this.insertTask.run(
        task.task_id,
        task.project_id,
        task.description,
        JSON.stringify(task.inputs),
        JSON.stringify(task.outputs),
        task.priority,
        priorityRank[task.priority],
        JSON.stringify(task.depends_on),
        unfinished[i]!,
        timestamp,
        timestamp,
      );
      seqById.set(task.task_id, Number(lastInsertRowid));
    }
    for (const task of tasks) {
      const dependentSeq = seqById.get(task.task_id)!;
      for (const dependencyId of task.depends_on) {
        const dependencySeq = seqById.get(dependencyId) ?? this.selectTaskStatus.get(dependencyId)!.seq;
        this.insertDependency.run(dependencySeq, dependentSeq);
      }
    }
    return tasks.map((task) => task.task_id);
  }

  private applyStatusChange(change: StatusChange): Task {
    const { taskId, to } = change;
    const row = this.selectTask.get(taskId);
    if (!row) throw taskNotFound(taskId);
    const from = row.status;
    if (!isAllowedTransition(from, to)) throw invalidTransition(taskId, from, to);
    const now = change.now.toISOString();
    let updated: TaskRow | null;
    if (to === "in_progress") {
      if (row.unfinished_deps > 0) throw invalidTransition(taskId, from, to, this.describeUnfinished(row));
      updated = this.claimTask.get(change.agentId, now, now, row.seq);
    } else if (to === "completed") {
      updated = this.completeTask.get(change.completionNotes, now, now, row.seq);
      if (updated) this.decrementDependents.run(row.seq);
    } else {
      updated = this.releaseTask.get(now, row.seq);
    }
    // Unreachable inside one IMMEDIATE transaction; kept so the compare-and-set stays honest.
    if (!updated) throw invalidTransition(taskId, from, to, "another request changed it first");
    return toTask(updated);
  }

  private describeUnfinished(row: TaskRow): string {
    const waiting = [...new Set(JSON.parse(row.depends_on) as string[])].filter(
      (id) => this.selectTaskStatus.get(id)?.status !== "completed",
    );
    return `${waiting.join(", ")} ${waiting.length === 1 ? "is" : "are"} not completed`;
  }

  async claimIdempotencyKey(request: IdempotencyRequest): Promise<IdempotencyOutcome> {
    const { scope, key, fingerprint } = request;
    const now = request.now.getTime();
    const slot = inFlightSlot(scope, key);
    const inFlight = this.inFlight.get(slot);
    if (inFlight && inFlight.leaseUntil > now) {
      return inFlight.fingerprint === fingerprint ? { outcome: "in_flight" } : { outcome: "mismatch" };
    }
    const lookup = idempotencyLookup(slot);
    const row = this.selectIdempotencyKey.get(lookup, scope, key);
    if (row && row.created_at > now - request.retentionMs) {
      if (row.fingerprint !== fingerprint) return { outcome: "mismatch" };
      return { outcome: "replay", response: { status: row.response_status, body: row.response_body } };
    }
    const token = crypto.randomUUID();
    this.inFlight.set(slot, {
      fingerprint,
      token,
      claimedAt: now,
      leaseUntil: now + request.leaseMs,
      lookup,
      replacesExpiredRow: row !== null,
    });
    return { outcome: "claimed", claim: { scope, key, token } };
  }

  async getTask(taskId: string): Promise<Task | null> {
    const row = this.selectTask.get(taskId);
    return row ? toTask(row) : null;
  }

  async findNextTask(projectId: string, status: TaskStatus): Promise<Task | null> {
    const row = this.selectNextTask.get(projectId, status);
    return row ? toTask(row) : null;
  }

  async addTasks(tasks: readonly NewTask[], now: Date, idempotency?: IdempotentWrite<string[]>): Promise<string[]> {
    return this.idempotentWrite(() => this.insertTasks(tasks, now), idempotency);
  }

  async changeTaskStatus(change: StatusChange, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.idempotentWrite(() => this.applyStatusChange(change), idempotency);
  }

  async allocateId(projectId: string, artifactType: string, idempotency?: IdempotentWrite<number>): Promise<number> {
    return this.idempotentWrite(() => this.takeNumbers(projectId, artifactType, 1), idempotency);
  }

  async reserveIds(reservation: NewReservation, idempotency?: IdempotentWrite<Reservation>): Promise<Reservation> {
    return this.idempotentWrite(() => this.insertReservationRow(reservation), idempotency);
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    const row = this.selectReservation.get(reservationId);
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

  async saveIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    await this.runWrite(() => this.saveResponse(claim, response));
  }

  async releaseIdempotencyKey(claim: IdempotencyClaim): Promise<void> {
    const slot = inFlightSlot(claim.scope, claim.key);
    if (this.inFlight.get(slot)?.token === claim.token) this.inFlight.delete(slot);
  }

  async deleteIdempotencyKeysBefore(before: Date): Promise<number> {
    // In batches, yielding between them, so a large purge never stalls requests.
    let deleted = 0;
    for (;;) {
      if (this.closed) return deleted;
      const changes = await this.runWrite(
        () => this.deleteOldIdempotencyKeys.run(PURGE_BATCH_SIZE, before.getTime()).changes,
      );
      deleted += changes;
      if (changes < PURGE_BATCH_SIZE) return deleted;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error("The SQLite database is closed.");
    this.selectOne.get();
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
      this.db.close(false);
    }
  }
}
