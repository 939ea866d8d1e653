// prime's text from the task fields a tracker of acceptance criteria and notes sends (issue 21), and its budget:
// a stand-in host answers, because the shapes and the sizes to check are the test's to choose. The real tracker
// and the compiled binary are e2e/prime.test.ts's.

import { describe, expect, test } from "bun:test";
import { PassThrough } from "node:stream";
import { primeHost } from "./index.ts";
import {
  MAX_PRIME_CHARACTERS,
  type PrimeHost,
  type PrimeIo,
  parseHookInput,
  readStdin,
  runPrime,
  serverEnvOfProject,
} from "./prime.ts";
import { closedPort, trackerTask } from "./testkit/stand-in.ts";

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

describe("prime without a project, with nothing ready, and over time", () => {
  test("without a project it names the projects with work, eight at most, then how many more", async () => {
    const projects = Array.from({ length: 10 }, (_, i) => ({
      project_id: `p${i}`,
      ready: i,
      blocked: 0,
      in_progress: i === 0 ? 1 : 0,
      completed: 0,
      last_change_at: null,
    }));
    const host = standIn({ "/tasks?claimed_by": { tasks: [] }, "/projects": { projects } });
    const { code, text } = await primeWith(host, {});
    expect(code).toBe(0);
    expect(text).toContain(
      "Projects with work: p0 (0 ready, 1 in progress), p1 (1 ready, 0 in progress), p2 (2 ready, 0 in progress), p3 (3 ready, 0 in progress), " +
        "p4 (4 ready, 0 in progress), p5 (5 ready, 0 in progress), p6 (6 ready, 0 in progress), p7 (7 ready, 0 in progress) and 2 more. " +
        "Pass the one you work on as project_id.",
    );
    const none = await primeWith(standIn({ "/tasks?claimed_by": { tasks: [] }, "/projects": { projects: [] } }), {});
    expect(none.text).toContain("No project has work waiting; add_task with a project_id starts one.");
  });

  test("a project with nothing ready says where to look; leases and notes read in minutes, hours and days", async () => {
    const host = standIn({
      "/tasks?claimed_by": {
        tasks: [
          claim("A", {
            lease_expires_at: "2026-12-06T10:00:30Z",
            last_note: { at: "2026-12-06T09:59:50Z", by: null, text: "x" },
          }),
          claim("B", {
            lease_expires_at: "2026-12-06T13:00:00Z",
            last_note: { at: "2026-12-03T10:00:00Z", by: "dana", text: "y" },
          }),
        ],
      },
      "/tasks?project=web": { tasks: [] },
    });
    const { text } = await primeWith(host, { TASK_TRACKING_PROJECT: "web" });
    expect(text).toContain("- A [high] ");
    expect(text).toContain("lease 30 s left");
    expect(text).toContain("just now");
    expect(text).toContain("lease 3 h left");
    expect(text).toContain("(dana, 3 d ago)");
    expect(text).toContain("Nothing is ready in web: list_tasks shows what waits, add_task plans more.");
  });
});

describe("prime's one line when something is wrong, exit code 0", () => {
  test("an option is exit code 2 with a sentence on stderr (no hook passes one)", async () => {
    const printed: string[] = [];
    const io = { error: (text: string) => printed.push(text) } as unknown as PrimeIo;
    expect(await runPrime(["--project"], primeHost, io)).toBe(2);
    expect(printed).toEqual([
      'task-tracking-mcp prime: unknown option "--project"; prime takes none, only a hook\'s JSON on stdin',
    ]);
  });

  test("a configuration it cannot use says so and points to doctor", async () => {
    const { code, text } = await primeWith(primeHost, { TASK_TRACKING_URL: "ftp://tracker.example" });
    expect(code).toBe(0);
    expect(text).toStartWith("Task tracking is not configured: ");
    expect(text).toContain("TASK_TRACKING_URL");
    expect(text).toEndWith("`task-tracking-mcp doctor` says what to set.");
  });

  test("a tracker that is not running is unavailable, and says how to start it", async () => {
    const port = await closedPort();
    const { code, text } = await primeWith(primeHost, { TASK_TRACKING_URL: `http://127.0.0.1:${port}` });
    expect(code).toBe(0);
    expect(text).toStartWith("Task tracking is unavailable: ");
    expect(text).toEndWith("Start it with `task-tracker`, or see `task-tracking-mcp doctor`.");
  });

  test("a rejected key names where the key came from; another refusal gives the tracker's sentence", async () => {
    const bodies = {
      401: { error: "Missing or invalid API key", code: "unauthorized" },
      403: { error: "The key pm is a viewer", code: "forbidden" },
    };
    for (const [status, expected] of [
      [401, "rejected the key in TASK_TRACKING_API_KEY; `task-tracking-mcp doctor` says which key it needs."],
      [403, "`task-tracking-mcp doctor` checks the service and the key."],
    ] as const) {
      const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json(bodies[status], { status }) });
      try {
        const { code, text } = await primeWith(primeHost, { TASK_TRACKING_URL: `http://127.0.0.1:${server.port}` });
        expect(code).toBe(0);
        expect(text).toStartWith("Task tracking: ");
        expect(text).toEndWith(expected);
        expect(text).not.toContain("k".repeat(20));
      } finally {
        await server.stop(true);
      }
    }
  });
});

describe("the hook's JSON on stdin", () => {
  test("is read whole when the writer closes it, and is nothing when nothing came", async () => {
    const written = new PassThrough();
    const reading = readStdin(60_000, written);
    written.write('{"session_id": ');
    written.end('"s-1"}');
    expect(await reading).toBe('{"session_id": "s-1"}');
    const silent = new PassThrough();
    const nothing = readStdin(60_000, silent);
    silent.end();
    expect(await nothing).toBeUndefined();
  });

  test("a stdin that stays open without a hook's JSON is given up after the wait; a broken one ends the read", async () => {
    expect(await readStdin(1, new PassThrough())).toBeUndefined();
    const broken = new PassThrough();
    const reading = readStdin(60_000, broken);
    broken.write("{");
    broken.destroy(new Error("EPIPE"));
    expect(await reading).toBe("{");
  });
});
