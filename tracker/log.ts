// One JSON object a line on stderr. Lines are batched and written once per turn of the event loop,
// so a busy server does not pay a write system call per request. Stdout is never used.

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

const severity: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  /** Check before building an expensive line. */
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** Writes whatever is still buffered. */
  flush(): void;
}

export type LogSink = (text: string) => void;

const writeToStderr: LogSink = (text) => {
  process.stderr.write(text);
};

export function createLogger(level: LogLevel = "info", sink: LogSink = writeToStderr): Logger {
  const threshold = severity[level];
  let pending = "";
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    if (pending === "") return;
    const text = pending;
    pending = "";
    sink(text);
  }

  return {
    enabled: (candidate) => severity[candidate] >= threshold,
    log(candidate, msg, fields) {
      if (severity[candidate] < threshold) return;
      pending += `${JSON.stringify({ ts: new Date().toISOString(), level: candidate, msg, ...fields })}\n`;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** The fields of an error worth logging; never the request body or headers. */
export function describeError(error: unknown): LogFields {
  if (error instanceof Error) return { error: error.message, error_name: error.name, stack: error.stack };
  return { error: String(error) };
}
