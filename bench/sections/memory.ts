// 3. Memory: VmRSS of dist/task-tracking-mcp after start-up and after 10,000 tool calls (a leak
// shows as growth), beside the MCP floor's RSS after start-up.
import { join } from "node:path";
import type { Context } from "../lib/context.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { rssMb } from "../lib/proc.ts";
import { API_KEY, seedTasks, startTrackerProcess, TrackerHttp } from "../lib/tracker.ts";

export interface MemoryResult {
  startup_mb: number;
  /** After 2,000 calls: start-up allocations (JIT, pools) are done by then. */
  after_2000_mb: number;
  after_calls_mb: number;
  calls: number;
  growth_mb: number;
  growth_after_2000_mb: number;
  floor_startup_mb: number;
  /** The MCP floor after the same number of calls of its one tool: what the SDK and Bun grow by themselves. */
  floor_after_calls_mb: number;
  mix: string;
}

const CALLS = 10_000;
const LANES = 4;

async function settledRss(pid: number): Promise<number> {
  await Bun.sleep(300);
  return rssMb(pid);
}

export async function measureMemory(ctx: Context): Promise<MemoryResult> {
  const tracker = await startTrackerProcess();
  const http = new TrackerHttp(tracker.url);
  await seedTasks(http, "mem", "MEM", 0, 500);
  await http.addTasks(
    Array.from({ length: LANES }, (_, lane) => ({ task_id: `MEM-TOGGLE-${lane}`, project_id: "mem-toggle", description: "toggled" })),
  );
  const env = { ...process.env, TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: tracker.url };

  const floor = new StdioMcpClient([ctx.mcpFloorBinary], env);
  await floor.initialize();
  await floor.listTools();
  const floorStartup = await settledRss(floor.pid);
  let floorIssued = 0;
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (floorIssued++ < CALLS) await floor.callTool("noop", {});
    }),
  );
  const floorAfter = await settledRss(floor.pid);
  await floor.close();

  const mcp = new StdioMcpClient([ctx.mcpBinary], env, join(ctx.work, "mcp-memory.stderr.log"));
  await mcp.initialize();
  await mcp.listTools();
  const startup = await settledRss(mcp.pid);

  // Each lane cycles through all five tools; four lanes keep four calls in flight.
  let issued = 0;
  let after2000 = NaN;
  const lane = async (index: number) => {
    let toggles = 0;
    let added = 0;
    while (issued < CALLS) {
      const n = issued++;
      if (n === 2000) after2000 = rssMb(mcp.pid);
      switch (n % 5) {
        case 0:
          await mcp.callTool("get_next_task", { project_id: "mem" });
          break;
        case 1:
          await mcp.callTool("get_next_available_id", { artifact_type: "US", project_id: "mem" });
          break;
        case 2:
          await mcp.callTool("update_task_status", { task_id: `MEM-TOGGLE-${index}`, status: toggles++ % 2 === 0 ? "in_progress" : "pending" });
          break;
        case 3:
          await mcp.callTool("reserve_id_range", { artifact_type: "SPEC", count: 3, project_id: "mem" });
          break;
        default:
          await mcp.callTool("add_task", {
            tasks: [{ task_id: `MEM-ADD-${index}-${added++}`, project_id: "mem-add", description: "added by the memory benchmark" }],
          });
      }
    }
  };
  ctx.progress(`memory: ${CALLS} tool calls`);
  await Promise.all(Array.from({ length: LANES }, (_, index) => lane(index)));
  const after = await settledRss(mcp.pid);
  await mcp.close();
  await tracker.stop();
  return {
    startup_mb: startup,
    after_2000_mb: after2000,
    after_calls_mb: after,
    calls: CALLS,
    growth_mb: after - startup,
    growth_after_2000_mb: after - after2000,
    floor_startup_mb: floorStartup,
    floor_after_calls_mb: floorAfter,
    mix: `all five tools in turn, ${LANES} in flight`,
  };
}
