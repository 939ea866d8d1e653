// The one way the kit starts a child process: its output read into Lines (or written to a file),
// its exit code, and a stop that always ends it. node:child_process, because its 'data' events are
// the leanest way to read a child's stdout measured here (bench/run.ts prints it with the results).

import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { constants } from "node:os";
import { Lines, readInto } from "./lines.ts";
import { register, unregister } from "./registry.ts";

/** Where a child's stdout or stderr goes: into Lines (kept, or only passed on), nowhere, or a file. */
export type Output = "lines" | "lines-unkept" | "ignore" | { file: string };

export interface ProcessOptions {
  env: Record<string, string | undefined>;
  cwd?: string;
  /** "pipe" keeps stdin open for write(); { text } is written and stdin closed; default "ignore". */
  stdin?: "pipe" | "ignore" | { text: string };
  stdout?: Output;
  stderr?: Output;
}

export interface ChildProcess {
  pid: number;
  /** The output as lines; empty, and ended at once, when it went elsewhere. */
  stdout: Lines;
  stderr: Lines;
  /** The exit code; 128 + the signal's number when a signal ended it (as Bun and shells report it). */
  exited: Promise<number>;
  /** The signal that ended it (e.g. "SIGKILL"), once it has exited by one. */
  readonly signalCode: string | null;
  write(bytes: string | Uint8Array): void;
  /** Closes stdin. */
  endInput(): void;
  /** Sends a signal. */
  kill(signal?: NodeJS.Signals | number): void;
  /**
   * SIGTERM (or `signal`; null sends none, for a child already told to end), SIGKILL after graceMs,
   * then the exit code once its output has ended too.
   */
  stop(signal?: NodeJS.Signals | null, graceMs?: number): Promise<number>;
}

function stdio(output: Output | undefined): "pipe" | "ignore" | number {
  if (output === undefined || output === "ignore") return "ignore";
  if (typeof output === "object") return openSync(output.file, "a");
  return "pipe";
}

export function startProcess(cmd: string[], options: ProcessOptions): ChildProcess {
  const stdinMode = options.stdin ?? "ignore";
  const fds = [stdio(options.stdout), stdio(options.stderr)];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    cwd: options.cwd,
    env: options.env,
    stdio: [stdinMode === "ignore" ? "ignore" : "pipe", fds[0]!, fds[1]!],
  });
  for (const fd of fds) if (typeof fd === "number") closeSync(fd);
  const stdout = new Lines({ keep: options.stdout !== "lines-unkept" });
  const stderr = new Lines({ keep: options.stderr !== "lines-unkept" });
  if (child.stdout) readInto(child.stdout, stdout);
  else stdout.end();
  if (child.stderr) readInto(child.stderr, stderr);
  else stderr.end();
  child.stdin?.on("error", () => {}); // a child that exits early: what was left to write is moot
  if (typeof stdinMode === "object") child.stdin!.end(stdinMode.text);

  const exited = new Promise<number>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    child.once("error", (error) => {
      stderr.push(`${cmd[0]} could not be started: ${error.message}\n`);
      resolve(127);
    });
  });
  const handle = {
    stop: () => stop(),
    killNow: () => void child.kill("SIGKILL"),
  };
  let stopping: Promise<number> | undefined;
  const stop = (signal: NodeJS.Signals | null = "SIGTERM", graceMs = 5_000) => {
    stopping ??= (async () => {
      if (signal && child.exitCode === null && child.signalCode === null) child.kill(signal);
      const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(killer);
      await Promise.all([stdout.whenEnded(), stderr.whenEnded()]);
      unregister(handle);
      return code;
    })();
    return stopping;
  };
  register(handle);
  void exited.then(() => unregister(handle));

  return {
    pid: child.pid ?? -1,
    stdout,
    stderr,
    exited,
    get signalCode() {
      return child.signalCode;
    },
    write(bytes) {
      child.stdin!.write(bytes);
    },
    endInput() {
      child.stdin?.end();
    },
    kill(signal = "SIGTERM") {
      child.kill(signal);
    },
    stop,
  };
}

/** Runs a command to its end: its exit code and all it wrote. */
export async function runProcess(
  cmd: string[],
  options: ProcessOptions,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = startProcess(cmd, { stdout: "lines", stderr: "lines", ...options });
  const code = await child.exited;
  await Promise.all([child.stdout.whenEnded(), child.stderr.whenEnded()]);
  return { code, stdout: child.stdout.text(), stderr: child.stderr.text() };
}
