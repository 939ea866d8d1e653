// REFERENCE, not our server: the least an MCP tool call can cost here. The same SDK, the same stdio
// transport and (in bench/run.ts) the same `bun build --compile` flags as dist/task-tracking-mcp, with
// one tool that answers at once.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "mcp-floor", version: "0.0.0" });
server.registerTool(
  "noop",
  { description: "Returns at once", inputSchema: { n: z.number().optional() }, outputSchema: { ok: z.boolean() } },
  async () => ({ content: [{ type: "text", text: '{"ok":true}' }], structuredContent: { ok: true } }),
);
await server.connect(new StdioServerTransport());
