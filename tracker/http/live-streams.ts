// The open streams of GET /events: the history as Server-Sent Events, fed by storage.subscribe.
// Every open stream is known here, so stop() can end them: a viewer left open must not keep the
// tracker from stopping. Nor hold a stream for good: a key opens 20 at most, and a stream ends when
// its client takes nothing for two minutes, or after an hour (docs/API.md, GET /events).
//
// The viewers must cost the agents nothing: a change only joins the waiting batch of each stream that
// wants it (the write that made it goes on at once), and every 100 ms one flush sends each stream its
// batch in one write, serialized once for all the streams that wait for the same changes, the
// streams spread over the period. A board asks for the tasks view: each changed task once per batch,
// not every change with its task. A stream that falls behind is told to reload and ended, never
// buffered without end.

import { ApiError, RetryLater, type TaskChange } from "../domain.ts";
import type { Logger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";

export const KEEP_ALIVE_MS = 15_000;
/** The changes of this long go to a viewer in one write (the board repaints no faster than that). */
export const FLUSH_MS = 100;
/** The streams of a flush are served over this share of the period, evenly. */
const FLUSH_SPREAD = 0.8;
/** A viewer that lets this much pile up unread is too slow to follow: it is told to reload, and its stream is closed. */
export const MAX_UNREAD_BYTES = 1024 * 1024;
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
  /** Between two flushes of the waiting changes. */
  flushMs?: number;
  /** Unread bytes past which a stream is told to reload and closed. */
  maxUnreadBytes?: number;
  /** Milliseconds since the epoch; tests move it. */
  now?: () => number;
  /** setInterval, or a test's: returns the function that stops it. */
  every?: (run: () => void, ms: number) => () => void;
  /** setTimeout, or a test's: runs `run` once, `ms` from now (the next flush). */
  after?: (run: () => void, ms: number) => void;
  /** setImmediate, or a test's: runs `run` once the event loop has served what waits (between two streams of a flush, when they are too many to space by a millisecond). */
  soon?: (run: () => void) => void;
}

const realEvery = (run: () => void, ms: number) => {
  const timer = setInterval(run, ms);
  timer.unref();
  return () => clearInterval(timer);
};

const realAfter = (run: () => void, ms: number) => {
  setTimeout(run, ms).unref();
};

const realSoon = (run: () => void) => {
  setImmediate(run);
};

const encoder = new TextEncoder();
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");
const CONNECTED = encoder.encode(": connected\n\n");
const RELOAD = encoder.encode(
  `event: reload\ndata: ${JSON.stringify({ reason: "This stream fell too far behind and ends here: reload, then reconnect." })}\n\n`,
);

/**
 * What a stream carries. `history`: every change as its `event: task` (the event and the task after
 * it). `tasks`: what a board needs, every task changed since the last batch as it is now, in one
 * `event: tasks`; a task changed five times in 100 ms is sent once.
 */
export type StreamView = "history" | "tasks";

/** One change as its `event: task`; a change heard by streams of several filters is serialized once. */
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

/** The changes of a batch, one after another, as one chunk. */
function encodeBatch(changes: readonly TaskChange[]): Uint8Array {
  const parts = changes.map(encodeChange);
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

/**
 * The changes of a batch as one `event: tasks`: each task once, as its last change left it, in the
 * order of their last changes; `id` is the last change's event_id, as in the history view.
 */
function encodeTasks(changes: readonly TaskChange[]): Uint8Array {
  const latest = new Map<string, TaskChange["task"]>();
  for (const { task } of changes) {
    const key = `${task.project_id}\n${task.task_id}`;
    latest.delete(key);
    latest.set(key, task);
  }
  const data = JSON.stringify({ tasks: [...latest.values()] });
  return encoder.encode(`event: tasks\nid: ${changes.at(-1)!.event.event_id}\ndata: ${data}\n\n`);
}

const ENCODERS: Record<StreamView, (changes: readonly TaskChange[]) => Uint8Array> = {
  history: encodeBatch,
  tasks: encodeTasks,
};

/**
 * Within one flush, the streams of the same filter wait for the same changes (a stream opened in
 * the meantime for their last ones): the filter, the first change and the count name a batch.
 */
function batchName(filter: string, changes: readonly TaskChange[]): string {
  return `${changes.length} ${changes[0]!.event.event_id} ${filter}`;
}

/** A stream's filter: its project, the projects of a key limited to them (never another's batch), its view. */
function filterOf(projectId: string | null, projects: readonly string[] | null | undefined, view: StreamView): string {
  return JSON.stringify([projectId, projects ?? null, view]);
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
  /** Left out: history. */
  view?: StreamView;
}

/** An open stream as the flush sees it: the changes waiting for it, and how to send them. */
interface Follower {
  /** filterOf: the streams of one filter wait for the same changes. */
  filter: string;
  /** How its batches are written (StreamView). */
  encode: (changes: readonly TaskChange[]) => Uint8Array;
  waiting: TaskChange[];
  send(bytes: Uint8Array): void;
}

export class LiveStreams {
  readonly #closers = new Set<() => void>();
  readonly #openByKey = new Map<string, number>();
  readonly #options: Required<LiveStreamOptions>;
  /** The streams with changes waiting for the next flush. */
  readonly #behind = new Set<Follower>();
  #flushDue = false;
  /** A flush is serving its streams (spread over the period); one that comes due meanwhile waits for it. */
  #sending = false;
  #flushWhenSent = false;
  #stopped = false;

  constructor(options: LiveStreamOptions = {}) {
    this.#options = {
      keepAliveMs: options.keepAliveMs ?? KEEP_ALIVE_MS,
      maxPerKey: options.maxPerKey ?? MAX_STREAMS_PER_KEY,
      idleMs: options.idleMs ?? IDLE_MS,
      maxAgeMs: options.maxAgeMs ?? MAX_STREAM_AGE_MS,
      flushMs: options.flushMs ?? FLUSH_MS,
      maxUnreadBytes: options.maxUnreadBytes ?? MAX_UNREAD_BYTES,
      now: options.now ?? Date.now,
      every: options.every ?? realEvery,
      after: options.after ?? realAfter,
      soon: options.soon ?? realSoon,
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
    { storage, logger, projectId, projects, signal, key, view = "history" }: StreamSource,
  ) {
    const { keepAliveMs, idleMs, maxAgeMs, maxUnreadBytes, now, every } = this.#options;
    let closed = false;
    let sent = 0;
    const unread = () => HIGH_WATER_MARK - (controller.desiredSize ?? HIGH_WATER_MARK);
    const follower: Follower = {
      filter: filterOf(projectId, projects, view),
      encode: ENCODERS[view],
      waiting: [],
      send(bytes) {
        if (closed) return;
        if (unread() > maxUnreadBytes) {
          logger.log("warn", "closed a live stream whose client reads too slowly");
          controller.enqueue(RELOAD);
          return close();
        }
        controller.enqueue(bytes);
        sent += bytes.byteLength;
      },
    };
    // Only the change joins the stream's batch here: the write that made it does not wait for viewers.
    const unsubscribe = storage.subscribe((change) => {
      const project = change.event.project_id;
      if (projectId !== null && project !== projectId) return;
      if (projects && !projects.includes(project)) return;
      if (follower.waiting.push(change) === 1) this.#flushSoon(follower);
    });
    const watch = idleWatch(now, unread, () => sent - unread());
    const stopKeepAlive = every(() => {
      const ended = watch.ended(idleMs, maxAgeMs);
      if (ended) {
        logger.log("info", ended);
        return close();
      }
      follower.send(KEEP_ALIVE);
    }, keepAliveMs);
    const close = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      stopKeepAlive();
      this.#behind.delete(follower);
      follower.waiting = [];
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
    follower.send(CONNECTED);
    return close;
  }

  /** Puts the stream among those the next flush serves, and has that flush come. */
  #flushSoon(follower: Follower): void {
    this.#behind.add(follower);
    if (this.#flushDue) return;
    this.#flushDue = true;
    this.#options.after(() => this.#flush(), this.#options.flushMs);
  }

  /**
   * Sends each stream behind its batch: one chunk, serialized once for every stream waiting for the
   * same changes. The streams are served one at a time, spread over most of the period: 50 writes at
   * once, and 50 clients woken at once to read them, were a stall the agents' p99 felt (bench/,
   * section 8). Changes heard meanwhile wait for the next flush, which waits for this one to end, so
   * that a stream's batches never overtake each other.
   */
  #flush(): void {
    this.#flushDue = false;
    if (this.#sending) {
      this.#flushWhenSent = true;
      return;
    }
    const due = [...this.#behind].map((follower) => {
      const changes = follower.waiting;
      follower.waiting = [];
      return { follower, changes };
    });
    this.#behind.clear();
    if (due.length === 0) return;
    this.#sending = true;
    const batches = new Map<string, Uint8Array>();
    const spacing = Math.floor((this.#options.flushMs * FLUSH_SPREAD) / due.length);
    const sendNext = (index: number) => {
      const { follower, changes } = due[index]!;
      const name = batchName(follower.filter, changes);
      let bytes = batches.get(name);
      if (bytes === undefined) {
        bytes = follower.encode(changes);
        batches.set(name, bytes);
      }
      follower.send(bytes);
      if (index + 1 === due.length) return this.#sent();
      const next = () => sendNext(index + 1);
      if (spacing >= 1) this.#options.after(next, spacing);
      else this.#options.soon(next);
    };
    sendNext(0);
  }

  /** The flush has served its last stream: a flush that came due meanwhile runs now. */
  #sent(): void {
    this.#sending = false;
    if (!this.#flushWhenSent) return;
    this.#flushWhenSent = false;
    this.#flush();
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
