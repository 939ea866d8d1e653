// The open streams of GET /events: the history as Server-Sent Events, fed by storage.subscribe.
// Every open stream is known here, so stop() can end them: a viewer left open must not keep the
// tracker from stopping. Nor hold a stream for good: a key opens 20 at most, and a stream ends when
// its client takes nothing for two minutes, or after an hour (docs/API.md, GET /events).

import { ApiError, RetryLater, type TaskChange } from "../domain.ts";
import type { Logger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";

export const KEEP_ALIVE_MS = 15_000;
/** A viewer that lets this much pile up unread is too slow to follow: its stream is closed. */
const MAX_UNREAD_BYTES = 1024 * 1024;
/** One key's open streams at most: a board per person and a few tools, never a leak without end. */
export const MAX_STREAMS_PER_KEY = 20;
/**
 * A stream is idle when its client has taken none of the bytes waiting for it for this long: a
 * reading client takes each keep-alive at once, so only a stuck or vanished one is idle.
 */
export const IDLE_MS = 2 * 60_000;
/**
 * What the system's socket buffers hold is taken from the stream: a quiet stream whose client stopped
 * reading shows bytes waiting only once they are full, which keep-alives alone take days to do. So
 * every stream also ends after an hour; a reading client reconnects (EventSource and the board do).
 */
export const MAX_STREAM_AGE_MS = 60 * 60_000;
const HIGH_WATER_MARK = 64 * 1024;
const RETRY_AFTER_SECONDS = 30;

export interface LiveStreamOptions {
  keepAliveMs?: number;
  maxPerKey?: number;
  idleMs?: number;
  maxAgeMs?: number;
  /** Milliseconds since the epoch; tests move it. */
  now?: () => number;
  /** setInterval, or a test's: returns the function that stops it. */
  every?: (run: () => void, ms: number) => () => void;
}

const realEvery = (run: () => void, ms: number) => {
  const timer = setInterval(run, ms);
  timer.unref();
  return () => clearInterval(timer);
};

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
  /** The projects of a key limited to them (keys.ts): the others' changes never reach it. */
  projects?: readonly string[] | null;
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
  /** Who opened it: the scope of its API key. */
  key: string;
}

export class LiveStreams {
  readonly #closers = new Set<() => void>();
  readonly #openByKey = new Map<string, number>();
  readonly #options: Required<LiveStreamOptions>;
  #stopped = false;

  constructor(options: LiveStreamOptions = {}) {
    this.#options = {
      keepAliveMs: options.keepAliveMs ?? KEEP_ALIVE_MS,
      maxPerKey: options.maxPerKey ?? MAX_STREAMS_PER_KEY,
      idleMs: options.idleMs ?? IDLE_MS,
      maxAgeMs: options.maxAgeMs ?? MAX_STREAM_AGE_MS,
      now: options.now ?? Date.now,
      every: options.every ?? realEvery,
    };
  }

  get openCount(): number {
    return this.#closers.size;
  }

  /** A stream that sends each change of the project (or of all) until the client, stop(), idleness or age ends it. */
  open(source: StreamSource): ReadableStream<Uint8Array> {
    if (this.#stopped) throw new ApiError("unavailable", "The tracker is stopping");
    this.#countIn(source.key);
    const streams = this;
    let close = () => {};
    return new ReadableStream<Uint8Array>(
      {
        start(controller) {
          close = streams.#feed(controller, source);
        },
        cancel() {
          close();
        },
      },
      { highWaterMark: HIGH_WATER_MARK, size: (chunk) => chunk?.byteLength ?? 0 },
    );
  }

  /** Ends every open stream and refuses new ones (stop()). */
  closeAll(): void {
    this.#stopped = true;
    for (const close of [...this.#closers]) close();
  }

  #countIn(key: string): void {
    const open = this.#openByKey.get(key) ?? 0;
    if (open >= this.#options.maxPerKey) {
      throw new RetryLater(
        "too_many_requests",
        `This API key has ${open} live streams (GET /events) open already, the most at once; close one first`,
        RETRY_AFTER_SECONDS,
      );
    }
    this.#openByKey.set(key, open + 1);
  }

  #countOut(key: string): void {
    const open = (this.#openByKey.get(key) ?? 1) - 1;
    if (open === 0) this.#openByKey.delete(key);
    else this.#openByKey.set(key, open);
  }

  /** Subscribes the stream to the changes and starts its keep-alives; returns what closes it. */
  #feed(
    controller: ReadableStreamDefaultController<Uint8Array>,
    { storage, logger, projectId, projects, signal, key }: StreamSource,
  ) {
    const { keepAliveMs, idleMs, maxAgeMs, now, every } = this.#options;
    let closed = false;
    let sent = 0;
    const unread = () => HIGH_WATER_MARK - (controller.desiredSize ?? HIGH_WATER_MARK);
    const send = (bytes: Uint8Array) => {
      if (closed) return;
      if (unread() > MAX_UNREAD_BYTES + HIGH_WATER_MARK) {
        logger.log("warn", "closed a live stream whose client reads too slowly");
        return close();
      }
      controller.enqueue(bytes);
      sent += bytes.byteLength;
    };
    const unsubscribe = storage.subscribe((change) => {
      const project = change.event.project_id;
      if ((projectId === null || project === projectId) && (!projects || projects.includes(project))) send(encodeChange(change));
    });
    const watch = idleWatch(now, unread, () => sent - unread());
    const stopKeepAlive = every(() => {
      const ended = watch.ended(idleMs, maxAgeMs);
      if (ended) {
        logger.log("info", ended);
        return close();
      }
      send(KEEP_ALIVE);
    }, keepAliveMs);
    const close = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      stopKeepAlive();
      signal.removeEventListener("abort", close);
      this.#closers.delete(close);
      this.#countOut(key);
      try {
        controller.close();
      } catch {
        // Already cancelled by the client: nothing left to close.
      }
    };
    this.#closers.add(close);
    signal.addEventListener("abort", close);
    // Sends the headers at once, so the client knows the stream is open before the first change.
    send(CONNECTED);
    return close;
  }
}

/**
 * When a stream has had enough: past its age, or idle (bytes wait for the client, and it has taken
 * none for idleMs). Asked at each keep-alive, before it is sent.
 */
function idleWatch(now: () => number, unread: () => number, taken: () => number) {
  const openedAt = now();
  let lastTaken = 0;
  let lastTakenAt = openedAt;
  return {
    ended(idleMs: number, maxAgeMs: number): string | null {
      const at = now();
      if (at - openedAt >= maxAgeMs) return "ended a live stream at its maximum age";
      if (unread() === 0 || taken() > lastTaken) lastTakenAt = at;
      lastTaken = taken();
      if (at - lastTakenAt >= idleMs) return "ended a live stream whose client read nothing for too long";
      return null;
    },
  };
}
