// What the MCP server's unit tests (index.test.ts, transfer.test.ts) share about the tracker they stand in for.

import { createServer } from "node:net";

/** A task as the tracker answers it (docs/API.md), TASK-051 of `project` unless overridden. */
export function trackerTask(project: string, overrides: Record<string, unknown> = {}) {
  return {
    task_id: "TASK-051",
    project_id: project,
    description: "Implement US-053",
    inputs: ["US-053"],
    outputs: ["index.ts"],
    priority: "high",
    depends_on: [],
    status: "pending",
    claimed_by: null,
    completion_notes: "",
    created_at: "2026-11-24T21:46:59.123Z",
    updated_at: "2026-11-24T21:46:59.123Z",
    started_at: null,
    completed_at: null,
    ...overrides,
  };
}

/** A port on which nothing listens. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
