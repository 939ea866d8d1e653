// 11. Search: GET /tasks?q= (a page of 50, as list_tasks asks) over one project of 100,000 tasks beside
// GET /tasks/next in the same tracker, measured in turns, on SQLite and (when a URL is given)
// PostgreSQL; and the size of the tool definitions (the tools/list result of dist/task-tracking-mcp).
import type { Context } from "../lib/context.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { benchPostgresUrl, withFreshDatabase } from "../lib/postgres.ts";
import { median, type Percentiles, percentiles, spreadPercent } from "../lib/stats.ts";
import { API_KEY, startTrackerProcess, type TaskInput, TrackerHttp } from "../lib/tracker.ts";
import { api } from "./workload.ts";

const PROJECT = "bench-search";
const PAGE = 50;
/** Every this many tasks carry the broad word, and every this many (offset) arrive with a note. */
const BROAD_EVERY = 20;
const NOTE_EVERY = 100;
/** Tasks whose description holds the selective word; one more has it only in a note added later. */
const SELECTIVE_IN_DESCRIPTION = 4;

export interface SearchCase {
  name: string;
  word: string;
  /** Tasks that match the word. */
  matches: number;
  /** Tasks on the first page, and whether every expected one was there (the selective word). */
  found: number;
  p50: number;
  p95: number;
  spread: number;
}

export interface SearchPoint {
  backend: string;
  tasks: number;
  notes: number;
  next: Omit<SearchCase, "name" | "word" | "matches" | "found">;
  cases: SearchCase[];
}

export interface SearchResult {
  page_size: number;
  points: SearchPoint[];
  /** Characters of JSON.stringify(the tools/list result) of dist/task-tracking-mcp, and its tool count. */
  tools_list_chars: number;
  tools: number;
  postgres: { ran: boolean; reason: string };
}

/** Made-up words (no English word among them), so the index holds many distinct terms, as real text does. */
const SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "so", "vi", "de", "pu", "go", "ze", "ba", "fi", "ho", "ju"];
const filler = (n: number) => SYLLABLES[n % 16]! + SYLLABLES[(n >> 4) % 16]! + SYLLABLES[(n >> 8) % 16]!;

type SeedTask = TaskInput & { notes?: { text: string; by: null; at: null }[] };

/** Task `n` of `tasks`: three filler words, the broad word on every BROAD_EVERYth, a note on every NOTE_EVERYth. */
function searchTask(n: number, tasks: number): SeedTask {
  const words = [filler(n * 7919), filler(n * 104729 + 1), filler(n * 31 + 2)];
  if (n % BROAD_EVERY === 0) words.push("refactor");
  // The selective word in a few descriptions spread over the project (not all among the newest).
  if (n % Math.floor(tasks / SELECTIVE_IN_DESCRIPTION) === 7) words.push("zanzibar");
  const task: SeedTask = {
    task_id: `S-${n}`,
    project_id: PROJECT,
    description: `Bench task ${n}: ${words.join(" ")}`,
    priority: "medium",
  };
  if (n % NOTE_EVERY === 3) task.notes = [{ text: `tried ${filler(n)} first, ${filler(n + 5)} is left`, by: null, at: null }];
  return task;
}

/** Seeds the project; returns how many notes it holds and the tasks the selective word must find. */
async function seedSearch(ctx: Context, backend: string, url: string, tasks: number) {
  const http = new TrackerHttp(url);
  for (let done = 0; done < tasks; done += 500) {
    await http.addTasks(Array.from({ length: Math.min(500, tasks - done) }, (_, k) => searchTask(done + k, tasks)));
    if (done % 20_000 === 0) ctx.progress(`search: ${backend}: ${done.toLocaleString("en-US")} tasks added`);
  }
  const selective = Array.from({ length: tasks }, (_, n) => n)
    .filter((n) => searchTask(n, tasks).description.includes("zanzibar"))
    .map((n) => `S-${n}`);
  let notes = Math.floor((tasks - 4) / NOTE_EVERY) + 1;
  // Notes written the way agents write them, one request each; one carries the selective word, on a
  // task that has it nowhere else (an early one, so it is not among the most recently added).
  for (let i = 0; i < 20; i++) {
    const taskId = `S-${i * 101 + 1}`;
    const text = i === 0 ? "careful: zanzibar breaks when the cache is cold" : `progress ${filler(i)} done`;
    await api(url, "POST", `/tasks/${taskId}/notes?project=${PROJECT}`, { text }, "bench-noter");
    notes++;
  }
  selective.push("S-1");
  return { notes, selective };
}

interface Path {
  name: string;
  word: string;
  path: string;
  matches: number;
}

/**
 * `count` requests one at a time after a few unmeasured ones, or fewer (at least 30) when they take
 * longer than `budgetMs` together: a slow search must not stretch the run to many minutes.
 */
async function timedRequests(url: string, path: string, count: number, budgetMs: number): Promise<Float64Array> {
  for (let i = 0; i < 5; i++) await api(url, "GET", path);
  const latencies: number[] = [];
  const deadline = performance.now() + budgetMs;
  while (latencies.length < count && (latencies.length < 30 || performance.now() < deadline)) {
    const t0 = performance.now();
    await api(url, "GET", path);
    latencies.push(performance.now() - t0);
  }
  return Float64Array.from(latencies);
}

/** Each path's p50/p95 over `rounds` rounds, the paths taking turns within each round (rotating who goes first). */
async function measureInTurns(ctx: Context, url: string, paths: Path[]) {
  const rounds = ctx.quick ? 3 : 5;
  const perRound = ctx.quick ? 100 : 200;
  const runs = new Map<string, Percentiles[]>(paths.map((p) => [p.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(round + k) % paths.length]!;
      runs.get(p.name)!.push(percentiles(await timedRequests(url, p.path, perRound, 3_000)));
    }
  }
  return new Map(
    paths.map((p) => {
      const rows = runs.get(p.name)!;
      const p50s = rows.map((r) => r.p50);
      return [p.name, { p50: median(p50s), p95: median(rows.map((r) => r.p95)), spread: spreadPercent(p50s) }] as const;
    }),
  );
}

async function measureBackend(ctx: Context, backend: string, url: string): Promise<SearchPoint> {
  const tasks = ctx.quick ? 20_000 : 100_000;
  const { notes, selective } = await seedSearch(ctx, backend, url, tasks);
  const search = (word: string) => `/tasks?project=${PROJECT}&q=${word}&limit=${PAGE}`;
  const paths: Path[] = [
    { name: "next", word: "", path: `/tasks/next?project=${PROJECT}`, matches: 0 },
    {
      name: `selective word (${selective.length - 1} descriptions + 1 note)`,
      word: "zanzibar",
      path: search("zanzibar"),
      matches: selective.length,
    },
    {
      name: `broad word (every ${BROAD_EVERY}th task)`,
      word: "refactor",
      path: search("refactor"),
      matches: Math.ceil(tasks / BROAD_EVERY),
    },
    { name: "a word in every task", word: "bench", path: search("bench"), matches: tasks },
  ];
  // Correct first: the selective word finds exactly its tasks, the note-only one among them.
  const cases: SearchCase[] = [];
  for (const p of paths.slice(1)) {
    const body: { tasks: { task_id: string }[] } = await api(url, "GET", p.path);
    const ids = body.tasks.map((t) => t.task_id);
    if (p.word === "zanzibar" && [...ids].sort().join() !== [...selective].sort().join())
      throw new Error(`search: ${backend}: "zanzibar" found ${ids.join(", ")}, expected ${selective.join(", ")}`);
    if (p.word !== "zanzibar" && ids.length !== PAGE)
      throw new Error(`search: ${backend}: "${p.word}" found ${ids.length} tasks on the first page, expected ${PAGE}`);
    cases.push({ name: p.name, word: p.word, matches: p.matches, found: ids.length, p50: NaN, p95: NaN, spread: NaN });
  }
  const figures = await measureInTurns(ctx, url, paths);
  for (const c of cases) Object.assign(c, figures.get(c.name)!);
  const p50s = [...figures].map(([name, f]) => `${name.split(" (")[0]} ${f.p50.toFixed(2)}`).join(", ");
  ctx.progress(`search: ${backend} at ${tasks.toLocaleString("en-US")} tasks, p50 ms: ${p50s}`);
  return { backend, tasks, notes, next: figures.get("next")!, cases };
}

/** The tools/list result of the compiled MCP server, as JSON: what every session puts in a model's context. */
async function measureToolDefinitions(ctx: Context, trackerUrl: string): Promise<{ chars: number; tools: number }> {
  const client = new StdioMcpClient([ctx.mcpBinary], {
    PATH: process.env.PATH,
    TASK_TRACKING_URL: trackerUrl,
    TASK_TRACKING_API_KEY: API_KEY,
    LOG_LEVEL: "warn",
  });
  try {
    await client.initialize();
    const answer = await client.request("tools/list", {});
    if (!answer.result) throw new Error(`tools/list failed: ${JSON.stringify(answer.error)}`);
    return { chars: JSON.stringify(answer.result).length, tools: (answer.result as { tools: unknown[] }).tools.length };
  } finally {
    await client.close();
  }
}

async function measurePostgres(ctx: Context, url: string): Promise<SearchPoint> {
  return withFreshDatabase(url, "bench_search", async (databaseUrl) => {
    const tracker = await startTrackerProcess({ DATABASE_URL: databaseUrl });
    try {
      return await measureBackend(ctx, "PostgreSQL", tracker.url);
    } finally {
      await tracker.stop();
    }
  });
}

export async function measureSearch(ctx: Context): Promise<SearchResult> {
  const sqlite = await startTrackerProcess();
  const points: SearchPoint[] = [];
  let definitions: { chars: number; tools: number };
  try {
    definitions = await measureToolDefinitions(ctx, sqlite.url);
    points.push(await measureBackend(ctx, "SQLite", sqlite.url));
  } finally {
    await sqlite.stop();
  }
  const url = benchPostgresUrl();
  const result = { page_size: PAGE, points, tools_list_chars: definitions.chars, tools: definitions.tools };
  if (!url) return { ...result, postgres: { ran: false, reason: "no PostgreSQL URL (run under scripts/with-postgres.sh)" } };
  points.push(await measurePostgres(ctx, url));
  return { ...result, postgres: { ran: true, reason: "a fresh database on the throw-away cluster" } };
}
