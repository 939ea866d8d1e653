// `task-tracker backup FILE`, `task-tracker dump [--out FILE]` and `task-tracker restore FILE`
// (API.md, "Keeping the data"). Backup and dump ask the running tracker (its file is held
// exclusively), at the address and with the key its own configuration gives; restore opens the
// configured storage itself, which must be empty. Exit codes: 0 done, 1 failed, 2 usage.
// The key is never printed; what goes to stdout is the dump (without --out) and nothing else.

import { Database } from "bun:sqlite";
import { createReadStream, existsSync, renameSync, rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ConfigError, loadOrCreateLocalApiKey, localApiKeyPath, readConfig, type TrackerConfig } from "../config.ts";
import { type DumpCounts, DumpError } from "../storage/dump.ts";
import { numberedLines } from "../storage/dump-reader.ts";
import type { Storage } from "../storage/storage.ts";

export const KEEP_COMMANDS = ["backup", "dump", "restore"] as const;
export type KeepCommand = (typeof KEEP_COMMANDS)[number];

export const KEEP_USAGE = [
  "usage: task-tracker backup FILE        a copy of the running tracker's SQLite database",
  "       task-tracker dump [--out FILE]  everything, as JSON lines (stdout without --out)",
  "       task-tracker restore FILE       load a dump (- for stdin) into the configured, empty database",
].join("\n");

/** How restore opens the configured storage: main.ts's own openStorage, with its sentences. */
export type OpenStorage = (config: TrackerConfig) => Promise<{ storage: Storage; description: string }>;

/** A failure whose sentence is the whole story: printed as is, exit code 1. */
export class CommandError extends Error {
  override readonly name = "CommandError";
}

class UsageError extends Error {
  override readonly name = "UsageError";
}

// ---------------------------------------------------------------------------
// Talking to the running tracker.

interface LocalTracker {
  url: string;
  apiKey: string;
}

/** The address a client on this machine reaches the tracker at: a wildcard HOST means every local address. */
export function localUrl(config: TrackerConfig): string {
  if (config.port === 0) {
    throw new CommandError("PORT is 0, so the running tracker listens on a port chosen at its start; set PORT to that port.");
  }
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host === "::" ? "::1" : config.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.port}`;
}

/** The key the tracker would start with: TRACKER_API_KEYS' first, else the key file beside its database. */
export function localApiKey(config: TrackerConfig): string {
  if (config.apiKeys.length > 0) return config.apiKeys[0]!;
  if (config.databaseUrl !== null)
    throw new CommandError("TRACKER_API_KEYS must be set when DATABASE_URL is set: it holds the tracker's keys.");
  const path = localApiKeyPath(config.dbPath);
  if (config.dbPath === ":memory:" || !existsSync(path)) {
    throw new CommandError(
      `There is no API key file ${path}, so no tracker has run with this configuration (TRACKER_DB); start it with task-tracker, or set TRACKER_API_KEYS and TRACKER_DB as it was started with.`,
    );
  }
  return loadOrCreateLocalApiKey(config.dbPath).key;
}

function localTracker(): LocalTracker {
  const config = readConfig();
  return { url: localUrl(config), apiKey: localApiKey(config) };
}

/** GET a path of the running tracker; any answer but 200 is a sentence saying what to do. */
async function callTracker(tracker: LocalTracker, path: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(`${tracker.url}${path}`, { headers: { Authorization: `Bearer ${tracker.apiKey}` } });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new CommandError(
      `No tracker answers at ${tracker.url} (PORT, HOST)${typeof code === "string" ? ` (${code})` : ""}: start it with task-tracker, or set PORT and HOST as it was started with.`,
    );
  }
  if (response.status === 200) return response;
  const text = await response.text();
  let sentence = text.slice(0, 300);
  try {
    sentence = (JSON.parse(text) as { error?: string }).error ?? sentence;
  } catch {
    // Not the contract's error body: shown as it came.
  }
  if (response.status === 401) {
    throw new CommandError(
      `The tracker at ${tracker.url} refused the key: set TRACKER_API_KEYS (or TRACKER_DB) as it was started with.`,
    );
  }
  throw new CommandError(`The tracker at ${tracker.url} answered ${response.status}: ${sentence}`);
}

// ---------------------------------------------------------------------------
// Writing a file only when it is whole.

/** A new file beside `path` (mode 0600: it holds every task), renamed to `path` once complete. */
async function writeWhole(
  path: string,
  write: (file: FileHandle) => Promise<void>,
  check?: (temp: string) => void,
): Promise<void> {
  if (existsSync(path)) throw new CommandError(`${path} already exists; remove it or name another file.`);
  const temp = join(dirname(path), `.${basename(path)}.${crypto.randomUUID()}.partial`);
  let file: FileHandle;
  try {
    file = await open(temp, "wx", 0o600);
  } catch (error) {
    throw new CommandError(`Could not create ${path}: ${(error as Error).message}`);
  }
  try {
    await write(file);
    await file.sync();
    await file.close();
    check?.(temp);
    renameSync(temp, path);
  } catch (error) {
    await file.close().catch(() => {});
    rmSync(temp, { force: true });
    throw error;
  }
}

async function copyBody(response: Response, write: (chunk: Uint8Array) => Promise<unknown>): Promise<number> {
  let bytes = 0;
  try {
    for await (const chunk of response.body!) {
      bytes += chunk.byteLength;
      await write(chunk);
    }
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(
      `The tracker stopped sending after ${bytes} bytes (${(error as Error).message}); nothing was kept, try again.`,
    );
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// The commands.

/** `task-tracker backup FILE`: the running tracker's VACUUM INTO copy, checked by SQLite before it is kept. */
async function backup(args: string[]): Promise<string> {
  const [file, ...rest] = args;
  if (file === undefined || file.startsWith("-") || rest.length > 0)
    throw new UsageError("backup takes one argument: the file to write");
  const tracker = localTracker();
  const response = await callTracker(tracker, "/admin/backup");
  const expected = Number(response.headers.get("x-database-bytes"));
  await writeWhole(
    file,
    async (handle) => {
      const bytes = await copyBody(response, (chunk) => handle.write(chunk));
      if (bytes !== expected)
        throw new CommandError(`The tracker sent ${bytes} of ${expected} bytes; nothing was kept, try again.`);
    },
    (temp) => {
      const copy = new Database(temp, { readonly: true });
      try {
        const result = copy.query<{ quick_check: string }, []>("PRAGMA quick_check").get()?.quick_check;
        if (result !== "ok") throw new CommandError(`The copy failed SQLite's check (${result}); nothing was kept, try again.`);
      } finally {
        copy.close();
      }
    },
  );
  return `Backed up the tracker at ${tracker.url} to ${file} (${expected} bytes).`;
}

/** The last line of what was written must be the end line, or the dump was cut short. */
class TailKeeper {
  private tail = "";
  private readonly decoder = new TextDecoder();
  keep(chunk: Uint8Array): void {
    this.tail = (this.tail + this.decoder.decode(chunk, { stream: true })).slice(-4096);
  }
  counts(): DumpCounts | null {
    const last = this.tail.trimEnd().split("\n").at(-1) ?? "";
    try {
      const record = JSON.parse(last) as { kind?: string; counts?: DumpCounts };
      return record.kind === "end" ? (record.counts ?? null) : null;
    } catch {
      return null;
    }
  }
}

function writeStdout(chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(chunk, (error) => (error ? reject(error) : resolve())));
}

/** `task-tracker dump [--out FILE]`: to stdout, or to FILE once it is whole. */
async function dump(args: string[]): Promise<string> {
  let out: string | undefined;
  if (args.length === 2 && args[0] === "--out" && !args[1]!.startsWith("-")) out = args[1];
  else if (args.length > 0) throw new UsageError("dump takes no argument but --out FILE");
  const tracker = localTracker();
  const response = await callTracker(tracker, "/admin/dump");
  const tail = new TailKeeper();
  const copy = async (write: (chunk: Uint8Array) => Promise<unknown>) => {
    await copyBody(response, (chunk) => {
      tail.keep(chunk);
      return write(chunk);
    });
    if (tail.counts() === null) throw new CommandError("The dump ended without its end line: it was cut short; try again.");
  };
  if (out === undefined) await copy(writeStdout);
  else await writeWhole(out, (handle) => copy((chunk) => handle.write(chunk)));
  const counts = tail.counts()!;
  return `Dumped ${describeCounts(counts)} from the tracker at ${tracker.url}${out === undefined ? "" : ` to ${out}`}.`;
}

function describeCounts(counts: DumpCounts): string {
  // A dump of version 1 counts no notes.
  const notes = counts.notes === undefined ? "" : `, ${counts.notes} notes`;
  return `${counts.tasks} tasks${notes}, ${counts.events} events, ${counts.counters} ID counters and ${counts.reservations} reservations`;
}

function dumpBytes(file: string): AsyncIterable<Uint8Array> {
  if (file === "-") return process.stdin;
  if (!existsSync(file)) throw new CommandError(`There is no file ${file}.`);
  return createReadStream(file);
}

/** `task-tracker restore FILE`: into the configured storage, which must be empty; all or nothing. */
async function restore(args: string[], openStorage: OpenStorage): Promise<string> {
  const [file, ...rest] = args;
  if (file === undefined || (file.startsWith("-") && file !== "-") || rest.length > 0) {
    throw new UsageError("restore takes one argument: the dump to load (- for stdin)");
  }
  const config = readConfig();
  const bytes = dumpBytes(file);
  const sqliteFile = config.databaseUrl === null && config.dbPath !== ":memory:" ? config.dbPath : null;
  const isNewFile = sqliteFile !== null && !existsSync(sqliteFile);
  const { storage, description } = await openStorage(config);
  let restored = false;
  try {
    const counts = await storage.restore(numberedLines(bytes));
    restored = true;
    return `Restored ${describeCounts(counts)} into ${description}; start the tracker on it with task-tracker.`;
  } catch (error) {
    if (!(error instanceof DumpError)) throw error;
    throw new CommandError(`${file === "-" ? "stdin" : file}: ${error.message}; nothing was written.`);
  } finally {
    await storage.close();
    // A database file this command created for a restore that failed would only be in the way.
    if (isNewFile && !restored) {
      for (const suffix of ["", "-wal", "-shm"]) rmSync(`${sqliteFile}${suffix}`, { force: true });
    }
  }
}

/** Runs one of KEEP_COMMANDS; the sentence of the outcome goes to stderr, so stdout stays the dump's. */
export async function runKeepCommand(command: KeepCommand, args: string[], openStorage: OpenStorage): Promise<number> {
  try {
    const done =
      command === "backup" ? await backup(args) : command === "dump" ? await dump(args) : await restore(args, openStorage);
    process.stderr.write(`${done}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`task-tracker ${command}: ${error.message}\n${KEEP_USAGE}\n`);
      return 2;
    }
    if (error instanceof CommandError || error instanceof ConfigError) {
      process.stderr.write(`task-tracker ${command}: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`task-tracker ${command} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
