// The handlers of the task routes (API.md, "Endpoints"). Each parses nothing itself (the pipeline
// hands it checked input), calls the storage once and encodes the answer.

import {
  DEFAULT_LIST_LIMIT,
  type Task,
  type TaskListQuery,
  type TaskNote,
  type TaskPage,
  type TaskRef,
  taskNotFound,
} from "../domain.ts";
import { type KeyHolder, mayUseProject } from "../keys.ts";
import type { Storage } from "../storage/storage.ts";
import { json } from "./pipeline.ts";
import {
  checkBatch,
  type claimNextBody,
  type heartbeatBody,
  type nextTaskQuery,
  type noteBody,
  type statusBody,
  type taskBatchBody,
  type taskEditBody,
  type taskListQuery,
  type taskPath,
  type taskRefQuery,
} from "./schemas.ts";
import type { Handler } from "./types.ts";

type TaskPath = typeof taskPath;
type TaskRefQuery = typeof taskRefQuery;

function taskRef(params: { task_id: string }, query: { project?: string }): TaskRef {
  return { projectId: query.project ?? null, taskId: params.task_id };
}

/**
 * GET /tasks/next: the next task of a project in a status (pending: the next ready one; a task the
 * caller released comes only when no other is ready).
 */
export const nextTask: Handler<undefined, typeof nextTaskQuery> = async ({ query, agentId, services }) => {
  return json(200, { task: await services.storage.findNextTask(query.project, query.status ?? "pending", agentId) });
};

/** POST /tasks/claim: the task GET /tasks/next would answer, claimed for the caller in the same step; or null. */
export const claimNextTask: Handler<undefined, undefined, typeof claimNextBody> = async (call) => {
  const { body, agentId, holder, services, write } = call;
  const claim = {
    projectId: body.project_id,
    agentId,
    keyName: holder.name,
    leaseSeconds: body.lease_seconds ?? services.claimTtlSeconds,
    now: services.now(),
  };
  return write<Task | null>(
    (idempotency) => services.storage.claimNextTask(claim, idempotency),
    (task) => json(200, { task }),
  );
};

/** Pages of every project read for one page of a key limited to several: a page may come back short. */
const MAX_SCOPED_READS = 10;

/**
 * The tasks of the key's projects only. One project is a filter; several, pages of every project
 * with the others' tasks left out, read until the page is full. Each read asks for what the page
 * still lacks, so the page ends where a read ended and its next_cursor goes on from there.
 */
async function listTasksOf(holder: KeyHolder, storage: Storage, query: TaskListQuery): Promise<TaskPage> {
  const projects = holder.projects;
  if (projects === null || query.projectId !== null) return storage.listTasks(query);
  if (projects.length === 1) return storage.listTasks({ ...query, projectId: projects[0]! });
  const tasks: Task[] = [];
  let cursor = query.cursor;
  for (let read = 0; read < MAX_SCOPED_READS; read++) {
    const page = await storage.listTasks({ ...query, cursor, limit: query.limit - tasks.length });
    tasks.push(...page.tasks.filter((task) => projects.includes(task.project_id)));
    cursor = page.nextCursor;
    if (cursor === null || tasks.length === query.limit) break;
  }
  return { tasks, nextCursor: cursor };
}

/** GET /tasks: a page of tasks, filtered, in the order of API.md. */
export const listTasks: Handler<undefined, typeof taskListQuery> = async ({ query, holder, services }) => {
  const page = await listTasksOf(holder, services.storage, {
    projectId: query.project ?? null,
    status: query.ready === undefined ? (query.status ?? null) : "pending",
    ready: query.ready === undefined ? null : query.ready === "true",
    claimedBy: query.claimed_by ?? null,
    q: query.q ?? null,
    labels: query.label ?? [],
    parent: query.parent ?? null,
    limit: query.limit ?? DEFAULT_LIST_LIMIT,
    cursor: query.cursor ?? null,
  });
  return json(200, { tasks: page.tasks, next_cursor: page.nextCursor });
};

/** GET /projects: every project with its counts (a key limited to projects: those). */
export const listProjects: Handler = async ({ holder, services }) => {
  const projects = await services.storage.listProjects();
  return json(200, { projects: projects.filter((project) => mayUseProject(holder, project.project_id)) });
};

/** POST /tasks/batch: adds 1–500 tasks, all or nothing. */
export const addTasks: Handler<undefined, undefined, typeof taskBatchBody> = async (call) => {
  const { body, agentId, holder, services, write } = call;
  checkBatch(body.tasks);
  return write<string[]>(
    (idempotency) => services.storage.addTasks(body.tasks, services.now(), agentId, idempotency, holder.name),
    (taskIds) => json(201, { success: true, tasks_added: taskIds.length, task_ids: taskIds }),
  );
};

/** GET /tasks/{task_id}: one task. */
export const getTask: Handler<TaskPath, TaskRefQuery> = async ({ params, query, services }) => {
  const ref = taskRef(params, query);
  const task = await services.storage.getTask(ref);
  if (!task) throw taskNotFound(ref);
  return json(200, { task });
};

/** GET /tasks/{task_id}/events: the task's history, oldest first. */
export const taskEvents: Handler<TaskPath, TaskRefQuery> = async ({ params, query, services }) => {
  return json(200, { events: await services.storage.listTaskEvents(taskRef(params, query)) });
};

/** PUT /tasks/{task_id}/status: a claim, a completion, a release, a cancel or a reopening, by the state machine. */
export const changeStatus: Handler<TaskPath, TaskRefQuery, typeof statusBody> = async (call) => {
  const { params, query, body, agentId, holder, services } = call;
  return call.write<Task>(
    (idempotency) =>
      services.storage.changeTaskStatus(
        {
          ref: taskRef(params, query),
          to: body.status,
          completionNotes: body.completion_notes,
          agentId,
          keyName: holder.name,
          leaseSeconds: body.lease_seconds ?? services.claimTtlSeconds,
          force: body.force,
          now: services.now(),
        },
        idempotency,
      ),
    (task) => json(200, { updated_task: task }),
  );
};

/** POST /tasks/{task_id}/heartbeat: renews the lease of the caller's claim. */
export const renewLease: Handler<TaskPath, TaskRefQuery, typeof heartbeatBody> = async (call) => {
  const { params, query, body, agentId, holder, services } = call;
  const ref = taskRef(params, query);
  return call.write<Task>(
    (idempotency) =>
      services.storage.renewLease(
        { ref, agentId, keyName: holder.name, leaseSeconds: body.lease_seconds ?? null, now: services.now() },
        idempotency,
      ),
    (task) => json(200, { task }),
  );
};

/** PATCH /tasks/{task_id}: a person's edit of priority, description and/or depends_on. */
export const editTask: Handler<TaskPath, TaskRefQuery, typeof taskEditBody> = async (call) => {
  const { params, query, body, agentId, holder, services } = call;
  const edit = { ref: taskRef(params, query), ...body, agentId, keyName: holder.name, now: services.now() };
  return call.write<Task>(
    (idempotency) => services.storage.updateTask(edit, idempotency),
    (task) => json(200, { task }),
  );
};

/** POST /tasks/{task_id}/notes: appends a note by the caller, to any task in any status. */
export const addNote: Handler<TaskPath, TaskRefQuery, typeof noteBody> = async (call) => {
  const { params, query, body, agentId, holder, services } = call;
  const note = { ref: taskRef(params, query), text: body.text, agentId, keyName: holder.name, now: services.now() };
  return call.write<{ note: TaskNote; task: Task }>(
    (idempotency) => services.storage.addNote(note, idempotency),
    (added) => json(201, added),
  );
};
