// The api_keys table on PostgreSQL (schema/postgres-keys.sql): the SQL of PostgresStorage's key
// methods, which run these inside its own transactions and deadlines.

import type { SQL, TransactionSQL } from "bun";
import { type ApiKeyRecord, keyNameTaken, keyNotFound, type NewApiKey, type Role } from "../keys.ts";
import keysSql from "./schema/postgres-keys.sql" with { type: "text" };

interface KeyRow {
  name: string;
  role: Role;
  projects: string[];
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

function toRecord(row: KeyRow): ApiKeyRecord {
  return {
    name: row.name,
    role: row.role,
    projects: row.projects,
    created_at: row.created_at.toISOString(),
    last_used_at: row.last_used_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
  };
}

/** Creates api_keys when it is missing; changes nothing when it is there. Run under the schema lock. */
export async function applyApiKeysSchema(tx: TransactionSQL): Promise<void> {
  // Nothing to say when the table is there: PostgreSQL's "already exists, skipping" notice is not news.
  const [found] = await tx<{ exists: boolean }[]>`SELECT to_regclass('api_keys') IS NOT NULL AS exists`;
  if (!found!.exists) await tx.unsafe(keysSql);
}

async function selectByName(sql: SQL | TransactionSQL, name: string): Promise<KeyRow | undefined> {
  const [row] = await sql<KeyRow[]>`
    SELECT name, role, projects, created_at, last_used_at, revoked_at FROM api_keys WHERE name = ${name}`;
  return row;
}

export async function insertApiKey(tx: TransactionSQL, key: NewApiKey): Promise<ApiKeyRecord> {
  const inserted = await tx<KeyRow[]>`
    INSERT INTO api_keys (name, key_hash, role, projects, created_at)
    VALUES (${key.name}, ${key.hash}, ${key.role}, ${key.projects}::jsonb, ${key.createdAt})
    ON CONFLICT (name) DO NOTHING
    RETURNING name, role, projects, created_at, last_used_at, revoked_at`;
  if (inserted.length === 1) return toRecord(inserted[0]!);
  throw keyNameTaken(toRecord((await selectByName(tx, key.name))!));
}

export async function selectApiKeys(sql: SQL): Promise<ApiKeyRecord[]> {
  const rows = await sql<KeyRow[]>`
    SELECT name, role, projects, created_at, last_used_at, revoked_at FROM api_keys ORDER BY name COLLATE "C"`;
  return rows.map(toRecord);
}

export async function selectActiveApiKey(sql: SQL, hash: string): Promise<ApiKeyRecord | null> {
  const [row] = await sql<KeyRow[]>`
    SELECT name, role, projects, created_at, last_used_at, revoked_at FROM api_keys
    WHERE key_hash = ${hash} AND revoked_at IS NULL`;
  return row ? toRecord(row) : null;
}

/** A key revoked already keeps its first revocation time. */
export async function markApiKeyRevoked(tx: TransactionSQL, name: string, now: Date): Promise<ApiKeyRecord> {
  await tx`UPDATE api_keys SET revoked_at = ${now} WHERE name = ${name} AND revoked_at IS NULL`;
  const row = await selectByName(tx, name);
  if (!row) throw keyNotFound(name);
  return toRecord(row);
}

export async function markApiKeyUsed(sql: SQL, name: string, now: Date): Promise<void> {
  await sql`UPDATE api_keys SET last_used_at = ${now} WHERE name = ${name}`;
}
