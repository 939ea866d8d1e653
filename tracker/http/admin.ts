// The routes that keep the data (API.md, "Keeping the data"): a copy of the SQLite database file,
// and the dump of everything as JSON lines. `task-tracker backup` and `task-tracker dump` call
// them, since the running tracker holds its database file exclusively.

import { dumpLines, textStream } from "../storage/dump-writer.ts";
import type { Handler, Services } from "./types.ts";

/** GET /admin/backup: a consistent copy of the SQLite database (VACUUM INTO), as its bytes. */
export const backup: Handler = async ({ services, request, keepOpen }) => {
  const free = services.copies.take();
  try {
    keepOpen();
    const file = await services.storage.openBackup();
    services.logger.log("info", "backup started", { bytes: file.size });
    return {
      status: 200,
      body: services.copies.send(file.stream, free, request.signal, () => stalled(services, "backup")),
      headers: {
        "Content-Type": "application/octet-stream",
        // Bun sends a stream chunked, without Content-Length: the size goes in a header of its own.
        "X-Database-Bytes": String(file.size),
        "Content-Disposition": 'attachment; filename="tracker-backup.db"',
      },
    };
  } catch (error) {
    free();
    throw error;
  }
};

/** GET /admin/dump: everything as JSON lines, from one consistent snapshot, read page by page. */
export const dump: Handler = async ({ services, request, keepOpen }) => {
  const free = services.copies.take();
  try {
    keepOpen();
    const snapshot = await services.storage.openSnapshot();
    services.logger.log("info", "dump started");
    return {
      status: 200,
      body: services.copies.send(textStream(dumpLines(snapshot, services.now())), free, request.signal, () =>
        stalled(services, "dump"),
      ),
      headers: { "Content-Type": "application/x-ndjson", "Content-Disposition": 'attachment; filename="tracker-dump.jsonl"' },
    };
  } catch (error) {
    free();
    throw error;
  }
};

function stalled(services: Services, what: "backup" | "dump"): void {
  services.logger.log("warn", `ended a ${what} whose client read nothing for too long`);
}
