// The tracker as its own process: `bun tracker/main.ts` or the compiled dist/task-tracker, on port 0,
// ready once it has logged "tracker started" with its URL (tracker/main.ts) and /healthz answers.

import { existsSync } from "node:fs";
import { parseRecord, waitForLineInFile } from "./lines.ts";
import { TRACKER_BINARY, TRACKER_MAIN } from "./paths.ts";
import { type ChildProcess, type Output, startProcess } from "./processes.ts";

/** The command that runs the tracker: from source with this Bun, or the compiled binary. */
export function trackerCommand(from: "source" | "binary" = "source"): string[] {
  return from === "binary" ? [TRACKER_BINARY] : [process.execPath, TRACKER_MAIN];
}

export function trackerBinaryBuilt(): boolean {
  return existsSync(TRACKER_BINARY);
}

const START_TIMEOUT_MS = 15_000;
const isStartedLine = (line: string) => parseRecord(line)?.msg === "tracker started";

/**
 * The URL the tracker logged once it listens; rejects with its stderr if it exits first. `logFile`
 * is where its stderr went when that was a file.
 */
export async function trackerStarted(child: ChildProcess, logFile?: string): Promise<string> {
  const exitedFirst = child.exited.then(async (code) => {
    await child.stderr.whenEnded();
    // Read only when it is needed: a tracker that started and was stopped may have had its log removed.
    const log = logFile
      ? await Bun.file(logFile)
          .text()
          .catch(() => "")
      : child.stderr.text();
    return new Error(`the tracker exited with code ${code} before it started:\n${log}`);
  });
  let timer: Timer | undefined;
  const tooLate = new Promise<Error>((resolve) => {
    timer = setTimeout(() => resolve(new Error(`the tracker did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
  });
  const gaveUp = Promise.race([exitedFirst, tooLate]);
  const started = logFile
    ? waitForLineInFile(logFile, isStartedLine, gaveUp)
    : child.stderr.waitFor(isStartedLine, "the tracker to start", START_TIMEOUT_MS);
  // Whichever comes first decides; an output that ended without the line waits for the exit code.
  const outcome = await Promise.race([
    started.then(
      (line) => ({ line }),
      () => gaveUp.then((error) => ({ error })),
    ),
    gaveUp.then((error) => ({ error })),
  ]);
  clearTimeout(timer);
  if ("error" in outcome) throw outcome.error;
  return parseRecord(outcome.line)!.url as string;
}

export interface TrackerOptions {
  /** The whole environment; PORT defaults to 0 and HOST to 127.0.0.1; LOG_FORMAT is always json. */
  env: Record<string, string | undefined>;
  command?: string[];
  cwd?: string;
  /** Default "lines": kept in memory for assertions. */
  stderr?: Output;
  stdout?: Output;
}

export interface StartedTracker {
  url: string;
  port: number;
  process: ChildProcess;
}

/** Starts the tracker and waits until it serves; stops it again if it does not. */
export async function startTracker(options: TrackerOptions): Promise<StartedTracker> {
  const stderr = options.stderr ?? "lines";
  const child = startProcess(options.command ?? trackerCommand(), {
    // JSON lines whatever the caller's environment says: "tracker started" is how it is seen to start.
    env: { PORT: "0", HOST: "127.0.0.1", ...options.env, LOG_FORMAT: "json" },
    cwd: options.cwd,
    stdout: options.stdout ?? "lines",
    stderr,
  });
  try {
    const url = await trackerStarted(child, typeof stderr === "object" ? stderr.file : undefined);
    const health = await fetch(`${url}/healthz`);
    await health.arrayBuffer();
    if (health.status !== 200) throw new Error(`${url}/healthz answered ${health.status}`);
    return { url, port: Number(new URL(url).port), process: child };
  } catch (error) {
    await child.stop("SIGKILL");
    throw error;
  }
}
