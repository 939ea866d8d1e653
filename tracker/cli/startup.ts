// What `task-tracker` prints when a person starts it in a terminal (LOG_FORMAT text): where the board
// is, where the data and the key are (never the key itself), how to register Claude Code, how to stop
// it. Services, tests and pipes get the JSON line "tracker started" instead (main.ts).

import type { LogLevel } from "../log.ts";

export interface StartupFacts {
  version: string;
  /** The URL the tracker listens on (RunningTracker.url), without a trailing slash, and HOST. */
  url: string;
  host: string;
  database: { kind: "sqlite"; path: string } | { kind: "memory" } | { kind: "postgres"; redactedUrl: string };
  keys: { from: "file"; path: string; created: boolean } | { from: "variable"; count: number };
  /** The command that starts the MCP server, and what to do first when it is not there yet. */
  mcpServer: { command: string; missing?: string };
  logLevel: LogLevel;
  platform: NodeJS.Platform;
}

/** The start-up block, ending with an empty line so that the warnings that follow stand apart. */
export function startupBlock(facts: StartupFacts): string {
  const local = reachableUrl(facts.url);
  const lines = [
    `task-tracker ${facts.version} is running.`,
    "",
    `  Board:     ${local}/${local === facts.url ? "" : ` (and every other address of this machine: HOST=${facts.host})`}`,
    `  Database:  ${describeDatabase(facts.database)}`,
    `  API key:   ${describeKeys(facts.keys)}`,
    ...(facts.keys.from === "file" ? [`             the board asks for it: cat ${shellWord(facts.keys.path)}`] : []),
    "",
    "Register it with Claude Code, once, from any directory:",
    "",
    ...claudeMcpAdd(local, facts).map((line) => `  ${line}`),
    ...(facts.mcpServer.missing ? ["", facts.mcpServer.missing] : []),
    "",
    "Ctrl-C stops it.",
    whatFollows(facts.logLevel),
    "",
  ];
  return `${lines.join("\n")}\n`;
}

/** A tracker listening on every address (HOST 0.0.0.0 or ::) is reached on this machine at its loopback address. */
export function reachableUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.hostname === "0.0.0.0") parsed.hostname = "127.0.0.1";
  else if (parsed.hostname === "[::]") parsed.hostname = "[::1]";
  return parsed.origin;
}

function describeDatabase(database: StartupFacts["database"]): string {
  if (database.kind === "memory") return "in memory (TRACKER_DB=:memory:): nothing is kept once it stops";
  if (database.kind === "postgres") return `${database.redactedUrl} (DATABASE_URL)`;
  return database.path;
}

function describeKeys(keys: StartupFacts["keys"]): string {
  if (keys.from === "variable") return `keys from TRACKER_API_KEYS (${keys.count === 1 ? "1 key" : `${keys.count} keys`})`;
  return keys.created ? `${keys.path} (generated just now, readable only by you)` : keys.path;
}

/**
 * README.md's recipe ("Install, from your own project"), with this tracker's own URL and key file; on
 * Windows its PowerShell form, where Claude Code starts npm's `.cmd` commands through `cmd /c`.
 */
function claudeMcpAdd(url: string, facts: StartupFacts): string[] {
  const windows = facts.platform === "win32";
  const keyFile = facts.keys.from === "file" ? facts.keys.path : "<a file holding one of the keys>";
  const command = facts.mcpServer.command;
  if (windows) {
    const start = command === "task-tracking-mcp" ? "cmd /c task-tracking-mcp" : `"${command}"`;
    return [
      `claude mcp add --scope user task-tracking --env TASK_TRACKING_URL=${url} \``,
      `  --env "TASK_TRACKING_API_KEY_FILE=${keyFile}" -- ${start}`,
    ];
  }
  return [
    "claude mcp add --scope user task-tracking \\",
    `  --env TASK_TRACKING_URL=${url} \\`,
    `  --env TASK_TRACKING_API_KEY_FILE=${shellWord(keyFile)} \\`,
    `  -- ${shellWord(command)}`,
  ];
}

/** A word a POSIX shell reads as itself: plain when it can be, else in single quotes. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

function whatFollows(level: LogLevel): string {
  if (level === "debug") return "From here on it prints every request, one line each (LOG_LEVEL=debug).";
  if (level === "error") return "From here on it prints errors only, one line each (LOG_LEVEL=error).";
  return "From here on it prints warnings and errors, one line each; LOG_LEVEL=debug adds every request.";
}
