-- Upgrades a database of schema version 3 to version 4 in place: tasks gain labels, a parent,
-- acceptance criteria, notes, the status cancelled and released_by; notes and search get tables of
-- their own. Run by postgres.ts in the same transaction and under the same advisory lock as
-- postgres.sql; the result has the tables of postgres.sql, columns in the same order.

ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled'));
ALTER TABLE task_events ADD COLUMN key_name text;
ALTER TABLE task_events DROP CONSTRAINT task_events_type_check;
ALTER TABLE task_events ADD CONSTRAINT task_events_type_check CHECK (type IN ('created', 'claimed', 'released',
  'force_released', 'completed', 'claim_expired', 'updated', 'cancelled', 'reopened', 'noted'));

-- list_group gains a part and a reason to be blocked: dropped (with its indexes) and added anew, last.
ALTER TABLE tasks DROP COLUMN list_group;
ALTER TABLE tasks
  ADD COLUMN labels              jsonb   NOT NULL DEFAULT '[]',
  ADD COLUMN parent_id           text,
  ADD COLUMN acceptance_criteria jsonb   NOT NULL DEFAULT '[]',
  ADD COLUMN released_by         text,
  ADD COLUMN claimed_by_key      text,
  ADD COLUMN lost_by_key         text,
  ADD COLUMN children_total      integer NOT NULL DEFAULT 0 CHECK (children_total >= 0),
  ADD COLUMN open_children       integer NOT NULL DEFAULT 0 CHECK (open_children >= 0),
  ADD COLUMN notes_count         integer NOT NULL DEFAULT 0,
  ADD COLUMN last_note           jsonb,
  ADD COLUMN list_group          smallint NOT NULL GENERATED ALWAYS AS (
    CASE WHEN status = 'pending' AND unfinished_deps = 0 AND open_children = 0 THEN 0 WHEN status = 'pending' THEN 1
         WHEN status = 'in_progress' THEN 2 WHEN status = 'completed' THEN 3 ELSE 4 END) STORED;

CREATE INDEX tasks_by_group ON tasks (project_id, list_group, priority_rank, seq);
CREATE INDEX tasks_all_by_group ON tasks (list_group, priority_rank, seq);
CREATE INDEX tasks_cancelled ON tasks (project_id, completed_at DESC, seq DESC) WHERE status = 'cancelled';
CREATE INDEX tasks_all_cancelled ON tasks (completed_at DESC, seq DESC) WHERE status = 'cancelled';
CREATE INDEX tasks_children ON tasks (project_id, parent_id, seq) WHERE parent_id IS NOT NULL;

-- The notes of every task, append-only (POST /tasks/<id>/notes), oldest first by note_id.
CREATE TABLE task_notes (
  note_id  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_seq bigint      NOT NULL REFERENCES tasks (seq),
  at       timestamptz NOT NULL,
  by       text,
  text     text        NOT NULL
);

CREATE INDEX task_notes_by_task ON task_notes (task_seq, note_id);

-- GET /tasks?q=: the words of each task's description, criteria and notes, in a table of its own,
-- kept by the triggers below, which fire only on a change of those: a claim or a renewal never
-- touches it. 'simple': no language's stemming, as the words of a task may be of any.
CREATE TABLE task_search (
  task_seq    bigint   PRIMARY KEY REFERENCES tasks (seq),
  project_id  text     NOT NULL, -- the task's, which never changes: a project's search reads this table alone
  description text     NOT NULL,
  criteria    text     NOT NULL,
  notes       text     NOT NULL,
  document    tsvector NOT NULL GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', description), 'A') || setweight(to_tsvector('simple', criteria), 'B')
    || to_tsvector('simple', notes)) STORED
);

-- fastupdate off: a search never scans a pending list; its cost falls on adding and editing tasks.
CREATE INDEX task_search_document ON task_search USING gin (document) WITH (fastupdate = off);
-- A broad word: the project's newest tasks backwards, each tested, until enough match (the planner
-- weighs this against the GIN index by the word's frequency in the statistics).
CREATE INDEX task_search_by_project ON task_search (project_id, task_seq);

CREATE OR REPLACE FUNCTION task_search_of_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO task_search (task_seq, project_id, description, criteria, notes)
  VALUES (NEW.seq, NEW.project_id, NEW.description,
          coalesce((SELECT string_agg(c->>'text', E'\n') FROM jsonb_array_elements(NEW.acceptance_criteria) AS c), ''), '')
  ON CONFLICT (task_seq) DO UPDATE SET description = excluded.description, criteria = excluded.criteria;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION task_search_of_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE task_search SET notes = CASE WHEN notes = '' THEN NEW.text ELSE notes || E'\n' || NEW.text END
  WHERE task_seq = NEW.task_seq;
  RETURN NULL;
END $$;

CREATE TRIGGER task_search_on_insert AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION task_search_of_task();
CREATE TRIGGER task_search_on_edit AFTER UPDATE OF description, acceptance_criteria ON tasks FOR EACH ROW
  WHEN (OLD.description IS DISTINCT FROM NEW.description OR OLD.acceptance_criteria IS DISTINCT FROM NEW.acceptance_criteria)
  EXECUTE FUNCTION task_search_of_task();
CREATE TRIGGER task_search_on_note AFTER INSERT ON task_notes FOR EACH ROW EXECUTE FUNCTION task_search_of_note();

-- The words of the tasks kept (none has criteria or notes yet).
INSERT INTO task_search (task_seq, project_id, description, criteria, notes) SELECT seq, project_id, description, '', '' FROM tasks;
