// The gate of backups and dumps (copies.ts): two at once, a third refused with Retry-After, and a
// client that stops reading ended, its copy freed. The stall is forced with a schedule the test fires,
// never by waiting.

import { describe, expect, test } from "bun:test";
import { RetryLater } from "../domain.ts";
import { CopyGate, type Schedule } from "./copies.ts";

/** A schedule whose timers the test fires; `pending` lists those not cancelled. */
function manualSchedule() {
  const timers: Array<{ run: () => void; ms: number; cancelled: boolean }> = [];
  const schedule: Schedule = (run, ms) => {
    const timer = { run, ms, cancelled: false };
    timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  };
  return { schedule, pending: () => timers.filter((timer) => !timer.cancelled) };
}

/** A copy of `chunks` chunks that records whether it was cancelled (its file closed). */
function copyOf(chunks: number) {
  const state = { cancelled: false, sent: 0 };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (state.sent === chunks) return controller.close();
        state.sent++;
        controller.enqueue(new Uint8Array(1024));
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

describe("CopyGate", () => {
  test("sends two copies at once; a third is 503 with Retry-After until one is freed", () => {
    const gate = new CopyGate();
    const first = gate.take();
    gate.take();
    let refusal: unknown;
    try {
      gate.take();
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(RetryLater);
    expect(refusal).toMatchObject({
      status: 503,
      code: "unavailable",
      retryAfterSeconds: 30,
      message: "2 backups or dumps are being sent already, the most at once; retry in 30 seconds",
    });
    first();
    first();
    expect(gate.sending).toBe(1);
    expect(() => gate.take()).not.toThrow();
  });

  test("a client that reads nothing for the stall time is ended: the copy is cancelled and its place freed", async () => {
    const { schedule, pending } = manualSchedule();
    const gate = new CopyGate({ stallMs: 60_000, schedule });
    const copy = copyOf(100);
    const stalls: string[] = [];
    const body = gate.send(copy.stream, gate.take(), new AbortController().signal, () => stalls.push("stalled"));
    const client = body.getReader();
    expect((await client.read()).value?.byteLength).toBe(1024);
    expect(pending().map((timer) => timer.ms)).toEqual([60_000]);

    pending()[0]!.run(); // the client read nothing for a minute
    expect([stalls, copy.state.cancelled, gate.sending]).toEqual([["stalled"], true, 0]);
    await expect(client.read()).rejects.toThrow("The client read nothing for too long");
    expect(copy.state.sent).toBe(1);
  });

  test("the clock runs only while a chunk waits for the client, and not after the end", async () => {
    const { schedule, pending } = manualSchedule();
    const gate = new CopyGate({ schedule });
    const copy = copyOf(3);
    const body = gate.send(copy.stream, gate.take(), new AbortController().signal, () => {});
    const client = body.getReader();
    for (let i = 0; i < 3; i++) {
      await client.read();
      expect(pending()).toHaveLength(1); // each read stopped the last clock and started one for this chunk
    }
    expect((await client.read()).done).toBe(true);
    expect([pending(), gate.sending, copy.state.cancelled]).toEqual([[], 0, false]);
  });

  test("a client that hangs up frees the place and the copy", async () => {
    const gate = new CopyGate({ schedule: manualSchedule().schedule });
    const copy = copyOf(100);
    const hangUp = new AbortController();
    const client = gate.send(copy.stream, gate.take(), hangUp.signal, () => {}).getReader();
    await client.read();
    hangUp.abort();
    expect([gate.sending, copy.state.cancelled]).toEqual([0, true]);
  });

  test("a body cancelled by the server frees the place and the copy", async () => {
    const gate = new CopyGate({ schedule: manualSchedule().schedule });
    const copy = copyOf(100);
    const client = gate.send(copy.stream, gate.take(), new AbortController().signal, () => {}).getReader();
    await client.read();
    await client.cancel();
    expect([gate.sending, copy.state.cancelled]).toEqual([0, true]);
  });
});
