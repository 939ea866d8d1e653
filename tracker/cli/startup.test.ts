// The start-up block of the text form, for each kind of storage, key and platform. The tracker's own
// process prints it in main.test.ts; here, the variants a test machine cannot start.

import { describe, expect, test } from "bun:test";
import { reachableUrl, type StartupFacts, startupBlock } from "./startup.ts";

const LINUX: StartupFacts = {
  version: "1.2.3",
  url: "http://127.0.0.1:8080",
  host: "127.0.0.1",
  database: { kind: "sqlite", path: "/home/ada/.local/share/task-tracking/tracker.db" },
  keys: { from: "file", path: "/home/ada/.local/share/task-tracking/api-key", created: false },
  mcpServer: { command: "task-tracking-mcp" },
  logLevel: "info",
  platform: "linux",
};

describe("startupBlock", () => {
  test("says where the board, the data and the key are, how to register Claude Code and how to stop", () => {
    expect(startupBlock(LINUX)).toBe(
      [
        "task-tracker 1.2.3 is running.",
        "",
        "  Board:     http://127.0.0.1:8080/",
        "  Database:  /home/ada/.local/share/task-tracking/tracker.db",
        "  API key:   /home/ada/.local/share/task-tracking/api-key",
        "             the board asks for it: cat /home/ada/.local/share/task-tracking/api-key",
        "",
        "Register it with Claude Code, once, from any directory:",
        "",
        "  claude mcp add --scope user task-tracking \\",
        "    --env TASK_TRACKING_URL=http://127.0.0.1:8080 \\",
        "    --env TASK_TRACKING_API_KEY_FILE=/home/ada/.local/share/task-tracking/api-key \\",
        "    -- task-tracking-mcp",
        "",
        "Ctrl-C stops it.",
        "From here on it prints warnings and errors, one line each; LOG_LEVEL=debug adds every request.",
        "",
        "",
      ].join("\n"),
    );
  });

  test("PostgreSQL is named by its URL without the password, and keys from TRACKER_API_KEYS are counted, never shown", () => {
    const block = startupBlock({
      ...LINUX,
      database: { kind: "postgres", redactedUrl: "postgres://tracker:***@db.internal/tracker" },
      keys: { from: "variable", count: 1 },
    });
    expect(block).toContain("  Database:  postgres://tracker:***@db.internal/tracker (DATABASE_URL)\n");
    expect(block).toContain("  API key:   keys from TRACKER_API_KEYS (1 key)\n\n");
    expect(block).toContain("--env TASK_TRACKING_API_KEY_FILE='<a file holding one of the keys>' \\\n");
  });

  test("a throw-away database says so", () => {
    expect(startupBlock({ ...LINUX, database: { kind: "memory" } })).toContain(
      "  Database:  in memory (TRACKER_DB=:memory:): nothing is kept once it stops\n",
    );
  });

  test("a path with spaces is quoted for the shell, and a missing MCP server says how to build it", () => {
    const block = startupBlock({
      ...LINUX,
      keys: { from: "file", path: "/Users/ada/Library/Application Support/task-tracking/api-key", created: true },
      mcpServer: {
        command: "/src/task tracking/dist/task-tracking-mcp",
        missing: "It is not built yet: bun run build makes it.",
      },
    });
    expect(block).toContain(
      "  API key:   /Users/ada/Library/Application Support/task-tracking/api-key (generated just now, readable only by you)\n" +
        "             the board asks for it: cat '/Users/ada/Library/Application Support/task-tracking/api-key'\n",
    );
    expect(block).toContain(
      "--env TASK_TRACKING_API_KEY_FILE='/Users/ada/Library/Application Support/task-tracking/api-key' \\\n",
    );
    expect(block).toContain(
      "    -- '/src/task tracking/dist/task-tracking-mcp'\n\nIt is not built yet: bun run build makes it.\n",
    );
  });

  test("on Windows, README's PowerShell recipe with cmd /c", () => {
    const block = startupBlock({
      ...LINUX,
      keys: { from: "file", path: "C:\\Users\\ada\\AppData\\Local\\task-tracking\\api-key", created: false },
      platform: "win32",
    });
    expect(block).toContain(
      "  claude mcp add --scope user task-tracking --env TASK_TRACKING_URL=http://127.0.0.1:8080 `\n" +
        '    --env "TASK_TRACKING_API_KEY_FILE=C:\\Users\\ada\\AppData\\Local\\task-tracking\\api-key" -- cmd /c task-tracking-mcp\n',
    );
  });

  test("a tracker on every address (HOST=0.0.0.0) gives this machine's address and says it listens on all", () => {
    const block = startupBlock({ ...LINUX, url: "http://0.0.0.0:8080", host: "0.0.0.0" });
    expect(block).toContain("  Board:     http://127.0.0.1:8080/ (and every other address of this machine: HOST=0.0.0.0)\n");
    expect(block).toContain("--env TASK_TRACKING_URL=http://127.0.0.1:8080 \\\n");
    expect(reachableUrl("http://[::]:9000")).toBe("http://[::1]:9000");
    expect(reachableUrl("http://[::1]:9000")).toBe("http://[::1]:9000");
  });

  test("what follows depends on LOG_LEVEL", () => {
    expect(startupBlock({ ...LINUX, logLevel: "debug" })).toContain(
      "it prints every request, one line each (LOG_LEVEL=debug).\n",
    );
    expect(startupBlock({ ...LINUX, logLevel: "error" })).toContain("it prints errors only, one line each (LOG_LEVEL=error).\n");
  });
});
