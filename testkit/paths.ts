// Where the things under test are.

import { existsSync } from "node:fs";
import { join } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const TRACKER_MAIN = join(ROOT, "tracker", "main.ts");
export const TRACKER_BINARY = join(ROOT, "dist", "task-tracker");
export const MCP_BINARY = join(ROOT, "dist", "task-tracking-mcp");

/** Throws a sentence saying how to build `binary` when it is missing. */
export function assertBuilt(binary: string): void {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run \`bun run build\` first`);
}
