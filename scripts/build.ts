/**
 * `bun run build`: dist/task-tracking-mcp (the MCP server) and dist/task-tracker (the reference service)
 * for this machine. `bun run build:all`: the MCP server for every supported platform.
 * scripts/pack.ts compiles its npm packages with the same flags (compile, PLATFORMS).
 *
 * The MCP server is started by an MCP client inside the user's repository, which may not be trusted:
 * the binary must not pick up a .env or bunfig.toml from its working directory.
 */
import { renameSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { $ } from "bun";

export const PLATFORMS = ["linux-x64", "linux-arm64", "darwin-arm64", "darwin-x64", "windows-x64"] as const;
export type Platform = (typeof PLATFORMS)[number];
const FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];

const root = new URL("..", import.meta.url).pathname;

/**
 * Compiles `entry` into `outfile`. The binary is written beside it and renamed over it, so a test run
 * that rebuilds (testkit/paths.ts) never lets another process start a half-written binary, and two
 * builds at once leave one whole binary.
 */
export async function compile(entry: string, outfile: string, target?: Platform) {
  const targetFlag = target ? [`--target=bun-${target}`] : [];
  const started = performance.now();
  // Same directory and same extension (bun adds .exe to a Windows binary's name that lacks it).
  const partial = join(dirname(outfile), `.partial-${process.pid}-${basename(outfile)}`);
  await $`bun build ${entry} ${FLAGS} ${targetFlag} --outfile ${partial}`.cwd(root).quiet();
  renameSync(resolve(root, partial), resolve(root, outfile));
  console.log(`built ${outfile} in ${Math.round(performance.now() - started)} ms`);
}

if (import.meta.main) {
  process.chdir(root);
  if (process.argv.includes("--all")) {
    for (const platform of PLATFORMS) {
      await compile("index.ts", `dist/task-tracking-mcp-${platform}${platform.startsWith("windows") ? ".exe" : ""}`, platform);
    }
  } else {
    await compile("index.ts", "dist/task-tracking-mcp");
    if (await Bun.file("tracker/main.ts").exists()) await compile("tracker/main.ts", "dist/task-tracker");
  }
}
