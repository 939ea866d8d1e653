// The storage behind the HTTP layer. SQLite (sqlite.ts) implements it today; a PostgreSQL
// implementation slots in beside it without touching server.ts or domain.ts.
//
// What every implementation must guarantee:
//
// - Every method is one atomic step: it commits everything or nothing. The domain rules it must
//   enforce inside that step come from domain.ts (isAllowedTransition, invalidTransition,
//   taskNotFound, formatArtifactId) so both implementations give the same sentences.
// - A method that throws an ApiError (4xx) has changed nothing. Any other error is a 5xx.
// - An acknowledged write is durable: it is committed before the promise resolves.
//
// - changeTaskStatus: compare-and-set. Read the task, check the transition (and, for
//   pending -> in_progress, that every depends_on is completed), then
//   `UPDATE tasks ... WHERE task_id = ? AND status = <the status read>`; zero rows changed means
//   another writer won, and the result is invalid_transition, never a second winner. On SQLite the
//   read and the update sit in one BEGIN IMMEDIATE transaction; on PostgreSQL lock the row
//   (SELECT ... FOR UPDATE) or rely on the WHERE clause. Moving a task to completed must, in the
//   same transaction, decrement unfinished_deps of every task that depends on it.
// - findNextTask must use an index, not a scan: tasks carry `unfinished_deps` (the number of
//   depends_on not yet completed), kept by addTasks and changeTaskStatus. A task is ready when it is
//   pending with unfinished_deps = 0; order is priority rank, then insertion sequence.
//   A task leaves pending only when ready and completed is final, so every task that is not pending
//   has unfinished_deps = 0: one index (project_id, status, unfinished_deps, priority_rank, seq)
//   serves every status.
// - addTasks: all or nothing. Conflicts (409 `Task already exists: X`) and dependencies on unknown
//   tasks or tasks of another project (400) are checked inside the transaction. The order of
//   `tasks` is the insertion order. Cycles and repeats inside the batch are already rejected.
// - allocateId / reserveIds / raiseIdCounter share one counter per (project, type); every number
//   handed out is above every number handed out before, even across restarts. Two concurrent
//   allocations serialize on the counter row (SQLite: IMMEDIATE; PostgreSQL: INSERT ... ON CONFLICT
//   DO UPDATE ... RETURNING, which takes the row lock).
//
// Idempotency (the keys of API.md, per API key):
// - claimIdempotencyKey decides what a request carrying a key does. Outcomes: "claimed" (run it),
//   "replay" (a stored response with the same fingerprint, younger than the retention),
//   "mismatch" (the key was used with another fingerprint), "in_flight" (a request with the same
//   key and fingerprint has claimed it and not answered, and its lease has not run out).
//   On claiming it records an in-flight marker with a lease that every instance sharing the
//   database can see. PostgreSQL: commit a marker row (its own short transaction) holding the
//   fingerprint, a random token and lease_until; a marker past its lease (its instance died) may
//   be claimed again with a fresh token. SQLite: the file is held by one process (locking_mode
//   EXCLUSIVE), so the marker lives in that process's memory and dies with it.
// - A write method given `idempotency` stores the response it renders from its result in the SAME
//   transaction as its effect, and only if the claim is still current (PostgreSQL:
//   `UPDATE ... WHERE scope AND key AND token`); if it is not (the lease was lost to another
//   request), it must roll back and throw ApiError("idempotency_in_flight"). So an effect and its
//   stored response commit together or not at all.
// - saveIdempotentResponse stores a 4xx (no effect to pair with); releaseIdempotencyKey drops the
//   marker after a 5xx so a retry runs afresh. Both act only if the claim's token is current.

import type { NewReservation, NewTask, Reservation, StatusChange, Task, TaskStatus } from "../domain.ts";

export interface StoredResponse {
  status: number;
  /** The JSON text of the response body. */
  body: string;
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
  getTask(taskId: string): Promise<Task | null>;
  findNextTask(projectId: string, status: TaskStatus): Promise<Task | null>;
  /** Returns the added task IDs in order. */
  addTasks(tasks: readonly NewTask[], now: Date, idempotency?: IdempotentWrite<string[]>): Promise<string[]>;
  changeTaskStatus(change: StatusChange, idempotency?: IdempotentWrite<Task>): Promise<Task>;

  /** Returns the allocated number. */
  allocateId(projectId: string, artifactType: string, idempotency?: IdempotentWrite<number>): Promise<number>;
  reserveIds(reservation: NewReservation, idempotency?: IdempotentWrite<Reservation>): Promise<Reservation>;
  getReservation(reservationId: string): Promise<Reservation | null>;
  /** Raises the counter to `lastAssigned`; 409 conflict when it is already higher. Returns `lastAssigned`. */
  raiseIdCounter(
    projectId: string,
    artifactType: string,
    lastAssigned: number,
    idempotency?: IdempotentWrite<number>,
  ): Promise<number>;

  claimIdempotencyKey(request: IdempotencyRequest): Promise<IdempotencyOutcome>;
  saveIdempotentResponse(claim: IdempotencyClaim, response: StoredResponse): Promise<void>;
  releaseIdempotencyKey(claim: IdempotencyClaim): Promise<void>;
  /** Deletes keys created before `before`; returns how many. */
  deleteIdempotencyKeysBefore(before: Date): Promise<number>;

  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
