-- Schema version 1 of the Task Tracking service on SQLite.
-- Applied at start-up by sqlite.ts when PRAGMA user_version is below 1.

CREATE TABLE tasks (
  -- Insertion order: GET /tasks/next breaks priority ties by it.
  seq              INTEGER PRIMARY KEY,
  task_id          TEXT    NOT NULL UNIQUE,
  project_id       TEXT    NOT NULL,
  description      TEXT    NOT NULL,
  inputs           TEXT    NOT NULL, -- JSON array of strings
  outputs          TEXT    NOT NULL, -- JSON array of strings
  priority         TEXT    NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
  priority_rank    INTEGER NOT NULL CHECK (priority_rank IN (0, 1, 2)),
  depends_on       TEXT    NOT NULL, -- JSON array of task IDs, as the client sent it
  -- How many of depends_on are not completed yet; 0 means ready. Kept on insert and on completion.
  unfinished_deps  INTEGER NOT NULL CHECK (unfinished_deps >= 0),
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed')),
  claimed_by       TEXT,
  completion_notes TEXT    NOT NULL DEFAULT '',
  created_at       TEXT    NOT NULL,
  updated_at       TEXT    NOT NULL,
  started_at       TEXT,
  completed_at     TEXT,
  -- A task leaves pending only when ready, and completed is final: so one index serves every status.
  CHECK (status = 'pending' OR unfinished_deps = 0)
);

-- GET /tasks/next: equality on the first three columns, then already in the wanted order.
CREATE INDEX tasks_next ON tasks (project_id, status, unfinished_deps, priority_rank, seq);

CREATE TABLE task_dependencies (
  dependency_seq INTEGER NOT NULL REFERENCES tasks (seq),
  dependent_seq  INTEGER NOT NULL REFERENCES tasks (seq),
  -- Keyed by the dependency: completing a task finds its dependents through this key.
  PRIMARY KEY (dependency_seq, dependent_seq)
) WITHOUT ROWID;

-- One counter per project and artifact type, shared by allocations, reservations and imports.
CREATE TABLE id_counters (
  project_id    TEXT    NOT NULL,
  artifact_type TEXT    NOT NULL,
  last_assigned INTEGER NOT NULL CHECK (last_assigned >= 0),
  PRIMARY KEY (project_id, artifact_type)
) WITHOUT ROWID;

CREATE TABLE reservations (
  reservation_id TEXT    PRIMARY KEY,
  project_id     TEXT    NOT NULL,
  artifact_type  TEXT    NOT NULL,
  first_number   INTEGER NOT NULL,
  count          INTEGER NOT NULL CHECK (count BETWEEN 1 AND 100),
  created_at     TEXT    NOT NULL,
  expires_at     TEXT    NOT NULL
) WITHOUT ROWID;

-- Responses stored under an Idempotency-Key, written in the transaction of the request's effect.
-- Requests still in flight are tracked in memory: this process holds the file exclusively.
CREATE TABLE idempotency_keys (
  id              INTEGER PRIMARY KEY, -- insertion order, so rows append and expire from the head
  lookup          INTEGER NOT NULL,    -- 48 bits of SHA-256 of scope and key (see sqlite.ts)
  scope           TEXT    NOT NULL,    -- hex SHA-256 of the API key, never the key
  idempotency_key TEXT    NOT NULL,
  fingerprint     TEXT    NOT NULL,    -- hex SHA-256 of method, path and body
  response_status INTEGER NOT NULL,
  response_body   TEXT    NOT NULL,
  created_at      INTEGER NOT NULL     -- ms since the epoch; kept 24 hours
);

CREATE INDEX idempotency_keys_lookup ON idempotency_keys (lookup);
