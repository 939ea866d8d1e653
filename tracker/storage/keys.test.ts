// The keys of the Storage contract (storage.ts, "Keys"), run against the implementation chosen by
// TRACKER_TEST_STORAGE.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { ApiError } from "../domain.ts";
import { type ApiKeyRecord, generateApiKey, hashApiKey, type NewApiKey } from "../keys.ts";
import { makeStorage, type TestStorage } from "../testing.ts";
import type { Storage } from "./storage.ts";

let target: TestStorage;
let storage: Storage;
const now = new Date("2026-12-06T09:00:00.000Z");
const later = new Date("2026-12-06T10:00:00.000Z");

beforeEach(async () => {
  target = await makeStorage();
  storage = target.storage;
});
afterEach(async () => {
  await target.cleanup();
});

function newKey(name: string, extra: Partial<NewApiKey> = {}): NewApiKey {
  return { name, role: "member", projects: [], hash: hashApiKey(generateApiKey()), createdAt: now, ...extra };
}

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("api keys", () => {
  test("a key added is found by its hash, with its role and projects, and listed by name", async () => {
    const alice = newKey("alice", { projects: ["web", "api"] });
    const added = await storage.addApiKey(alice);
    const expected: ApiKeyRecord = {
      name: "alice",
      role: "member",
      projects: ["web", "api"],
      created_at: now.toISOString(),
      last_used_at: null,
      revoked_at: null,
    };
    expect(added).toEqual(expected);
    expect(await storage.findApiKey(alice.hash)).toEqual(expected);
    await storage.addApiKey(newKey("Bob", { role: "viewer" }));
    expect((await storage.listApiKeys()).map((key) => [key.name, key.role])).toEqual([
      ["Bob", "viewer"],
      ["alice", "member"],
    ]);
  });

  test("an unknown hash finds nothing", async () => {
    await storage.addApiKey(newKey("alice"));
    expect(await storage.findApiKey(hashApiKey("not-a-key-0123456789"))).toBeNull();
  });

  test("a name is taken once: a second key of the name is a conflict, and so is one of a revoked name", async () => {
    await storage.addApiKey(newKey("alice"));
    expect(await rejection(storage.addApiKey(newKey("alice")))).toEqual({
      code: "conflict",
      message: "There is a key named alice already; revoke it first, or choose another name",
    });
    await storage.revokeApiKey("alice", later);
    expect(await rejection(storage.addApiKey(newKey("alice")))).toEqual({
      code: "conflict",
      message: `A key named alice was revoked at ${later.toISOString()}; a name is never given to a second key (the history names keys): choose another`,
    });
    expect(await storage.listApiKeys()).toHaveLength(1);
  });

  test("a revoked key is found no more, is still listed, and keeps its first revocation time", async () => {
    const alice = newKey("alice");
    await storage.addApiKey(alice);
    expect((await storage.revokeApiKey("alice", later)).revoked_at).toBe(later.toISOString());
    expect(await storage.findApiKey(alice.hash)).toBeNull();
    const again = await storage.revokeApiKey("alice", new Date(later.getTime() + 1000));
    expect(again.revoked_at).toBe(later.toISOString());
    expect((await storage.listApiKeys())[0]?.revoked_at).toBe(later.toISOString());
  });

  test("revoking a name no key has is key_not_found", async () => {
    expect(await rejection(storage.revokeApiKey("nobody", later))).toEqual({
      code: "key_not_found",
      message: "There is no key named nobody",
    });
  });

  test("touching a key records when it was last used", async () => {
    const alice = newKey("alice");
    await storage.addApiKey(alice);
    await storage.touchApiKey("alice", later);
    expect((await storage.findApiKey(alice.hash))?.last_used_at).toBe(later.toISOString());
  });
});
