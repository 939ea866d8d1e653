// The PostgreSQL storage (Bun's built-in SQL client). All of the service's SQL for PostgreSQL lives
// here and in schema/postgres*.sql. Several tracker instances may share one database: every
// guarantee of storage.ts rests on PostgreSQL's row locks, unique keys and clock, never on state
// held in this process (the in-flight Idempotency-Keys of this process only answer its own twins
// sooner).
//
// How each guarantee holds across instances:
// - ID counters: INSERT ... ON CONFLICT DO UPDATE ... RETURNING on the counter row takes its row
//   lock, so allocations and reservations of one (project, type) serialize in the database.
// - Status changes: SELECT ... FOR UPDATE on the task row, then a compare-and-set UPDATE; a second
//   claimer waits for the lock and then reads the winner's status.
// - Claim-next: the next ready task is read FOR UPDATE SKIP LOCKED, so concurrent claimers each lock
//   a different task without waiting on one another, then claimed as a status change claims it.
// - Batches: one transaction; the dependencies a batch names are read FOR SHARE, so none of them
//   can complete (and miss the new dependents) before the batch commits.
// - Leases: lease_expires_at is the database's now() plus the lease; expireLeases takes the
//   expired rows FOR UPDATE SKIP LOCKED, so instances sweeping at once never expire one claim twice.
// - Idempotency: one commit per write. Its transaction first takes the key's advisory lock (a twin
//   on another instance waits for it) and reads the key's row, then does the effect, then writes
//   the row with its response. A twin that finds the row replays it (StoredResponseReplay).
// - The live stream: once a write has committed, its instance NOTIFYs the IDs of its events (one
//   NOTIFY for all the writes committed meanwhile, outside their transactions: see announce); every
//   instance LISTENs on a connection of its own and reads those events.
//
// A database that is down or does not answer never makes a request hang: every operation has a
// deadline (statement_timeout on the server, a timer here), and its failure is a 503
// ApiError("unavailable"). The pool reconnects by itself once the server is back.

import { SQL, type TransactionSQL } from "bun";
import {
  ApiError,
  ambiguousTaskId,
  type BatchCounterMove,
  type BatchTask,
  batchChildCounts,
  batchCounterMoves,
  batchTaskExists,
  type ChildState,
  CLAIM_EVENT_TYPES,
  type ClaimEnd,
  type ClaimState,
  type Criterion,
  cannotLowerCounter,
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
  idempotencyMismatch,
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
  noBackupOnPostgres,
  type Priority,
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
  TASK_LIST_PARTS,
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
import { createLogger, describeError, type Logger } from "../log.ts";
import type { BackupFile, DumpCounts, DumpSnapshot, NumberedLine } from "./dump.ts";
import { insertNoteRows, openPostgresSnapshot, restorePostgres } from "./postgres-dump.ts";
import {
  applyApiKeysSchema,
  insertApiKey,
  markApiKeyRevoked,
  markApiKeyUsed,
  selectActiveApiKey,
  selectApiKeys,
} from "./postgres-keys.ts";
import schemaSql from "./schema/postgres.sql" with { type: "text" };
import upgradeTo2Sql from "./schema/postgres-upgrade-2.sql" with { type: "text" };
import upgradeTo3Sql from "./schema/postgres-upgrade-3.sql" with { type: "text" };
import upgradeTo4Sql from "./schema/postgres-upgrade-4.sql" with { type: "text" };
import { type ClaimedKey, InFlightKeys, requireStorableText } from "./shared.ts";
import {
  type IdempotencyClaim,
  type IdempotencyOutcome,
  type IdempotencyRequest,
  type IdempotentWrite,
  type Storage,
  type StoredResponse,
  StoredResponseReplay,
} from "./storage.ts";

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
  priority_rank: number;
  depends_on: string[];
  unfinished_deps: number;
  status: TaskStatus;
  claimed_by: string | null;
  claimed_by_key: string | null;
  completion_notes: string;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  lease_expires_at: Date | null;
  lease_seconds: number | null;
  /** The index in TASK_LIST_PARTS of the part of GET /tasks the task is in. */
  list_group: number;
  lost_by: string | null;
  lost_by_key: string | null;
  lost_at: Date | null;
  labels: string[];
  parent_id: string | null;
  acceptance_criteria: Criterion[];
  released_by: string | null;
  children_total: number;
  open_children: number;
  notes_count: number;
  last_note: { at: string; by: string | null; text: string } | null;
}

/** A task read FOR UPDATE by a change, with the database's clock (its leases run by it), to the millisecond as leases are kept. */
interface LockedTaskRow extends TaskRow {
  database_now: Date;
}

interface EventRow {
  event_id: string;
  task_seq: string;
  type: TaskEventType;
  at: Date;
  agent_id: string | null;
  key_name: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: Record<string, unknown>;
}

/** An event to write: what changed, on which task (the row after the change). */
interface NewEvent {
  task: TaskRow;
  type: TaskEventType;
  at: Date;
  agentId: string | null;
  /** The request's key; null: the service's own change (an expiry). */
  keyName: string | null;
  from: TaskStatus | null;
  to: TaskStatus | null;
  details: Record<string, unknown>;
}

interface ReservationRow {
  reservation_id: string;
  project_id: string;
  artifact_type: string;
  first_number: string;
  count: number;
  expires_at: Date;
}

interface StoredKeyRow {
  fingerprint: string;
  response_status: number;
  response_body: string;
  created_at: Date;
}

/** A row of task_notes as a task's last_note: its time as toISOString writes it. */
const NOTE_JSON = `jsonb_build_object('at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'by', by, 'text', text)`;

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
    claimed_by_key: row.claimed_by_key,
    lease_expires_at: isoOrNull(row.lease_expires_at),
    completion_notes: row.completion_notes,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    started_at: isoOrNull(row.started_at),
    completed_at: isoOrNull(row.completed_at),
    labels: row.labels,
    parent_id: row.parent_id,
    // jsonb orders an object's keys its own way: text first, as the API writes it.
    acceptance_criteria: row.acceptance_criteria.map(({ text, done }) => ({ text, done })),
    notes_count: row.notes_count,
    last_note: row.last_note,
    children: { total: row.children_total, done: row.children_total - row.open_children },
    released_by: row.released_by,
  };
}

/** What the rules of a claim (domain.ts) read of a row. */
function claimState(row: TaskRow): ClaimState {
  return {
    task_id: row.task_id,
    status: row.status,
    claimed_by: row.claimed_by,
    claimed_by_key: row.claimed_by_key,
    lease_expires_at: isoOrNull(row.lease_expires_at),
    lost_by: row.lost_by,
    lost_by_key: row.lost_by_key,
    lost_at: isoOrNull(row.lost_at),
  };
}

function toEvent(row: EventRow, task: TaskRow): TaskEvent {
  return {
    event_id: Number(row.event_id),
    project_id: task.project_id,
    task_id: task.task_id,
    type: row.type,
    at: row.at.toISOString(),
    agent_id: row.agent_id,
    key_name: row.key_name,
    from_status: row.from_status,
    to_status: row.to_status,
    details: row.details,
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

/** Where a task stands in GET /tasks: its part, its key in that part's order, and its seq. */
function listPosition(row: TaskRow): TaskListPosition {
  const part = TASK_LIST_PARTS[row.list_group]!;
  const key =
    part === "in_progress"
      ? row.started_at!.toISOString()
      : part === "ready" || part === "blocked"
        ? row.priority_rank
        : row.completed_at!.toISOString();
  return { part, key, seq: Number(row.seq) };
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
  // the same task first, and the next attempt reports it as "Task already exists".
  return state === "40001" || state === "40P01" || state === "23505";
}

/**
 * Text PostgreSQL cannot hold (22021: a NUL byte; 22P05: a character it cannot encode, such as
 * \u0000 in JSON). Every text field is checked before it reaches SQL (requireStorableText); this is
 * the net under those checks, so such text is a 400, never a 500.
 */
function isUnstorableText(error: unknown): boolean {
  const state = sqlState(error);
  return state === "22021" || state === "22P05";
}

/** What a failure of the database becomes: a 400 for unstorable text, a 503 when it is away. */
function translateFailure(error: unknown): unknown {
  if (isUnstorableText(error)) {
    return validationError("A text field holds a NUL character or invalid UTF-16, which cannot be stored");
  }
  return isUnavailable(error) ? unavailable(error) : error;
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
/** Claims expired by one statement of expireLeases. */
const EXPIRE_BATCH_SIZE = 500;
/** pg_notify refuses payloads of 8000 bytes or more: event IDs go in chunks below that. */
const MAX_NOTIFY_PAYLOAD = 7000;
/** Event IDs (up to 19 digits and a comma each) in one payload, the instance's UUID before them. */
const NOTIFY_IDS_PER_PAYLOAD = Math.floor((MAX_NOTIFY_PAYLOAD - 40) / 20);
/** Event IDs remembered as delivered, so a catch-up after a reconnect repeats none. */
const DELIVERED_MEMORY = 10_000;

/** Keeps the advisory locks of Idempotency-Keys apart from any other use of hashtextextended. */
const IDEMPOTENCY_LOCK_SEED = 20_261_201;

/** Serializes the edits of depends_on of one project: hashtextextended of the project with this seed. */
const DEPENDENCY_EDIT_LOCK_SEED = 20_261_206;

/** Serializes schema changes of instances that start at once: a fixed key of pg_advisory_xact_lock. */
const SCHEMA_LOCK_KEY = 7_446_812_203;

/** Where a write's changes go once it commits. */
type Changes = NewEvent[];

function checkNewTaskText(tasks: readonly BatchTask[]): void {
  tasks.forEach((task, i) => {
    requireStorableText(`tasks[${i}].description`, task.description);
    requireStorableText(`tasks[${i}].completion_notes`, task.completion_notes);
    task.inputs.forEach((input, j) => requireStorableText(`tasks[${i}].inputs[${j}]`, input));
    task.outputs.forEach((output, j) => requireStorableText(`tasks[${i}].outputs[${j}]`, output));
  });
}

// ---------------------------------------------------------------------------

export async function openPostgresStorage(options: PostgresOptions): Promise<PostgresStorage> {
  const storage = new PostgresStorage(options);
  try {
    await storage.applySchema();
    await storage.listenForOtherInstances();
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
  private readonly inFlight = new InFlightKeys();
  /** Tells this instance's own notifications from the others'. */
  private readonly instanceId = crypto.randomUUID();
  /** The NOTIFY channel of this database and schema (set by applySchema). */
  private channel = "task_events";
  private readonly listeners = new Set<(change: TaskChange) => void>();
  /** The connection that LISTENs (listenForOtherInstances). */
  private listenConnection: SQL | undefined;
  private listenTimer: ReturnType<typeof setTimeout> | undefined;
  private listenedBefore = false;
  /** Remote changes are read and delivered one notification at a time, in commit order. */
  private remoteDeliveries: Promise<void> = Promise.resolve();
  private readonly delivered = new Set<number>();
  private lastEventId = 0;
  /** Event IDs committed here that the other instances have not been told of yet (announce). */
  private unannounced: number[] = [];
  /** The NOTIFY under way, if any: one at a time, in commit order. */
  private announcing: Promise<void> | undefined;

  constructor(private readonly options: PostgresOptions) {
    // Said without the URL, which may hold a password.
    if (!URL.canParse(options.url)) throw new Error("The PostgreSQL URL is not a valid URL.");
    this.queryTimeoutMs = options.queryTimeoutMs ?? POSTGRES_DEFAULTS.queryTimeoutMs;
    this.logger = options.logger ?? createLogger("warn");
    this.pool = this.createPool();
  }

  private createPool(max = this.options.poolMax ?? POSTGRES_DEFAULTS.poolMax): SQL {
    const url = new URL(this.options.url);
    return new SQL({
      url: this.options.url,
      // PGDATABASE would otherwise win over the database the URL names.
      ...(url.pathname.length > 1 ? { database: decodeURIComponent(url.pathname.slice(1)) } : {}),
      max,
      connectionTimeout: Math.max(1, Math.ceil((this.options.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs) / 1000)),
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
        if (error instanceof ApiError || error instanceof StoredResponseReplay) throw error;
        const retry = isRetryableConflict(error) || (!began && isConnectionLost(error));
        if (!retry || attempt === MAX_TRANSACTION_ATTEMPTS) throw translateFailure(error);
      }
    }
  }

  /** One statement outside a transaction: a read, or a write that may safely run twice. */
  private async statement<T>(query: (pool: SQL) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withDeadline(query);
      } catch (error) {
        if (!isConnectionLost(error) || attempt === 2) throw translateFailure(error);
      }
    }
  }

  /** Creates or upgrades the tables; several instances may do this at once. */
  async applySchema(): Promise<void> {
    await this.transaction(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`;
      const [where] = await tx<{ schema: string }[]>`SELECT current_schema() AS schema`;
      // NOTIFY is per database: instances on other schemas of it must not hear this one.
      this.channel = `task_events:${where!.schema}`.slice(0, 63);
      await tx`CREATE TABLE IF NOT EXISTS tracker_schema (version integer NOT NULL)`;
      const [row] = await tx<{ version: number }[]>`SELECT version FROM tracker_schema`;
      const current = row?.version ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new Error(
          `The database has schema version ${current}, newer than this service knows (${SCHEMA_VERSION}); run a newer tracker.`,
        );
      }
      // The keys' table, for a database of any version that lacks it (schema/postgres-keys.sql).
      await applyApiKeysSchema(tx);
      if (current === SCHEMA_VERSION) return;
      if (current === 0) await tx.unsafe(schemaSql);
      if (current === 1) await tx.unsafe(upgradeTo2Sql);
      if (current === 1 || current === 2) await tx.unsafe(upgradeTo3Sql);
      if (current >= 1 && current <= 3) await tx.unsafe(upgradeTo4Sql);
      if (row) await tx`UPDATE tracker_schema SET version = ${SCHEMA_VERSION}`;
      else await tx`INSERT INTO tracker_schema (version) VALUES (${SCHEMA_VERSION})`;
    });
  }

  // -------------------------------------------------------------------------
  // The one write helper: every change runs through it.

  /**
   * One write, one commit: with `idempotency`, the key's row first (waiting for a twin on another
   * instance that holds it), then `work`, then the response on the key's row and the events `work`
   * recorded, sent with the COMMIT (sendWithCommit). After the commit, this instance's subscribers
   * hear the changes, and the other instances are told of them (announce).
   */
  private async write<Result>(
    idempotency: IdempotentWrite<Result> | undefined,
    work: (tx: TransactionSQL, changes: Changes) => Promise<Result>,
  ): Promise<Result> {
    const claimed = idempotency ? this.inFlight.current(idempotency.claim) : undefined;
    let tail: CommitTail | undefined;
    let result: Result;
    let heard: TaskChange[];
    try {
      result = await this.transaction(async (tx) => {
        tail = undefined; // a new attempt
        const changes: Changes = [];
        const key = idempotency ? await this.takeKey(tx, idempotency.claim, claimed!) : undefined;
        const result = await work(tx, changes);
        if (key === "stale") await this.storeResponse(tx, idempotency!.claim, claimed!, idempotency!.respond(result));
        const response = key === "absent" ? idempotency!.respond(result) : undefined;
        tail = this.sendWithCommit(tx, changes, response && { claim: idempotency!.claim, claimed: claimed!, response });
        return result;
      });
      heard = await tail!.heard;
    } catch (thrown) {
      const error = await this.whyRolledBack(thrown, tail, idempotency, claimed);
      // The key has its answer, stored by another request: nothing of this one is left in flight.
      const answered =
        error instanceof StoredResponseReplay || (error instanceof ApiError && error.code === "idempotency_mismatch");
      if (idempotency && answered) this.inFlight.release(idempotency.claim);
      throw error;
    }
    if (idempotency) this.inFlight.release(idempotency.claim);
    this.deliver(heard);
    this.announce(heard);
    return result;
  }

  /**
   * The last statements of a write, sent with its COMMIT in one round trip: the events, and the
   * key's response when the key had no row. Nothing in the transaction needs their answers, and a
   * lock taken by `work` (the counter row of an allocation, which every allocation of its project
   * waits for) is held a round trip less. They run before the COMMIT, in order; if one fails, the
   * server rolls the COMMIT back and `failure` holds why (whyRolledBack).
   */
  private sendWithCommit(
    tx: TransactionSQL,
    changes: Changes,
    key: { claim: IdempotencyClaim; claimed: ClaimedKey; response: StoredResponse } | undefined,
  ): CommitTail {
    const tail: CommitTail = { heard: Promise.resolve([]), keyTaken: false };
    const sent: Promise<unknown>[] = [];
    if (key) {
      // A plain INSERT: under the key's lock only a 4xx stored without it (saveIdempotentResponse)
      // can have written the row meanwhile, and then that answer stands (unique violation).
      const { claim, claimed, response } = key;
      const stored = tx`
        INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, response_status, response_body, created_at)
        VALUES (${claim.scope}, ${claim.key}, ${claimed.fingerprint}, ${response.status}, ${response.body}, ${claimed.claimedAt})`.execute();
      sent.push(
        stored.catch((error: unknown) => {
          tail.keyTaken = sqlState(error) === "23505";
          throw error;
        }),
      );
    }
    const events = changes.length === 0 ? Promise.resolve([]) : insertEventRows(tx, changes);
    sent.push(events);
    tail.heard = Promise.all(sent).then(() => events.then((rows) => heardOf(rows, changes)));
    tail.heard.catch((error: unknown) => {
      tail.failure ??= error;
    });
    return tail;
  }

  /**
   * What a failed write throws: when the server rolled its COMMIT back because a statement sent with
   * it failed, that statement's failure (the key's row written meanwhile: the answer stored there).
   */
  private async whyRolledBack<Result>(
    thrown: unknown,
    tail: CommitTail | undefined,
    idempotency: IdempotentWrite<Result> | undefined,
    claimed: ClaimedKey | undefined,
  ): Promise<unknown> {
    const rolledBack = thrown instanceof SQL.PostgresError && thrown.code === "ERR_POSTGRES_COMMIT_ROLLED_BACK";
    if (!rolledBack || !tail) return thrown;
    await tail.heard.catch(() => {}); // settled before the COMMIT's answer came
    if (tail.keyTaken && idempotency) {
      const [row] = await this.statement(
        (sql) => sql<StoredKeyRow[]>`
          SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys
          WHERE scope = ${idempotency.claim.scope} AND idempotency_key = ${idempotency.claim.key}`,
      );
      return answered(row!, claimed!);
    }
    return translateFailure(tail.failure ?? thrown);
  }

  // -------------------------------------------------------------------------
  // Idempotency-Keys inside a write.

  /**
   * Takes the key's lock for the rest of the transaction: a twin on another instance holding it
   * makes this wait until the twin commits or rolls back. Then reads the key's row (sent with the
   * lock, so one round trip; it runs once the lock is held and sees what the twin committed): a
   * stored answer ends this write before its effect, replayed (StoredResponseReplay) or, for
   * another request, a mismatch. An advisory lock rather than the key's row, so that the row is
   * written once, with its response.
   */
  private async takeKey(tx: TransactionSQL, claim: IdempotencyClaim, claimed: ClaimedKey): Promise<"absent" | "stale"> {
    const [, [row]] = await Promise.all([
      tx`SELECT pg_advisory_xact_lock(hashtextextended(${`${claim.scope}\n${claim.key}`}, ${IDEMPOTENCY_LOCK_SEED}))`,
      tx<StoredKeyRow[]>`
        SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys
        WHERE scope = ${claim.scope} AND idempotency_key = ${claim.key}`,
    ]);
    if (row && row.created_at.getTime() > claimed.expiredBefore.getTime()) throw answered(row, claimed);
    return row ? "stale" : "absent";
  }

  /**
   * Stores the response under the key, in the transaction of the effect. Under the key's lock no
   * twin can have written meanwhile, save a 4xx stored without it (saveIdempotentResponse): then that
   * answer stands, and the effect is rolled back.
   */
  private async storeResponse(
    tx: TransactionSQL,
    claim: IdempotencyClaim,
    claimed: ClaimedKey,
    response: StoredResponse,
  ): Promise<void> {
    if ((await putResponse(tx, claim, claimed, response)) === 1) return;
    const [row] = await tx<StoredKeyRow[]>`
      SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys
      WHERE scope = ${claim.scope} AND idempotency_key = ${claim.key}`;
    throw answered(row!, claimed);
  }

  // -------------------------------------------------------------------------
  // History and the live stream.

  /**
   * Tells the other instances of events committed here: `<instance> <event id>,<event id>...` on the
   * channel, in chunks below the payload limit. Not in the write's own transaction: PostgreSQL makes
   * every transaction that NOTIFYs commit one at a time (a database-wide lock held through the WAL
   * flush), so a NOTIFY per write made the writes of every instance wait on each other's flushes.
   * Here one NOTIFY is in flight at a time and carries every event committed meanwhile; its commit
   * need not wait for the flush either (synchronous_commit off): the events themselves are durable,
   * and a listener that missed them after an outage catches up when its LISTEN comes back.
   */
  private announce(heard: readonly TaskChange[]): void {
    if (heard.length === 0) return;
    for (const change of heard) this.unannounced.push(change.event.event_id);
    this.announcing ??= this.sendAnnouncements();
  }

  private async sendAnnouncements(): Promise<void> {
    try {
      while (this.unannounced.length > 0 && !this.closed) {
        const payloads = notifyPayloads(this.instanceId, this.unannounced);
        this.unannounced = [];
        await this.statement(
          (sql) => sql`
            SELECT set_config('synchronous_commit', 'off', true), pg_notify(${this.channel}, payload)
            FROM unnest(${payloads}::text[]) WITH ORDINALITY AS p(payload, n) ORDER BY n`,
        );
      }
    } catch (error) {
      this.unannounced = [];
      if (!this.closed) this.logger.log("warn", "could not tell other instances of changes", describeError(error));
    } finally {
      this.announcing = undefined;
    }
  }

  /** Hands changes to this instance's subscribers; a listener that throws disturbs nothing else. */
  private deliver(changes: readonly TaskChange[]): void {
    for (const change of changes) {
      const id = change.event.event_id;
      if (this.delivered.has(id)) continue;
      this.delivered.add(id);
      if (this.delivered.size > DELIVERED_MEMORY) this.delivered.delete(this.delivered.values().next().value!);
      this.lastEventId = Math.max(this.lastEventId, id);
      for (const listener of this.listeners) {
        try {
          listener(change);
        } catch (error) {
          this.logger.log("error", "a task change listener failed", describeError(error));
        }
      }
    }
  }

  /**
   * LISTENs on a connection of its own, from the start, so that a subscriber hears everything
   * committed after it subscribed; Bun reconnects it after a drop and calls `listening` again.
   * Resolves once listening, or once a retry is scheduled (the database is away at the first LISTEN).
   */
  async listenForOtherInstances(): Promise<void> {
    if (this.closed || this.listenConnection) return;
    const connection = this.createPool(1);
    this.listenConnection = connection;
    try {
      await connection.listen(
        this.channel,
        (payload) => this.heard(payload),
        () => this.listening(),
      );
    } catch (error) {
      this.logger.log("warn", "could not LISTEN for the changes of other instances; retrying", describeError(error));
      this.listenConnection = undefined;
      connection.close().catch(() => {});
      if (this.closed) return;
      this.listenTimer = setTimeout(() => void this.listenForOtherInstances(), 1000);
      this.listenTimer.unref();
    }
  }

  /** The LISTEN is acknowledged: the first time, mark where the stream starts; after a reconnect, catch up. */
  private listening(): void {
    const first = !this.listenedBefore;
    this.listenedBefore = true;
    this.enqueueRemote(async () => {
      if (first || this.listeners.size === 0) {
        const [row] = await this.statement(
          (sql) => sql<{ last: string }[]>`SELECT coalesce(max(event_id), 0) AS last FROM task_events`,
        );
        this.lastEventId = Math.max(this.lastEventId, Number(row!.last));
        return;
      }
      const missed = await this.statement(
        (sql) => sql<EventRow[]>`SELECT * FROM task_events WHERE event_id > ${this.lastEventId} ORDER BY event_id LIMIT 1000`,
      );
      await this.deliverStored(missed);
    });
  }

  private heard(payload: string): void {
    const [instance, list] = payload.split(" ");
    if (instance === this.instanceId || !list) return;
    const ids = list.split(",").map(Number);
    if (this.listeners.size === 0) {
      // Nobody to tell: only remember how far the stream got, for a catch-up after a reconnect.
      this.lastEventId = Math.max(this.lastEventId, ...ids);
      return;
    }
    this.enqueueRemote(async () => {
      const events = await this.statement(
        (sql) => sql<EventRow[]>`SELECT * FROM task_events WHERE event_id = ANY(${ids}::bigint[]) ORDER BY event_id`,
      );
      await this.deliverStored(events);
    });
  }

  private enqueueRemote(work: () => Promise<void>): void {
    this.remoteDeliveries = this.remoteDeliveries.then(work).catch((error: unknown) => {
      if (!this.closed) this.logger.log("warn", "could not read the changes of other instances", describeError(error));
    });
  }

  /** Events another instance committed, with their tasks as they are now. */
  private async deliverStored(events: readonly EventRow[]): Promise<void> {
    if (events.length === 0) return;
    const seqs = [...new Set(events.map((event) => event.task_seq))];
    const tasks = await this.statement((sql) => sql<TaskRow[]>`SELECT * FROM tasks WHERE seq = ANY(${seqs}::bigint[])`);
    const bySeq = new Map(tasks.map((task) => [task.seq, task]));
    this.deliver(
      events.map((event) => ({ event: toEvent(event, bySeq.get(event.task_seq)!), task: toTask(bySeq.get(event.task_seq)!) })),
    );
  }

  // -------------------------------------------------------------------------
  // Tasks inside a write.

  /**
   * The one task a ref names (taskNotFound / ambiguousTaskId), locked for the rest of the
   * transaction, with the database's clock, by which its lease runs.
   */
  private async lockTask(tx: TransactionSQL, ref: TaskRef): Promise<LockedTaskRow> {
    const rows =
      ref.projectId === null
        ? await tx<LockedTaskRow[]>`
            SELECT *, date_trunc('milliseconds', now()) AS database_now FROM tasks
            WHERE task_id = ${ref.taskId} ORDER BY project_id FOR UPDATE`
        : await tx<LockedTaskRow[]>`
            SELECT *, date_trunc('milliseconds', now()) AS database_now FROM tasks
            WHERE project_id = ${ref.projectId} AND task_id = ${ref.taskId} FOR UPDATE`;
    const row = pickTask(rows, ref);
    if (!row) throw taskNotFound(ref);
    return row;
  }

  /**
   * A change of a task whose lease ran out before the sweep: the claim ends first, in the same
   * step (claim_expired), so its former holder is refused (and, refused, changes nothing) and
   * another agent may claim it at once. Returns the task as it then is.
   */
  private async endLapsedClaim(tx: TransactionSQL, row: LockedTaskRow, changes: Changes): Promise<TaskRow> {
    if (!leaseRanOut(claimState(row), row.database_now)) return row;
    const lost = lostClaimOf(claimState(row));
    const [updated] = await tx<TaskRow[]>`
      UPDATE tasks SET status = 'pending', claimed_by = NULL, claimed_by_key = NULL, started_at = NULL,
                       lease_expires_at = NULL, lease_seconds = NULL, updated_at = date_trunc('milliseconds', now()),
                       lost_by = ${lost.lost_by}, lost_by_key = ${lost.lost_by_key}, lost_at = ${lost.lost_at}
      WHERE seq = ${row.seq} AND status = 'in_progress' RETURNING *`;
    changes.push({
      task: updated!,
      type: "claim_expired",
      at: updated!.updated_at,
      agentId: null,
      keyName: null,
      from: "in_progress",
      to: "pending",
      details: claimExpiredDetails(lost),
    });
    return updated!;
  }

  private async insertTasks(
    tx: TransactionSQL,
    batch: readonly BatchTask[],
    now: Date,
    agentId: string | null,
    keyName: string | null,
    changes: Changes,
  ): Promise<string[]> {
    const tasks = await this.nameBatch(tx, batch);
    const projects = tasks.map((task) => task.project_id);
    const ids = tasks.map((task) => task.task_id);
    const [existing] = await tx<{ project_id: string; task_id: string }[]>`
      SELECT project_id, task_id FROM tasks
      WHERE (project_id, task_id) IN (SELECT * FROM unnest(${projects}::text[], ${ids}::text[])) LIMIT 1`;
    if (existing) throw batchTaskExists(batch, tasks, existing);
    const stored = await this.readDependencies(tx, tasks);
    const unfinished = countUnfinishedDependencies(batch, (projectId, taskId) => stored.get(projectId, taskId));
    checkStoredParents(batch, (projectId, taskId) => stored.get(projectId, taskId));

    // Sorted, so the batch's order is the insertion order (seq) whatever order nextval ran in.
    const seqRows = await tx<{ seq: string }[]>`
      SELECT nextval(pg_get_serial_sequence('tasks', 'seq')) AS seq
      FROM generate_series(1, ${tasks.length}) ORDER BY 1`;
    const rows = tasks.map((task, i) => ({
      ...task,
      seq: seqRows[i]!.seq,
      priority_rank: priorityRank[task.priority],
      unfinished_deps: unfinished[i],
      // A task imported as finished was, in effect, started (completed only) and finished now.
      started: task.status === "completed" ? now.toISOString() : null,
      finished: task.status === "pending" ? null : now.toISOString(),
      labels: task.labels ?? [],
      parent_id: task.parent_id ?? null,
      acceptance_criteria: task.acceptance_criteria ?? [],
    }));
    const inserted = await tx<TaskRow[]>`
      INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                         unfinished_deps, status, completion_notes, created_at, updated_at, started_at, completed_at,
                         labels, parent_id, acceptance_criteria)
      SELECT r.seq, r.task_id, r.project_id, r.description, r.inputs, r.outputs, r.priority, r.priority_rank,
             r.depends_on, r.unfinished_deps, r.status, r.completion_notes, ${now}, ${now}, r.started, r.finished,
             r.labels, r.parent_id, r.acceptance_criteria
      FROM jsonb_to_recordset(${rows}::jsonb) AS r(
        seq bigint, task_id text, project_id text, description text, inputs jsonb, outputs jsonb, priority text,
        priority_rank smallint, depends_on jsonb, unfinished_deps integer, status text, completion_notes text,
        started timestamptz, finished timestamptz, labels jsonb, parent_id text, acceptance_criteria jsonb)
      ORDER BY r.seq
      RETURNING *`;
    await this.insertDependencyRows(tx, tasks, rows, stored);
    for (const count of batchChildCounts(tasks))
      await this.countChildren(tx, count.projectId, count.parentId, count.total, count.open);
    for (const row of inserted.toSorted((a, b) => Number(a.seq) - Number(b.seq))) {
      const details = { status: row.status };
      changes.push({ task: row, type: "created", at: now, agentId, keyName, from: null, to: row.status, details });
    }
    await this.insertBatchNotes(tx, tasks, rows, now, agentId);
    return ids;
  }

  /** The notes a batch's tasks arrive with, oldest first per task, and each task's count and last note. */
  private async insertBatchNotes(
    tx: TransactionSQL,
    tasks: readonly NewTask[],
    rows: readonly { seq: string }[],
    now: Date,
    agentId: string | null,
  ): Promise<void> {
    const notes = tasks.flatMap((task, i) =>
      (task.notes ?? []).map((note) => ({
        task_seq: rows[i]!.seq,
        at: note.at ?? now.toISOString(),
        by: note.by ?? agentId,
        text: note.text,
      })),
    );
    if (notes.length === 0) return;
    for (const note of notes) requireStorableText("notes[].text", note.text);
    await insertNoteRows(tx, notes);
    await tx`
      UPDATE tasks SET notes_count = noted.count, last_note = noted.last
      FROM (SELECT task_seq, count(*) AS count, (array_agg(${tx.unsafe(NOTE_JSON)} ORDER BY note_id DESC))[1] AS last
            FROM task_notes WHERE task_seq = ANY(${rows.map((row) => row.seq)}::bigint[]) GROUP BY task_seq) AS noted
      WHERE tasks.seq = noted.task_seq`;
  }

  /** Adds to a parent's children counts (a batch, a finish or reopening, a move). */
  private async countChildren(tx: TransactionSQL, projectId: string, parentId: string, total: number, open: number) {
    await tx`
      UPDATE tasks SET children_total = children_total + ${total}, open_children = open_children + ${open}
      WHERE project_id = ${projectId} AND task_id = ${parentId}`;
  }

  /**
   * Raises the counters of the batch's IDs of the registry's form, then names the tasks sent without
   * task_id from their projects' TASK counters (domain.ts decides both).
   */
  private async nameBatch(tx: TransactionSQL, batch: readonly BatchTask[]): Promise<NewTask[]> {
    const firstNumbers = new Map<string, number>();
    for (const move of batchCounterMoves(batch)) {
      const first = await this.moveCounter(tx, move);
      if (move.take > 0) firstNumbers.set(move.projectId, first);
    }
    return nameBatch(batch, firstNumbers);
  }

  /**
   * The stored tasks a batch's depends_on names, of the naming task's project or (to say so) of
   * another. FOR SHARE: none can complete between this read and the commit, or its completion
   * would miss the dependency rows added below.
   */
  private async readDependencies(tx: TransactionSQL, tasks: readonly NewTask[]) {
    const named = [
      ...new Set(tasks.flatMap((task) => (task.parent_id ? [...task.depends_on, task.parent_id] : task.depends_on))),
    ];
    const rows =
      named.length === 0
        ? []
        : await tx<{ seq: string; project_id: string; task_id: string; status: TaskStatus }[]>`
            SELECT seq, project_id, task_id, status FROM tasks WHERE task_id = ANY(${named}::text[])
            ORDER BY seq FOR SHARE`;
    const byKey = new Map(rows.map((row) => [`${row.project_id}\n${row.task_id}`, row]));
    const byId = new Map(rows.map((row) => [row.task_id, row]));
    return {
      get: (projectId: string, taskId: string) => byKey.get(`${projectId}\n${taskId}`) ?? byId.get(taskId),
      seqOf: (projectId: string, taskId: string) => byKey.get(`${projectId}\n${taskId}`)?.seq,
    };
  }

  private async insertDependencyRows(
    tx: TransactionSQL,
    tasks: readonly NewTask[],
    rows: readonly { seq: string }[],
    stored: { seqOf(projectId: string, taskId: string): string | undefined },
  ): Promise<void> {
    const seqInBatch = new Map(tasks.map((task, i) => [`${task.project_id}\n${task.task_id}`, rows[i]!.seq]));
    const dependencySeqs: string[] = [];
    const dependentSeqs: string[] = [];
    tasks.forEach((task, i) => {
      for (const dependencyId of new Set(task.depends_on)) {
        const key = `${task.project_id}\n${dependencyId}`;
        dependencySeqs.push(seqInBatch.get(key) ?? stored.seqOf(task.project_id, dependencyId)!);
        dependentSeqs.push(rows[i]!.seq);
      }
    });
    if (dependencySeqs.length === 0) return;
    await tx`
      INSERT INTO task_dependencies (dependency_seq, dependent_seq)
      SELECT * FROM unnest(${dependencySeqs}::bigint[], ${dependentSeqs}::bigint[])`;
  }

  /** Asks domain.ts what the change does, then changes the task with a compare-and-set. */
  private async applyStatusChange(tx: TransactionSQL, change: StatusChange, changes: Changes): Promise<Task> {
    const row = await this.endLapsedClaim(tx, await this.lockTask(tx, change.ref), changes);
    const claimEnd = needsClaimEnd(claimState(row), change) ? await this.lastClaimEnd(tx, row) : null;
    const decided = decideStatusChange(claimState(row), change, claimEnd);
    switch (decided.step) {
      case "claim":
        return this.withNotes(tx, await this.claim(tx, row, change, changes));
      case "complete":
        return toTask(await this.complete(tx, row, change, changes));
      case "reopen":
        return toTask(await this.reopen(tx, row, change, changes));
      default:
        return toTask(await this.giveBack(tx, row, change, decided, changes));
    }
  }

  /** How the task's last claim ended, from its last two claim events (claimEndOf). */
  private async lastClaimEnd(tx: TransactionSQL, row: TaskRow): Promise<ClaimEnd | null> {
    const events = await tx<{ type: TaskEventType; agent_id: string | null; at: Date }[]>`
      SELECT type, agent_id, at FROM task_events
      WHERE task_seq = ${row.seq} AND type = ANY(${CLAIM_EVENT_TYPES}::text[])
      ORDER BY event_id DESC LIMIT 2`;
    return claimEndOf(events.map((event) => ({ ...event, at: event.at.toISOString() })));
  }

  private async claim(tx: TransactionSQL, row: TaskRow, change: StatusChange, changes: Changes): Promise<TaskRow> {
    if (row.unfinished_deps > 0) throw claimBlocked(claimState(row), await this.unfinishedDependencyIds(tx, row));
    if (row.open_children > 0) throw childrenOpen(row.task_id, "in_progress", await this.children(tx, row));
    const { now, agentId, leaseSeconds } = change;
    const keyName = keyNameOf(change);
    const lost = lostClaimAfterClaim(claimState(row), agentId, keyName);
    // The lease runs by the database's clock, which every instance shares.
    const [updated] = await tx<TaskRow[]>`
      UPDATE tasks
      SET status = 'in_progress', claimed_by = ${agentId}, claimed_by_key = ${keyName}, started_at = ${now}, updated_at = ${now},
          lease_expires_at = date_trunc('milliseconds', now() + ${leaseSeconds} * interval '1 second'),
          lease_seconds = ${leaseSeconds}, lost_by = ${lost.lost_by}, lost_by_key = ${lost.lost_by_key},
          lost_at = ${lost.lost_at}, released_by = NULL
      WHERE seq = ${row.seq} AND status = 'pending' AND unfinished_deps = 0 AND open_children = 0 RETURNING *`;
    if (!updated) throw lostRace(row.task_id, row.status, change.to);
    const details = { lease_expires_at: isoOrNull(updated.lease_expires_at) };
    changes.push({ task: updated, type: "claimed", at: now, agentId, keyName, from: "pending", to: "in_progress", details });
    return updated;
  }

  private async complete(tx: TransactionSQL, row: TaskRow, change: StatusChange, changes: Changes): Promise<TaskRow> {
    const gate = criteriaOpen(row);
    if (gate) throw gate;
    if (row.open_children > 0) throw childrenOpen(row.task_id, "completed", await this.children(tx, row));
    const { now, completionNotes } = change;
    const [updated] = await tx<TaskRow[]>`
      UPDATE tasks SET status = 'completed', completion_notes = ${completionNotes}, completed_at = ${now},
                       updated_at = ${now}, lease_expires_at = NULL, lease_seconds = NULL
      WHERE seq = ${row.seq} AND status = 'in_progress' RETURNING *`;
    if (!updated) throw lostRace(row.task_id, row.status, change.to);
    await this.finished(tx, updated, -1);
    const details = { completion_notes: completionNotes };
    changes.push({
      task: updated,
      type: "completed",
      at: now,
      agentId: change.agentId,
      keyName: keyNameOf(change),
      from: "in_progress",
      to: "completed",
      details,
    });
    return updated;
  }

  /**
   * A task finished (-1) or reopened (+1): its pending dependents count it (only theirs: a task
   * leaves pending only when ready), and so does its parent.
   */
  private async finished(tx: TransactionSQL, row: TaskRow, by: -1 | 1): Promise<void> {
    await tx`
      UPDATE tasks SET unfinished_deps = unfinished_deps + ${by}
      WHERE seq IN (SELECT dependent_seq FROM task_dependencies WHERE dependency_seq = ${row.seq}) AND status = 'pending'`;
    if (row.parent_id !== null) await this.countChildren(tx, row.project_id, row.parent_id, 0, by);
  }

  /** A release or a cancel: the reason becomes a note by the agent, and the event's details.reason. */
  private async giveBack(
    tx: TransactionSQL,
    row: TaskRow,
    change: StatusChange,
    step: Extract<StatusStep, { step: "release" | "cancel" }>,
    changes: Changes,
  ): Promise<TaskRow> {
    const { now, agentId } = change;
    const releasedBy = step.step === "release" && !step.forced ? agentId : null;
    const [updated] =
      step.step === "release"
        ? await tx<TaskRow[]>`
            UPDATE tasks SET status = 'pending', claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, updated_at = ${now},
                             lease_expires_at = NULL, lease_seconds = NULL, released_by = ${releasedBy}
            WHERE seq = ${row.seq} AND status = 'in_progress' RETURNING *`
        : await tx<TaskRow[]>`
            UPDATE tasks SET status = 'cancelled', claimed_by = NULL, claimed_by_key = NULL, updated_at = ${now}, completed_at = ${now},
                             lease_expires_at = NULL, lease_seconds = NULL, unfinished_deps = 0
            WHERE seq = ${row.seq} AND status = ${row.status} RETURNING *`;
    if (!updated) throw lostRace(row.task_id, row.status, change.to);
    if (step.step === "cancel") await this.finished(tx, updated, -1);
    const reason = change.completionNotes;
    const noted = reason === "" ? updated : await this.appendNote(tx, updated, { at: now, by: agentId, text: reason }, false);
    changes.push({
      task: noted,
      type: step.step === "cancel" ? "cancelled" : step.forced ? "force_released" : "released",
      at: now,
      agentId,
      keyName: keyNameOf(change),
      from: row.status,
      to: noted.status,
      details: statusEventDetails(step, row.status, reason, row),
    });
    return noted;
  }

  /** Back to pending from completed or cancelled: it waits again for what is not finished. */
  private async reopen(tx: TransactionSQL, row: TaskRow, change: StatusChange, changes: Changes): Promise<TaskRow> {
    if (row.parent_id !== null) {
      const [parent] = await tx<{ status: TaskStatus }[]>`
        SELECT status FROM tasks WHERE project_id = ${row.project_id} AND task_id = ${row.parent_id} FOR SHARE`;
      if (parent?.status === "completed") throw parentFinished(row.task_id, row.status, row.parent_id);
    }
    const [updated] = await tx<TaskRow[]>`
      UPDATE tasks SET status = 'pending', claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, completed_at = NULL,
                       updated_at = ${change.now},
                       unfinished_deps = (SELECT count(*) FROM task_dependencies d JOIN tasks t ON t.seq = d.dependency_seq
                                          WHERE d.dependent_seq = ${row.seq} AND t.status NOT IN ('completed', 'cancelled'))
      WHERE seq = ${row.seq} AND status = ${row.status} RETURNING *`;
    if (!updated) throw lostRace(row.task_id, row.status, "pending");
    await this.finished(tx, updated, 1);
    const details = statusEventDetails({ step: "reopen" }, row.status, "", null);
    changes.push({
      task: updated,
      type: "reopened",
      at: change.now,
      agentId: change.agentId,
      keyName: keyNameOf(change),
      from: row.status,
      to: "pending",
      details,
    });
    return updated;
  }

  /** The children of a task, for the sentence of children_open. */
  private async children(tx: TransactionSQL, row: TaskRow): Promise<ChildState[]> {
    return tx<ChildState[]>`
      SELECT task_id, status FROM tasks WHERE project_id = ${row.project_id} AND parent_id = ${row.task_id} ORDER BY seq`;
  }

  /** Appends one note; `touch`: the note is the change (updated_at is its time). Returns the task after it. */
  private async appendNote(
    tx: TransactionSQL,
    row: TaskRow,
    note: { at: Date; by: string | null; text: string },
    touch: boolean,
  ) {
    requireStorableText("text", note.text);
    const last = { at: note.at.toISOString(), by: note.by, text: note.text };
    await tx`INSERT INTO task_notes (task_seq, at, by, text) VALUES (${row.seq}, ${note.at}, ${note.by}, ${note.text})`;
    const [updated] = await tx<TaskRow[]>`
      UPDATE tasks SET notes_count = notes_count + 1, last_note = ${last}::jsonb,
                       updated_at = CASE WHEN ${touch} THEN ${note.at}::timestamptz ELSE updated_at END
      WHERE seq = ${row.seq} RETURNING *`;
    return updated!;
  }

  /** The task with every note, oldest first (none read when it has none). */
  private async withNotes(sql: SQL | TransactionSQL, row: TaskRow): Promise<Task> {
    if (row.notes_count === 0) return { ...toTask(row), notes: [] };
    const notes = await sql<{ at: Date; by: string | null; text: string }[]>`
      SELECT at, by, text FROM task_notes WHERE task_seq = ${row.seq} ORDER BY note_id`;
    return { ...toTask(row), notes: notes.map((note) => ({ at: note.at.toISOString(), by: note.by, text: note.text })) };
  }

  /** The task's dependencies that are not finished (completed or cancelled), each once. */
  private async unfinishedDependencyIds(tx: TransactionSQL, row: TaskRow): Promise<string[]> {
    const statuses = await tx<{ task_id: string; status: TaskStatus }[]>`
      SELECT task_id, status FROM tasks WHERE project_id = ${row.project_id} AND task_id = ANY(${row.depends_on}::text[])`;
    const statusById = new Map(statuses.map((dependency) => [dependency.task_id, dependency.status]));
    return [...new Set(row.depends_on)].filter((id) => !isFinished(statusById.get(id) ?? "pending"));
  }

  private async applyLeaseRenewal(tx: TransactionSQL, renewal: LeaseRenewal, changes: Changes): Promise<TaskRow> {
    const row = await this.endLapsedClaim(tx, await this.lockTask(tx, renewal.ref), changes);
    checkRenewal(claimState(row), renewal.agentId, keyNameOf(renewal));
    const seconds = renewalLeaseSeconds(renewal.leaseSeconds, row.lease_seconds);
    const [updated] = await tx<TaskRow[]>`
      UPDATE tasks SET lease_expires_at = date_trunc('milliseconds', now() + ${seconds} * interval '1 second')
      WHERE seq = ${row.seq} AND status = 'in_progress' RETURNING *`;
    if (!updated) throw lostRace(row.task_id, row.status, "in_progress");
    return updated;
  }

  private async applyEdit(tx: TransactionSQL, edit: TaskEdit, changes: Changes): Promise<TaskRow> {
    if (edit.description !== undefined) requireStorableText("description", edit.description);
    for (const criterion of edit.acceptance_criteria ?? []) requireStorableText("acceptance_criteria[].text", criterion.text);
    if (edit.depends_on !== undefined || edit.parent_id !== undefined)
      await this.lockDependencyEdit(tx, edit.ref, edit.depends_on ?? []);
    const row = await this.lockTask(tx, edit.ref);
    const task = toTask(row);
    const details = editChanges(task, edit);
    if (details === null) return row;
    if (details.parent_id?.to) checkEditedParent(task, details.parent_id.to, await this.ancestors(tx, row, details.parent_id.to));
    const priority = edit.priority ?? row.priority;
    const parentId = details.parent_id ? details.parent_id.to : row.parent_id;
    let [updated] = await tx<TaskRow[]>`
      UPDATE tasks SET priority = ${priority}, priority_rank = ${priorityRank[priority]},
                       description = ${edit.description ?? row.description}, updated_at = ${edit.now},
                       labels = ${details.labels?.to ?? row.labels}::jsonb, parent_id = ${parentId},
                       acceptance_criteria = ${details.acceptance_criteria?.to ?? row.acceptance_criteria}::jsonb
      WHERE seq = ${row.seq} RETURNING *`;
    if (details.parent_id) {
      // An edit never moves a finished task: the child is open, in both parents' counts.
      if (details.parent_id.from !== null) await this.countChildren(tx, row.project_id, details.parent_id.from, -1, -1);
      if (details.parent_id.to !== null) await this.countChildren(tx, row.project_id, details.parent_id.to, 1, 1);
    }
    if (details.depends_on) updated = await this.replaceDependencies(tx, updated!, row.depends_on, details.depends_on.to);
    const by = { agentId: edit.agentId, keyName: keyNameOf(edit) };
    changes.push({ task: updated!, type: "updated", at: edit.now, ...by, from: null, to: null, details });
    return updated!;
  }

  /** An edit of parent_id: the new parent and its ancestors, nearest first (checkEditedParent). */
  private async ancestors(tx: TransactionSQL, row: TaskRow, parentId: string): Promise<ChildState[]> {
    return tx<ChildState[]>`
      WITH RECURSIVE chain (task_id, depth) AS (
        SELECT ${parentId}::text, 0
        UNION ALL
        SELECT tasks.parent_id, chain.depth + 1 FROM chain
        JOIN tasks ON tasks.project_id = ${row.project_id} AND tasks.task_id = chain.task_id
        WHERE tasks.parent_id IS NOT NULL AND chain.depth < 10000
      )
      SELECT tasks.task_id, tasks.status FROM chain
      JOIN tasks ON tasks.project_id = ${row.project_id} AND tasks.task_id = chain.task_id
      ORDER BY chain.depth`;
  }

  /**
   * Before an edit of depends_on locks its task: one such edit per project at a time (two at once
   * could each close half of a cycle), then the old and new dependencies FOR SHARE, so none completes
   * between the count and the commit; dependencies before dependents, the order a completion takes.
   */
  private async lockDependencyEdit(tx: TransactionSQL, ref: TaskRef, after: readonly string[]): Promise<void> {
    const task = pickTask(
      ref.projectId === null
        ? await tx<TaskRow[]>`SELECT * FROM tasks WHERE task_id = ${ref.taskId}`
        : await tx<TaskRow[]>`SELECT * FROM tasks WHERE project_id = ${ref.projectId} AND task_id = ${ref.taskId}`,
      ref,
    );
    if (!task) return; // lockTask says so.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${task.project_id}, ${DEPENDENCY_EDIT_LOCK_SEED}))`;
    // Read again under the lock: an edit that held it may have changed them.
    const [current] = await tx<{ depends_on: string[] }[]>`SELECT depends_on FROM tasks WHERE seq = ${task.seq}`;
    const named = [...new Set([...(current?.depends_on ?? []), ...after])];
    if (named.length === 0) return;
    await tx`
      SELECT seq FROM tasks WHERE project_id = ${task.project_id} AND task_id = ANY(${named}::text[])
      ORDER BY seq FOR SHARE`;
  }

  /**
   * Gives the task a new depends_on once domain.ts has checked it against the stored graph: its
   * dependency rows and its count of unfinished ones follow, so it is ready or blocked at once.
   */
  private async replaceDependencies(
    tx: TransactionSQL,
    row: TaskRow,
    before: readonly string[],
    after: readonly string[],
  ): Promise<TaskRow> {
    const reachable =
      after.length === 0
        ? []
        : await tx<{ task_id: string; status: TaskStatus; depends_on: string[] }[]>`
            WITH RECURSIVE reach (task_id) AS (
              SELECT unnest(${after}::text[])
              UNION
              SELECT dependency.task_id FROM reach
              JOIN tasks ON tasks.project_id = ${row.project_id} AND tasks.task_id = reach.task_id
              CROSS JOIN LATERAL jsonb_array_elements_text(tasks.depends_on) AS dependency (task_id)
            )
            SELECT tasks.task_id, tasks.status, tasks.depends_on FROM reach
            JOIN tasks ON tasks.project_id = ${row.project_id} AND tasks.task_id = reach.task_id`;
    const unfinished = checkEditedDependencies(row, after, reachable);
    if (before.length > 0) {
      await tx`
        DELETE FROM task_dependencies WHERE dependent_seq = ${row.seq} AND dependency_seq IN (
          SELECT seq FROM tasks WHERE project_id = ${row.project_id} AND task_id = ANY(${before}::text[]))`;
    }
    if (after.length > 0) {
      await tx`
        INSERT INTO task_dependencies (dependency_seq, dependent_seq)
        SELECT seq, ${row.seq}::bigint FROM tasks WHERE project_id = ${row.project_id} AND task_id = ANY(${after}::text[])`;
    }
    const [updated] =
      after.length === 0
        ? await tx<TaskRow[]>`
            UPDATE tasks SET depends_on = '[]'::jsonb, unfinished_deps = 0 WHERE seq = ${row.seq} RETURNING *`
        : await tx<TaskRow[]>`
            UPDATE tasks SET depends_on = to_jsonb(${after}::text[]), unfinished_deps = ${unfinished}
            WHERE seq = ${row.seq} RETURNING *`;
    return updated!;
  }

  /**
   * Expires up to EXPIRE_BATCH_SIZE claims whose lease ran out; locked ones are another instance's
   * (or a holder's) to decide. SET reads the row as it was: lost_by and lost_at take the holder and
   * lease being cleared (lostClaimOf).
   */
  private async expireDueLeases(tx: TransactionSQL, changes: Changes): Promise<number> {
    const expired = await tx<TaskRow[]>`
      WITH due AS (
        SELECT seq FROM tasks
        WHERE status = 'in_progress' AND lease_expires_at <= now()
        ORDER BY lease_expires_at LIMIT ${EXPIRE_BATCH_SIZE} FOR UPDATE SKIP LOCKED)
      UPDATE tasks SET status = 'pending', lost_by = claimed_by, lost_by_key = claimed_by_key, lost_at = lease_expires_at,
                       claimed_by = NULL, claimed_by_key = NULL, started_at = NULL, lease_expires_at = NULL,
                       lease_seconds = NULL, updated_at = date_trunc('milliseconds', now())
      FROM due WHERE tasks.seq = due.seq
      RETURNING tasks.*`;
    for (const task of expired.toSorted((a, b) => a.lost_at!.getTime() - b.lost_at!.getTime())) {
      changes.push({
        task,
        type: "claim_expired",
        at: task.updated_at,
        agentId: null,
        keyName: null,
        from: "in_progress",
        to: "pending",
        details: claimExpiredDetails(claimState(task)),
      });
    }
    return expired.length;
  }

  /** Advances the counter by `count` and returns the first new number. */
  private async takeNumbers(tx: TransactionSQL, projectId: string, artifactType: string, count: number): Promise<number> {
    const [row] = await tx<{ last_assigned: string }[]>`
      INSERT INTO id_counters (project_id, artifact_type, last_assigned)
      VALUES (${projectId}, ${artifactType}, ${count})
      ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = id_counters.last_assigned + ${count}
      RETURNING last_assigned`;
    const last = Number(row!.last_assigned);
    if (last > MAX_ID_NUMBER) throw idsExhausted(projectId, artifactType);
    return last - count + 1;
  }

  /** Raises the counter to at least `atLeast`, then advances it by `take`; returns the first number taken. */
  private async moveCounter(tx: TransactionSQL, { projectId, artifactType, atLeast, take }: BatchCounterMove) {
    const [row] = await tx<{ last_assigned: string }[]>`
      INSERT INTO id_counters (project_id, artifact_type, last_assigned)
      VALUES (${projectId}, ${artifactType}, ${atLeast}::bigint + ${take}::bigint)
      ON CONFLICT (project_id, artifact_type)
      DO UPDATE SET last_assigned = GREATEST(id_counters.last_assigned, ${atLeast}::bigint) + ${take}::bigint
      RETURNING last_assigned`;
    const last = Number(row!.last_assigned);
    if (last > MAX_ID_NUMBER) throw idsExhausted(projectId, artifactType);
    return last - take + 1;
  }

  private async insertReservation(tx: TransactionSQL, reservation: NewReservation): Promise<Reservation> {
    const first = await this.takeNumbers(tx, reservation.projectId, reservation.artifactType, reservation.count);
    await tx`
      INSERT INTO reservations
        (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
      VALUES (${reservation.reservationId}, ${reservation.projectId}, ${reservation.artifactType}, ${first},
              ${reservation.count}, ${reservation.createdAt}, ${reservation.expiresAt})`;
    return {
      reservationId: reservation.reservationId,
      projectId: reservation.projectId,
      artifactType: reservation.artifactType,
      firstNumber: first,
      count: reservation.count,
      expiresAt: reservation.expiresAt.toISOString(),
    };
  }

  private async raiseCounter(tx: TransactionSQL, projectId: string, artifactType: string, lastAssigned: number) {
    const [row] = await tx<{ last_assigned: string }[]>`
      SELECT last_assigned FROM id_counters WHERE project_id = ${projectId} AND artifact_type = ${artifactType} FOR UPDATE`;
    checkCounterRaise(projectId, artifactType, Number(row?.last_assigned ?? 0), lastAssigned);
    // A counter made by a twin since the read above (none was there to lock) must not be lowered either.
    // The conflicting row is locked even when the WHERE keeps it unchanged, so the value read
    // below for the error sentence is the one that refused.
    const raised = await tx`
      INSERT INTO id_counters (project_id, artifact_type, last_assigned)
      VALUES (${projectId}, ${artifactType}, ${lastAssigned})
      ON CONFLICT (project_id, artifact_type) DO UPDATE SET last_assigned = excluded.last_assigned
      WHERE id_counters.last_assigned <= excluded.last_assigned`;
    if (raised.count === 0) {
      const [current] = await tx<{ last_assigned: string }[]>`
        SELECT last_assigned FROM id_counters WHERE project_id = ${projectId} AND artifact_type = ${artifactType}`;
      throw cannotLowerCounter(projectId, artifactType, Number(current!.last_assigned), lastAssigned);
    }
    return lastAssigned;
  }

  /** One part of GET /tasks from its own index, after `after` (a cursor's position in that part). */
  private async readPart(query: TaskListQuery, part: TaskListPart, after: TaskListPosition | null, limit: number) {
    const params: unknown[] = [];
    const param = (value: unknown, type: string) => `$${params.push(value)}::${type}`;
    const where: string[] = [];
    if (query.projectId !== null) where.push(`project_id = ${param(query.projectId, "text")}`);
    if (query.claimedBy !== null) where.push(`claimed_by = ${param(query.claimedBy, "text")}`);
    // Filters on the part's range scan: the part's index still gives the order.
    if (query.parent) where.push(`parent_id = ${param(query.parent, "text")}`);
    if (query.labels?.length) where.push(`labels @> to_jsonb(${param(query.labels, "text[]")})`);
    let order: string;
    if (part === "ready" || part === "blocked") {
      where.push(`list_group = ${TASK_LIST_PARTS.indexOf(part)}`);
      if (after) where.push(`(priority_rank, seq) > (${param(after.key, "smallint")}, ${param(after.seq, "bigint")})`);
      order = "priority_rank, seq";
    } else if (part === "in_progress") {
      where.push("status = 'in_progress'");
      if (after) where.push(`(started_at, seq) > (${param(after.key, "timestamptz")}, ${param(after.seq, "bigint")})`);
      order = "started_at, seq";
    } else {
      // completed and cancelled: the most recently finished first.
      where.push(`status = '${part}'`);
      if (after) where.push(`(completed_at, seq) < (${param(after.key, "timestamptz")}, ${param(after.seq, "bigint")})`);
      order = "completed_at DESC, seq DESC";
    }
    const text = `SELECT * FROM tasks WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT ${param(limit, "integer")}`;
    return this.statement((sql) => sql.unsafe<TaskRow[]>(text, params));
  }

  // -------------------------------------------------------------------------
  // The Storage interface: reading tasks.

  async getTask(ref: TaskRef): Promise<Task | null> {
    const rows = await this.statement((sql) =>
      ref.projectId === null
        ? sql<TaskRow[]>`SELECT * FROM tasks WHERE task_id = ${ref.taskId}`
        : sql<TaskRow[]>`SELECT * FROM tasks WHERE project_id = ${ref.projectId} AND task_id = ${ref.taskId}`,
    );
    const row = pickTask(rows, ref);
    return row ? this.statement((sql) => this.withNotes(sql, row)) : null;
  }

  async findNextTask(projectId: string, status: TaskStatus, agentId: string | null = null): Promise<Task | null> {
    const row = await this.statement((sql) => pickNextTask(sql, projectId, status, agentId, false));
    return row ? toTask(row) : null;
  }

  async claimNextTask(claim: NextClaim, idempotency?: IdempotentWrite<Task | null>): Promise<Task | null> {
    return this.write(idempotency, async (tx, changes) => {
      const row = await pickNextTask(tx, claim.projectId, "pending", claim.agentId, true);
      return row ? this.withNotes(tx, await this.claim(tx, row, claimOfNext(claim, row), changes)) : null;
    });
  }

  async listTasks(query: TaskListQuery): Promise<TaskPage> {
    if (query.q) return this.searchTasks(query, query.q);
    const start = query.cursor === null ? null : decodeTaskCursor(query.cursor, query);
    const parts = taskListParts(query);
    const rows: TaskRow[] = [];
    // One more than the page: whether it exists decides next_cursor.
    for (const part of parts) {
      if (start && parts.indexOf(part) < parts.indexOf(start.part)) continue;
      const after = start?.part === part ? start : null;
      rows.push(...(await this.readPart(query, part, after, query.limit + 1 - rows.length)));
      if (rows.length > query.limit) break;
    }
    const page = rows.slice(0, query.limit);
    const more = rows.length > query.limit;
    return { tasks: page.map(toTask), nextCursor: more ? encodeTaskCursor(listPosition(page.at(-1)!), query) : null };
  }

  /**
   * GET /tasks?q=: every word as a prefix (`word:*`, all of them), the best matches first (ts_rank,
   * ties by insertion); the snippet (ts_headline) only for the page. Ranking costs each match: only
   * the SEARCH_RANKED_MATCHES most recently added are ranked. One statement, and the planner picks
   * how to find those by the word's frequency in the statistics: a rare word from the GIN index of
   * task_search, then the newest of its few matches; a broad one by reading the project's tasks from
   * the newest back (task_search_by_project), testing each, until enough match.
   */
  private async searchTasks(query: TaskListQuery, q: string): Promise<TaskPage> {
    const offset = query.cursor === null ? 0 : decodeSearchCursor(query.cursor, query);
    const params: unknown[] = [
      searchWords(q)
        .map((word) => `${word}:*`)
        .join(" & "),
    ];
    const param = (value: unknown, type: string) => `$${params.push(value)}::${type}`;
    const where = ["s.document @@ query"];
    if (query.projectId !== null) where.push(`s.project_id = ${param(query.projectId, "text")}`);
    // The other filters are the task's: only they join tasks before the page.
    const onTask: string[] = [];
    if (query.status !== null) onTask.push(`t.status = ${param(query.status, "text")}`);
    if (query.ready !== null) onTask.push(`t.list_group = ${query.ready ? 0 : 1}`);
    if (query.claimedBy !== null) onTask.push(`t.claimed_by = ${param(query.claimedBy, "text")}`);
    if (query.parent) onTask.push(`t.parent_id = ${param(query.parent, "text")}`);
    if (query.labels?.length) onTask.push(`t.labels @> to_jsonb(${param(query.labels, "text[]")})`);
    const tasks = onTask.length > 0 ? "JOIN tasks t ON t.seq = s.task_seq" : "";
    // MATERIALIZED: the newest matches are found once, before any ranking or joining.
    const text = `
      WITH newest AS MATERIALIZED (
        SELECT s.task_seq, ts_rank(s.document, query) AS search_rank
        FROM task_search s ${tasks}, to_tsquery('simple', $1::text) AS query
        WHERE ${[...where, ...onTask].join(" AND ")}
        ORDER BY s.task_seq DESC LIMIT ${SEARCH_RANKED_MATCHES}),
      page AS (
        SELECT * FROM newest ORDER BY search_rank DESC, task_seq
        LIMIT ${param(query.limit + 1, "integer")} OFFSET ${param(offset, "integer")})
      SELECT t.*, ts_headline('simple', concat_ws(E'\n', s.description, nullif(s.criteria, ''), nullif(s.notes, '')),
                              to_tsquery('simple', $1::text),
                              'StartSel=[, StopSel=], MinWords=6, MaxWords=20, ShortWord=0, MaxFragments=1') AS snippet
      FROM page JOIN tasks t ON t.seq = page.task_seq JOIN task_search s ON s.task_seq = page.task_seq
      ORDER BY page.search_rank DESC, page.task_seq`;
    const rows = await this.statement((sql) => sql.unsafe<(TaskRow & { snippet: string })[]>(text, params));
    const page = rows.slice(0, query.limit);
    return {
      tasks: page.map((row) => ({ ...toTask(row), match: { snippet: clipSnippet(row.snippet) } })),
      nextCursor: rows.length > query.limit ? encodeSearchCursor(offset + query.limit, query) : null,
    };
  }

  async listProjects(): Promise<ProjectSummary[]> {
    const rows = await this.statement(
      (sql) => sql<
        {
          project_id: string;
          ready: string;
          blocked: string;
          in_progress: string;
          completed: string;
          cancelled: string;
          last_change_at: Date | null;
        }[]
      >`
        SELECT project_id, sum(ready) AS ready, sum(blocked) AS blocked, sum(in_progress) AS in_progress,
               sum(completed) AS completed, sum(cancelled) AS cancelled, max(last_change_at) AS last_change_at
        FROM (
          SELECT project_id, count(*) FILTER (WHERE list_group = 0) AS ready, count(*) FILTER (WHERE list_group = 1) AS blocked,
                 count(*) FILTER (WHERE list_group = 2) AS in_progress, count(*) FILTER (WHERE list_group = 3) AS completed,
                 count(*) FILTER (WHERE list_group = 4) AS cancelled, max(updated_at) AS last_change_at
          FROM tasks GROUP BY project_id
          UNION ALL
          SELECT DISTINCT project_id, 0, 0, 0, 0, 0, NULL::timestamptz FROM id_counters
        ) AS projects
        GROUP BY project_id ORDER BY project_id`,
    );
    return rows.map((row) => ({
      project_id: row.project_id,
      ready: Number(row.ready),
      blocked: Number(row.blocked),
      in_progress: Number(row.in_progress),
      completed: Number(row.completed),
      cancelled: Number(row.cancelled),
      last_change_at: isoOrNull(row.last_change_at),
    }));
  }

  async listTaskEvents(ref: TaskRef): Promise<TaskEvent[]> {
    const row = await this.requireTaskRow(ref);
    const events = await this.statement(
      (sql) => sql<EventRow[]>`SELECT * FROM task_events WHERE task_seq = ${row.seq} ORDER BY event_id`,
    );
    return events.map((event) => toEvent(event, row));
  }

  private async requireTaskRow(ref: TaskRef): Promise<TaskRow> {
    const rows = await this.statement((sql) =>
      ref.projectId === null
        ? sql<TaskRow[]>`SELECT * FROM tasks WHERE task_id = ${ref.taskId}`
        : sql<TaskRow[]>`SELECT * FROM tasks WHERE project_id = ${ref.projectId} AND task_id = ${ref.taskId}`,
    );
    const row = pickTask(rows, ref);
    if (!row) throw taskNotFound(ref);
    return row;
  }

  // -------------------------------------------------------------------------
  // The Storage interface: changing tasks.

  async addTasks(
    tasks: readonly BatchTask[],
    now: Date,
    agentId: string | null,
    idempotency?: IdempotentWrite<string[]>,
    keyName: string | null = null,
  ): Promise<string[]> {
    checkNewTaskText(tasks);
    return this.write(idempotency, (tx, changes) => this.insertTasks(tx, tasks, now, agentId, keyName, changes));
  }

  async changeTaskStatus(change: StatusChange, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    requireStorableText("completion_notes", change.completionNotes);
    return this.write(idempotency, (tx, changes) => this.applyStatusChange(tx, change, changes));
  }

  async renewLease(renewal: LeaseRenewal, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.write(idempotency, async (tx, changes) => toTask(await this.applyLeaseRenewal(tx, renewal, changes)));
  }

  async updateTask(edit: TaskEdit, idempotency?: IdempotentWrite<Task>): Promise<Task> {
    return this.write(idempotency, async (tx, changes) => toTask(await this.applyEdit(tx, edit, changes)));
  }

  async addNote(note: NewNote, idempotency?: IdempotentWrite<{ note: TaskNote; task: Task }>) {
    return this.write(idempotency, async (tx, changes) => {
      const row = await this.lockTask(tx, note.ref);
      const noted = await this.appendNote(tx, row, { at: note.now, by: note.agentId, text: note.text }, true);
      const by = { agentId: note.agentId, keyName: keyNameOf(note) };
      changes.push({ task: noted, type: "noted", at: note.now, ...by, from: null, to: null, details: {} });
      return { note: noted.last_note!, task: toTask(noted) };
    });
  }

  /** By the database's clock: `now` is not used (instances' clocks may differ; the database's is one). */
  async expireLeases(_now: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const count = await this.write(undefined, (tx, changes) => this.expireDueLeases(tx, changes));
      total += count;
      if (count < EXPIRE_BATCH_SIZE || this.closed) return total;
    }
  }

  subscribe(listener: (change: TaskChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  // -------------------------------------------------------------------------
  // The Storage interface: IDs.

  async allocateId(projectId: string, artifactType: string, idempotency?: IdempotentWrite<number>): Promise<number> {
    return this.write(idempotency, (tx) => this.takeNumbers(tx, projectId, artifactType, 1));
  }

  async reserveIds(reservation: NewReservation, idempotency?: IdempotentWrite<Reservation>): Promise<Reservation> {
    return this.write(idempotency, (tx) => this.insertReservation(tx, reservation));
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
    return this.write(idempotency, (tx) => this.raiseCounter(tx, projectId, artifactType, lastAssigned));
  }

  async listRegistry(projectId: string | null, now: Date): Promise<{ counters: IdCounter[]; reservations: Reservation[] }> {
    const [counters, reservations] = await Promise.all([
      this.statement((sql) =>
        projectId === null
          ? sql<{ project_id: string; artifact_type: string; last_assigned: string }[]>`
              SELECT project_id, artifact_type, last_assigned FROM id_counters ORDER BY project_id, artifact_type`
          : sql<{ project_id: string; artifact_type: string; last_assigned: string }[]>`
              SELECT project_id, artifact_type, last_assigned FROM id_counters WHERE project_id = ${projectId}
              ORDER BY artifact_type`,
      ),
      this.statement((sql) =>
        projectId === null
          ? sql<ReservationRow[]>`
              SELECT * FROM reservations WHERE expires_at > ${now} ORDER BY created_at, reservation_id`
          : sql<ReservationRow[]>`
              SELECT * FROM reservations WHERE project_id = ${projectId} AND expires_at > ${now}
              ORDER BY created_at, reservation_id`,
      ),
    ]);
    return {
      counters: counters.map((row) => ({
        project_id: row.project_id,
        artifact_type: row.artifact_type,
        last_assigned_id: Number(row.last_assigned),
      })),
      reservations: reservations.map(toReservation),
    };
  }

  // -------------------------------------------------------------------------
  // The Storage interface: Idempotency-Keys.

  async claimIdempotencyKey(request: IdempotencyRequest): Promise<IdempotencyOutcome> {
    const busy = this.inFlight.busy(request);
    if (busy) return { outcome: busy };
    // A row holds its response (there are no in-flight markers): replay it, or refuse.
    const [row] = await this.statement(
      (sql) => sql<StoredKeyRow[]>`
        SELECT fingerprint, response_status, response_body, created_at FROM idempotency_keys
        WHERE scope = ${request.scope} AND idempotency_key = ${request.key}`,
    );
    const live = row && row.created_at.getTime() > request.now.getTime() - request.retentionMs;
    if (live && row.fingerprint !== request.fingerprint) return { outcome: "mismatch" };
    if (live) return { outcome: "replay", response: { status: row.response_status, body: row.response_body } };
    return { outcome: "claimed", claim: this.inFlight.claim(request) };
  }

  async saveIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): Promise<void> {
    const claimed = this.inFlight.current(claim);
    // A twin on another instance may have stored its answer meanwhile: then that one stands.
    await this.statement((sql) => putResponse(sql, claim, claimed, response));
    this.inFlight.release(claim);
  }

  async releaseIdempotencyKey(claim: IdempotencyClaim): Promise<void> {
    // Nothing was committed for it: forgetting the claim frees the key.
    this.inFlight.release(claim);
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

  // -------------------------------------------------------------------------
  // The Storage interface: keys (postgres-keys.ts).

  async addApiKey(key: NewApiKey): Promise<ApiKeyRecord> {
    return this.transaction((tx) => insertApiKey(tx, key));
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.statement((sql) => selectApiKeys(sql));
  }

  async findApiKey(hash: string): Promise<ApiKeyRecord | null> {
    return this.statement((sql) => selectActiveApiKey(sql, hash));
  }

  async revokeApiKey(name: string, now: Date): Promise<ApiKeyRecord> {
    return this.transaction((tx) => markApiKeyRevoked(tx, name, now));
  }

  async touchApiKey(name: string, now: Date): Promise<void> {
    await this.statement((sql) => markApiKeyUsed(sql, name, now));
  }

  // -------------------------------------------------------------------------
  // The Storage interface: keeping the data (postgres-dump.ts).

  async openBackup(): Promise<BackupFile> {
    throw noBackupOnPostgres();
  }

  async openSnapshot(): Promise<DumpSnapshot> {
    return openPostgresSnapshot(this.pool);
  }

  async restore(lines: AsyncIterable<NumberedLine>): Promise<DumpCounts> {
    return restorePostgres(this.pool, lines);
  }

  async ping(): Promise<void> {
    await this.statement((sql) => sql`SELECT 1`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.listenTimer);
    this.listeners.clear();
    await this.announcing;
    await Promise.all([this.pool.close({ timeout: 5 }), this.listenConnection?.close({ timeout: 1 })]);
  }
}

/** What sendWithCommit sent with a COMMIT, and how it went. */
interface CommitTail {
  /** The changes as subscribers hear them, once the COMMIT has answered. */
  heard: Promise<TaskChange[]>;
  /** Why a statement sent with the COMMIT failed (the server then rolled the COMMIT back). */
  failure?: unknown;
  /** The key's row was there (unique violation): an answer stored meanwhile without the key's lock. */
  keyTaken: boolean;
}

/**
 * Writes the events of one transaction, in order; sent at once (execute), so that it goes ahead of
 * the COMMIT. Identity values follow the SELECT's order, so the i-th smallest event_id is the i-th change.
 */
function insertEventRows(tx: TransactionSQL, changes: Changes): Promise<EventRow[]> {
  const rows = changes.map((change, i) => ({
    i,
    task_seq: change.task.seq,
    type: change.type,
    at: change.at.toISOString(),
    agent_id: change.agentId,
    key_name: change.keyName,
    from_status: change.from,
    to_status: change.to,
    details: change.details,
  }));
  return tx<EventRow[]>`
    INSERT INTO task_events (task_seq, type, at, agent_id, key_name, from_status, to_status, details)
    SELECT r.task_seq, r.type, r.at, r.agent_id, r.key_name, r.from_status, r.to_status, r.details
    FROM jsonb_to_recordset(${rows}::jsonb) AS r(
      i integer, task_seq bigint, type text, at timestamptz, agent_id text, key_name text, from_status text,
      to_status text, details jsonb)
    ORDER BY r.i
    RETURNING *`.execute();
}

/** The inserted events with their changes, as subscribers hear them. */
function heardOf(inserted: readonly EventRow[], changes: Changes): TaskChange[] {
  const byId = inserted.toSorted((a, b) => Number(a.event_id) - Number(b.event_id));
  return byId.map((row, i) => ({ event: toEvent(row, changes[i]!.task), task: toTask(changes[i]!.task) }));
}

/** The NOTIFY payloads of `ids`: `<instance> <id>,<id>...`, each below MAX_NOTIFY_PAYLOAD. */
function notifyPayloads(instanceId: string, ids: readonly number[]): string[] {
  const payloads: string[] = [];
  for (let from = 0; from < ids.length; from += NOTIFY_IDS_PER_PAYLOAD) {
    payloads.push(`${instanceId} ${ids.slice(from, from + NOTIFY_IDS_PER_PAYLOAD).join(",")}`);
  }
  return payloads;
}

/** What a key's stored row means for a request of `claimed`'s fingerprint. */
function answered(row: StoredKeyRow, claimed: ClaimedKey): Error {
  if (row.fingerprint !== claimed.fingerprint) return idempotencyMismatch();
  return new StoredResponseReplay({ status: row.response_status, body: row.response_body });
}

/**
 * Writes the key's row with its response, or takes over a row past the retention; returns 0 when a
 * younger row (another request's answer) is there, which it leaves alone.
 */
async function putResponse(
  sql: SQL | TransactionSQL,
  claim: IdempotencyClaim,
  claimed: ClaimedKey,
  response: StoredResponse,
): Promise<number> {
  const written = await sql`
    INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, response_status, response_body, created_at)
    VALUES (${claim.scope}, ${claim.key}, ${claimed.fingerprint}, ${response.status}, ${response.body}, ${claimed.claimedAt})
    ON CONFLICT (scope, idempotency_key) DO UPDATE
      SET fingerprint = excluded.fingerprint, response_status = excluded.response_status,
          response_body = excluded.response_body, created_at = excluded.created_at
      WHERE idempotency_keys.created_at <= ${claimed.expiredBefore}`;
  return written.count;
}

/**
 * The next task of GET /tasks/next (for pending, the ready part: a task that is not pending is never
 * blocked), in its order. `skipLocked` (a claim-next, in its transaction): locks it, passing over the
 * tasks other claimers hold locked, so concurrent claimers never wait on each other's task.
 */
function selectNextTask(sql: SQL, projectId: string, status: TaskStatus, skipLocked: boolean, notReleasedBy: string | null) {
  const group = TASK_LIST_PARTS.indexOf(status === "pending" ? "ready" : status);
  return sql<TaskRow[]>`
    SELECT * FROM tasks WHERE project_id = ${projectId} AND list_group = ${group}
      ${notReleasedBy === null ? sql`` : sql`AND released_by IS DISTINCT FROM ${notReleasedBy}`}
    ORDER BY priority_rank, seq LIMIT 1 ${skipLocked ? sql`FOR UPDATE SKIP LOCKED` : sql``}`;
}

/**
 * GET /tasks/next's pick, for findNextTask and claimNextTask alike: the first ready task in order; the
 * agent that released it gets it back only when no other task is ready (the same index, past the
 * agent's own releases, few, looked up only then).
 */
async function pickNextTask(sql: SQL, projectId: string, status: TaskStatus, agentId: string | null, skipLocked: boolean) {
  const [row] = await selectNextTask(sql, projectId, status, skipLocked, null);
  if (row && agentId !== null && row.released_by === agentId) {
    const [other] = await selectNextTask(sql, projectId, status, skipLocked, agentId);
    return other ?? row;
  }
  return row ?? null;
}

/** The one row a ref names, or null; several (no project given): ambiguousTaskId naming their projects. */
function pickTask<Row extends TaskRow>(rows: readonly Row[], ref: TaskRef): Row | null {
  if (rows.length > 1)
    throw ambiguousTaskId(
      ref.taskId,
      rows.map((row) => row.project_id),
    );
  return rows[0] ?? null;
}
