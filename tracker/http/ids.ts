// The handlers of the ID routes (API.md, "Endpoints": /ids/…).

import { formatArtifactId, type Reservation, reservationNotFound, reservedIds } from "../domain.ts";
import { mayUseProject } from "../keys.ts";
import { json } from "./pipeline.ts";
import type {
  allocateQuery,
  projectFilterQuery,
  registryImportBody,
  registryPath,
  reservationBody,
  reservationPath,
} from "./schemas.ts";
import type { Handler } from "./types.ts";

function renderReservation(reservation: Reservation) {
  return {
    reservation_id: reservation.reservationId,
    reserved_ids: reservedIds(reservation),
    expires_at: reservation.expiresAt,
    artifact_type: reservation.artifactType,
    project_id: reservation.projectId,
  };
}

function reservationStatus(reservation: Reservation, now: Date): "active" | "expired" {
  return now.getTime() < Date.parse(reservation.expiresAt) ? "active" : "expired";
}

/** GET /ids/next: allocates the next ID of a type in a project. */
export const allocateId: Handler<undefined, typeof allocateQuery> = async ({ query, services, write }) => {
  const { type: artifactType, project: projectId } = query;
  return write<number>(
    (idempotency) => services.storage.allocateId(projectId, artifactType, idempotency),
    (number) =>
      json(200, { next_id: formatArtifactId(artifactType, number), artifact_type: artifactType, project_id: projectId, number }),
  );
};

/** POST /ids/reserve: reserves `count` contiguous IDs at once. */
export const reserveIds: Handler<undefined, undefined, typeof reservationBody> = async ({ body, services, write }) => {
  const createdAt = services.now();
  return write<Reservation>(
    (idempotency) =>
      services.storage.reserveIds(
        {
          // Time-ordered (UUIDv7): new reservations append to the table's B-tree, where random
          // IDs dirtied a random page each, which every checkpoint then had to write (bench/).
          reservationId: Bun.randomUUIDv7(),
          projectId: body.project_id,
          artifactType: body.type,
          count: body.count,
          createdAt,
          expiresAt: new Date(createdAt.getTime() + services.reservationTtlMs),
        },
        idempotency,
      ),
    (reservation) => json(201, renderReservation(reservation)),
  );
};

/** GET /ids/reservations/{reservation_id}: one reservation, active or expired. */
export const getReservation: Handler<typeof reservationPath> = async ({ params, holder, services }) => {
  const reservation = await services.storage.getReservation(params.reservation_id);
  // Another project's, for a key limited to projects, is as if it did not exist.
  if (!reservation || !mayUseProject(holder, reservation.projectId)) throw reservationNotFound(params.reservation_id);
  return json(200, { ...renderReservation(reservation), status: reservationStatus(reservation, services.now()) });
};

/** GET /ids/registry: the ID counters and the active reservations, for the board. */
export const getRegistry: Handler<undefined, typeof projectFilterQuery> = async ({ query, holder, services }) => {
  const now = services.now();
  const registry = await services.storage.listRegistry(query.project ?? null, now);
  const counters = registry.counters.filter((counter) => mayUseProject(holder, counter.project_id));
  const visible = registry.reservations.filter((reservation) => mayUseProject(holder, reservation.projectId));
  const reservations = visible.map((reservation) => ({
    ...renderReservation(reservation),
    status: reservationStatus(reservation, now),
  }));
  return json(200, { counters, reservations });
};

/** PUT /ids/registry/{project_id}/{artifact_type}: raises a counter, for importing a backlog. */
export const raiseCounter: Handler<typeof registryPath, undefined, typeof registryImportBody> = async (call) => {
  const { project_id: projectId, artifact_type: artifactType } = call.params;
  return call.write<number>(
    (idempotency) => call.services.storage.raiseIdCounter(projectId, artifactType, call.body.last_assigned_id, idempotency),
    (last) => json(200, { project_id: projectId, artifact_type: artifactType, last_assigned_id: last }),
  );
};
