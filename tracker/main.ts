// `bun run tracker`: the Task Tracking service, configured from the environment (config.ts).
// Serving, stdout stays empty; start-up problems are one sentence on stderr and exit code 1. In a
// terminal it prints a start-up block and then warnings as plain lines (cli/startup.ts, log.ts); else,
// or with LOG_FORMAT=json, one JSON line per event.
// `bun run tracker paths` (`task-tracker paths`) prints where its database and key file are;
// `backup`, `dump` and `restore` keep the data (cli/keep.ts); `keys` adds, lists and revokes the keys
// the tracker keeps (cli/keys.ts).

import { existsSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import packageJson from "../package.json" with { type: "json" };
import { KEEP_COMMANDS, type KeepCommand, runKeepCommand } from "./cli/keep.ts";
import { runKeysCommand } from "./cli/keys.ts";
import { type StartupFacts, startupBlock } from "./cli/startup.ts";
import {
  ConfigError,
  checkDatabasePath,
  type LocalApiKey,
  loadOrCreateLocalApiKey,
  localApiKeyPath,
  readConfig,
  type TrackerConfig,
} from "./config.ts";
import { type RunningTracker, startTracker } from "./http/server.ts";
import { chooseLogFormat, createLogger, describeError, type LogFormat, type Logger } from "./log.ts";
import { openPostgresStorage, redactDatabaseUrl } from "./storage/postgres.ts";
import { openSqliteStorage } from "./storage/sqlite.ts";
import type { Storage } from "./storage/storage.ts";

function fail(sentence: string): never {
  process.stderr.write(`${sentence}\n`);
  process.exit(1);
}

/** The storage the configuration selects. DATABASE_URL selects PostgreSQL; else SQLite at TRACKER_DB. */
async function openStorage(config: TrackerConfig, logger: Logger): Promise<{ storage: Storage; description: string }> {
  if (config.databaseUrl !== null) {
    const storage = await openPostgresStorage({
      logger,
      url: config.databaseUrl,
      poolMax: config.databasePoolMax,
      connectTimeoutMs: config.databaseConnectTimeoutSeconds * 1000,
      queryTimeoutMs: config.databaseQueryTimeoutSeconds * 1000,
    });
    return { storage, description: redactDatabaseUrl(config.databaseUrl) };
  }
  if (config.dbPath !== ":memory:") checkDatabasePath(config.dbPath);
  try {
    const storage = await openSqliteStorage({ path: config.dbPath, sync: config.sync });
    return { storage, description: `sqlite:${config.dbPath}` };
  } catch (error) {
    throw new ConfigError(
      `The tracker could not open its database ${config.dbPath} (TRACKER_DB): ${whySqliteFailed(config.dbPath, error)}`,
    );
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // missing, or under a file: SQLite's own message says so
  }
}

/** SQLite's own words ("unable to open database file") say neither which file nor what to do. */
function whySqliteFailed(path: string, error: unknown): string {
  if (isDirectory(path)) {
    return `it is a directory; set TRACKER_DB to a file path, such as ${join(path, "tracker.db")}.`;
  }
  if ((error as { code?: unknown } | null)?.code === "SQLITE_NOTADB") {
    return "the file is not a SQLite database; set TRACKER_DB to the tracker's database, or to a new file path to start afresh.";
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * A failure to listen, as a sentence naming the variable to change. A HOST that does not resolve is
 * not repeated: it may be a key pasted into the wrong variable.
 */
function whyListenFailed(config: TrackerConfig, error: unknown): string {
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  if (syscall === "getaddrinfo") {
    return `The tracker could not listen on port ${config.port} (PORT, HOST): HOST could not be resolved to an address (${String(code)}); set HOST to an address or name of this machine, such as 127.0.0.1 or 0.0.0.0.`;
  }
  const where = `The tracker could not listen on ${config.host}:${config.port} (PORT, HOST)`;
  if (code === "EADDRINUSE") {
    return `${where}: port ${config.port} is already in use, perhaps by another tracker; stop that one or set PORT to a free port.`;
  }
  if (code === "EADDRNOTAVAIL") {
    return `${where}: HOST ${config.host} is not an address of this machine; set HOST to one that is, such as 127.0.0.1 or 0.0.0.0.`;
  }
  return `${where}: ${error instanceof Error ? error.message : String(error)}`;
}

interface ApiKeys {
  keys: string[];
  /** The local key file, when the keys are not in TRACKER_API_KEYS. */
  file: LocalApiKey | null;
}

function resolveApiKeys(config: TrackerConfig): ApiKeys {
  if (config.apiKeys.length > 0) return { keys: config.apiKeys, file: null };
  if (config.databaseUrl !== null) {
    throw new ConfigError(
      "TRACKER_API_KEYS must be set when DATABASE_URL is set: a shared tracker needs keys chosen by its owner.",
    );
  }
  const local = loadOrCreateLocalApiKey(config.dbPath);
  return { keys: [local.key], file: local };
}

/** The JSON form's line on the key file; the text form says it in its start-up block. */
function sayWhereTheKeyIs(local: LocalApiKey): void {
  const how = `clients use it with: export TASK_TRACKING_API_KEY="$(cat ${local.path})"`;
  process.stderr.write(
    local.created
      ? `TRACKER_API_KEYS is not set: generated an API key in ${local.path} (readable only by you); ${how}\n`
      : `TRACKER_API_KEYS is not set: using the API key in ${local.path}; ${how}\n`,
  );
}

/** Stops on SIGTERM or SIGINT: the requests in flight finish, then the storage closes. */
function stopOnSignals(tracker: RunningTracker, storage: Storage, logger: Logger): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log("info", "tracker stopping", { signal });
    try {
      await tracker.stop();
      await storage.close();
      logger.log("info", "tracker stopped");
      logger.flush();
      process.exit(0);
    } catch (error) {
      logger.log("error", "tracker did not stop cleanly", describeError(error));
      logger.flush();
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

interface Prepared {
  config: TrackerConfig;
  apiKeys: ApiKeys;
  format: LogFormat;
  logger: Logger;
  opened: { storage: Storage; description: string };
}

/** The configuration, the keys, the logger and the storage; a problem is one sentence and exit 1. */
async function prepare(): Promise<Prepared> {
  try {
    const config = readConfig();
    const apiKeys = resolveApiKeys(config);
    const format = chooseLogFormat(config.logFormat, process.stdout.isTTY === true);
    if (format === "json" && apiKeys.file !== null) sayWhereTheKeyIs(apiKeys.file);
    // The one logger of the process: the storage and the HTTP layer write through it.
    const logger = createLogger(config.logLevel, undefined, format);
    const opened = await openStorage(config, logger);
    return { config, apiKeys, format, logger, opened };
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    fail(`The tracker could not open its database: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function serve(): Promise<void> {
  const { config, apiKeys, format, logger, opened } = await prepare();
  let tracker: RunningTracker;
  try {
    tracker = await startTracker({
      storage: opened.storage,
      logger,
      apiKeys: apiKeys.keys,
      port: config.port,
      host: config.host,
      reservationTtlSeconds: config.reservationTtlSeconds,
      claimTtlSeconds: config.claimTtlSeconds,
      rateLimit: config.rateLimit,
    });
  } catch (error) {
    await opened.storage.close();
    fail(whyListenFailed(config, error));
  }
  // Ready to stop before it says it started: whoever reads that may stop it at once.
  stopOnSignals(tracker, opened.storage, logger);
  if (format === "text") process.stderr.write(startupBlock(startupFacts(config, apiKeys, tracker.url)));
  else logger.log("info", "tracker started", { url: tracker.url, board: `${tracker.url}/`, storage: opened.description });
}

/** What the start-up block says, from what the tracker started with. */
function startupFacts(config: TrackerConfig, apiKeys: ApiKeys, url: string): StartupFacts {
  const database: StartupFacts["database"] =
    config.databaseUrl !== null
      ? { kind: "postgres", redactedUrl: redactDatabaseUrl(config.databaseUrl) }
      : config.dbPath === ":memory:"
        ? { kind: "memory" }
        : { kind: "sqlite", path: config.dbPath };
  const keys: StartupFacts["keys"] =
    apiKeys.file === null
      ? { from: "variable", count: apiKeys.keys.length }
      : { from: "file", path: apiKeys.file.path, created: apiKeys.file.created };
  return {
    version: packageJson.version,
    url,
    host: config.host,
    database,
    keys,
    mcpServer: mcpServerCommand(),
    logLevel: config.logLevel,
    platform: process.platform,
  };
}

/**
 * The compiled tracker came with the MCP server (npm installs both commands). Run from a checkout
 * (`bun run tracker`), the MCP server is the checkout's dist/task-tracking-mcp, which `bun run build` makes.
 */
function mcpServerCommand(): StartupFacts["mcpServer"] {
  if (!basename(process.execPath).startsWith("bun")) return { command: "task-tracking-mcp" };
  const command = resolve(import.meta.dir, "..", "dist", `task-tracking-mcp${process.platform === "win32" ? ".exe" : ""}`);
  return existsSync(command) ? { command } : { command, missing: "It is not built yet: bun run build makes it." };
}

/** `task-tracker paths`: where this tracker's data live, with the same configuration it would start with. */
function printPaths(): number {
  let config: TrackerConfig;
  try {
    config = readConfig();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const postgres = config.databaseUrl !== null;
  const inMemory = !postgres && config.dbPath === ":memory:";
  const database = postgres
    ? `${redactDatabaseUrl(config.databaseUrl!)} (DATABASE_URL)`
    : inMemory
      ? ":memory: (TRACKER_DB; nothing is kept)"
      : config.dbPath;
  const keyFile =
    config.apiKeys.length > 0
      ? "none: the keys come from TRACKER_API_KEYS"
      : postgres || inMemory
        ? "none: set TRACKER_API_KEYS"
        : localApiKeyPath(config.dbPath);
  process.stdout.write(
    `data directory: ${config.dataDir ?? "none (its variables are not set)"}\n` +
      `database:       ${database}\n` +
      `API key file:   ${keyFile}\n`,
  );
  return 0;
}

/** The tracker's command line: no argument serves until a signal comes; `paths` prints where its data live. */
async function runTracker(argv: string[]): Promise<number | undefined> {
  const command = argv[0];
  if (command === "paths") return printPaths();
  const open = (config: TrackerConfig) => openStorage(config, createLogger(config.logLevel));
  if (KEEP_COMMANDS.includes(command as KeepCommand)) return runKeepCommand(command as KeepCommand, argv.slice(1), open);
  if (command === "keys") return runKeysCommand(argv.slice(1), open);
  if (command !== undefined) {
    process.stderr.write(
      `task-tracker: unknown argument ${JSON.stringify(command)}; it takes none (serve), paths, backup, dump, restore or keys\n`,
    );
    return 2;
  }
  await serve();
  return undefined;
}

if (import.meta.main) {
  const code = await runTracker(process.argv.slice(2));
  if (code !== undefined) process.exit(code);
}
