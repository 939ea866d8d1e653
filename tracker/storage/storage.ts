// The storage behind the HTTP layer: SQLite (sqlite.ts, the default) and PostgreSQL (postgres.ts)
// implement it. The HTTP layer knows nothing of SQL; the storages know nothing of HTTP.
//
// What every implementation guarantees, for every method:
// - It is one atomic step: it commits everything or nothing. A method that throws an ApiError (4xx)
//   has changed nothing. Any other error is a 5xx (PostgreSQL: ApiError("unavailable") when the
//   database cannot be reached).
// - An acknowledged write is durable: it is committed before the promise resolves.
// - Its decisions come from domain.ts, the storage only reads and writes rows: which status change
//   is allowed and who may make it (decideStatusChange, checkRenewal), when a lease has run out
//   (leaseRanOut), what a lost claim records (lostClaimOf, lostClaimAfterClaim), what an edit
//   changed (editChanges), the lease of a renewal (renewalLeaseSeconds). So do its sentences, codes
//   and shared constants (taskNotFound, taskAlreadyExists, ambiguousTaskId, cannotLowerCounter,
//   idempotencyInFlight, idempotencyMismatch, SCHEMA_VERSION, PURGE_BATCH_SIZE …): both storages
//   decide and say the same things by construction, in steps of the same names.
// - Every change of a task writes its TaskEvent in the same transaction as the change, and after the
//   commit every subscriber (subscribe) hears it — on PostgreSQL, the subscribers of every instance.
// - A write given `idempotency` stores the response it renders from its result in the SAME
//   transaction as its effect (see the Idempotency section below).
// - Task identity is (project_id, task_id). A TaskRef with projectId null resolves to the one task of
//   that ID in any project; several: ApiError ambiguous_task_id naming them; none: taskNotFound.
// - Schema upgrades run at open, in place, nothing lost (a database of schema version 1 or 2, written
//   by an earlier release, opens and keeps every task, lost claim, counter, reservation and stored
//   response).
//
// Idempotency (the keys of API.md, per API key):
// - claimIdempotencyKey decides what a request carrying a key does. Outcomes: "claimed" (run it),
//   "replay" (a stored response with the same fingerprint, younger than the retention),
//   "mismatch" (the key was used with another fingerprint), "in_flight" (a request with the same
//   key and fingerprint has claimed it and not answered, and its lease has not run out).
// - The in-flight marker lives in the memory of the process that claimed the key: a twin on the
//   same process gets "in_flight" at once, and a process that dies (kill -9 included) takes its
//   claims with it, so no key stays blocked. SQLite: the file is held by one process (locking_mode
//   EXCLUSIVE), so that is all. PostgreSQL: the key's row and the effect commit in ONE transaction
//   (one commit per idempotent write): the write inserts the key's row first, so a twin on another
//   instance waits on that uncommitted row; when the row it waited for commits, its write changes
//   nothing and throws StoredResponseReplay carrying the stored response (or ApiError
//   idempotency_mismatch when that row was for another request). The HTTP layer answers a
//   StoredResponseReplay as a replay (status and body, Idempotent-Replayed: true).
// - saveIdempotentResponse stores a 4xx (no effect to pair with; a response another instance
//   stored meanwhile stands); releaseIdempotencyKey drops the claim after a 5xx so a retry runs
//   afresh. Both act only if the claim's token is current.

import type {
  BatchTask,
  IdCounter,
  LeaseRenewal,
  NewNote,
  NewReservation,
  NextClaim,
  ProjectSummary,
  Reservation,
  StatusChange,
  Task,
  TaskChange,
  TaskEdit,
  TaskEvent,
  TaskListQuery,
  TaskNote,
  TaskPage,
  TaskRef,
  TaskStatus,
} from "../domain.ts";
import type { ApiKeyRecord, NewApiKey } from "../keys.ts";
import type { BackupFile, DumpCounts, DumpSnapshot, NumberedLine } from "./dump.ts";

export interface StoredResponse {
  status: number;
  /** The JSON text of the response body. */
  body: string;
}

/**
 * Thrown by a write given `idempotency` when the key turned out to hold another request's stored
 * response by the time the write's transaction took it (a twin on another instance committed
 * first): the write changed nothing, and the answer is `response`, replayed.
 */
export class StoredResponseReplay extends Error {
  override readonly name = "StoredResponseReplay";
  constructor(readonly response: StoredResponse) {
    super("This Idempotency-Key already holds a stored response");
  }
}

/** Proof that this request holds an Idempotency-Key. */
export interface IdempotencyClaim {
  /** Hex SHA-256 of the API key: keys are scoped per API key, and the key itself is never stored. */
  scope: string;
  key: string;
  /** Random per claim: a write completes the key only if its claim is still the current one. */
  token: string;
}

export type IdempotencyOutcome =
  | { outcome: "claimed"; claim: IdempotencyClaim }
  | { outcome: "replay"; response: StoredResponse }
  | { outcome: "mismatch" }
  | { outcome: "in_flight" };

export interface IdempotencyRequest {
  scope: string;
  key: string;
  /** Hex SHA-256 of method, path with query, and body. */
  fingerprint: string;
  now: Date;
  /** How long the marker blocks others before it counts as abandoned. */
  leaseMs: number;
  /** Rows older than this are gone (API.md: kept for 24 hours). */
  retentionMs: number;
}

/** Passed to a write so it stores its response in its own transaction. */
export interface IdempotentWrite<Result> {
  claim: IdempotencyClaim;
  respond(result: Result): StoredResponse;
}

export interface Storage {
  // --- Reading tasks --------------------------------------------------------------------------

  /**
   * The task with every note (`notes`), or null; ambiguous_task_id when ref.projectId is null and
   * several projects have it.
   */
  getTask(ref: TaskRef): Promise<Task | null>;
  /**
   * The next task of API.md's GET /tasks/next from an index, never a scan: a task is ready when it is
   * pending with unfinished_deps = 0 and open_children = 0 (no open child); order is priority rank,
   * then insertion sequence. The readiness rule, for every way a task is handed out: when that task's
   * released_by is `agentId`, the next one not released by it comes first (a second lookup on the
   * same index, only then); the agent gets its own released task back only when no other is ready.
   */
  findNextTask(projectId: string, status: TaskStatus, agentId?: string | null): Promise<Task | null>;
  /**
   * POST /tasks/claim: the task findNextTask(projectId, "pending", agentId) would answer (the same pick), claimed as
   * changeTaskStatus claims (same compare-and-set, lease, `claimed` event, `notes` in the answer), in one transaction; null
   * when no task is ready. Concurrent calls never claim one task twice, and never wait on each
   * other's task: each takes the best task nobody else is taking (PostgreSQL: FOR UPDATE SKIP LOCKED).
   */
  claimNextTask(claim: NextClaim, idempotency?: IdempotentWrite<Task | null>): Promise<Task | null>;
  /**
   * A page in API.md's order (pending ready, pending blocked, in_progress by started_at, completed and
   * cancelled by completed_at descending), keyset-paginated from an index: a page costs the same at
   * 1,000 and at 100,000 tasks (labels and parent filter those range scans). With `q`: the tasks whose
   * search index (task_search, kept by triggers on description, criteria and notes only) holds every
   * word of searchWords as a prefix, best match first, each with match.snippet (clipSnippet), paged by
   * an offset cursor (encodeSearchCursor). A cursor that does not decode, or was made for other
   * filters: validation_failed naming `cursor`.
   */
  listTasks(query: TaskListQuery): Promise<TaskPage>;
  /** Every project that has a task or an ID counter, by project_id, with its counts. */
  listProjects(): Promise<ProjectSummary[]>;
  /** The task's history, oldest first; taskNotFound / ambiguous_task_id as getTask. */
  listTaskEvents(ref: TaskRef): Promise<TaskEvent[]>;

  // --- Changing tasks -------------------------------------------------------------------------

  /**
   * All or nothing. Conflicts (taskAlreadyExists, per project) and dependencies on unknown tasks or
   * tasks of another project (400) are checked inside the transaction. The order of `tasks` is the
   * insertion order. Cycles and repeats inside the batch are already rejected (domain.ts). A task of
   * status completed is stored completed (completed_at = started_at = now) and counts as a finished
   * dependency; one `created` event per task. An ID of the registry's form raises its type's counter
   * to at least its number, and then a task without task_id is named TASK-nnn from its project's TASK
   * counter (the one allocateId advances), both in the same transaction, counters in the order of
   * batchCounterMoves, tasks in batch order (nameBatch); depends_on names only tasks known before the
   * call. A parent_id names a task of the batch or a stored one of the same project (checkStoredParents;
   * the batch's own rules are checkBatchParents'), whose children_total and open_children follow
   * (batchChildCounts); a task's notes are stored with it (`by` null: agentId, `at` null: now).
   * The `created` events name agentId and keyName (the request's key). Returns the added task IDs in order.
   */
  addTasks(
    tasks: readonly BatchTask[],
    now: Date,
    agentId: string | null,
    idempotency?: IdempotentWrite<string[]>,
    keyName?: string | null,
  ): Promise<string[]>;
  /**
   * Compare-and-set: read the task, check the transition (and, for a claim, that every depends_on is
   * completed), then UPDATE ... WHERE the status read; zero rows changed means another writer won
   * (lostRace), never a second winner. A claim sets claimed_by = agentId and lease_expires_at = now +
   * leaseSeconds (PostgreSQL: the database's now()). Leaving in_progress checks the holder: a task
   * with a holder may be moved on only by that agent under that key (holdsClaim: the key and the agent
   * together; else notClaimHolder, whatever agent ID another key sends), or released by anyone with
   * force (event force_released). A claim sets claimed_by_key = keyName; every event records keyName. A request whose agent lost this task's lease (the task's lost
   * claim, lost_by: its last claim_expired named it, and it has not claimed the task again) gets
   * claimLost, force or not. Completing a pending task is cannotCompletePending, told how the task's
   * last claim ended (claimEndOf of its two newest CLAIM_EVENT_TYPES events). A claim of a task with an
   * open child is childrenOpen; its answer carries every note. Completing checks criteriaOpen and
   * childrenOpen (the task's own columns; the children are read only to name them). Finishing
   * (completed, cancelled) decrements unfinished_deps of every pending dependent and open_children of
   * the parent, reopening increments them (a child of a completed parent: parentFinished), in the same
   * transaction. A release or cancel with completionNotes appends it as a note by agentId
   * (statusEventDetails: details.reason); a release not forced sets released_by, a claim clears it.
   */
  changeTaskStatus(change: StatusChange, idempotency?: IdempotentWrite<Task>): Promise<Task>;
  /**
   * Extends the lease of an in_progress task to now + renewalLeaseSeconds (the length asked for, else
   * the claim's own, else the default), only
   * for its holder (notClaimHolder / claimLost as changeTaskStatus; not in_progress:
   * invalid_transition `cannot renew <id>: it is <status>`). Writes no event.
   */
  renewLease(renewal: LeaseRenewal, idempotency?: IdempotentWrite<Task>): Promise<Task>;
  /**
   * A person's edit of priority, description, labels, parent_id, acceptance_criteria (check/uncheck)
   * and/or depends_on; event `updated` with from/to of what changed (editChanges). A new parent_id is
   * checked against its stored ancestors (checkEditedParent) and both parents' counts follow. A new depends_on is checked against the stored graph (checkEditedDependencies: unknown
   * tasks, cycles, a task in progress gaining an unfinished dependency), and its dependency rows and
   * unfinished_deps are replaced in the same transaction, so the task is ready or blocked at once.
   * PostgreSQL: one such edit per project at a time, its dependencies read FOR SHARE (as a batch's).
   */
  updateTask(edit: TaskEdit, idempotency?: IdempotentWrite<Task>): Promise<Task>;
  /**
   * Appends a note to a task in any status (taskNotFound / ambiguous_task_id as getTask): notes_count
   * and last_note follow, updated_at is the note's time, event `noted`. Returns the note and the task.
   */
  addNote(note: NewNote, idempotency?: IdempotentWrite<{ note: TaskNote; task: Task }>): Promise<{ note: TaskNote; task: Task }>;
  /**
   * Every in_progress task whose lease ran out (by the database's clock on PostgreSQL; by `now` on
   * SQLite) becomes pending, claimed_by cleared, its lost claim recorded (lostClaimOf), with a
   * claim_expired event naming the former holder, in one transaction. Safe to run on several instances at once. Returns how many expired.
   */
  expireLeases(now: Date): Promise<number>;
  /**
   * Calls `listener` after the commit of every task change, with the event and the task after it;
   * on PostgreSQL also for the changes committed by other instances (LISTEN/NOTIFY). Returns the
   * unsubscribe function. A listener that throws does not affect the write or other listeners.
   */
  subscribe(listener: (change: TaskChange) => void): () => void;

  // --- IDs ------------------------------------------------------------------------------------

  /**
   * allocateId / reserveIds / raiseIdCounter share one counter per (project, type); every number
   * handed out is above every number handed out before, even across restarts. Two concurrent
   * allocations serialize on the counter row. Returns the allocated number.
   */
  allocateId(projectId: string, artifactType: string, idempotency?: IdempotentWrite<number>): Promise<number>;
  /** The counter advances by count in the same step as the reservation row is written. */
  reserveIds(reservation: NewReservation, idempotency?: IdempotentWrite<Reservation>): Promise<Reservation>;
  getReservation(reservationId: string): Promise<Reservation | null>;
  /** Raises the counter to `lastAssigned`; cannotLowerCounter when it is already higher. Returns `lastAssigned`. */
  raiseIdCounter(
    projectId: string,
    artifactType: string,
    lastAssigned: number,
    idempotency?: IdempotentWrite<number>,
  ): Promise<number>;
  /** The counters of a project (or of all, null) and its reservations not yet expired at `now`. */
  listRegistry(projectId: string | null, now: Date): Promise<{ counters: IdCounter[]; reservations: Reservation[] }>;

  // --- Idempotency ----------------------------------------------------------------------------

  claimIdempotencyKey(request: IdempotencyRequest): Promise<IdempotencyOutcome>;
  saveIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): Promise<void>;
  releaseIdempotencyKey(claim: IdempotencyClaim): Promise<void>;
  /** Deletes keys created before `before`, PURGE_BATCH_SIZE rows a statement; returns how many. */
  deleteIdempotencyKeysBefore(before: Date): Promise<number>;

  // --- Keys (keys.ts; API.md, "Keys and roles") ----------------------------------------------
  // Only a key's hash is kept. A dump leaves the keys out: they are made anew for a restored tracker.
  // Their table stands apart from SCHEMA_VERSION: each storage creates it at open when it is missing,
  // whatever the version (schema/*-keys.sql); an older tracker on the database ignores it.

  /** Conflict (keyNameTaken) when a key of that name exists, revoked or not. */
  addApiKey(key: NewApiKey): Promise<ApiKeyRecord>;
  /** Every key, revoked ones too, by name. */
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** The key of this hash, or null when there is none or it is revoked. */
  findApiKey(hash: string): Promise<ApiKeyRecord | null>;
  /** Sets revoked_at (once: revoking again changes nothing); keyNotFound when there is no such key. */
  revokeApiKey(name: string, now: Date): Promise<ApiKeyRecord>;
  /** Notes when the key was last used. */
  touchApiKey(name: string, now: Date): Promise<void>;

  // --- Keeping the data (dump.ts; API.md, "Keeping the data") ---------------------------------

  /** SQLite: a consistent copy of the whole database file (VACUUM INTO). PostgreSQL: ApiError conflict (use pg_dump). */
  openBackup(): Promise<BackupFile>;
  /** A consistent view of everything at this moment, read page by page while writes go on. */
  openSnapshot(): Promise<DumpSnapshot>;
  /**
   * Loads a dump (dump.ts checks every line) in ONE transaction, into a database that holds no
   * task, event, counter or reservation (else DumpError, and nothing is written).
   */
  restore(lines: AsyncIterable<NumberedLine>): Promise<DumpCounts>;

  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
