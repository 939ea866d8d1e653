// GET /openapi.json: the OpenAPI 3.1 document, generated from the route table and the same zod
// schemas that validate the requests (z.toJSONSchema), so it cannot drift from the code.

import { z } from "zod";
import { type ErrorCode, statusByErrorCode } from "../domain.ts";
import { describeRoute } from "./pipeline.ts";
import { errorSchema } from "./schemas.ts";
import type { Route } from "./types.ts";

type JsonSchema = Record<string, unknown>;

/** OpenAPI 3.1 takes JSON Schema 2020-12 as it is; only the `$schema` of each piece goes. */
function jsonSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  return rest;
}

/** One OpenAPI parameter per property of a path or query schema. */
function parameters(schema: z.ZodType | undefined, where: "path" | "query"): JsonSchema[] {
  if (!schema) return [];
  const object = jsonSchema(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(object.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === "path" || (object.required ?? []).includes(name),
    schema: property,
  }));
}

const headerParameters = {
  idempotencyKey: {
    name: "Idempotency-Key",
    in: "header",
    required: false,
    description: "1 to 255 printable ASCII characters: a retry with the same key gets the stored response",
    schema: { type: "string", minLength: 1, maxLength: 255 },
  },
  agentId: {
    name: "X-Agent-Id",
    in: "header",
    required: false,
    description: "1 to 128 printable ASCII characters: the claimant, checked as the holder, recorded in the history",
    schema: { type: "string", minLength: 1, maxLength: 128 },
  },
};

/** What a 404 of a route means: the not-found code of the thing its path names. */
const notFoundCodeByPathParameter: Record<string, ErrorCode> = {
  task_id: "task_not_found",
  reservation_id: "reservation_not_found",
  name: "key_not_found",
};

function notFoundCodes(route: Route): ErrorCode[] {
  const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!);
  return names.flatMap((name) => notFoundCodeByPathParameter[name] ?? []);
}

/** The codes an error response of this status may carry (domain.ts's table). */
function codesOf(status: number, route: Route): ErrorCode[] {
  if (status === statusByErrorCode.not_found) return notFoundCodes(route);
  return (Object.keys(statusByErrorCode) as ErrorCode[]).filter((code) => statusByErrorCode[code] === status);
}

function errorResponse(codes: readonly ErrorCode[]): JsonSchema {
  const schema = jsonSchema(errorSchema) as { properties: Record<string, JsonSchema> };
  schema.properties.code = { type: "string", enum: [...codes] };
  return {
    description: `An error: one sentence and a code (${codes.join(", ")})`,
    content: { "application/json": { schema } },
  };
}

function errorResponses(route: Route): Record<string, JsonSchema> {
  // Every key may meet its rate limit (429), and a role or project it lacks (403).
  const statuses = new Set<number>(route.auth ? [401, 403, 429] : []);
  if (route.params || route.query || route.body) statuses.add(statusByErrorCode.validation_failed);
  if (route.idempotent) for (const status of [409, 422]) statuses.add(status);
  // A body may name a thing that exists already (POST /admin/keys, which takes no Idempotency-Key).
  if (route.body) statuses.add(409);
  if (route.limited) statuses.add(statusByErrorCode.too_many_requests);
  if (notFoundCodes(route).length > 0) statuses.add(statusByErrorCode.not_found);
  statuses.add(statusByErrorCode.internal);
  statuses.add(statusByErrorCode.unavailable);
  return Object.fromEntries([...statuses].sort().map((status) => [String(status), errorResponse(codesOf(status, route))]));
}

function operation(route: Route): JsonSchema {
  const success = route.success;
  const parameterList = [...parameters(route.params, "path"), ...parameters(route.query, "query"), headerParameters.agentId];
  if (route.idempotent) parameterList.push(headerParameters.idempotencyKey);
  return {
    operationId: route.handler.name || describeRoute(route),
    summary: route.summary,
    ...(route.auth ? {} : { security: [] }),
    parameters: parameterList,
    ...(route.body
      ? { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(route.body) } } } }
      : {}),
    responses: {
      [String(success.status)]: {
        description: success.description,
        ...(success.schema ? { content: { "application/json": { schema: jsonSchema(success.schema) } } } : {}),
      },
      ...errorResponses(route),
    },
  };
}

export function openApiDocument(routes: readonly Route[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: { title: "Task Tracking REST API", version, description: "The contract is docs/API.md of task-tracking-mcp." },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths,
  };
}
