// The one place that reads the environment. A bad value stops the start with a sentence naming
// the variable (main.ts prints it and exits 1). The sentence says what is wrong with the value,
// never what it is: a key pasted into the wrong variable must not land in a terminal or a log.

import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  type Stats,
  writeFileSync,
} from "node:fs";
import { isIP } from "node:net";
import { dirname, join, posix, resolve, win32 } from "node:path";
import { LOCAL_API_KEY_FILE_NAME, userDataDir } from "./data-dir.ts";
import { DEFAULT_CLAIM_TTL_SECONDS, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS } from "./domain.ts";
import { parseRateLimit, type RateLimit } from "./keys.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "./log.ts";
import type { SyncMode } from "./storage/sqlite.ts";

export const MIN_API_KEY_LENGTH = 16;

export interface TrackerConfig {
  port: number;
  host: string;
  /** The user's data directory (userDataDir); undefined when its variables are not set. */
  dataDir: string | undefined;
  /** A file path or `:memory:`; by default `<dataDir>/tracker.db`. */
  dbPath: string;
  /** Empty: main.ts uses (or creates) the local key file beside the database. */
  apiKeys: string[];
  reservationTtlSeconds: number;
  /** TRACKER_CLAIM_TTL: the lease of a claim that asks for none. */
  claimTtlSeconds: number;
  /** TRACKER_RATE_LIMIT; null when unset (keys.ts: the kept keys' default, none for the operator's). */
  rateLimit: RateLimit | null;
  sync: SyncMode;
  logLevel: LogLevel;
  /** LOG_FORMAT; null when unset: main.ts decides by whether stdout is a terminal (log.ts, chooseLogFormat). */
  logFormat: LogFormat | null;
  /** postgres://… selects the PostgreSQL storage instead of SQLite. */
  databaseUrl: string | null;
  /** PostgreSQL only: connections per instance, and how long connecting and one operation may take. */
  databasePoolMax: number;
  databaseConnectTimeoutSeconds: number;
  databaseQueryTimeoutSeconds: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** Unset and empty mean the same: the default. */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function readInteger(env: Env, name: string, fallback: number, min: number, max: number, what: string): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const problem = !/^\d+$/.test(raw)
    ? "it is not a whole number"
    : value < min
      ? `it is below ${min}`
      : value > max
        ? `it is above ${max}`
        : null;
  if (problem !== null) throw new ConfigError(`${name} must be ${what} from ${min} to ${max}; ${problem}.`);
  return value;
}

function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = raw.toLowerCase() as T;
  if (!choices.includes(value)) throw new ConfigError(`${name} must be one of ${choices.join(", ")}; it is none of them.`);
  return value;
}

/** A host name (letters, digits, dots, hyphens) or an IP address: anything else cannot be a HOST. */
const HOST_NAME_PATTERN =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `RATE` or `RATE/BURST` (keys.ts, parseRateLimit). */
function readRateLimit(env: Env): RateLimit | null {
  const raw = read(env, "TRACKER_RATE_LIMIT");
  if (raw === undefined) return null;
  const limit = parseRateLimit(raw);
  if (limit === null) {
    throw new ConfigError(
      "TRACKER_RATE_LIMIT must be requests per second per key, optionally with a burst no smaller: such as 20 or 20/60.",
    );
  }
  return limit;
}

function readHost(env: Env): string {
  const host = read(env, "HOST") ?? "127.0.0.1";
  if (isIP(host) === 0 && !HOST_NAME_PATTERN.test(host)) {
    throw new ConfigError(
      "HOST must be a host name or an IP address of this machine, such as 127.0.0.1 or 0.0.0.0; it holds characters no host name has.",
    );
  }
  return host;
}

/** Visible ASCII only: anything else cannot travel in an Authorization header intact. */
const API_KEY_PATTERN = /^[\x21-\x7E]+$/;

export function checkApiKey(key: string, source: string): void {
  if (key.length < MIN_API_KEY_LENGTH) {
    throw new ConfigError(`${source}: every API key must be at least ${MIN_API_KEY_LENGTH} characters long.`);
  }
  if (!API_KEY_PATTERN.test(key)) {
    throw new ConfigError(`${source}: API keys may hold only visible ASCII characters (no spaces).`);
  }
}

function defaultDbPath(dataDir: string | undefined, platform: NodeJS.Platform): string {
  if (dataDir === undefined) {
    const variable =
      platform === "win32" ? "LOCALAPPDATA is not" : platform === "darwin" ? "HOME is not" : "neither XDG_DATA_HOME nor HOME is";
    throw new ConfigError(
      `TRACKER_DB is not set and ${variable} set, so the tracker has no data directory to keep its database in; set TRACKER_DB.`,
    );
  }
  return (platform === "win32" ? win32 : posix).join(dataDir, "tracker.db");
}

export function readConfig(env: Env = process.env, platform: NodeJS.Platform = process.platform): TrackerConfig {
  const port = readInteger(env, "PORT", 8080, 0, 65535, "a port number");
  const host = readHost(env);
  const dataDir = userDataDir(env, platform);

  const apiKeys: string[] = [];
  const rawKeys = read(env, "TRACKER_API_KEYS");
  if (rawKeys !== undefined) {
    // Surrounding spaces and empty entries (a trailing comma) are forgiven.
    for (const key of rawKeys.split(",").map((entry) => entry.trim())) {
      if (key === "") continue;
      checkApiKey(key, "TRACKER_API_KEYS");
      apiKeys.push(key);
    }
    if (apiKeys.length === 0) throw new ConfigError("TRACKER_API_KEYS must list at least one key, separated by commas.");
  }

  const reservationTtlSeconds = readInteger(env, "TRACKER_RESERVATION_TTL", 3600, 1, 31_536_000, "a number of seconds");
  const claimTtlSeconds = readInteger(
    env,
    "TRACKER_CLAIM_TTL",
    DEFAULT_CLAIM_TTL_SECONDS,
    MIN_LEASE_SECONDS,
    MAX_LEASE_SECONDS,
    "a number of seconds",
  );
  const rateLimit = readRateLimit(env);
  const sync = readChoice<SyncMode>(env, "TRACKER_SYNC", ["normal", "full"], "normal");
  const logLevel = readChoice<LogLevel>(env, "LOG_LEVEL", LOG_LEVELS, "info");
  const logFormat = read(env, "LOG_FORMAT") === undefined ? null : readChoice<LogFormat>(env, "LOG_FORMAT", LOG_FORMATS, "json");

  const databaseUrl = read(env, "DATABASE_URL") ?? null;
  // The sentences never repeat the URL: it may hold a password.
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError("DATABASE_URL must be a postgres:// or postgresql:// URL.");
  }
  if (databaseUrl !== null && !URL.canParse(databaseUrl)) {
    throw new ConfigError("DATABASE_URL is not a valid URL (a password with special characters must be percent-encoded).");
  }
  const databasePoolMax = readInteger(env, "DATABASE_POOL_MAX", 10, 1, 1000, "a number of connections");
  const databaseConnectTimeoutSeconds = readInteger(env, "DATABASE_CONNECT_TIMEOUT", 5, 1, 600, "a number of seconds");
  const databaseQueryTimeoutSeconds = readInteger(env, "DATABASE_QUERY_TIMEOUT", 10, 1, 3600, "a number of seconds");
  // Last, so that a bad value of any other variable is named first. With DATABASE_URL the SQLite
  // path is never opened: no data directory is needed then.
  const dbPath =
    read(env, "TRACKER_DB") ?? (databaseUrl !== null && dataDir === undefined ? ":memory:" : defaultDbPath(dataDir, platform));
  return {
    port,
    host,
    dataDir,
    dbPath,
    apiKeys,
    reservationTtlSeconds,
    claimTtlSeconds,
    rateLimit,
    sync,
    logLevel,
    logFormat,
    databaseUrl,
    databasePoolMax,
    databaseConnectTimeoutSeconds,
    databaseQueryTimeoutSeconds,
  };
}

export interface LocalApiKey {
  key: string;
  /** Where it is kept: localApiKeyPath(dbPath). */
  path: string;
  created: boolean;
}

/** The generated key is kept beside the database, so one tracker's data stay together. */
export function localApiKeyPath(dbPath: string): string {
  return join(dirname(dbPath), LOCAL_API_KEY_FILE_NAME);
}

/**
 * For a tracker started without TRACKER_API_KEYS: the key kept beside the database, created once
 * (32 random bytes, base64url, file mode 0600). There is never a built-in default key.
 * `uid` is the user the file must belong to (this process's; undefined on Windows: no check).
 */
export function loadOrCreateLocalApiKey(dbPath: string, uid: number | undefined = process.getuid?.()): LocalApiKey {
  if (dbPath === ":memory:") {
    throw new ConfigError(
      "TRACKER_API_KEYS is not set and TRACKER_DB is :memory:, so there is nowhere to keep a generated key; set TRACKER_API_KEYS.",
    );
  }
  const path = localApiKeyPath(dbPath);
  if (existsSync(path)) {
    const fd = openSync(path, "r");
    let key: string;
    try {
      // Checked on the open file, so it cannot be swapped between the check and the read.
      checkKeyFileIsPrivate(path, fstatSync(fd), uid);
      key = readFileSync(fd, "utf8").trim();
    } finally {
      closeSync(fd);
    }
    checkApiKey(key, `The API key file ${path}`);
    return { key, path, created: false };
  }
  createPrivateDirectory(dirname(path));
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  // `wx`: never overwrite a key another process has just written.
  writeFileSync(path, `${key}\n`, { mode: 0o600, flag: "wx" });
  return { key, path, created: true };
}

/**
 * A key file that another user owns, or may read or write, is refused rather than trusted: with
 * TRACKER_DB under a shared directory such as /tmp, anyone could have planted a key they know.
 */
function checkKeyFileIsPrivate(path: string, stats: Stats, uid: number | undefined): void {
  const shared = sharedWith(stats, uid);
  if (shared?.owner !== undefined) {
    throw new ConfigError(
      `The API key file ${path} belongs to user ${shared.owner}, not to this user (${uid}), so someone else may know the key; remove it to have a new key generated, or set TRACKER_API_KEYS.`,
    );
  }
  if (shared?.mode !== undefined) {
    throw new ConfigError(
      `The API key file ${path} can be read or written by other users (mode ${shared.mode}); if you trust the key in it, run: chmod 600 ${path}; otherwise remove it to have a new key generated.`,
    );
  }
}

/**
 * How a file is open to others: another user owns it, or others may read or write it (its mode, in
 * octal); null when it is this user's alone. `uid` undefined (Windows): no check.
 */
function sharedWith(stats: Stats, uid: number | undefined): { owner?: number; mode?: string } | null {
  if (uid === undefined) return null;
  if (stats.uid !== uid) return { owner: stats.uid };
  if ((stats.mode & 0o066) !== 0) return { mode: (stats.mode & 0o777).toString(8).padStart(3, "0") };
  return null;
}

/** Creates a directory and its missing parents with mode 0700, whatever the umask (which masks mkdir's mode). */
export function createPrivateDirectory(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return;
  for (let made = resolve(dir); ; made = dirname(made)) {
    chmodSync(made, 0o700);
    if (made === resolve(first) || made === dirname(made)) return;
  }
}

/**
 * The key file's rules for the SQLite database at TRACKER_DB, checked before SQLite opens it: its
 * directory is made 0700 if new; the file and its -wal and -shm companions, where they exist, are no
 * symbolic links (SQLite would follow one and create or write its target, wherever it points) and
 * belong to this user alone. SQLite gives a new file's companions the file's own mode.
 */
export function checkDatabasePath(dbPath: string, uid: number | undefined = process.getuid?.()): void {
  createPrivateDirectory(dirname(dbPath));
  const files: Array<[string, string]> = [
    [dbPath, "The database file"],
    [`${dbPath}-wal`, "The database's -wal file"],
    [`${dbPath}-shm`, "The database's -shm file"],
  ];
  for (const [path, title] of files) {
    const stats = lstatOrNull(path);
    if (stats?.isSymbolicLink()) {
      throw new ConfigError(
        `${title} ${path} (TRACKER_DB) is a symbolic link; set TRACKER_DB to the file itself, so that the database cannot be sent elsewhere.`,
      );
    }
    if (stats?.isFile()) checkDatabaseFileIsPrivate(path, title, stats, uid);
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return null;
    throw error;
  }
}

/** Every task, note and stored response is in it: others may neither read it nor have written it. */
function checkDatabaseFileIsPrivate(path: string, title: string, stats: Stats, uid: number | undefined): void {
  const shared = sharedWith(stats, uid);
  if (shared?.owner !== undefined) {
    throw new ConfigError(
      `${title} ${path} (TRACKER_DB) belongs to user ${shared.owner}, not to this user (${uid}); run the tracker as its owner, or set TRACKER_DB to a file of your own.`,
    );
  }
  if (shared?.mode !== undefined) {
    throw new ConfigError(
      `${title} ${path} (TRACKER_DB) can be read or written by other users (mode ${shared.mode}); if no one else should, run: chmod 600 ${path}`,
    );
  }
}
