// What every section of the benchmark shares.
import { join } from "node:path";
import { ROOT } from "./proc.ts";

export interface Context {
  quick: boolean;
  /** The compiled MCP floor (bench/floors/mcp-floor.ts), built in this run. */
  mcpFloorBinary: string;
  /** dist/task-tracking-mcp. */
  mcpBinary: string;
  /** A temp dir for this run. */
  work: string;
  /** Progress on stderr, so stdout stays the report. */
  progress(message: string): void;
}

export const FLOORS = {
  http: ["bun", join(ROOT, "bench/floors/http-floor.ts")],
  storage: ["bun", join(ROOT, "bench/floors/storage-floor.ts")],
  postgres: ["bun", join(ROOT, "bench/floors/postgres-floor.ts")],
};
