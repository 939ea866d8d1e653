-- Upgrades a database of schema version 1 to version 2, in place, in one transaction.
-- Run by sqlite.ts (applySchema) after it renamed every table of version 1 to v1_<name> and
-- applied sqlite.sql: this copies every row into the new tables and drops the old ones.
-- The triggers of sqlite.sql count the copied tasks into project_counts.

INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                   unfinished_deps, status, claimed_by, lease_expires_at, lease_seconds, completion_notes,
                   created_at, updated_at, started_at, completed_at)
SELECT seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
       unfinished_deps, status, claimed_by,
       -- Version 1 had no leases: a claim held across the upgrade gets a fresh one of the default length.
       CASE WHEN status = 'in_progress' THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1800 seconds') END,
       CASE WHEN status = 'in_progress' THEN 1800 END,
       completion_notes, created_at, updated_at, started_at, completed_at
FROM v1_tasks ORDER BY seq;

INSERT INTO task_dependencies (dependency_seq, dependent_seq)
SELECT dependency_seq, dependent_seq FROM v1_task_dependencies;

INSERT INTO id_counters (project_id, artifact_type, last_assigned)
SELECT project_id, artifact_type, last_assigned FROM v1_id_counters;

INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
SELECT reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at FROM v1_reservations;

INSERT INTO idempotency_keys (id, lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at)
SELECT id, lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at
FROM v1_idempotency_keys ORDER BY id;

-- The history version 1 did not keep, as far as the tasks tell it: each was created pending,
-- claimed at started_at by claimed_by, completed at completed_at.
INSERT INTO task_events (task_seq, project_id, task_id, type, at, agent_id, from_status, to_status, details)
SELECT seq, project_id, task_id, 'created', created_at, NULL, NULL, 'pending', '{"status":"pending"}'
FROM tasks ORDER BY seq;

INSERT INTO task_events (task_seq, project_id, task_id, type, at, agent_id, from_status, to_status, details)
SELECT seq, project_id, task_id, 'claimed', started_at, claimed_by, 'pending', 'in_progress',
       json_object('lease_expires_at', lease_expires_at)
FROM tasks WHERE started_at IS NOT NULL ORDER BY seq;

INSERT INTO task_events (task_seq, project_id, task_id, type, at, agent_id, from_status, to_status, details)
SELECT seq, project_id, task_id, 'completed', completed_at, claimed_by, 'in_progress', 'completed',
       json_object('completion_notes', completion_notes)
FROM tasks WHERE status = 'completed' ORDER BY seq;

DROP TABLE v1_task_dependencies;
DROP TABLE v1_tasks;
DROP TABLE v1_id_counters;
DROP TABLE v1_reservations;
DROP TABLE v1_idempotency_keys;
