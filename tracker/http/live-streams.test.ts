// The bounds of the live streams (live-streams.ts) with the clock and the keep-alive ticks in the
// test's hands: a stream whose client takes nothing for two minutes ends, one that reads does not,
// every stream ends at an hour, and one key holds 20 at most. GET /events over HTTP: events.test.ts.

import { describe, expect, test } from "bun:test";
import { RetryLater } from "../domain.ts";
import { createLogger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";
import { IDLE_MS, LiveStreams, MAX_STREAM_AGE_MS } from "./live-streams.ts";

/** Live streams whose ticks and clock the test drives. */
function drivenStreams() {
  const ticks = new Set<() => void>();
  let now = Date.parse("2026-12-06T08:00:00Z");
  let log = "";
  const streams = new LiveStreams({
    now: () => now,
    every: (run) => {
      ticks.add(run);
      return () => ticks.delete(run);
    },
  });
  const storage = { subscribe: () => () => {} } as unknown as Storage;
  const logger = createLogger("debug", (text) => (log += text));
  return {
    streams,
    open: (key = "key-a") => streams.open({ storage, logger, projectId: null, signal: new AbortController().signal, key }),
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
