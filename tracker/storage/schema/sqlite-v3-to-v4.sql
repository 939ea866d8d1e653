-- Upgrades a database of schema version 2 or 3 (the same tables) to version 4, in place, in one
-- transaction. Run by sqlite.ts (applySchema) after it renamed every table to v3_<name> and applied
-- sqlite.sql: this copies every row into the new tables and drops the old ones. Version 4 changes
-- CHECK constraints and a generated column, which SQLite can change only by building the table anew.
-- The triggers of sqlite.sql count the copied tasks into project_counts and index their words.

INSERT INTO tasks (seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
                   unfinished_deps, status, claimed_by, lease_expires_at, lease_seconds, lost_by, lost_at,
                   completion_notes, created_at, updated_at, started_at, completed_at)
SELECT seq, task_id, project_id, description, inputs, outputs, priority, priority_rank, depends_on,
       unfinished_deps, status, claimed_by, lease_expires_at, lease_seconds, lost_by, lost_at,
       completion_notes, created_at, updated_at, started_at, completed_at
FROM v3_tasks ORDER BY seq;

INSERT INTO task_dependencies (dependency_seq, dependent_seq)
SELECT dependency_seq, dependent_seq FROM v3_task_dependencies;

INSERT INTO task_events (event_id, task_seq, project_id, task_id, type, at, agent_id, from_status, to_status, details)
SELECT event_id, task_seq, project_id, task_id, type, at, agent_id, from_status, to_status, details
FROM v3_task_events ORDER BY event_id;

INSERT INTO id_counters (project_id, artifact_type, last_assigned)
SELECT project_id, artifact_type, last_assigned FROM v3_id_counters;

INSERT INTO reservations (reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at)
SELECT reservation_id, project_id, artifact_type, first_number, count, created_at, expires_at FROM v3_reservations;

INSERT INTO idempotency_keys (id, lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at)
SELECT id, lookup, scope, idempotency_key, fingerprint, response_status, response_body, created_at
FROM v3_idempotency_keys ORDER BY id;

DROP TABLE v3_project_counts;
DROP TABLE v3_task_events;
DROP TABLE v3_task_dependencies;
DROP TABLE v3_tasks;
DROP TABLE v3_id_counters;
DROP TABLE v3_reservations;
DROP TABLE v3_idempotency_keys;
