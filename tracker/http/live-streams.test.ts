// The bounds of the live streams (live-streams.ts) with the clock, the keep-alive ticks and the
// flushes in the test's hands: a stream whose client takes nothing for two minutes ends, one that
// reads does not, every stream ends at an hour, and one key holds 20 at most; the changes of a flush
// period go out in one chunk, serialized once per batch, the streams spread over the period; a
// stream that falls behind is told to reload and closed. GET /events over HTTP: events.test.ts.

import { describe, expect, test } from "bun:test";
import { RetryLater, type TaskChange } from "../domain.ts";
import { createLogger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";
import { FLUSH_MS, IDLE_MS, LiveStreams, MAX_STREAM_AGE_MS } from "./live-streams.ts";

/** Live streams whose ticks, clock and flushes the test drives, on a storage whose changes it makes. */
function drivenStreams(options: { maxUnreadBytes?: number } = {}) {
  const ticks = new Set<() => void>();
  let now = Date.parse("2026-12-06T08:00:00Z");
  let log = "";
  /** The flushes asked for, with their delay; and the turns of a flush still to come. */
  const flushes: Array<{ run: () => void; ms: number }> = [];
  const turns: Array<() => void> = [];
  const streams = new LiveStreams({
    ...options,
    now: () => now,
    every: (run) => {
      ticks.add(run);
      return () => ticks.delete(run);
    },
    after: (run, ms) => flushes.push({ run, ms }),
    soon: (run) => turns.push(run),
  });
  const listeners = new Set<(change: TaskChange) => void>();
  const storage = {
    subscribe(listener: (change: TaskChange) => void) {
      const subscription = (change: TaskChange) => listener(change);
      listeners.add(subscription);
      return () => listeners.delete(subscription);
    },
  } as unknown as Storage;
  const logger = createLogger("debug", (text) => (log += text));
  return {
    streams,
    flushes,
    turns,
    listeners,
    open: (
      key = "key-a",
      projectId: string | null = null,
      projects: readonly string[] | null = null,
      view: "history" | "tasks" = "history",
    ) => streams.open({ storage, logger, projectId, projects, signal: new AbortController().signal, key, view }),
    /** The storage commits these changes: every subscriber hears them. */
    commit(...changes: TaskChange[]) {
      for (const change of changes) for (const listener of [...listeners]) listener(change);
    },
    /** Runs the first timer due in `ms` (a flush, or the next stream of one) and takes it off. */
    run(ms: number) {
      const at = flushes.findIndex((flush) => flush.ms === ms);
      expect(at).not.toBe(-1);
      flushes.splice(at, 1)[0]!.run();
    },
    /** Runs the flush that is due, and the rest of it: every timer and turn it leaves, until none is left. */
    flushAll() {
      this.run(FLUSH_MS);
      while (flushes.length > 0 || turns.length > 0) {
        if (turns.length > 0) turns.shift()!();
        else flushes.shift()!.run();
      }
    },
    /** Moves the clock, then runs one keep-alive tick of every stream. */
    tick(ms: number) {
      now += ms;
      for (const run of [...ticks]) run();
    },
    /** What was logged: the logger writes its lines in a batch, once the current work is done. */
    log: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return log;
    },
  };
}

/** Reads what waits in the stream now, without waiting for more. */
async function readWaiting(reader: {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
}): Promise<{ text: string; done: boolean }> {
  let text = "";
  for (;;) {
    const next = await Promise.race([reader.read(), Promise.resolve(null)]);
    if (next === null) return { text, done: false };
    if (next.done) return { text, done: true };
    text += new TextDecoder().decode(next.value);
  }
}

/** A change of `project`, with event `id` and a task whose description makes it `size` bytes or so. */
function change(id: number, project = "web", size = 300): TaskChange {
  const taskId = `T-${id}`;
  return {
    event: { event_id: id, project_id: project, task_id: taskId, type: "created", details: {} },
    task: { task_id: taskId, project_id: project, description: "x".repeat(size) },
  } as unknown as TaskChange;
}

/** A client that reads its stream as fast as it comes: the chunks so far, each as sent. */
function reading(stream: ReadableStream<Uint8Array>) {
  const tap = {
    chunks: [] as Uint8Array[],
    done: false,
    text: () => tap.chunks.map((c) => new TextDecoder().decode(c)).join(""),
  };
  void (async () => {
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return void (tap.done = true);
      tap.chunks.push(value);
    }
  })();
  return tap;
}

/** Lets the readers take what was sent: the promises of the reads settle once the current work is done. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

/** The event IDs of the `event: task` messages of a text, in order. */
const eventIds = (text: string) => [...text.matchAll(/event: task\nid: (\d+)\n/g)].map((match) => Number(match[1]));

describe("LiveStreams", () => {
  test("a stream whose client takes none of the waiting bytes for two minutes ends", async () => {
    const driven = drivenStreams();
    const reader = driven.open().getReader();
    driven.tick(IDLE_MS - 1);
    expect(driven.streams.openCount).toBe(1);
    driven.tick(1);
    expect(driven.streams.openCount).toBe(0);
    expect(await driven.log()).toContain("ended a live stream whose client read nothing for too long");
    expect(await readWaiting(reader)).toEqual({ text: ": connected\n\n: keep-alive\n\n", done: true });
  });

  test("a stream whose client reads the keep-alives stays open, until its hour is up", async () => {
    const driven = drivenStreams();
    const reader = driven.open().getReader();
    for (let elapsed = 15_000; elapsed < MAX_STREAM_AGE_MS; elapsed += 15_000) {
      driven.tick(15_000);
      expect((await readWaiting(reader)).done).toBe(false);
    }
    expect(driven.streams.openCount).toBe(1);
    driven.tick(15_000);
    expect(driven.streams.openCount).toBe(0);
    expect(await driven.log()).toContain("ended a live stream at its maximum age");
    expect((await readWaiting(reader)).done).toBe(true);
  });

  test("one key holds 20 streams at most: the next is 429 with Retry-After until one closes; other keys are served", async () => {
    const driven = drivenStreams();
    const readers = Array.from({ length: 20 }, () => driven.open("key-a").getReader());
    let refusal: unknown;
    try {
      driven.open("key-a");
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(RetryLater);
    expect(refusal).toMatchObject({
      status: 429,
      code: "too_many_requests",
      retryAfterSeconds: 30,
      message: "This API key has 20 live streams (GET /events) open already, the most at once; close one first",
    });
    expect(() => driven.open("key-b")).not.toThrow();
    await readers[0]!.cancel();
    expect(() => driven.open("key-a")).not.toThrow();
  });
});

describe("LiveStreams: coalescing", () => {
  test("the changes heard before a flush reach a stream in one chunk, in order, and none before the flush", async () => {
    const driven = drivenStreams();
    const viewer = reading(driven.open());
    await settled();
    expect(viewer.text()).toBe(": connected\n\n");
    driven.commit(change(1), change(2), change(3));
    await settled();
    expect(driven.flushes.map((flush) => flush.ms)).toEqual([FLUSH_MS]);
    expect(viewer.chunks).toHaveLength(1);
    driven.flushAll();
    await settled();
    expect(viewer.chunks).toHaveLength(2);
    expect(eventIds(new TextDecoder().decode(viewer.chunks[1]))).toEqual([1, 2, 3]);
    expect(driven.flushes).toEqual([]);
    driven.commit(change(4));
    driven.flushAll();
    await settled();
    expect(viewer.chunks.map((chunk) => eventIds(new TextDecoder().decode(chunk)))).toEqual([[], [1, 2, 3], [4]]);
  });

  test("the streams of one project are sent the same bytes, serialized once; each filter gets its changes", async () => {
    const driven = drivenStreams();
    const web = [reading(driven.open("key-a", "web")), reading(driven.open("key-b", "web"))];
    const api = reading(driven.open("key-a", "api"));
    const all = reading(driven.open("key-a", null));
    driven.commit(change(1, "web"), change(2, "api"), change(3, "web"));
    driven.flushAll();
    await settled();
    expect(web[0]!.chunks[1]).toBe(web[1]!.chunks[1]!);
    expect([web[0]!, web[1]!, api, all].map((viewer) => eventIds(viewer.text()))).toEqual([[1, 3], [1, 3], [2], [1, 2, 3]]);
  });

  test("the tasks view sends a batch as one event: tasks, each task once as its last change left it, the history view every change", async () => {
    const driven = drivenStreams();
    const board = reading(driven.open("key-a", "web", null, "tasks"));
    const history = reading(driven.open("key-b", "web"));
    const claimed = change(1);
    const completed = change(3);
    (completed.task as { task_id: string }).task_id = "T-1";
    (completed.task as { description: string }).description = "done now";
    driven.commit(claimed, change(2), completed, change(4, "api"));
    driven.flushAll();
    await settled();
    expect(board.chunks).toHaveLength(2);
    const [head, data] = board.text().replace(": connected\n\n", "").split("\ndata: ");
    expect(head).toBe("event: tasks\nid: 3");
    const { tasks } = JSON.parse(data!) as { tasks: Array<{ task_id: string; description: string }> };
    // T-2 was changed before T-1's last change: the order of the last changes.
    expect(tasks.map((task) => [task.task_id, task.description.slice(0, 8)])).toEqual([
      ["T-2", "xxxxxxxx"],
      ["T-1", "done now"],
    ]);
    expect(eventIds(history.text())).toEqual([1, 2, 3]);
  });

  test("streams of keys limited to other projects never share a batch, even one of the same first change and length", async () => {
    const driven = drivenStreams();
    const webAndApi = reading(driven.open("key-a", null, ["web", "api"]));
    const webAndDocs = reading(driven.open("key-b", null, ["web", "docs"]));
    driven.commit(change(1, "web"), change(2, "api"), change(3, "docs"));
    driven.flushAll();
    await settled();
    expect([webAndApi, webAndDocs].map((viewer) => eventIds(viewer.text()))).toEqual([
      [1, 2],
      [1, 3],
    ]);
  });

  test("a flush spreads its streams evenly over most of the period, so that requests go on in between", async () => {
    const driven = drivenStreams();
    const viewers = [reading(driven.open()), reading(driven.open()), reading(driven.open())];
    const received = async () => {
      await settled();
      return viewers.map((viewer) => eventIds(viewer.text()));
    };
    driven.commit(change(1));
    driven.run(FLUSH_MS);
    expect(await received()).toEqual([[1], [], []]);
    // 80 ms for 3 streams: the next in 26 ms.
    expect(driven.flushes.map((flush) => flush.ms)).toEqual([26]);
    driven.run(26);
    expect(await received()).toEqual([[1], [1], []]);
    // A change heard in the middle of a flush waits for the next one.
    driven.commit(change(2));
    expect(driven.flushes.map((flush) => flush.ms)).toEqual([26, FLUSH_MS]);
    driven.run(26);
    expect(await received()).toEqual([[1], [1], [1]]);
    driven.flushAll();
    expect(await received()).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
  });

  test("with too many streams to space by a millisecond, a flush serves one stream per turn of the event loop", async () => {
    const driven = drivenStreams();
    const viewers = Array.from({ length: 100 }, (_, i) => reading(driven.open(`key-${i}`)));
    driven.commit(change(1));
    driven.run(FLUSH_MS);
    expect([driven.flushes.length, driven.turns.length]).toEqual([0, 1]);
    driven.turns.shift()!();
    await settled();
    expect(viewers.slice(0, 3).map((viewer) => eventIds(viewer.text()))).toEqual([[1], [1], []]);
  });

  test("a flush that comes due while the last one still sends waits for it: a stream's batches stay in order", async () => {
    const driven = drivenStreams();
    const viewers = [reading(driven.open()), reading(driven.open())];
    driven.commit(change(1));
    driven.run(FLUSH_MS);
    driven.commit(change(2));
    // A loaded event loop runs the next flush's timer before the second stream of this one.
    driven.run(FLUSH_MS);
    await settled();
    expect(viewers.map((viewer) => eventIds(viewer.text()))).toEqual([[1], []]);
    driven.run(40);
    await settled();
    expect(viewers.map((viewer) => eventIds(viewer.text()))).toEqual([[1, 2], [1]]);
    driven.run(40);
    await settled();
    expect(viewers.map((viewer) => viewer.chunks.map((chunk) => eventIds(new TextDecoder().decode(chunk))))).toEqual([
      [[], [1], [2]],
      [[], [1], [2]],
    ]);
  });

  test("a stream closed before the flush is sent nothing, and gives its subscription back", async () => {
    const driven = drivenStreams();
    const leaving = driven.open();
    const staying = reading(driven.open());
    driven.commit(change(1));
    await leaving.cancel();
    expect(driven.listeners.size).toBe(1);
    driven.flushAll();
    await settled();
    expect(eventIds(staying.text())).toEqual([1]);
  });

  test("a stream that falls behind is told to reload and closed; the others keep streaming", async () => {
    const driven = drivenStreams({ maxUnreadBytes: 2000 });
    const slow = driven.open("key-a", "web");
    const fast = reading(driven.open("key-b", "web"));
    // The slow client reads nothing: the connected comment and this batch wait for it, under the bound.
    driven.commit(change(1), change(2), change(3), change(4), change(5));
    driven.flushAll();
    await settled();
    expect(driven.streams.openCount).toBe(2);
    // Now over the bound: the next batch is not queued; `reload` is, and the stream ends.
    driven.commit(change(6));
    driven.flushAll();
    await settled();
    expect(driven.streams.openCount).toBe(1);
    expect(driven.listeners.size).toBe(1);
    expect(await driven.log()).toContain("closed a live stream whose client reads too slowly");
    driven.commit(change(7));
    driven.flushAll();
    await settled();
    expect(eventIds(fast.text())).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(fast.done).toBe(false);
    const late = reading(slow);
    await settled();
    expect(late.done).toBe(true);
    expect(eventIds(late.text())).toEqual([1, 2, 3, 4, 5]);
    expect(late.text()).toEndWith(
      'event: reload\ndata: {"reason":"This stream fell too far behind and ends here: reload, then reconnect."}\n\n',
    );
  });
});
