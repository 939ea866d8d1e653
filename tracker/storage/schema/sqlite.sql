-- Schema version 4 of the Task Tracking service on SQLite: a new database gets it whole. An older
-- database is rebuilt in place (sqlite.ts, applySchema): its tables are renamed, these are created
-- beside them and every row is copied across (sqlite-v1-to-v2.sql from version 1,
-- sqlite-v3-to-v4.sql from versions 2 and 3); a test checks that every path ends with the same
-- tables, indexes and triggers.

CREATE TABLE tasks (
  -- Insertion order: GET /tasks/next breaks priority ties by it.
  seq              INTEGER PRIMARY KEY,
  task_id          TEXT    NOT NULL,
  project_id       TEXT    NOT NULL,
  description      TEXT    NOT NULL,
  inputs           TEXT    NOT NULL, -- JSON array of strings
  outputs          TEXT    NOT NULL, -- JSON array of strings
  priority         TEXT    NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
  priority_rank    INTEGER NOT NULL CHECK (priority_rank IN (0, 1, 2)),
  depends_on       TEXT    NOT NULL, -- JSON array of task IDs of the same project, as the client sent it
  -- While pending: how many of depends_on are not finished (completed or cancelled) yet. Kept on
  -- insert, on finishing and on reopening; 0 for a task that is not pending.
  unfinished_deps  INTEGER NOT NULL CHECK (unfinished_deps >= 0),
  -- A pending task waits for its dependencies and for its children (a parent is done after them).
  blocked          INTEGER GENERATED ALWAYS AS (status = 'pending' AND (unfinished_deps > 0 OR open_children > 0)) VIRTUAL,
  status           TEXT    NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
  claimed_by       TEXT,
  -- The name of the key that claimed it: the holder is the key and claimed_by together (NULL: a claim before keys).
  claimed_by_key   TEXT,
  -- While in_progress: when the lease runs out, and the length the claim asked for (for renewals).
  lease_expires_at TEXT,
  lease_seconds    INTEGER,
  -- The holder of the last lease that ran out, and when: that agent gets claim_lost, not not_claim_holder.
  lost_by          TEXT,
  lost_at          TEXT,
  lost_by_key      TEXT, -- the key of that holder (NULL: a lease lost before keys)
  completion_notes TEXT    NOT NULL DEFAULT '',
  created_at       TEXT    NOT NULL,
  updated_at       TEXT    NOT NULL,
  started_at       TEXT,
  completed_at     TEXT,
  labels           TEXT    NOT NULL DEFAULT '[]', -- JSON array of names, sorted
  parent_id        TEXT,                          -- a task of the same project, or NULL
  acceptance_criteria TEXT NOT NULL DEFAULT '[]', -- JSON array of {"text", "done"}
  -- The agent that last released the task (not force, not expiry), until the next claim.
  released_by      TEXT,
  -- Its children, and those of them not finished: kept as each child is added, finished, reopened or moved.
  children_total   INTEGER NOT NULL DEFAULT 0 CHECK (children_total >= 0),
  open_children    INTEGER NOT NULL DEFAULT 0 CHECK (open_children >= 0),
  -- Its notes (task_notes) as every task object shows them: how many, and the last one (JSON or NULL).
  notes_count      INTEGER NOT NULL DEFAULT 0,
  last_note        TEXT,
  -- task_id first: it also finds a task by its ID alone (a TaskRef without project).
  UNIQUE (task_id, project_id),
  -- A task leaves pending only when ready, and completed is final: so one index serves every status.
  CHECK (status = 'pending' OR unfinished_deps = 0)
);

-- GET /tasks/next, and the pending part of GET /tasks?project=: equality on the first three
-- columns, then already in the wanted order.
CREATE INDEX tasks_next ON tasks (project_id, status, blocked, priority_rank, seq);
-- GET /tasks in API.md's order: an index per part and filter, so that a page is a range scan.
-- Claims in progress are few (one or a few per agent): the holder's are filtered from them, and
-- tasks_in_progress also finds the leases that ran out (a lease index would cost every renewal).
CREATE INDEX tasks_pending_everywhere ON tasks (blocked, priority_rank, seq) WHERE status = 'pending';
CREATE INDEX tasks_claimed ON tasks (project_id, started_at, seq) WHERE status = 'in_progress';
CREATE INDEX tasks_in_progress ON tasks (started_at, seq) WHERE status = 'in_progress';
CREATE INDEX tasks_completed ON tasks (project_id, completed_at, seq) WHERE status = 'completed';
CREATE INDEX tasks_completed_everywhere ON tasks (completed_at, seq) WHERE status = 'completed';
CREATE INDEX tasks_completed_by ON tasks (claimed_by, completed_at, seq) WHERE status = 'completed';
CREATE INDEX tasks_completed_by_in_project ON tasks (project_id, claimed_by, completed_at, seq) WHERE status = 'completed';
-- Cancelled tasks, by when they were cancelled (completed_at), most recent first.
CREATE INDEX tasks_cancelled ON tasks (project_id, completed_at, seq) WHERE status = 'cancelled';
CREATE INDEX tasks_cancelled_everywhere ON tasks (completed_at, seq) WHERE status = 'cancelled';
-- GET /tasks?parent=: the children of a task.
CREATE INDEX tasks_children ON tasks (project_id, parent_id, seq) WHERE parent_id IS NOT NULL;

CREATE TABLE task_dependencies (
  dependency_seq INTEGER NOT NULL REFERENCES tasks (seq),
  dependent_seq  INTEGER NOT NULL REFERENCES tasks (seq),
  -- Keyed by the dependency: completing a task finds its dependents through this key.
  PRIMARY KEY (dependency_seq, dependent_seq)
) WITHOUT ROWID;

-- The history of every task (GET /tasks/<id>/events), written in the transaction of its change.
CREATE TABLE task_events (
  event_id    INTEGER PRIMARY KEY,
  task_seq    INTEGER NOT NULL REFERENCES tasks (seq),
  project_id  TEXT    NOT NULL,
  task_id     TEXT    NOT NULL,
  type        TEXT    NOT NULL CHECK (type IN ('created', 'claimed', 'released', 'force_released',
                                               'completed', 'claim_expired', 'updated', 'cancelled',
                                               'reopened', 'noted')),
  at          TEXT    NOT NULL,
  agent_id    TEXT,
  key_name    TEXT, -- the key of the request that made the change; NULL: the service's own (an expiry)
  from_status TEXT,
  to_status   TEXT,
  details     TEXT    NOT NULL -- JSON object
);

CREATE INDEX task_events_by_task ON task_events (task_seq, event_id);

-- The notes of every task, append-only (POST /tasks/<id>/notes), oldest first by note_id.
CREATE TABLE task_notes (
  note_id  INTEGER PRIMARY KEY,
  task_seq INTEGER NOT NULL REFERENCES tasks (seq),
  at       TEXT    NOT NULL,
  by       TEXT,
  text     TEXT    NOT NULL
);

CREATE INDEX task_notes_by_task ON task_notes (task_seq, note_id);

-- GET /tasks?q=: the words of each task's description, criteria and notes (rowid: the task's seq).
-- Kept by the triggers below, which fire only on a change of those: a claim or a renewal never
-- touches it.
CREATE VIRTUAL TABLE task_search USING fts5 (description, criteria, notes, tokenize = 'unicode61 remove_diacritics 2');

CREATE TRIGGER task_search_on_insert AFTER INSERT ON tasks
BEGIN
  INSERT INTO task_search (rowid, description, criteria, notes)
  VALUES (NEW.seq, NEW.description,
          (SELECT coalesce(group_concat(json_extract(value, '$.text'), char(10)), '') FROM json_each(NEW.acceptance_criteria)),
          '');
END;

CREATE TRIGGER task_search_on_edit AFTER UPDATE OF description, acceptance_criteria ON tasks
WHEN OLD.description IS NOT NEW.description OR OLD.acceptance_criteria IS NOT NEW.acceptance_criteria
BEGIN
  UPDATE task_search SET description = NEW.description,
    criteria = (SELECT coalesce(group_concat(json_extract(value, '$.text'), char(10)), '') FROM json_each(NEW.acceptance_criteria))
  WHERE rowid = NEW.seq;
END;

CREATE TRIGGER task_search_on_note AFTER INSERT ON task_notes
BEGIN
  UPDATE task_search SET notes = CASE WHEN notes = '' THEN NEW.text ELSE notes || char(10) || NEW.text END
  WHERE rowid = NEW.task_seq;
END;

-- GET /projects: the counts of each project, kept by the triggers below in the transaction of
-- every change, so listing 1,000 projects reads 1,000 rows, not every task. A claim (ready →
-- in_progress) changes none of them: ready_or_claimed counts the ready tasks and the claimed ones
-- together, and GET /projects counts the claims in progress, and the time of the latest, from
-- tasks_claimed (few rows): the commonest write writes no row here. A claim's time joins
-- last_change_at when the task leaves in_progress (OLD.started_at below).
CREATE TABLE project_counts (
  project_id       TEXT    PRIMARY KEY,
  ready_or_claimed INTEGER NOT NULL,
  blocked          INTEGER NOT NULL,
  completed        INTEGER NOT NULL,
  last_change_at   TEXT,
  cancelled        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TRIGGER tasks_counted_on_insert AFTER INSERT ON tasks
BEGIN
  INSERT INTO project_counts (project_id, ready_or_claimed, blocked, completed, last_change_at, cancelled)
  VALUES (NEW.project_id,
          (NEW.status = 'pending' AND NOT NEW.blocked) OR NEW.status = 'in_progress',
          NEW.status = 'pending' AND NEW.blocked,
          NEW.status = 'completed',
          NEW.updated_at,
          NEW.status = 'cancelled')
  ON CONFLICT (project_id) DO UPDATE SET
    ready_or_claimed = ready_or_claimed + excluded.ready_or_claimed,
    blocked = blocked + excluded.blocked,
    completed = completed + excluded.completed,
    cancelled = cancelled + excluded.cancelled,
    last_change_at = max(coalesce(last_change_at, ''), excluded.last_change_at);
END;

CREATE TRIGGER tasks_counted_on_update AFTER UPDATE OF status, unfinished_deps, open_children, updated_at ON tasks
WHEN NOT (OLD.status = 'pending' AND NOT OLD.blocked AND NEW.status = 'in_progress')
BEGIN
  UPDATE project_counts SET
    ready_or_claimed = ready_or_claimed - ((OLD.status = 'pending' AND NOT OLD.blocked) OR OLD.status = 'in_progress')
                                        + ((NEW.status = 'pending' AND NOT NEW.blocked) OR NEW.status = 'in_progress'),
    blocked = blocked - (OLD.status = 'pending' AND OLD.blocked) + (NEW.status = 'pending' AND NEW.blocked),
    completed = completed - (OLD.status = 'completed') + (NEW.status = 'completed'),
    cancelled = cancelled - (OLD.status = 'cancelled') + (NEW.status = 'cancelled'),
    last_change_at = max(coalesce(last_change_at, ''), NEW.updated_at,
                         CASE WHEN OLD.status = 'in_progress' THEN coalesce(OLD.started_at, '') ELSE '' END)
  WHERE project_id = NEW.project_id;
END;

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

-- GET /ids/registry: the reservations not yet expired are the tail of this index.
CREATE INDEX reservations_by_expiry ON reservations (expires_at);

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
