// The two forms of the log: which one a tracker picks, and what a plain line holds.

import { describe, expect, test } from "bun:test";
import { chooseLogFormat, createLogger, describeError, type LogFormat, type LogLevel, textLine } from "./log.ts";

describe("chooseLogFormat", () => {
  test("LOG_FORMAT decides when set; else text in a terminal and JSON lines elsewhere", () => {
    expect(chooseLogFormat(null, true)).toBe("text");
    expect(chooseLogFormat(null, false)).toBe("json");
    expect(chooseLogFormat("json", true)).toBe("json");
    expect(chooseLogFormat("text", false)).toBe("text");
  });
});

/** The lines a logger of this form and level writes for these events. */
function linesOf(format: LogFormat, level: LogLevel, events: Array<[LogLevel, string, Record<string, unknown>?]>): string[] {
  let written = "";
  const logger = createLogger(level, (text) => (written += text), format);
  for (const [eventLevel, msg, fields] of events) logger.log(eventLevel, msg, fields);
  logger.flush();
  return written.split("\n").filter((line) => line !== "");
}

const access = { method: "GET", path: "/tasks", status: 200, duration_ms: 1.5, request_id: "r-1" };
const EVENTS: Array<[LogLevel, string, Record<string, unknown>?]> = [
  ["debug", "request started", { method: "GET", path: "/tasks", request_id: "r-1" }],
  ["info", "request", access],
  ["info", "tracker stopping", { signal: "SIGINT" }],
  ["warn", "closed a live stream whose client reads too slowly"],
  ["error", "request", { ...access, status: 500 }],
];

describe("createLogger", () => {
  test("the text form counts the access log as debug, and LOG_LEVEL filters the rest as in JSON", () => {
    const messages = (format: LogFormat, level: LogLevel) =>
      linesOf(format, level, EVENTS).map((line) => (format === "json" ? JSON.parse(line).msg : line.slice(9).split(" (")[0]));
    expect(messages("json", "info")).toEqual([
      "request",
      "tracker stopping",
      "closed a live stream whose client reads too slowly",
      "request",
    ]);
    expect(messages("text", "info")).toEqual([
      "info: tracker stopping",
      "warning: closed a live stream whose client reads too slowly",
      "error: request",
    ]);
    expect(messages("text", "warn")).toEqual(["warning: closed a live stream whose client reads too slowly", "error: request"]);
    expect(messages("text", "error")).toEqual(["error: request"]);
    expect(messages("text", "debug")).toHaveLength(5);
  });

  test("the JSON form is one object a line, as before", () => {
    const [line] = linesOf("json", "info", [["warn", "slow", { timeout_ms: 10 }]]);
    expect(JSON.parse(line!)).toEqual({ ts: expect.any(String), level: "warn", msg: "slow", timeout_ms: 10 });
  });
});

describe("textLine", () => {
  const at = new Date(2026, 11, 6, 8, 5, 9);

  test("the local time, the level, the message and the fields that are set", () => {
    expect(textLine(at, "warn", "the database did not answer in time", { timeout_ms: 10000, skipped: undefined })).toBe(
      "08:05:09 warning: the database did not answer in time (timeout_ms=10000)\n",
    );
    expect(textLine(at, "info", "tracker stopped")).toBe("08:05:09 info: tracker stopped\n");
  });

  test("an error's own words follow the message, its stack stays out, the line stays one line", () => {
    const error = new TypeError("undefined is not an object\n  (evaluating 'x.y')");
    expect(textLine(at, "error", "request failed", { request_id: "r-1", ...describeError(error) })).toBe(
      "08:05:09 error: request failed: TypeError: undefined is not an object (evaluating 'x.y') (request_id=r-1)\n",
    );
    expect(textLine(at, "error", "could not expire leases", describeError(new Error("disk I/O error")))).toBe(
      "08:05:09 error: could not expire leases: disk I/O error\n",
    );
  });

  test("values with spaces are quoted, and no control character reaches the terminal", () => {
    expect(textLine(at, "debug", "request", { path: "/tasks/a b", agent: "x\u001b[2Jy", tags: ["a"] })).toBe(
      '08:05:09 debug: request (path="/tasks/a b" agent="x\\u001b[2Jy" tags=["a"])\n',
    );
    expect(textLine(at, "warn", "odd\u0007message")).toBe("08:05:09 warning: odd\\u0007message\n");
  });
});
