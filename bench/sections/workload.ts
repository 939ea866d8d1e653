// The agents' workload that sections 7 and 8 measure with and without something beside it (renewing
// claims, open boards): 8 clients in a closed loop, each claiming a distinct ready task, completing it,
// and reading the next task in between, against one tracker. Its p99s and claims/s are the figures.
import { closedLoop } from "../lib/load.ts";
import { median } from "../lib/stats.ts";
import { API_KEY, makeTasks, TrackerHttp } from "../lib/tracker.ts";

export interface WorkloadFigures {
  /** Claims (pending → in_progress) per second. */
  claims_per_second: number;
  claim_p99_ms: number;
  complete_p99_ms: number;
  read_p99_ms: number;
  /** The p99 of every operation together. */
  all_p99_ms: number;
  errors: number;
}

/** Adds `count` ready tasks to `project`, in batches of 500. */
export async function seed(url: string, project: string, prefix: string, count: number): Promise<void> {
  const http = new TrackerHttp(url);
  for (let done = 0; done < count; done += 500)
    await http.addTasks(makeTasks(project, prefix, done, Math.min(500, count - done)));
}

/** An authenticated request of the routes TrackerHttp does not have. */
export async function api(url: string, method: string, path: string, body?: unknown, agentId?: string): Promise<any> {
  const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (agentId) headers["x-agent-id"] = agentId;
  const response = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path.slice(0, 80)}: ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/**
 * One measured run of the agents' workload on tasks `${prefix}-0 …` of `project` (ready, enough for the
 * run): each op is claim → read → complete of the next task.
 */
export async function runWorkload(
  url: string,
  project: string,
  prefix: string,
  seconds: number,
  tasks: number,
): Promise<WorkloadFigures> {
  const clients = 8;
  const claimMs: number[] = [];
  const completeMs: number[] = [];
  const readMs: number[] = [];
  const timed = async (into: number[], work: () => Promise<unknown>) => {
    const started = performance.now();
    await work();
    into.push(performance.now() - started);
  };
  const agentIds = Array.from({ length: clients }, (_, i) => `bench-agent-${i}`);
  const result = await closedLoop({
    clients,
    durationMs: seconds * 1000,
    maxOps: tasks,
    op: async (client, i) => {
      const taskId = `${prefix}-${i}`;
      const agent = agentIds[client]!;
      await timed(claimMs, () => api(url, "PUT", `/tasks/${taskId}/status?project=${project}`, { status: "in_progress" }, agent));
      await timed(readMs, () => api(url, "GET", `/tasks/next?project=${project}`));
      await timed(completeMs, () =>
        api(url, "PUT", `/tasks/${taskId}/status?project=${project}`, { status: "completed", completion_notes: "bench" }, agent),
      );
    },
  });
  const p99 = (values: number[]) => {
    if (values.length === 0) return Number.NaN;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
  };
  return {
    claims_per_second: claimMs.length / result.seconds,
    claim_p99_ms: p99(claimMs),
    complete_p99_ms: p99(completeMs),
    read_p99_ms: p99(readMs),
    all_p99_ms: p99([...claimMs, ...completeMs, ...readMs]),
    errors: result.errors,
  };
}

/** Medians over the repeats of each figure. */
export function medianFigures(runs: WorkloadFigures[]): WorkloadFigures {
  const of = (key: keyof WorkloadFigures) => median(runs.map((run) => run[key]));
  return {
    claims_per_second: of("claims_per_second"),
    claim_p99_ms: of("claim_p99_ms"),
    complete_p99_ms: of("complete_p99_ms"),
    read_p99_ms: of("read_p99_ms"),
    all_p99_ms: of("all_p99_ms"),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
  };
}
