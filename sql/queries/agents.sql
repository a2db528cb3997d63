-- Links between tasks and OpenClaw agent sessions (tasks.session_key, and the started_sessions record that
-- start work writes), for the agents pages, "start work", messages to agents and usage pulled from a
-- finished session.

-- name: task_for_session
SELECT * FROM task_rows WHERE session_key = :session_key

-- name: session_start
-- The start work record of a session: who started it and the project it was started in (DESIGN §4).
SELECT ss.session_key, ss.agent_id, ss.started_by, ss.started_by_token, ss.started_by_label, ss.started_at,
       ss.task_id AS started_task_id, ss.project_id AS started_project_id, p.name AS started_project_name,
       p.owner_id AS started_project_owner_id
FROM started_sessions ss
LEFT JOIN projects p ON p.id = ss.project_id
WHERE ss.session_key = :session_key

-- name: record_start
INSERT INTO started_sessions (session_key, task_id, project_id, agent_id, started_by, started_by_token,
                              started_by_label, run_id, started_at)
VALUES (:session_key, :task_id, :project_id, :agent_id, :started_by, :started_by_token, :started_by_label,
        :run_id, :started_at)
RETURNING session_key

-- name: tasks_for_sessions
SELECT id, title, status, session_key FROM tasks WHERE session_key IN :keys

-- name: set_usage
-- Fill usage the agent did not report, only while the task is done and still has none (several app
-- processes may pull it at once: one writes).
UPDATE tasks
SET tokens_input = :tokens_input, tokens_output = :tokens_output, tokens_total = :tokens_total, cost = :cost,
    model = COALESCE(model, :model), runtime = COALESCE(runtime, :runtime), updated_at = :now,
    version = version + 1
WHERE id = :id AND status = 'done' AND tokens_total IS NULL AND cost IS NULL
RETURNING id
