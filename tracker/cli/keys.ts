// `task-tracker keys add NAME --role admin|member|viewer [--project P]…`, `keys list` and
// `keys revoke NAME` (API.md, "Keys and roles"). With the tracker running they go through it
// (/admin/keys, with the key its own configuration gives, as backup does); with no tracker
// answering they open the configured storage themselves. A new key is printed once, alone on
// stdout; every other sentence goes to stderr. Exit codes: 0 done, 1 failed, 2 usage.

import { ConfigError, readConfig, type TrackerConfig } from "../config.ts";
import { ApiError } from "../domain.ts";
import { type ApiKeyRecord, checkKeyName, checkKeyProjects, generateApiKey, hashApiKey, ROLES, type Role } from "../keys.ts";
import { CommandError, localApiKey, localUrl, type OpenStorage } from "./keep.ts";

export const KEYS_USAGE = [
  "usage: task-tracker keys add NAME --role admin|member|viewer [--project P]...",
  "                                   a new key, printed once (a member with --project: those projects only)",
  "       task-tracker keys list      every key: name, role, projects, created, last used, revoked",
  "       task-tracker keys revoke NAME",
].join("\n");

class UsageError extends Error {
  override readonly name = "UsageError";
}

type KeysRequest =
  | { command: "add"; name: string; role: Role; projects: string[] }
  | { command: "list" }
  | { command: "revoke"; name: string };

function parseAdd(args: string[]): KeysRequest {
  const [name, ...rest] = args;
  if (name === undefined || name.startsWith("-")) throw new UsageError("keys add takes the key's name first");
  let role: Role | undefined;
  const projects: string[] = [];
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (value === undefined || value.startsWith("-")) throw new UsageError(`${flag} needs a value`);
    if (flag === "--role" && role === undefined && (ROLES as readonly string[]).includes(value)) role = value as Role;
    else if (flag === "--project") projects.push(value);
    else if (flag === "--role") throw new UsageError(`--role is given once, as one of ${ROLES.join(", ")}`);
    else throw new UsageError(`keys add takes --role and --project, not ${flag}`);
  }
  if (role === undefined) throw new UsageError(`keys add needs --role, one of ${ROLES.join(", ")}`);
  return { command: "add", name, role, projects };
}

function parseKeysArgs(args: string[]): KeysRequest {
  const [command, ...rest] = args;
  if (command === "add") return parseAdd(rest);
  if (command === "list" && rest.length === 0) return { command: "list" };
  if (command === "revoke" && rest.length === 1 && !rest[0]!.startsWith("-")) return { command: "revoke", name: rest[0]! };
  throw new UsageError(
    command === "list" || command === "revoke" ? `keys ${command}: wrong arguments` : "keys takes add, list or revoke",
  );
}

// ---------------------------------------------------------------------------
// Through the running tracker, or on its storage.

interface Done {
  /** A new key: the one thing on stdout. */
  key?: string;
  records: ApiKeyRecord[];
  /** Where it happened: the tracker's URL, or the storage. */
  where: string;
}

/** The request as the HTTP API has it. */
function apiCall(request: KeysRequest): { method: string; path: string; body?: string } {
  if (request.command === "add") {
    const { name, role, projects } = request;
    return { method: "POST", path: "/admin/keys", body: JSON.stringify({ name, role, projects }) };
  }
  if (request.command === "list") return { method: "GET", path: "/admin/keys" };
  return { method: "DELETE", path: `/admin/keys/${encodeURIComponent(request.name)}` };
}

/** null when no tracker answers at the configured address (or none could have run: no key). */
async function throughTracker(config: TrackerConfig, request: KeysRequest): Promise<Done | null> {
  let url: string;
  let apiKey: string;
  try {
    url = localUrl(config);
    apiKey = localApiKey(config);
  } catch {
    return null;
  }
  const { method, path, body } = apiCall(request);
  let response: Response;
  try {
    const headers = { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" };
    response = await fetch(`${url}${path}`, { method, headers, body });
  } catch {
    return null;
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, any>;
  if (response.status === 401) {
    throw new CommandError(`The tracker at ${url} refused the key: set TRACKER_API_KEYS (or TRACKER_DB) as it was started with.`);
  }
  if (!response.ok)
    throw new CommandError(`The tracker at ${url} answered ${response.status}: ${answer.error ?? "no reason given"}`);
  if (request.command === "add") {
    const { key, ...record } = answer;
    return { key, records: [record as ApiKeyRecord], where: `the tracker at ${url}` };
  }
  return { records: request.command === "list" ? answer.keys : [answer.key], where: `the tracker at ${url}` };
}

async function onStorage(config: TrackerConfig, request: KeysRequest, openStorage: OpenStorage): Promise<Done> {
  const { storage, description } = await openStorage(config);
  try {
    if (request.command === "list") return { records: await storage.listApiKeys(), where: description };
    if (request.command === "revoke")
      return { records: [await storage.revokeApiKey(request.name, new Date())], where: description };
    checkKeyName(request.name);
    checkKeyProjects(request.role, request.projects);
    const key = generateApiKey();
    const { name, role } = request;
    const projects = [...new Set(request.projects)];
    const record = await storage.addApiKey({ name, role, projects, hash: hashApiKey(key), createdAt: new Date() });
    return { key, records: [record], where: description };
  } catch (error) {
    if (error instanceof ApiError) throw new CommandError(`${error.message}.`);
    throw error;
  } finally {
    await storage.close();
  }
}

// ---------------------------------------------------------------------------
// What it prints.

function describeProjects(record: ApiKeyRecord): string {
  return record.projects.length === 0 ? "all" : record.projects.join(",");
}

/** A table, one key a line, columns aligned; never a key. */
export function keysTable(records: readonly ApiKeyRecord[]): string {
  const rows = [
    ["NAME", "ROLE", "PROJECTS", "CREATED", "LAST USED", "REVOKED"],
    ...records.map((r) => [r.name, r.role, describeProjects(r), r.created_at, r.last_used_at ?? "never", r.revoked_at ?? "-"]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function report(request: KeysRequest, done: Done): string {
  if (request.command === "list") {
    process.stdout.write(`${keysTable(done.records)}\n`);
    return `${done.records.length} ${done.records.length === 1 ? "key" : "keys"} in ${done.where}.`;
  }
  const record = done.records[0]!;
  if (request.command === "revoke") return `Revoked the key ${record.name} in ${done.where}: it is refused from now on.`;
  process.stdout.write(`${done.key}\n`);
  return `Added the key ${record.name} (${record.role}, projects: ${describeProjects(record)}) to ${done.where}. It is printed above this once and never again: hand it over now.`;
}

/** Runs `task-tracker keys …`; sentences go to stderr, stdout has only a new key or the list. */
export async function runKeysCommand(args: string[], openStorage: OpenStorage): Promise<number> {
  try {
    const request = parseKeysArgs(args);
    const config = readConfig();
    const done = (await throughTracker(config, request)) ?? (await onStorage(config, request, openStorage));
    process.stderr.write(`${report(request, done)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`task-tracker keys: ${error.message}\n${KEYS_USAGE}\n`);
      return 2;
    }
    const sentence = error instanceof Error ? error.message : String(error);
    const known = error instanceof CommandError || error instanceof ConfigError;
    process.stderr.write(`task-tracker keys${known ? "" : " failed"}: ${sentence}\n`);
    return 1;
  }
}
