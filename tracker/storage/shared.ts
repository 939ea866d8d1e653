// What both storages may share beyond domain.ts's sentences: the in-flight Idempotency-Keys of this
// process, and the check that text can be stored at all.

import { ApiError, validationError } from "../domain.ts";
import type { IdempotencyClaim, IdempotencyRequest } from "./storage.ts";

// ---------------------------------------------------------------------------
// Idempotency-Keys whose request is running in this process.

interface InFlightKey {
  fingerprint: string;
  token: string;
  claimedAt: Date;
  leaseUntil: number;
  retentionMs: number;
}

/** What a write needs to know of its claim: the request it was made for. */
export interface ClaimedKey {
  fingerprint: string;
  claimedAt: Date;
  /** A stored row created before this is past the retention and may be replaced. */
  expiredBefore: Date;
}

/**
 * The keys claimed by requests of this process that have not answered yet. A twin request on the
 * same process is told `in_flight` at once; across processes the database decides (postgres.ts).
 * Memory, not a table: a process that dies takes its claims with it, so a key never stays blocked.
 */
export class InFlightKeys {
  private readonly keys = new Map<string, InFlightKey>();

  private static slot(scope: string, key: string): string {
    return `${scope}\n${key}`;
  }

  /** in_flight or mismatch while a live claim holds the key here; null when none does. */
  busy(request: IdempotencyRequest): "in_flight" | "mismatch" | null {
    const held = this.keys.get(InFlightKeys.slot(request.scope, request.key));
    if (!held || held.leaseUntil <= request.now.getTime()) return null;
    return held.fingerprint === request.fingerprint ? "in_flight" : "mismatch";
  }

  claim(request: IdempotencyRequest): IdempotencyClaim {
    const token = crypto.randomUUID();
    this.keys.set(InFlightKeys.slot(request.scope, request.key), {
      fingerprint: request.fingerprint,
      token,
      claimedAt: request.now,
      leaseUntil: request.now.getTime() + request.leaseMs,
      retentionMs: request.retentionMs,
    });
    return { scope: request.scope, key: request.key, token };
  }

  /** The claim's request while it is the current claim of its key; else idempotencyInFlight's 409. */
  current(claim: IdempotencyClaim): ClaimedKey {
    const held = this.keys.get(InFlightKeys.slot(claim.scope, claim.key));
    if (held?.token !== claim.token) {
      // The lease ran out and another request took the key over: it owns the effect now.
      throw new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still running; retry later");
    }
    return {
      fingerprint: held.fingerprint,
      claimedAt: held.claimedAt,
      expiredBefore: new Date(held.claimedAt.getTime() - held.retentionMs),
    };
  }

  release(claim: IdempotencyClaim): void {
    const slot = InFlightKeys.slot(claim.scope, claim.key);
    if (this.keys.get(slot)?.token === claim.token) this.keys.delete(slot);
  }
}

export function idempotencyMismatch(): ApiError {
  return new ApiError("idempotency_mismatch", "This Idempotency-Key was already used for a different request");
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
