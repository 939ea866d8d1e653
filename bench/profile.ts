/**
 * `bun run bench/profile.ts [--seconds=5] [--only=tracker|mcp] [--op=allocations|claims|claim-next|reads] [--save=<dir>]`
 *
 * Where the time goes: runs the tracker (`bun --cpu-prof tracker/main.ts`) under 8 clients of
 * ID allocations, and the MCP server (`bun --cpu-prof index.ts`, the source of the compiled binary)
 * under sequential get_next_task calls, then sums the samples of each profile: by the module of the
 * sampled frame (self), by module anywhere on the stack (inclusive), and by hottest stack. The tasks
 * an operation needs are added beforehand by another tracker process, so the seeding is not in the profile.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { closedLoop, sequential } from "./lib/load.ts";
import { StdioMcpClient } from "./lib/mcp.ts";
import { ROOT, removeTempDir, tempDir } from "./lib/proc.ts";
import { table } from "./lib/report.ts";
import { API_KEY, makeTasks, startTrackerProcess, TrackerHttp } from "./lib/tracker.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
const seconds = Number(option("seconds", "5"));
const only = option("only", "both");
const operation = option("op", "allocations");
const save = option("save", "");

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

function moduleOf(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "");
  if (!url) return frame.functionName === "(root)" ? "(root)" : "native";
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1]!;
  if (url.startsWith(`${ROOT}/`)) return url.slice(ROOT.length + 1);
  return url; // bun:sqlite, node:crypto, internal:…
}

function frameName(frame: CallFrame): string {
  const where = frame.url ? `${moduleOf(frame)}:${frame.lineNumber + 1}` : "native";
  return `${frame.functionName || "(anonymous)"} ${where}`;
}

function summarize(title: string, profile: CpuProfile, ourLabel: string, isOurs: (module: string) => boolean): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const stackOf = (id: number) => {
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!.callFrame);
    return stack; // leaf first
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const stacks = new Map<string, number>();
  let idle = 0;
  for (const sample of profile.samples) {
    const stack = stackOf(sample);
    const leaf = stack[0]!;
    // A sample with nothing but the root and one nameless native frame is the event loop waiting.
    if (stack.length <= 2 && !leaf.url) {
      idle++;
      continue;
    }
    const leafModule = moduleOf(leaf);
    self.set(leafModule, (self.get(leafModule) ?? 0) + 1);
    for (const module of new Set(stack.map(moduleOf))) inclusive.set(module, (inclusive.get(module) ?? 0) + 1);
    const ours = stack.find((frame) => frame.url && isOurs(moduleOf(frame)));
    const key = `${frameName(leaf)}  ←  ${ours && ours !== leaf ? frameName(ours) : "—"}`;
    stacks.set(key, (stacks.get(key) ?? 0) + 1);
  }
  const busy = profile.samples.length - idle;
  const share = (n: number) => `${((n / busy) * 100).toFixed(1)}%`;
  const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
  return [
    `${title}: ${profile.samples.length} samples, ${((idle / profile.samples.length) * 100).toFixed(0)}% idle; shares below are of the busy samples`,
    table(
      ["module (self)", "share"],
      top(self, 8).map(([m, n]) => [m, share(n)]),
    ),
    table(
      ["module (anywhere on the stack)", "share"],
      top(inclusive, 10)
        .filter(([m]) => m !== "(root)")
        .map(([m, n]) => [m, share(n)]),
    ),
    table(
      [`hottest frame  ←  nearest frame of ${ourLabel}`, "share"],
      top(stacks, 20).map(([k, n]) => [k, share(n)]),
    ),
  ].join("\n\n");
}

/** Reads the profile Bun wrote in `dir`; with --save=<dir> a copy stays there (to open in DevTools). */
async function readProfile(dir: string, name: string): Promise<CpuProfile> {
  const file = readdirSync(dir).find((entry) => entry.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const text = await Bun.file(join(dir, file)).text();
  if (save) await Bun.write(join(save, `${name}.cpuprofile`), text);
  return JSON.parse(text) as CpuProfile;
}

/**
 * The tasks the operation needs, added by a tracker of its own on the database the profiled one then
 * opens: the profile holds the operation alone, not the seeding (for claims, most of the samples).
 */
async function seed(tasks: number): Promise<string> {
  const db = join(tempDir("profile-db"), "tracker.db");
  const seeder = await startTrackerProcess({ TRACKER_DB: db });
  const http = new TrackerHttp(seeder.url);
  for (let done = 0; done < tasks; done += 500) await http.addTasks(makeTasks("prof", "PROF", done, 500));
  await seeder.stop();
  return db;
}

async function profileTracker(): Promise<string> {
  const dir = tempDir("profile-tracker");
  const tasks = operation.startsWith("claim") ? 40_000 : 1000;
  const db = await seed(tasks);
  const tracker = await startTrackerProcess({ TRACKER_DB: db }, [
    "bun",
    "--cpu-prof",
    `--cpu-prof-dir=${dir}`,
    "tracker/main.ts",
  ]);
  const http = new TrackerHttp(tracker.url);
  let next = 0;
  const op = {
    allocations: async () => void (await http.nextId("US", "prof")),
    claims: async () => {
      if (next >= tasks) return false;
      await http.updateStatus(`PROF-${next++}`, "in_progress");
    },
    "claim-next": async () => (await http.claimNext("prof", "bench-agent")).task !== null,
    reads: async () => void (await http.nextTask("prof")),
  }[operation];
  if (!op) throw new Error(`--op must be allocations, claims, claim-next or reads`);
  const load = await closedLoop({ clients: 8, durationMs: seconds * 1000, maxOps: 1_000_000, op });
  await tracker.stop(); // SIGTERM: the tracker exits 0 and Bun writes the profile
  removeTempDir(dirname(db));
  return summarize(
    `tracker under ${operation}, 8 clients, ${seconds} s: ${Math.round(load.perSecond)}/s while profiled`,
    await readProfile(dir, `tracker-${operation}`),
    "tracker/",
    (module) => module.startsWith("tracker/"),
  );
}

async function profileMcp(): Promise<string> {
  const dir = tempDir("profile-mcp");
  const tracker = await startTrackerProcess();
  const http = new TrackerHttp(tracker.url);
  await http.addTasks(makeTasks("prof", "PROF", 0, 500));
  const env = { ...process.env, TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: tracker.url };
  const mcp = new StdioMcpClient(["bun", "--cpu-prof", `--cpu-prof-dir=${dir}`, join(ROOT, "index.ts")], env);
  await mcp.initialize();
  await mcp.listTools();
  const started = performance.now();
  let calls = 0;
  while (performance.now() - started < seconds * 1000) {
    await sequential(500, 0, () => mcp.callTool("get_next_task", { project_id: "prof" }));
    calls += 500;
  }
  const perSecond = calls / ((performance.now() - started) / 1000);
  await mcp.close(); // stdin closed: the server exits 0 and Bun writes the profile
  await tracker.stop();
  return summarize(
    `MCP server (bun index.ts) under sequential get_next_task, ${seconds} s: ${Math.round(perSecond)} calls/s while profiled`,
    await readProfile(dir, "mcp-get_next_task"),
    "index.ts or the SDK",
    (module) => module === "index.ts" || module === "@modelcontextprotocol/sdk",
  );
}

if (only !== "mcp") console.log(await profileTracker(), "\n");
if (only !== "tracker") console.log(await profileMcp());
