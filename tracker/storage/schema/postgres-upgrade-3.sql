-- Upgrades a database of schema version 2 (release 0.2.0) to version 3 in place. Run by postgres.ts
-- in the same transaction and under the same advisory lock as postgres.sql; the result has the
-- tables of postgres.sql.

-- A lost claim becomes two columns of its task, as on SQLite (version 2 read it from the history
-- each time). Filled from the history: the former holder of the task's last claim_expired and its
-- lease, unless that agent claimed the task again since (then the task records none).
ALTER TABLE tasks ADD COLUMN lost_by text, ADD COLUMN lost_at timestamptz;

UPDATE tasks t SET lost_by = lost.former_holder, lost_at = lost.lease_expires_at
FROM (
  SELECT DISTINCT ON (e.task_seq) e.task_seq, e.event_id, e.details->>'former_holder' AS former_holder,
         (e.details->>'lease_expires_at')::timestamptz AS lease_expires_at
  FROM task_events e WHERE e.type = 'claim_expired'
  ORDER BY e.task_seq, e.event_id DESC) AS lost
WHERE t.seq = lost.task_seq
  AND NOT EXISTS (
    SELECT 1 FROM task_events c
    WHERE c.task_seq = t.seq AND c.type = 'claimed' AND c.event_id > lost.event_id AND c.agent_id = lost.former_holder);
