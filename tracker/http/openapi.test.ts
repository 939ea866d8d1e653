// GET /openapi.json against the route table and docs/API.md: three descriptions of one API that
// must name the same routes with the same query parameters.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestTracker, type TestTracker } from "../testing.ts";
import { openApiDocument } from "./openapi.ts";
import { routes } from "./routes.ts";

interface Operation {
  parameters: Array<{ name: string; in: string; required: boolean; schema: Record<string, unknown> }>;
  requestBody?: { content: { "application/json": { schema: any } } };
  security?: unknown[];
  responses: Record<string, unknown>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

/** `METHOD /path` → its query parameter names, sorted. */
type Inventory = Map<string, string[]>;

function documentedInApiMd(): Inventory {
  const text = readFileSync(join(import.meta.dir, "../../docs/API.md"), "utf8");
  const inventory: Inventory = new Map();
  for (const [, method, target] of text.matchAll(/^### `([A-Z]+) ([^`]+)`/gm)) {
    const [path = "", query = ""] = target!.split("?");
    const names = query === "" ? [] : query.split("&").map((pair) => pair.split("=")[0]!);
    inventory.set(`${method} ${path.replace(/<(\w+)>/g, "{$1}")}`, names.sort());
  }
  return inventory;
}

function inTable(): Inventory {
  return new Map(routes.map((route) => [`${route.method} ${route.path}`, Object.keys(route.query?.shape ?? {}).sort()]));
}

function inDocument(document: Document): Inventory {
  const inventory: Inventory = new Map();
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const query = operation.parameters.filter((parameter) => parameter.in === "query").map((parameter) => parameter.name);
      inventory.set(`${method.toUpperCase()} ${path}`, query.sort());
    }
  }
  return inventory;
}

const sorted = (inventory: Inventory) => [...inventory.entries()].sort(([a], [b]) => a.localeCompare(b));

describe("the OpenAPI document", () => {
  const document = openApiDocument(routes, "1.2.3") as unknown as Document;

  test("has every route of the table, with its query parameters, and nothing else", () => {
    expect(document.openapi).toBe("3.1.0");
    expect(sorted(inDocument(document))).toEqual(sorted(inTable()));
  });

  test("docs/API.md documents every route of the table, with its query parameters, and nothing else", () => {
    expect(sorted(documentedInApiMd())).toEqual(sorted(inTable()));
  });

  test("names the codes of each error status; a 404 is the not-found code of what the path names", () => {
    const codes = (path: string, method: string, status: string) =>
      (document.paths[path]![method]!.responses[status] as any)?.content["application/json"].schema.properties.code.enum;
    expect(codes("/tasks/{task_id}", "get", "404")).toEqual(["task_not_found"]);
    expect(codes("/tasks/{task_id}/status", "put", "409")).toContain("claim_lost");
    expect(codes("/ids/reservations/{reservation_id}", "get", "404")).toEqual(["reservation_not_found"]);
    expect(codes("/tasks", "get", "404")).toBeUndefined();
    expect(codes("/ids/registry/{project_id}/{artifact_type}", "put", "404")).toBeUndefined();
    expect(codes("/events", "get", "429")).toEqual(["too_many_requests"]);
    // Every route that takes a key: its rate limit (429), and a role or project it lacks (403).
    expect(codes("/tasks", "get", "429")).toEqual(["too_many_requests"]);
    expect(codes("/tasks", "get", "403")).toEqual(["forbidden"]);
    expect(codes("/healthz", "get", "403")).toBeUndefined();
    expect(codes("/admin/keys/{name}", "delete", "404")).toEqual(["key_not_found"]);
    expect(codes("/admin/keys", "post", "409")).toContain("conflict");
    expect(codes("/admin/keys", "post", "422")).toBeUndefined();
  });

  test("comes from the schemas that validate the requests", () => {
    const batch = document.paths["/tasks/batch"]!.post!.requestBody!.content["application/json"].schema;
    expect(batch.properties.tasks).toMatchObject({ type: "array", minItems: 1, maxItems: 500 });
    expect(batch.properties.tasks.items.required).toEqual(["project_id", "description"]);
    expect(batch.properties.tasks.items.properties.task_id.description).toBe(
      "Left out: the tracker assigns the next TASK-nnn of the project's ID registry",
    );
    expect(batch.properties.tasks.items.additionalProperties).toBe(false);
    const status = document.paths["/tasks/{task_id}/status"]!.put!;
    expect(status.requestBody!.content["application/json"].schema.properties.lease_seconds).toMatchObject({
      minimum: 5,
      maximum: 86400,
    });
    expect(status.parameters.map((parameter) => [parameter.name, parameter.in, parameter.required])).toEqual([
      ["task_id", "path", true],
      ["project", "query", false],
      ["X-Agent-Id", "header", false],
      ["Idempotency-Key", "header", false],
    ]);
    const list = document.paths["/tasks"]!.get!.parameters.find((parameter) => parameter.name === "limit");
    expect(list).toMatchObject({ in: "query", required: false });
  });

  test("needs no key for /healthz and itself only", () => {
    const open = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.security !== undefined)
        .map(([method]) => `${method} ${path}`),
    );
    expect(open.sort()).toEqual(["get /healthz", "get /openapi.json"]);
  });
});

describe("GET /openapi.json", () => {
  let t: TestTracker;
  beforeAll(async () => {
    t = await startTestTracker({ version: "7.7.7-test" });
  });
  afterAll(async () => {
    await t.stop();
  });

  test("answers without a key with the document of the running version", async () => {
    const response = await t.request("GET", "/openapi.json", { apiKey: null });
    expect([response.status, response.headers.get("content-type")]).toEqual([200, "application/json"]);
    expect(response.body).toEqual(JSON.parse(JSON.stringify(openApiDocument(routes, "7.7.7-test"))));
    const other = await startTestTracker({ version: "8.8.8-test" });
    try {
      expect((await other.request("GET", "/openapi.json", { apiKey: null })).body.info.version).toBe("8.8.8-test");
    } finally {
      await other.stop();
    }
  });
});
