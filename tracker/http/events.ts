// GET /events: the live stream of the history as Server-Sent Events (the streams: live-streams.ts).

import type { projectFilterQuery } from "./schemas.ts";
import type { Handler } from "./types.ts";

/** GET /events: Server-Sent Events, `event: task`, one per change, with `: keep-alive` comments. */
export const streamEvents: Handler<undefined, typeof projectFilterQuery> = async ({
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
  });
  keepOpen();
  // Content-Type text/event-stream comes with a stream body (pipeline.ts); proxies must not buffer it.
  return { status: 200, body, headers: { "X-Accel-Buffering": "no" } };
};
