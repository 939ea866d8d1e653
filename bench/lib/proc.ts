// Child processes of the benchmark: servers on free loopback ports, their RSS, and clean-up.
import type { Subprocess } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

const children = new Set<Subprocess>();
const tempDirs = new Set<string>();

/** Every child this process started is killed, and every temp dir removed, however it ends. */
function cleanUp(): void {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
process.on("exit", cleanUp);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export function track<T extends Subprocess>(child: T): T {
  children.add(child);
  void child.exited.then(() => children.delete(child));
  return child;
}

/** A port that was free a moment ago (the server binds it right after). */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
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

/** Starts a server on a free port (PORT in its environment) and waits until `readyPath` answers 2xx. */
export async function startHttpServer(options: {
  name: string;
  cmd: string[];
  env?: Record<string, string>;
  readyPath?: string;
  timeoutMs?: number;
}): Promise<HttpServerProcess> {
  const port = freePort();
  const logDir = tempDir(`${options.name}-log`);
  const logFile = join(logDir, "stderr.log");
  const child = track(
    Bun.spawn(options.cmd, {
      cwd: ROOT,
      env: { ...process.env, ...options.env, PORT: String(port), HOST: "127.0.0.1" },
      stdin: "ignore",
      stdout: Bun.file(join(logDir, "stdout.log")),
      stderr: Bun.file(logFile),
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null) break;
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
  if (child.exitCode !== null || performance.now() > deadline) {
    child.kill("SIGKILL");
    await child.exited;
    const log = await Bun.file(logFile).text().catch(() => "");
    throw new Error(`${options.name} did not start (${options.cmd.join(" ")}): ${log.slice(-800)}`);
  }
  let stopping = false;
  void child.exited.then(async (code) => {
    if (stopping) return;
    const log = await Bun.file(logFile).text().catch(() => "");
    process.stderr.write(`\n${options.name} (pid ${child.pid}) exited unexpectedly with ${code}; its log ends:\n${log.slice(-1500)}\n`);
  });
  return {
    url,
    pid: child.pid,
    logFile,
    async stop() {
      stopping = true;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.exited;
      clearTimeout(killer);
      removeTempDir(logDir);
    },
  };
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
  const child = Bun.spawn(["bun", "build", entry, ...COMPILE_FLAGS, "--outfile", outfile], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if ((await child.exited) !== 0) {
    throw new Error(`bun build ${entry} failed: ${await new Response(child.stderr).text()}`);
  }
}

/** User + system CPU time of a process so far, in ms (/proc/<pid>/stat, 100 ticks a second). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
