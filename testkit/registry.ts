// Everything a test file (or the benchmark) starts is stopped by stopEverything(), even after a
// failure; whatever is still running when the process exits is killed, and temp dirs are removed.

import { rmSync } from "node:fs";

export interface Stoppable {
  /** Stops it for good; called once by stopEverything(), and safe to call again. */
  stop(): Promise<unknown>;
  /** Last resort at process exit: must be synchronous. */
  killNow?(): void;
}

const running = new Set<Stoppable>();
const tempDirs = new Set<string>();

/** Registers `thing` until it is stopped; returns it. */
export function register<T extends Stoppable>(thing: T): T {
  running.add(thing);
  return thing;
}

export function unregister(thing: Stoppable): void {
  running.delete(thing);
}

/** Stops whatever is still running (processes, proxies) and removes temporary directories. */
export async function stopEverything(): Promise<void> {
  const things = [...running];
  running.clear();
  await Promise.allSettled(things.map((thing) => thing.stop()));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function registerTempDir(dir: string): void {
  tempDirs.add(dir);
}

export function unregisterTempDir(dir: string): void {
  tempDirs.delete(dir);
}

process.on("exit", () => {
  for (const thing of running) thing.killNow?.();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
