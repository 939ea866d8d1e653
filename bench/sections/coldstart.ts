// 2. Cold start: spawn → `initialize` answered → `tools/list` answered, for the compiled binary,
// `bun run index.ts`, the same server bundled for Node.js, and the MCP floor binary. The variants
// take turns within each repetition; figures are medians.
import { join } from "node:path";
import type { Context } from "../lib/context.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { ROOT } from "../lib/proc.ts";
import { median, spreadPercent } from "../lib/stats.ts";
import { API_KEY } from "../lib/tracker.ts";

export interface ColdStart {
  command: string;
  initialize_ms: number;
  tools_list_ms: number;
  /** (max - min) / median of the tools/list times, in percent. */
  spread: number;
  runs: number;
}

export interface ColdStartResult {
  variants: Record<string, ColdStart>;
  node_bundle: string;
}

async function oneStart(cmd: string[]): Promise<{ init: number; list: number }> {
  // The service need not exist: start-up talks to nobody until the first tool call.
  const env = { ...process.env, TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: "http://127.0.0.1:9" };
  const started = performance.now();
  const client = new StdioMcpClient(cmd, env);
  await client.initialize();
  const init = performance.now() - started;
  const tools = await client.listTools();
  const list = performance.now() - started;
  if (tools.length === 0) throw new Error(`${cmd.join(" ")} listed no tools`);
  await client.close();
  return { init, list };
}

export async function measureColdStart(ctx: Context): Promise<ColdStartResult> {
  const nodeBundle = join(ctx.work, "node", "task-tracking-mcp.mjs");
  const build = Bun.spawnSync(
    ["bun", "build", "bench/node-entry.ts", "--target=node", "--format=esm", "--minify", "--outfile", nodeBundle],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  if (build.exitCode !== 0) throw new Error(`bun build --target=node failed: ${build.stderr.toString()}`);

  const variants: Record<string, string[]> = {
    "compiled (dist/task-tracking-mcp)": [ctx.mcpBinary],
    "bun run index.ts": ["bun", "run", join(ROOT, "index.ts")],
    "node (bun build --target=node)": ["/usr/bin/node", nodeBundle],
    "MCP floor (compiled)": [ctx.mcpFloorBinary],
  };
  const repetitions = ctx.quick ? 5 : 15;
  const times: Record<string, { init: number[]; list: number[] }> = {};
  for (const cmd of Object.values(variants)) await oneStart(cmd); // page cache warm for every variant
  for (let i = 0; i < repetitions; i++) {
    ctx.progress(`cold start: repetition ${i + 1}/${repetitions}`);
    for (const [name, cmd] of Object.entries(variants)) {
      const { init, list } = await oneStart(cmd);
      (times[name] ??= { init: [], list: [] }).init.push(init);
      times[name]!.list.push(list);
    }
  }
  const result: ColdStartResult = {
    variants: {},
    node_bundle: "bun build bench/node-entry.ts --target=node --format=esm --minify",
  };
  for (const [name, cmd] of Object.entries(variants)) {
    const t = times[name]!;
    result.variants[name] = {
      command: cmd.map((part) => part.replace(ctx.work, "$TMP").replace(`${ROOT}/`, "")).join(" "),
      initialize_ms: median(t.init),
      tools_list_ms: median(t.list),
      spread: spreadPercent(t.list),
      runs: t.list.length,
    };
  }
  return result;
}
