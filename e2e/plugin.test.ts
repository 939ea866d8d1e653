// The Claude Code plugin (plugin/, listed by .claude-plugin/marketplace.json), installed with Claude Code's own
// CLI (the devDependency's `claude`) in a throw-away HOME, offline: the repository added as a marketplace and the
// plugin installed in two commands; `claude plugin details` lists the MCP server, the SessionStart hook and the
// two slash commands at a small always-on cost; `claude mcp list` sees the server connected to a real tracker
// with no key configured (the local tracker's key file in HOME, the zero-configuration path); and the hook's
// command, run as Claude Code runs it, prints the primer.

import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MCP_BINARY, ROOT } from "../testkit/paths.ts";
import { runProcess } from "../testkit/processes.ts";
import { makeTempDir } from "../testkit/temp.ts";
import { useStack } from "./harness.ts";

const CLAUDE = join(ROOT, "node_modules", ".bin", "claude");
const PLUGIN = "task-tracking@task-tracking";
/** What the plugin may add to every session, as `claude plugin details` projects it (its two commands' descriptions). */
const MAX_ALWAYS_ON_TOKENS = 100;

const packageVersion: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

describe("the Claude Code plugin", () => {
  const stack = useStack();
  let home: string;
  let env: Record<string, string>;
  const installed: { code: number; stdout: string; stderr: string }[] = [];

  /** `claude …` in the throw-away HOME, with nothing of this machine's environment but PATH. */
  const claude = (...args: string[]) => runProcess([CLAUDE, ...args], { env, cwd: home });

  beforeAll(async () => {
    home = makeTempDir("ttmcp-claude-home-");
    // task-tracking-mcp on PATH, as the npm package puts it there.
    const bin = join(home, "bin");
    mkdirSync(bin);
    symlinkSync(MCP_BINARY, join(bin, "task-tracking-mcp"));
    // The key where a tracker started with its defaults keeps it: nothing else names it.
    const keyFile = join(home, ".local", "share", "task-tracking", "api-key");
    mkdirSync(join(keyFile, ".."), { recursive: true });
    writeFileSync(keyFile, `${stack.apiKey}\n`);
    chmodSync(keyFile, 0o600);
    env = {
      HOME: home,
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      TASK_TRACKING_URL: stack.url,
      DISABLE_AUTOUPDATER: "1",
      DISABLE_TELEMETRY: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    };
    installed.push(await claude("plugin", "marketplace", "add", ROOT));
    installed.push(await claude("plugin", "install", PLUGIN));
  });

  test("two commands install it: the repository as a marketplace, then the plugin", () => {
    expect(installed.map(({ code, stdout }) => ({ code, stdout: stdout.trim() }))).toEqual([
      { code: 0, stdout: "Adding marketplace…✔ Successfully added marketplace: task-tracking (declared in user settings)" },
      { code: 0, stdout: `Installing plugin "${PLUGIN}"...✔ Successfully installed plugin: ${PLUGIN} (scope: user)` },
    ]);
  });

  test("its details list the MCP server, the SessionStart hook and the two commands, at a small always-on cost", async () => {
    const details = await claude("plugin", "details", PLUGIN);
    expect(details.code).toBe(0);
    const lines = details.stdout.split("\n").map((line) => line.trim());
    expect(lines[0]).toBe(`task-tracking ${packageVersion}`);
    expect(lines).toContain("Skills (2)  plan-goal, work-next-task");
    expect(lines).toContain("Hooks (1)  SessionStart  (harness-only — no model context cost)");
    expect(lines).toContain("MCP servers (1)  task-tracking  (tool schemas resolved at runtime; not counted)");
    const alwaysOn = lines.find((line) => line.startsWith("Always-on:"));
    const tokens = Number(/~(\d+) tok/.exec(alwaysOn ?? "")?.[1]);
    expect(tokens).toBeGreaterThan(0);
    expect(tokens).toBeLessThanOrEqual(MAX_ALWAYS_ON_TOKENS);
  });

  test("claude mcp list sees its server connected to the tracker, with the local tracker's key and no key configured", async () => {
    const list = await claude("mcp", "list");
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("plugin:task-tracking:task-tracking: task-tracking-mcp  - ✔ Connected");
    // The server adopts its claims at start: an authenticated request the tracker answered.
    const adoption = await stack.tracker.waitForAccess(
      (entry) => entry.method === "GET" && entry.path === "/tasks",
      "the MCP server's first request",
    );
    expect(adoption.status).toBe(200);
  });

  test("the installed hook's command, run as Claude Code runs it, primes the session", async () => {
    const tasks = [{ task_id: "TASK-001", project_id: "web", description: "Add the login form", priority: "high" }];
    expect((await stack.tracker.api("POST", "/tasks/batch", { tasks })).status).toBe(201);
    const hooksFile = join(
      home,
      ".claude",
      "plugins",
      "cache",
      "task-tracking",
      "task-tracking",
      packageVersion,
      "hooks",
      "hooks.json",
    );
    const { hooks } = JSON.parse(readFileSync(hooksFile, "utf8"));
    const [{ matcher, hooks: commands }] = hooks.SessionStart;
    expect(matcher).toBe("startup|resume|compact");
    const hookInput = JSON.stringify({
      session_id: "3f2a9c1e-77b0",
      cwd: home,
      hook_event_name: "SessionStart",
      source: "startup",
    });
    const run = await runProcess(["sh", "-c", commands[0].command], {
      env: { ...env, TASK_TRACKING_PROJECT: "web" },
      cwd: home,
      stdin: { text: hookInput },
    });
    expect({ code: run.code, stderr: run.stderr, head: run.stdout.split("\n").slice(0, 4) }).toEqual({
      code: 0,
      stderr: "",
      head: [
        "Task tracking for agent claude-3f2a9c1e-77b, project web.",
        "You hold no task.",
        "Ready next in web:",
        "- TASK-001 [high] Add the login form",
      ],
    });
  });

  test("without task-tracking-mcp on PATH the hook says so in one line instead of failing the session", async () => {
    const hooksFile = join(ROOT, "plugin", "hooks", "hooks.json");
    const command: string = JSON.parse(readFileSync(hooksFile, "utf8")).hooks.SessionStart[0].hooks[0].command;
    const run = await runProcess(["sh", "-c", command], {
      env: { HOME: home, PATH: "/usr/bin:/bin" },
      cwd: home,
      stdin: { text: "{}" },
    });
    expect(run).toEqual({
      code: 0,
      stdout: "Task tracking: the task-tracking-mcp command is not installed (see the task-tracking plugin README).\n",
      stderr: "",
    });
  });
});
