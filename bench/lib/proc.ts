// Child processes of the benchmark: servers on free loopback ports, their RSS and CPU time. Spawning,
// temp dirs and clean-up are the test kit's (testkit/): whatever is left running at exit is killed.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../testkit/paths.ts";
import { type ChildProcess, runProcess, startProcess } from "../../testkit/processes.ts";
import { freePort, makeTempDir, removeTempDir } from "../../testkit/temp.ts";

export { freePort, ROOT, removeTempDir };

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));

export function tempDir(prefix: string): string {
  return makeTempDir(`bench-${prefix}-`);
}

/** VmRSS of a process, in MB (1 MB = 1024 KiB as /proc counts it). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

export interface HttpServerProcess {
  url: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

/** A server's stderr and stdout go to files in a temp dir of its own (a pipe would cost the load generator). */
export function serverLogs(name: string): { dir: string; stdout: string; stderr: string } {
  const dir = tempDir(`${name}-log`);
  return { dir, stdout: join(dir, "stdout.log"), stderr: join(dir, "stderr.log") };
}

/** Says so on stderr when a server ends before the benchmark stopped it; returns its stop(). */
export function stopWhenDone(name: string, child: ChildProcess, logs: { dir: string; stderr: string }): () => Promise<void> {
  let stopping = false;
  void child.exited.then(async (code) => {
    if (stopping) return;
    const log = await Bun.file(logs.stderr)
      .text()
      .catch(() => "");
    process.stderr.write(`\n${name} (pid ${child.pid}) exited unexpectedly with ${code}; its log ends:\n${log.slice(-1500)}\n`);
  });
  return async () => {
    stopping = true;
    await child.stop("SIGTERM", 5000);
    removeTempDir(logs.dir);
  };
}

/**
 * Starts a floor (a reference server that takes PORT and logs nothing) on a free port and waits
 * until `readyPath` answers 2xx. The tracker tells its own URL instead: see tracker.ts.
 */
export async function startHttpServer(options: {
  name: string;
  cmd: string[];
  env?: Record<string, string>;
  readyPath?: string;
  timeoutMs?: number;
}): Promise<HttpServerProcess> {
  const port = freePort();
  const logs = serverLogs(options.name);
  const child = startProcess(options.cmd, {
    cwd: ROOT,
    env: { ...process.env, ...options.env, PORT: String(port), HOST: "127.0.0.1" },
    stdout: { file: logs.stdout },
    stderr: { file: logs.stderr },
  });
  let exited = false;
  void child.exited.then(() => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (exited) break;
    try {
      const response = await fetch(url + (options.readyPath ?? "/"), { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) break;
    await Bun.sleep(20);
  }
  if (exited || performance.now() > deadline) {
    await child.stop("SIGKILL");
    const log = await Bun.file(logs.stderr)
      .text()
      .catch(() => "");
    removeTempDir(logs.dir);
    throw new Error(`${options.name} did not start (${options.cmd.join(" ")}): ${log.slice(-800)}`);
  }
  return { url, pid: child.pid, logFile: logs.stderr, stop: stopWhenDone(options.name, child, logs) };
}

/** `bun build --compile` with the flags of scripts/build.ts, so a floor is built exactly like ours. */
export const COMPILE_FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];

export async function compile(entry: string, outfile: string): Promise<void> {
  const build = await runProcess(["bun", "build", entry, ...COMPILE_FLAGS, "--outfile", outfile], {
    cwd: ROOT,
    env: process.env,
  });
  if (build.code !== 0) throw new Error(`bun build ${entry} failed: ${build.stderr}`);
}

/** User + system CPU time of a process so far, in ms (/proc/<pid>/stat, 100 ticks a second). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
