/**
 * `bun run demo`: the whole chain on this machine, in about a second.
 *
 * Starts the reference Task Tracking service (tracker/) on a temporary SQLite database with a fresh
 * API key and a free port, starts the compiled MCP server (dist/task-tracking-mcp) the way Claude Code
 * does (an MCP client over stdio), walks through a short agent session, and stops everything.
 * Each tool call and its result is printed; the API key never is. It ends with the address of the
 * tracker's live board; `bun run demo -- --keep` keeps the tracker (and its board) running for a look.
 */

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { type McpClientProcess, startMcpClient } from "../testkit/mcp.ts";
import { MCP_BINARY } from "../testkit/paths.ts";
import type { ChildProcess } from "../testkit/processes.ts";
import { makeTempDir, removeTempDir } from "../testkit/temp.ts";
import { startTracker as startTrackerProcess } from "../testkit/tracker.ts";

const PROJECT = "demo-shop";
const keep = process.argv.includes("--keep");
const AGENT = "demo-agent";

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
const dataDir = makeTempDir("task-tracking-demo-");
let tracker: ChildProcess | undefined;
let mcp: McpClientProcess | undefined;

/** The tracker as its own process, on the embedded default storage (SQLite) in a temporary directory. */
async function startTracker(): Promise<string> {
  // The embedded default: whatever the caller's shell says about another database or key is ignored.
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("TRACKER_") || name === "DATABASE_URL" || name === "PORT" || name === "HOST") delete env[name];
  }
  try {
    const started = await startTrackerProcess({
      cwd: dataDir,
      env: { ...env, TRACKER_DB: join(dataDir, "tracker.db"), TRACKER_API_KEYS: apiKey, LOG_LEVEL: "info" },
      stdout: "ignore",
    });
    tracker = started.process;
    return started.url;
  } catch (error) {
    throw new DemoFailure(`The tracker stopped before it was ready: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The MCP server, started and spoken to exactly as an MCP client such as Claude Code does. */
async function startMcpServer(url: string): Promise<McpClientProcess> {
  return startMcpClient({
    env: { TASK_TRACKING_URL: url, TASK_TRACKING_API_KEY: apiKey, TASK_TRACKING_AGENT_ID: AGENT, LOG_LEVEL: "warn" },
    clientName: "task-tracking-demo",
  });
}

/** One tool call, printed as the call and a one-line summary of its result. */
async function call<T>(
  tool: string,
  args: Record<string, unknown>,
  summarize: (data: T) => string,
  shownArgs?: string,
): Promise<T> {
  print(`   ${cyan("→")} ${bold(tool)} ${dim(shownArgs ?? JSON.stringify(args))}`);
  const result = (await mcp!.client.callTool({ name: tool, arguments: args })) as CallToolResult;
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

const time = (iso: string | null) => (iso ? `${iso.slice(11, 19)} UTC` : "—");
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
    {
      task_id: design,
      project_id: PROJECT,
      description: "Design the checkout API",
      priority: "high",
      outputs: ["SPEC-checkout"],
    },
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
  expectThat(
    first.task?.task_id === design,
    `get_next_task should have handed out ${design} first, the only ready high-priority task.`,
  );

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

  step(7, "Read the backlog (what a person sees on the board)");
  await call<{ tasks: { task_id: string; status: string; claimed_by: string | null }[] }>(
    "list_tasks",
    { project_id: PROJECT },
    (r) => r.tasks.map((t) => `${t.task_id} ${t.status}${t.claimed_by ? ` (${t.claimed_by})` : ""}`).join(", "),
  );
  return 7;
}

// ─── Start, run, stop ───────────────────────────────────────────────────────────────────────────

async function stopAll(): Promise<number | null> {
  await mcp?.close().catch(() => {});
  const code = tracker ? await tracker.stop() : null;
  removeTempDir(dataDir);
  return code;
}

async function main(): Promise<number> {
  if (!existsSync(MCP_BINARY)) {
    throw new DemoFailure(`${MCP_BINARY} is missing: run \`bun run demo\`, which builds it first.`);
  }
  print(bold("Task Tracking MCP — demo"));
  const url = await startTracker();
  print(`   tracker  ${url} ${dim(`(SQLite in ${dataDir}, a fresh API key)`)}`);
  mcp = await startMcpServer(url);
  const { tools } = await mcp.client.listTools();
  const version = mcp.client.getServerVersion();
  print(
    `   server   ${version?.name ?? "task-tracking-mcp"} ${version?.version ?? ""} ${dim(`(${tools.map((t) => t.name).join(", ")})`)}`,
  );

  const calls = await session();
  if (keep) return keepTrackerRunning(calls, url);

  const trackerCode = await stopAll();
  if (trackerCode !== 0) throw new DemoFailure(`The tracker exited with code ${trackerCode} when asked to stop.`);
  print();
  print(green(`Done: ${calls} tool calls; the MCP server and the tracker stopped cleanly.`));
  print(`   board    ${url}/ ${dim("(stopped with the tracker: `bun run demo -- --keep` keeps it running)")}`);
  return 0;
}

/** `--keep`: the MCP server stops, the tracker and its board stay up until Ctrl-C. */
async function keepTrackerRunning(calls: number, url: string): Promise<number> {
  await mcp?.close().catch(() => {});
  mcp = undefined;
  const keyFile = join(dataDir, "api-key");
  writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o600 });
  print();
  print(green(`Done: ${calls} tool calls. The tracker keeps running until Ctrl-C, which also removes its data.`));
  print(`   board    ${bold(`${url}/`)} ${dim("(open it and paste the API key)")}`);
  print(`   API key  ${keyFile} ${dim("(readable only by you)")}`);
  await new Promise(() => {}); // until a signal
  return 0;
}

const interrupted = () => {
  void stopAll().finally(() => process.exit(keep ? 0 : 130));
};
process.on("SIGINT", interrupted);
process.on("SIGTERM", interrupted);

try {
  process.exitCode = await main();
} catch (error) {
  const reason =
    error instanceof DemoFailure ? error.message : `Unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  await stopAll().catch(() => {});
  process.stderr.write(`\n${red("demo failed:")} ${hideKey(reason)}\n`);
  const logs = [
    ["tracker", tracker?.stderr.text() ?? ""],
    ["MCP server", mcp?.stderr.text() ?? ""],
  ].filter(([, log]) => log!.trim());
  for (const [name, log] of logs) {
    process.stderr.write(dim(`\nlast lines of the ${name}'s log:\n${hideKey(log!.trim().split("\n").slice(-8).join("\n"))}\n`));
  }
  process.exitCode = 1;
}
