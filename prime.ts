/**
 * `task-tracking-mcp prime`: what a model needs at the start of a session, in at most MAX_PRIME_CHARACTERS: the
 * claims this agent holds (with criteria, lease and last note), the next ready tasks of the project, one line on
 * the tools. Made for Claude Code's SessionStart hook (startup, resume, compact), whose stdout enters the model's
 * context: it reads the hook's JSON on stdin, answers within PRIME_BUDGET_MS, and whatever goes wrong it prints
 * one plain line and exits 0, so it never holds up or fails a session.
 *
 * Loaded by index.ts only for this command. It imports nothing of index.ts: the configuration is config.ts's, and
 * the tracker is reached through the server's own client, handed over as a PrimeHost (index.ts, primeHost).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { type Config, ConfigError, loadConfig } from "./config.ts";

export const MAX_PRIME_CHARACTERS = 1500;
/** From the start of `prime` to its answer: a session start must not wait for a tracker that does not answer. */
export const PRIME_BUDGET_MS = 1500;
/** Claude Code writes the hook's JSON at once and closes stdin; a stdin that stays open without it is not a hook. */
const HOOK_INPUT_WAIT_MS = 300;
const READY_SHOWN = 3;
const CLAIMS_SHOWN = 3;
const PROJECTS_SHOWN = 8;
const DESCRIPTION_SHOWN = 90;
const NOTE_SHOWN = 160;

/** What prime takes of the MCP server, which index.ts hands over. */
export interface PrimeHost {
  /** GET `path` of the tracker in `config` as its agent, with the server's retries, until `signal` aborts: the parsed body. */
  get(config: Config, path: string, signal: AbortSignal): Promise<unknown>;
  /** A failure the user reads as one sentence and its HTTP status; undefined for anything else. */
  failureOf(error: unknown): { sentence: string; status?: number } | undefined;
  /** `text` without the secret in any form it may take (URL-encoded, …). */
  redact(secret: string, text: string): string;
}

export interface PrimeIo {
  env: Record<string, string | undefined>;
  /** A file's text (the project's .mcp.json); throws when it cannot be read. */
  readFile(path: string): string;
  /** The hook's JSON, or undefined when stdin is a terminal or nothing came within `waitMs`. */
  readHookInput(waitMs: number): Promise<string | undefined>;
  print(text: string): void;
  error(text: string): void;
  now(): number;
}

/** What Claude Code sends a SessionStart hook (other fields are ignored). */
export interface HookInput {
  sessionId?: string;
  /** startup, resume, clear or compact. */
  source?: string;
  cwd?: string;
}

// ─── What the tracker sends: only the fields prime shows, the rest passes ─────────────────────

const PrimeTask = z.looseObject({
  task_id: z.string(),
  project_id: z.string(),
  description: z.string(),
  priority: z.string(),
  lease_expires_at: z.string().nullable().optional(),
  // Absent from a tracker before acceptance criteria and notes (issue 21).
  acceptance_criteria: z.array(z.looseObject({ text: z.string(), done: z.boolean() })).optional(),
  last_note: z.looseObject({ at: z.string(), by: z.string().nullable(), text: z.string() }).nullable().optional(),
});
type PrimeTask = z.infer<typeof PrimeTask>;
const TaskPage = z.looseObject({ tasks: z.array(PrimeTask) });
const Projects = z.looseObject({
  projects: z.array(z.looseObject({ project_id: z.string(), ready: z.number(), in_progress: z.number() })),
});
type ProjectWork = z.infer<typeof Projects>["projects"][number];

interface Picture {
  claims: PrimeTask[];
  ready?: PrimeTask[];
  projects?: ProjectWork[];
}

// ─── The command ───────────────────────────────────────────────────────────────────────────────

/** `prime`: exit code 0 whatever the tracker says; 2 only for an option, which no hook passes. */
export async function runPrime(argv: string[], host: PrimeHost, io: PrimeIo = processIo()): Promise<number> {
  if (argv.length > 0) {
    io.error(`task-tracking-mcp prime: unknown option ${JSON.stringify(argv[0])}; prime takes none, only a hook's JSON on stdin`);
    return 2;
  }
  const deadline = AbortSignal.timeout(PRIME_BUDGET_MS);
  const hook = parseHookInput(await io.readHookInput(HOOK_INPUT_WAIT_MS));
  try {
    io.print(await primeText(hook, host, io, deadline));
  } catch (error) {
    // A bug must not fail the session either: one line for the model, the details for whoever reads the hook's stderr.
    io.print(`Task tracking: prime failed unexpectedly; \`task-tracking-mcp doctor\` checks the set-up.`);
    io.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  }
  return 0;
}

/** The hook's JSON; anything that is not one is taken for no hook at all (prime run by hand). */
export function parseHookInput(text: string | undefined): HookInput {
  if (!text?.trim()) return {};
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof input !== "object" || input === null) return {};
  const field = (name: string) => {
    const value = (input as Record<string, unknown>)[name];
    return typeof value === "string" && value.trim() ? value.trim() : undefined;
  };
  return { sessionId: field("session_id"), source: field("source"), cwd: field("cwd") };
}

/** The primer, or the one line that says why there is none. */
async function primeText(hook: HookInput, host: PrimeHost, io: PrimeIo, deadline: AbortSignal): Promise<string> {
  let config: Config;
  try {
    const env = { ...io.env, ...serverEnvOfProject(hook.cwd, io) };
    // The session's ID names the agent exactly as it names the MCP server of that session (config.ts, defaultAgentId).
    config = loadConfig(hook.sessionId ? { ...env, CLAUDE_CODE_SESSION_ID: hook.sessionId } : env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return `Task tracking is not configured: ${error.message}. \`task-tracking-mcp doctor\` says what to set.`;
  }
  try {
    const picture = await lookAround(config, host, deadline);
    return fitToBudget(describe(picture, config, hook, io.now()));
  } catch (error) {
    const line = failureLine(error, config, host, deadline);
    if (line === undefined) throw error;
    return host.redact(config.apiKey, line);
  }
}

/**
 * The env block of this server in the project's `.mcp.json` (in the hook's `cwd`), expanded as Claude Code expands
 * it (`${VAR}`, `${VAR:-default}`): the server of that session is started with it over the user's environment, and
 * prime must see the same project, tracker and key. Empty when there is no such file or no such server in it.
 */
export function serverEnvOfProject(cwd: string | undefined, io: Pick<PrimeIo, "env" | "readFile">): Record<string, string> {
  if (!cwd) return {};
  let servers: unknown;
  try {
    servers = JSON.parse(io.readFile(join(cwd, ".mcp.json"))).mcpServers;
  } catch {
    return {}; // no .mcp.json, or not one Claude Code could read either
  }
  if (typeof servers !== "object" || servers === null) return {};
  const ours = Object.values(servers).find((server) => {
    const words = [server?.command, ...(Array.isArray(server?.args) ? server.args : [])];
    return words.some((word) => typeof word === "string" && /(^|[\\/])task-tracking-mcp(\.cmd|\.exe)?$/.test(word));
  });
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(ours?.env ?? {})) {
    if (typeof value !== "string") continue;
    env[name] = value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, variable: string, fallback?: string) => {
      const set = io.env[variable];
      return set ? set : fallback !== undefined ? fallback : whole;
    });
  }
  return env;
}

/** Two requests at once: this agent's claims in every project, and the project's ready tasks (or every project's counts). */
async function lookAround(config: Config, host: PrimeHost, deadline: AbortSignal): Promise<Picture> {
  const query = (params: Record<string, string>) => new URLSearchParams(params).toString();
  const claimsPath = `/tasks?${query({ claimed_by: config.agentId, status: "in_progress", limit: "20" })}`;
  const [claims, work] = await Promise.all([
    host.get(config, claimsPath, deadline).then((body) => TaskPage.parse(body).tasks),
    config.project
      ? host.get(config, `/tasks?${query({ project: config.project, ready: "true", limit: String(READY_SHOWN) })}`, deadline)
      : host.get(config, "/projects", deadline),
  ]);
  if (config.project) return { claims, ready: TaskPage.parse(work).tasks };
  return { claims, projects: Projects.parse(work).projects.filter((project) => project.ready + project.in_progress > 0) };
}

/** One line, in the words of what to do next; undefined for a bug. */
function failureLine(error: unknown, config: Config, host: PrimeHost, deadline: AbortSignal): string | undefined {
  const tracker = `the tracker at ${config.displayUrl}`;
  if (deadline.aborted) {
    return `Task tracking: ${tracker} did not answer within ${PRIME_BUDGET_MS / 1000} s; the task tools may fail until it does (\`task-tracking-mcp doctor\` checks it).`;
  }
  if (error instanceof z.ZodError) {
    return `Task tracking: ${tracker} answered something prime does not understand (${error.issues[0]?.message}); is it a Task Tracking service?`;
  }
  const failure = host.failureOf(error);
  if (failure === undefined) return undefined;
  if (failure.status === 401) {
    const source = config.apiKeyFile ? `the key in ${config.apiKeyFile}` : "the key in TASK_TRACKING_API_KEY";
    return `Task tracking: ${tracker} rejected ${source}; \`task-tracking-mcp doctor\` says which key it needs.`;
  }
  if (failure.status === undefined) {
    return `Task tracking is unavailable: ${failure.sentence}. Start it with \`task-tracker\`, or see \`task-tracking-mcp doctor\`.`;
  }
  return `Task tracking: ${failure.sentence}. \`task-tracking-mcp doctor\` checks the service and the key.`;
}

// ─── The primer ────────────────────────────────────────────────────────────────────────────────

const TOOLS_LINE =
  "Tools (task-tracking MCP server): get_next_task with claim: true takes the next ready task; update_task records a " +
  "note or ticks criteria as you go; update_task_status completed (with completion_notes) finishes it, pending gives it " +
  "back; add_task plans new work; list_tasks mine: true finds your claims.";

/** The primer's parts, most important first: fitToBudget drops from the end of `optional`. */
interface Primer {
  header: string;
  claims: string[];
  work: string[];
}

function describe(picture: Picture, config: Config, hook: HookInput, now: number): Primer {
  const when = hook.source === "compact" ? "After the compaction: " : hook.source === "resume" ? "Resumed: " : "";
  const project = config.project ? `project ${config.project}` : "no project set (TASK_TRACKING_PROJECT)";
  const header = `${when}Task tracking for agent ${config.agentId}, ${project}.`;
  return { header, claims: claimLines(picture.claims, config, now), work: workLines(picture, config) };
}

function claimLines(claims: PrimeTask[], config: Config, now: number): string[] {
  if (claims.length === 0) return ["You hold no task."];
  const lines = [
    `You hold ${claims.length === 1 ? "1 task" : `${claims.length} tasks`}; carry on with it before taking another (its lease is renewed while this session's MCP server runs):`,
  ];
  for (const task of claims.slice(0, CLAIMS_SHOWN)) {
    const where = task.project_id === config.project ? "" : ` (project ${task.project_id})`;
    const facts = [criteriaProgress(task), leaseLeft(task, now)].filter(Boolean).join(", ");
    lines.push(`- ${task.task_id}${where} [${task.priority}] ${firstLine(task.description)}${facts ? ` — ${facts}` : ""}`);
    if (task.last_note) {
      const { at, by, text } = task.last_note;
      lines.push(`  last note (${by ?? "someone"}, ${ago(Date.parse(at), now)}): ${cut(text, NOTE_SHOWN)}`);
    }
  }
  if (claims.length > CLAIMS_SHOWN) lines.push(`- and ${claims.length - CLAIMS_SHOWN} more: list_tasks with mine: true`);
  return lines;
}

function workLines(picture: Picture, config: Config): string[] {
  if (picture.ready) {
    if (picture.ready.length === 0)
      return [`Nothing is ready in ${config.project}: list_tasks shows what waits, add_task plans more.`];
    const tasks = picture.ready.map((task) => `- ${task.task_id} [${task.priority}] ${firstLine(task.description)}`);
    return [`Ready next in ${config.project}:`, ...tasks];
  }
  const projects = picture.projects ?? [];
  if (projects.length === 0) return ["No project has work waiting; add_task with a project_id starts one."];
  const named = projects
    .slice(0, PROJECTS_SHOWN)
    .map((project) => `${project.project_id} (${project.ready} ready, ${project.in_progress} in progress)`);
  const more = projects.length > PROJECTS_SHOWN ? ` and ${projects.length - PROJECTS_SHOWN} more` : "";
  return [`Projects with work: ${named.join(", ")}${more}. Pass the one you work on as project_id.`];
}

/** `criteria 2/5, next: docs updated`; empty when the task has none. */
function criteriaProgress(task: PrimeTask): string {
  const criteria = task.acceptance_criteria ?? [];
  if (criteria.length === 0) return "";
  const done = criteria.filter((criterion) => criterion.done).length;
  const open = criteria.find((criterion) => !criterion.done);
  return `criteria ${done}/${criteria.length}${open ? `, next: ${cut(open.text, 60)}` : ""}`;
}

function leaseLeft(task: PrimeTask, now: number): string {
  if (!task.lease_expires_at) return "";
  const seconds = Math.round((Date.parse(task.lease_expires_at) - now) / 1000);
  if (Number.isNaN(seconds)) return "";
  return seconds <= 0 ? "lease run out" : `lease ${duration(seconds)} left`;
}

function ago(at: number, now: number): string {
  const seconds = Math.round((now - at) / 1000);
  return Number.isNaN(seconds) ? "at an unknown time" : seconds < 60 ? "just now" : `${duration(seconds)} ago`;
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

const firstLine = (text: string) => cut(text.trim().split("\n", 1)[0]!, DESCRIPTION_SHOWN);

/** One line of at most `max` characters: whitespace runs (newlines included) become one space. */
function cut(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/**
 * At most MAX_PRIME_CHARACTERS: the header, the claims and the tools line are what a resumed model needs most;
 * the ready tasks go first when space runs out, then the last claims' lines, then whatever still overflows.
 */
export function fitToBudget({ header, claims, work }: Primer): string {
  const join = (lines: string[]) => [header, ...lines, TOOLS_LINE].join("\n");
  const lines = [...claims, ...work];
  while (lines.length > 1 && join(lines).length > MAX_PRIME_CHARACTERS) lines.pop();
  const text = join(lines);
  return text.length <= MAX_PRIME_CHARACTERS ? text : `${text.slice(0, MAX_PRIME_CHARACTERS - 1)}…`;
}

// ─── The process's stdin and stdout ────────────────────────────────────────────────────────────

function processIo(): PrimeIo {
  return {
    env: process.env,
    readFile: (path) => readFileSync(path, "utf8"),
    readHookInput: (waitMs) => (process.stdin.isTTY ? Promise.resolve(undefined) : readStdin(waitMs)),
    print: (text) => process.stdout.write(`${text}\n`),
    error: (text) => process.stderr.write(`${text}\n`),
    now: () => Date.now(),
  };
}

/** All of stdin, or what came of it within `waitMs`; main() exits the process, so a stdin left open holds nothing up. */
function readStdin(waitMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      process.stdin.pause();
      resolve(chunks.length ? Buffer.concat(chunks).toString("utf8") : undefined);
    };
    const timer = setTimeout(done, waitMs);
    process.stdin.on("data", (chunk: Buffer) => chunks.push(chunk));
    process.stdin.once("end", done);
    process.stdin.once("error", done);
  });
}
