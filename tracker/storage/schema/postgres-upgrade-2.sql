-- Upgrades a database of schema version 1 (the first release) to version 2 in place, keeping every
-- task, counter, reservation and stored response. Run by postgres.ts in the same transaction and
-- under the same advisory lock as postgres.sql; the result has the tables of postgres.sql.

-- Task identity is (project_id, task_id).
ALTER TABLE tasks DROP CONSTRAINT tasks_task_id_key;
ALTER TABLE tasks ADD CONSTRAINT tasks_project_task UNIQUE (project_id, task_id);

-- Leases. A claim of the first release had none: it gets the default length, from now.
ALTER TABLE tasks ADD COLUMN lease_expires_at timestamptz, ADD COLUMN lease_seconds integer;
UPDATE tasks SET lease_expires_at = date_trunc('milliseconds', now()) + interval '1800 seconds', lease_seconds = 1800
WHERE status = 'in_progress';
ALTER TABLE tasks ADD CONSTRAINT tasks_lease_while_in_progress
  CHECK ((status = 'in_progress') = (lease_expires_at IS NOT NULL));

ALTER TABLE tasks ADD COLUMN list_group smallint NOT NULL GENERATED ALWAYS AS (
  CASE WHEN status = 'pending' AND unfinished_deps = 0 THEN 0 WHEN status = 'pending' THEN 1
       WHEN status = 'in_progress' THEN 2 ELSE 3 END) STORED;

DROP INDEX tasks_next;
CREATE INDEX tasks_task_id ON tasks (task_id);
CREATE INDEX tasks_by_group ON tasks (project_id, list_group, priority_rank, seq);
CREATE INDEX tasks_all_by_group ON tasks (list_group, priority_rank, seq);
CREATE INDEX tasks_in_progress ON tasks (project_id, started_at, seq) WHERE status = 'in_progress';
CREATE INDEX tasks_all_in_progress ON tasks (started_at, seq) WHERE status = 'in_progress';
CREATE INDEX tasks_claimed ON tasks (claimed_by, started_at, seq) WHERE status = 'in_progress';
CREATE INDEX tasks_completed ON tasks (project_id, completed_at DESC, seq DESC) WHERE status = 'completed';
CREATE INDEX tasks_all_completed ON tasks (completed_at DESC, seq DESC) WHERE status = 'completed';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE status = 'in_progress';

CREATE TABLE task_events (
  event_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_seq    bigint      NOT NULL REFERENCES tasks (seq),
  type        text        NOT NULL CHECK (type IN ('created', 'claimed', 'released', 'force_released', 'completed',
                                                   'claim_expired', 'updated')),
  at          timestamptz NOT NULL,
  agent_id    text,
  from_status text,
  to_status   text,
  details     jsonb       NOT NULL
);
CREATE INDEX task_events_by_task ON task_events (task_seq, event_id);

-- The history the first release did not keep, as far as the tasks tell it (as sqlite-v1-to-v2.sql):
-- each was created pending, claimed at started_at by claimed_by, completed at completed_at.
INSERT INTO task_events (task_seq, type, at, agent_id, from_status, to_status, details)
SELECT seq, 'created', created_at, NULL, NULL, 'pending', '{"status": "pending"}' FROM tasks ORDER BY seq;
INSERT INTO task_events (task_seq, type, at, agent_id, from_status, to_status, details)
SELECT seq, 'claimed', started_at, claimed_by, 'pending', 'in_progress',
       jsonb_build_object('lease_expires_at', to_char(lease_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
FROM tasks WHERE started_at IS NOT NULL ORDER BY seq;
INSERT INTO task_events (task_seq, type, at, agent_id, from_status, to_status, details)
SELECT seq, 'completed', completed_at, claimed_by, 'in_progress', 'completed',
       jsonb_build_object('completion_notes', completion_notes)
FROM tasks WHERE status = 'completed' ORDER BY seq;

CREATE INDEX reservations_active ON reservations (project_id, expires_at);

-- No more in-flight markers: a key's row commits with its response. A marker left unanswered by
-- the first release belonged to a request that is gone (instances are stopped for the upgrade).
DELETE FROM idempotency_keys WHERE response_status IS NULL;
ALTER TABLE idempotency_keys DROP COLUMN token, DROP COLUMN lease_until,
  ALTER COLUMN response_status SET NOT NULL, ALTER COLUMN response_body SET NOT NULL;
