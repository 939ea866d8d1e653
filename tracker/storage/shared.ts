// What both storages share beyond domain.ts's rules and sentences: the in-flight Idempotency-Keys of
// this process, and the check that text can be stored at all.

import { idempotencyInFlight, validationError } from "../domain.ts";
import type { IdempotencyClaim, IdempotencyRequest } from "./storage.ts";

// ---------------------------------------------------------------------------
// Idempotency-Keys whose request is running in this process.

interface InFlightKey<Note> {
  fingerprint: string;
  token: string;
  claimedAt: Date;
  leaseUntil: number;
  retentionMs: number;
  note: Note;
}

/** What a write needs to know of its claim: the request it was made for, and the storage's note. */
export interface ClaimedKey<Note = void> {
  fingerprint: string;
  claimedAt: Date;
  /** A stored row created before this is past the retention and may be replaced. */
  expiredBefore: Date;
  /** What the storage noted when the key was claimed (SQLite: the row's lookup, whether an expired row is there). */
  note: Note;
}

/**
 * The keys claimed by requests of this process that have not answered yet. A twin request on the
 * same process is told `in_flight` at once; across processes the database decides (postgres.ts).
 * SQLite's file is held by one process alone, so there this is all there is.
 * Memory, not a table: a process that dies takes its claims with it, so a key never stays blocked.
 */
export class InFlightKeys<Note = void> {
  private readonly keys = new Map<string, InFlightKey<Note>>();

  private static slot(scope: string, key: string): string {
    return `${scope}\n${key}`;
  }

  /** in_flight or mismatch while a live claim holds the key here; null when none does. */
  busy(request: IdempotencyRequest): "in_flight" | "mismatch" | null {
    const held = this.keys.get(InFlightKeys.slot(request.scope, request.key));
    if (!held || held.leaseUntil <= request.now.getTime()) return null;
    return held.fingerprint === request.fingerprint ? "in_flight" : "mismatch";
  }

  claim(request: IdempotencyRequest, note: Note): IdempotencyClaim {
    const token = crypto.randomUUID();
    this.keys.set(InFlightKeys.slot(request.scope, request.key), {
      fingerprint: request.fingerprint,
      token,
      claimedAt: request.now,
      leaseUntil: request.now.getTime() + request.leaseMs,
      retentionMs: request.retentionMs,
      note,
    });
    return { scope: request.scope, key: request.key, token };
  }

  /** The claim's request while it is the current claim of its key; else idempotencyInFlight's 409. */
  current(claim: IdempotencyClaim): ClaimedKey<Note> {
    const held = this.keys.get(InFlightKeys.slot(claim.scope, claim.key));
    // The lease ran out and another request took the key over: it owns the effect now.
    if (held?.token !== claim.token) throw idempotencyInFlight();
    return {
      fingerprint: held.fingerprint,
      claimedAt: held.claimedAt,
      expiredBefore: new Date(held.claimedAt.getTime() - held.retentionMs),
      note: held.note,
    };
  }

  release(claim: IdempotencyClaim): void {
    const slot = InFlightKeys.slot(claim.scope, claim.key);
    if (this.keys.get(slot)?.token === claim.token) this.keys.delete(slot);
  }
}

// ---------------------------------------------------------------------------
// Text a database can hold.

/**
 * NUL characters and lone surrogates: PostgreSQL refuses the first and cannot encode the second;
 * the HTTP layer rejects both (API.md), and so does the storage, so such text is a 400, never a 500.
 */
export function requireStorableText(name: string, value: string): void {
  if (value.includes("\0")) throw validationError(`${name} must not contain a NUL character`);
  if (!value.isWellFormed()) throw validationError(`${name} must not contain a lone surrogate (invalid UTF-16)`);
}
