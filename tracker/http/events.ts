// GET /events: the live stream of the history as Server-Sent Events (the streams: live-streams.ts).

import type { eventsQuery } from "./schemas.ts";
import type { Handler } from "./types.ts";

/**
 * GET /events: Server-Sent Events, `event: task`, one per change (those of 100 ms in one write), or
 * with view=tasks one `event: tasks` per 100 ms (each changed task once), with `: keep-alive`
 * comments; `event: reload` to a viewer that fell behind, as its stream ends.
 */
export const streamEvents: Handler<undefined, typeof eventsQuery> = async ({
  query,
  request,
  caller,
  holder,
  services,
  keepOpen,
}) => {
  const body = services.streams.open({
    storage: services.storage,
    logger: services.logger,
    projectId: query.project ?? null,
    projects: holder.projects,
    signal: request.signal,
    key: caller,
    view: query.view ?? "history",
  });
  keepOpen();
  // Content-Type text/event-stream comes with a stream body (pipeline.ts); proxies must not buffer it.
  return { status: 200, body, headers: { "X-Accel-Buffering": "no" } };
};
