// GET /events: the live stream (Server-Sent Events) over a real connection to a tracker on port 0.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { OTHER_API_KEY, startTestTracker, TEST_API_KEY, type TestTracker, taskInput as task } from "../testing.ts";

let t: TestTracker;
/** Subscriptions the storage holds right now: the stream must give its own back. */
let subscribed = 0;
let onUnsubscribe: () => void = () => {};

beforeEach(async () => {
  t = await startTestTracker({ keepAliveMs: 20 });
  const subscribe = t.storage.subscribe.bind(t.storage);
  subscribed = 0;
  t.storage.subscribe = (listener) => {
    subscribed++;
    const unsubscribe = subscribe(listener);
    return () => {
      subscribed--;
      unsubscribe();
      onUnsubscribe();
    };
  };
});
afterEach(async () => {
  await t.stop();
});

/** An open stream: what arrived so far, and a wait for more. */
class Viewer {
  text = "";
  readonly status: number;
  readonly contentType: string | null;
  private waiters: Array<() => void> = [];
  readonly ended: Promise<void>;
  constructor(
    response: Response,
    readonly abort: AbortController,
  ) {
    this.status = response.status;
    this.contentType = response.headers.get("content-type");
    this.ended = this.pump(response.body!).catch(() => {});
  }
  private async pump(body: ReadableStream<Uint8Array>) {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        this.text += decoder.decode(chunk, { stream: true });
        for (const wake of this.waiters.splice(0)) wake();
      }
    } finally {
      for (const wake of this.waiters.splice(0)) wake();
    }
  }
  async waitFor(predicate: (text: string) => boolean): Promise<void> {
    while (!predicate(this.text)) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  /** The `event: task` messages so far, parsed. */
  messages(): Array<{ id: string; data: any }> {
    return this.text
      .split("\n\n")
      .filter((block) => block.startsWith("event: task\n"))
      .map((block) => {
        const fields = Object.fromEntries(
          block.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
        );
        return { id: fields.id!, data: JSON.parse(fields.data!) };
      });
  }
}

/** Resolves once the open streams have given their subscriptions back down to `count`. */
async function unsubscribedDownTo(count: number): Promise<void> {
  while (subscribed > count) await new Promise<void>((resolve) => (onUnsubscribe = resolve));
}

async function openViewer(path = "/events"): Promise<Viewer> {
  const abort = new AbortController();
  const response = await fetch(t.url + path, { headers: { Authorization: `Bearer ${TEST_API_KEY}` }, signal: abort.signal });
  const viewer = new Viewer(response, abort);
  await viewer.waitFor((text) => text.includes(": connected\n\n"));
  return viewer;
}

describe("GET /events", () => {
  test("sends each change as `event: task` with its event_id and the task after it", async () => {
    const viewer = await openViewer();
    expect([viewer.status, viewer.contentType]).toEqual([200, "text/event-stream"]);
    await t.request("POST", "/tasks/batch", { body: { tasks: [task("T-1")] } });
    await t.request("PUT", "/tasks/T-1/status", { body: { status: "in_progress" }, headers: { "X-Agent-Id": "agent-a" } });
    await viewer.waitFor(() => viewer.messages().length === 2);
    const [created, claimed] = viewer.messages();
    const history = (await t.request("GET", "/tasks/T-1/events")).body.events;
    // GET /tasks/<id> adds every note; the stream carries the task object of a list.
    const { notes: _, ...claimedTask } = (await t.request("GET", "/tasks/T-1")).body.task;
    expect(claimed).toEqual({ id: String(history[1].event_id), data: { event: history[1], task: claimedTask } });
    expect(created!.data.event).toEqual(history[0]);
  });

  test("with ?project= sends the changes of that project only", async () => {
    const viewer = await openViewer("/events?project=web");
    await t.request("POST", "/tasks/batch", { body: { tasks: [task("API-1", { project_id: "api" })] } });
    await t.request("POST", "/tasks/batch", { body: { tasks: [task("WEB-1", { project_id: "web" })] } });
    await viewer.waitFor(() => viewer.messages().length === 1);
    expect(viewer.messages().map((message) => message.data.task.task_id)).toEqual(["WEB-1"]);
  });

  test("with ?view=tasks sends each task changed in a batch once, as it is now, in one `event: tasks` (the board's view)", async () => {
    const viewer = await openViewer("/events?view=tasks&project=web");
    // One request: both changes are in the same 100 ms batch.
    await t.request("POST", "/tasks/batch", {
      body: { tasks: [task("WEB-1", { project_id: "web" }), task("WEB-2", { project_id: "web" })] },
    });
    await t.request("PUT", "/tasks/WEB-1/status?project=web", {
      body: { status: "in_progress" },
      headers: { "X-Agent-Id": "agent-a" },
    });
    await viewer.waitFor((text) => text.includes('"status":"in_progress"'));
    const batches = viewer.text.split("\n\n").filter((block) => block.startsWith("event: tasks\n"));
    const tasks = batches.flatMap((block) => JSON.parse(block.slice(block.indexOf("data: ") + 6)).tasks);
    const last = tasks.filter((t: { task_id: string }) => t.task_id === "WEB-1").at(-1);
    const { notes: _, ...now } = (await t.request("GET", "/tasks/WEB-1?project=web")).body.task;
    expect(last).toEqual(now);
    expect(viewer.messages()).toEqual([]);
    const wrong = await t.request("GET", "/events?view=changes");
    expect([wrong.status, wrong.body.code, wrong.body.error]).toEqual([
      400,
      "validation_failed",
      expect.stringContaining("view"),
    ]);
  });

  test("sends a keep-alive comment between changes", async () => {
    const viewer = await openViewer();
    await viewer.waitFor((text) => text.includes(": keep-alive\n\n"));
  });

  test("needs the key, like every endpoint", async () => {
    const response = await t.request("GET", "/events", { apiKey: null });
    expect([response.status, response.body]).toEqual([401, { error: "Unauthorized", code: "unauthorized" }]);
    expect((await t.request("GET", "/events?project=a%20b")).status).toBe(400);
  });

  test("gives its subscription back when the client disconnects", async () => {
    const viewer = await openViewer();
    expect(subscribed).toBe(1);
    const released = new Promise<void>((resolve) => (onUnsubscribe = resolve));
    viewer.abort.abort();
    await viewer.ended;
    // The server notices the hang-up at once or on its next write (a keep-alive, 20 ms here).
    await released;
    expect(subscribed).toBe(0);
  });

  test("ends the stream of a viewer that stops reading, rather than buffering without end, telling it to reload", async () => {
    const socket = await new Promise<ReturnType<typeof connect>>((resolve) => {
      const opened = connect(Number(new URL(t.url).port), "127.0.0.1", () => resolve(opened));
    });
    socket.write(`GET /events HTTP/1.1\r\nHost: tracker\r\nAuthorization: Bearer ${TEST_API_KEY}\r\n\r\n`);
    socket.pause();
    await t.waitForLog("request");
    const closed = "closed a live stream whose client reads too slowly";
    // About 0.9 MB of events a batch; the socket's own buffers take a few before the stream fills.
    for (let batch = 0; batch < 100 && !t.logText().includes(closed); batch++) {
      const tasks = Array.from({ length: 100 }, (_, i) => task(`B${batch}-${i}`, { description: "x".repeat(9000) }));
      expect((await t.request("POST", "/tasks/batch", { body: { tasks } })).status).toBe(201);
    }
    expect(t.logText()).toContain(closed);
    expect(subscribed).toBe(0);
    // Reading again, the viewer gets what was queued for it, then `reload`.
    let received = "";
    const told = new Promise<void>((resolve) =>
      socket.on("data", (data) => {
        received += data.toString();
        if (received.includes("event: reload\ndata: ")) resolve();
      }),
    );
    socket.resume();
    await told;
    socket.destroy();
  });

  test("one key holds 20 streams at most: the 21st is 429 with Retry-After and a sentence; another key is served", async () => {
    const viewers = await Promise.all(Array.from({ length: 20 }, () => openViewer()));
    const refused = await t.request("GET", "/events");
    expect([refused.status, refused.headers.get("retry-after"), refused.body]).toEqual([
      429,
      "30",
      {
        error: "This API key has 20 live streams (GET /events) open already, the most at once; close one first",
        code: "too_many_requests",
      },
    ]);
    const other = await fetch(`${t.url}/events`, { headers: { Authorization: `Bearer ${OTHER_API_KEY}` } });
    expect(other.status).toBe(200);
    await other.body!.cancel();
    await unsubscribedDownTo(20);
    viewers[0]!.abort.abort();
    await unsubscribedDownTo(19);
    const again = await openViewer();
    expect(again.status).toBe(200);
    for (const viewer of [...viewers, again]) viewer.abort.abort();
  });

  test("does not keep stop() from finishing, and ends the stream", async () => {
    const slow = await startTestTracker({ shutdownGraceMs: 60_000 });
    const response = await fetch(`${slow.url}/events`, { headers: { Authorization: `Bearer ${TEST_API_KEY}` } });
    const viewer = new Viewer(response, new AbortController());
    await viewer.waitFor((text) => text.includes(": connected"));
    await slow.stop();
    await viewer.ended;
    expect(slow.logText()).not.toContain("requests still open at the shutdown deadline");
  });
});
