// The API key never appears on the MCP server's stdout or stderr, nor in any result, even when the
// service's answers contain it: a proxy rewrites them to. The key holds `"` and `\`, so its
// JSON-escaped form must be hidden as well. The server is spoken to by hand, so stdout is seen byte
// for byte, with LOG_LEVEL=debug so that every log line is there to be checked.

import { beforeAll, describe, expect, test } from "bun:test";
import {
  type Action,
  mcpEnv,
  type RawMcp,
  runBinary,
  startProxy,
  startRawMcp,
  startTrackerProcess,
  useStack,
} from "./harness.ts";

const KEY = `e2e"secret\\key-${Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString("hex")}`;
const ESCAPED_KEY = JSON.stringify(KEY).slice(1, -1);
const PROJECT = "secrets";

// A proxy between the MCP server and the tracker puts the key into the service's answers.
const stack = useStack({ tracker: { apiKey: KEY }, proxy: true });
let raw: RawMcp;

beforeAll(async () => {
  raw = startRawMcp(mcpEnv(stack.url, KEY, { LOG_LEVEL: "debug" }));
  await raw.initialize();
  const added = await stack.tracker.api("POST", "/tasks/batch", {
    tasks: [{ task_id: "S-1", project_id: PROJECT, description: "A task" }],
  });
  expect(added.status).toBe(201);
});

function expectNoKey(text: string) {
  expect(text.includes(KEY)).toBe(false);
  expect(text.includes(ESCAPED_KEY)).toBe(false);
}

async function call(name: string, args: Record<string, unknown>) {
  const answer = await raw.request("tools/call", { name, arguments: args });
  expectNoKey(JSON.stringify(answer));
  return answer.result as { isError?: boolean; content: { text: string }[]; structuredContent?: any };
}

const json = (status: number, body: unknown): Action => ({
  type: "reply",
  status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("the key in the service's answers is never passed on", () => {
  test("in a 400's error sentence", async () => {
    stack.proxy.script(json(400, { error: `the key ${KEY} may not do this`, code: "invalid_transition" }));
    const result = await call("update_task_status", { task_id: "S-1", status: "completed" });
    expect(result).toMatchObject({
      isError: true,
      content: [{ text: "Invalid status transition: the key [REDACTED] may not do this" }],
    });
  });

  test("in a 401's error sentence", async () => {
    stack.proxy.script(json(401, { error: `Unauthorized: Bearer ${KEY}`, code: "unauthorized" }));
    const result = await call("reserve_id_range", { artifact_type: "US", count: 1, project_id: PROJECT });
    expect(result).toMatchObject({
      isError: true,
      content: [{ text: "Task Tracking API error: 401 - Unauthorized: Bearer [REDACTED]" }],
    });
  });

  test("in a 500's plain-text body, on every retry", async () => {
    stack.proxy.setPlan(() => ({
      type: "reply",
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `upstream rejected ${KEY}`,
    }));
    const result = await call("get_next_available_id", { artifact_type: "US", project_id: PROJECT });
    expect(result).toMatchObject({
      isError: true,
      content: [{ text: "Task Tracking API error: 500 - upstream rejected [REDACTED]" }],
    });
    expect(stack.proxy.requests).toHaveLength(4);
  });

  test("in a 2xx body that is not JSON", async () => {
    stack.proxy.script({ type: "reply", status: 200, body: `${KEY} <html>` });
    const result = await call("get_next_task", { project_id: PROJECT });
    expect(result.isError).toBe(true);
    expect(result.content[0]!.text).toStartWith(
      'Task Tracking API returned an invalid response: the body is not JSON ("[REDACTED]',
    );
  });

  test("in a task the service returns, in the text and in structuredContent", async () => {
    stack.proxy.script({
      type: "forward-then-replace",
      replace: (upstream) => {
        const body = JSON.parse(upstream.body);
        body.task.description = `Rotate the key ${KEY}`;
        body.task.inputs = [KEY];
        return { ...upstream, body: JSON.stringify(body) };
      },
    });
    const result = await call("get_next_task", { project_id: PROJECT });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent.task).toMatchObject({
      task_id: "S-1",
      description: "Rotate the key [REDACTED]",
      inputs: ["[REDACTED]"],
    });
  });

  test("not even its first characters, when the service's text is cut in the middle of the key", async () => {
    const prefix = KEY.slice(0, 20);
    stack.proxy.setPlan(() => ({ type: "reply", status: 500, body: `${"x".repeat(180)}${KEY}` }));
    const result = await call("get_next_available_id", { artifact_type: "US", project_id: PROJECT });
    expect(result.content[0]!.text).not.toContain(prefix);
    stack.proxy.script({ type: "reply", status: 200, body: `${"y".repeat(40)}${KEY}` });
    const notJson = await call("get_next_task", { project_id: PROJECT });
    expect(notJson.content[0]!.text).not.toContain(prefix);
  });

  test("stdout held only JSON-RPC, and neither stdout nor the debug log on stderr holds the key", async () => {
    for (const line of raw.stdout.lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: "2.0" });
    expect(raw.stderr.text()).toContain("[REDACTED]"); // the log did see the rewritten answers
    expect(await raw.close()).toBe(0);
    expectNoKey(raw.stdout.text());
    expectNoKey(raw.stderr.text());
    expect(await stack.tracker.stop()).toBe(0);
    expectNoKey(stack.tracker.stderr.text());
  });
});

describe("doctor never prints the key", () => {
  test("when all is well, and when the service answers 401 with the key in its body", async () => {
    const fresh = await startTrackerProcess({ apiKey: KEY });
    const doctorProxy = await startProxy(fresh.url);
    const ok = await runBinary(["doctor"], mcpEnv(doctorProxy.url, KEY));
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: "" });
    expect(ok.stdout).toContain("✓ API key accepted");

    doctorProxy.setPlan((request) =>
      request.target.startsWith("/healthz")
        ? { type: "forward" }
        : json(401, { error: `Unauthorized (you sent ${KEY})`, code: "unauthorized" }),
    );
    const refused = await runBinary(["doctor"], mcpEnv(doctorProxy.url, KEY));
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("✗ API key: Task Tracking API error: 401 - Unauthorized (you sent [REDACTED])");
    for (const run of [ok, refused]) {
      expectNoKey(run.stdout);
      expectNoKey(run.stderr);
    }
    await doctorProxy.kill();
    expect(await fresh.stop()).toBe(0);
    await fresh.kill();
  });
});
