// Who is asking, and what they may touch: the key book that turns a bearer key into a KeyHolder
// (the operator's keys, then the keys the tracker keeps), and the project checks of a member limited
// to projects (API.md, "Keys and roles"). The pipeline asks them; the rules themselves are keys.ts's.

import { createHash, timingSafeEqual } from "node:crypto";
import { ambiguousTaskId, type TaskRef, taskNotFound } from "../domain.ts";
import {
  type ApiKeyRecord,
  DEFAULT_KEY_RATE_LIMIT,
  type KeyHolder,
  mayUseProject,
  operatorKeyName,
  projectForbidden,
  type RateLimit,
} from "../keys.ts";
import { describeError, type Logger } from "../log.ts";
import type { Storage } from "../storage/storage.ts";

/**
 * How long an instance trusts what it read of a stored key. A key added or revoked on one instance
 * of a shared PostgreSQL takes effect on every other within this (API.md promises a second).
 */
export const KEY_CACHE_MS = 500;
/** Past this many keys seen (unknown ones included), the cache starts afresh: it cannot grow without end. */
const MAX_CACHED_KEYS = 10_000;
/** last_used_at is written at most this often per key: a write per request would cost every request. */
const LAST_USED_INTERVAL_MS = 60_000;

export interface KeyBookOptions {
  storage: Storage;
  logger: Logger;
  /** TRACKER_API_KEYS or the key file: admins, never stored. */
  operatorKeys: readonly string[];
  /** TRACKER_RATE_LIMIT: every key's limit; null (unset): stored keys get DEFAULT_KEY_RATE_LIMIT, operator keys none. */
  rateLimit: RateLimit | null;
  now: () => Date;
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function bearerKey(request: Request): string | null {
  const header = request.headers.get("authorization");
  if (header === null || header.length < 8 || header.slice(0, 7).toLowerCase() !== "bearer ") return null;
  return header.slice(7).trim();
}

export class KeyBook {
  readonly #operators: Array<{ digest: Buffer; holder: KeyHolder }>;
  readonly #cache = new Map<string, { holder: KeyHolder | null; until: number }>();
  readonly #lastNoted = new Map<string, number>();

  constructor(private readonly options: KeyBookOptions) {
    this.#operators = options.operatorKeys.map((key, i) => {
      const digest = sha256(key);
      const name = operatorKeyName(i, options.operatorKeys.length);
      return {
        digest,
        holder: { name, role: "admin", projects: null, scope: digest.toString("hex"), rateLimit: options.rateLimit },
      };
    });
  }

  /** The holder of the request's bearer key, or null (401). Every operator key is compared, always. */
  async holderOf(request: Request): Promise<KeyHolder | null> {
    const key = bearerKey(request);
    if (key === null) return null;
    const digest = sha256(key);
    let operator: KeyHolder | null = null;
    for (const { digest: known, holder } of this.#operators) {
      if (timingSafeEqual(digest, known) && operator === null) operator = holder;
    }
    return operator ?? this.#storedHolder(digest.toString("hex"));
  }

  /** A key added or revoked through this instance counts at once here (elsewhere within KEY_CACHE_MS). */
  forget(): void {
    this.#cache.clear();
  }

  async #storedHolder(hash: string): Promise<KeyHolder | null> {
    const now = this.options.now().getTime();
    const cached = this.#cache.get(hash);
    if (cached !== undefined && cached.until > now) {
      if (cached.holder) await this.#noteUse(cached.holder, now);
      return cached.holder;
    }
    const record = await this.options.storage.findApiKey(hash);
    const holder = record && this.#holderOf(record, hash);
    if (this.#cache.size >= MAX_CACHED_KEYS) this.#cache.clear();
    this.#cache.set(hash, { holder, until: now + KEY_CACHE_MS });
    if (holder) await this.#noteUse(holder, now);
    return holder;
  }

  #holderOf(record: ApiKeyRecord, hash: string): KeyHolder {
    return {
      name: record.name,
      role: record.role,
      projects: record.projects.length === 0 ? null : record.projects,
      scope: hash,
      rateLimit: this.options.rateLimit ?? DEFAULT_KEY_RATE_LIMIT,
    };
  }

  /**
   * Writes last_used_at, at most once a LAST_USED_INTERVAL_MS per key, before the request goes on (so
   * that a list read after a key's first use shows it, on any storage); a failure costs the request
   * nothing but a log line.
   */
  async #noteUse(holder: KeyHolder, now: number): Promise<void> {
    if (now - (this.#lastNoted.get(holder.name) ?? Number.NEGATIVE_INFINITY) < LAST_USED_INTERVAL_MS) return;
    this.#lastNoted.set(holder.name, now);
    await this.options.storage.touchApiKey(holder.name, new Date(now)).catch((error: unknown) => {
      this.options.logger.log("warn", "could not note when a key was last used", { key: holder.name, ...describeError(error) });
    });
  }
}

// ---------------------------------------------------------------------------
// Projects: a member limited to projects touches only those, and never sees the others.

interface Input {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

/** Every project a request names: in its query, its path, its body, or each task of a batch. */
function namedProjects({ params, query, body }: Input): string[] {
  const named: unknown[] = [query.project, params.project_id];
  if (typeof body === "object" && body !== null) {
    const fields = body as { project_id?: unknown; tasks?: Array<{ project_id?: unknown }> };
    named.push(fields.project_id, ...(Array.isArray(fields.tasks) ? fields.tasks.map((task) => task.project_id) : []));
  }
  return named.filter((project): project is string => typeof project === "string");
}

/**
 * Refuses a project outside the holder's (403). A task named without its project is looked for in
 * the holder's projects only, and the one found becomes the request's `project`: a task of another
 * project is not found, as if it did not exist.
 */
export async function checkProjects(holder: KeyHolder, input: Input, storage: Storage): Promise<void> {
  if (holder.projects === null) return;
  for (const project of namedProjects(input)) {
    if (!mayUseProject(holder, project)) throw projectForbidden(holder, project);
  }
  const taskId = input.params.task_id;
  if (typeof taskId !== "string" || input.query.project !== undefined) return;
  const found: string[] = [];
  for (const projectId of holder.projects) {
    if (await storage.getTask({ projectId, taskId })) found.push(projectId);
  }
  if (found.length === 0) throw taskNotFound({ projectId: null, taskId } satisfies TaskRef);
  if (found.length > 1) throw ambiguousTaskId(taskId, found);
  input.query.project = found[0];
}
