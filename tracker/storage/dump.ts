// The dump: everything a tracker keeps (tasks with their statuses and times, their history, the ID
// counters and the reservations) as JSON lines, the same from both storages, so a dump of one
// restores into the other (docs/API.md, "Keeping the data"). Not in it: stored Idempotency-Key
// responses (kept 24 hours for retries, meaningless after a move).
//
// This file holds what both storages share: the record format, the writer (dumpLines, fed page by
// page by a storage's DumpSnapshot) and the reader (loadDump, which checks every line and hands
// the records to a storage's RestoreTarget in batches). sqlite-dump.ts and postgres-dump.ts hold
// the SQL.

import {
  ARTIFACT_TYPE_PATTERN,
  ARTIFACT_TYPE_RULE,
  MAX_AGENT_ID_LENGTH,
  MAX_ID_NUMBER,
  MAX_LEASE_SECONDS,
  MAX_RESERVATION_COUNT,
  PRINTABLE_ASCII_PATTERN,
  PRIORITIES,
  PROJECT_ID_PATTERN,
  PROJECT_ID_RULE,
  type Priority,
  SCHEMA_VERSION,
  TASK_ID_PATTERN,
  TASK_ID_RULE,
  TASK_STATUSES,
  type TaskEventType,
  type TaskStatus,
  UUID_PATTERN,
} from "../domain.ts";

export const DUMP_FORMAT = "task-tracking-dump";
export const DUMP_VERSION = 1;
/** Rows a storage reads per query while dumping, and writes per statement while restoring. */
export const DUMP_PAGE_SIZE = 1000;

const EVENT_TYPES: readonly TaskEventType[] = [
  "created",
  "claimed",
  "released",
  "force_released",
  "completed",
  "claim_expired",
  "updated",
];

export interface DumpHeader {
  kind: "header";
  format: typeof DUMP_FORMAT;
  version: typeof DUMP_VERSION;
  schema_version: number;
  created_at: string;
}

/** One task, with every column needed to restore it exactly; unfinished dependencies are derived. */
export interface DumpTask {
  kind: "task";
  project_id: string;
  task_id: string;
  description: string;
  inputs: string[];
  outputs: string[];
  priority: Priority;
  depends_on: string[];
  status: TaskStatus;
  claimed_by: string | null;
  lease_expires_at: string | null;
  /** The length the claim asked for: a renewal without lease_seconds uses it. */
  lease_seconds: number | null;
  /** The holder of the last lease that ran out, and when it ran out: that agent hears claim_lost. */
  lost_by: string | null;
  lost_at: string | null;
  completion_notes: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
}

export interface DumpEvent {
  kind: "event";
  event_id: number;
  project_id: string;
  task_id: string;
  type: TaskEventType;
  at: string;
  agent_id: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: Record<string, unknown>;
}

export interface DumpCounter {
  kind: "counter";
  project_id: string;
  artifact_type: string;
  last_assigned_id: number;
}

export interface DumpReservation {
  kind: "reservation";
  reservation_id: string;
  project_id: string;
  artifact_type: string;
  first_number: number;
  count: number;
  created_at: string;
  expires_at: string;
}

export interface DumpCounts {
  tasks: number;
  events: number;
  counters: number;
  reservations: number;
}

export interface DumpEnd {
  kind: "end";
  counts: DumpCounts;
}

/**
 * A consistent view of one storage at one moment, read page by page: tasks in insertion order,
 * events by event_id, counters and reservations by project and type (bytewise, so both storages
 * list them alike). close() frees what the view holds; it is called whatever happens.
 */
export interface DumpSnapshot {
  schemaVersion: number;
  tasks(): AsyncIterable<DumpTask[]>;
  events(): AsyncIterable<DumpEvent[]>;
  counters(): AsyncIterable<DumpCounter[]>;
  reservations(): AsyncIterable<DumpReservation[]>;
  close(): Promise<void>;
}

/** A consistent copy of a storage's database file (SQLite), as a stream of its bytes. */
export interface BackupFile {
  size: number;
  stream: ReadableStream<Uint8Array>;
}

// ---------------------------------------------------------------------------
// Writing.

/** The fields of each kind of line, in the order a line lists them. */
const FIELD_ORDER = {
  task: [
    "kind",
    "project_id",
    "task_id",
    "description",
    "inputs",
    "outputs",
    "priority",
    "depends_on",
    "status",
    "claimed_by",
    "lease_expires_at",
    "lease_seconds",
    "lost_by",
    "lost_at",
    "completion_notes",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
  ],
  event: ["kind", "event_id", "project_id", "task_id", "type", "at", "agent_id", "from_status", "to_status", "details"],
  counter: ["kind", "project_id", "artifact_type", "last_assigned_id"],
  reservation: ["kind", "reservation_id", "project_id", "artifact_type", "first_number", "count", "created_at", "expires_at"],
} as const;

/** JSON with object keys in sorted order at every depth: PostgreSQL's jsonb reorders keys, SQLite keeps them. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys((value as Record<string, unknown>)[key]);
  return sorted;
}

/** One line of a dump, the same from either storage: its fields in FIELD_ORDER, the keys of details sorted. */
function formatRecord(record: DumpTask | DumpEvent | DumpCounter | DumpReservation): string {
  const ordered: Record<string, unknown> = {};
  for (const field of FIELD_ORDER[record.kind]) ordered[field] = (record as unknown as Record<string, unknown>)[field];
  if (record.kind === "event") ordered.details = sortKeys(record.details);
  return `${JSON.stringify(ordered)}\n`;
}

/**
 * The dump as chunks of text, one page of records each: header, tasks, events, counters,
 * reservations, end. Closes the snapshot when done, or when the reader stops early.
 */
export async function* dumpLines(snapshot: DumpSnapshot, createdAt: Date): AsyncGenerator<string> {
  try {
    const header: DumpHeader = {
      kind: "header",
      format: DUMP_FORMAT,
      version: DUMP_VERSION,
      schema_version: snapshot.schemaVersion,
      created_at: createdAt.toISOString(),
    };
    yield `${JSON.stringify(header)}\n`;
    const counts: DumpCounts = { tasks: 0, events: 0, counters: 0, reservations: 0 };
    const sections = [
      ["tasks", snapshot.tasks()],
      ["events", snapshot.events()],
      ["counters", snapshot.counters()],
      ["reservations", snapshot.reservations()],
    ] as const;
    for (const [name, pages] of sections) {
      for await (const page of pages) {
        counts[name] += page.length;
        if (page.length > 0) yield page.map(formatRecord).join("");
      }
    }
    const end: DumpEnd = { kind: "end", counts };
    yield `${JSON.stringify(end)}\n`;
  } finally {
    await snapshot.close();
  }
}

/** The chunks as a byte stream, read as fast as the client takes them (GET /admin/dump). */
export function textStream(chunks: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

// ---------------------------------------------------------------------------
// Reading: lines with their numbers.

export interface NumberedLine {
  number: number;
  text: string;
}

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

/** A line of a dump that cannot be restored: the sentence starts with its line number. */
export class DumpError extends Error {
  override readonly name = "DumpError";
  constructor(line: number | null, problem: string) {
    super(line === null ? problem : `line ${line} ${problem}`);
  }
}

// ---------------------------------------------------------------------------
// Reading: the checks of one record.

const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The fields of one line, each read once and checked; what is left over is an unknown field. */
class Fields {
  private readonly seen = new Set<string>(["kind"]);
  constructor(
    private readonly line: number,
    private readonly kind: string,
    private readonly record: Record<string, unknown>,
  ) {}

  fail(problem: string): never {
    throw new DumpError(this.line, `(${this.kind}): ${problem}`);
  }

  private take(field: string): unknown {
    this.seen.add(field);
    if (!(field in this.record)) this.fail(`${field} is missing`);
    return this.record[field];
  }

  string(field: string, rule?: { pattern: RegExp; text: string }): string {
    const value = this.take(field);
    if (typeof value !== "string") this.fail(`${field} must be a string`);
    if (value.includes("\0")) this.fail(`${field} must not contain a NUL character`);
    if (!value.isWellFormed()) this.fail(`${field} must not contain a lone surrogate (invalid UTF-16)`);
    if (rule && !rule.pattern.test(value)) this.fail(`${field} must be ${rule.text}`);
    return value;
  }

  nullableString(field: string, rule?: { pattern: RegExp; text: string }): string | null {
    return this.record[field] === null ? (this.take(field), null) : this.string(field, rule);
  }

  agent(field: string): string | null {
    const value = this.nullableString(field);
    if (value !== null && (value.length > MAX_AGENT_ID_LENGTH || !PRINTABLE_ASCII_PATTERN.test(value))) {
      this.fail(`${field} must be null or 1 to ${MAX_AGENT_ID_LENGTH} printable ASCII characters`);
    }
    return value;
  }

  integer(field: string, min: number, max: number): number {
    const value = this.take(field);
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
      this.fail(`${field} must be a whole number from ${min} to ${max}`);
    }
    return value;
  }

  nullableInteger(field: string, min: number, max: number): number | null {
    return this.record[field] === null ? (this.take(field), null) : this.integer(field, min, max);
  }

  time(field: string): string {
    const value = this.string(field);
    if (!TIME_PATTERN.test(value) || Number.isNaN(Date.parse(value)) || new Date(value).toISOString() !== value) {
      this.fail(`${field} must be a UTC time such as 2026-12-01T12:00:00.000Z`);
    }
    return value;
  }

  nullableTime(field: string): string | null {
    return this.record[field] === null ? (this.take(field), null) : this.time(field);
  }

  oneOf<T extends string>(field: string, choices: readonly T[]): T {
    const value = this.take(field);
    if (!choices.includes(value as T)) this.fail(`${field} must be one of ${choices.join(", ")}`);
    return value as T;
  }

  nullableOneOf<T extends string>(field: string, choices: readonly T[]): T | null {
    return this.record[field] === null ? (this.take(field), null) : this.oneOf(field, choices);
  }

  strings(field: string, rule?: { pattern: RegExp; text: string }): string[] {
    const value = this.take(field);
    if (!Array.isArray(value)) this.fail(`${field} must be an array of strings`);
    return value.map((item, i) => {
      if (typeof item !== "string" || item.includes("\0") || !item.isWellFormed()) {
        this.fail(`${field}[${i}] must be a string without NUL characters or lone surrogates`);
      }
      if (rule && !rule.pattern.test(item)) this.fail(`${field}[${i}] must be ${rule.text}`);
      return item;
    });
  }

  object(field: string): Record<string, unknown> {
    const value = this.take(field);
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(`${field} must be a JSON object`);
    return value as Record<string, unknown>;
  }

  /** After every field was read: one the format does not know would be lost, so it is refused. */
  noOthers(): void {
    const unknown = Object.keys(this.record).find((field) => !this.seen.has(field));
    if (unknown !== undefined) this.fail(`${unknown} is not a field of a ${this.kind} line`);
  }
}

const TASK_ID = { pattern: TASK_ID_PATTERN, text: TASK_ID_RULE };
const PROJECT_ID = { pattern: PROJECT_ID_PATTERN, text: PROJECT_ID_RULE };
const ARTIFACT_TYPE = { pattern: ARTIFACT_TYPE_PATTERN, text: ARTIFACT_TYPE_RULE };
const RESERVATION_ID = { pattern: UUID_PATTERN, text: "a UUID in lower case" };

function readHeader(f: Fields): DumpHeader {
  const format = f.string("format");
  if (format !== DUMP_FORMAT) f.fail(`format must be ${DUMP_FORMAT}: this is not a dump of a task tracker`);
  const version = f.integer("version", 1, Number.MAX_SAFE_INTEGER);
  if (version !== DUMP_VERSION)
    f.fail(`version ${version} is not one this tracker reads (it reads ${DUMP_VERSION}); use a newer tracker`);
  const schemaVersion = f.integer("schema_version", 1, Number.MAX_SAFE_INTEGER);
  if (schemaVersion > SCHEMA_VERSION) {
    f.fail(`schema_version ${schemaVersion} is newer than this tracker's (${SCHEMA_VERSION}); use a newer tracker`);
  }
  return {
    kind: "header",
    format: DUMP_FORMAT,
    version: DUMP_VERSION,
    schema_version: schemaVersion,
    created_at: f.time("created_at"),
  };
}

function readTask(f: Fields): DumpTask {
  const task: DumpTask = {
    kind: "task",
    project_id: f.string("project_id", PROJECT_ID),
    task_id: f.string("task_id", TASK_ID),
    description: f.string("description"),
    inputs: f.strings("inputs"),
    outputs: f.strings("outputs"),
    priority: f.oneOf("priority", PRIORITIES),
    depends_on: f.strings("depends_on", TASK_ID),
    status: f.oneOf("status", TASK_STATUSES),
    claimed_by: f.agent("claimed_by"),
    lease_expires_at: f.nullableTime("lease_expires_at"),
    lease_seconds: f.nullableInteger("lease_seconds", 1, MAX_LEASE_SECONDS),
    lost_by: f.agent("lost_by"),
    lost_at: f.nullableTime("lost_at"),
    completion_notes: f.string("completion_notes"),
    created_at: f.time("created_at"),
    updated_at: f.time("updated_at"),
    started_at: f.nullableTime("started_at"),
    completed_at: f.nullableTime("completed_at"),
  };
  checkTaskState(f, task);
  return task;
}

/** The columns each status has and has not (the schemas' CHECKs, and what the listing's order reads). */
function checkTaskState(f: Fields, task: DumpTask): void {
  const claim = task.lease_expires_at !== null || task.lease_seconds !== null;
  if (task.status === "in_progress") {
    if (task.lease_expires_at === null || task.lease_seconds === null || task.started_at === null) {
      f.fail("an in_progress task needs lease_expires_at, lease_seconds and started_at");
    }
    if (task.completed_at !== null) f.fail("an in_progress task has no completed_at");
  } else if (claim) {
    f.fail(`a ${task.status} task has no lease (lease_expires_at and lease_seconds must be null)`);
  }
  if (task.status === "pending" && (task.claimed_by !== null || task.started_at !== null || task.completed_at !== null)) {
    f.fail("a pending task has no claimed_by, started_at or completed_at");
  }
  if (task.status === "completed" && task.completed_at === null) f.fail("a completed task needs completed_at");
  if (task.lost_by !== null && task.lost_at === null) f.fail("lost_by needs lost_at (when the lost lease ran out)");
}

function readEvent(f: Fields): DumpEvent {
  return {
    kind: "event",
    event_id: f.integer("event_id", 1, Number.MAX_SAFE_INTEGER),
    project_id: f.string("project_id", PROJECT_ID),
    task_id: f.string("task_id", TASK_ID),
    type: f.oneOf("type", EVENT_TYPES),
    at: f.time("at"),
    agent_id: f.agent("agent_id"),
    from_status: f.nullableOneOf("from_status", TASK_STATUSES),
    to_status: f.nullableOneOf("to_status", TASK_STATUSES),
    details: f.object("details"),
  };
}

function readCounter(f: Fields): DumpCounter {
  return {
    kind: "counter",
    project_id: f.string("project_id", PROJECT_ID),
    artifact_type: f.string("artifact_type", ARTIFACT_TYPE),
    last_assigned_id: f.integer("last_assigned_id", 0, MAX_ID_NUMBER),
  };
}

function readReservation(f: Fields): DumpReservation {
  const reservation: DumpReservation = {
    kind: "reservation",
    reservation_id: f.string("reservation_id", RESERVATION_ID),
    project_id: f.string("project_id", PROJECT_ID),
    artifact_type: f.string("artifact_type", ARTIFACT_TYPE),
    first_number: f.integer("first_number", 1, MAX_ID_NUMBER),
    count: f.integer("count", 1, MAX_RESERVATION_COUNT),
    created_at: f.time("created_at"),
    expires_at: f.time("expires_at"),
  };
  if (reservation.first_number + reservation.count - 1 > MAX_ID_NUMBER) f.fail(`its last number is above ${MAX_ID_NUMBER}`);
  return reservation;
}

function readEnd(f: Fields): DumpEnd {
  const raw = f.object("counts");
  const counts = {} as DumpCounts;
  for (const name of ["tasks", "events", "counters", "reservations"] as const) {
    const value = raw[name];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) f.fail(`counts.${name} must be a whole number`);
    counts[name] = value;
  }
  const extra = Object.keys(raw).find((name) => !(name in counts));
  if (extra !== undefined) f.fail(`counts.${extra} is not a count of a dump`);
  return { kind: "end", counts };
}

const READERS = {
  header: readHeader,
  task: readTask,
  event: readEvent,
  counter: readCounter,
  reservation: readReservation,
  end: readEnd,
};
type Kind = keyof typeof READERS;
/** The order of the sections of a dump. */
const KINDS = Object.keys(READERS) as Kind[];

function parseLine(line: NumberedLine): DumpHeader | DumpTask | DumpEvent | DumpCounter | DumpReservation | DumpEnd {
  let record: unknown;
  try {
    record = JSON.parse(line.text);
  } catch {
    throw new DumpError(line.number, line.text.trim() === "" ? "is empty" : "is not valid JSON");
  }
  if (typeof record !== "object" || record === null || Array.isArray(record))
    throw new DumpError(line.number, "is not a JSON object");
  const kind = (record as { kind?: unknown }).kind;
  if (typeof kind !== "string" || !KINDS.includes(kind as Kind)) {
    throw new DumpError(line.number, `has no known kind (it must be one of ${KINDS.join(", ")})`);
  }
  const fields = new Fields(line.number, kind, record as Record<string, unknown>);
  const parsed = READERS[kind as Kind](fields);
  fields.noOthers();
  return parsed;
}

// ---------------------------------------------------------------------------
// Restoring.

/** A task as a storage inserts it: `seq` is its place in the dump (1, 2, …), unfinished_deps 0 for now. */
export interface RestoredTask extends DumpTask {
  seq: number;
}

export interface RestoredEvent extends DumpEvent {
  task_seq: number;
}

/**
 * What a storage does for loadDump, inside ONE transaction it opened on an empty database (a
 * failure anywhere rolls everything back). Calls come in this order: insertTasks (every batch),
 * linkDependencies, insertEvents, insertReservations, setCounters.
 */
export interface RestoreTarget {
  insertTasks(tasks: readonly RestoredTask[]): Promise<void>;
  /** The dependency rows, and for each task still waiting the number of its dependencies not completed. */
  linkDependencies(
    links: ReadonlyArray<{ dependencySeq: number; dependentSeq: number }>,
    unfinished: ReadonlyArray<{ seq: number; count: number }>,
  ): Promise<void>;
  insertEvents(events: readonly RestoredEvent[]): Promise<void>;
  insertReservations(reservations: readonly DumpReservation[]): Promise<void>;
  /** Also sets the storage's own sequences (task seq, event_id) past the highest restored. */
  setCounters(counters: readonly DumpCounter[]): Promise<void>;
}

/** What is known of every restored task, to check dependencies and events against. */
interface KnownTask {
  seq: number;
  status: TaskStatus;
}

/** Reads a dump from the first line to the end line, checking each, and feeds `target` in batches. */
class DumpLoader {
  private section = 0;
  private header: DumpHeader | null = null;
  private end: DumpEnd | null = null;
  private lastLine = 0;
  private readonly counts: DumpCounts = { tasks: 0, events: 0, counters: 0, reservations: 0 };
  private readonly tasks = new Map<string, KnownTask>();
  /** Only what linking needs of the tasks that depend on others: the whole tasks went to the target. */
  private readonly dependencies: Array<{
    line: number;
    seq: number;
    task: Pick<DumpTask, "project_id" | "task_id" | "status" | "depends_on">;
  }> = [];
  private taskBatch: RestoredTask[] = [];
  private eventBatch: RestoredEvent[] = [];
  private reservationBatch: DumpReservation[] = [];
  private lastEventId = 0;
  private readonly counters = new Map<string, DumpCounter>();
  private readonly reservationIds = new Set<string>();

  constructor(private readonly target: RestoreTarget) {}

  async load(lines: AsyncIterable<NumberedLine>): Promise<DumpCounts> {
    for await (const line of lines) {
      this.lastLine = line.number;
      if (this.end !== null) throw new DumpError(line.number, "comes after the end line");
      await this.take(line.number, parseLine(line));
    }
    if (this.header === null) throw new DumpError(null, "The dump is empty: it has no header line");
    if (this.end === null) {
      throw new DumpError(
        null,
        `The dump stops after line ${this.lastLine} without its end line: it was cut short; make it again`,
      );
    }
    return this.counts;
  }

  private async take(line: number, record: ReturnType<typeof parseLine>): Promise<void> {
    const section = KINDS.indexOf(record.kind);
    if (this.header === null && record.kind !== "header") throw new DumpError(line, "must be the header line of a dump");
    if (section < this.section || (record.kind === "header" && this.header !== null)) {
      throw new DumpError(
        line,
        `is a ${record.kind} line after the ${KINDS[this.section]} lines; a dump lists ${KINDS.join(", ")}, in that order`,
      );
    }
    if (section > this.section) await this.leaveSections(section);
    this.section = section;
    switch (record.kind) {
      case "header":
        this.header = record;
        return;
      case "task":
        return this.addTask(line, record);
      case "event":
        return this.addEvent(line, record);
      case "counter":
        return this.addCounter(line, record);
      case "reservation":
        return this.addReservation(line, record);
      case "end":
        return this.finish(line, record);
    }
  }

  /** Sections end in order: what was batched goes out, and the tasks' dependencies are linked. */
  private async leaveSections(next: number): Promise<void> {
    const taskSection = KINDS.indexOf("task");
    if (this.section <= taskSection && next > taskSection) {
      await this.flushTasks();
      await this.linkDependencies();
    }
    if (next > KINDS.indexOf("event")) await this.flushEvents();
  }

  private async addTask(line: number, task: DumpTask): Promise<void> {
    const key = `${task.project_id}\n${task.task_id}`;
    if (this.tasks.has(key)) throw new DumpError(line, `repeats task ${task.task_id} of project ${task.project_id}`);
    const seq = ++this.counts.tasks;
    this.tasks.set(key, { seq, status: task.status });
    if (task.depends_on.length > 0) {
      const { project_id, task_id, status, depends_on } = task;
      this.dependencies.push({ line, seq, task: { project_id, task_id, status, depends_on } });
    }
    this.taskBatch.push({ ...task, seq });
    if (this.taskBatch.length >= DUMP_PAGE_SIZE) await this.flushTasks();
  }

  private async flushTasks(): Promise<void> {
    if (this.taskBatch.length === 0) return;
    const batch = this.taskBatch;
    this.taskBatch = [];
    await this.target.insertTasks(batch);
  }

  /** Each dependency is a task of the same project in the dump; a task past pending waits for none. */
  private async linkDependencies(): Promise<void> {
    const links: Array<{ dependencySeq: number; dependentSeq: number }> = [];
    const unfinished: Array<{ seq: number; count: number }> = [];
    for (const { line, seq, task } of this.dependencies) {
      let waiting = 0;
      for (const dependencyId of new Set(task.depends_on)) {
        const dependency = this.tasks.get(`${task.project_id}\n${dependencyId}`);
        if (!dependency) {
          throw new DumpError(
            line,
            `(task): depends_on names ${dependencyId}, which the dump does not hold in project ${task.project_id}`,
          );
        }
        links.push({ dependencySeq: dependency.seq, dependentSeq: seq });
        if (dependency.status === "completed") continue;
        if (task.status !== "pending") {
          throw new DumpError(
            line,
            `(task): ${task.task_id} is ${task.status} but its dependency ${dependencyId} is ${dependency.status}; a task leaves pending only when every dependency is completed`,
          );
        }
        waiting++;
      }
      if (waiting > 0) unfinished.push({ seq, count: waiting });
    }
    await this.target.linkDependencies(links, unfinished);
  }

  private async addEvent(line: number, event: DumpEvent): Promise<void> {
    const task = this.tasks.get(`${event.project_id}\n${event.task_id}`);
    if (!task)
      throw new DumpError(
        line,
        `(event): it names task ${event.task_id} of project ${event.project_id}, which the dump does not hold`,
      );
    if (event.event_id <= this.lastEventId)
      throw new DumpError(
        line,
        `(event): event_id ${event.event_id} does not follow ${this.lastEventId}; events come in event_id order`,
      );
    this.lastEventId = event.event_id;
    this.counts.events++;
    this.eventBatch.push({ ...event, task_seq: task.seq });
    if (this.eventBatch.length >= DUMP_PAGE_SIZE) await this.flushEvents();
  }

  private async flushEvents(): Promise<void> {
    if (this.eventBatch.length === 0) return;
    const batch = this.eventBatch;
    this.eventBatch = [];
    await this.target.insertEvents(batch);
  }

  private addCounter(line: number, counter: DumpCounter): void {
    const key = `${counter.project_id}\n${counter.artifact_type}`;
    if (this.counters.has(key))
      throw new DumpError(line, `repeats the ${counter.artifact_type} counter of project ${counter.project_id}`);
    this.counts.counters++;
    this.counters.set(key, counter);
  }

  private async addReservation(line: number, reservation: DumpReservation): Promise<void> {
    if (this.reservationIds.has(reservation.reservation_id))
      throw new DumpError(line, `repeats reservation ${reservation.reservation_id}`);
    this.reservationIds.add(reservation.reservation_id);
    this.counts.reservations++;
    // No ID a reservation holds may be handed out again: its counter reaches at least its last number.
    const key = `${reservation.project_id}\n${reservation.artifact_type}`;
    const last = reservation.first_number + reservation.count - 1;
    const counter = this.counters.get(key);
    if (!counter || counter.last_assigned_id < last) {
      this.counters.set(key, {
        kind: "counter",
        project_id: reservation.project_id,
        artifact_type: reservation.artifact_type,
        last_assigned_id: last,
      });
    }
    this.reservationBatch.push(reservation);
    if (this.reservationBatch.length >= DUMP_PAGE_SIZE) await this.flushReservations();
  }

  private async flushReservations(): Promise<void> {
    if (this.reservationBatch.length === 0) return;
    const batch = this.reservationBatch;
    this.reservationBatch = [];
    await this.target.insertReservations(batch);
  }

  private async finish(line: number, end: DumpEnd): Promise<void> {
    const expected = JSON.stringify(end.counts);
    const found = JSON.stringify(this.counts);
    if (expected !== found) {
      throw new DumpError(
        line,
        `(end): its counts ${expected} are not what the dump holds (${found}): lines are missing; make the dump again`,
      );
    }
    await this.flushReservations();
    await this.target.setCounters([...this.counters.values()]);
    this.end = end;
  }
}

/**
 * Checks every line of a dump (header first; then tasks, events, counters, reservations; the end
 * line's counts must match) and feeds `target` in batches as it goes. Restored counters are at
 * least the last number of every reservation, so the restored tracker never hands out an ID the
 * old one did. Throws DumpError naming the line; the caller's transaction then rolls back.
 */
export function loadDump(lines: AsyncIterable<NumberedLine>, target: RestoreTarget): Promise<DumpCounts> {
  return new DumpLoader(target).load(lines);
}

/** The sentence of a restore into a database that is not empty. */
export function notEmpty(counts: DumpCounts, where: string): DumpError {
  return new DumpError(
    null,
    `${where} already holds data (${counts.tasks} tasks, ${counts.events} events, ${counts.counters} ID counters, ${counts.reservations} reservations); restore loads only into an empty database: point it at a new one`,
  );
}
