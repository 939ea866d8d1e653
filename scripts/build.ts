/**
 * `bun run build`: dist/task-tracking-mcp (the MCP server) and dist/task-tracker (the reference service)
 * for this machine. `bun run build:all`: the MCP server for every supported platform.
 * scripts/pack.ts compiles its npm packages with the same flags (compile, PLATFORMS).
 *
 * The MCP server is started by an MCP client inside the user's repository, which may not be trusted:
 * the binary must not pick up a .env or bunfig.toml from its working directory.
 */
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

export async function compile(entry: string, outfile: string, target?: Platform) {
  const targetFlag = target ? [`--target=bun-${target}`] : [];
  const started = performance.now();
  await $`bun build ${entry} ${FLAGS} ${targetFlag} --outfile ${outfile}`.cwd(root).quiet();
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
