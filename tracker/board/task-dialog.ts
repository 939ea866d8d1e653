// A task's own dialog: what it is (its parent, labels, criteria, subtasks, notes) and its history (who
// did what), and the steering a person may do: release a claim (a forced release), cancel with a
// reason, reopen, tick and edit the criteria, add a note, edit priority, description, labels and
// dependencies. Opening it puts `task=ID` in the address; the address opens it too. A viewer's key
// (GET /whoami) gets the same dialog without any of the steering: it may read, not write.

import { type Api, type Priority, type Task, type TaskEvent, type TaskPage, taskPath } from "./api.ts";
import { Checklist, type CriteriaChange } from "./checklist.ts";
import { byId, el, fill } from "./dom.ts";
import { describeEvent, firstLine, holderOf, when, who } from "./format.ts";
import type { KnownTasks } from "./known.ts";
import { labelsOf } from "./narrowing.ts";

/** A parent's subtasks shown in its dialog, in the order GET /tasks gives them. */
const SUBTASKS_SHOWN = 100;
const STATUS_WORDS: Record<Task["status"], string> = {
  pending: "pending",
  in_progress: "in progress",
  completed: "completed",
  cancelled: "cancelled",
};

interface TaskEdit {
  priority?: Priority;
  description?: string;
  labels?: string[];
  depends_on?: string[];
}

function idsOf(text: string): string[] {
  return text
    .split(",")
    .map((id) => id.trim())
    .filter(Boolean);
}

export class TaskDialog {
  private readonly dialog = byId<HTMLDialogElement>("task-dialog");
  private readonly title = byId("task-title");
  private readonly summary = byId("task-summary");
  private readonly error = byId("task-error");
  private readonly release = byId<HTMLButtonElement>("release-claim");
  private readonly reopen = byId<HTMLButtonElement>("reopen-task");
  private readonly cancelBox = byId<HTMLDetailsElement>("cancel-box");
  private readonly cancelReason = byId<HTMLTextAreaElement>("cancel-reason");
  private readonly noteText = byId<HTMLTextAreaElement>("new-note");
  private readonly editForm = byId<HTMLFormElement>("edit-form");
  private readonly priority = byId<HTMLSelectElement>("edit-priority");
  private readonly description = byId<HTMLTextAreaElement>("edit-description");
  private readonly labels = byId<HTMLInputElement>("edit-labels");
  private readonly dependsOn = byId<HTMLInputElement>("edit-depends");
  private readonly history = byId("history");
  private readonly checklist: Checklist;
  private task: Task | null = null;

  constructor(
    private readonly api: Api,
    private readonly known: KnownTasks,
    /** The person's name for X-Agent-Id; null when they declined to give one. */
    private readonly personName: () => Promise<string | null>,
    /** The task shown now (null: the dialog closed), for the address. */
    private readonly onShown: (task: Task | null) => void,
    /** A label chosen in the dialog: the board shows only the tasks that carry it. */
    private readonly onLabel: (label: string) => void,
    /** False for a viewer's key: no control that writes is shown (the tracker would refuse it anyway). */
    private readonly steers: boolean,
  ) {
    this.checklist = new Checklist(
      (change) => this.patch(change),
      (sentence) => (this.error.textContent = sentence),
    );
    this.release.addEventListener("click", () => void this.move({ status: "pending", force: true }));
    this.reopen.addEventListener("click", () => void this.move({ status: "pending" }));
    this.submits("cancel-form", () => this.cancel());
    this.submits("note-form", () => this.addNote());
    this.submits("edit-form", () => this.saveEdit());
    this.showSteering();
    byId("open-parent").addEventListener("click", () => {
      if (this.task?.parent_id) void this.openById(this.task.project_id, this.task.parent_id);
    });
    this.dialog.addEventListener("close", () => {
      this.task = null;
      this.onShown(null);
    });
  }

  private submits(formId: string, action: () => Promise<void>): void {
    byId(formId).addEventListener("submit", (event) => {
      event.preventDefault();
      void action();
    });
  }

  /** The task's ID while the dialog shows it. */
  shownId(): string | null {
    return this.task?.task_id ?? null;
  }

  async open(task: Task): Promise<void> {
    this.task = task;
    this.error.textContent = "";
    this.checklist.stopEditing();
    this.showTask(task);
    this.resetForms(task);
    fill(this.history);
    if (!this.dialog.open) this.dialog.showModal();
    this.onShown(task);
    await this.refresh();
  }

  /** Opens a task by its ID (from the address, or a parent or subtask named in the dialog). */
  async openById(projectId: string, taskId: string): Promise<void> {
    try {
      const { task } = await this.api.get<{ task: Task }>(taskPath({ project_id: projectId, task_id: taskId }));
      await this.open(task);
    } catch (error) {
      if (!this.dialog.open) throw error;
      this.error.textContent = messageOf(error);
    }
  }

  close(): void {
    this.dialog.close();
  }

  /** The stream reported a change: keep an open dialog current (the forms keep what is being typed). */
  changed(task: Task): void {
    if (this.task?.task_id !== task.task_id || this.task.project_id !== task.project_id) return;
    this.task = { ...task, notes: this.task.notes };
    this.showTask(this.task);
    void this.refresh();
  }

  private resetForms(task: Task): void {
    this.priority.value = task.priority;
    this.description.value = task.description;
    this.labels.value = task.labels.join(", ");
    this.dependsOn.value = task.depends_on.join(", ");
    this.cancelReason.value = "";
    this.cancelBox.open = false;
    this.noteText.value = "";
  }

  private showTask(task: Task): void {
    this.title.textContent = task.task_id;
    byId("task-description").textContent = task.description;
    const holder = task.status === "in_progress" ? `, claimed by ${holderOf(task)}` : "";
    this.summary.textContent = `${STATUS_WORDS[task.status]} · ${task.priority} priority${holder}`;
    fill(byId("task-labels"), ...task.labels.map((label) => this.labelButton(label)));
    this.showParent(task);
    const open = task.status === "pending" || task.status === "in_progress";
    this.release.hidden = !this.steers || task.status !== "in_progress";
    this.reopen.hidden = !this.steers || open;
    this.cancelBox.hidden = !this.steers || !open;
    for (const control of this.editForm.elements) (control as HTMLInputElement).disabled = !open;
    this.checklist.show(task.acceptance_criteria, this.steers && open);
    this.showNotes(task);
  }

  /** The forms that only write are there for a key that may steer, and gone for a viewer's. */
  private showSteering(): void {
    for (const id of ["note-form", "edit-title", "edit-form"]) byId(id).hidden = !this.steers;
  }

  /** A label as a chip that filters the board by it. */
  private labelButton(label: string): HTMLButtonElement {
    const button = el(
      "button",
      { type: "button", class: "label-chip", "aria-label": `Show only tasks labelled ${label}` },
      label,
    );
    button.addEventListener("click", () => {
      this.close();
      this.onLabel(label);
    });
    return button;
  }

  private showParent(task: Task): void {
    byId("task-parent").hidden = !task.parent_id;
    if (!task.parent_id) return;
    const title = this.known.title(task.parent_id);
    byId("open-parent").textContent = title ? `“${title}” (${task.parent_id})` : task.parent_id;
  }

  /** The notes, oldest first: who wrote it, when, and the text as written (line breaks kept). */
  private showNotes(task: Task): void {
    const notes = task.notes ?? (task.last_note ? [task.last_note] : []);
    fill(
      byId("notes"),
      ...notes.map((note) =>
        el(
          "li",
          {},
          el(
            "p",
            { class: "note-head" },
            el("strong", {}, who(note.by)),
            " · ",
            el("time", { datetime: note.at }, when(note.at)),
          ),
          el("p", { class: "note-text" }, note.text),
        ),
      ),
    );
    byId("no-notes").hidden = notes.length > 0;
  }

  /** The whole task (its notes), its parent's title, its subtasks and its history. */
  private async refresh(): Promise<void> {
    const shown = this.task;
    if (!shown) return;
    try {
      const [{ task }, { events }] = await Promise.all([
        this.api.get<{ task: Task }>(taskPath(shown)),
        this.api.get<{ events: TaskEvent[] }>(taskPath(shown, "/events")),
        shown.parent_id ? this.known.lookUp([shown.parent_id]) : null,
      ]);
      if (this.task?.task_id !== shown.task_id) return;
      this.task = task;
      this.showTask(task);
      this.showHistory(events);
      await this.showSubtasks(task);
    } catch (error) {
      this.error.textContent = messageOf(error);
    }
  }

  private showHistory(events: TaskEvent[]): void {
    fill(
      this.history,
      ...events.map((event) =>
        el("li", {}, el("time", { datetime: event.at }, when(event.at)), " ", el("span", {}, describeEvent(event))),
      ),
    );
  }

  /** A parent lists its children with their states, each opening its own dialog. */
  private async showSubtasks(task: Task): Promise<void> {
    const { children } = task;
    byId("subtasks-section").hidden = children.total === 0;
    if (children.total === 0) return;
    byId("subtasks-progress").textContent = `${children.done} of ${children.total} done`;
    const query = `project=${encodeURIComponent(task.project_id)}&parent=${encodeURIComponent(task.task_id)}`;
    const page = await this.api.get<TaskPage>(`/tasks?${query}&limit=${SUBTASKS_SHOWN}`);
    if (this.task?.task_id !== task.task_id) return;
    fill(
      byId("subtasks"),
      ...page.tasks.map((child) => {
        this.known.learn(child);
        const button = el("button", { type: "button", class: "link" }, firstLine(child.description));
        button.addEventListener("click", () => void this.open(child));
        return el("li", {}, button, el("span", { class: "detail" }, ` ${child.task_id} · ${STATUS_WORDS[child.status]}`));
      }),
    );
  }

  /** A write in the person's name; refreshes the dialog after. Resolves true when the tracker took it. */
  private async write(method: "POST" | "PUT" | "PATCH", suffix: string, body: unknown): Promise<boolean> {
    const task = this.task;
    const name = await this.personName();
    if (!task || name === null) return false;
    this.error.textContent = "";
    try {
      await this.api.write(method, taskPath(task, suffix), body, name);
    } catch (error) {
      this.error.textContent = messageOf(error);
      return false;
    }
    await this.refresh();
    return true;
  }

  private patch(change: TaskEdit | CriteriaChange): Promise<boolean> {
    return this.write("PATCH", "", change);
  }

  /** A status change hides the button just used: the focus goes to what the new status offers. */
  private async move(body: Record<string, unknown>): Promise<boolean> {
    const moved = await this.write("PUT", "/status", body);
    const focused = document.activeElement as HTMLElement | null;
    if (moved && (!focused || !this.dialog.contains(focused) || focused.offsetParent === null)) {
      const next = [this.reopen, this.release, this.cancelBox.querySelector("summary")!].find(
        (each) => each.offsetParent !== null,
      );
      (next ?? this.title).focus();
    }
    return moved;
  }

  /** From in_progress the person is never the holder: cancelling then releases the claim too (force). */
  private async cancel(): Promise<void> {
    const reason = this.cancelReason.value.trim();
    const force = this.task?.status === "in_progress";
    if (await this.move({ status: "cancelled", ...(reason && { completion_notes: reason }), ...(force && { force }) })) {
      this.cancelReason.value = "";
      this.cancelBox.open = false;
    }
  }

  private async addNote(): Promise<void> {
    const text = this.noteText.value.trim();
    if (text === "") {
      this.error.textContent = "Write the note first.";
      return;
    }
    if (await this.write("POST", "/notes", { text })) this.noteText.value = "";
  }

  private async saveEdit(): Promise<void> {
    const task = this.task;
    if (!task) return;
    const edit = this.editOf(task);
    if (Object.keys(edit).length === 0) {
      this.error.textContent = "Nothing to save: change the priority, description, labels or dependencies first.";
      return;
    }
    await this.patch(edit);
  }

  /** What the edit form changes, field by field. */
  private editOf(task: Task): TaskEdit {
    const edit: TaskEdit = {};
    if (this.priority.value !== task.priority) edit.priority = this.priority.value as Priority;
    if (this.description.value !== task.description) edit.description = this.description.value;
    const labels = labelsOf(this.labels.value);
    if (labels.toSorted().join(",") !== task.labels.join(",")) edit.labels = labels;
    const dependsOn = idsOf(this.dependsOn.value);
    if (dependsOn.join(",") !== task.depends_on.join(",")) edit.depends_on = dependsOn;
    return edit;
  }
}

/** The sentence to show for a failed request. */
export function messageOf(error: unknown): string {
  if (error instanceof Error && ["ApiFailure", "Unauthorized", "Unreachable"].includes(error.name)) return error.message;
  return "Something went wrong; reload the page to try again.";
}
