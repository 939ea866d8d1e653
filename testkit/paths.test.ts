// The compiled-binary tests' freshness check: a binary older than one of its sources is rebuilt.

import { afterAll, describe, expect, test } from "bun:test";
import { utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { newestSourceMtime, staleness } from "./paths.ts";
import { makeTempDir, removeTempDir } from "./temp.ts";

const dir = makeTempDir("paths-test");
afterAll(() => removeTempDir(dir));

function binaryModifiedAt(name: string, mtimeMs: number): string {
  const path = join(dir, name);
  writeFileSync(path, "");
  utimesSync(path, mtimeMs / 1000, mtimeMs / 1000);
  return path;
}

describe("staleness", () => {
  test("a missing binary is stale", () => {
    const path = join(dir, "never-built");
    expect(staleness(path)).toBe(`${path} is missing`);
  });

  test("a binary older than a source is stale", () => {
    const path = binaryModifiedAt("old", newestSourceMtime() - 60_000);
    expect(staleness(path)).toBe(`${path} is older than its sources`);
  });

  test("a binary newer than every source is current", () => {
    expect(staleness(binaryModifiedAt("new", newestSourceMtime() + 60_000))).toBeUndefined();
  });
});
