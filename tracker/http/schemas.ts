// The shapes of every request (bodies, query parameters, path parameters) and response of API.md, in
// zod 4. The routes validate with them and GET /openapi.json is generated from them, so the document
// cannot drift from the code. Every failure becomes one sentence naming the field exactly
// (`tasks[1].description is required`), as the contract promises.

import { z } from "zod";
import {
  AGENT_ID_PATTERN,
  AGENT_ID_RULE,
  ApiError,
  ARTIFACT_TYPE_PATTERN,
  ARTIFACT_TYPE_RULE,
  type BatchTask,
  checkBatchParents,
  DEFAULT_LIST_LIMIT,
  LABEL_PATTERN,
  LABEL_RULE,
  MAX_AGENT_ID_LENGTH,
  MAX_COMPLETION_NOTES_CHARS,
  MAX_CRITERIA,
  MAX_CRITERION_CHARS,
  MAX_DESCRIPTION_CHARS,
  MAX_LABELS,
  MAX_LEASE_SECONDS,
  MAX_LIST_LIMIT,
  MAX_NOTE_CHARS,
  MAX_NOTES_PER_NEW_TASK,
  MAX_RAISED_ID,
  MAX_RESERVATION_COUNT,
  MAX_TASKS_PER_BATCH,
  MIN_LEASE_SECONDS,
  PRINTABLE_ASCII_PATTERN,
  PRIORITIES,
  PROJECT_ID_PATTERN,
  PROJECT_ID_RULE,
  rejectCycles,
  TASK_EVENT_TYPES,
  TASK_ID_PATTERN,
  TASK_ID_RULE,
  TASK_STATUSES,
  UUID_PATTERN,
  validationError,
} from "../domain.ts";
import { KEY_NAME_PATTERN, KEY_NAME_RULE, MAX_PROJECTS_PER_KEY, ROLES } from "../keys.ts";

// ---------------------------------------------------------------------------
// Sentences. A schema's own error says what the value must be; `firstProblem` puts the field's name
// in front of it.

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** The error of a type check: `is required` when the field is absent, else what it must be. */
function mustBe(expected: string) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? "is required" : `must be ${expected}, not ${describeType(issue.input)}`;
}

/** `tasks[1].description`, or `The request body` for the whole of it. */
function fieldName(path: readonly PropertyKey[]): string {
  let name = "";
  for (const key of path) name += typeof key === "number" ? `[${key}]` : name === "" ? String(key) : `.${String(key)}`;
  return name === "" ? "The request body" : name;
}

function firstProblem(error: z.ZodError, what: string): ApiError {
  const issue = error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const prefix = issue.path.length === 0 ? "" : `${fieldName(issue.path)}.`;
    return validationError(`${prefix}${issue.keys[0]} is not a known ${what}`);
  }
  return validationError(`${fieldName(issue.path)} ${issue.message}`);
}

/** Parses a body or a set of parameters; the first problem is a 400 naming its field. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, value: unknown, what = "field"): z.output<Schema> {
  const result = schema.safeParse(value);
  if (!result.success) throw firstProblem(result.error, what);
  return result.data;
}

// ---------------------------------------------------------------------------
// Building blocks.

/** Unicode text: a NUL character or a lone surrogate (invalid UTF-16) is refused in every text field. */
function text() {
  return z
    .string({ error: mustBe("a string") })
    .refine((value) => !value.includes("\0"), { error: "must not contain a NUL character" })
    .refine((value) => value.isWellFormed(), { error: "must not contain a lone surrogate (invalid UTF-16)" });
}

/** Characters as people count them (code points), not UTF-16 units. */
function characterCount(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

function textOfAtMost(min: number, max: number, sentence: string) {
  // A string of at most `max` UTF-16 units cannot hold more code points: skip the count.
  const fits = (value: string) => value.length >= min && (value.length <= max || characterCount(value) <= max);
  return text().refine(fits, { error: sentence }).meta({ minLength: min, maxLength: max });
}

function matching(pattern: RegExp, rule: string) {
  return z.string({ error: mustBe("a string") }).regex(pattern, { error: `must be ${rule}` });
}

function oneOf<const Values extends readonly [string, ...string[]]>(values: Values) {
  const sentence = `must be one of ${values.join(", ")}`;
  return z.enum(values, { error: (issue) => (issue.input === undefined ? "is required" : sentence) });
}

function integer(min: number, max: number) {
  return z
    .number({ error: mustBe("an integer") })
    .int({ error: mustBe("an integer") })
    .min(min, { error: `must be between ${min} and ${max}` })
    .max(max, { error: `must be between ${min} and ${max}` });
}

/** A URL reads `.` and `..` as path steps (`/tasks/../status` is `/status`): no ID is only dots. */
function identifier(pattern: RegExp, rule: string) {
  return z
    .string({ error: mustBe("a string") })
    .refine((value) => !/^\.+$/.test(value), { error: "must not be only dots" })
    .regex(pattern, { error: `must be ${rule}` });
}

const taskId = identifier(TASK_ID_PATTERN, TASK_ID_RULE);
const projectId = identifier(PROJECT_ID_PATTERN, PROJECT_ID_RULE);
const artifactType = matching(ARTIFACT_TYPE_PATTERN, ARTIFACT_TYPE_RULE);
const agentId = matching(PRINTABLE_ASCII_PATTERN, `1 to ${MAX_AGENT_ID_LENGTH} printable ASCII characters`).max(
  MAX_AGENT_ID_LENGTH,
  { error: `must be 1 to ${MAX_AGENT_ID_LENGTH} printable ASCII characters` },
);
const priority = oneOf(PRIORITIES as ["high", "medium", "low"]);
const taskStatus = oneOf(TASK_STATUSES as ["pending", "in_progress", "completed", "cancelled"]);
const leaseSeconds = integer(MIN_LEASE_SECONDS, MAX_LEASE_SECONDS);
const description = textOfAtMost(1, MAX_DESCRIPTION_CHARS, `must be 1 to ${MAX_DESCRIPTION_CHARS} characters`);
const completionNotes = textOfAtMost(0, MAX_COMPLETION_NOTES_CHARS, `must be at most ${MAX_COMPLETION_NOTES_CHARS} characters`);
const stringList = z.array(text(), { error: mustBe("an array of strings") });

/** A label: lower-cased, then of LABEL_PATTERN. */
const labelName = z
  .string({ error: mustBe("a string") })
  .transform((value) => value.toLowerCase())
  .refine((value) => LABEL_PATTERN.test(value), { error: `must be ${LABEL_RULE}` });
/** A set of labels: repeats dropped, sorted. */
const labels = z
  .array(labelName, { error: mustBe("an array of strings") })
  .max(MAX_LABELS, { error: `must hold at most ${MAX_LABELS} names` })
  .transform((names) => [...new Set(names)].sort());

const criterionText = textOfAtMost(1, MAX_CRITERION_CHARS, `must be 1 to ${MAX_CRITERION_CHARS} characters`);
/** A criterion as sent: a string (not done yet) or {"text", "done"}. */
const criterion = z.preprocess(
  (value) => (typeof value === "string" ? { text: value, done: false } : value),
  z.strictObject(
    { text: criterionText, done: z.boolean({ error: mustBe("a boolean") }).default(false) },
    { error: mustBe("a string or a JSON object") },
  ),
);
const criteria = z
  .array(criterion, { error: mustBe("an array") })
  .max(MAX_CRITERIA, { error: `must hold at most ${MAX_CRITERIA} criteria` });
const noteText = textOfAtMost(1, MAX_NOTE_CHARS, `must be 1 to ${MAX_NOTE_CHARS} characters`);

/** A JSON object that refuses fields it does not know: a typo must not pass silently. */
function object<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.strictObject(shape, { error: mustBe("a JSON object") });
}

// ---------------------------------------------------------------------------
// Path and query parameters. Values arrive as strings; a query parameter given empty counts as absent
// only where it is optional.

export const taskPath = z.strictObject({ task_id: taskId });
export const reservationPath = z.strictObject({
  reservation_id: z
    .string()
    .refine((value) => UUID_PATTERN.test(value.toLowerCase()), { error: "must be a UUID" })
    .transform((value) => value.toLowerCase()),
});
export const registryPath = z.strictObject({ project_id: projectId, artifact_type: artifactType });

const requiredQuery = <Schema extends z.ZodType<unknown, string>>(schema: Schema) =>
  z
    .string({ error: mustBe("a string") })
    .min(1, { error: "is required" })
    .pipe(schema);

export const taskRefQuery = z.strictObject({ project: projectId.optional() });
export const nextTaskQuery = z.strictObject({ project: requiredQuery(projectId), status: taskStatus.optional() });
export const allocateQuery = z.strictObject({ type: requiredQuery(artifactType), project: requiredQuery(projectId) });
export const projectFilterQuery = z.strictObject({ project: projectId.optional() });
export const eventsQuery = z.strictObject({ project: projectId.optional(), view: oneOf(["history", "tasks"]).optional() });

const limit = z
  .string()
  .regex(/^\d{1,3}$/, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })
  .transform(Number)
  .refine((value) => value >= 1 && value <= MAX_LIST_LIMIT, { error: `must be a whole number from 1 to ${MAX_LIST_LIMIT}` })
  .meta({ description: `1 to ${MAX_LIST_LIMIT}, default ${DEFAULT_LIST_LIMIT}` });

export const taskListQuery = z
  .strictObject({
    project: projectId.optional(),
    status: taskStatus.optional(),
    ready: oneOf(["true", "false"]).optional(),
    claimed_by: agentId.optional(),
    q: text()
      .refine((value) => /[\p{L}\p{N}]/u.test(value), { error: "must hold a word to search for" })
      .refine((value) => value.length <= 500, { error: "must be at most 500 characters" })
      .optional()
      .meta({
        description: "Full text over description, criteria and notes: every word must match, as a prefix; best match first",
      }),
    label: z
      .array(labelName)
      .max(MAX_LABELS, { error: `must be given at most ${MAX_LABELS} times` })
      .optional()
      .meta({ description: "Repeatable: the task carries every label given" }),
    parent: taskId.optional().meta({ description: "A task ID: its children" }),
    limit: limit.optional(),
    cursor: text().max(2048, { error: "is not a next_cursor of GET /tasks" }).optional(),
  })
  .refine((query) => query.ready === undefined || query.status === undefined || query.status === "pending", {
    error: "needs status pending (or no status): ready is about pending tasks",
    path: ["ready"],
  });

// ---------------------------------------------------------------------------
// Request bodies.

/** A note a task arrives with (an import): `by` defaults to the request's X-Agent-Id, `at` to now. */
const batchNote = object({
  text: noteText,
  by: z
    .string({ error: mustBe("a string") })
    .refine((value) => value.length <= MAX_AGENT_ID_LENGTH && AGENT_ID_PATTERN.test(value), { error: `must be ${AGENT_ID_RULE}` })
    .nullable()
    .default(null),
  at: z
    .string({ error: mustBe("a string") })
    .refine((value) => /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value)), {
      error: "must be a date-time (2026-11-24T21:46:59.123Z)",
    })
    .transform((value) => new Date(value).toISOString())
    .nullable()
    .default(null),
});

const newTask = object({
  task_id: taskId
    .optional()
    .meta({ description: "Left out: the tracker assigns the next TASK-nnn of the project's ID registry" }),
  project_id: projectId,
  description,
  inputs: stringList.default([]),
  outputs: stringList.default([]),
  priority: priority.default("medium"),
  depends_on: z.array(taskId, { error: mustBe("an array of strings") }).default([]),
  status: z
    .enum(["pending", "completed", "cancelled"], {
      error: (issue) =>
        issue.input === undefined ? "is required" : "must be pending, completed or cancelled (a new task starts in one of them)",
    })
    .default("pending"),
  completion_notes: completionNotes.default(""),
  labels: labels.default([]),
  parent_id: taskId.nullable().default(null),
  acceptance_criteria: criteria.default([]),
  notes: z
    .array(batchNote, { error: mustBe("an array") })
    .max(MAX_NOTES_PER_NEW_TASK, { error: `must hold at most ${MAX_NOTES_PER_NEW_TASK} notes` })
    .default([]),
}).refine((task) => task.status === "completed" || task.completion_notes === "", {
  error: "is only for status completed",
  path: ["completion_notes"],
});

const MAX_TASKS_SENTENCE = `must hold 1 to ${MAX_TASKS_PER_BATCH} tasks`;
export const taskBatchBody = object({
  tasks: z
    .array(newTask, { error: mustBe("an array") })
    .min(1, { error: (issue) => `${MAX_TASKS_SENTENCE}, not ${(issue.input as unknown[]).length}` })
    .max(MAX_TASKS_PER_BATCH, { error: (issue) => `${MAX_TASKS_SENTENCE}, not ${(issue.input as unknown[]).length}` }),
});

/**
 * The rules of a batch that need no storage: a task_id repeated inside it (409) and a dependency
 * cycle inside it (400). Tasks without a task_id are named later, by the storage (nameBatch).
 */
export function checkBatch(tasks: readonly BatchTask[]): void {
  const seen = new Set<string>();
  for (const task of tasks) {
    if (task.task_id === undefined) continue;
    // A task ID is unique within its project only.
    const key = `${task.project_id}\n${task.task_id}`;
    if (seen.has(key)) {
      throw new ApiError("conflict", `Task ${task.task_id} of project ${task.project_id} appears more than once in the batch`);
    }
    seen.add(key);
  }
  rejectCycles(tasks);
  checkBatchParents(tasks);
}

export const statusBody = object({
  status: taskStatus,
  completion_notes: completionNotes.default(""),
  lease_seconds: leaseSeconds.optional(),
  force: z.boolean({ error: mustBe("a boolean") }).default(false),
})
  .refine((body) => body.lease_seconds === undefined || body.status === "in_progress", {
    error: "is only for status in_progress (a claim)",
    path: ["lease_seconds"],
  })
  .refine((body) => !body.force || body.status === "pending" || body.status === "cancelled", {
    error: "is only for status pending (a release) or cancelled",
    path: ["force"],
  });

export const heartbeatBody = object({ lease_seconds: leaseSeconds.optional() });

/** POST /tasks/claim. `status` names the tasks to claim from, as GET /tasks/next's: only pending ones can be. */
export const claimNextBody = object({
  project_id: projectId,
  status: z
    .literal("pending", {
      error: (issue) => `must be pending (only a pending task can be claimed), not ${JSON.stringify(issue.input)}`,
    })
    .default("pending"),
  lease_seconds: leaseSeconds.optional(),
});

/** The whole new depends_on of an edit: at most a batch's worth of tasks, each named once. */
const editedDependsOn = z
  .array(taskId, { error: mustBe("an array of strings") })
  .max(MAX_TASKS_PER_BATCH, { error: `must name at most ${MAX_TASKS_PER_BATCH} tasks` })
  .superRefine((ids, context) => {
    const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
    if (repeated !== undefined) context.addIssue({ code: "custom", message: `names ${repeated} more than once` });
  });

const positions = z
  .array(integer(1, MAX_CRITERIA), { error: mustBe("an array of criterion positions (1-based)") })
  .min(1, { error: "must name at least one criterion position (1-based)" })
  .max(MAX_CRITERIA, { error: `must name at most ${MAX_CRITERIA} positions` });

const EDITED_FIELDS = [
  "priority",
  "description",
  "depends_on",
  "labels",
  "parent_id",
  "acceptance_criteria",
  "check",
  "uncheck",
] as const;

export const taskEditBody = object({
  priority: priority.optional(),
  description: description.optional(),
  depends_on: editedDependsOn.optional(),
  labels: labels.optional(),
  parent_id: taskId.nullable().optional(),
  acceptance_criteria: criteria.optional(),
  check: positions.optional(),
  uncheck: positions.optional(),
}).refine((body) => EDITED_FIELDS.some((field) => body[field] !== undefined), {
  error: `must hold ${EDITED_FIELDS.slice(0, -1).join(", ")} or ${EDITED_FIELDS.at(-1)} (one or several)`,
});

export const noteBody = object({ text: noteText });

export const reservationBody = object({
  type: artifactType,
  count: integer(1, MAX_RESERVATION_COUNT),
  project_id: projectId,
});

export const registryImportBody = object({ last_assigned_id: integer(0, MAX_RAISED_ID) });

/**
 * The X-Agent-Id header, checked on every request that sends it. The claimed_by filter above stays
 * printable ASCII: it reads, and finds the claims of IDs recorded before this rule too.
 */
export function parseAgentId(header: string | null): string | null {
  if (header === null) return null;
  if (header.length === 0 || header.length > MAX_AGENT_ID_LENGTH || !AGENT_ID_PATTERN.test(header)) {
    throw validationError(`X-Agent-Id must be ${AGENT_ID_RULE}`);
  }
  return header;
}

// ---------------------------------------------------------------------------
// Responses: for the OpenAPI document only (the storages build the objects; these describe them).

const time = z.string().meta({ format: "date-time" });

const noteSchema = z.object({ at: time, by: z.string().nullable(), text: z.string() });

export const taskSchema = z.object({
  task_id: z.string(),
  project_id: z.string(),
  description: z.string(),
  inputs: z.array(z.string()),
  outputs: z.array(z.string()),
  priority,
  depends_on: z.array(z.string()),
  status: taskStatus,
  claimed_by: z.string().nullable().meta({ description: "The X-Agent-Id of the claim, as the client sent it" }),
  claimed_by_key: z.string().nullable().meta({
    description: "The name of the key that claimed it: with claimed_by, the holder (null: none, or a claim from before keys)",
  }),
  lease_expires_at: time.nullable(),
  completion_notes: z.string(),
  created_at: time,
  updated_at: time,
  started_at: time.nullable(),
  completed_at: time.nullable(),
  labels: z.array(z.string()),
  parent_id: z.string().nullable(),
  acceptance_criteria: z.array(z.object({ text: z.string(), done: z.boolean() })),
  notes_count: z.number().int(),
  last_note: noteSchema.nullable(),
  children: z.object({ total: z.number().int(), done: z.number().int() }),
  released_by: z.string().nullable(),
  notes: z
    .array(noteSchema)
    .optional()
    .meta({ description: "Every note, oldest first: only in GET /tasks/{task_id} and in the answer to a claim" }),
  match: z
    .object({ snippet: z.string() })
    .optional()
    .meta({ description: "With GET /tasks?q=: where it matched, the matched words in [ ]" }),
});

export const taskEventSchema = z.object({
  event_id: z.number().int(),
  project_id: z.string(),
  task_id: z.string(),
  type: z.enum(TASK_EVENT_TYPES),
  at: time,
  agent_id: z.string().nullable(),
  key_name: z
    .string()
    .nullable()
    .meta({ description: "The name of the key of the request that made the change; null for the service's own expiry" }),
  from_status: taskStatus.nullable(),
  to_status: taskStatus.nullable(),
  details: z.record(z.string(), z.unknown()),
});

export const reservationSchema = z.object({
  reservation_id: z.string().meta({ format: "uuid" }),
  reserved_ids: z.array(z.string()),
  expires_at: time,
  artifact_type: z.string(),
  project_id: z.string(),
});

export const reservationWithStatusSchema = reservationSchema.extend({ status: z.enum(["active", "expired"]) });

export const projectSummarySchema = z.object({
  project_id: z.string(),
  ready: z.number().int(),
  blocked: z.number().int(),
  in_progress: z.number().int(),
  completed: z.number().int(),
  cancelled: z.number().int(),
  last_change_at: time.nullable(),
});

export const idCounterSchema = z.object({
  project_id: z.string(),
  artifact_type: z.string(),
  last_assigned_id: z.number().int(),
});

export const errorSchema = z.object({ error: z.string(), code: z.string() });

const taskBody = z.object({ task: taskSchema });

/** The body of each route's success, by route; errors are all errorSchema. */
export const responses = {
  health: z.object({ status: z.literal("ok"), version: z.string() }),
  nextTask: z.object({ task: taskSchema.nullable() }),
  claimedTask: z.object({ task: taskSchema.nullable() }),
  batchAdded: z.object({ success: z.literal(true), tasks_added: z.number().int(), task_ids: z.array(z.string()) }),
  taskPage: z.object({ tasks: z.array(taskSchema), next_cursor: z.string().nullable() }),
  projects: z.object({ projects: z.array(projectSummarySchema) }),
  task: taskBody,
  updatedTask: z.object({ updated_task: taskSchema }),
  note: z.object({ note: noteSchema, task: taskSchema }),
  events: z.object({ events: z.array(taskEventSchema) }),
  allocatedId: z.object({ next_id: z.string(), artifact_type: z.string(), project_id: z.string(), number: z.number().int() }),
  reservation: reservationSchema,
  reservationWithStatus: reservationWithStatusSchema,
  registry: z.object({ counters: z.array(idCounterSchema), reservations: z.array(reservationWithStatusSchema) }),
  counter: idCounterSchema,
};

// ---------------------------------------------------------------------------
// Keys (API.md, "Keys and roles"): the admin's routes /admin/keys, and GET /whoami.

const keyName = identifier(KEY_NAME_PATTERN, KEY_NAME_RULE);
const role = oneOf(ROLES);

export const keyPath = z.strictObject({ name: keyName });

export const newKeyBody = object({
  name: keyName,
  role,
  projects: z
    .array(projectId, { error: mustBe("an array of strings") })
    .max(MAX_PROJECTS_PER_KEY, { error: `must name at most ${MAX_PROJECTS_PER_KEY} projects` })
    .default([])
    .meta({ description: "A member's projects; empty or left out: every project" }),
});

export const apiKeySchema = z.object({
  name: z.string(),
  role,
  projects: z.array(z.string()),
  created_at: time,
  last_used_at: time.nullable(),
  revoked_at: time.nullable(),
});

export const keyResponses = {
  created: apiKeySchema.extend({ key: z.string().meta({ description: "The key itself: shown this once, never again" }) }),
  list: z.object({ keys: z.array(apiKeySchema) }),
  revoked: z.object({ key: apiKeySchema }),
  whoami: z.object({
    name: z.string(),
    role,
    projects: z.array(z.string()).nullable().meta({ description: "The projects a member is limited to; null: every project" }),
  }),
};
