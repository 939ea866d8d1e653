// The board's one way to call the tracker's REST API (docs/API.md): same origin, Bearer key,
// X-Agent-Id on writes. Failures are three kinds of Error, told apart by name.

export type TaskStatus = "pending" | "in_progress" | "completed" | "cancelled";
export type Priority = "high" | "medium" | "low";

export interface Criterion {
  text: string;
  done: boolean;
}

export interface Note {
  at: string;
  by: string | null;
  text: string;
}

export interface Task {
  task_id: string;
  project_id: string;
  description: string;
  priority: Priority;
  depends_on: string[];
  status: TaskStatus;
  claimed_by: string | null;
  /** The name of the key that claimed it (issue 24); null before keys, absent from an older tracker. */
  claimed_by_key?: string | null;
  lease_expires_at: string | null;
  completion_notes: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  labels: string[];
  parent_id: string | null;
  acceptance_criteria: Criterion[];
  notes_count: number;
  last_note: Note | null;
  /** How many children it has, and how many of them are finished (completed or cancelled). */
  children: { total: number; done: number };
  released_by: string | null;
  /** Only in GET /tasks/{id} (and a claim's answer): every note, oldest first. */
  notes?: Note[];
  /** Only in a search's page (GET /tasks?q=): where it matched, matched words in [ ]. */
  match?: { snippet: string };
}

export interface TaskEvent {
  event_id: number;
  project_id: string;
  task_id: string;
  type: string;
  at: string;
  agent_id: string | null;
  /** The key that made the change; absent from an older tracker. */
  key_name?: string | null;
  from_status: TaskStatus | null;
  to_status: TaskStatus | null;
  details: Record<string, unknown>;
}

export interface ProjectSummary {
  project_id: string;
  ready: number;
  blocked: number;
  in_progress: number;
  completed: number;
  cancelled: number;
  last_change_at: string | null;
}

export interface TaskPage {
  tasks: Task[];
  next_cursor: string | null;
}

export interface Registry {
  counters: { project_id: string; artifact_type: string; last_assigned_id: number }[];
  reservations: {
    reservation_id: string;
    reserved_ids: string[];
    expires_at: string;
    artifact_type: string;
    project_id: string;
    status: string;
  }[];
}

/** GET /whoami: the key the board signed in with, as the tracker knows it (never the key). */
export interface KeyInfo {
  name: string;
  role: "admin" | "member" | "viewer";
  /** The projects a member is limited to; null: every project. */
  projects: string[] | null;
}

/** The tracker said 401: the key is wrong (or was revoked). */
export class Unauthorized extends Error {
  override name = "Unauthorized";
}

/** The tracker answered with an error; `message` is its sentence. */
export class ApiFailure extends Error {
  override name = "ApiFailure";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** No answer at all: the tracker is down or the network is. */
export class Unreachable extends Error {
  override name = "Unreachable";
}

export interface Api {
  get<T>(path: string, signal?: AbortSignal): Promise<T>;
  write<T>(method: "POST" | "PUT" | "PATCH", path: string, body: unknown, agentId: string): Promise<T>;
  /** The raw response of a long-lived GET (the event stream). */
  open(path: string, signal: AbortSignal): Promise<Response>;
}

export function createApi(apiKey: string): Api {
  async function send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${apiKey}`);
    let response: Response;
    try {
      response = await fetch(path, { ...init, headers, cache: "no-store", credentials: "omit" });
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      throw new Unreachable("The tracker cannot be reached.");
    }
    if (response.status === 401) throw new Unauthorized("That API key was not accepted.");
    if (!response.ok) throw await failureOf(response);
    return response;
  }

  return {
    async get<T>(path: string, signal?: AbortSignal) {
      return (await (await send(path, { signal })).json()) as T;
    },
    async write<T>(method: "POST" | "PUT" | "PATCH", path: string, body: unknown, agentId: string) {
      const headers = { "Content-Type": "application/json", "X-Agent-Id": agentId };
      return (await (await send(path, { method, headers, body: JSON.stringify(body) })).json()) as T;
    },
    open: (path, signal) => send(path, { signal, headers: { Accept: "text/event-stream" } }),
  };
}

async function failureOf(response: Response): Promise<ApiFailure> {
  try {
    const body = (await response.json()) as { error?: unknown; code?: unknown };
    if (typeof body.error === "string") return new ApiFailure(response.status, String(body.code ?? ""), body.error);
  } catch {
    // Not the API's JSON (a proxy's page, say): the status is all there is.
  }
  return new ApiFailure(response.status, "", `The tracker answered ${response.status}.`);
}

/** `/tasks/TASK-1` with the project, every part encoded. */
export function taskPath(task: { project_id: string; task_id: string }, suffix = ""): string {
  return `/tasks/${encodeURIComponent(task.task_id)}${suffix}?project=${encodeURIComponent(task.project_id)}`;
}
