// One line per event on stderr, in one of two forms: a JSON object (services, tests and benches read
// these) or a plain line a person reads in a terminal. Lines are batched and written once per turn of
// the event loop, so a busy server does not pay a write system call per request. Stdout is never used.

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** LOG_FORMAT: `json` lines for machines, `text` lines for a person at a terminal. */
export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

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

/**
 * The form when LOG_FORMAT does not say: text when stdout is a terminal (a person started the tracker
 * and reads it), JSON lines otherwise (a service manager, a test, a pipe), as before LOG_FORMAT existed.
 */
export function chooseLogFormat(configured: LogFormat | null, stdoutIsTerminal: boolean): LogFormat {
  return configured ?? (stdoutIsTerminal ? "text" : "json");
}

/**
 * The access log's line (http/pipeline.ts, logRequest), one per request at info. In the text form it
 * counts as debug: a person at a terminal wants the warnings, not a line a request (LOG_LEVEL=debug
 * still shows them). A failed request is logged at error and is shown like any error.
 */
const ACCESS_LOG_MESSAGE = "request";

function levelInForm(format: LogFormat, level: LogLevel, msg: string): LogLevel {
  return format === "text" && level === "info" && msg === ACCESS_LOG_MESSAGE ? "debug" : level;
}

export function createLogger(level: LogLevel = "info", sink: LogSink = writeToStderr, format: LogFormat = "json"): Logger {
  const threshold = severity[level];
  const formatLine = format === "text" ? textLine : jsonLine;
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
      if (severity[levelInForm(format, candidate, msg)] < threshold) return;
      pending += formatLine(new Date(), candidate, msg, fields);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

function jsonLine(time: Date, level: LogLevel, msg: string, fields: LogFields | undefined): string {
  return `${JSON.stringify({ ts: time.toISOString(), level, msg, ...fields })}\n`;
}

const TEXT_LEVEL_NAMES: Record<LogLevel, string> = { debug: "debug", info: "info", warn: "warning", error: "error" };

/**
 * `14:02:11 warning: <msg>: <error> (name=value …)`: the local time, the level, the message, the error's
 * own words, then the other fields. The stack stays out: it would break the one line.
 */
export function textLine(time: Date, level: LogLevel, msg: string, fields: LogFields = {}): string {
  const { error, error_name, stack: _stack, ...rest } = fields;
  const named = typeof error_name === "string" && error_name !== "Error" ? `${error_name}: ` : "";
  const cause = error === undefined ? "" : `: ${named}${oneLine(String(error))}`;
  const others = Object.entries(rest)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}=${textValue(value)}`);
  const details = others.length === 0 ? "" : ` (${others.join(" ")})`;
  return `${clockTime(time)} ${TEXT_LEVEL_NAMES[level]}: ${oneLine(msg)}${cause}${details}\n`;
}

function clockTime(time: Date): string {
  return [time.getHours(), time.getMinutes(), time.getSeconds()].map((part) => String(part).padStart(2, "0")).join(":");
}

/** Plain when it reads unambiguously; quoted (JSON) when it holds spaces, quotes or is not a string. */
function textValue(value: unknown): string {
  if (typeof value === "string" && /^[^\s"=()\p{Cc}]+$/u.test(value)) return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return oneLine(JSON.stringify(value) ?? String(value));
}

/** One line, and no control character reaches the terminal: an escape sequence in a message could rewrite the screen. */
function oneLine(text: string): string {
  return text
    .replace(/\s*[\r\n]+\s*/g, " ")
    .replace(/\p{Cc}/gu, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The fields of an error worth logging; never the request body or headers. */
export function describeError(error: unknown): LogFields {
  if (error instanceof Error) return { error: error.message, error_name: error.name, stack: error.stack };
  return { error: String(error) };
}
