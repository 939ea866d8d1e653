// REFERENCE, not our service: the least an HTTP request costs here. A bare Bun.serve answering a
// constant JSON body, on PORT at 127.0.0.1.
const body = JSON.stringify({ next_id: "US-001", artifact_type: "US", project_id: "bench", number: 1 });
const headers = { "Content-Type": "application/json" };
Bun.serve({
  port: Number(process.env.PORT),
  hostname: "127.0.0.1",
  development: false,
  fetch: () => new Response(body, { headers }),
});
