-- Links between tasks and OpenClaw agent sessions (tasks.session_key), for the agents pages, "start work",
-- messages to agents and usage pulled from a finished session.

-- name: task_for_session
SELECT * FROM task_rows WHERE session_key = :session_key

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
