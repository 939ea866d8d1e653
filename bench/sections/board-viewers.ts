// A process of its own that plays `count` people watching the board of one project: each opens it as
// the page does (the projects, the first page of each column), then reads the live stream GET /events.
// Run by boards.ts, so that reading 50 streams does not take the load generator's CPU.
// argv: <tracker url> <project> <count>; the API key comes in BENCH_API_KEY. Prints "ready" once every
// stream is open; on stdin's end it prints the number of events received and exits.
export {};

const [url, project, countText] = process.argv.slice(2) as [string, string, string];
const key = process.env.BENCH_API_KEY!;
const headers = { authorization: `Bearer ${key}` };

async function get(path: string): Promise<void> {
  const response = await fetch(url + path, { headers });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
  await response.arrayBuffer();
}

let events = 0;
const aborts: AbortController[] = [];

/** Resolves once the stream is open, with its reading (an async function would wait for the reading itself). */
async function openBoard(): Promise<{ reading: Promise<void> }> {
  await get("/projects");
  for (const filter of ["ready=true", "ready=false", "status=in_progress", "status=completed"]) {
    await get(`/tasks?project=${project}&${filter}&limit=50`);
  }
  const abort = new AbortController();
  aborts.push(abort);
  const response = await fetch(`${url}/events?project=${project}`, {
    headers: { ...headers, accept: "text/event-stream" },
    signal: abort.signal,
  });
  if (!response.ok || !response.body) throw new Error(`GET /events: ${response.status}`);
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body!) {
        const text = decoder.decode(chunk, { stream: true });
        for (let at = text.indexOf("event: task"); at !== -1; at = text.indexOf("event: task", at + 1)) events++;
      }
    } catch {
      // aborted at the end
    }
  })();
  return { reading };
}

const readers = await Promise.all(Array.from({ length: Number(countText) }, () => openBoard()));
process.stdout.write("ready\n");
for await (const _ of process.stdin) {
  // nothing comes; the end of stdin is the signal to stop
}
for (const abort of aborts) abort.abort();
await Promise.all(readers.map((board) => board.reading));
process.stdout.write(`${events}\n`);
process.exit(0);
