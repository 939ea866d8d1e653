// Where the things under test are, and the compiled binaries kept as new as their sources.

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const TRACKER_MAIN = join(ROOT, "tracker", "main.ts");
export const TRACKER_BINARY = join(ROOT, "dist", "task-tracker");
export const MCP_BINARY = join(ROOT, "dist", "task-tracking-mcp");

/** What `bun run build` compiles dist/'s binaries from (scripts/build.ts): a binary older than one is stale. */
const BINARY_SOURCES = ["*.ts", "package.json", "bun.lock", "scripts/build.ts", "tracker/**/*.ts", "tracker/board/*"];
const isTest = (file: string) => file.endsWith(".test.ts");

/** The newest modification time among the binaries' sources (tests left out: they are not compiled in). */
export function newestSourceMtime(): number {
  let newest = 0;
  for (const pattern of BINARY_SOURCES) {
    for (const file of new Bun.Glob(pattern).scanSync({ cwd: ROOT })) {
      if (!isTest(file)) newest = Math.max(newest, statSync(join(ROOT, file)).mtimeMs);
    }
  }
  return newest;
}

/** Why `binary` must be built again (missing, or older than a source), or undefined when it is current. */
export function staleness(binary: string): string | undefined {
  if (!existsSync(binary)) return `${binary} is missing`;
  if (statSync(binary).mtimeMs < newestSourceMtime()) return `${binary} is older than its sources`;
  return undefined;
}

// Checked once per test run: bun runs every test file in one process, so this module is loaded once,
// and the synchronous build leaves no second file a chance to ask while it runs.
const checked = new Set<string>();

/**
 * Makes sure `binary` is as new as its sources, running `bun run build` once when it is not, so that
 * no test passes against a stale binary. Throws a sentence saying how to build it when that fails.
 */
export function ensureBuilt(binary: string): void {
  if (checked.has(binary)) return;
  const reason = staleness(binary);
  if (reason) rebuild(binary, reason);
  checked.add(binary);
}

function rebuild(binary: string, reason: string): void {
  console.warn(`${reason}: running bun run build`);
  const build = Bun.spawnSync([process.execPath, "run", "scripts/build.ts"], { cwd: ROOT, stdin: "ignore" });
  if (build.exitCode !== 0 || staleness(binary)) {
    throw new Error(
      `${reason} and \`bun run build\` did not bring it up to date (exit ${build.exitCode}); run it yourself:\n` +
        `${build.stdout}${build.stderr}`,
    );
  }
}
