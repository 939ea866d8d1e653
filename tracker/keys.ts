// Keys kept by the tracker (docs/API.md, "Keys and roles"): one per person or agent, each with a
// role and, for a member, the projects it may use. The rules live here, with no I/O: what a role
// may do, which projects a key sees, the sentences of a refusal, the rate limit. The storages keep
// the rows (api_keys), the HTTP layer (http/keys.ts, pipeline.ts) asks these functions.

import { createHash } from "node:crypto";
import { ApiError, RetryLater, validationError } from "./domain.ts";
import { isOperatorKeyName } from "./operator-keys.ts";

export const ROLES = ["admin", "member", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** What the tracker keeps of a key: never the key, only its hash (not shown either). */
export interface ApiKeyRecord {
  name: string;
  role: Role;
  /** The projects a member may use; empty: every project (admins and viewers: always empty). */
  projects: string[];
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface NewApiKey {
  name: string;
  role: Role;
  projects: readonly string[];
  /** hashApiKey of the key. */
  hash: string;
  createdAt: Date;
}

/** Who sent a request: the key that authenticated it, as the rules see it. */
export interface KeyHolder {
  name: string;
  role: Role;
  /** null: every project. */
  projects: readonly string[] | null;
  /** hashApiKey of the key: the scope of its Idempotency-Keys and live streams. */
  scope: string;
  /** null: no limit. */
  rateLimit: RateLimit | null;
}

export const MAX_KEY_NAME_LENGTH = 64;
export const KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const KEY_NAME_RULE = `1 to ${MAX_KEY_NAME_LENGTH} characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`;
export const MAX_PROJECTS_PER_KEY = 100;

export function operatorKeyName(index: number, count: number): string {
  return count === 1 ? "operator" : `operator-${index + 1}`;
}

export function checkKeyName(name: string): void {
  if (!KEY_NAME_PATTERN.test(name)) {
    throw validationError(`A key's name must be ${KEY_NAME_RULE}`);
  }
  if (isOperatorKeyName(name)) {
    throw validationError(`${name} is the name of an operator key (TRACKER_API_KEYS or the key file); choose another`);
  }
}

/** A member may be limited to projects; an admin or a viewer sees all of them. */
export function checkKeyProjects(role: Role, projects: readonly string[]): void {
  if (projects.length > 0 && role !== "member") {
    throw validationError(`Only a member key is limited to projects; a ${role} key sees every project`);
  }
  if (projects.length > MAX_PROJECTS_PER_KEY) throw validationError(`A key names at most ${MAX_PROJECTS_PER_KEY} projects`);
}

/**
 * 32 random bytes, base64url, behind a prefix that says what it is (a secret scanner, or a person
 * who finds it in a file, can tell it is a tracker key).
 */
export function generateApiKey(): string {
  return `ttk_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url")}`;
}

/**
 * What the tracker stores of a key: its SHA-256, hex. A fast hash is enough here, and a slow one
 * (bcrypt, scrypt) would cost every request its time: a key made by generateApiKey holds 256 random
 * bits, so nobody who reads the table or a copy of it can find the key by guessing, however fast
 * each guess is. The operator's own keys (TRACKER_API_KEYS) are never stored.
 */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function keyNameTaken(record: ApiKeyRecord): ApiError {
  if (record.revoked_at !== null) {
    return new ApiError(
      "conflict",
      `A key named ${record.name} was revoked at ${record.revoked_at}; a name is never given to a second key (the history names keys): choose another`,
    );
  }
  return new ApiError("conflict", `There is a key named ${record.name} already; revoke it first, or choose another name`);
}

export function keyNotFound(name: string): ApiError {
  return new ApiError("key_not_found", `There is no key named ${name}`);
}

// ---------------------------------------------------------------------------
// Roles.

/** What a route needs (routes.ts): read is every GET that changes nothing. */
export type Access = "read" | "write" | "admin";

/** Whether the role may do what the route needs. */
export function roleAllows(role: Role, access: Access): boolean {
  if (role === "admin") return true;
  if (role === "member") return access !== "admin";
  return access === "read";
}

function describeHolder(holder: KeyHolder): string {
  return `The key ${holder.name} is ${holder.role === "admin" ? "an" : "a"} ${holder.role}`;
}

/** 403: the sentence names the key, its role and what it lacks. */
export function roleForbids(holder: KeyHolder, access: Access, route: string): ApiError {
  const lacks =
    access === "admin" ? `${route} needs an admin key` : `it may read but not write, and ${route} writes; a member key may`;
  return new ApiError("forbidden", `${describeHolder(holder)}: ${lacks}`);
}

export function mayUseProject(holder: KeyHolder, projectId: string): boolean {
  return holder.projects === null || holder.projects.includes(projectId);
}

export function projectForbidden(holder: KeyHolder, projectId: string): ApiError {
  return new ApiError(
    "forbidden",
    `${describeHolder(holder)} of ${holder.projects!.length === 1 ? "project" : "projects"} ${holder.projects!.join(", ")} only: project ${projectId} is not among them`,
  );
}

// ---------------------------------------------------------------------------
// The rate limit: a token bucket per key.

export interface RateLimit {
  /** Requests per second, refilled continuously. */
  perSecond: number;
  /** How many may come at once after a quiet spell. */
  burst: number;
}

/** For keys made with `keys add` when TRACKER_RATE_LIMIT is unset: far above what one agent sends. */
export const DEFAULT_KEY_RATE_LIMIT: RateLimit = { perSecond: 50, burst: 200 };

/** TRACKER_RATE_LIMIT: `RATE` (burst = RATE) or `RATE/BURST`, whole numbers; null when it is not that. */
export function parseRateLimit(text: string): RateLimit | null {
  const match = /^(\d{1,6})(?:\/(\d{1,7}))?$/.exec(text);
  if (match === null) return null;
  const perSecond = Number(match[1]);
  const burst = match[2] === undefined ? perSecond : Number(match[2]);
  if (perSecond < 1 || burst < perSecond) return null;
  return { perSecond, burst };
}

/** The buckets of one tracker instance: a key's limit holds per instance, not across them. */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes one request's token from the key's bucket, or throws 429 with the seconds until the next. */
  take(holder: KeyHolder): void {
    const limit = holder.rateLimit;
    if (limit === null) return;
    const now = this.now();
    const bucket = this.#buckets.get(holder.scope) ?? { tokens: limit.burst, at: now };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond);
    bucket.at = now;
    this.#buckets.set(holder.scope, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const waitSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / limit.perSecond));
    throw new RetryLater(
      "too_many_requests",
      `The key ${holder.name} is over its rate limit (${limit.perSecond} a second, burst ${limit.burst}); retry in ${waitSeconds} s`,
      waitSeconds,
    );
  }
}
