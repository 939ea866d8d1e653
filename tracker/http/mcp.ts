// GET, POST and DELETE /mcp: MCP over Streamable HTTP, served by the MCP server of index.ts (the sessions:
// mcp-sessions.ts). The pipeline has checked the key and X-Agent-Id as for any route.

import type { Handler, Reply } from "./types.ts";

/** The longest a message of a session may take to answer. */
const MAX_CALL_SECONDS = 60;

/** /mcp: one message of an MCP session (POST), its stream (GET) or its end (DELETE). */
export const mcp: Handler = async ({ request, caller, holder, agentId, services, keepOpen }) => {
  // A session's GET stream is quiet between keep-alives: the connection's idle timeout must not end it.
  // A tool call may take longer than that timeout (10 s) when the tracker is slow: each attempt of each
  // request it makes may take TrackerClient's 5 s.
  keepOpen(request.method === "GET" ? 0 : MAX_CALL_SECONDS);
  const apiKey = request.headers.get("authorization")!.slice("bearer ".length).trim();
  return replyOf(await services.mcp.handle(request, { scope: caller, apiKey, agentId, role: holder.role }));
};

/** The transport's response as the pipeline sends replies: a stream stays a stream, anything else is text. */
async function replyOf(response: Response): Promise<Reply> {
  // Named as the pipeline names the headers it sets, so that each is sent once.
  const { "content-type": contentType, ...headers } = Object.fromEntries(response.headers);
  if (contentType) headers["Content-Type"] = contentType;
  // As the pipeline's own 413: the rest of the body may still be on its way, so close rather than read it.
  if (response.status === 413) headers.Connection = "close";
  const isStream = contentType?.startsWith("text/event-stream") && response.body !== null;
  return { status: response.status, body: isStream ? response.body! : await response.text(), headers };
}
