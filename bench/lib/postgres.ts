// The benchmark's PostgreSQL: the throw-away cluster of scripts/with-postgres.sh, a fresh database per use.
import { SQL } from "bun";

/** The PostgreSQL URL of scripts/with-postgres.sh (or BENCH_DATABASE_URL); never a production DATABASE_URL. */
export function benchPostgresUrl(): string | undefined {
  return process.env.BENCH_DATABASE_URL || process.env.TRACKER_TEST_DATABASE_URL || undefined;
}

/** Runs `use` on a new database `<prefix>_<stamp>` of the cluster at `url`, and drops it afterwards. */
export async function withFreshDatabase<T>(url: string, prefix: string, use: (databaseUrl: string) => Promise<T>): Promise<T> {
  const admin = new SQL(url);
  const database = `${prefix}_${Date.now().toString(36)}`;
  try {
    await admin.unsafe(`CREATE DATABASE ${database}`);
    const databaseUrl = new URL(url);
    databaseUrl.pathname = `/${database}`;
    return await use(databaseUrl.href);
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await admin.close();
  }
}
