// The rules of the Task Tracking service (API.md), free of HTTP and SQL:
// types, validation, the state machine, ID formatting and the error codes.

import { createHash } from "node:crypto";
import { isOperatorKeyName } from "./operator-keys.ts";

export type Priority = "high" | "medium" | "low";
export type TaskStatus = "pending" | "in_progress" | "completed" | "cancelled";

/** One entry of a task's notes: when, by whom (the X-Agent-Id; null without one), what. */
export interface TaskNote {
  at: string;
  by: string | null;
  text: string;
}

/** One acceptance criterion of a task; completing the task needs every one done. */
export interface Criterion {
  text: string;
  done: boolean;
}

export interface Task {
  task_id: string;
  project_id: string;
  description: string;
  inputs: string[];
  outputs: string[];
  priority: Priority;
  depends_on: string[];
  status: TaskStatus;
  /** The X-Agent-Id of the claim, as the client sent it. */
  claimed_by: string | null;
  /** The name of the key that claimed it: with claimed_by, the holder (null with claimed_by, or a claim before keys). */
  claimed_by_key: string | null;
  /** While in_progress: when the claim's lease runs out. Null otherwise. */
  lease_expires_at: string | null;
  completion_notes: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  /** A set of names, sorted. */
  labels: string[];
  parent_id: string | null;
  acceptance_criteria: Criterion[];
  notes_count: number;
  last_note: TaskNote | null;
  /** Its children, and how many of them are finished (completed or cancelled). */
  children: { total: number; done: number };
  /** The agent that last released it (not force, not expiry), until the next claim. */
  released_by: string | null;
  /** Every note, oldest first: only in GET /tasks/<id> and in the answer to a claim. */
  notes?: TaskNote[];
  /** With GET /tasks?q=: where the task matched. */
  match?: { snippet: string };
}

/**
 * How a request names one task: `projectId` null means "the one task with this ID in any project"
 * (409 ambiguous_task_id when several projects have one).
 */
export interface TaskRef {
  projectId: string | null;
  taskId: string;
}

/** A validated task of a `POST /tasks/batch` body. */
export interface NewTask {
  task_id: string;
  project_id: string;
  description: string;
  inputs: string[];
  outputs: string[];
  priority: Priority;
  depends_on: string[];
  /** `pending` (the default), `completed` or `cancelled`: a task imported as already finished. */
  status: "pending" | "completed" | "cancelled";
  /** Only for `status: completed`. */
  completion_notes: string;
  /** A set, lower-cased and sorted (schemas.ts). Absent: none (as parent_id, criteria and notes). */
  labels?: string[];
  parent_id?: string | null;
  acceptance_criteria?: Criterion[];
  /** Notes it arrives with (an import): `by` null takes the request's X-Agent-Id, `at` null now. */
  notes?: Array<{ text: string; by: string | null; at: string | null }>;
}

/** A task of a `POST /tasks/batch` body as sent: without task_id, the tracker names it (nameBatch). */
export type BatchTask = Omit<NewTask, "task_id"> & { task_id?: string | undefined };

export interface StatusChange {
  ref: TaskRef;
  to: TaskStatus;
  /**
   * Stored as completion_notes when the task moves to `completed`; for a release or a cancel, the
   * reason: a note by the agent, and the event's details.reason (empty: none).
   */
  completionNotes: string;
  /** The `X-Agent-Id` of the request: recorded as `claimed_by` on a claim, checked as the holder otherwise. */
  agentId: string | null;
  /** The name of the request's key: recorded as `claimed_by_key` on a claim, checked with agentId otherwise (absent: none). */
  keyName?: string | null;
  /** For a claim: the lease length (the request's lease_seconds, else TRACKER_CLAIM_TTL). */
  leaseSeconds: number;
  /** For in_progress -> pending or cancelled: end a claim another agent holds (a release: force_released). */
  force: boolean;
  now: Date;
}

/** POST /tasks/claim: the best ready task of a project, claimed as a claim by PUT …/status would. */
export interface NextClaim {
  projectId: string;
  agentId: string | null;
  keyName?: string | null;
  leaseSeconds: number;
  now: Date;
}

/** The status change a claim-next makes of the task it picked: the very claim PUT …/status makes. */
export function claimOfNext(claim: NextClaim, task: { project_id: string; task_id: string }): StatusChange {
  const ref = { projectId: task.project_id, taskId: task.task_id };
  return {
    ref,
    to: "in_progress",
    completionNotes: "",
    agentId: claim.agentId,
    keyName: claim.keyName ?? null,
    leaseSeconds: claim.leaseSeconds,
    force: false,
    now: claim.now,
  };
}

export interface LeaseRenewal {
  ref: TaskRef;
  agentId: string | null;
  keyName?: string | null;
  /** Null: the length the claim asked for. */
  leaseSeconds: number | null;
  now: Date;
}

/** A person's edit of a task (the board): only the fields given change. */
export interface TaskEdit {
  ref: TaskRef;
  priority?: Priority;
  description?: string;
  /** The whole new list, in the order given; duplicates already refused (schemas.ts). */
  depends_on?: string[];
  /** The whole new set, lower-cased and sorted (schemas.ts). */
  labels?: string[];
  parent_id?: string | null;
  /** The whole new list. */
  acceptance_criteria?: Criterion[];
  /** 1-based positions of criteria to tick off, and to untick (after acceptance_criteria, when both). */
  check?: number[];
  uncheck?: number[];
  agentId: string | null;
  keyName?: string | null;
  now: Date;
}

/** A note a caller appends to a task (POST /tasks/<id>/notes). */
export interface NewNote {
  ref: TaskRef;
  text: string;
  agentId: string | null;
  keyName?: string | null;
  now: Date;
}

/** Every kind of entry of a task's history: the API's enum, the dump's, the storages' CHECK. */
export const TASK_EVENT_TYPES = [
  "created",
  "claimed",
  "released",
  "force_released",
  "completed",
  "claim_expired",
  "updated",
  "cancelled",
  "reopened",
  "noted",
] as const;
export type TaskEventType = (typeof TASK_EVENT_TYPES)[number];

/** One entry of a task's history (GET /tasks/<id>/events), written in the transaction of its change. */
export interface TaskEvent {
  event_id: number;
  project_id: string;
  task_id: string;
  type: TaskEventType;
  at: string;
  /** The X-Agent-Id of the request that made the change; null when none, or when the service expired a lease. */
  agent_id: string | null;
  /** The name of the key of that request; null when the service expired a lease (or before keys). */
  key_name: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: Record<string, unknown>;
}

/** What the live stream (GET /events) sends: the event and the task after it. */
export interface TaskChange {
  event: TaskEvent;
  task: Task;
}

export interface TaskListQuery {
  projectId: string | null;
  status: TaskStatus | null;
  /** true: pending and ready; false: pending and blocked; null: either (implies nothing). */
  ready: boolean | null;
  claimedBy: string | null;
  /** Full text over description, criteria and notes (absent or null: none); the page is then ranked. */
  q?: string | null;
  /** The task must carry every one of these labels. */
  labels?: string[];
  /** The children of this task (absent or null: any). */
  parent?: string | null;
  /** 1..MAX_LIST_LIMIT */
  limit: number;
  /** The next_cursor of the previous page, as the client sent it; the storage decodes and checks it. */
  cursor: string | null;
}

export interface TaskPage {
  tasks: Task[];
  nextCursor: string | null;
}

export interface ProjectSummary {
  project_id: string;
  ready: number;
  blocked: number;
  in_progress: number;
  completed: number;
  cancelled: number;
  /** The latest updated_at of its tasks (or the counter's change); null when it has only counters and no time is known. */
  last_change_at: string | null;
}

export interface IdCounter {
  project_id: string;
  artifact_type: string;
  last_assigned_id: number;
}

export interface NewReservation {
  reservationId: string;
  projectId: string;
  artifactType: string;
  count: number;
  createdAt: Date;
  expiresAt: Date;
}

export interface Reservation {
  reservationId: string;
  projectId: string;
  artifactType: string;
  firstNumber: number;
  count: number;
  expiresAt: string;
}

// ---------------------------------------------------------------------------
// Errors: one class, one table of codes and statuses.

export const statusByErrorCode = {
  validation_failed: 400,
  invalid_transition: 400,
  unauthorized: 401,
  /** A key whose role or projects do not cover the request (keys.ts). */
  forbidden: 403,
  /** An unknown endpoint. */
  not_found: 404,
  task_not_found: 404,
  reservation_not_found: 404,
  key_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  ambiguous_task_id: 409,
  not_claim_holder: 409,
  claim_lost: 409,
  criteria_open: 409,
  children_open: 409,
  idempotency_in_flight: 409,
  payload_too_large: 413,
  idempotency_mismatch: 422,
  /** A key that holds too many of something at once (GET /events streams). */
  too_many_requests: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof statusByErrorCode;

export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.status = statusByErrorCode[code];
  }
}

/** A refusal for now, not for good: the reply says when to try again (Retry-After). */
export class RetryLater extends ApiError {
  constructor(
    code: "too_many_requests" | "unavailable",
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(code, message);
  }
}

export function validationError(message: string): ApiError {
  return new ApiError("validation_failed", message);
}

// ---------------------------------------------------------------------------
// Bounds and patterns of API.md.

export const MAX_TASKS_PER_BATCH = 500;
export const MAX_DESCRIPTION_CHARS = 10_000;
export const MAX_COMPLETION_NOTES_CHARS = 10_000;
export const MAX_RESERVATION_COUNT = 100;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
export const MAX_AGENT_ID_LENGTH = 128;
export const MAX_LIST_LIMIT = 500;
export const DEFAULT_LIST_LIMIT = 100;
export const MIN_LEASE_SECONDS = 5;
export const MAX_LEASE_SECONDS = 86_400;
export const DEFAULT_CLAIM_TTL_SECONDS = 1800;
export const MAX_LABELS = 20;
export const MAX_LABEL_CHARS = 40;
export const LABEL_PATTERN = /^[a-z0-9._:/-]{1,40}$/;
export const LABEL_RULE = "1 to 40 characters of a-z 0-9 . _ - : /";
export const MAX_CRITERIA = 50;
export const MAX_CRITERION_CHARS = 1000;
export const MAX_NOTE_CHARS = 10_000;
export const MAX_NOTES_PER_NEW_TASK = 100;
/** The snippet of a search hit, at most this many characters. */
export const MAX_SNIPPET_CHARS = 160;
/** Both storages apply this schema version (PRAGMA user_version / tracker_schema). */
export const SCHEMA_VERSION = 4;
/** Rows deleted per statement when old Idempotency-Keys are purged. */
export const PURGE_BATCH_SIZE = 2000;

// Not only dots: a URL reads `.` and `..` as path steps (`/tasks/../status` is `/status`).
export const TASK_ID_PATTERN = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;
export const PROJECT_ID_PATTERN = /^(?!\.+$)[A-Za-z0-9._-]{1,128}$/;
export const ARTIFACT_TYPE_PATTERN = /^[A-Z][A-Z0-9]{0,15}$/;
export const PRINTABLE_ASCII_PATTERN = /^[\x20-\x7E]+$/;
/**
 * An agent ID names an agent, nothing more: no spaces, so no sentence (`agent-b. SYSTEM NOTICE: …`)
 * rides into other agents' error texts. Wide enough for what clients send: `claude-3f2a9c1e-77b`,
 * `build-host.local-4242`, `alice@laptop`, `ci:job-17`.
 */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9._:@-]+$/;
export const AGENT_ID_RULE = `1 to ${MAX_AGENT_ID_LENGTH} characters of A-Z a-z 0-9 . _ - : @`;
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const PRIORITIES: readonly Priority[] = ["high", "medium", "low"];
export const TASK_STATUSES: readonly TaskStatus[] = ["pending", "in_progress", "completed", "cancelled"];

/** Sort rank of a priority: lower comes first in `GET /tasks/next`. */
export const priorityRank: Record<Priority, number> = { high: 0, medium: 1, low: 2 };

export function isTaskId(value: string): boolean {
  return TASK_ID_PATTERN.test(value);
}
export function isProjectId(value: string): boolean {
  return PROJECT_ID_PATTERN.test(value);
}
export function isArtifactType(value: string): boolean {
  return ARTIFACT_TYPE_PATTERN.test(value);
}
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}
export function isPrintableAscii(value: string, maxLength: number): boolean {
  return value.length <= maxLength && PRINTABLE_ASCII_PATTERN.test(value);
}
export function isTaskStatus(value: unknown): value is TaskStatus {
  return value === "pending" || value === "in_progress" || value === "completed" || value === "cancelled";
}

export const TASK_ID_RULE = "1 to 64 characters of A-Z a-z 0-9 . _ -";
export const PROJECT_ID_RULE = "1 to 128 characters of A-Z a-z 0-9 . _ -";
export const ARTIFACT_TYPE_RULE = "1 to 16 characters: an upper-case letter, then upper-case letters or digits";

// ---------------------------------------------------------------------------
// The rules of a batch that need no storage (request bodies are checked by tracker/http/schemas.ts).

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How a batch tells its tasks apart: a task ID is unique within its project only. */
function taskKey(projectId: string, taskId: string): string {
  return `${projectId}\n${taskId}`;
}

/** Rejects a dependency cycle inside a batch (stored tasks can never depend on new ones). */
export function rejectCycles(tasks: readonly BatchTask[]): void {
  const found = findCycle(tasks);
  if (found) throw validationError(`tasks[${found.node}].depends_on forms a cycle: ${found.cycle.join(" -> ")}`);
}

/** A task as a cycle search reads it: without an ID, it can be named by no edge. */
type DependencyNode = { task_id?: string | undefined; project_id: string; depends_on: readonly string[] };

/**
 * The first dependency cycle among `tasks` (edges: depends_on, within a project), searched from the
 * first task on: the task whose depends_on closes it and the IDs along it, first and last the same.
 */
function findCycle(tasks: readonly DependencyNode[]): { node: number; cycle: string[] } | null {
  // A task without an ID has nothing to be named by, so it ends no dependency edge.
  const inBatch = new Map<string, number>();
  tasks.forEach((task, index) => {
    if (task.task_id !== undefined) inBatch.set(taskKey(task.project_id, task.task_id), index);
  });
  // Iterative depth-first search (a chain thousands long must not overflow the stack).
  const state = new Uint8Array(tasks.length); // 0 unvisited, 1 on the current path, 2 done
  for (let root = 0; root < tasks.length; root++) {
    if (state[root] !== 0) continue;
    const path: number[] = [root];
    const nextEdge: number[] = [0];
    state[root] = 1;
    while (path.length > 0) {
      const top = path.length - 1;
      const node = path[top]!;
      const deps = tasks[node]!.depends_on;
      const edge = nextEdge[top]!;
      if (edge >= deps.length) {
        state[node] = 2;
        path.pop();
        nextEdge.pop();
        continue;
      }
      nextEdge[top] = edge + 1;
      const target = inBatch.get(taskKey(tasks[node]!.project_id, deps[edge]!));
      if (target === undefined || state[target] === 2) continue;
      if (state[target] === 1) {
        const cycle = path.slice(path.indexOf(target)).map((i) => tasks[i]!.task_id!);
        cycle.push(tasks[target]!.task_id!);
        return { node, cycle };
      }
      state[target] = 1;
      path.push(target);
      nextEdge.push(0);
    }
  }
  return null;
}

/** A stored task as an edit of depends_on reads it: those it names, and the tasks they lead to. */
export interface StoredDependencyNode {
  task_id: string;
  status: TaskStatus;
  depends_on: readonly string[];
}

/**
 * Checks the depends_on an edit gives a task against its project's stored tasks and returns how many
 * of them are not completed. `reachable`: every stored task of the project that the new depends_on
 * leads to, directly or not, as stored (the edited task among them if it is on the way). Every named
 * task must exist; the new edges may not close a cycle through stored tasks (the batch's sentence);
 * a task in progress may not gain a dependency that is not completed, as it left pending on the
 * promise that none was (a task leaves pending only when ready: the dump keeps to it too).
 */
export function checkEditedDependencies(
  task: { task_id: string; project_id: string; status: TaskStatus },
  dependsOn: readonly string[],
  reachable: readonly StoredDependencyNode[],
): number {
  const byId = new Map(reachable.map((node) => [node.task_id, node]));
  const unknown = dependsOn.filter((id) => id !== task.task_id && !byId.has(id));
  if (unknown.length > 0) {
    const named = unknown.length === 1 ? "an unknown task" : "unknown tasks";
    throw validationError(`depends_on names ${named} of project ${task.project_id}: ${unknown.join(", ")}`);
  }
  // The edited task first, so the cycle found starts and ends with it.
  const nodes: DependencyNode[] = [{ ...task, depends_on: dependsOn }];
  for (const node of reachable) {
    if (node.task_id !== task.task_id) nodes.push({ ...node, project_id: task.project_id });
  }
  const found = findCycle(nodes);
  if (found) throw validationError(`depends_on forms a cycle: ${found.cycle.join(" -> ")}`);
  const waiting = [...new Set(dependsOn)].filter((id) => !isFinished(byId.get(id)!.status));
  if (task.status === "in_progress" && waiting.length > 0) {
    throw new ApiError(
      "invalid_transition",
      `cannot make ${task.task_id} depend on ${waiting.join(", ")}: ${task.task_id} is in_progress and ${unfinishedDependencies(waiting)}; a task leaves pending only when every dependency is completed (release it first)`,
    );
  }
  return waiting.length;
}

/** The largest ID number: beyond it JSON numbers stop being exact. */
export const MAX_ID_NUMBER = Number.MAX_SAFE_INTEGER;
/**
 * The registry's PUT raises a counter to import a backlog, never to the end of the IDs: one raise goes
 * at most this far past the current value, and never past MAX_RAISED_ID, which leaves some nine
 * thousand million million numbers to allocate after it (IDs of at most 12 digits, `US-999999999999`).
 */
export const MAX_COUNTER_RAISE = 1_000_000;
export const MAX_RAISED_ID = 999_999_999_999;

// ---------------------------------------------------------------------------
// The state machine.

const allowedTransitions: Record<TaskStatus, readonly TaskStatus[]> = {
  pending: ["in_progress", "cancelled"],
  in_progress: ["completed", "pending", "cancelled"],
  // Back to pending: reopened.
  completed: ["pending"],
  cancelled: ["pending"],
};

/** Completed or cancelled: it no longer blocks its dependents or its parent, and is never handed out. */
export function isFinished(status: TaskStatus): boolean {
  return status === "completed" || status === "cancelled";
}

/**
 * What a storage knows of a task a batch names in depends_on: the task of that ID in the asking
 * task's own project, else one of that ID in another project (only to say so), else null.
 */
export type StoredDependency = (
  projectId: string,
  taskId: string,
) => { project_id: string; status: TaskStatus } | null | undefined;

/**
 * Checks the depends_on of a batch and counts, for each task, the dependencies not yet completed
 * (each distinct dependency once). A dependency is a task of the same project, in the same batch or
 * stored (read through `stored`). A task imported as completed may depend only on completed tasks.
 */
export function countUnfinishedDependencies(tasks: readonly BatchTask[], stored: StoredDependency): number[] {
  const named = tasks.filter((task) => task.task_id !== undefined);
  const inBatch = new Map(named.map((task) => [taskKey(task.project_id, task.task_id!), task]));
  const idsInBatch = new Map(named.map((task) => [task.task_id!, task]));
  return tasks.map((task, i) => {
    const distinct = new Set<string>();
    let count = 0;
    for (let j = 0; j < task.depends_on.length; j++) {
      const dependencyId = task.depends_on[j]!;
      if (distinct.has(dependencyId)) continue;
      distinct.add(dependencyId);
      const field = `tasks[${i}].depends_on[${j}]`;
      const dependency =
        inBatch.get(taskKey(task.project_id, dependencyId)) ??
        stored(task.project_id, dependencyId) ??
        idsInBatch.get(dependencyId);
      if (!dependency) throw unknownDependency(tasks, i, field, dependencyId);
      if (dependency.project_id !== task.project_id) {
        throw validationError(`${field} names ${dependencyId} of project ${dependency.project_id}, not of ${task.project_id}`);
      }
      // A cancelled task waits for nothing: it is never handed out.
      if (isFinished(dependency.status) || task.status === "cancelled") continue;
      if (task.status === "completed") {
        throw validationError(
          `${field} names ${dependencyId}, which is not completed: a completed task may depend only on completed tasks`,
        );
      }
      count++;
    }
    return count;
  });
}

/**
 * The rules of a batch's parents and finished tasks that need no storage: no task is its own parent
 * or its own ancestor; a task added completed has every criterion done and no open child in the batch.
 */
export function checkBatchParents(tasks: readonly BatchTask[]): void {
  const found = findCycle(tasks.map((task) => ({ ...task, depends_on: task.parent_id ? [task.parent_id] : [] })));
  if (found) throw validationError(`tasks[${found.node}].parent_id forms a cycle: ${found.cycle.join(" -> ")}`);
  const completed = new Map<string, number>();
  tasks.forEach((task, i) => {
    if (task.status !== "completed") return;
    const open = openCriteria(task.acceptance_criteria ?? []);
    if (open.length > 0) {
      throw validationError(`tasks[${i}] is completed, but acceptance criteria are still open: ${open.join(", ")}`);
    }
    if (task.task_id !== undefined) completed.set(taskKey(task.project_id, task.task_id), i);
  });
  tasks.forEach((task, i) => {
    const parent = task.parent_id ? completed.get(taskKey(task.project_id, task.parent_id)) : undefined;
    if (parent !== undefined && !isFinished(task.status)) {
      throw validationError(
        `tasks[${i}] is ${task.status}, but its parent ${task.parent_id} (tasks[${parent}]) is completed: a completed task has no open child`,
      );
    }
  });
}

/**
 * Checks each parent_id of a batch against the batch and the stored tasks (read through `stored`,
 * as dependencies are): a task of the same project, and not a completed one for an open child.
 */
export function checkStoredParents(tasks: readonly BatchTask[], stored: StoredDependency): void {
  const inBatch = new Set(tasks.flatMap((task) => (task.task_id === undefined ? [] : [taskKey(task.project_id, task.task_id)])));
  tasks.forEach((task, i) => {
    if (!task.parent_id || inBatch.has(taskKey(task.project_id, task.parent_id))) return;
    const field = `tasks[${i}].parent_id`;
    const parent = stored(task.project_id, task.parent_id);
    if (!parent) throw validationError(`${field} names an unknown task: ${task.parent_id}`);
    if (parent.project_id !== task.project_id) {
      throw validationError(`${field} names ${task.parent_id} of project ${parent.project_id}, not of ${task.project_id}`);
    }
    if (parent.status === "completed" && !isFinished(task.status)) throw parentCompleted(field, task.parent_id);
  });
}

/** How a batch changes the children counts of the parents it names: per (project, parent), added and open. */
export function batchChildCounts(
  tasks: readonly NewTask[],
): Array<{ projectId: string; parentId: string; total: number; open: number }> {
  const counts = new Map<string, { projectId: string; parentId: string; total: number; open: number }>();
  for (const task of tasks) {
    if (!task.parent_id) continue;
    const key = taskKey(task.project_id, task.parent_id);
    let count = counts.get(key);
    if (!count) counts.set(key, (count = { projectId: task.project_id, parentId: task.parent_id, total: 0, open: 0 }));
    count.total++;
    if (!isFinished(task.status)) count.open++;
  }
  return [...counts.values()];
}

/** An unknown dependency; with other unnamed tasks of its project in the batch, why none of them can be it. */
function unknownDependency(tasks: readonly BatchTask[], naming: number, field: string, dependencyId: string): ApiError {
  const sentence = `${field} names an unknown task: ${dependencyId}`;
  const projectId = tasks[naming]!.project_id;
  const unnamed = tasks.findIndex((task, i) => i !== naming && task.task_id === undefined && task.project_id === projectId);
  if (unnamed === -1) return validationError(sentence);
  return validationError(
    `${sentence} (depends_on names only tasks known before the batch; tasks[${unnamed}] and any other task sent ` +
      "without task_id get their IDs as the batch is added, so nothing can name them: give such a task a task_id, " +
      "or add it in an earlier batch)",
  );
}

export function isAllowedTransition(from: TaskStatus, to: TaskStatus): boolean {
  return allowedTransitions[from].includes(to);
}

export function invalidTransition(taskId: string, from: TaskStatus, to: TaskStatus, reason?: string): ApiError {
  const sentence = `cannot change ${taskId} from ${from} to ${to}`;
  return new ApiError("invalid_transition", reason ? `${sentence}: ${reason}` : sentence);
}

export function taskNotFound(ref: TaskRef): ApiError {
  const where = ref.projectId === null ? "" : ` in project ${ref.projectId}`;
  return new ApiError("task_not_found", `Task not found: ${ref.taskId}${where}`);
}

export function reservationNotFound(reservationId: string): ApiError {
  return new ApiError("reservation_not_found", `Reservation not found: ${reservationId}`);
}

// ---------------------------------------------------------------------------
// Claims, leases and edits: the decisions both storages take, on a task as they read it.

/** What the rules of a claim read of a stored task (times as ISO strings). */
export interface ClaimState {
  task_id: string;
  status: TaskStatus;
  claimed_by: string | null;
  claimed_by_key: string | null;
  lease_expires_at: string | null;
  /** The holder of the last lease that ran out (its agent and its key), until that agent claims the task again. */
  lost_by: string | null;
  lost_by_key: string | null;
  /** When that lease ran out. */
  lost_at: string | null;
}

/** The lost claim a task records (both null: none). */
export interface LostClaim {
  lost_by: string | null;
  lost_by_key: string | null;
  lost_at: string | null;
}

/** Whether the task's claim has a lease that has run out at `now` (PostgreSQL: the database's clock). */
export function leaseRanOut(task: ClaimState, now: Date): boolean {
  if (task.status !== "in_progress" || task.lease_expires_at === null) return false;
  return Date.parse(task.lease_expires_at) <= now.getTime();
}

/** What a claim whose lease ran out leaves behind: its holder and its lease, as the lost claim. */
export function lostClaimOf(task: ClaimState): LostClaim {
  return { lost_by: task.claimed_by, lost_by_key: task.claimed_by_key, lost_at: task.lease_expires_at };
}

/** The details of the claim_expired event that records a lost claim. */
export function claimExpiredDetails(lost: LostClaim): Record<string, unknown> {
  const key = lost.lost_by_key === null ? {} : { former_holder_key: lost.lost_by_key };
  return { former_holder: lost.lost_by, ...key, lease_expires_at: lost.lost_at };
}

/** The key a request names (StatusChange and the others): absent is none, as null. */
export function keyNameOf(request: { keyName?: string | null }): string | null {
  return request.keyName ?? null;
}

/**
 * Whether the task's lost claim was this agent's under this key (one lost before keys: its agent's,
 * under any key). A claim without an agent ID is never lost to anyone.
 */
function lostBy(task: LostClaim, agentId: string | null, keyName: string | null): boolean {
  return agentId !== null && task.lost_by === agentId && (task.lost_by_key === null || task.lost_by_key === keyName);
}

/** The lost claim after a claim: the agent (and key) that lost it, claiming it again, is no longer a loser. */
export function lostClaimAfterClaim(task: LostClaim, agentId: string | null, keyName: string | null): LostClaim {
  return lostBy(task, agentId, keyName) ? { lost_by: null, lost_by_key: null, lost_at: null } : task;
}

/** The lease of a renewal: the length asked for, else the one the claim asked for, else the default. */
export function renewalLeaseSeconds(requested: number | null, claimed: number | null): number {
  return requested ?? claimed ?? DEFAULT_CLAIM_TTL_SECONDS;
}

/** claimLost for the agent (under its key) whose lease on this task ran out and that does not hold it again. */
export function refuseLostClaim(task: ClaimState, agentId: string | null, keyName: string | null): void {
  if (!lostBy(task, agentId, keyName) || isFinished(task.status)) return;
  if (task.claimed_by === agentId && (task.claimed_by_key === null || task.claimed_by_key === keyName)) return;
  const holder = task.status === "in_progress" ? quotedHolder(task) : null;
  throw claimLost(task.task_id, task.lost_at ?? "an unknown time", holder);
}

/**
 * Whether a request of this agent under this key holds the task's claim: the holder is the key and
 * the agent ID together. A claim made without an agent ID is bound to its key alone; one made
 * without a key (a claim from before keys) to its agent ID alone; one with neither, to nobody.
 */
export function holdsClaim(task: ClaimState, agentId: string | null, keyName: string | null): boolean {
  const sameKey = task.claimed_by_key === null || task.claimed_by_key === keyName;
  const sameAgent = task.claimed_by === null || task.claimed_by === agentId;
  return sameKey && sameAgent;
}

/**
 * Only the holder of a claim moves it on or renews it (holdsClaim), whatever X-Agent-Id another
 * key sends. Returns true when `mayForce` releases another's claim; otherwise notClaimHolder.
 */
export function checkHolder(task: ClaimState, agentId: string | null, keyName: string | null, mayForce: boolean): boolean {
  if (holdsClaim(task, agentId, keyName)) return false;
  if (mayForce) return true;
  throw notClaimHolder(task.task_id, quotedHolder(task), task.lease_expires_at);
}

/**
 * How the task's last claim ended, when a release ended it: who held it, who released it (null:
 * the service, its lease ran out; or an agent that sent no X-Agent-Id), and when. Read only to
 * explain why a pending task cannot be completed.
 */
export interface ClaimEnd {
  holder: string | null;
  by: string | null;
  expired: boolean;
  at: string;
}

/** The claim events the storages read for a ClaimEnd, newest first (the last two are enough). */
export const CLAIM_EVENT_TYPES: readonly TaskEventType[] = [
  "claimed",
  "released",
  "force_released",
  "claim_expired",
  "completed",
];

/**
 * The ClaimEnd of a task's claim events (CLAIM_EVENT_TYPES, newest first): null when the task was
 * never claimed, or its last claim ended otherwise (completed, then reopened).
 */
export function claimEndOf(events: readonly { type: TaskEventType; agent_id: string | null; at: string }[]): ClaimEnd | null {
  const [end, claim] = events;
  if (end === undefined || claim?.type !== "claimed") return null;
  if (end.type !== "released" && end.type !== "force_released" && end.type !== "claim_expired") return null;
  const expired = end.type === "claim_expired";
  return { holder: claim.agent_id, by: expired ? null : end.agent_id, expired, at: end.at };
}

/** Whether decideStatusChange needs the task's ClaimEnd: only to refuse completing a pending task. */
export function needsClaimEnd(task: ClaimState, change: StatusChange): boolean {
  return task.status === "pending" && change.to === "completed";
}

/**
 * What a status change does, once allowed: a claim, a completion, a release (forced: of another's
 * claim), a cancel (forced: of another's claim) or a reopening of a finished task.
 */
export type StatusStep =
  | { step: "claim" }
  | { step: "complete" }
  | { step: "release"; forced: boolean }
  | { step: "cancel"; forced: boolean }
  | { step: "reopen" };

/**
 * Decides a status change of a task as it stands (a lapsed claim already ended): the step to take,
 * or the refusal (claim_lost, invalid_transition, not_claim_holder). Whether a claimed task is ready
 * needs its dependencies and children, which the storage checks (claimBlocked, childrenOpen); so
 * do a completion's gates (criteriaOpen, childrenOpen) and a reopening's parent (parentFinished).
 * Completing a pending task needs how its last claim ended (`claimEnd`, read when needsClaimEnd
 * says so), to tell the caller why.
 */
export function decideStatusChange(task: ClaimState, change: StatusChange, claimEnd: ClaimEnd | null = null): StatusStep {
  const { to, agentId } = change;
  if (to !== "in_progress") refuseLostClaim(task, agentId, keyNameOf(change));
  if (needsClaimEnd(task, change)) throw cannotCompletePending(task.task_id, agentId, claimEnd);
  if (!isAllowedTransition(task.status, to)) throw invalidTransition(task.task_id, task.status, to);
  if (to === "in_progress") return { step: "claim" };
  if (isFinished(task.status)) return { step: "reopen" };
  if (to === "cancelled" && task.status === "pending") return { step: "cancel", forced: false };
  const forced = checkHolder(task, agentId, change.keyName ?? null, to !== "completed" && change.force);
  if (to === "completed") return { step: "complete" };
  return to === "cancelled" ? { step: "cancel", forced } : { step: "release", forced };
}

/** Refuses a renewal by anyone but the holder (agent and key), or of a task not in progress. */
export function checkRenewal(task: ClaimState, agentId: string | null, keyName: string | null): void {
  refuseLostClaim(task, agentId, keyName);
  if (task.status !== "in_progress") throw cannotRenew(task.task_id, task.status);
  checkHolder(task, agentId, keyName, false);
}

/** A claim of a task whose dependencies are not all completed (`waiting`: their IDs). */
export function claimBlocked(task: ClaimState, waiting: readonly string[]): ApiError {
  return invalidTransition(task.task_id, task.status, "in_progress", unfinishedDependencies(waiting));
}

/** The open criteria of a task, as `2. "docs updated"`, or none. */
function openCriteria(criteria: readonly Criterion[]): string[] {
  return criteria.flatMap((criterion, i) => (criterion.done ? [] : [`${i + 1}. ${JSON.stringify(criterion.text)}`]));
}

/** Completing a task with an unchecked criterion: 409 criteria_open naming each, and how to tick them off. */
export function criteriaOpen(task: { task_id: string; acceptance_criteria: readonly Criterion[] }): ApiError | null {
  const open = openCriteria(task.acceptance_criteria);
  if (open.length === 0) return null;
  const positions = task.acceptance_criteria.flatMap((criterion, i) => (criterion.done ? [] : [i + 1]));
  return new ApiError(
    "criteria_open",
    `cannot complete ${task.task_id}: acceptance criteria still open: ${open.join(", ")}; tick them off first (update_task with check: [${positions.join(", ")}])`,
  );
}

/** A child as the sentence of children_open names it. */
export interface ChildState {
  task_id: string;
  status: TaskStatus;
}

/** Completing (or claiming) a parent while a child is open: 409 children_open naming them. */
export function childrenOpen(taskId: string, to: "completed" | "in_progress", children: readonly ChildState[]): ApiError {
  const open = children.filter((child) => !isFinished(child.status)).map((child) => `${child.task_id} (${child.status})`);
  const verb = to === "completed" ? "complete" : "claim";
  return new ApiError("children_open", `cannot ${verb} ${taskId}: its children are not done: ${open.join(", ")}`);
}

/** Reopening a child of a completed parent: 400 naming the parent. */
export function parentFinished(taskId: string, from: TaskStatus, parentId: string): ApiError {
  return invalidTransition(taskId, from, "pending", `its parent ${parentId} is completed; reopen ${parentId} first`);
}

/**
 * What a release, a cancel or a reopening records in its event's details; a forced one, whose claim
 * it ended (`formerHolder`: the task before the change): its agent, and its key when it had one.
 */
export function statusEventDetails(
  step: StatusStep,
  from: TaskStatus,
  reason: string,
  formerHolder: { claimed_by: string | null; claimed_by_key: string | null } | null,
) {
  const details: Record<string, unknown> = {};
  if (step.step === "reopen") details.from_status = from;
  if ((step.step === "release" || step.step === "cancel") && step.forced) {
    details.former_holder = formerHolder?.claimed_by ?? null;
    if (formerHolder?.claimed_by_key) details.former_holder_key = formerHolder.claimed_by_key;
  }
  if ((step.step === "release" || step.step === "cancel") && reason !== "") details.reason = reason;
  return details;
}

/** What an edit changed, field by field (the details of its `updated` event). */
export type EditChanges = Partial<Record<"priority" | "description", { from: string; to: string }>> & {
  depends_on?: { from: string[]; to: string[] };
  labels?: { from: string[]; to: string[] };
  parent_id?: { from: string | null; to: string | null };
  acceptance_criteria?: { from: Criterion[]; to: Criterion[] };
};

/** What an edit reads of the task it changes. */
export type EditedTask = Pick<
  Task,
  "task_id" | "status" | "priority" | "description" | "depends_on" | "labels" | "parent_id" | "acceptance_criteria"
>;

/**
 * The fields an edit changes (those given that differ from the task's), or null when it changes
 * nothing; a completed or cancelled task cannot be edited. A depends_on change is then checked
 * against the stored tasks (checkEditedDependencies), a parent_id change too (checkEditedParent).
 */
export function editChanges(task: EditedTask, edit: TaskEdit): EditChanges | null {
  if (isFinished(task.status)) throw cannotEditCompleted(task.task_id, task.status);
  const changes: EditChanges = {};
  if (edit.priority !== undefined && edit.priority !== task.priority)
    changes.priority = { from: task.priority, to: edit.priority };
  if (edit.description !== undefined && edit.description !== task.description) {
    changes.description = { from: task.description, to: edit.description };
  }
  if (edit.depends_on !== undefined && !sameList(edit.depends_on, task.depends_on)) {
    changes.depends_on = { from: [...task.depends_on], to: [...edit.depends_on] };
  }
  if (edit.labels !== undefined && !sameList(edit.labels, task.labels)) changes.labels = { from: task.labels, to: edit.labels };
  if (edit.parent_id !== undefined && edit.parent_id !== task.parent_id) {
    if (edit.parent_id === task.task_id) throw validationError(`parent_id forms a cycle: ${task.task_id} -> ${task.task_id}`);
    changes.parent_id = { from: task.parent_id, to: edit.parent_id };
  }
  const criteria = editedCriteria(task, edit);
  if (criteria !== undefined && JSON.stringify(criteria) !== JSON.stringify(task.acceptance_criteria)) {
    changes.acceptance_criteria = { from: task.acceptance_criteria, to: criteria };
  }
  return Object.keys(changes).length === 0 ? null : changes;
}

/** The criteria after an edit: the new list if given, then the positions of check and uncheck ticked. */
function editedCriteria(task: EditedTask, edit: TaskEdit): Criterion[] | undefined {
  if (edit.acceptance_criteria === undefined && edit.check === undefined && edit.uncheck === undefined) return undefined;
  const criteria = (edit.acceptance_criteria ?? task.acceptance_criteria).map((criterion) => ({ ...criterion }));
  const ticks: Array<["check" | "uncheck", boolean]> = [
    ["check", true],
    ["uncheck", false],
  ];
  for (const [field, done] of ticks) {
    for (const position of edit[field] ?? []) {
      const criterion = criteria[position - 1];
      if (!criterion) {
        throw validationError(`${field} names criterion ${position}, but ${task.task_id} has ${criteria.length}`);
      }
      criterion.done = done;
    }
  }
  return criteria;
}

/**
 * Checks the parent an edit gives a task: `chain` is the new parent and its ancestors as stored,
 * nearest first (empty: the new parent does not exist in the task's project). The chain may not
 * come back to the task (a cycle), and an open task may not join a completed parent.
 */
export function checkEditedParent(
  task: { task_id: string; project_id: string; status: TaskStatus },
  parentId: string,
  chain: readonly { task_id: string; status: TaskStatus }[],
): void {
  if (chain.length === 0) throw validationError(`parent_id names an unknown task of project ${task.project_id}: ${parentId}`);
  const loop = chain.findIndex((ancestor) => ancestor.task_id === task.task_id);
  if (loop !== -1) {
    const cycle = [task.task_id, ...chain.slice(0, loop + 1).map((ancestor) => ancestor.task_id)];
    throw validationError(`parent_id forms a cycle: ${cycle.join(" -> ")}`);
  }
  if (chain[0]!.status === "completed" && !isFinished(task.status)) throw parentCompleted("parent_id", parentId);
}

/** An open task given a completed parent: a completed parent has no open child. */
function parentCompleted(field: string, parentId: string): ApiError {
  return validationError(
    `${field} names ${parentId}, which is completed: an open task cannot be its child (reopen ${parentId} first)`,
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

// ---------------------------------------------------------------------------
// The sentences both storages say. Each storage calls these; none writes its own.

export function taskAlreadyExists(task: { task_id: string; project_id: string }): ApiError {
  return new ApiError("conflict", `Task already exists: ${task.task_id} in project ${task.project_id}`);
}

export function ambiguousTaskId(taskId: string, projectIds: readonly string[]): ApiError {
  return new ApiError(
    "ambiguous_task_id",
    `Task ${taskId} exists in projects ${[...projectIds].sort().join(", ")}; pass ?project=<project_id>`,
  );
}

export function cannotLowerCounter(projectId: string, artifactType: string, current: number, wanted: number): ApiError {
  return new ApiError(
    "conflict",
    `Cannot lower the ${artifactType} counter of project ${projectId} from ${current} to ${wanted}`,
  );
}

/** A registry PUT may raise a counter, by at most MAX_COUNTER_RAISE; the schema holds it to MAX_RAISED_ID. */
export function checkCounterRaise(projectId: string, artifactType: string, current: number, wanted: number): void {
  if (wanted < current) throw cannotLowerCounter(projectId, artifactType, current, wanted);
  if (wanted - current > MAX_COUNTER_RAISE) {
    throw new ApiError(
      "conflict",
      `Cannot raise the ${artifactType} counter of project ${projectId} from ${current} to ${wanted}: one raise goes at most ${MAX_COUNTER_RAISE} past the current value`,
    );
  }
}

export function idsExhausted(projectId: string, artifactType: string): ApiError {
  return new ApiError("conflict", `The ${artifactType} IDs of project ${projectId} are exhausted`);
}

export function idempotencyInFlight(): ApiError {
  return new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still running; retry later");
}

export function idempotencyMismatch(): ApiError {
  return new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for a different request");
}

/** GET /admin/backup on PostgreSQL: 409, saying what to use instead. */
export function noBackupOnPostgres(): ApiError {
  return new ApiError(
    "conflict",
    "This tracker keeps its data in PostgreSQL: back the database up with pg_dump, or copy its data with task-tracker dump (GET /admin/dump)",
  );
}

/**
 * Another agent's ID as an error sentence shows it: quoted, so whoever reads the sentence (often a
 * model) takes it as a name, never as words of ours. IDs recorded before the ID rule may hold spaces.
 */
export function quotedAgent(agentId: string | null): string {
  return agentId === null ? "an agent that sent no X-Agent-Id" : `agent ${JSON.stringify(agentId)}`;
}

/**
 * The holder of a task's claim as an error sentence shows it: `key "alice" · agent "claude-…"`, both
 * quoted as quotedAgent quotes; its agent alone for a claim from before keys or under the operator's
 * own keys, so that a tracker on one machine, with no kept key, says what it said before keys.
 */
export function quotedHolder(task: { claimed_by: string | null; claimed_by_key: string | null }): string {
  const agent = quotedAgent(task.claimed_by);
  const key = task.claimed_by_key;
  return key === null || isOperatorKeyName(key) ? agent : `key ${JSON.stringify(key)} · ${agent}`;
}

/** `holder` as quotedHolder writes it. */
export function notClaimHolder(taskId: string, holder: string, leaseExpiresAt: string | null): ApiError {
  const until = leaseExpiresAt === null ? "" : ` until ${leaseExpiresAt}`;
  return new ApiError(
    "not_claim_holder",
    `${taskId} is claimed by ${holder}${until}; only its holder can complete, release or renew it`,
  );
}

/** `currentHolder` null: the task is pending again. */
export function claimLost(taskId: string, expiredAt: string, currentHolder: string | null): ApiError {
  const now = currentHolder === null ? "it is pending again: claim it again to go on" : `it is now claimed by ${currentHolder}`;
  return new ApiError("claim_lost", `Your claim on ${taskId} expired at ${expiredAt}; ${now}`);
}

/**
 * Completing a pending task (400 invalid_transition, as every refused change, so older clients
 * decide as before). The caller held its last claim and someone else released it: who, when, and
 * what to do now. Otherwise the caller never held it (or released it itself): claim it first.
 */
export function cannotCompletePending(taskId: string, agentId: string | null, claimEnd: ClaimEnd | null): ApiError {
  if (claimEnd !== null && claimEnd.holder === agentId && (claimEnd.expired || claimEnd.by !== agentId)) {
    const released = claimEnd.expired
      ? `its lease ran out at ${claimEnd.at}`
      : `released by ${quotedAgent(claimEnd.by)} at ${claimEnd.at}`;
    return new ApiError(
      "invalid_transition",
      `cannot complete ${taskId}: it is pending, ${released}; take another task with get_next_task, or claim it again`,
    );
  }
  return new ApiError(
    "invalid_transition",
    `cannot complete ${taskId}: it is pending and nobody holds it; claim it first (get_next_task with claim: true, or update_task_status to in_progress)`,
  );
}

export function unfinishedDependencies(waiting: readonly string[]): string {
  return `${waiting.join(", ")} ${waiting.length === 1 ? "is" : "are"} not completed`;
}

/** Unreachable under a row lock or IMMEDIATE transaction; kept so a compare-and-set stays honest. */
export function lostRace(taskId: string, from: TaskStatus, to: TaskStatus): ApiError {
  return invalidTransition(taskId, from, to, "another request changed it first");
}

export function cannotRenew(taskId: string, status: TaskStatus): ApiError {
  return new ApiError("invalid_transition", `cannot renew ${taskId}: it is ${status}`);
}

export function cannotEditCompleted(taskId: string, status: TaskStatus = "completed"): ApiError {
  return new ApiError("invalid_transition", `cannot edit ${taskId}: it is ${status}`);
}

// ---------------------------------------------------------------------------
// GET /tasks: the parts of the order, and the cursor both storages write and read.

/**
 * API.md's order of GET /tasks is five parts, each read in its own order from its own index:
 * pending ready and pending blocked (priority rank, then insertion), in_progress (oldest claim
 * first), completed and cancelled (most recently finished first).
 */
export type TaskListPart = "ready" | "blocked" | "in_progress" | "completed" | "cancelled";
export const TASK_LIST_PARTS: readonly TaskListPart[] = ["ready", "blocked", "in_progress", "completed", "cancelled"];

/**
 * The parts a query can return, in order. A pending or cancelled task has no holder, so claimed_by
 * skips them.
 */
export function taskListParts(query: TaskListQuery): TaskListPart[] {
  return TASK_LIST_PARTS.filter((part) => {
    const status: TaskStatus = part === "ready" || part === "blocked" ? "pending" : part;
    if (query.status !== null && query.status !== status) return false;
    if (query.ready !== null && part !== (query.ready ? "ready" : "blocked")) return false;
    if (query.claimedBy !== null && (status === "pending" || status === "cancelled")) return false;
    return true;
  });
}

/**
 * Where a page ended: the part, and the last task's sort key in it (ready/blocked: the priority
 * rank; in_progress: started_at; completed: completed_at) and its insertion sequence.
 */
export interface TaskListPosition {
  part: TaskListPart;
  key: number | string;
  seq: number;
}

function filterDigest(query: TaskListQuery): string {
  const labels = query.labels ?? [];
  // The filters of 0.2 alone digest as they did, so a cursor of then still pages.
  const added = !query.q && labels.length === 0 && !query.parent ? [] : [query.q ?? null, labels, query.parent ?? null];
  const filters = JSON.stringify([query.projectId, query.status, query.ready, query.claimedBy, ...added]);
  return createHash("sha256").update(filters).digest("base64url").slice(0, 16);
}

/** A next_cursor: base64url JSON of where the page ended and a digest of the filters it was made for. */
function encodeCursor(position: JsonObject, query: TaskListQuery): string {
  return Buffer.from(JSON.stringify({ ...position, filters: filterDigest(query) })).toString("base64url");
}

/**
 * Reads a cursor back: one that does not decode or is not `isOurs` is a 400 saying `notOurs`; one made
 * for other filters is a 400 naming them.
 */
function decodeCursor<Position extends JsonObject>(
  cursor: string,
  query: TaskListQuery,
  isOurs: (decoded: JsonObject) => decoded is Position,
  notOurs: string,
): Position {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    decoded = null;
  }
  if (!isObject(decoded) || !isOurs(decoded)) throw validationError(notOurs);
  if (decoded.filters !== filterDigest(query)) {
    throw validationError(
      "cursor was made for other filters: pass the same project, status, ready, claimed_by, q, label and parent as for the first page",
    );
  }
  return decoded;
}

/** The opaque next_cursor of GET /tasks: the position of the page's last task. */
export function encodeTaskCursor(position: TaskListPosition, query: TaskListQuery): string {
  const { part, key, seq } = position;
  return encodeCursor({ part, key, seq }, query);
}

/** Reads a cursor back; one that does not decode, or was made for other filters, is a 400 naming `cursor`. */
export function decodeTaskCursor(cursor: string, query: TaskListQuery): TaskListPosition {
  const { part, key, seq } = decodeCursor(cursor, query, isTaskListPosition, "cursor is not a next_cursor of GET /tasks");
  return { part, key, seq };
}

function isTaskListPosition(value: JsonObject): value is JsonObject & TaskListPosition & { filters: unknown } {
  const { part, key, seq } = value;
  if (!TASK_LIST_PARTS.includes(part as TaskListPart) || !Number.isSafeInteger(seq)) return false;
  return part === "ready" || part === "blocked" ? Number.isInteger(key) : typeof key === "string";
}

// ---------------------------------------------------------------------------
// GET /tasks?q=: the words of a search, and its pages.

/** A search takes at most this many words (the rest are ignored: they would only narrow it further). */
export const MAX_SEARCH_WORDS = 16;
/**
 * Ranking costs every match it ranks: a search ranks the this many most recently added matches (all
 * of them when fewer match), so a word in every task answers as fast as a rare one.
 */
export const SEARCH_RANKED_MATCHES = 1000;

/**
 * The words of a search, lower-cased: runs of letters and digits, so punctuation is never syntax of
 * the database's query language (`log-in "form"` is the words log, in, form). Each must match, as a
 * prefix of a word of the task's description, criteria or notes.
 */
export function searchWords(q: string): string[] {
  const words = q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return [...new Set(words)].slice(0, MAX_SEARCH_WORDS);
}

/** A snippet as the storage made it, cut to MAX_SNIPPET_CHARS (never inside a `[word]`), one line. */
export function clipSnippet(snippet: string): string {
  const flat = snippet.replace(/\s+/g, " ").trim();
  if (flat.length <= MAX_SNIPPET_CHARS) return flat;
  let cut = flat.slice(0, MAX_SNIPPET_CHARS - 1);
  const open = cut.lastIndexOf("[");
  if (open > cut.lastIndexOf("]")) cut = cut.slice(0, open);
  return `${cut.trimEnd()}…`;
}

/** A ranked page ends at an offset: its cursor is that offset and the digest of the filters (q included). */
export function encodeSearchCursor(offset: number, query: TaskListQuery): string {
  return encodeCursor({ offset }, query);
}

export function decodeSearchCursor(cursor: string, query: TaskListQuery): number {
  return decodeCursor(cursor, query, isSearchPosition, "cursor is not a next_cursor of GET /tasks with q").offset;
}

function isSearchPosition(value: JsonObject): value is JsonObject & { offset: number } {
  return Number.isSafeInteger(value.offset) && (value.offset as number) >= 0;
}

// ---------------------------------------------------------------------------
// IDs.

/** `US-028`: the number zero-padded to three digits, wider past 999 (`US-1000`). */
export function formatArtifactId(artifactType: string, number: number): string {
  return `${artifactType}-${number < 100 ? String(number).padStart(3, "0") : number}`;
}

/** The registry type whose counter names the tasks a batch sends without task_id. */
export const ASSIGNED_TASK_ID_TYPE = "TASK";

/**
 * An ID of the registry's form: a type as the registry takes it, a dash, a number. Any number of
 * digits counts (`TASK-7` as well as `TASK-007`, as the importer reads them), up to MAX_RAISED_ID's 12.
 */
const REGISTRY_FORM_ID = /^([A-Z][A-Z0-9]{0,15})-(\d{1,12})$/;

/** The type and number of `UX-001`, `TASK-47`; null for an ID of another form (`md-3f2a`, `SHA-0x1`). */
export function registryIdParts(taskId: string): { artifactType: string; number: number } | null {
  const match = REGISTRY_FORM_ID.exec(taskId);
  return match ? { artifactType: match[1]!, number: Number(match[2]) } : null;
}

/**
 * One (project, type) counter a batch moves: first raised to at least `atLeast` (never lowered), then
 * advanced by `take`, the project's tasks sent without task_id (TASK only), which are named from it.
 */
export interface BatchCounterMove {
  projectId: string;
  artifactType: string;
  atLeast: number;
  take: number;
}

/**
 * The counters a batch moves, in (project, type) order: the order a storage moves them in, so two
 * batches never wait on each other's counters. Each type's counter is raised to the highest number
 * among the batch's IDs of the registry's form, so get_next_available_id never hands out an ID the
 * batch added; and it is raised before the unnamed tasks are numbered from it, so they never take
 * the ID of a named task of their own batch.
 */
export function batchCounterMoves(tasks: readonly BatchTask[]): BatchCounterMove[] {
  const moves = new Map<string, BatchCounterMove>();
  const moveOf = (projectId: string, artifactType: string) => {
    const key = `${projectId}\n${artifactType}`;
    let move = moves.get(key);
    if (!move) moves.set(key, (move = { projectId, artifactType, atLeast: 0, take: 0 }));
    return move;
  };
  for (const task of tasks) {
    if (task.task_id === undefined) {
      moveOf(task.project_id, ASSIGNED_TASK_ID_TYPE).take++;
      continue;
    }
    const id = registryIdParts(task.task_id);
    // A number 0 raises nothing, so it makes no counter either.
    if (id && id.number > 0) {
      const move = moveOf(task.project_id, id.artifactType);
      move.atLeast = Math.max(move.atLeast, id.number);
    }
  }
  const order = (a: BatchCounterMove, b: BatchCounterMove) =>
    compareStrings(a.projectId, b.projectId) || compareStrings(a.artifactType, b.artifactType);
  return [...moves.values()].sort(order);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Names the tasks sent without task_id, in the order of the batch: the first of project P gets
 * `TASK-<firstNumbers of P>`, the next the number after it (the storage took that many from P's
 * TASK counter, in the batch's transaction). Tasks with a task_id keep it.
 */
export function nameBatch(tasks: readonly BatchTask[], firstNumbers: ReadonlyMap<string, number>): NewTask[] {
  const next = new Map(firstNumbers);
  return tasks.map((task) => {
    if (task.task_id !== undefined) return { ...task, task_id: task.task_id };
    const number = next.get(task.project_id)!;
    next.set(task.project_id, number + 1);
    return { ...task, task_id: formatArtifactId(ASSIGNED_TASK_ID_TYPE, number) };
  });
}

/**
 * The conflict of a batch task whose ID a stored task has. For an ID the batch assigned, the stored
 * task was named TASK-nnn by hand past the counter before batches raised counters (release 0.3.0),
 * or comes from a dump of then: say how to move the counter beyond it.
 */
export function batchTaskExists(
  batch: readonly BatchTask[],
  named: readonly NewTask[],
  stored: { task_id: string; project_id: string },
): ApiError {
  const i = named.findIndex((task) => task.task_id === stored.task_id && task.project_id === stored.project_id);
  if (i === -1 || batch[i]!.task_id !== undefined) return taskAlreadyExists(stored);
  const { project_id: projectId, task_id: taskId } = stored;
  return new ApiError(
    "conflict",
    `tasks[${i}] has no task_id and would be ${taskId}, the next ${ASSIGNED_TASK_ID_TYPE} ID of project ${projectId}, ` +
      `but a task given that ID by hand already exists: raise the counter past it (PUT /ids/registry/${projectId}/${ASSIGNED_TASK_ID_TYPE}) or give the task a task_id`,
  );
}

export function reservedIds(reservation: Reservation): string[] {
  const ids: string[] = [];
  for (let i = 0; i < reservation.count; i++) ids.push(formatArtifactId(reservation.artifactType, reservation.firstNumber + i));
  return ids;
}
