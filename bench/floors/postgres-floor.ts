// REFERENCE, not our service: the least one ID allocation costs on PostgreSQL here. A bare Bun.serve
// whose handler runs one transaction that bumps a counter and stores the response under its
// Idempotency-Key, through Bun's SQL client with the tracker's default pool size (10), on the
// database FLOOR_DATABASE_URL names. One commit per allocation: what any durable allocation must pay.
import { SQL } from "bun";

const sql = new SQL({ url: process.env.FLOOR_DATABASE_URL!, max: 10 });
await sql`CREATE TABLE IF NOT EXISTS floor_counters (project text, type text, last bigint NOT NULL, PRIMARY KEY (project, type))`;
await sql`CREATE TABLE IF NOT EXISTS floor_responses (key text PRIMARY KEY, body text NOT NULL)`;

const headers = { "Content-Type": "application/json" };
Bun.serve({
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  development: false,
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname !== "/ids/next") return new Response("{}", { headers });
    const project = url.searchParams.get("project")!;
    const type = url.searchParams.get("type")!;
    const key = request.headers.get("idempotency-key") ?? crypto.randomUUID();
    const body = await sql.begin(async (tx) => {
      const [row] = await tx`INSERT INTO floor_counters VALUES (${project}, ${type}, 1)
        ON CONFLICT (project, type) DO UPDATE SET last = floor_counters.last + 1 RETURNING last`;
      const number = Number(row.last);
      const text = JSON.stringify({ next_id: `${type}-${String(number).padStart(3, "0")}`, number });
      await tx`INSERT INTO floor_responses VALUES (${key}, ${text})`;
      return text;
    });
    return new Response(body, { headers });
  },
});
