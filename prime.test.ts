// prime's text from the task fields a tracker of acceptance criteria and notes sends (issue 21), and its budget:
// a stand-in host answers, because the shapes and the sizes to check are the test's to choose. The real tracker
// and the compiled binary are e2e/prime.test.ts's.

import { describe, expect, test } from "bun:test";
import { primeHost } from "./index.ts";
import { MAX_PRIME_CHARACTERS, type PrimeHost, type PrimeIo, parseHookInput, runPrime, serverEnvOfProject } from "./prime.ts";
import { trackerTask } from "./testkit/stand-in.ts";

const NOW = Date.parse("2026-12-06T10:00:00Z");
const AGENT = "claude-3f2a9c1e-77b";

/** A host whose tracker answers each path from `answers` (by its start); the server's own redaction and failures. */
function standIn(answers: Record<string, unknown>, seen: string[] = []): PrimeHost {
  return {
    ...primeHost,
    get: async (_config, path) => {
      seen.push(path);
      const key = Object.keys(answers).find((start) => path.startsWith(start));
      if (key === undefined) throw new Error(`no answer for ${path}`);
      return answers[key];
    },
  };
}

async function primeWith(host: PrimeHost, env: Record<string, string>, hook?: object) {
  const printed: string[] = [];
  const io: PrimeIo = {
    env: { TASK_TRACKING_API_KEY: "k".repeat(20), ...env },
    readFile: (path) => {
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    },
    readHookInput: async () => (hook ? JSON.stringify(hook) : undefined),
    print: (text) => printed.push(text),
    error: (text) => printed.push(`stderr: ${text}`),
    now: () => NOW,
  };
  const code = await runPrime([], host, io);
  return { code, text: printed.join("\n") };
}

const claim = (id: string, overrides: Record<string, unknown> = {}) =>
  trackerTask("web", {
    task_id: id,
    status: "in_progress",
    claimed_by: AGENT,
    lease_expires_at: "2026-12-06T10:01:40Z",
    ...overrides,
  });

describe("prime", () => {
  test("a claim shows its criteria progress, the next open criterion, the lease left and the last note", async () => {
    const seen: string[] = [];
    const host = standIn(
      {
        "/tasks?claimed_by": {
          tasks: [
            claim("TASK-051", {
              description: "Implement US-053: the login form",
              acceptance_criteria: [
                { text: "tests pass", done: true },
                { text: "docs updated", done: false },
              ],
              last_note: { at: "2026-12-06T09:48:00Z", by: AGENT, text: "form done;\nthe docs are left" },
            }),
          ],
        },
        "/tasks?project=web": { tasks: [trackerTask("web", { task_id: "TASK-052", description: "Wire the API" })] },
      },
      seen,
    );
    const { code, text } = await primeWith(host, { TASK_TRACKING_PROJECT: "web" }, { session_id: "3f2a9c1e-77b0-4c1d" });
    expect(code).toBe(0);
    expect(text.split("\n").slice(0, 6)).toEqual([
      `Task tracking for agent ${AGENT}, project web.`,
      "You hold 1 task; carry on with it before taking another (its lease is renewed while this session's MCP server runs):",
      "- TASK-051 [high] Implement US-053: the login form — criteria 1/2, next: docs updated, lease 2 min left",
      `  last note (${AGENT}, 12 min ago): form done; the docs are left`,
      "Ready next in web:",
      "- TASK-052 [high] Wire the API",
    ]);
    expect(seen).toEqual([`/tasks?claimed_by=${AGENT}&status=in_progress&limit=20`, "/tasks?project=web&ready=true&limit=3"]);
  });

  test(`never more than ${MAX_PRIME_CHARACTERS} characters: the ready tasks give way first, then the last claims' lines`, async () => {
    const long = "x".repeat(400);
    const claims = Array.from({ length: 6 }, (_, i) =>
      claim(`TASK-${100 + i}`, {
        description: `${long} ${i}`,
        acceptance_criteria: [{ text: long, done: false }],
        last_note: { at: "2026-12-06T09:00:00Z", by: AGENT, text: long },
      }),
    );
    const ready = Array.from({ length: 3 }, (_, i) => trackerTask("web", { task_id: `TASK-20${i}`, description: long }));
    const host = standIn({ "/tasks?claimed_by": { tasks: claims }, "/tasks?project=web": { tasks: ready } });
    const { text } = await primeWith(host, { TASK_TRACKING_PROJECT: "web" });
    expect(text.length).toBeLessThanOrEqual(MAX_PRIME_CHARACTERS);
    expect(text).toContain("- TASK-100 [high] ");
    expect(text).not.toContain("Ready next");
    expect(text.endsWith("list_tasks mine: true finds your claims.")).toBe(true);
  });

  test("an answer that is not the tracker's is one line, exit code 0", async () => {
    const host = standIn({ "/tasks?claimed_by": { tasks: [{ task_id: 7 }] }, "/projects": { projects: [] } });
    const { code, text } = await primeWith(host, { TASK_TRACKING_URL: "http://tracker.example" });
    expect({ code, text }).toEqual({
      code: 0,
      text: "Task tracking: the tracker at http://tracker.example answered something prime does not understand (Invalid input: expected string, received number); is it a Task Tracking service?",
    });
  });

  test("a bug is one line for the model and the stack on stderr, exit code 0", async () => {
    const { code, text } = await primeWith(standIn({}), {});
    expect(code).toBe(0);
    expect(text).toStartWith(
      "Task tracking: prime failed unexpectedly; `task-tracking-mcp doctor` checks the set-up.\nstderr: Error: no answer for /",
    );
  });

  test("the hook's JSON: session_id, source and cwd as strings; anything else is no hook", () => {
    expect(parseHookInput('{"session_id": "s-1", "source": "compact", "cwd": "/w", "hook_event_name": "SessionStart"}')).toEqual({
      sessionId: "s-1",
      source: "compact",
      cwd: "/w",
    });
    for (const text of [undefined, "", "not json", "[1]", "null", '{"session_id": 7}']) {
      expect(parseHookInput(text)).toEqual({ sessionId: undefined, source: undefined, cwd: undefined });
    }
  });

  test("the project's .mcp.json gives this server's env block, expanded as Claude Code expands it", () => {
    const mcpJson = {
      mcpServers: {
        other: { command: "npx", args: ["some-server"], env: { TASK_TRACKING_PROJECT: "not-ours" } },
        "task-tracking": {
          command: "cmd",
          args: ["/c", "task-tracking-mcp"],
          env: {
            TASK_TRACKING_PROJECT: "web",
            TASK_TRACKING_URL: "${TEAM_URL:-http://localhost:8080}",
            TASK_TRACKING_API_KEY_FILE: "${TEAM_KEY_FILE}",
            LOG_LEVEL: 3,
          },
        },
      },
    };
    const files: Record<string, string> = { "/w/.mcp.json": JSON.stringify(mcpJson), "/bad/.mcp.json": "{" };
    const io = {
      env: { TEAM_URL: "https://tracker.example" },
      readFile: (path: string) => {
        if (path in files) return files[path]!;
        throw new Error(`ENOENT: ${path}`);
      },
    };
    expect(serverEnvOfProject("/w", io)).toEqual({
      TASK_TRACKING_PROJECT: "web",
      TASK_TRACKING_URL: "https://tracker.example",
      TASK_TRACKING_API_KEY_FILE: "${TEAM_KEY_FILE}",
    });
    expect(serverEnvOfProject("/bad", io)).toEqual({});
    expect(serverEnvOfProject("/none", io)).toEqual({});
    expect(serverEnvOfProject(undefined, io)).toEqual({});
  });
});
