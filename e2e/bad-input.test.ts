// Bad input never reaches the service and never kills the server. Property-based (fast-check): every
// tool gets arguments with exactly one field wrong; each call must be an isError naming that field,
// with no HTTP request (counted at a proxy), and the server must answer correctly afterwards. Then
// garbage bytes on stdin, written by hand to the compiled binary.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mcpEnv, type RawMcp, startRawMcp, textOf, useStack } from "./harness.ts";

const RUNS = 75;
const PROJECT = "bad-input";
const STATUSES = ["pending", "in_progress", "completed"];
const PRIORITIES = ["high", "medium", "low"];

// The MCP server talks to the tracker through a recording proxy, which counts the requests that reached it.
const stack = useStack({ proxy: true, mcp: { model: { LOG_LEVEL: "error" } } });

// ─── Arbitraries: valid values, and wrong ones ───────────────────────────────────────────────────

const ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-".split("");
const idChar = fc.constantFrom(...ID_CHARS);
/** An ID the tools accept: ID characters, but never only dots (`.` and `..` are path steps in a URL). */
const validId = (max: number) =>
  fc.string({ unit: idChar, minLength: 1, maxLength: Math.min(max, 24) }).filter((id) => !/^\.+$/.test(id));
const validType = fc.stringMatching(/^[A-Z][A-Z0-9]{0,15}$/);

/** A value of the wrong JSON type for a string field. */
const notAString = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
);
const MISSING = undefined; // JSON.stringify leaves the field out

/** Strings an ID field of at most `max` characters must refuse, and non-strings, and nothing at all. */
function badId(max: number) {
  const badChar = fc.constantFrom(" ", "/", "?", "#", "%", "*", ":", "+", "é", "\n", "\t", "\u0000", "🙂", "'", '"');
  return fc.oneof(
    fc.constant(""),
    fc.string({ unit: idChar, minLength: max + 1, maxLength: max + 40 }),
    fc.tuple(validId(10), badChar, validId(10)).map(([a, bad, b]) => a + bad + b),
    notAString,
    fc.constant(MISSING),
  );
}

const badType = fc.oneof(
  fc.constant(""),
  fc.stringMatching(/^[a-z][A-Za-z0-9]{0,6}$/),
  fc.stringMatching(/^[0-9][A-Z0-9]{0,6}$/),
  fc.stringMatching(/^[A-Z][A-Z0-9]{16,24}$/),
  fc.stringMatching(/^[A-Z]{1,3}[-_a-z. ][A-Z]{0,3}$/),
  notAString,
  fc.constant(MISSING),
);

const badStatus = fc.oneof(
  fc.string({ maxLength: 12 }).filter((s) => !STATUSES.includes(s)),
  fc.constantFrom("PENDING", "done", "in-progress", " pending"),
  notAString,
);

/** One argument object with exactly one wrong field, and the path the error must name. */
interface Invalid {
  args: Record<string, unknown>;
  /** The field's path as the error shows it, e.g. `tasks[2].priority`; for an unknown key, its name too. */
  field: string;
  key?: string;
}

function corrupt(
  valid: fc.Arbitrary<Record<string, unknown>>,
  wrong: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<Invalid> {
  return fc.oneof(
    ...Object.entries(wrong).map(([field, value]) =>
      fc.tuple(valid, value).map(([args, bad]) => ({ args: { ...args, [field]: bad }, field })),
    ),
  );
}

const getNextTaskArgs = fc.record(
  { project_id: validId(128), status_filter: fc.constantFrom(...STATUSES), claim: fc.boolean() },
  { requiredKeys: ["project_id"] },
);
const invalidGetNextTask = fc.oneof(
  corrupt(getNextTaskArgs, {
    project_id: badId(128),
    status_filter: badStatus,
    claim: fc.oneof(fc.constantFrom("true", "false", 0, 1, null), fc.string({ maxLength: 5 })),
  }),
  // A rule across fields, checked by the tool itself before any request.
  fc
    .tuple(validId(128), fc.constantFrom("in_progress", "completed"))
    .map(([project_id, status_filter]) => ({ args: { project_id, status_filter, claim: true }, field: "claim" })),
);

const updateArgs = fc.record(
  {
    task_id: validId(64),
    status: fc.constantFrom(...STATUSES),
    completion_notes: fc.string({ maxLength: 40 }),
  },
  { requiredKeys: ["task_id", "status"] },
);
const invalidUpdate = corrupt(updateArgs, {
  task_id: badId(64),
  status: fc.oneof(badStatus, fc.constant(MISSING)),
  completion_notes: fc.oneof(fc.string({ minLength: 10_001, maxLength: 10_050 }), notAString),
});

const nextIdArgs = fc.record({ artifact_type: validType, project_id: validId(128) });
const invalidNextId = corrupt(nextIdArgs, { artifact_type: badType, project_id: badId(128) });

const reserveArgs = fc.record({ artifact_type: validType, count: fc.integer({ min: 1, max: 100 }), project_id: validId(128) });
const invalidReserve = corrupt(reserveArgs, {
  artifact_type: badType,
  project_id: badId(128),
  count: fc.oneof(
    fc.integer({ max: 0 }),
    fc.integer({ min: 101 }),
    fc.double({ min: 1.001, max: 99.999, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom("5", null, true, [5], MISSING),
  ),
});

const validTask = fc.record(
  {
    task_id: validId(64),
    project_id: validId(128),
    description: fc.string({ minLength: 1, maxLength: 40 }),
    inputs: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
    outputs: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
    priority: fc.constantFrom(...PRIORITIES),
    depends_on: fc.array(validId(64), { maxLength: 3 }),
  },
  // A task without task_id is valid: the tracker assigns the next TASK-nnn.
  { requiredKeys: ["project_id", "description"] },
);
const TASK_KEYS = ["task_id", "project_id", "description", "inputs", "outputs", "priority", "depends_on"];
const notAStringArray = fc.oneof(
  fc.string({ maxLength: 5 }),
  fc.constant(null),
  fc.constant([1]),
  fc.constant([null]),
  fc.constant({}),
);

/** A task with one wrong field; `field` is relative to the task. */
const invalidTask: fc.Arbitrary<{ task: unknown; field: string; key?: string }> = fc.oneof(
  ...Object.entries({
    task_id: badId(64).filter((value) => value !== MISSING), // left out, the tracker assigns one
    project_id: badId(128),
    description: fc.oneof(fc.constant(""), fc.string({ minLength: 10_001, maxLength: 10_020 }), notAString, fc.constant(MISSING)),
    priority: fc.oneof(
      fc.string({ maxLength: 8 }).filter((s) => !PRIORITIES.includes(s)),
      fc.constantFrom("HIGH", null, 1),
    ),
    inputs: notAStringArray,
    outputs: notAStringArray,
    depends_on: fc.oneof(
      notAStringArray,
      badId(64)
        .filter((value) => value !== MISSING)
        .map((bad) => [bad]),
    ),
  }).map(([field, value]) =>
    fc.tuple(validTask, value).map(([task, bad]) => ({ task: { ...task, [field]: bad }, field: `.${field}` })),
  ),
  fc
    .tuple(
      validTask,
      fc.stringMatching(/^[a-z_]{1,12}$/).filter((key) => !TASK_KEYS.includes(key)),
    )
    .map(([task, key]) => ({ task: { ...task, [key]: "x" }, field: "", key })),
  fc.oneof(fc.constant(null), fc.string({ maxLength: 5 }), fc.integer(), fc.constant([])).map((task) => ({ task, field: "" })),
);

const tooManyTasks = Array.from({ length: 501 }, (_, i) => ({ task_id: `T-${i}`, project_id: PROJECT, description: "x" }));
const invalidAddTask: fc.Arbitrary<Invalid> = fc.oneof(
  fc
    .tuple(fc.array(validTask, { minLength: 0, maxLength: 4 }), invalidTask, fc.array(validTask, { maxLength: 2 }))
    .map(([before, { task, field, key }, after]) => ({
      args: { tasks: [...before, task, ...after] },
      field: `tasks[${before.length}]${field}`,
      key,
    })),
  fc
    .oneof(fc.constant([]), fc.constant(tooManyTasks), notAString, fc.constant(MISSING))
    .map((tasks) => ({ args: { tasks }, field: "tasks" })),
);

// ─── The properties ─────────────────────────────────────────────────────────────────────────────

const tools: [string, fc.Arbitrary<Invalid>][] = [
  ["get_next_task", invalidGetNextTask],
  ["update_task_status", invalidUpdate],
  ["get_next_available_id", invalidNextId],
  ["reserve_id_range", invalidReserve],
  ["add_task", invalidAddTask],
];

/** A valid call of each tool after the bad ones, and what it must return. */
const afterwards: Record<string, { args: Record<string, unknown>; expected: Record<string, unknown> }> = {
  add_task: {
    args: { tasks: [{ task_id: "BI-1", project_id: PROJECT, description: "Still works", priority: "high" }] },
    expected: { success: true, tasks_added: 1, task_ids: ["BI-1"] },
  },
  get_next_task: {
    args: { project_id: PROJECT, claim: true },
    expected: { task: expect.objectContaining({ task_id: "BI-1", status: "in_progress" }) },
  },
  update_task_status: {
    args: { task_id: "BI-1", status: "completed", completion_notes: "after the storm" },
    expected: { task: expect.objectContaining({ task_id: "BI-1", status: "completed", completion_notes: "after the storm" }) },
  },
  get_next_available_id: { args: { artifact_type: "US", project_id: PROJECT }, expected: { next_id: "US-001" } },
  reserve_id_range: {
    args: { artifact_type: "US", count: 2, project_id: PROJECT },
    expected: expect.objectContaining({ reserved_ids: ["US-002", "US-003"] }),
  },
};

describe("every invalid argument is refused before any HTTP request", () => {
  // add_task first: the valid calls afterwards build on each other (add, claim, complete, allocate).
  const order = ["add_task", "get_next_task", "update_task_status", "get_next_available_id", "reserve_id_range"];
  for (const name of order) {
    const invalid = tools.find(([tool]) => tool === name)![1];
    test(`${name}: an isError naming the field, no request, and a correct answer afterwards`, async () => {
      await fc.assert(
        fc.asyncProperty(invalid, async ({ args, field, key }) => {
          const result = await stack.mcp.model.call(name, args);
          expect(result.isError).toBe(true);
          const text = textOf(result);
          expect(text).toContain(field);
          if (key !== undefined) expect(text).toContain(`"${key}"`);
          expect(text).not.toContain("Internal error");
          expect(stack.proxy.requests).toHaveLength(0);
        }),
        { numRuns: RUNS },
      );

      const valid = afterwards[name]!;
      const result = await stack.mcp.model.call(name, valid.args);
      expect(result.isError ? textOf(result) : "ok").toBe("ok");
      expect(result.structuredContent).toEqual(valid.expected);
      expect(stack.proxy.requests.length).toBeGreaterThanOrEqual(1);
    });
  }
});

describe("garbage on stdin", () => {
  let raw: RawMcp;

  beforeAll(async () => {
    raw = startRawMcp(mcpEnv(stack.tracker.url, stack.tracker.apiKey, { LOG_LEVEL: "error" }));
    await raw.initialize();
  });

  afterAll(async () => {
    await raw.kill();
  });

  const jsonRpcLike = fc
    .record(
      {
        jsonrpc: fc.constantFrom("2.0", "1.0", 2, null),
        id: fc.oneof(fc.integer(), fc.constant(null), fc.double()),
        method: fc.constantFrom(
          "tools/call",
          "tools/list",
          "initialize",
          "ping",
          "nope",
          "notifications/cancelled",
          "resources/read",
        ),
        params: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: [] },
    )
    .map((message) => JSON.stringify(message));
  const garbage = fc.oneof(
    fc.uint8Array({ maxLength: 600 }),
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.json({ maxDepth: 3 }),
    jsonRpcLike,
    fc.constantFrom(
      "",
      "\r",
      "{",
      "}",
      "[]",
      "null",
      '"text"',
      '{"jsonrpc":"2.0"}',
      '{"jsonrpc":"2.0","id":"raw-x","result":{}}',
      "\u00ff\u00fe",
    ),
  );

  test("random bytes, broken JSON and malformed JSON-RPC lines do not kill the server", async () => {
    await fc.assert(
      fc.asyncProperty(garbage, async (junk) => {
        raw.write(junk);
        raw.write("\n");
        const pong = await raw.request("ping");
        expect(pong).toMatchObject({ result: {} });
      }),
      { numRuns: 60 },
    );

    // A line of a whole mebibyte, and a line split across many writes.
    raw.write(Buffer.alloc(1024 * 1024, "x"));
    raw.write("\n");
    for (const piece of ['{"jsonrpc":', '"2.0","id":"split-1",', '"method":"ping"}\n']) raw.write(piece);
    await raw.stdout.waitFor((line) => line.includes('"split-1"'), "the answer to a ping written in pieces");

    // Still a correct MCP server: it lists its tools and runs one against the tracker.
    const listed = await raw.request("tools/list");
    expect(listed.result.tools.map((tool: { name: string }) => tool.name).sort()).toEqual([
      "add_task",
      "get_next_available_id",
      "get_next_task",
      "get_task",
      "list_tasks",
      "reserve_id_range",
      "update_task",
      "update_task_status",
    ]);
    const called = await raw.request("tools/call", { name: "get_next_task", arguments: { project_id: "garbage-free" } });
    expect(called.result).toMatchObject({ structuredContent: { task: null } });

    // Stdout held nothing but JSON-RPC messages.
    for (const line of raw.stdout.lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: "2.0" });
    expect(await raw.close()).toBe(0);
  });

  test("a line over 10 MiB is dropped with a log line, and the server goes on serving", async () => {
    const guarded = startRawMcp(mcpEnv(stack.tracker.url, stack.tracker.apiKey, { LOG_LEVEL: "warn" }));
    try {
      await guarded.initialize();
      for (let i = 0; i < 11; i++) guarded.write(Buffer.alloc(1024 * 1024, "A"));
      guarded.write("\n");
      expect(await guarded.request("ping")).toMatchObject({ result: {} });
      const listed = await guarded.request("tools/list");
      expect(listed.result.tools).toHaveLength(8);
      await guarded.stderr.waitFor(
        (line) => line.includes("dropped a message of 11534337 bytes from the client"),
        "the drop to be logged",
      );
      expect(await guarded.close()).toBe(0);
    } finally {
      await guarded.kill();
    }
  });
});
