-- The keys kept by the tracker: applied at every open (sqlite.ts, applyApiKeysSchema), so it creates
-- the table in a new database and in one of any version alike, and changes nothing after; it is not
-- part of the numbered schema versions (domain.ts, SCHEMA_VERSION). Only the SHA-256 of a key is kept
-- (keys.ts, hashApiKey).

CREATE TABLE IF NOT EXISTS api_keys (
  -- Never given to a second key, even once revoked: the history names keys.
  name         TEXT PRIMARY KEY,
  key_hash     TEXT NOT NULL UNIQUE,
  role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
  projects     TEXT NOT NULL, -- JSON array of project IDs; empty: every project
  created_at   TEXT NOT NULL,
  last_used_at TEXT,
  revoked_at   TEXT
);
