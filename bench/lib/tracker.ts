// The tracker under test, run as its own process (so the load generator and the tracker do not share
// an event loop), and a direct HTTP client that sends the same requests the MCP server sends.
import { join } from "node:path";
import { trackerCommand as commandFor, startTracker, trackerBinaryBuilt } from "../../testkit/tracker.ts";
import { type HttpServerProcess, ROOT, removeTempDir, serverLogs, stopWhenDone, tempDir } from "./proc.ts";

export const API_KEY = "bench-key-0123456789abcdef";

export interface TrackerProcess extends HttpServerProcess {
  command: string;
  dbDir: string;
}

let preferred: string[] | undefined;
export let trackerNote = "";
/** The command the last tracker was started with, as the report shows it. */
export let trackerCommand = "";

const shown = (cmd: string[]) => cmd.map((part) => (part === process.execPath ? "bun" : part.replace(`${ROOT}/`, ""))).join(" ");

/** One tracker on `cmd`, its stderr (the access log) in a file, on a port of its own choosing. */
async function startOn(cmd: string[], name: string, env: Record<string, string>, dbDir: string): Promise<TrackerProcess> {
  const logs = serverLogs(name);
  try {
    const { url, process: child } = await startTracker({
      command: cmd,
      cwd: ROOT,
      env: {
        ...process.env,
        TRACKER_DB: join(dbDir, "tracker.db"),
        TRACKER_API_KEYS: API_KEY,
        ...env,
        PORT: "0",
        HOST: "127.0.0.1",
      },
      stdout: { file: logs.stdout },
      stderr: { file: logs.stderr },
    });
    const stop = stopWhenDone(name, child, logs);
    return {
      url,
      pid: child.pid,
      logFile: logs.stderr,
      command: shown(cmd),
      dbDir,
      async stop() {
        await stop();
        removeTempDir(dbDir);
      },
    };
  } catch (error) {
    removeTempDir(logs.dir);
    throw error;
  }
}

/**
 * dist/task-tracker when it runs, else `bun tracker/main.ts` (the reason is kept in trackerNote);
 * `command` runs that instead (bench/profile.ts profiles the tracker).
 */
export async function startTrackerProcess(env: Record<string, string> = {}, command?: string[]): Promise<TrackerProcess> {
  const dbDir = tempDir("tracker-db");
  if (command) return startOn(command, "tracker", env, dbDir);
  const binary = commandFor("binary");
  const source = commandFor("source");
  const candidates = preferred ? [preferred] : trackerBinaryBuilt() ? [binary, source] : [source];
  if (!preferred && !trackerBinaryBuilt()) trackerNote = "dist/task-tracker missing; ran bun tracker/main.ts";
  let lastError: unknown;
  for (const cmd of candidates) {
    try {
      const tracker = await startOn(cmd, "tracker", env, dbDir);
      preferred = cmd;
      trackerCommand = tracker.command;
      return tracker;
    } catch (error) {
      lastError = error;
      if (cmd === binary)
        trackerNote = `dist/task-tracker did not start (${String(error).slice(0, 160)}); ran bun tracker/main.ts`;
    }
  }
  removeTempDir(dbDir);
  throw lastError;
}

export interface TaskInput {
  task_id: string;
  project_id: string;
  description: string;
  priority?: "high" | "medium" | "low";
  depends_on?: string[];
}

/** The requests of index.ts's TrackerClient, byte for byte in what matters: headers, keys, bodies. */
export class TrackerHttp {
  private readonly headers: Record<string, string> = { authorization: `Bearer ${API_KEY}`, accept: "application/json" };

  constructor(readonly url: string) {}

  private async send(method: string, path: string, body?: unknown, idempotent = false, agentId?: string): Promise<any> {
    const headers: Record<string, string> = { ...this.headers, "x-request-id": crypto.randomUUID() };
    if (idempotent) headers["idempotency-key"] = crypto.randomUUID();
    if (agentId !== undefined) headers["x-agent-id"] = agentId;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path.slice(0, 80)}: ${response.status} ${text.slice(0, 200)}`);
    return JSON.parse(text);
  }

  nextTask(project: string, status = "pending") {
    return this.send("GET", `/tasks/next?${new URLSearchParams({ project, status })}`);
  }

  updateStatus(taskId: string, status: string, completionNotes = "", agentId?: string) {
    const body = { status, completion_notes: completionNotes };
    return this.send("PUT", `/tasks/${encodeURIComponent(taskId)}/status`, body, true, agentId);
  }

  /** POST /tasks/claim: the next ready task of the project, claimed for `agentId` in one request. */
  claimNext(project: string, agentId: string): Promise<{ task: { task_id: string; status: string } | null }> {
    return this.send("POST", "/tasks/claim", { project_id: project }, true, agentId);
  }

  projects(): Promise<{ projects: { project_id: string; in_progress: number }[] }> {
    return this.send("GET", "/projects");
  }

  nextId(type: string, project: string): Promise<{ next_id: string; number: number }> {
    return this.send("GET", `/ids/next?${new URLSearchParams({ type, project })}`, undefined, true);
  }

  reserve(type: string, count: number, project: string): Promise<{ reserved_ids: string[] }> {
    return this.send("POST", "/ids/reserve", { type, count, project_id: project }, true);
  }

  addTasks(tasks: TaskInput[]): Promise<{ task_ids: string[] }> {
    return this.send("POST", "/tasks/batch", { tasks }, true);
  }
}

export function makeTasks(project: string, prefix: string, from: number, count: number, chain = false): TaskInput[] {
  return Array.from({ length: count }, (_, k) => {
    const n = from + k;
    const task: TaskInput = {
      task_id: `${prefix}-${n}`,
      project_id: project,
      description: `Bench task ${n}`,
      priority: "medium",
    };
    if (chain && n > 0) task.depends_on = [`${prefix}-${n - 1}`];
    return task;
  });
}

/** Adds `count` tasks in batches of 500, one batch at a time; returns the seconds it took. */
export async function seedTasks(http: TrackerHttp, project: string, prefix: string, from: number, count: number, chain = false) {
  const started = performance.now();
  for (let done = 0; done < count; done += 500) {
    await http.addTasks(makeTasks(project, prefix, from + done, Math.min(500, count - done), chain));
  }
  return (performance.now() - started) / 1000;
}
