// The open streams of GET /events: the history as Server-Sent Events, fed by storage.subscribe.
// Every open stream is known here, so stop() can end them: a viewer left open must not keep the
// tracker from stopping.

import { ApiError, type TaskChange } from "../domain.ts";
import type { Logger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";

export const KEEP_ALIVE_MS = 15_000;
/** A viewer that lets this much pile up unread is too slow to follow: its stream is closed. */
const MAX_UNREAD_BYTES = 1024 * 1024;

const encoder = new TextEncoder();
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");
const CONNECTED = encoder.encode(": connected\n\n");

/**
 * Every stream hears the same change object, so it is serialized once for all of them: with 50 boards
 * open, formatting it per stream cost the agents half their claims per second (bench/, section 8).
 */
const encodedChanges = new WeakMap<TaskChange, Uint8Array>();

function encodeChange(change: TaskChange): Uint8Array {
  let bytes = encodedChanges.get(change);
  if (bytes === undefined) {
    const data = JSON.stringify({ event: change.event, task: change.task });
    bytes = encoder.encode(`event: task\nid: ${change.event.event_id}\ndata: ${data}\n\n`);
    encodedChanges.set(change, bytes);
  }
  return bytes;
}

interface StreamSource {
  storage: Storage;
  logger: Logger;
  /** null: the changes of every project. */
  projectId: string | null;
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
}

export class LiveStreams {
  readonly #closers = new Set<() => void>();
  #stopped = false;

  constructor(private readonly keepAliveMs = KEEP_ALIVE_MS) {}

  get openCount(): number {
    return this.#closers.size;
  }

  /** A stream that sends each change of the project (or of all) until the client or stop() ends it. */
  open({ storage, logger, projectId, signal }: StreamSource): ReadableStream<Uint8Array> {
    if (this.#stopped) throw new ApiError("unavailable", "The tracker is stopping");
    let close = () => {};
    const closers = this.#closers;
    const keepAliveMs = this.keepAliveMs;
    return new ReadableStream<Uint8Array>(
      {
        start(controller) {
          let closed = false;
          const send = (bytes: Uint8Array) => {
            if (closed) return;
            if ((controller.desiredSize ?? 0) < -MAX_UNREAD_BYTES) {
              logger.log("warn", "closed a live stream whose client reads too slowly");
              return close();
            }
            controller.enqueue(bytes);
          };
          const unsubscribe = storage.subscribe((change) => {
            if (projectId === null || change.event.project_id === projectId) send(encodeChange(change));
          });
          const keepAlive = setInterval(() => send(KEEP_ALIVE), keepAliveMs);
          keepAlive.unref();
          close = () => {
            if (closed) return;
            closed = true;
            unsubscribe();
            clearInterval(keepAlive);
            signal.removeEventListener("abort", close);
            closers.delete(close);
            try {
              controller.close();
            } catch {
              // Already cancelled by the client: nothing left to close.
            }
          };
          closers.add(close);
          signal.addEventListener("abort", close);
          // Sends the headers at once, so the client knows the stream is open before the first change.
          send(CONNECTED);
        },
        cancel() {
          close();
        },
      },
      { highWaterMark: 64 * 1024, size: (chunk) => chunk?.byteLength ?? 0 },
    );
  }

  /** Ends every open stream and refuses new ones (stop()). */
  closeAll(): void {
    this.#stopped = true;
    for (const close of [...this.#closers]) close();
  }
}
