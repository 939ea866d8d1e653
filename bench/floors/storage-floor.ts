// REFERENCE, not our service: the least one ID allocation costs here. A bare Bun.serve whose handler
// runs one SQLite transaction that bumps a counter and stores the response under its Idempotency-Key,
// with the tracker's pragmas (tracker/storage/sqlite.ts; run.ts checks that the names still match): WAL, one
// process (EXCLUSIVE), synchronous NORMAL (FULL with TRACKER_SYNC=full), its cache and checkpoint sizes.
import { Database } from "bun:sqlite";

const db = new Database(process.env.FLOOR_DB!, { create: true, strict: true });
db.run("PRAGMA busy_timeout = 5000");
db.run("PRAGMA locking_mode = EXCLUSIVE");
db.run("PRAGMA journal_mode = WAL");
db.run(`PRAGMA synchronous = ${process.env.TRACKER_SYNC === "full" ? "FULL" : "NORMAL"}`);
db.run("PRAGMA foreign_keys = ON");
db.run("PRAGMA temp_store = MEMORY");
db.run("PRAGMA cache_size = -32768");
db.run("PRAGMA wal_autocheckpoint = 10000");
db.run(`PRAGMA journal_size_limit = ${64 * 1024 * 1024}`);
db.run("CREATE TABLE counters (project TEXT, type TEXT, last INTEGER NOT NULL, PRIMARY KEY (project, type)) WITHOUT ROWID");
db.run("CREATE TABLE responses (key TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID");
const bump = db.prepare<{ last: number }, [string, string]>(
  "INSERT INTO counters VALUES (?, ?, 1) ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last",
);
const store = db.prepare("INSERT INTO responses VALUES (?, ?)");
const allocate = db.transaction((project: string, type: string, key: string) => {
  const number = bump.get(project, type)!.last;
  const body = JSON.stringify({ next_id: `${type}-${String(number).padStart(3, "0")}`, number });
  store.run(key, body);
  return body;
}).immediate;

const headers = { "Content-Type": "application/json" };
Bun.serve({
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  development: false,
  fetch(request) {
    const url = new URL(request.url);
    if (url.pathname !== "/ids/next") return new Response("{}", { headers });
    const key = request.headers.get("idempotency-key") ?? crypto.randomUUID();
    return new Response(allocate(url.searchParams.get("project")!, url.searchParams.get("type")!, key), { headers });
  },
});
