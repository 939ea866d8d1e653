// A process of its own that plays `count` people watching the board of one project: each opens it as
// the page does (the projects, the first page of each column), then reads the live stream as the
// page does, GET /events?view=tasks (each changed task once per batch), counting the task updates.
// Run by boards.ts, so that reading 50 streams does not take the load generator's CPU.
// argv: <tracker url> <project> <count>; the viewers' API keys, one per board, come in BENCH_API_KEYS. Prints "ready" once every
// stream is open; on stdin's end it prints the number of events received and exits.
export {};

const [url, project, countText] = process.argv.slice(2) as [string, string, string];
const keys = process.env.BENCH_API_KEYS!.split(",");

async function get(path: string, headers: Record<string, string>): Promise<void> {
  const response = await fetch(url + path, { headers });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
  await response.arrayBuffer();
}

const TASK_KEY = '"task_id":';
/** The task updates the boards received (a task changed twice within a batch counts once). */
let events = 0;
/** Streams that fell behind: the tracker said `reload`, and the board loaded the page again. */
let reloads = 0;
let stopping = false;
const aborts = new Set<AbortController>();

/**
 * Opens the board as the page does and resolves once its stream is open, with its reading (an async
 * function would wait for the reading itself). Told to reload, the board does so, as the page would.
 */
async function openBoard(key: string): Promise<{ reading: Promise<void> }> {
  const headers = { authorization: `Bearer ${key}` };
  await get("/projects", headers);
  for (const filter of ["ready=true", "ready=false", "status=in_progress", "status=completed"]) {
    await get(`/tasks?project=${project}&${filter}&limit=50`, headers);
  }
  if (stopping) return { reading: Promise.resolve() };
  const abort = new AbortController();
  aborts.add(abort);
  const response = await fetch(`${url}/events?view=tasks&project=${project}`, {
    headers: { ...headers, accept: "text/event-stream" },
    signal: abort.signal,
  });
  if (!response.ok || !response.body) throw new Error(`GET /events: ${response.status}`);
  const reading = (async () => {
    const decoder = new TextDecoder();
    let told = false;
    // A batch's tasks, each an object with one "task_id" key; a chunk may cut one, so the cut end waits.
    let tail = "";
    try {
      for await (const chunk of response.body!) {
        const text = tail + decoder.decode(chunk, { stream: true });
        for (let at = text.indexOf(TASK_KEY); at !== -1; at = text.indexOf(TASK_KEY, at + 1)) events++;
        if (text.includes("event: reload")) told = true;
        tail = text.slice(-(TASK_KEY.length - 1));
      }
    } catch {
      // aborted at the end
    }
    aborts.delete(abort);
    if (!told || stopping) return;
    reloads++;
    await (await openBoard(key)).reading.catch(() => {});
  })();
  return { reading };
}

const readers = await Promise.all(Array.from({ length: Number(countText) }, (_, i) => openBoard(keys[i % keys.length]!)));
process.stdout.write("ready\n");
for await (const _ of process.stdin) {
  // nothing comes; the end of stdin is the signal to stop
}
stopping = true;
for (const abort of aborts) abort.abort();
await Promise.all(readers.map((board) => board.reading));
process.stdout.write(`${events} ${reloads}\n`);
process.exit(0);
