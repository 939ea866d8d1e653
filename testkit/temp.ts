// Temporary directories and free ports.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerTempDir, unregisterTempDir } from "./registry.ts";

/** A new empty directory under the system's temp dir, removed by stopEverything() or at exit. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  registerTempDir(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  unregisterTempDir(dir);
}

/**
 * A port that was free a moment ago, for a program that cannot be told to take port 0 (the
 * benchmark's floors); the tracker is always started on port 0 instead.
 */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}
