// The PostgreSQL target of the tracker's test suite. A plain `bun test` runs every tracker test on
// SQLite; this file runs them all again, in a child `bun test tracker/`, with
// TRACKER_TEST_STORAGE=postgres against TRACKER_TEST_DATABASE_URL (scripts/with-postgres.sh starts a
// throw-away PostgreSQL and sets it). One suite, two targets.
//
// Without a database the PostgreSQL target is skipped with a loud warning on a developer's
// machine, and fails in CI (CI=true): there, a missing database must never pass as green.

import { expect, test } from "bun:test";
import { join } from "node:path";

const insideChildRun = process.env.TRACKER_TEST_STORAGE === "postgres";
const databaseUrl = process.env.TRACKER_TEST_DATABASE_URL;
const inCi = process.env.CI === "true";
const repoRoot = join(import.meta.dir, "..");
/** As package.json's test script passes it: bunfig.toml's [test] timeout is not applied by bun 1.4. */
const TEST_TIMEOUT_MS = 30_000;

const MISSING =
  "TRACKER_TEST_DATABASE_URL is not set, so the tracker suite did NOT run on PostgreSQL. " +
  "Run it with: bash scripts/with-postgres.sh bun test tracker/";

if (insideChildRun) {
  // This file is what started the child run; it has nothing to add there.
} else if (!databaseUrl && inCi) {
  test("the tracker suite runs on PostgreSQL in CI", () => {
    throw new Error(`CI=true but ${MISSING}`);
  });
} else if (!databaseUrl) {
  console.warn(`\n*** WARNING: ${MISSING} ***\n`);
  test.skip(`the tracker suite on PostgreSQL (SKIPPED: ${MISSING})`, () => {});
} else {
  test(
    "the whole tracker suite passes on PostgreSQL",
    async () => {
      const child = Bun.spawn([process.execPath, "test", "--timeout", String(TEST_TIMEOUT_MS), "./tracker/"], {
        cwd: repoRoot,
        env: { ...process.env, TRACKER_TEST_STORAGE: "postgres" },
        stdin: "ignore",
        stdout: "inherit",
        stderr: "inherit",
      });
      expect(await child.exited).toBe(0);
    },
    { timeout: 20 * 60_000 },
  );
}
