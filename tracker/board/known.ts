// Every task of the project on screen that the board has seen (columns, search, the stream, look-ups):
// what a card needs to name the tasks it points to (what it waits for, its parent) by their titles.

import { type Api, type Task, taskPath } from "./api.ts";
import { firstLine } from "./format.ts";
import { plainText } from "./markup.ts";

/** Look-ups run this many at a time: the first screen's own requests come first. */
const LOOKUPS_AT_ONCE = 4;

/** Finished for whoever waits on it: its dependents and its parent count it done. */
export function isFinished(task: Task | undefined): boolean {
  return task?.status === "completed" || task?.status === "cancelled";
}

export class KnownTasks {
  private readonly tasks = new Map<string, Task>();
  private readonly asking = new Set<string>();
  private projectId: string | null = null;

  constructor(private readonly api: Api) {}

  /** A new project: nothing of the last one is known any more. */
  show(projectId: string): void {
    if (projectId === this.projectId) return;
    this.projectId = projectId;
    this.tasks.clear();
  }

  learn(task: Task): void {
    if (task.project_id === this.projectId) this.tasks.set(task.task_id, task);
  }

  forget(): void {
    this.tasks.clear();
  }

  all(): Iterable<Task> {
    return this.tasks.values();
  }

  get(taskId: string): Task | undefined {
    return this.tasks.get(taskId);
  }

  /** The task's first line as plain text, or null when the board has not seen the task. */
  title(taskId: string): string | null {
    const task = this.tasks.get(taskId);
    return task ? plainText(firstLine(task.description)) : null;
  }

  /** Asks for the tasks among `ids` the board has not seen, once each; resolves true when any arrived. */
  async lookUp(ids: Iterable<string>): Promise<boolean> {
    const projectId = this.projectId;
    if (projectId === null) return false;
    const queue = [...new Set(ids)].filter((id) => !this.tasks.has(id) && !this.asking.has(id));
    if (queue.length === 0) return false;
    for (const id of queue) this.asking.add(id);
    let arrived = false;
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const { task } = await this.api.get<{ task: Task }>(taskPath({ project_id: projectId, task_id: id }));
          if (projectId === this.projectId) this.tasks.set(id, task);
          arrived = true;
        } catch {
          // Shown by its ID; the next reload asks again.
        } finally {
          this.asking.delete(id);
        }
      }
    };
    await Promise.all(Array.from({ length: LOOKUPS_AT_ONCE }, worker));
    return arrived && projectId === this.projectId;
  }
}
