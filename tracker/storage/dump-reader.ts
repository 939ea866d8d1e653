// Reading a dump (dump.ts has the format): its bytes as numbered lines, and each line checked and
// parsed into its record with zod, as the routes check requests (tracker/http/schemas.ts). Every
// refusal is a DumpError whose sentence names the line, the kind of record and the field.

import { z } from "zod";
import {
  ARTIFACT_TYPE_PATTERN,
  ARTIFACT_TYPE_RULE,
  LABEL_PATTERN,
  LABEL_RULE,
  MAX_AGENT_ID_LENGTH,
  MAX_CRITERIA,
  MAX_ID_NUMBER,
  MAX_LEASE_SECONDS,
  MAX_RESERVATION_COUNT,
  PRINTABLE_ASCII_PATTERN,
  PRIORITIES,
  PROJECT_ID_PATTERN,
  PROJECT_ID_RULE,
  type Priority,
  SCHEMA_VERSION,
  TASK_EVENT_TYPES,
  TASK_ID_PATTERN,
  TASK_ID_RULE,
  TASK_STATUSES,
  type TaskEventType,
  type TaskStatus,
  UUID_PATTERN,
} from "../domain.ts";
import { KEY_NAME_PATTERN, KEY_NAME_RULE } from "../keys.ts";
import {
  DUMP_FORMAT,
  type DumpCounter,
  type DumpEnd,
  DumpError,
  type DumpEvent,
  type DumpHeader,
  type DumpNote,
  type DumpRecord,
  type DumpReservation,
  type DumpTask,
  type NumberedLine,
  READABLE_DUMP_VERSIONS,
} from "./dump.ts";

// ---------------------------------------------------------------------------
// Lines with their numbers.

/** Splits bytes into lines (a final newline ends the last one); invalid UTF-8 is an error naming its line. */
export async function* numberedLines(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<NumberedLine> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pending = "";
  let number = 0;
  const decode = (chunk?: Uint8Array) => {
    try {
      return chunk === undefined ? decoder.decode() : decoder.decode(chunk, { stream: true });
    } catch {
      throw new DumpError(number + 1, "is not valid UTF-8");
    }
  };
  for await (const chunk of bytes) {
    pending += decode(chunk);
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      yield { number: ++number, text: pending.slice(0, newline).replace(/\r$/, "") };
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
  }
  pending += decode();
  if (pending !== "") yield { number: ++number, text: pending.replace(/\r$/, "") };
}

// ---------------------------------------------------------------------------
// The fields. Each schema's error says what the value must be; the field's name goes in front.

const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The error of a field: `is missing` when it is absent, else `sentence`. */
function unlessMissing(sentence: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? "is missing" : sentence);
}

function text() {
  return z
    .string({ error: unlessMissing("must be a string") })
    .refine((value) => !value.includes("\0"), { error: "must not contain a NUL character" })
    .refine((value) => value.isWellFormed(), { error: "must not contain a lone surrogate (invalid UTF-16)" });
}

function matching(pattern: RegExp, rule: string) {
  return text().refine((value) => pattern.test(value), { error: `must be ${rule}` });
}

function whole(min: number, max: number) {
  const sentence = `must be a whole number from ${min} to ${max}`;
  return z
    .number({ error: unlessMissing(sentence) })
    .refine((value) => Number.isSafeInteger(value) && value >= min && value <= max, { error: sentence });
}

const time = text().refine(
  (value) => TIME_PATTERN.test(value) && !Number.isNaN(Date.parse(value)) && new Date(value).toISOString() === value,
  { error: "must be a UTC time such as 2026-12-01T12:00:00.000Z" },
);

function oneOf<const Values extends readonly string[]>(values: Values) {
  const sentence = `must be one of ${values.join(", ")}`;
  return z.custom<Values[number]>((value) => values.includes(value as string), { error: unlessMissing(sentence) });
}

function strings(rule?: { pattern: RegExp; text: string }) {
  const item = z
    .string({ error: "must be a string without NUL characters or lone surrogates" })
    .refine((value) => !value.includes("\0") && value.isWellFormed(), {
      error: "must be a string without NUL characters or lone surrogates",
    })
    .refine((value) => !rule || rule.pattern.test(value), { error: `must be ${rule?.text}` });
  return z.array(item, { error: unlessMissing("must be an array of strings") });
}

const agent = text()
  .nullable()
  .refine((value) => value === null || (value.length <= MAX_AGENT_ID_LENGTH && PRINTABLE_ASCII_PATTERN.test(value)), {
    error: `must be null or 1 to ${MAX_AGENT_ID_LENGTH} printable ASCII characters`,
  });

/** A key's name (keys.ts, KEY_NAME_PATTERN) or null; absent in a version-1 line. */
const keyName = matching(KEY_NAME_PATTERN, KEY_NAME_RULE).nullable().default(null);

const jsonObject = z.custom<Record<string, unknown>>(
  (value) => typeof value === "object" && value !== null && !Array.isArray(value),
  { error: unlessMissing("must be a JSON object") },
);

const nullable = <Schema extends z.ZodType>(schema: Schema) => schema.nullable();

const taskId = matching(TASK_ID_PATTERN, TASK_ID_RULE);
const projectId = matching(PROJECT_ID_PATTERN, PROJECT_ID_RULE);
const artifactType = matching(ARTIFACT_TYPE_PATTERN, ARTIFACT_TYPE_RULE);
const taskStatus = oneOf(TASK_STATUSES);
const counts = jsonObject;

// ---------------------------------------------------------------------------
// The records. Unknown fields are refused: the format would lose them.

const headerSchema = z.strictObject({
  kind: z.literal("header"),
  format: text(),
  version: whole(1, Number.MAX_SAFE_INTEGER),
  format_version: whole(1, Number.MAX_SAFE_INTEGER).optional(),
  schema_version: whole(1, Number.MAX_SAFE_INTEGER),
  created_at: time,
});

const taskSchema = z.strictObject({
  kind: z.literal("task"),
  project_id: projectId,
  task_id: taskId,
  description: text(),
  inputs: strings(),
  outputs: strings(),
  priority: oneOf(PRIORITIES),
  depends_on: strings({ pattern: TASK_ID_PATTERN, text: TASK_ID_RULE }),
  status: taskStatus,
  claimed_by: agent,
  claimed_by_key: keyName,
  lease_expires_at: nullable(time),
  lease_seconds: nullable(whole(1, MAX_LEASE_SECONDS)),
  lost_by: agent,
  lost_by_key: keyName,
  lost_at: nullable(time),
  completion_notes: text(),
  created_at: time,
  updated_at: time,
  started_at: nullable(time),
  completed_at: nullable(time),
  // Version 2; absent in a version-1 line.
  labels: strings({ pattern: LABEL_PATTERN, text: LABEL_RULE }).default([]),
  parent_id: nullable(taskId).default(null),
  acceptance_criteria: z
    .array(z.strictObject({ text: text(), done: z.boolean({ error: "must be true or false" }) }), {
      error: unlessMissing("must be an array of {text, done}"),
    })
    .max(MAX_CRITERIA, { error: `must hold at most ${MAX_CRITERIA} criteria` })
    .default([]),
  released_by: agent.default(null),
});

const noteSchema = z.strictObject({
  kind: z.literal("note"),
  project_id: projectId,
  task_id: taskId,
  at: time,
  by: agent,
  text: text(),
});

const eventSchema = z.strictObject({
  kind: z.literal("event"),
  event_id: whole(1, Number.MAX_SAFE_INTEGER),
  project_id: projectId,
  task_id: taskId,
  type: oneOf(TASK_EVENT_TYPES),
  at: time,
  agent_id: agent,
  key_name: keyName,
  from_status: nullable(taskStatus),
  to_status: nullable(taskStatus),
  details: jsonObject,
});

const counterSchema = z.strictObject({
  kind: z.literal("counter"),
  project_id: projectId,
  artifact_type: artifactType,
  last_assigned_id: whole(0, MAX_ID_NUMBER),
});

const reservationSchema = z.strictObject({
  kind: z.literal("reservation"),
  reservation_id: matching(UUID_PATTERN, "a UUID in lower case"),
  project_id: projectId,
  artifact_type: artifactType,
  first_number: whole(1, MAX_ID_NUMBER),
  count: whole(1, MAX_RESERVATION_COUNT),
  created_at: time,
  expires_at: time,
});

const endSchema = z.strictObject({ kind: z.literal("end"), counts });

const SCHEMAS = {
  header: headerSchema,
  task: taskSchema,
  // Note lines are part of the task section: each follows its task.
  note: noteSchema,
  event: eventSchema,
  counter: counterSchema,
  reservation: reservationSchema,
  end: endSchema,
};
export type DumpKind = keyof typeof SCHEMAS;
/** The order of the sections of a dump. */
export const DUMP_KINDS = Object.keys(SCHEMAS) as DumpKind[];

// ---------------------------------------------------------------------------
// The rules across fields, after each record's fields are checked.

/** A line's own refusal: `line 2 (task): <problem>`. */
function fail(line: number, kind: string, problem: string): never {
  throw new DumpError(line, `(${kind}): ${problem}`);
}

function checkHeader(line: number, header: z.output<typeof headerSchema>): DumpHeader {
  const refuse = (problem: string) => fail(line, "header", problem);
  if (header.format !== DUMP_FORMAT) refuse(`format must be ${DUMP_FORMAT}: this is not a dump of a task tracker`);
  if (!READABLE_DUMP_VERSIONS.includes(header.version)) {
    refuse(
      `version ${header.version} is not one this tracker reads (it reads ${READABLE_DUMP_VERSIONS.join(" and ")}); use a newer tracker`,
    );
  }
  if (header.format_version !== undefined && header.format_version !== header.version) {
    refuse(`format_version ${header.format_version} must be the same as version (${header.version})`);
  }
  if (header.schema_version > SCHEMA_VERSION) {
    refuse(`schema_version ${header.schema_version} is newer than this tracker's (${SCHEMA_VERSION}); use a newer tracker`);
  }
  return { ...header, format: DUMP_FORMAT };
}

/** The columns each status has and has not (the schemas' CHECKs, and what the listing's order reads). */
function checkTask(line: number, task: z.output<typeof taskSchema>): DumpTask {
  const refuse = (problem: string) => fail(line, "task", problem);
  const claim = task.lease_expires_at !== null || task.lease_seconds !== null;
  if (task.status === "in_progress") {
    if (task.lease_expires_at === null || task.lease_seconds === null || task.started_at === null) {
      refuse("an in_progress task needs lease_expires_at, lease_seconds and started_at");
    }
    if (task.completed_at !== null) refuse("an in_progress task has no completed_at");
  } else if (claim) {
    refuse(`a ${task.status} task has no lease (lease_expires_at and lease_seconds must be null)`);
  }
  if (task.status === "pending" && (task.claimed_by !== null || task.started_at !== null || task.completed_at !== null)) {
    refuse("a pending task has no claimed_by, started_at or completed_at");
  }
  if ((task.status === "completed" || task.status === "cancelled") && task.completed_at === null) {
    refuse(`a ${task.status} task needs completed_at`);
  }
  if (task.lost_by !== null && task.lost_at === null) refuse("lost_by needs lost_at (when the lost lease ran out)");
  return { ...task, priority: task.priority as Priority, status: task.status as TaskStatus };
}

function checkReservation(line: number, reservation: DumpReservation): DumpReservation {
  if (reservation.first_number + reservation.count - 1 > MAX_ID_NUMBER) {
    fail(line, "reservation", `its last number is above ${MAX_ID_NUMBER}`);
  }
  return reservation;
}

function checkEnd(line: number, end: z.output<typeof endSchema>): DumpEnd {
  const found = {} as DumpEnd["counts"];
  for (const name of ["tasks", "events", "counters", "reservations", "notes"] as const) {
    const value = end.counts[name];
    // A dump of version 1 counts no notes.
    if (name === "notes" && value === undefined) continue;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      fail(line, "end", `counts.${name} must be a whole number`);
    }
    found[name] = value;
  }
  const extra = Object.keys(end.counts).find((name) => !(name in found));
  if (extra !== undefined) fail(line, "end", `counts.${extra} is not a count of a dump`);
  return { kind: "end", counts: found };
}

// ---------------------------------------------------------------------------
// One line.

/** `inputs[2]`, `counts.tasks`. */
function fieldName(path: readonly PropertyKey[]): string {
  let name = "";
  for (const key of path) name += typeof key === "number" ? `[${key}]` : name === "" ? String(key) : `.${String(key)}`;
  return name;
}

/** The first problem of a field; an unknown field only once every known one is right. */
function firstProblem(line: number, kind: DumpKind, error: z.ZodError): never {
  const issue = error.issues.find((candidate) => candidate.code !== "unrecognized_keys") ?? error.issues[0]!;
  if (issue.code === "unrecognized_keys") fail(line, kind, `${issue.keys[0]} is not a field of a ${kind} line`);
  fail(line, kind, `${fieldName(issue.path)} ${issue.message}`);
}

function parseJson(line: NumberedLine): Record<string, unknown> {
  let record: unknown;
  try {
    record = JSON.parse(line.text);
  } catch {
    throw new DumpError(line.number, line.text.trim() === "" ? "is empty" : "is not valid JSON");
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    throw new DumpError(line.number, "is not a JSON object");
  }
  return record as Record<string, unknown>;
}

/** Checks one line of a dump and returns its record; a DumpError names the line and what is wrong. */
export function parseDumpLine(line: NumberedLine): DumpRecord {
  const record = parseJson(line);
  const kind = record.kind;
  if (typeof kind !== "string" || !DUMP_KINDS.includes(kind as DumpKind)) {
    throw new DumpError(line.number, `has no known kind (it must be one of ${DUMP_KINDS.join(", ")})`);
  }
  const parsed = SCHEMAS[kind as DumpKind].safeParse(record);
  if (!parsed.success) firstProblem(line.number, kind as DumpKind, parsed.error);
  const data = parsed.data;
  switch (data.kind) {
    case "header":
      return checkHeader(line.number, data);
    case "task":
      return checkTask(line.number, data);
    case "note":
      return data satisfies DumpNote;
    case "event":
      return { ...data, type: data.type as TaskEventType } satisfies DumpEvent;
    case "counter":
      return data satisfies DumpCounter;
    case "reservation":
      return checkReservation(line.number, data);
    case "end":
      return checkEnd(line.number, data);
  }
}
