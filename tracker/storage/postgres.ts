// The PostgreSQL storage (Bun's built-in SQL client). All of the service's SQL for PostgreSQL lives
// here and in schema/postgres.sql. Several tracker instances may share one database: every
// guarantee of storage.ts rests on PostgreSQL's row locks and unique keys, never on state held in
// this process.
//
// How each guarantee holds across instances:
// - ID counters: INSERT ... ON CONFLICT DO UPDATE ... RETURNING on the counter row takes its row
//   lock, so allocations and reservations of one (project, type) serialize in the database.
// - Status changes: SELECT ... FOR UPDATE on the task row, then a compare-and-set UPDATE; a second
//   claimer waits for the lock and then reads the winner's status.
// - Batches: one transaction; the dependencies a batch names are read FOR SHARE, so none of them
//   can complete (and miss the new dependents) before the batch commits.
// - Idempotency: the in-flight marker is a committed row, visible to every instance; the response
//   is stored in the same transaction as the effect.
//
// A database that is down or does not answer never makes a request hang: every operation has a
// deadline (statement_timeout on the server, a timer here), and its failure is a 503
// ApiError("unavailable"). The pool reconnects by itself once the server is back.

import { SQL, type TransactionSQL } from "bun";
import schemaSql from "./schema/postgres.sql" with { type: "text" };
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
import { createLogger, type Logger } from "../log.ts";
import type {
  IdempotencyClaim,
  IdempotencyOutcome,
  IdempotencyRequest,
  IdempotentWrite,
  Storage,
  StoredResponse,
} from "./storage.ts";

export const SCHEMA_VERSION = 1;

export interface PostgresOptions {
  /**
   * `postgres://user:password@host:port/database`. Other query parameters go to the server as
   * settings, e.g. `?search_path=tracker` keeps the tables in that (existing) schema.
   */
  url: string;
  /** Connections in the pool. */
  poolMax?: number;
  /** How long opening one connection may take. */
  connectTimeoutMs?: number;
  /** How long one storage operation (a transaction, a query) may take before it fails with 503. */
  queryTimeoutMs?: number;
  /** Where to say that the connection pool was replaced (default: JSON lines on stderr, as log.ts). */
  logger?: Logger;
}

export const POSTGRES_DEFAULTS = { poolMax: 10, connectTimeoutMs: 5_000, queryTimeoutMs: 10_000 } as const;

/** For logs: the URL with its password replaced. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(an unparsable database URL)";
  }
}

interface TaskRow {
  seq: string;
  task_id: string;
  project_id: string;
  description: string;
  inputs: string[];
  outputs: string[];
  priority: Priority;
  depends_on: string[];
  unfinished_deps: number;
  status: TaskStatus;
  claimed_by: string | null;
  completion_notes: string;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

interface DependencyRow {
  seq: string;
  task_id: string;
  project_id: string;
  status: TaskStatus;
}

interface ReservationRow {
  reservation_id: string;
  project_id: string;
  artifact_type: string;
  first_number: string;
  count: number;
  expires_at: Date;
}

interface IdempotencyRow {
  fingerprint: string;
  token: string;
  response_status: number | null;
  response_body: string | null;
  created_at: Date;
  lease_until: Date;
}

function isoOrNull(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

function toTask(row: TaskRow): Task {
  return {
    task_id: row.task_id,
    project_id: row.project_id,
    description: row.description,
    inputs: row.inputs,
    outputs: row.outputs,
    priority: row.priority,
    depends_on: row.depends_on,
    status: row.status,
    claimed_by: row.claimed_by,
    completion_notes: row.completion_notes,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    started_at: isoOrNull(row.started_at),
    completed_at: isoOrNull(row.completed_at),
  };
}

function toReservation(row: ReservationRow): Reservation {
  return {
    reservationId: row.reservation_id,
    projectId: row.project_id,
    artifactType: row.artifact_type,
    firstNumber: Number(row.first_number),
    count: row.count,
    expiresAt: row.expires_at.toISOString(),
  };
}

// ---------------------------------------------------------------------------
// Failures: which ones mean "the database is unavailable", which ones are worth a second try.

class DeadlineExceeded extends Error {
  override readonly name = "DeadlineExceeded";
}

/** Bun's own codes for a connection that could not be opened or was lost. */
const CONNECTION_ERROR_CODES = new Set([
  "ERR_POSTGRES_CONNECTION_CLOSED",
  "ERR_POSTGRES_CONNECTION_FAILED",
  "ERR_POSTGRES_CONNECTION_REFUSED",
  "ERR_POSTGRES_CONNECTION_TIMEOUT",
]);

function sqlState(error: unknown): string {
  return error instanceof SQL.PostgresError ? (error.errno ?? "") : "";
}

/** The connection is gone or never came: nothing was done on the server by this attempt's query. */
function isConnectionLost(error: unknown): boolean {
  if (!(error instanceof SQL.PostgresError)) return false;
  const state = sqlState(error);
  // 08: connection exception; 57P01-57P03: the server shuts down, crashed, or is starting.
  return CONNECTION_ERROR_CODES.has(error.code) || state.startsWith("08") || state.startsWith("57P");
}

function isUnavailable(error: unknown): boolean {
  const state = sqlState(error);
  // 53300: too many connections; 57014: statement_timeout.
  return error instanceof DeadlineExceeded || isConnectionLost(error) || state === "53300" || state === "57014";
}

/** Rolled back by the server and safe to run again: the next attempt sees what the others committed. */
function isRetryableConflict(error: unknown): boolean {
  const state = sqlState(error);
  // 40001 serialization failure; 40P01 deadlock; 23505 unique violation: a concurrent batch added
  // the same task_id first, and the next attempt reports it as "Task already exists".
  return state === "40001" || state === "40P01" || state === "23505";
}

/** The 503 for a failure of the database: a sentence for the client, which also goes to the log. */
function unavailable(cause: unknown): ApiError {
  let sentence: string;
  if (cause instanceof DeadlineExceeded) sentence = `${cause.message}; retry later`;
  else if (cause instanceof SQL.PostgresError && cause.errno)
    sentence = `The database is unavailable (SQLSTATE ${cause.errno}); retry later`;
  else if (cause instanceof SQL.PostgresError) sentence = `The database is unavailable (${cause.code}); retry later`;
  else sentence = "The database is unavailable; retry later";
  const error = new ApiError("unavailable", sentence);
  error.cause = cause;
  return error;
}

const MAX_TRANSACTION_ATTEMPTS = 4;
const PURGE_BATCH_SIZE = 2000;

/** Serializes schema changes of instances that start at once: a fixed key of pg_advisory_xact_lock. */
const SCHEMA_LOCK_KEY = 7_446_812_203;

// ---------------------------------------------------------------------------

export async function openPostgresStorage(options: PostgresOptions): Promise<PostgresStorage> {
  const storage = new PostgresStorage(options);
  try {
    await storage.applySchema();
    return storage;
  } catch (error) {
    await storage.close();
    throw error;
  }
}

export class PostgresStorage implements Storage {
  private pool: SQL;
  private closed = false;
  private readonly queryTimeoutMs: number;
  private readonly logger: Logger;

  constructor(private readonly options: PostgresOptions) {
    // Said without the URL, which may hold a password.
    if (!URL.canParse(options.url)) throw new Error("The PostgreSQL URL is not a valid URL.");
    this.queryTimeoutMs = options.queryTimeoutMs ?? POSTGRES_DEFAULTS.queryTimeoutMs;
    this.logger = options.logger ?? createLogger("warn");
    this.pool = this.createPool();
  }

  private createPool(): SQL {
    const url = new URL(this.options.url);
    return new SQL({
      url: this.options.url,
      // PGDATABASE would otherwise win over the database the URL names.
      ...(url.pathname.length > 1 ? { database: decodeURIComponent(url.pathname.slice(1)) } : {}),
      max: this.options.poolMax ?? POSTGRES_DEFAULTS.poolMax,
      connectionTimeout: Math.max(
        1,
        Math.ceil((this.options.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs) / 1000),
      ),
      connection: {
        application_name: "task-tracker",
        // The server gives up too, so a slow statement does not outlive its request.
        statement_timeout: this.queryTimeoutMs,
        // A transaction whose instance vanished must not keep a counter or task row locked.
        idle_in_transaction_session_timeout: Math.max(this.queryTimeoutMs, 5_000),
      },
    });
  }

  // -------------------------------------------------------------------------
  // Running work: deadlines, retries, and the translation of failures.

  /** Runs `work` on the current pool; past the deadline it fails with DeadlineExceeded. */
  private async withDeadline<T>(work: (pool: SQL) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error("The PostgreSQL storage is closed.");
    const pool = this.pool;
    const running = work(pool);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineExceeded(`The database did not answer within ${this.queryTimeoutMs} ms`)),
        this.queryTimeoutMs,
      );
    });
    try {
      return await Promise.race([running, deadline]);
    } catch (error) {
      if (error instanceof DeadlineExceeded) {
        running.catch(() => {}); // it may still settle; nobody waits for it any more
        this.replacePool(pool);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A deadline passed. Its connection may hang on a server or network that is gone, and TCP can
   * take many minutes to notice; the pool would hand that connection out again (it pipelines
   * queries). So new work goes to a fresh pool at once, and the old one gets as long as one
   * operation to finish what runs on it before its connections are cut.
   */
  private replacePool(stuck: SQL): void {
    if (this.closed || stuck !== this.pool) return; // someone already replaced it
    this.logger.log("warn", "the database did not answer in time; moved to a fresh connection pool", {
      timeout_ms: this.queryTimeoutMs,
    });
    this.pool = this.createPool();
    stuck.close({ timeout: Math.ceil(this.queryTimeoutMs / 1000) }).catch(() => {});
  }

  /**
   * One transaction, retried when PostgreSQL rolled it back for a conflict with another one, or
   * when its connection turned out dead before the work began (the first use after a restart).
   */
  private async transaction<T>(work: (tx: TransactionSQL) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let began = false;
      try {
        return await this.withDeadline(
          (pool) =>
            pool.begin(async (tx) => {
              began = true;
              return await work(tx);
            }) as Promise<T>,
        );
      } catch (error) {
        if (error instanceof ApiError) throw error;
        const retry = isRetryableConflict(error) || (!began && isConnectionLost(error));
        if (!retry || attempt === MAX_TRANSACTION_ATTEMPTS) throw isUnavailable(error) ? unavailable(error) : error;
      }
    }
  }

  /** One statement outside a transaction: a read, or a write that may safely run twice. */
  private async statement<T>(query: (pool: SQL) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withDeadline(query);
      } catch (error) {
        if (!isConnectionLost(error) || attempt === 2) throw isUnavailable(error) ? unavailable(error) : error;
      }
    }
  }

  /** Creates or upgrades the tables; several instances may do this at once. */
  async applySchema(): Promise<void> {
    await this.transaction(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`;
      await tx`CREATE TABLE IF NOT EXISTS tracker_schema (version integer NOT NULL)`;
      const [row] = await tx<{ version: number }[]>`SELECT version FROM tracker_schema`;
      const current = row?.version ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new Error(
          `The database has schema version ${current}, newer than this service knows (${SCHEMA_VERSION}); run a newer tracker.`,
        );
      }
      if (current === SCHEMA_VERSION) return;
      await tx.unsafe(schemaSql);
      if (row) await tx`UPDATE tracker_schema SET version = ${SCHEMA_VERSION}`;
      else await tx`INSERT INTO tracker_schema (version) VALUES (${SCHEMA_VERSION})`;
    });
  }

  // -------------------------------------------------------------------------
  // Work inside a transaction.

  /** Store the response on the claimed row, or give up the effect. */
  private async storeResponse<Result>(
    tx: TransactionSQL,
    idempotency: IdempotentWrite<Result>,
    result: Result,
  ): Promise<void> {
    const { status, body } = idempotency.respond(result);
    const { scope, key, token } = idempotency.claim;
    const updated = await tx`
      UPDATE idempotency_keys SET response_status = ${status}, response_body = ${body}
      WHERE scope = ${scope} AND idempotency_key = ${key} AND token = ${token} AND response_status IS NULL`;
    if (updated.count !== 1) {
      // Our lease ran out and another request took the key over: it owns the effect now.
      throw new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still running; retry later");
    }
  }

  /** Advances the counter by `count` and returns the first new number. */
  private async takeNumbers(
    tx: TransactionSQL,
    projectId: string,
    artifactType: string,
    count: number,
  ): Promise<number> {
    const [row] = await tx<{ last_assigned: string }[]>`
      INSERT INTO id_counters (project_id, artifact_type, last_assigned)
      VALUES (${projectId}, ${artifactType}, ${count})
      ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = id_counters.last_assigned + ${count}
      RETURNING last_assigned`;
    const last = Number(row!.last_assigned);
    if (last > MAX_ID_NUMBER) {
      throw new ApiError("conflict", `The ${artifactType} IDs of project ${projectId} are exhausted`);
    }
    return last - count + 1;
  }

  private async insertTasks(tx: TransactionSQL, tasks: readonly NewTask[], now: Date): Promise<string[]> {
    const batchIds = tasks.map((task) => task.task_id);
    const existing = await tx<{ task_id: string }[]>`
      SELECT task_id FROM tasks WHERE task_id = ANY(${batchIds}::text[])`;
    if (existing.length > 0) {
      const taken = new Set(existing.map((row) => row.task_id));
      throw new ApiError("conflict", `Task already exists: ${batchIds.find((id) => taken.has(id))}`);
    }
    const inBatch = new Map(tasks.map((task) => [task.task_id, task]));
    const storedIds = [...new Set(tasks.flatMap((task) => task.depends_on))].filter((id) => !inBatch.has(id));
    // FOR SHARE: no dependency can complete between reading its status here and this commit,
    // or its completion would miss the dependency rows added below.
    const storedRows = await tx<DependencyRow[]>`
      SELECT seq, task_id, project_id, status FROM tasks WHERE task_id = ANY(${storedIds}::text[])
      ORDER BY seq FOR SHARE`;
    const stored = new Map(storedRows.map((row) => [row.task_id, row]));

    const unfinished = countUnfinishedDependencies(tasks, (taskId) => stored.get(taskId));

    // Sorted, so the batch's order is the insertion order (seq) whatever order nextval ran in.
    const seqRows = await tx<{ seq: string }[]>`
      SELECT nextval(pg_get_serial_sequence('tasks', 'seq')) AS seq
      FROM generate_series(1, ${tasks.length}) ORDER BY 1`;
    const seqById = new Map(tasks.map((task, i) => [task.task_id, seqRows[i]!.seq]));
    const rows = tasks.map((task, i) => ({
      seq: seqById.get(task.task_id),
      task_id: task.task_id,
      project_id: task.project_id,
      description: task.description,
      inputs: task.inputs,
      outputs: task.outputs,
      priority: task.priority,
      priority_rank: priorityRank[task.priority],
      depends_on: task.depends_on,
      unfinished_deps: unfinished[i],
    }));
    await tx`
      INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                         unfinished_deps, status, completion_notes, created_at, updated_at)
      SELECT r.seq, r.task_id, r.project_id, r.description, r.inputs, r.outputs, r.priority, r.priority_rank,
             r.depends_on, r.unfinished_deps, 'pending', '', ${now}, ${now}
      FROM jsonb_to_recordset(${rows}::jsonb) AS r(
        seq bigint, task_id text, project_id text, description text, inputs jsonb, outputs jsonb, priority text,
        priority_rank smallint, depends_on jsonb, unfinished_deps integer)`;

    const dependencySeqs: string[] = [];
    const dependentSeqs: string[] = [];
    for (const task of tasks) {
      for (const dependencyId of new Set(task.depends_on)) {
        dependencySeqs.push(seqById.get(dependencyId) ?? stored.get(dependencyId)!.seq);
        dependentSeqs.push(seqById.get(task.task_id)!);
      }
    }
    if (dependencySeqs.length > 0) {
      await tx`
        INSERT INTO task_dependencies (dependency_seq, dependent_seq)
        SELECT * FROM unnest(${dependencySeqs}::bigint[], ${dependentSeqs}::bigint[])`;
    }
    return batchIds;
  }

  private async applyStatusChange(tx: TransactionSQL, change: StatusChange): Promise<Task> {
    const { taskId, to } = change;
    // The row lock makes concurrent changes of one task, on any instance, take turns.
    const [row] = await tx<TaskRow[]>`SELECT * FROM tasks WHERE task_id = ${taskId} FOR UPDATE`;
    if (!row) throw taskNotFound(taskId);
    const from = row.status;
    if (!isAllowedTransition(from, to)) throw invalidTransition(taskId, from, to);
    const now = change.now;
    let updated: TaskRow | undefined;
    if (to === "in_progress") {
      if (row.unfinished_deps > 0) throw invalidTransition(taskId, from, to, await this.describeUnfinished(tx, row));
      [updated] = await tx<TaskRow[]>`
        UPDATE tasks
        SET status = 'in_progress', claimed_by = ${change.agentId}, started_at = ${now}, updated_at = ${now}
        WHERE seq = ${row.seq} AND status = 'pending' AND unfinished_deps = 0 RETURNING *`;
    } else if (to === "completed") {
      [updated] = await tx<TaskRow[]>`
        UPDATE tasks SET status = 'completed', completion_notes = ${change.completionNotes}, completed_at = ${now},
                         updated_at = ${now}
        WHERE seq = ${row.seq} AND status = 'in_progress' RETURNING *`;
      if (updated) {
        await tx`
          UPDATE tasks SET unfinished_deps = unfinished_deps - 1
          WHERE seq IN (SELECT dependent_seq FROM task_dependencies WHERE dependency_seq = ${row.seq})`;
      }
    } else {
      [updated] = await tx<TaskRow[]>`
        UPDATE tasks SET status = 'pending', claimed_by = NULL, started_at = NULL, updated_at = ${now}
        WHERE seq = ${row.seq} AND status = 'in_progress' RETURNING *`;
    }
    // Unreachable under the row lock; kept so the compare-and-set stays honest.
    if (!updated) throw invalidTransition(taskId, from, to, "another request changed it first");
    return toTask(updated);
  }

  private async describeUnfinished(tx: TransactionSQL, row: TaskRow): Promise<string> {
    const statuses = await tx<{ task_id: string; status: TaskStatus }[]>`
      SELECT task_id, status FROM tasks WHERE task_id = ANY(${row.depends_on}::text[])`;
    const statusById = new Map(statuses.map((dependency) => [dependency.task_id, dependency.status]));
    const waiting = [...new Set(row.depends_on)].filter((id) => statusById.get(id) !== "completed");
    return `${waiting.join(", ")} ${waiting.length === 1 ? "is" : "are"} not completed`;
  }

  private async claimKey(tx: TransactionSQL, request: IdempotencyRequest): Promise<IdempotencyOutcome> {
    const { scope, key, fingerprint, leaseMs, retentionMs } = request;
    const now = request.now.getTime();
    const token = crypto.randomUUID();
    const claimed: IdempotencyOutcome = { outcome: "claimed", claim: { scope, key, token } };
    const leaseUntil = new Date(now + leaseMs);
    // Inserts our marker, or locks and returns the row already there (the no-op update takes the lock).
    const [row] = await tx<IdempotencyRow[]>`
      INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, token, created_at, lease_until)
      VALUES (${scope}, ${key}, ${fingerprint}, ${token}, ${request.now}, ${leaseUntil})
      ON CONFLICT (scope, idempotency_key) DO UPDATE SET token = idempotency_keys.token
      RETURNING fingerprint, token, response_status, response_body, created_at, lease_until`;
    if (row!.token === token) return claimed;

    const expired = row!.created_at.getTime() <= now - retentionMs;
    // A marker past its lease: its request died unanswered, so the key is free again (as on SQLite).
    const abandoned = row!.response_status === null && row!.lease_until.getTime() <= now;
    if (expired || abandoned) {
      await tx`
        UPDATE idempotency_keys
        SET fingerprint = ${fingerprint}, token = ${token}, created_at = ${request.now}, lease_until = ${leaseUntil},
            response_status = NULL, response_body = NULL
        WHERE scope = ${scope} AND idempotency_key = ${key}`;
      return claimed;
    }
    if (row!.fingerprint !== fingerprint) return { outcome: "mismatch" };
    if (row!.response_status === null) return { outcome: "in_flight" };
    return { outcome: "replay", response: { status: row!.response_status, body: row!.response_body ?? "" } };
  }

  // -------------------------------------------------------------------------
  // The Storage interface.

  async getTask(taskId: string): Promise<Task | null> {
    const [row] = await this.statement((sql) => sql<TaskRow[]>`SELECT * FROM tasks WHERE task_id = ${taskId}`);
    return row ? toTask(row) : null;
  }

  async findNextTask(projectId: string, status: TaskStatus): Promise<Task | null> {
    // unfinished_deps = 0 holds for every task that is not pending (see the schema's CHECK).
    const [row] = await this.statement(
      (sql) => sql<TaskRow[]>`
        SELECT * FROM tasks WHERE project_id = ${projectId} AND status = ${status} AND unfinished_deps = 0
        ORDER BY priority_rank, seq LIMIT 1`,
    );
    return row ? toTask(row) : null;
  }

  async addTasks(tasks: readonly NewTask[], now: Date, idempotency?: IdempotentWrite<string[]>): Promise<string[]> {
    return this.transaction(async (tx) => {
      const ids = await this.insertTasks(tx, tasks, now);
      if (idempotency) await this.storeResponse(tx, idempotency, ids);
      return ids;
    });
  }

  async changeTaskStatus(change: StatusChange, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.transaction(async (tx) => {
      const task = await this.applyStatusChange(tx, change);
      if (idempotency) await this.storeResponse(tx, idempotency, task);
      return task;
    });
  }

  async allocateId(projectId: string, artifactType: string, idempotency?: IdempotentWrite<number>): Promise<number> {
    return this.transaction(async (tx) => {
      const number = await this.takeNumbers(tx, projectId, artifactType, 1);
      if (idempotency) await this.storeResponse(tx, idempotency, number);
      return number;
    });
  }

  async reserveIds(reservation: NewReservation, idempotency?: IdempotentWrite<Reservation>): Promise<Reservation> {
    return this.transaction(async (tx) => {
      const first = await this.takeNumbers(tx, reservation.projectId, reservation.artifactType, reservation.count);
      await tx`
        INSERT INTO reservations
          (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
        VALUES (${reservation.reservationId}, ${reservation.projectId}, ${reservation.artifactType}, ${first},
                ${reservation.count}, ${reservation.createdAt}, ${reservation.expiresAt})`;
      const result: Reservation = {
        reservationId: reservation.reservationId,
        projectId: reservation.projectId,
        artifactType: reservation.artifactType,
        firstNumber: first,
        count: reservation.count,
        expiresAt: reservation.expiresAt.toISOString(),
      };
      if (idempotency) await this.storeResponse(tx, idempotency, result);
      return result;
    });
  }

  async getReservation(reservationId: string): Promise<Reservation | null> {
    const [row] = await this.statement(
      (sql) => sql<ReservationRow[]>`
        SELECT reservation_id, project_id, artifact_type, first_number, count, expires_at
        FROM reservations WHERE reservation_id = ${reservationId}`,
    );
    return row ? toReservation(row) : null;
  }

  async raiseIdCounter(
    projectId: string,
    artifactType: string,
    lastAssigned: number,
    idempotency?: IdempotentWrite<number>,
  ): Promise<number> {
    return this.transaction(async (tx) => {
      // The conflicting row is locked even when the WHERE keeps it unchanged, so the value read
      // below for the error sentence is the one that refused.
      const raised = await tx`
        INSERT INTO id_counters (project_id, artifact_type, last_assigned)
        VALUES (${projectId}, ${artifactType}, ${lastAssigned})
        ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = excluded.last_assigned
        WHERE id_counters.last_assigned <= excluded.last_assigned`;
      if (raised.count === 0) {
        const [row] = await tx<{ last_assigned: string }[]>`
          SELECT last_assigned FROM id_counters WHERE project_id = ${projectId} AND artifact_type = ${artifactType}`;
        throw new ApiError(
          "conflict",
          `Cannot lower the ${artifactType} counter of project ${projectId} from ${row!.last_assigned} to ${lastAssigned}`,
        );
      }
      if (idempotency) await this.storeResponse(tx, idempotency, lastAssigned);
      return lastAssigned;
    });
  }

  async claimIdempotencyKey(request: IdempotencyRequest): Promise<IdempotencyOutcome> {
    return this.transaction((tx) => this.claimKey(tx, request));
  }

  async saveIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    // Only the claim's holder knows its token, so a second run (a retry after a lost connection)
    // writes the same response again.
    const saved = await this.statement(
      (sql) => sql`
        UPDATE idempotency_keys SET response_status = ${response.status}, response_body = ${response.body}
        WHERE scope = ${claim.scope} AND idempotency_key = ${claim.key} AND token = ${claim.token}`,
    );
    if (saved.count !== 1) {
      throw new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still running; retry later");
    }
  }

  async releaseIdempotencyKey(claim: IdempotencyClaim): Promise<void> {
    await this.statement(
      (sql) => sql`
        DELETE FROM idempotency_keys
        WHERE scope = ${claim.scope} AND idempotency_key = ${claim.key} AND token = ${claim.token}
          AND response_status IS NULL`,
    );
  }

  async deleteIdempotencyKeysBefore(before: Date): Promise<number> {
    // In batches, so a large purge stays within the query timeout and never holds many locks.
    let deleted = 0;
    for (;;) {
      const batch = await this.statement(
        (sql) => sql`
          DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM idempotency_keys WHERE created_at < ${before} LIMIT ${PURGE_BATCH_SIZE}))`,
      );
      deleted += batch.count;
      if (batch.count < PURGE_BATCH_SIZE || this.closed) return deleted;
    }
  }

  async ping(): Promise<void> {
    await this.statement((sql) => sql`SELECT 1`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close({ timeout: 5 });
  }
}
