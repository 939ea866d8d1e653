// The api_keys table on SQLite (schema/sqlite-keys.sql): the SQL of SqliteStorage's key methods,
// which run these inside its own transactions (reads directly, writes through runWrite).

import type { Database } from "bun:sqlite";
import { type ApiKeyRecord, keyNameTaken, keyNotFound, type NewApiKey, type Role } from "../keys.ts";
import keysSql from "./schema/sqlite-keys.sql" with { type: "text" };

interface KeyRow {
  name: string;
  role: Role;
  projects: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = "name, role, projects, created_at, last_used_at, revoked_at";

function toRecord(row: KeyRow): ApiKeyRecord {
  return { ...row, projects: JSON.parse(row.projects) as string[] };
}

/** Creates api_keys when it is missing; changes nothing when it is there. */
export function applyApiKeysSchema(db: Database): void {
  db.run(keysSql);
}

function selectByName(db: Database, name: string): KeyRow | null {
  return db.query<KeyRow, [string]>(`SELECT ${COLUMNS} FROM api_keys WHERE name = ?`).get(name);
}

export function insertApiKey(db: Database, key: NewApiKey): ApiKeyRecord {
  const taken = selectByName(db, key.name);
  if (taken) throw keyNameTaken(toRecord(taken));
  db.query("INSERT INTO api_keys (name, key_hash, role, projects, created_at) VALUES (?, ?, ?, ?, ?)").run(
    key.name,
    key.hash,
    key.role,
    JSON.stringify(key.projects),
    key.createdAt.toISOString(),
  );
  return toRecord(selectByName(db, key.name)!);
}

export function selectApiKeys(db: Database): ApiKeyRecord[] {
  return db.query<KeyRow, []>(`SELECT ${COLUMNS} FROM api_keys ORDER BY name`).all().map(toRecord);
}

export function selectActiveApiKey(db: Database, hash: string): ApiKeyRecord | null {
  const row = db.query<KeyRow, [string]>(`SELECT ${COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`).get(hash);
  return row ? toRecord(row) : null;
}

/** A key revoked already keeps its first revocation time. */
export function markApiKeyRevoked(db: Database, name: string, now: Date): ApiKeyRecord {
  db.query("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL").run(now.toISOString(), name);
  const row = selectByName(db, name);
  if (!row) throw keyNotFound(name);
  return toRecord(row);
}

export function markApiKeyUsed(db: Database, name: string, now: Date): void {
  db.query("UPDATE api_keys SET last_used_at = ? WHERE name = ?").run(now.toISOString(), name);
}
