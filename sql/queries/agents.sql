-- Links between tasks and OpenClaw agent sessions (tasks.session_key with tasks.session_gateway_id, and the
-- started_sessions record that start work writes), for the agents pages, "start work", messages to agents and
-- usage pulled from a finished session. A session is (gateway, session key): the same key on two gateways is
-- two sessions.

-- name: task_for_session
-- The task linked to a session of a gateway (a link without a recorded gateway matches any).
SELECT * FROM task_rows
WHERE session_key = :session_key AND COALESCE(session_gateway_id, :gateway_id) = :gateway_id

-- name: session_start
-- The start work record of a session on a gateway: who started it and the project it was started in (DESIGN §4).
SELECT ss.gateway_id, ss.session_key, ss.agent_id, ss.started_by, ss.started_by_token, ss.started_by_label,
       ss.started_at, ss.task_id AS started_task_id, ss.project_id AS started_project_id,
       p.name AS started_project_name, p.owner_id AS started_project_owner_id
FROM started_sessions ss
LEFT JOIN projects p ON p.id = ss.project_id
WHERE ss.gateway_id = :gateway_id AND ss.session_key = :session_key

-- name: session_gateways
-- Which gateways a session key is known on, the likeliest first: its task's link, then start work records.
-- Only to default a request that names no gateway; authority is always looked up on the gateway picked.
SELECT session_gateway_id AS gateway_id, 0 AS preference, updated_at AS since FROM tasks
WHERE session_key = :session_key AND session_gateway_id IS NOT NULL
UNION ALL
SELECT gateway_id, 1, started_at FROM started_sessions WHERE session_key = :session_key
ORDER BY preference, since DESC

-- name: record_start
INSERT INTO started_sessions (gateway_id, session_key, task_id, project_id, agent_id, started_by,
                              started_by_token, started_by_label, run_id, started_at)
VALUES (:gateway_id, :session_key, :task_id, :project_id, :agent_id, :started_by, :started_by_token,
        :started_by_label, :run_id, :started_at)
RETURNING session_key

-- name: tasks_for_sessions
-- The tasks linked to some of a gateway's sessions (a link without a recorded gateway matches any).
SELECT id, title, status, session_key, session_gateway_id FROM tasks
WHERE session_key IN :keys AND COALESCE(session_gateway_id, :gateway_id) = :gateway_id

-- name: set_usage
-- Fill usage the agent did not report, only while the task is done and still has none (several app
-- processes may pull it at once: one writes).
UPDATE tasks
SET tokens_input = :tokens_input, tokens_output = :tokens_output, tokens_total = :tokens_total, cost = :cost,
    model = COALESCE(model, :model), runtime = COALESCE(runtime, :runtime), updated_at = :now,
    version = version + 1
WHERE id = :id AND status = 'done' AND tokens_total IS NULL AND cost IS NULL
RETURNING id
