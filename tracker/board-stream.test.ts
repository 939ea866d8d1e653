// The board's client of the live stream (board/stream.ts) against streams the test writes: told to
// reload, it drops the stream and reconnects at once, and the board reloads (onOpen) without showing
// the connection as lost. The board in a browser: e2e/board.test.ts.

import { expect, test } from "bun:test";
import type { Api } from "./board/api.ts";
import { follow } from "./board/stream.ts";

const encoder = new TextEncoder();

/** An Api whose event streams the test writes into; each open() hands the test the stream's controller. */
function streamsApi() {
  const opened: Array<{ signal: AbortSignal; write(text: string): void }> = [];
  const waiters: Array<() => void> = [];
  const api = {
    async open(_path: string, signal: AbortSignal) {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
      // As fetch does: aborting the request errors its body.
      signal.addEventListener("abort", () => controller.error(new DOMException("The request was aborted", "AbortError")));
      opened.push({ signal, write: (text) => controller.enqueue(encoder.encode(text)) });
      for (const wake of waiters.splice(0)) wake();
      return new Response(body);
    },
  } as unknown as Api;
  return {
    api,
    opened,
    async untilOpened(count: number) {
      while (opened.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

test("told to reload, the stream client reconnects at once and the board reloads, with no outage shown", async () => {
  const streams = streamsApi();
  const seen: string[] = [];
  let changed: () => void = () => {};
  const stop = follow(streams.api, "/events?view=tasks&project=web", {
    onOpen: () => seen.push("open (the board reloads)"),
    onTasks: (tasks) => {
      seen.push(`changed ${tasks.map((task) => task.task_id).join(", ")}`);
      changed();
    },
    onDown: (retryInMs) => seen.push(`down, retry in ${retryInMs} ms`),
    onUnauthorized: () => seen.push("unauthorized"),
  });
  await streams.untilOpened(1);
  const first = streams.opened[0]!;
  const heard = new Promise<void>((resolve) => (changed = resolve));
  // A batch split across two reads, as a socket may deliver it.
  first.write(': connected\n\nevent: tasks\nid: 2\ndata: {"tasks":[{"task_id":"WEB-1"},');
  first.write('{"task_id":"WEB-2"}]}\n\n');
  await heard;
  // The tracker ends the stream after `reload`; the client must not wait for that end.
  first.write('event: reload\ndata: {"reason":"This stream fell too far behind and ends here: reload, then reconnect."}\n\n');
  await streams.untilOpened(2);
  expect(first.signal.aborted).toBe(true);
  expect(seen).toEqual(["open (the board reloads)", "changed WEB-1, WEB-2", "open (the board reloads)"]);
  stop();
  expect(streams.opened[1]!.signal.aborted).toBe(true);
});
