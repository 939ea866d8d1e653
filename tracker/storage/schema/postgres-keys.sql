-- The keys kept by the tracker: applied at every start (postgres.ts, applySchema, under the schema
-- lock), so it creates the table in a new database and in one of any version alike, and changes
-- nothing after; it is not part of the numbered schema versions (domain.ts, SCHEMA_VERSION). Only the
-- SHA-256 of a key is kept (keys.ts, hashApiKey).

CREATE TABLE IF NOT EXISTS api_keys (
  -- Never given to a second key, even once revoked: the history names keys.
  name         text        PRIMARY KEY,
  key_hash     text        NOT NULL UNIQUE,
  role         text        NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
  projects     jsonb       NOT NULL, -- array of project IDs; empty: every project
  created_at   timestamptz NOT NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
