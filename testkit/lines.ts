// A child's output as lines: kept for assertions, passed to listeners, and waited for.

import { closeSync, openSync, readSync, watch } from "node:fs";

interface Waiter {
  test: (line: string) => boolean;
  what: string;
  resolve: (line: string) => void;
  reject: (error: Error) => void;
}

export class Lines {
  /** Every complete line so far (none when constructed with keep: false). */
  readonly lines: string[] = [];
  private received = "";
  private partial = "";
  private ended = false;
  private readonly waiters = new Set<Waiter>();
  private readonly listeners: ((line: string) => void)[] = [];
  private readonly endWaiters = new Set<() => void>();
  private readonly keep: boolean;

  /** keep: false passes lines to listeners and waiters only (a benchmark's long output is not held). */
  constructor(options: { keep?: boolean } = {}) {
    this.keep = options.keep ?? true;
  }

  push(text: string): void {
    if (this.keep) this.received += text;
    this.partial += text;
    if (!text.includes("\n")) return;
    const parts = this.partial.split("\n");
    this.partial = parts.pop()!;
    for (const line of parts) this.add(line);
  }

  end(): void {
    if (this.ended) return;
    if (this.partial) this.add(this.partial);
    this.partial = "";
    this.ended = true;
    for (const waiter of this.waiters) waiter.reject(new Error(`the output ended without ${waiter.what}:\n${this.text()}`));
    this.waiters.clear();
    for (const wake of this.endWaiters) wake();
  }

  /** Calls `listener` with every line from now on. */
  onLine(listener: (line: string) => void): void {
    this.listeners.push(listener);
  }

  private add(line: string): void {
    if (this.keep) this.lines.push(line);
    for (const listener of this.listeners) listener(line);
    for (const waiter of this.waiters) {
      if (waiter.test(line)) {
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }

  /** Everything received, exactly as it came. */
  text(): string {
    return this.received;
  }

  /** JSON lines only: every line that parses as a JSON object. */
  records(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      const record = parseRecord(line);
      return record ? [record] : [];
    });
  }

  /**
   * Resolves with the first line (already seen or yet to come) that passes the test; rejects when the
   * output ends without one, or after timeoutMs.
   */
  waitFor(test: (line: string) => boolean, what: string, timeoutMs = 10_000): Promise<string> {
    const seen = this.lines.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.ended) return Promise.reject(new Error(`the output ended without ${what}:\n${this.text()}`));
    return new Promise((resolve, reject) => {
      const settle = (then: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        then();
      };
      const waiter: Waiter = {
        test,
        what,
        resolve: (line) => settle(() => resolve(line)),
        reject: (error) => settle(() => reject(error)),
      };
      const timer = setTimeout(
        () => waiter.reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${this.text()}`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
    });
  }

  /** Resolves with the first JSON line whose msg is `msg` (a tracker or MCP server log entry). */
  async waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, any>> {
    const line = await this.waitFor((line) => parseRecord(line)?.msg === msg, `a log entry "${msg}"`, timeoutMs);
    return parseRecord(line)!;
  }

  /** Resolves when the stream has ended (the child closed it, normally by exiting). */
  whenEnded(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.endWaiters.add(resolve));
  }
}

/** The line as a JSON object, or null when it is not one. */
export function parseRecord(line: string): Record<string, unknown> | null {
  if (!line.startsWith("{")) return null;
  try {
    const value = JSON.parse(line) as unknown;
    return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Feeds a child's stdout or stderr into `into` as it arrives ('data' events), and ends it with the stream. */
export function readInto(stream: NodeJS.ReadableStream, into: Lines): void {
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => into.push(chunk));
  stream.once("end", () => into.end());
  stream.once("close", () => into.end());
  stream.once("error", () => into.end());
}

/**
 * Resolves with the first line of a file (a child's log written straight to disk) that passes the
 * test, reading the file whenever it changes; rejects when `gaveUp` settles first.
 */
export function waitForLineInFile(path: string, test: (line: string) => boolean, gaveUp: Promise<Error>): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new TextDecoder();
    let text = "";
    let offset = 0;
    let done = false;
    const finish = (then: () => void) => {
      if (done) return;
      done = true;
      watcher.close();
      then();
    };
    const readNew = () => {
      if (done) return;
      const fd = openSync(path, "r");
      try {
        const buffer = Buffer.alloc(64 * 1024);
        let read: number;
        while ((read = readSync(fd, buffer, 0, buffer.length, offset)) > 0) {
          text += decoder.decode(buffer.subarray(0, read), { stream: true });
          offset += read;
        }
      } finally {
        closeSync(fd);
      }
      const line = text.split("\n").find(test);
      if (line !== undefined) finish(() => resolve(line));
    };
    const watcher = watch(path, readNew);
    void gaveUp.then((error) => finish(() => reject(error)));
    readNew();
  });
}
