/**
 * `bun run demo`: the whole chain on this machine, in about a second.
 *
 * Starts the reference Task Tracking service (tracker/) on a temporary SQLite database with a fresh
 * API key and a free port, starts the compiled MCP server (dist/task-tracking-mcp) the way Claude Code
 * does (an MCP client over stdio), walks through a short agent session, and stops everything.
 * Each tool call and its result is printed; the API key never is.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const MCP_BINARY = join(ROOT, "dist", "task-tracking-mcp");
const PROJECT = "demo-shop";
const AGENT = "demo-agent";
const START_TIMEOUT_MS = 15_000;

// ─── Output: short, readable, coloured only on a terminal ─────────────────────────────────────

const useColor = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
const bold = paint("1");
const dim = paint("2");
const green = paint("32");
const cyan = paint("36");
const red = paint("31");

const print = (line = "") => process.stdout.write(`${line}\n`);

// ─── The pieces ─────────────────────────────────────────────────────────────────────────────────

interface Task {
  task_id: string;
  description: string;
  priority: string;
  depends_on: string[];
  status: string;
  claimed_by: string | null;
  completed_at: string | null;
}

class DemoFailure extends Error {}

const apiKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
const hideKey = (text: string) => text.replaceAll(apiKey, "[the API key]");
const dataDir = mkdtempSync(join(tmpdir(), "task-tracking-demo-"));
let tracker: Bun.Subprocess<"ignore", "ignore", "pipe"> | undefined;
let trackerLog = "";
let client: Client | undefined;
let serverLog = "";

/** The tracker as its own process, on the embedded default storage (SQLite) in a temporary directory. */
async function startTracker(): Promise<string> {
  // The embedded default: whatever the caller's shell says about another database or key is ignored.
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("TRACKER_") || name === "DATABASE_URL" || name === "PORT" || name === "HOST") delete env[name];
  }
  tracker = Bun.spawn([process.execPath, join(ROOT, "tracker", "main.ts")], {
    cwd: dataDir,
    env: { ...env, TRACKER_DB: join(dataDir, "tracker.db"), TRACKER_API_KEYS: apiKey, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });

  // The tracker logs one JSON line with its URL once it listens.
  const reader = tracker.stderr.getReader();
  const decoder = new TextDecoder();
  const deadline = setTimeout(() => tracker?.kill(), START_TIMEOUT_MS);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new DemoFailure("The tracker stopped before it was ready.");
      trackerLog += decoder.decode(value, { stream: true });
      const line = trackerLog.split("\n").find((l) => l.includes('"tracker started"'));
      if (line) {
        const url = (JSON.parse(line) as { url: string }).url;
        void (async () => {
          for (;;) {
            const next = await reader.read().catch(() => ({ done: true, value: undefined }));
            if (next.done) return;
            trackerLog += decoder.decode(next.value, { stream: true });
          }
        })();
        const health = await fetch(`${url}/healthz`);
        if (!health.ok) throw new DemoFailure(`The tracker answered ${health.status} at ${url}/healthz.`);
        return url;
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}

/** The MCP server, started and spoken to exactly as an MCP client such as Claude Code does. */
async function startMcpServer(url: string): Promise<Client> {
  const transport = new StdioClientTransport({
    command: MCP_BINARY,
    env: { TASK_TRACKING_URL: url, TASK_TRACKING_API_KEY: apiKey, TASK_TRACKING_AGENT_ID: AGENT, LOG_LEVEL: "warn" },
    stderr: "pipe",
  });
  transport.stderr?.on("data", (chunk: Buffer) => (serverLog += chunk.toString("utf8")));
  const mcp = new Client({ name: "task-tracking-demo", version: "1.0.0" });
  await mcp.connect(transport);
  return mcp;
}

/** One tool call, printed as the call and a one-line summary of its result. */
async function call<T>(tool: string, args: Record<string, unknown>, summarize: (data: T) => string, shownArgs?: string): Promise<T> {
  print(`   ${cyan("→")} ${bold(tool)} ${dim(shownArgs ?? JSON.stringify(args))}`);
  const result = (await client!.callTool({ name: tool, arguments: args })) as CallToolResult;
  const text = result.content[0]?.type === "text" ? result.content[0].text : "";
  if (result.isError) throw new DemoFailure(`${tool} failed: ${text}`);
  const data = result.structuredContent as T;
  print(`   ${green("←")} ${summarize(data)}`);
  return data;
}

function step(number: number, title: string) {
  print();
  print(`${bold(`${number}.`)} ${title}`);
}

function expectThat(condition: boolean, sentence: string) {
  if (!condition) throw new DemoFailure(sentence);
}

const time = (iso: string | null) => (iso ? iso.slice(11, 19) + " UTC" : "—");
const describeTask = (task: Task) =>
  `${bold(task.task_id)} "${task.description}" (${task.priority}) — ${task.status}` +
  (task.claimed_by ? `, claimed by ${task.claimed_by}` : "");

// ─── The session ────────────────────────────────────────────────────────────────────────────────

async function session(): Promise<number> {
  step(1, "Reserve three task IDs for a new feature");
  const reservation = await call<{ reservation_id: string; reserved_ids: string[]; expires_at: string }>(
    "reserve_id_range",
    { artifact_type: "TASK", count: 3, project_id: PROJECT },
    (r) => `${r.reserved_ids.join(", ")} ${dim(`(reservation ${r.reservation_id.slice(0, 8)}…, expires ${time(r.expires_at)})`)}`,
  );
  const [design, build, docs] = reservation.reserved_ids as [string, string, string];

  step(2, "Plan the work: priorities and a dependency");
  const tasks = [
    { task_id: design, project_id: PROJECT, description: "Design the checkout API", priority: "high", outputs: ["SPEC-checkout"] },
    { task_id: build, project_id: PROJECT, description: "Build the checkout API", priority: "high", depends_on: [design] },
    { task_id: docs, project_id: PROJECT, description: "Write the release notes", priority: "low" },
  ];
  const shown = tasks
    .map((t) => `${t.task_id} (${t.priority}${t.depends_on ? `, after ${t.depends_on.join(", ")}` : ""})`)
    .join(", ");
  await call<{ tasks_added: number; task_ids: string[] }>(
    "add_task",
    { tasks },
    (r) => `added ${r.tasks_added} tasks: ${r.task_ids.join(", ")}`,
    `3 tasks: ${shown}`,
  );

  step(3, "Claim the next task");
  const first = await call<{ task: Task | null }>("get_next_task", { project_id: PROJECT, claim: true }, (r) =>
    r.task ? describeTask(r.task) : "no task is ready",
  );
  expectThat(first.task?.task_id === design, `get_next_task should have handed out ${design} first, the only ready high-priority task.`);

  step(4, "Finish it");
  await call<{ task: Task }>(
    "update_task_status",
    { task_id: design, status: "completed", completion_notes: "API sketched in SPEC-checkout" },
    (r) => `${bold(r.task.task_id)} ${r.task.status} at ${time(r.task.completed_at)}`,
  );

  step(5, `Claim the next task (${build} is ready now, and outranks ${docs})`);
  const second = await call<{ task: Task | null }>("get_next_task", { project_id: PROJECT, claim: true }, (r) =>
    r.task ? describeTask(r.task) : "no task is ready",
  );
  expectThat(second.task?.task_id === build, `get_next_task should have handed out ${build} once ${design} was completed.`);

  step(6, "Allocate an ID for the user story this work belongs to");
  await call<{ next_id: string }>("get_next_available_id", { artifact_type: "US", project_id: PROJECT }, (r) => bold(r.next_id));
  return 6;
}

// ─── Start, run, stop ───────────────────────────────────────────────────────────────────────────

async function stopAll(): Promise<number | null> {
  await client?.close().catch(() => {});
  client = undefined;
  let code: number | null = null;
  if (tracker) {
    tracker.kill("SIGTERM");
    code = await tracker.exited;
    tracker = undefined;
  }
  rmSync(dataDir, { recursive: true, force: true });
  return code;
}

async function main(): Promise<number> {
  if (!existsSync(MCP_BINARY)) {
    throw new DemoFailure(`${MCP_BINARY} is missing: run \`bun run demo\`, which builds it first.`);
  }
  print(bold("Task Tracking MCP — demo"));
  const url = await startTracker();
  print(`   tracker  ${url} ${dim(`(SQLite in ${dataDir}, a fresh API key)`)}`);
  client = await startMcpServer(url);
  const { tools } = await client.listTools();
  const version = client.getServerVersion();
  print(`   server   ${version?.name ?? "task-tracking-mcp"} ${version?.version ?? ""} ${dim(`(${tools.map((t) => t.name).join(", ")})`)}`);

  const calls = await session();

  const trackerCode = await stopAll();
  if (trackerCode !== 0) throw new DemoFailure(`The tracker exited with code ${trackerCode} when asked to stop.`);
  print();
  print(green(`Done: ${calls} tool calls; the MCP server and the tracker stopped cleanly.`));
  return 0;
}

const interrupted = () => {
  void stopAll().finally(() => process.exit(130));
};
process.on("SIGINT", interrupted);
process.on("SIGTERM", interrupted);

try {
  process.exitCode = await main();
} catch (error) {
  const reason = error instanceof DemoFailure ? error.message : `Unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  await stopAll().catch(() => {});
  process.stderr.write(`\n${red("demo failed:")} ${hideKey(reason)}\n`);
  const logs = [["tracker", trackerLog], ["MCP server", serverLog]].filter(([, log]) => log!.trim());
  for (const [name, log] of logs) {
    process.stderr.write(dim(`\nlast lines of the ${name}'s log:\n${hideKey(log!.trim().split("\n").slice(-8).join("\n"))}\n`));
  }
  process.exitCode = 1;
}
