// 5. Scale: get_next_task latency (direct HTTP to the tracker) as one project grows to 100,000 tasks,
// with many projects in the database, and on dependency chains thousands long; and the time to add
// 100,000 tasks in batches of 500. The figure at 1,000 tasks is the reference.
import type { Context } from "../lib/context.ts";
import { sequential } from "../lib/load.ts";
import { median, percentiles, spreadPercent } from "../lib/stats.ts";
import { makeTasks, startTrackerProcess, TrackerHttp } from "../lib/tracker.ts";

export interface ScalePoint {
  case: string;
  tasks_in_db: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  spread: number;
}

export interface ScaleResult {
  points: ScalePoint[];
  sizes: number[];
  add: { tasks: number; batch: number; seconds: number; per_second: number };
  projects: { projects: number; tasks_each: number };
  chain_length: number;
}

export async function measureScale(ctx: Context): Promise<ScaleResult> {
  const sizes = ctx.quick ? [1_000, 10_000, 20_000] : [1_000, 10_000, 100_000];
  const projects = ctx.quick ? { projects: 100, tasks_each: 100 } : { projects: 1_000, tasks_each: 100 };
  const chainLength = ctx.quick ? 2_000 : 5_000;
  const rounds = 3;
  const perRound = ctx.quick ? 150 : 500;

  const tracker = await startTrackerProcess();
  const http = new TrackerHttp(tracker.url);
  let inDb = 0;
  const points: ScalePoint[] = [];
  const measure = async (name: string, project: string, expectFirst: string) => {
    const first = (await http.nextTask(project)).task;
    if (first?.task_id !== expectFirst)
      throw new Error(`${name}: get_next_task returned ${first?.task_id}, expected ${expectFirst}`);
    const rows = [];
    for (let round = 0; round < rounds; round++)
      rows.push(percentiles(await sequential(perRound, 50, () => http.nextTask(project))));
    points.push({
      case: name,
      tasks_in_db: inDb,
      p50_ms: median(rows.map((r) => r.p50)),
      p95_ms: median(rows.map((r) => r.p95)),
      p99_ms: median(rows.map((r) => r.p99)),
      spread: spreadPercent(rows.map((r) => r.p50)),
    });
  };

  // One project growing; the ready task that get_next_task must find is the last one added, with
  // priority high, so neither insertion order nor a lucky first row can hide a scan.
  let added = 0;
  let addSeconds = 0;
  for (const size of sizes) {
    ctx.progress(`scale: adding tasks up to ${size.toLocaleString("en-US")}`);
    while (added < size) {
      const count = Math.min(500, size - added);
      const batch = makeTasks("scale-big", "BIG", added, count);
      const started = performance.now();
      await http.addTasks(batch);
      addSeconds += (performance.now() - started) / 1000;
      added += count;
      inDb += count;
    }
    const marker = `BIG-HIGH-${size}`;
    await http.addTasks([
      { task_id: marker, project_id: "scale-big", description: "the one high-priority task", priority: "high" },
    ]);
    inDb++;
    await measure(`one project, ${size.toLocaleString("en-US")} tasks`, "scale-big", marker);
    await http.updateStatus(marker, "in_progress"); // out of the way for the next size
  }

  ctx.progress(`scale: ${projects.projects} projects`);
  for (let p = 0; p < projects.projects; p++) {
    await http.addTasks(makeTasks(`scale-p${p}`, `P${p}`, 0, projects.tasks_each));
    inDb += projects.tasks_each;
  }
  const middle = Math.floor(projects.projects / 2);
  await measure(`${projects.projects} projects × ${projects.tasks_each} tasks`, `scale-p${middle}`, `P${middle}-0`);

  ctx.progress(`scale: a dependency chain of ${chainLength}`);
  for (let done = 0; done < chainLength; done += 500) {
    await http.addTasks(makeTasks("scale-chain", "CHAIN", done, Math.min(500, chainLength - done), true));
  }
  inDb += chainLength;
  await measure(`chain of ${chainLength.toLocaleString("en-US")}, head ready`, "scale-chain", "CHAIN-0");
  // Complete the first half of the chain: the ready task is then deep inside it.
  const half = Math.floor(chainLength / 2);
  for (let i = 0; i < half; i++) {
    await http.updateStatus(`CHAIN-${i}`, "in_progress");
    await http.updateStatus(`CHAIN-${i}`, "completed", "done");
  }
  await measure(
    `chain of ${chainLength.toLocaleString("en-US")}, ${half.toLocaleString("en-US")} completed`,
    "scale-chain",
    `CHAIN-${half}`,
  );

  // The first case again, now that the database holds everything: what changed is time and size.
  const marker = "BIG-HIGH-end";
  await http.addTasks([
    { task_id: marker, project_id: "scale-big", description: "the one high-priority task", priority: "high" },
  ]);
  inDb++;
  await measure(`one project, ${added.toLocaleString("en-US")} tasks, again at the end`, "scale-big", marker);

  await tracker.stop();
  const total = sizes.at(-1)!;
  return {
    points,
    sizes,
    add: { tasks: total, batch: 500, seconds: addSeconds, per_second: total / addSeconds },
    projects,
    chain_length: chainLength,
  };
}
