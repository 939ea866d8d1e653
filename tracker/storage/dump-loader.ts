// Restoring a dump (dump.ts has the format): every line checked (dump-reader.ts) and in its place,
// the tasks' dependencies linked, the counters raised past every reservation, and the records fed
// to a storage's RestoreTarget in batches, inside the one transaction the storage opened.

import { isFinished, type TaskNote, type TaskStatus } from "../domain.ts";
import {
  DUMP_PAGE_SIZE,
  type DumpCounter,
  type DumpCounts,
  type DumpEnd,
  DumpError,
  type DumpEvent,
  type DumpHeader,
  type DumpNote,
  type DumpRecord,
  type DumpReservation,
  type DumpTask,
  type NumberedLine,
} from "./dump.ts";
import { DUMP_KINDS, parseDumpLine } from "./dump-reader.ts";

/** A task as a storage inserts it: `seq` is its place in the dump (1, 2, …), unfinished_deps 0 for now. */
export interface RestoredTask extends DumpTask {
  seq: number;
}

export interface RestoredEvent extends DumpEvent {
  task_seq: number;
}

export interface RestoredNote extends DumpNote {
  task_seq: number;
}

/** What a task's other lines say of it: its children (open: not finished) and its notes. */
export interface TaskSummary {
  seq: number;
  children_total: number;
  open_children: number;
  notes_count: number;
  last_note: TaskNote | null;
}

/**
 * What a storage does for loadDump, inside ONE transaction it opened on an empty database (a
 * failure anywhere rolls everything back). Calls come in this order: insertTasks and insertNotes
 * (every batch, a note's task before it), linkDependencies, summarizeTasks, insertEvents,
 * insertReservations, setCounters.
 */
export interface RestoreTarget {
  insertTasks(tasks: readonly RestoredTask[]): Promise<void>;
  insertNotes(notes: readonly RestoredNote[]): Promise<void>;
  /** The children and note counts of the tasks that have any (children_total, notes_count, …). */
  summarizeTasks(summaries: readonly TaskSummary[]): Promise<void>;
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
  private readonly counts: DumpCounts = { tasks: 0, events: 0, counters: 0, reservations: 0, notes: 0 };
  private readonly tasks = new Map<string, KnownTask>();
  /** The task line notes may follow: the last one read. */
  private lastTask: { key: string; task_id: string; seq: number } | null = null;
  private noteBatch: RestoredNote[] = [];
  private readonly summaries = new Map<number, TaskSummary>();
  private readonly parents: Array<{
    line: number;
    seq: number;
    task: Pick<DumpTask, "project_id" | "task_id" | "status" | "parent_id">;
  }> = [];
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
      await this.take(line.number, parseDumpLine(line));
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

  private async take(line: number, record: DumpRecord): Promise<void> {
    // Note lines are part of the task section.
    const section = DUMP_KINDS.indexOf(record.kind === "note" ? "task" : record.kind);
    if (this.header === null && record.kind !== "header") throw new DumpError(line, "must be the header line of a dump");
    if (section < this.section || (record.kind === "header" && this.header !== null)) {
      throw new DumpError(
        line,
        `is a ${record.kind} line after the ${DUMP_KINDS[this.section]} lines; a dump lists ${DUMP_KINDS.join(", ")}, in that order`,
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
      case "note":
        return this.addNote(line, record);
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
    const taskSection = DUMP_KINDS.indexOf("task");
    if (this.section <= taskSection && next > taskSection) {
      await this.flushTasks();
      await this.linkDependencies();
      this.linkParents();
      await this.target.summarizeTasks([...this.summaries.values()]);
    }
    if (next > DUMP_KINDS.indexOf("event")) await this.flushEvents();
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
    if (task.parent_id !== null) {
      const { project_id, task_id, status, parent_id } = task;
      this.parents.push({ line, seq, task: { project_id, task_id, status, parent_id } });
    }
    this.lastTask = { key, task_id: task.task_id, seq };
    this.taskBatch.push({ ...task, seq });
    if (this.taskBatch.length >= DUMP_PAGE_SIZE) await this.flushTasks();
  }

  /** Tasks go out first, then the notes that follow them. */
  private async flushTasks(): Promise<void> {
    if (this.taskBatch.length > 0) {
      const batch = this.taskBatch;
      this.taskBatch = [];
      await this.target.insertTasks(batch);
    }
    if (this.noteBatch.length > 0) {
      const notes = this.noteBatch;
      this.noteBatch = [];
      await this.target.insertNotes(notes);
    }
  }

  private summaryOf(seq: number): TaskSummary {
    let summary = this.summaries.get(seq);
    if (!summary) {
      summary = { seq, children_total: 0, open_children: 0, notes_count: 0, last_note: null };
      this.summaries.set(seq, summary);
    }
    return summary;
  }

  /** A note follows its task's line (or that task's earlier notes), oldest first. */
  private async addNote(line: number, note: DumpNote): Promise<void> {
    const key = `${note.project_id}\n${note.task_id}`;
    if (this.lastTask?.key !== key) {
      const after = this.lastTask === null ? "no task" : `task ${this.lastTask.task_id}`;
      throw new DumpError(line, `(note): a note follows the line of its task, and this one of ${note.task_id} follows ${after}`);
    }
    this.counts.notes! += 1;
    const summary = this.summaryOf(this.lastTask.seq);
    summary.notes_count++;
    summary.last_note = { at: note.at, by: note.by, text: note.text };
    this.noteBatch.push({ ...note, task_seq: this.lastTask.seq });
    if (this.noteBatch.length >= DUMP_PAGE_SIZE) await this.flushTasks();
  }

  /** Each parent is a task of the same project in the dump; it counts its children, and the open ones. */
  private linkParents(): void {
    for (const { line, task } of this.parents) {
      const parent = this.tasks.get(`${task.project_id}\n${task.parent_id}`);
      if (!parent) {
        throw new DumpError(
          line,
          `(task): parent_id names ${task.parent_id}, which the dump does not hold in project ${task.project_id}`,
        );
      }
      const summary = this.summaryOf(parent.seq);
      summary.children_total++;
      if (!isFinished(task.status)) summary.open_children++;
    }
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
        // A cancelled task waits for nothing.
        if (isFinished(dependency.status) || task.status === "cancelled") continue;
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
    // A dump of version 1 counts no notes (and holds none).
    const expected = JSON.stringify({ ...end.counts, notes: end.counts.notes ?? 0 });
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
