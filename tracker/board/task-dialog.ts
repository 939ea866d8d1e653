// A task's own dialog: what it is, its history (who did what), and the steering a person may do:
// release a claim (a forced release), change the priority, edit the description.

import { type Api, type Priority, type Task, type TaskEvent, taskPath } from "./api.ts";
import { byId, el, fill } from "./dom.ts";
import { describeEvent, when } from "./format.ts";

export class TaskDialog {
  private readonly dialog = byId<HTMLDialogElement>("task-dialog");
  private readonly title = byId("task-title");
  private readonly summary = byId("task-summary");
  private readonly error = byId("task-error");
  private readonly release = byId<HTMLButtonElement>("release-claim");
  private readonly editForm = byId<HTMLFormElement>("edit-form");
  private readonly priority = byId<HTMLSelectElement>("edit-priority");
  private readonly description = byId<HTMLTextAreaElement>("edit-description");
  private readonly history = byId("history");
  private task: Task | null = null;

  constructor(
    private readonly api: Api,
    /** The person's name for X-Agent-Id; null when they declined to give one. */
    private readonly personName: () => Promise<string | null>,
  ) {
    this.release.addEventListener("click", () => void this.releaseClaim());
    this.editForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.saveEdit();
    });
    this.dialog.addEventListener("close", () => (this.task = null));
  }

  async open(task: Task): Promise<void> {
    this.task = task;
    this.error.textContent = "";
    this.showTask(task);
    this.priority.value = task.priority;
    this.description.value = task.description;
    fill(this.history);
    if (!this.dialog.open) this.dialog.showModal();
    await this.loadHistory();
  }

  /** The stream reported a change: keep an open dialog current (the form keeps what is being typed). */
  changed(task: Task): void {
    if (this.task?.task_id !== task.task_id || this.task.project_id !== task.project_id) return;
    this.task = task;
    this.showTask(task);
    void this.loadHistory();
  }

  private showTask(task: Task): void {
    this.title.textContent = task.task_id;
    const holder = task.status === "in_progress" ? `, claimed by ${task.claimed_by ?? "an agent without a name"}` : "";
    this.summary.textContent = `${task.status.replace("_", " ")} · ${task.priority} priority${holder}`;
    this.release.hidden = task.status !== "in_progress";
    const editable = task.status !== "completed";
    for (const control of this.editForm.elements) (control as HTMLInputElement).disabled = !editable;
  }

  private async loadHistory(): Promise<void> {
    const task = this.task;
    if (!task) return;
    try {
      const { events } = await this.api.get<{ events: TaskEvent[] }>(taskPath(task, "/events"));
      if (this.task?.task_id !== task.task_id) return;
      fill(
        this.history,
        ...events.map((event) =>
          el("li", {}, el("time", { datetime: event.at }, when(event.at)), " ", el("span", {}, describeEvent(event))),
        ),
      );
    } catch (error) {
      this.error.textContent = messageOf(error);
    }
  }

  private async releaseClaim(): Promise<void> {
    const task = this.task;
    const name = await this.personName();
    if (!task || name === null) return;
    await this.run(async () => {
      const { updated_task } = await this.api.write<{ updated_task: Task }>(
        "PUT",
        taskPath(task, "/status"),
        { status: "pending", force: true },
        name,
      );
      this.changed(updated_task);
    });
  }

  private async saveEdit(): Promise<void> {
    const task = this.task;
    if (!task) return;
    const edit: { priority?: Priority; description?: string } = {};
    if (this.priority.value !== task.priority) edit.priority = this.priority.value as Priority;
    if (this.description.value !== task.description) edit.description = this.description.value;
    if (Object.keys(edit).length === 0) {
      this.error.textContent = "Nothing to save: change the priority or the description first.";
      return;
    }
    const name = await this.personName();
    if (name === null) return;
    await this.run(async () => {
      const { task: updated } = await this.api.write<{ task: Task }>("PATCH", taskPath(task), edit, name);
      this.changed(updated);
    });
  }

  private async run(write: () => Promise<void>): Promise<void> {
    this.error.textContent = "";
    try {
      await write();
    } catch (error) {
      this.error.textContent = messageOf(error);
    }
  }
}

/** The sentence to show for a failed request. */
export function messageOf(error: unknown): string {
  if (error instanceof Error && ["ApiFailure", "Unauthorized", "Unreachable"].includes(error.name)) return error.message;
  return "Something went wrong; reload the page to try again.";
}
