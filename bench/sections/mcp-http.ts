// 10. A tool call over the tracker's /mcp (MCP's Streamable HTTP, the server in the tracker's process) beside
// the same call through dist/task-tracking-mcp over stdio, and the same request sent straight to the tracker.
// Both MCP clients are raw JSON-RPC (no SDK Client): stdio lines, and fetch with keep-alive carrying the
// session's Mcp-Session-Id. Rounds alternate the paths; each figure is the median over rounds.
import { join } from "node:path";
import type { Context } from "../lib/context.ts";
import { sequential } from "../lib/load.ts";
import { PROTOCOL_VERSION, StdioMcpClient } from "../lib/mcp.ts";
import { medianOfRounds, type Percentiles, percentiles } from "../lib/stats.ts";
import { API_KEY, seedTasks, startTrackerProcess, TrackerHttp } from "../lib/tracker.ts";

export interface McpHttpPath {
  p50: number;
  p95: number;
  p99: number;
  samples: number;
}

export interface McpHttpResult {
  calls_per_round: number;
  rounds: number;
  /** Per tool: the paths `http_mcp` (/mcp), `stdio_mcp` (the binary) and `direct` (the REST request). */
  tools: Record<string, Record<"http_mcp" | "stdio_mcp" | "direct", McpHttpPath>>;
  tracker: string;
}

/** An MCP session on `<url>/mcp`, spoken to with fetch: initialize, then one POST per tool call. */
async function openHttpSession(url: string) {
  const headers: Record<string, string> = {
    authorization: `Bearer ${API_KEY}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  let id = 0;
  const post = async (method: string, params: unknown, notification = false) => {
    const message = notification ? { jsonrpc: "2.0", method, params } : { jsonrpc: "2.0", id: ++id, method, params };
    const response = await fetch(`${url}/mcp`, { method: "POST", headers, body: JSON.stringify(message) });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST /mcp ${method}: ${response.status} ${text.slice(0, 200)}`);
    return { response, body: notification ? undefined : JSON.parse(text) };
  };
  const clientInfo = { name: "bench", version: "0" };
  const { response } = await post("initialize", { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo });
  headers["mcp-session-id"] = response.headers.get("mcp-session-id")!;
  headers["mcp-protocol-version"] = PROTOCOL_VERSION;
  await post("notifications/initialized", {}, true);
  return {
    async callTool(name: string, args: Record<string, unknown>) {
      const { body } = await post("tools/call", { name, arguments: args });
      if (body.error || body.result?.isError) throw new Error(`${name} over /mcp: ${JSON.stringify(body).slice(0, 200)}`);
      return body.result;
    },
    close: () => fetch(`${url}/mcp`, { method: "DELETE", headers }).then((r) => r.arrayBuffer()),
  };
}

const summarize = (rounds: Percentiles[]): McpHttpPath => {
  const { p50, p95, p99, n } = medianOfRounds(rounds);
  return { p50, p95, p99, samples: n };
};

export async function measureMcpHttp(ctx: Context): Promise<McpHttpResult> {
  const rounds = ctx.quick ? 3 : 5;
  const perRound = ctx.quick ? 200 : 1000;
  const warmup = ctx.quick ? 100 : 300;

  const tracker = await startTrackerProcess();
  const http = new TrackerHttp(tracker.url);
  await seedTasks(http, "mh", "MH", 0, 1000);
  const env = { ...process.env, TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: tracker.url };
  const stdio = new StdioMcpClient([ctx.mcpBinary], env, join(ctx.work, "mcp-http-stdio.stderr.log"));
  await stdio.initialize();
  const overHttp = await openHttpSession(tracker.url);

  type Paths = Record<"http_mcp" | "stdio_mcp" | "direct", () => Promise<unknown>>;
  const tools: Record<string, Paths> = {
    get_next_task: {
      http_mcp: () => overHttp.callTool("get_next_task", { project_id: "mh" }),
      stdio_mcp: () => stdio.callTool("get_next_task", { project_id: "mh" }),
      direct: () => http.nextTask("mh"),
    },
    get_next_available_id: {
      http_mcp: () => overHttp.callTool("get_next_available_id", { artifact_type: "US", project_id: "mh" }),
      stdio_mcp: () => stdio.callTool("get_next_available_id", { artifact_type: "US", project_id: "mh" }),
      direct: () => http.nextId("US", "mh"),
    },
  };
  const samples: Record<string, Percentiles[]> = {};
  for (let round = 0; round < rounds; round++) {
    ctx.progress(`mcp-http: round ${round + 1}/${rounds}`);
    for (const [tool, paths] of Object.entries(tools)) {
      const names = Object.keys(paths) as (keyof Paths)[];
      // The order rotates, so no path always runs right after another.
      for (const path of [...names.slice(round % 3), ...names.slice(0, round % 3)]) {
        const latencies = await sequential(perRound, round === 0 ? warmup : 20, paths[path]);
        (samples[`${tool}/${path}`] ??= []).push(percentiles(latencies));
      }
    }
  }
  await overHttp.close();
  await stdio.close();
  await tracker.stop();

  const result: McpHttpResult = { calls_per_round: perRound, rounds, tools: {}, tracker: tracker.command };
  for (const tool of Object.keys(tools)) {
    result.tools[tool] = {
      http_mcp: summarize(samples[`${tool}/http_mcp`]!),
      stdio_mcp: summarize(samples[`${tool}/stdio_mcp`]!),
      direct: summarize(samples[`${tool}/direct`]!),
    };
  }
  return result;
}
