// 1. Tool-call latency over stdio, per tool: through dist/task-tracking-mcp, the same requests sent
// directly over HTTP to the same tracker, and the floors. Rounds alternate the paths so drift hits
// them alike; each figure is the median over rounds.
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { type Context, FLOORS } from "../lib/context.ts";
import { sequential } from "../lib/load.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { cpuMs, startHttpServer, tempDir } from "../lib/proc.ts";
import { medianOfRounds, type Percentiles, percentiles, spreadPercent } from "../lib/stats.ts";
import { API_KEY, seedTasks, startTrackerProcess, TrackerHttp } from "../lib/tracker.ts";

export interface PathLatency {
  p50: number;
  p95: number;
  p99: number;
  /** Spread of the per-round p50s and p95s, in percent of their median. */
  spread_p50: number;
  spread_p95: number;
  samples: number;
  /** CPU time of the MCP server process per call, µs (MCP paths only). */
  server_cpu_us?: number;
}

export interface LatencyResult {
  calls_per_round: number;
  rounds: number;
  tools: Record<string, { mcp: PathLatency; http: PathLatency; overhead_p50: number; overhead_p95: number }>;
  mcp_floor: PathLatency;
  http_floor: PathLatency;
  storage_floor: PathLatency;
  /** get_next_task through the SDK Client (full run only), to show what that client adds. */
  sdk_client_get_next_task?: PathLatency;
  tracker: string;
}

function summarize(rounds: Percentiles[], cpu?: { ms: number; calls: number }): PathLatency {
  const { p50, p95, p99, n } = medianOfRounds(rounds);
  return {
    server_cpu_us: cpu ? (cpu.ms * 1000) / cpu.calls : undefined,
    p50,
    p95,
    p99,
    spread_p50: spreadPercent(rounds.map((r) => r.p50)),
    spread_p95: spreadPercent(rounds.map((r) => r.p95)),
    samples: n,
  };
}

type Call = (i: number) => Promise<unknown>;

export async function measureLatency(ctx: Context): Promise<LatencyResult> {
  const rounds = ctx.quick ? 3 : 5;
  const perRound = ctx.quick ? 200 : 1000;
  const warmup = ctx.quick ? 100 : 300;

  const tracker = await startTrackerProcess();
  const httpFloor = await startHttpServer({ name: "http-floor", cmd: FLOORS.http });
  const storageFloor = await startHttpServer({
    name: "storage-floor",
    cmd: FLOORS.storage,
    env: { FLOOR_DB: join(tempDir("storage-floor"), "floor.db") },
  });
  const http = new TrackerHttp(tracker.url);
  await seedTasks(http, "lat", "LAT", 0, 1000);
  await http.addTasks([
    { task_id: "LAT-TOGGLE-mcp", project_id: "lat-toggle", description: "toggled by update_task_status via MCP" },
    { task_id: "LAT-TOGGLE-http", project_id: "lat-toggle", description: "toggled by update_task_status via HTTP" },
  ]);

  const env = { ...process.env, TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: tracker.url };
  const mcp = new StdioMcpClient([ctx.mcpBinary], env, join(ctx.work, "mcp-latency.stderr.log"));
  await mcp.initialize();
  await mcp.listTools();
  const floor = new StdioMcpClient([ctx.mcpFloorBinary], env);
  await floor.initialize();
  await floor.listTools();

  // update_task_status moves its own task pending → in_progress → pending …; add_task adds one new task.
  const counters = { mcpToggle: 0, httpToggle: 0, mcpAdd: 0, httpAdd: 0 };
  const toggle = (n: number) => (n % 2 === 0 ? "in_progress" : "pending");
  const tools: Record<string, { mcp: Call; http: Call }> = {
    get_next_task: {
      mcp: () => mcp.callTool("get_next_task", { project_id: "lat" }),
      http: () => http.nextTask("lat"),
    },
    update_task_status: {
      mcp: () => mcp.callTool("update_task_status", { task_id: "LAT-TOGGLE-mcp", status: toggle(counters.mcpToggle++) }),
      http: () => http.updateStatus("LAT-TOGGLE-http", toggle(counters.httpToggle++)),
    },
    get_next_available_id: {
      mcp: () => mcp.callTool("get_next_available_id", { artifact_type: "US", project_id: "lat" }),
      http: () => http.nextId("US", "lat"),
    },
    reserve_id_range: {
      mcp: () => mcp.callTool("reserve_id_range", { artifact_type: "SPEC", count: 5, project_id: "lat" }),
      http: () => http.reserve("SPEC", 5, "lat"),
    },
    add_task: {
      mcp: () =>
        mcp.callTool("add_task", {
          tasks: [{ task_id: `LAT-ADD-mcp-${counters.mcpAdd++}`, project_id: "lat-add", description: "added by the benchmark" }],
        }),
      http: () =>
        http.addTasks([
          { task_id: `LAT-ADD-http-${counters.httpAdd++}`, project_id: "lat-add", description: "added by the benchmark" },
        ]),
    },
  };
  const floorHeaders = { authorization: `Bearer ${API_KEY}`, accept: "application/json" };
  const floorGet = (url: string, idempotent: boolean) => async () => {
    const headers: Record<string, string> = { ...floorHeaders, "x-request-id": crypto.randomUUID() };
    if (idempotent) headers["idempotency-key"] = crypto.randomUUID();
    const response = await fetch(url, { headers });
    const text = await response.text();
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return JSON.parse(text);
  };
  const floors: Record<string, Call> = {
    mcp_floor: () => floor.callTool("noop", {}),
    http_floor: floorGet(`${httpFloor.url}/ids/next?type=US&project=lat`, false),
    storage_floor: floorGet(`${storageFloor.url}/ids/next?type=US&project=lat`, true),
  };

  const samples: Record<string, Percentiles[]> = {};
  const cpu: Record<string, { ms: number; calls: number }> = {};
  const record = (name: string, latencies: Float64Array) => (samples[name] ??= []).push(percentiles(latencies));
  /** Runs a block of calls and adds the CPU time `pid` spent on it (warm-up calls included in both). */
  const withCpu = async (name: string, pid: number, calls: number, block: () => Promise<Float64Array>) => {
    const before = cpuMs(pid);
    const latencies = await block();
    const entry = (cpu[name] ??= { ms: 0, calls: 0 });
    entry.ms += cpuMs(pid) - before;
    entry.calls += calls;
    return latencies;
  };
  for (let round = 0; round < rounds; round++) {
    ctx.progress(`latency: round ${round + 1}/${rounds}`);
    const first = round === 0 ? warmup : 20;
    for (const [name, call] of Object.entries(floors)) {
      const block = () => sequential(perRound, first, call);
      record(name, name === "mcp_floor" ? await withCpu(name, floor.pid, perRound + first, block) : await block());
    }
    for (const [name, paths] of Object.entries(tools)) {
      // Which path goes first alternates, so neither always runs right after the other.
      const order = round % 2 === 0 ? (["mcp", "http"] as const) : (["http", "mcp"] as const);
      for (const path of order) {
        const block = () => sequential(perRound, first, paths[path]);
        record(`${name}/${path}`, path === "mcp" ? await withCpu(name, mcp.pid, perRound + first, block) : await block());
      }
    }
  }

  let sdkClient: PathLatency | undefined;
  if (!ctx.quick) {
    ctx.progress("latency: get_next_task through the SDK Client");
    const client = new Client({ name: "bench", version: "0.0.0" });
    await client.connect(
      new StdioClientTransport({ command: ctx.mcpBinary, env: env as Record<string, string>, stderr: "ignore" }),
    );
    await client.listTools(); // the SDK Client then checks every structuredContent against the outputSchema
    const sdkRounds: Percentiles[] = [];
    for (let round = 0; round < rounds; round++) {
      const latencies = await sequential(perRound, round === 0 ? warmup : 20, async () => {
        const result = await client.callTool({ name: "get_next_task", arguments: { project_id: "lat" } });
        if (result.isError) throw new Error("get_next_task failed through the SDK Client");
      });
      sdkRounds.push(percentiles(latencies));
    }
    await client.close();
    sdkClient = summarize(sdkRounds);
  }

  await Promise.all([mcp.close(), floor.close()]);
  await Promise.all([tracker.stop(), httpFloor.stop(), storageFloor.stop()]);

  const result: LatencyResult = {
    calls_per_round: perRound,
    rounds,
    tools: {},
    mcp_floor: summarize(samples.mcp_floor!, cpu.mcp_floor),
    http_floor: summarize(samples.http_floor!),
    storage_floor: summarize(samples.storage_floor!),
    sdk_client_get_next_task: sdkClient,
    tracker: tracker.command,
  };
  for (const name of Object.keys(tools)) {
    const viaMcp = summarize(samples[`${name}/mcp`]!, cpu[name]);
    const direct = summarize(samples[`${name}/http`]!);
    result.tools[name] = {
      mcp: viaMcp,
      http: direct,
      overhead_p50: viaMcp.p50 - direct.p50,
      overhead_p95: viaMcp.p95 - direct.p95,
    };
  }
  return result;
}
