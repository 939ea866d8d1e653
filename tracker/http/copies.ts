// The backups and dumps being sent (GET /admin/backup, GET /admin/dump). Each holds a copy of the
// data until its client has read it all (SQLite: an unlinked file, its disk and its handle;
// PostgreSQL: a read-only transaction), so a client that never reads must not hold them for good:
// at most two are sent at once, and one whose client reads nothing for a minute is ended.

import { RetryLater } from "../domain.ts";

export const MAX_COPIES = 2;
/** How long a client may leave a backup or dump unread (its socket full) before it is ended. */
export const COPY_STALL_MS = 60_000;
const RETRY_AFTER_SECONDS = 30;

export interface Timer {
  cancel(): void;
}
/** setTimeout, or a test's: the tests fire a stall at once instead of waiting a minute. */
export type Schedule = (run: () => void, ms: number) => Timer;

const realSchedule: Schedule = (run, ms) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return { cancel: () => clearTimeout(timer) };
};

export interface CopyGateOptions {
  max?: number;
  stallMs?: number;
  schedule?: Schedule;
}

export class CopyGate {
  #sending = 0;
  readonly #max: number;
  readonly #stallMs: number;
  readonly #schedule: Schedule;

  constructor(options: CopyGateOptions = {}) {
    this.#max = options.max ?? MAX_COPIES;
    this.#stallMs = options.stallMs ?? COPY_STALL_MS;
    this.#schedule = options.schedule ?? realSchedule;
  }

  get sending(): number {
    return this.#sending;
  }

  /** A place for one more copy, freed by the function returned; 503 with Retry-After when all are taken. */
  take(): () => void {
    if (this.#sending >= this.#max) {
      throw new RetryLater(
        "unavailable",
        `${this.#max} backups or dumps are being sent already, the most at once; retry in ${RETRY_AFTER_SECONDS} seconds`,
        RETRY_AFTER_SECONDS,
      );
    }
    this.#sending++;
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      this.#sending--;
    };
  }

  /**
   * `source` as the client reads it. The clock runs only while a chunk waits for the client (never
   * while the copy is being read): past stallMs the stream ends with an error and `source` is
   * cancelled, which frees its copy. `free` runs once, when the stream ends in any way.
   */
  send(
    source: ReadableStream<Uint8Array>,
    free: () => void,
    signal: AbortSignal,
    onStall: () => void,
  ): ReadableStream<Uint8Array> {
    const reader = source.getReader();
    let client: ReadableStreamDefaultController<Uint8Array>;
    let timer: Timer | null = null;
    let ended = false;
    /** True for the first caller only: the one that frees the copy. */
    const end = () => {
      if (ended) return false;
      ended = true;
      timer?.cancel();
      signal.removeEventListener("abort", hungUp);
      free();
      return true;
    };
    const hungUp = () => {
      if (end()) reader.cancel().catch(() => {});
    };
    const stalled = () => {
      if (!end()) return;
      onStall();
      reader.cancel().catch(() => {});
      client.error(new Error("The client read nothing for too long"));
    };
    signal.addEventListener("abort", hungUp);
    const { schedule, stallMs } = { schedule: this.#schedule, stallMs: this.#stallMs };
    return new ReadableStream<Uint8Array>(
      {
        start(controller) {
          client = controller;
        },
        async pull(controller) {
          timer?.cancel();
          timer = null;
          try {
            const { done, value } = await reader.read();
            if (ended) return;
            if (done) {
              end();
              return controller.close();
            }
            controller.enqueue(value);
            timer = schedule(stalled, stallMs);
          } catch (error) {
            end();
            throw error;
          }
        },
        cancel(reason) {
          if (end()) return reader.cancel(reason);
        },
      },
      // No chunk is read ahead: each pull is the client asking for more.
      { highWaterMark: 0 },
    );
  }
}
