// 3. Memory: VmRSS of dist/task-tracking-mcp after start-up and after 10,000 tool calls, then after
// 10,000 more (a leak shows as growth that goes on), beside the MCP floor run the same way. "Settled"
// figures are read after SETTLE_MS without calls, longer than the server's idle collection delay
// (index.ts, IDLE_COLLECTION_MS), so they show what the process keeps, not garbage not yet collected.
import { join } from "node:path";
import type { Context } from "../lib/context.ts";
import { StdioMcpClient } from "../lib/mcp.ts";
import { rssMb } from "../lib/proc.ts";
import { API_KEY, seedTasks, startTrackerProcess, TrackerHttp } from "../lib/tracker.ts";

export interface RssRun {
  startup_mb: number;
  /** Right after the 10,000th call, before any idle time. */
  loaded_mb: number;
  settled_mb: number;
  /** Settled after 10,000 more calls. */
  settled_twice_mb: number;
}

export interface MemoryResult {
  calls: number;
  ours: RssRun;
  floor: RssRun;
  /** settled − start-up: what 10,000 calls leave behind (JIT warm-up, pools, any leak). */
  growth_mb: number;
  /** The second 10,000 calls: a leak keeps growing here, warm-up does not. */
  leak_check_mb: number;
  floor_growth_mb: number;
  floor_leak_check_mb: number;
  mix: string;
}

const CALLS = 10_000;
const LANES = 4;
const SETTLE_MS = 1500;

async function settledRss(pid: number): Promise<number> {
  await Bun.sleep(SETTLE_MS);
  return rssMb(pid);
}

/** Start-up, CALLS calls (loaded, settled), CALLS more (settled), with LANES calls in flight. */
async function measure(client: StdioMcpClient, call: (lane: number) => Promise<unknown>): Promise<RssRun> {
  await client.initialize();
  await client.listTools();
  const startup = await settledRss(client.pid);
  let issued = 0;
  const calls = (upTo: number) =>
    Promise.all(
      Array.from({ length: LANES }, async (_, lane) => {
        while (issued < upTo) {
          issued++;
          await call(lane);
        }
      }),
    );
  await calls(CALLS);
  const loaded = rssMb(client.pid);
  const settled = await settledRss(client.pid);
  await calls(2 * CALLS);
  const settledTwice = await settledRss(client.pid);
  await client.close();
  return { startup_mb: startup, loaded_mb: loaded, settled_mb: settled, settled_twice_mb: settledTwice };
}

export async function measureMemory(ctx: Context): Promise<MemoryResult> {
  const tracker = await startTrackerProcess();
  const http = new TrackerHttp(tracker.url);
  await seedTasks(http, "mem", "MEM", 0, 500);
  await http.addTasks(
    Array.from({ length: LANES }, (_, lane) => ({
      task_id: `MEM-TOGGLE-${lane}`,
      project_id: "mem-toggle",
      description: "toggled",
    })),
  );
  const env = { ...process.env, TASK_TRACKING_API_KEY: API_KEY, TASK_TRACKING_URL: tracker.url };

  ctx.progress(`memory: the MCP floor, 2 × ${CALLS} calls`);
  const floorClient = new StdioMcpClient([ctx.mcpFloorBinary], env);
  const floor = await measure(floorClient, () => floorClient.callTool("noop", {}));

  // Each lane cycles through all five tools.
  ctx.progress(`memory: dist/task-tracking-mcp, 2 × ${CALLS} calls`);
  const mcp = new StdioMcpClient([ctx.mcpBinary], env, join(ctx.work, "mcp-memory.stderr.log"));
  const turns = Array.from({ length: LANES }, () => ({ n: 0, toggles: 0, added: 0 }));
  const ours = await measure(mcp, (lane) => {
    const turn = turns[lane]!;
    switch (turn.n++ % 5) {
      case 0:
        return mcp.callTool("get_next_task", { project_id: "mem" });
      case 1:
        return mcp.callTool("get_next_available_id", { artifact_type: "US", project_id: "mem" });
      case 2:
        return mcp.callTool("update_task_status", {
          task_id: `MEM-TOGGLE-${lane}`,
          status: turn.toggles++ % 2 === 0 ? "in_progress" : "pending",
        });
      case 3:
        return mcp.callTool("reserve_id_range", { artifact_type: "SPEC", count: 3, project_id: "mem" });
      default:
        return mcp.callTool("add_task", {
          tasks: [
            { task_id: `MEM-ADD-${lane}-${turn.added++}`, project_id: "mem-add", description: "added by the memory benchmark" },
          ],
        });
    }
  });
  await tracker.stop();
  return {
    calls: CALLS,
    ours,
    floor,
    growth_mb: ours.settled_mb - ours.startup_mb,
    leak_check_mb: ours.settled_twice_mb - ours.settled_mb,
    floor_growth_mb: floor.settled_mb - floor.startup_mb,
    floor_leak_check_mb: floor.settled_twice_mb - floor.settled_mb,
    mix: `all five tools in turn, ${LANES} in flight; settled = after ${SETTLE_MS / 1000} s without calls`,
  };
}
