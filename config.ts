/**
 * The MCP server's configuration: the environment, read and checked once (loadConfig). Beside index.ts so that
 * the commands loaded on demand (prime.ts) read it the same way without importing the server; index.ts re-exports it.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { localTrackerKeyFile } from "./tracker/data-dir.ts";

export const LOG_LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof LOG_LEVELS;

export interface Config {
  /** Base URL without a trailing slash, as used for requests. */
  url: string;
  /** The URL as errors show it: no user name or password. */
  displayUrl: string;
  apiKey: string;
  /** The file the key was read from (TASK_TRACKING_API_KEY_FILE); undefined when it came from TASK_TRACKING_API_KEY. */
  apiKeyFile?: string;
  /** True when neither variable is set and apiKeyFile is the local tracker's key file. */
  keyFromLocalTracker?: true;
  /** Set when both the variable and the file are given: the file that was not read. */
  ignoredApiKeyFile?: string;
  timeoutMs: number;
  /** Sent as X-Agent-Id on every request; recorded as claimed_by of the tasks this server claims. */
  agentId: string;
  /** TASK_TRACKING_PROJECT: the project the server's instructions name, if any. */
  project?: string;
  /** The lease asked for on every claim; each claim held is renewed every third of it. */
  leaseSeconds: number;
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** What loadConfig reads besides the environment; tests pass their own. */
export interface ConfigSources {
  readFile: (path: string) => string;
  hostname: () => string;
  pid: number;
}

const NOT_AGENT_ID_CHARACTERS = /[^A-Za-z0-9._:@-]+/g;
export const ID_CHARACTERS = /^[A-Za-z0-9._-]+$/;
/** `.` and `..` vanish from URLs (`/tasks/../status` is `/status`): no ID is made only of dots. */
export const ONLY_DOTS = /^\.+$/;

/**
 * A `${VAR}` that the MCP client left as it was: Claude Code passes `"${TASK_TRACKING_API_KEY}"` of a
 * .mcp.json through literally when the variable is not set in the user's environment.
 */
const UNEXPANDED_PLACEHOLDER = /^\$\{[^}]*\}$/;

const FILE_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "it is a directory",
  ENOTDIR: "a part of the path is not a directory",
};

export const NO_API_KEY = "TASK_TRACKING_API_KEY environment variable not set";

const defaultSources: ConfigSources = { readFile: (path) => readFileSync(path, "utf8"), hostname, pid: process.pid };

/**
 * The key and where it came from. The variable wins over the file; doctor says when both are set. With neither, the key
 * file of a tracker started with its defaults on this machine (tracker/data-dir.ts), so one machine needs no configuration.
 */
function loadApiKey(value: (name: string) => string | undefined, readFile: (path: string) => string, localKeyFile?: string) {
  const variable = value("TASK_TRACKING_API_KEY");
  const file = value("TASK_TRACKING_API_KEY_FILE");
  if (variable) return { apiKey: variable, apiKeyFile: undefined, ignoredApiKeyFile: file, keyFromLocalTracker: undefined };
  const path = file ?? localKeyFile;
  if (!path) throw new ConfigError(NO_API_KEY);
  const name = file ? "TASK_TRACKING_API_KEY_FILE" : "The local tracker's key file";
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? "");
    if (!file && code === "ENOENT") throw new ConfigError(NO_API_KEY);
    throw new ConfigError(`${name} ${path} cannot be read: ${FILE_ERRORS[code] ?? (code || "unknown error")}`);
  }
  const apiKey = text.trim();
  if (!apiKey) throw new ConfigError(`${name} ${path} is empty`);
  return { apiKey, apiKeyFile: path, ignoredApiKeyFile: undefined, keyFromLocalTracker: file ? undefined : (true as const) };
}

/** One per Claude Code session, else per process. Agent IDs carry no spaces (API.md): other characters become `-`. */
function defaultAgentId(value: (name: string) => string | undefined, sources: ConfigSources): string {
  const session = value("CLAUDE_CODE_SESSION_ID")?.replace(NOT_AGENT_ID_CHARACTERS, "");
  if (session) return `claude-${session.slice(0, 12)}`;
  const host = sources.hostname().replace(NOT_AGENT_ID_CHARACTERS, "-").slice(0, 100);
  return `${/[A-Za-z0-9]/.test(host) ? host : "host"}-${sources.pid}`;
}

/** A URL as errors show it: no user name or password; resolved against `base` when relative; quoted when no URL. */
export function withoutCredentials(url: string, base?: string): string {
  const parsed = URL.parse(url, base);
  if (!parsed) return JSON.stringify(url.slice(0, 200));
  parsed.username = "";
  parsed.password = "";
  return parsed.href;
}

/** Set, as loadConfig reads it: not empty and not an unexpanded `${VAR}`. */
export const isSet = (env: Record<string, string | undefined>, name: string) => {
  const text = env[name]?.trim();
  return Boolean(text) && !UNEXPANDED_PLACEHOLDER.test(text!);
};

/** Reads the environment once. Empty values and unexpanded `${VAR}`s count as unset, as MCP clients pass them for blanks. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  sources: ConfigSources = defaultSources,
): Config {
  const value = (name: string) => (isSet(env, name) ? env[name]!.trim() : undefined);

  const key = loadApiKey(value, sources.readFile, localTrackerKeyFile(env));
  const { apiKey, apiKeyFile, ignoredApiKeyFile, keyFromLocalTracker } = key;
  if (!/^[\x20-\x7e]+$/.test(apiKey)) {
    // Never the key itself: only what is wrong with it.
    const file = keyFromLocalTracker ? "The local tracker's key file" : "TASK_TRACKING_API_KEY_FILE";
    const where = apiKeyFile ? `${file} ${apiKeyFile} must hold` : "TASK_TRACKING_API_KEY must be";
    throw new ConfigError(`${where} printable ASCII characters; look for quotes or other characters pasted with it`);
  }

  const rawUrl = value("TASK_TRACKING_URL") ?? "http://localhost:8080";
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new ConfigError("TASK_TRACKING_URL must be an http(s) URL such as http://localhost:8080");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError("TASK_TRACKING_URL must be an http(s) URL such as http://localhost:8080");
  }
  if (rawUrl.includes("?") || rawUrl.includes("#")) {
    throw new ConfigError(
      "TASK_TRACKING_URL must be the service's base URL, without a query or fragment, such as http://localhost:8080",
    );
  }
  const url = rawUrl.replace(/\/+$/, "");
  const displayUrl = parsed.username || parsed.password ? withoutCredentials(url).replace(/\/+$/, "") : url;

  const rawTimeout = value("TASK_TRACKING_TIMEOUT_MS") ?? "5000";
  const timeoutMs = Number(rawTimeout);
  if (!/^\d+$/.test(rawTimeout) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new ConfigError("TASK_TRACKING_TIMEOUT_MS must be a whole number of milliseconds from 1 to 600000");
  }

  const agentId = value("TASK_TRACKING_AGENT_ID") ?? defaultAgentId(value, sources);
  if (agentId.length > 128 || agentId.search(NOT_AGENT_ID_CHARACTERS) >= 0) {
    throw new ConfigError("TASK_TRACKING_AGENT_ID must be 1-128 characters of A-Z a-z 0-9 . _ - : @ (no spaces)");
  }

  const project = value("TASK_TRACKING_PROJECT");
  if (project !== undefined && (project.length > 128 || !ID_CHARACTERS.test(project) || ONLY_DOTS.test(project))) {
    throw new ConfigError("TASK_TRACKING_PROJECT must be a project ID: 1-128 characters of A-Z a-z 0-9 . _ -, not only dots");
  }

  const rawLease = value("TASK_TRACKING_LEASE_SECONDS") ?? "120";
  const leaseSeconds = Number(rawLease);
  if (!/^\d+$/.test(rawLease) || leaseSeconds < 5 || leaseSeconds > 3600) {
    throw new ConfigError("TASK_TRACKING_LEASE_SECONDS must be a whole number of seconds from 5 to 3600");
  }

  const logLevel = (value("LOG_LEVEL") ?? "info").toLowerCase();
  if (!(logLevel in LOG_LEVELS)) throw new ConfigError("LOG_LEVEL must be one of debug, info, warn, error");

  return {
    url,
    displayUrl,
    apiKey,
    apiKeyFile,
    ignoredApiKeyFile,
    keyFromLocalTracker,
    timeoutMs,
    agentId,
    project,
    leaseSeconds,
    logLevel: logLevel as LogLevel,
  };
}
