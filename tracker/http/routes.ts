// The route table of API.md: every route as data (method, path, schemas, idempotency, HEAD) plus
// one named handler. The pipeline (pipeline.ts) runs them and the OpenAPI document (openapi.ts) is
// generated from them. Adding a route touches this table and one new handler, nothing else.
// Literal paths come before parameter paths of the same shape (/tasks/next before /tasks/{task_id}).

import { ApiError } from "../domain.ts";
import { describeError } from "../log.ts";
import { backup, dump } from "./admin.ts";
import { streamEvents } from "./events.ts";
import { allocateId, getRegistry, getReservation, raiseCounter, reserveIds } from "./ids.ts";
import { addKey, listKeys, revokeKey, whoami } from "./key-routes.ts";
import { mcp } from "./mcp.ts";
import { openApiDocument } from "./openapi.ts";
import { defineRoute, json } from "./pipeline.ts";
import * as s from "./schemas.ts";
import {
  addNote,
  addTasks,
  changeStatus,
  claimNextTask,
  editTask,
  getTask,
  listProjects,
  listTasks,
  nextTask,
  renewLease,
  taskEvents,
} from "./tasks.ts";
import type { Handler, Route, Services } from "./types.ts";

/** GET /healthz: the version, and whether the database answers. */
const healthz: Handler = async ({ services }) => {
  try {
    await services.storage.ping();
    return json(200, { status: "ok", version: services.version });
  } catch (error) {
    services.logger.log("error", "health check failed", describeError(error));
    throw new ApiError("unavailable", "The database is unreachable");
  }
};

/** Per tracker (its version is in the document): built on first use. */
const openApiTexts = new WeakMap<Services, string>();
/** GET /openapi.json: the OpenAPI 3.1 document of this table. */
const openapi: Handler = async ({ services }) => {
  let text = openApiTexts.get(services);
  if (text === undefined) openApiTexts.set(services, (text = JSON.stringify(openApiDocument(routes, services.version))));
  return { status: 200, body: text };
};

const open = { auth: false, idempotent: false, head: true } as const;
const read = { auth: true, idempotent: false, head: true } as const;
const write = { auth: true, idempotent: true, head: false } as const;
const ok = (description: string, schema: Route["success"]["schema"]) => ({ status: 200, description, schema });
const created = (description: string, schema: Route["success"]["schema"]) => ({ status: 201, description, schema });
const perTask = { params: s.taskPath, query: s.taskRefQuery } as const;

export const routes: readonly Route[] = [
  defineRoute({
    method: "GET",
    path: "/healthz",
    summary: "Whether the service and its database are up",
    ...open,
    handler: healthz,
    success: ok("Up", s.responses.health),
  }),
  defineRoute({
    method: "GET",
    path: "/openapi.json",
    summary: "This OpenAPI 3.1 document",
    ...open,
    handler: openapi,
    success: ok("The document", null),
  }),
  defineRoute({
    method: "GET",
    path: "/whoami",
    summary: "The caller's key: its name, role and projects (never the key)",
    ...read,
    handler: whoami,
    success: ok("The key", s.keyResponses.whoami),
  }),
  defineRoute({
    method: "GET",
    path: "/tasks/next",
    summary: "The next task of a project",
    ...read,
    query: s.nextTaskQuery,
    handler: nextTask,
    success: ok("The task, or null", s.responses.nextTask),
  }),
  defineRoute({
    method: "POST",
    path: "/tasks/claim",
    summary: "Claim the next ready task of a project in one step",
    ...write,
    body: s.claimNextBody,
    handler: claimNextTask,
    success: ok("The claimed task, or null when none is ready", s.responses.claimedTask),
  }),
  defineRoute({
    method: "POST",
    path: "/tasks/batch",
    summary: "Add 1 to 500 tasks, all or nothing",
    ...write,
    body: s.taskBatchBody,
    handler: addTasks,
    success: created("Added", s.responses.batchAdded),
  }),
  defineRoute({
    method: "GET",
    path: "/tasks",
    summary: "A page of tasks",
    ...read,
    query: s.taskListQuery,
    handler: listTasks,
    success: ok("The page", s.responses.taskPage),
  }),
  defineRoute({
    method: "GET",
    path: "/projects",
    summary: "Every project with its counts",
    ...read,
    handler: listProjects,
    success: ok("The projects", s.responses.projects),
  }),
  defineRoute({
    method: "GET",
    path: "/events",
    summary: "The live stream of changes (Server-Sent Events)",
    ...read,
    head: false,
    query: s.eventsQuery,
    handler: streamEvents,
    limited: true,
    success: ok(
      'text/event-stream: `event: task`, `id: <event_id>`, `data: {"event", "task"}` (view=tasks: `event: tasks`, `data: {"tasks"}`, each task changed in the last 100 ms once); `event: reload` ends the stream of a viewer that fell behind',
      null,
    ),
  }),
  defineRoute({
    method: "GET",
    path: "/tasks/{task_id}",
    summary: "One task",
    ...read,
    ...perTask,
    handler: getTask,
    success: ok("The task", s.responses.task),
  }),
  defineRoute({
    method: "PATCH",
    path: "/tasks/{task_id}",
    summary: "Change a task's priority, description, dependencies, labels, parent or criteria",
    ...write,
    ...perTask,
    body: s.taskEditBody,
    handler: editTask,
    success: ok("The task after the edit", s.responses.task),
  }),
  defineRoute({
    method: "GET",
    path: "/tasks/{task_id}/events",
    summary: "A task's history, oldest first",
    ...read,
    ...perTask,
    handler: taskEvents,
    success: ok("The history", s.responses.events),
  }),
  defineRoute({
    method: "PUT",
    path: "/tasks/{task_id}/status",
    summary: "Claim, complete, release, cancel or reopen a task",
    ...write,
    ...perTask,
    body: s.statusBody,
    handler: changeStatus,
    success: ok("The task after the change", s.responses.updatedTask),
  }),
  defineRoute({
    method: "POST",
    path: "/tasks/{task_id}/notes",
    summary: "Append a note to a task",
    ...write,
    ...perTask,
    body: s.noteBody,
    handler: addNote,
    success: created("The note and the task after it", s.responses.note),
  }),
  defineRoute({
    method: "POST",
    path: "/tasks/{task_id}/heartbeat",
    summary: "Renew the lease of the caller's claim",
    ...write,
    ...perTask,
    body: s.heartbeatBody,
    handler: renewLease,
    success: ok("The task with its new lease", s.responses.task),
  }),
  defineRoute({
    method: "GET",
    path: "/ids/next",
    summary: "Allocate the next ID of a type in a project",
    ...write,
    query: s.allocateQuery,
    handler: allocateId,
    success: ok("The ID", s.responses.allocatedId),
  }),
  defineRoute({
    method: "POST",
    path: "/ids/reserve",
    summary: "Reserve contiguous IDs",
    ...write,
    body: s.reservationBody,
    handler: reserveIds,
    success: created("The reservation", s.responses.reservation),
  }),
  defineRoute({
    method: "GET",
    path: "/ids/registry",
    summary: "The ID counters and active reservations",
    ...read,
    query: s.projectFilterQuery,
    handler: getRegistry,
    success: ok("The registry", s.responses.registry),
  }),
  defineRoute({
    method: "GET",
    path: "/ids/reservations/{reservation_id}",
    summary: "One reservation",
    ...read,
    params: s.reservationPath,
    handler: getReservation,
    success: ok("The reservation", s.responses.reservationWithStatus),
  }),
  defineRoute({
    method: "PUT",
    path: "/ids/registry/{project_id}/{artifact_type}",
    summary: "Raise an ID counter (import)",
    ...write,
    admin: true,
    params: s.registryPath,
    body: s.registryImportBody,
    handler: raiseCounter,
    success: ok("The counter", s.responses.counter),
  }),
  ...(["POST", "GET", "DELETE"] as const).map((method) =>
    defineRoute({
      method,
      path: "/mcp",
      summary: { POST: "A message of an MCP session", GET: "An MCP session's stream", DELETE: "End an MCP session" }[method],
      auth: true,
      idempotent: false,
      head: false,
      reads: true,
      handler: mcp,
      limited: true,
      success: ok("MCP's Streamable HTTP transport (docs/TOOLS.md): JSON-RPC, a session's stream, or its end", null),
    }),
  ),
  defineRoute({
    method: "GET",
    path: "/admin/backup",
    summary: "A consistent copy of the SQLite database file",
    ...read,
    admin: true,
    head: false,
    handler: backup,
    success: ok("application/octet-stream: the database file (PostgreSQL: 409, use pg_dump)", null),
  }),
  defineRoute({
    method: "GET",
    path: "/admin/dump",
    summary: "Everything the tracker keeps, as JSON lines",
    ...read,
    admin: true,
    head: false,
    handler: dump,
    success: ok("application/x-ndjson: header, tasks, events, counters, reservations, end", null),
  }),
  defineRoute({
    method: "POST",
    path: "/admin/keys",
    summary: "Make a key for a person or an agent",
    // Not idempotent: a stored response would keep the key itself in the database.
    auth: true,
    idempotent: false,
    head: false,
    admin: true,
    body: s.newKeyBody,
    handler: addKey,
    success: created("The key, shown this once", s.keyResponses.created),
  }),
  defineRoute({
    method: "GET",
    path: "/admin/keys",
    summary: "Every key the tracker keeps (never a key itself)",
    ...read,
    admin: true,
    handler: listKeys,
    success: ok("The keys", s.keyResponses.list),
  }),
  defineRoute({
    method: "DELETE",
    path: "/admin/keys/{name}",
    summary: "Revoke a key",
    auth: true,
    idempotent: false,
    head: false,
    admin: true,
    params: s.keyPath,
    handler: revokeKey,
    success: ok("The key, revoked", s.keyResponses.revoked),
  }),
];
