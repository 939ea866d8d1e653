// `task-tracking-mcp prime`, the SessionStart hook's command (docs/TOOLS.md, prime), through the compiled binary
// against the real tracker: the claim held by the MCP server of the session that the hook's JSON names, no claim,
// no project, and each way it can fail — tracker down, tracker silent, key rejected, nothing configured — as one
// line and exit code 0 within 2 s, so that a session never waits for it or fails by it.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort } from "../testkit/stand-in.ts";
import { PROJECT, runBinary, textOf, timed, useStack } from "./harness.ts";

const SESSION = "3f2a9c1e-77b0-4c1d-9e2f-0a1b2c3d4e5f";
/** As the MCP server names the agent of that session: claude- and the first 12 characters (docs/TOOLS.md). */
const SESSION_AGENT = "claude-3f2a9c1e-77b";
const MAX_PRIME_CHARACTERS = 1500;
/** The hook's answer time, process start included. */
const PRIME_LIMIT_MS = 2000;

const TOOLS_LINE =
  "Tools (task-tracking MCP server): get_next_task with claim: true takes the next ready task; update_task records a " +
  "note or ticks criteria as you go; update_task_status completed (with completion_notes) finishes it, pending gives it " +
  "back; add_task plans new work; list_tasks mine: true finds your claims.";

/** The JSON Claude Code writes to a SessionStart hook's stdin. */
const hookInput = (sessionId: string, source = "startup") =>
  JSON.stringify({
    session_id: sessionId,
    transcript_path: `/home/ada/.claude/projects/web/${sessionId}.jsonl`,
    cwd: "/home/ada/web",
    hook_event_name: "SessionStart",
    source,
  });

/** A HOME with no local tracker's key file in it. */
const emptyHome = () => mkdtempSync(join(tmpdir(), "ttmcp-prime-home-"));

async function prime(env: Record<string, string>, stdin?: string) {
  const { value, ms } = await timed(() => runBinary(["prime"], { HOME: emptyHome(), ...env }, stdin));
  return { ...value, ms };
}

describe("prime against the tracker", () => {
  const stack = useStack({ mcp: { session: { CLAUDE_CODE_SESSION_ID: SESSION, TASK_TRACKING_PROJECT: PROJECT } } });
  const env = (extra: Record<string, string> = {}) => ({
    TASK_TRACKING_URL: stack.url,
    TASK_TRACKING_API_KEY: stack.apiKey,
    TASK_TRACKING_PROJECT: PROJECT,
    ...extra,
  });

  test("after a compaction it shows the claim held by the session the hook names, then the next ready tasks", async () => {
    const tasks = [
      { task_id: "TASK-001", project_id: PROJECT, description: "Add the login form\nwith a remember-me box", priority: "high" },
      { task_id: "TASK-002", project_id: PROJECT, description: "Wire the login API", priority: "high" },
      { task_id: "TASK-003", project_id: PROJECT, description: "Write the login docs", priority: "medium" },
      { task_id: "TASK-004", project_id: PROJECT, description: "Log failed logins", priority: "low" },
      { task_id: "TASK-005", project_id: PROJECT, description: "Rate-limit logins", priority: "low" },
    ];
    expect((await stack.tracker.api("POST", "/tasks/batch", { tasks })).status).toBe(201);
    const claim = await stack.mcp.session.call("get_next_task", { project_id: PROJECT, claim: true });
    expect(textOf(claim)).toContain("TASK-001");

    const run = await prime(env(), hookInput(SESSION, "compact"));
    expect({ code: run.code, stderr: run.stderr, stdout: run.stdout }).toEqual({
      code: 0,
      stderr: "",
      stdout: [
        `After the compaction: Task tracking for agent ${SESSION_AGENT}, project ${PROJECT}.`,
        "You hold 1 task; carry on with it before taking another (its lease is renewed while this session's MCP server runs):",
        "- TASK-001 [high] Add the login form — lease 2 min left",
        `Ready next in ${PROJECT}:`,
        "- TASK-002 [high] Wire the login API",
        "- TASK-003 [medium] Write the login docs",
        "- TASK-004 [low] Log failed logins",
        TOOLS_LINE,
        "",
      ].join("\n"),
    });
    expect(run.stdout.length).toBeLessThanOrEqual(MAX_PRIME_CHARACTERS + 1);
    expect(run.ms).toBeLessThan(PRIME_LIMIT_MS);
  });

  test("another session holds no task; its agent is named by its own session", async () => {
    const run = await prime(env(), hookInput("0a1b2c3d4e5f-other-session"));
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n").slice(0, 3)).toEqual([
      `Task tracking for agent claude-0a1b2c3d4e5f, project ${PROJECT}.`,
      "You hold no task.",
      `Ready next in ${PROJECT}:`,
    ]);
  });

  test("without a hook's JSON (run by hand) the agent is the one TASK_TRACKING_AGENT_ID names", async () => {
    const run = await prime(env({ TASK_TRACKING_AGENT_ID: SESSION_AGENT }));
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("- TASK-001 [high] Add the login form — lease ");
  });

  test("without a project it names the projects with work, and still this agent's claims", async () => {
    const other = [{ task_id: "A-1", project_id: "api", description: "Version the API" }];
    expect((await stack.tracker.api("POST", "/tasks/batch", { tasks: other })).status).toBe(201);
    const { TASK_TRACKING_PROJECT: _, ...withoutProject } = env();
    const run = await prime(withoutProject, hookInput(SESSION, "resume"));
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n")).toEqual([
      `Resumed: Task tracking for agent ${SESSION_AGENT}, no project set (TASK_TRACKING_PROJECT).`,
      "You hold 1 task; carry on with it before taking another (its lease is renewed while this session's MCP server runs):",
      `- TASK-001 (project ${PROJECT}) [high] Add the login form — lease 2 min left`,
      `Projects with work: ${PROJECT} (4 ready, 1 in progress), api (1 ready, 0 in progress). Pass the one you work on as project_id.`,
      TOOLS_LINE,
      "",
    ]);
  });

  test("the project's .mcp.json in the hook's cwd names the project and the tracker, as it does for the session's server", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "ttmcp-prime-repo-"));
    const server = {
      command: "task-tracking-mcp",
      env: { TASK_TRACKING_URL: "${TEAM_URL:-http://127.0.0.1:9}", TASK_TRACKING_PROJECT: PROJECT },
    };
    writeFileSync(join(cwd, ".mcp.json"), JSON.stringify({ mcpServers: { "task-tracking": server } }));
    const input = JSON.stringify({ session_id: SESSION, cwd, hook_event_name: "SessionStart", source: "startup" });
    const run = await prime({ TEAM_URL: stack.url, TASK_TRACKING_API_KEY: stack.apiKey }, input);
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n").slice(0, 3)).toEqual([
      `Task tracking for agent ${SESSION_AGENT}, project ${PROJECT}.`,
      "You hold 1 task; carry on with it before taking another (its lease is renewed while this session's MCP server runs):",
      "- TASK-001 [high] Add the login form — lease 2 min left",
    ]);
  });

  test("a key the tracker rejects is one line naming it, exit code 0", async () => {
    const run = await prime(env({ TASK_TRACKING_API_KEY: "not-the-tracker-key-0000" }), hookInput(SESSION));
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 0,
      stdout: `Task tracking: the tracker at ${stack.url} rejected the key in TASK_TRACKING_API_KEY; \`task-tracking-mcp doctor\` says which key it needs.\n`,
      stderr: "",
    });
    expect(run.ms).toBeLessThan(PRIME_LIMIT_MS);
  });
});

describe("prime without a tracker", () => {
  test("a tracker that is down: one line, exit code 0, within 2 s", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await prime({ TASK_TRACKING_URL: url, TASK_TRACKING_API_KEY: "some-key-0000000000" }, hookInput(SESSION));
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 0,
      stdout: `Task tracking is unavailable: Task Tracking microservice unavailable: Connection refused at ${url}. Start it with \`task-tracker\`, or see \`task-tracking-mcp doctor\`.\n`,
      stderr: "",
    });
    expect(run.ms).toBeLessThan(PRIME_LIMIT_MS);
  });

  test("a tracker that takes the connection and never answers: one line, exit code 0, within 2 s", async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const run = await prime({ TASK_TRACKING_URL: url, TASK_TRACKING_API_KEY: "some-key-0000000000" }, hookInput(SESSION));
      expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
        code: 0,
        stdout: `Task tracking: the tracker at ${url} did not answer within 1.5 s; the task tools may fail until it does (\`task-tracking-mcp doctor\` checks it).\n`,
        stderr: "",
      });
      expect(run.ms).toBeLessThan(PRIME_LIMIT_MS);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  test("nothing configured (no key, no local tracker's key file): one line, exit code 0", async () => {
    const run = await prime({}, hookInput(SESSION));
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 0,
      stdout:
        "Task tracking is not configured: TASK_TRACKING_API_KEY environment variable not set. `task-tracking-mcp doctor` says what to set.\n",
      stderr: "",
    });
  });

  test("an option is an error, exit code 2: no hook passes one", async () => {
    const run = await runBinary(["prime", "--all"], { HOME: emptyHome() });
    expect(run).toEqual({
      code: 2,
      stdout: "",
      stderr: 'task-tracking-mcp prime: unknown option "--all"; prime takes none, only a hook\'s JSON on stdin\n',
    });
  });
});
