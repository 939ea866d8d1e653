// The live stream GET /events?view=tasks&project= read with fetch, because EventSource cannot send the
// Authorization header. Every 100 ms it brings the tasks changed meanwhile, each once, as they are now. It reconnects by itself, with backoff, for as long as the board is open;
// told to reload (`event: reload`: the board fell behind, and the tracker ends the stream), it
// reconnects at once, and the board reloads as on every (re)connection.

import type { Api, Task } from "./api.ts";

export interface StreamHandlers {
  /** Connected (again): whatever happened while disconnected is unknown, so reload. */
  onOpen(): void;
  /** The tasks changed in the last batch, each as it is now. */
  onTasks(tasks: Task[]): void;
  /** Disconnected; `retryInMs` until the next attempt. */
  onDown(retryInMs: number): void;
  onUnauthorized(): void;
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 4000;
/** The tracker sends a keep-alive every 15 s: a silent minute means the connection is dead. */
const SILENCE_LIMIT_MS = 45_000;

export function retryDelay(attempt: number): number {
  return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
}

/** Starts following `path`; the returned function stops it for good. */
export function follow(api: Api, path: string, handlers: StreamHandlers): () => void {
  let stopped = false;
  let controller = new AbortController();
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  async function connect(attempt: number): Promise<void> {
    controller = new AbortController();
    let opened = false;
    try {
      const response = await api.open(path, controller.signal);
      opened = true;
      handlers.onOpen();
      if ((await readEvents(response.body!, controller, handlers.onTasks)) === "reload" && !stopped) {
        controller.abort();
        return void connect(0);
      }
    } catch (error) {
      if ((error as Error).name === "Unauthorized") return handlers.onUnauthorized();
      // Anything else (refused, cut, aborted by the silence watchdog) is a reason to come back.
    }
    if (stopped) return;
    const next = opened ? 0 : attempt + 1;
    const delay = retryDelay(next);
    handlers.onDown(delay);
    retryTimer = setTimeout(() => void connect(next), delay);
  }

  void connect(0);
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    controller.abort();
  };
}

/** Parses Server-Sent Events (`event:`, `data:`, comments) until the stream ends or says `reload`. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  controller: AbortController,
  onTasks: (tasks: Task[]) => void,
): Promise<"ended" | "reload"> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let watchdog = setTimeout(() => controller.abort(), SILENCE_LIMIT_MS);
  let buffer = "";
  let eventName = "message";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "ended";
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_LIMIT_MS);
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (eventName === "reload") return "reload";
          if (eventName === "tasks" && data.length > 0) onTasks((JSON.parse(data.join("\n")) as { tasks: Task[] }).tasks);
          eventName = "message";
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        } else if (line.startsWith("event:")) {
          eventName = line.slice(6).trim();
        }
      }
    }
  } finally {
    clearTimeout(watchdog);
    reader.releaseLock();
  }
}
