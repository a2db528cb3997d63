-- Which agent sessions work for which project (the original's project-agent associations). A session is
-- (gateway, session key); a registration or task link without a recorded gateway matches the key on any.

-- name: list
-- Newest first. Three sources, each session once (the first that has it): the start work record (in the
-- project its task was in when work started), a task's session link, a registration from outside
-- (agent_associations). The linked task's status says whether the session's work is done.
-- :project_id NULL lists every project's.
SELECT a.*, p.name AS project_name
FROM (
    SELECT ss.gateway_id, ss.session_key, ss.project_id, t.title AS task, ss.task_id, ss.agent_id,
           CAST(NULL AS TEXT) AS label, t.model, ss.started_at AS since, t.status AS task_status,
           t.session_key AS task_session_key, t.session_gateway_id AS task_session_gateway_id, t.completed_at,
           'start-work' AS source, ss.started_by_label AS registered_by
    FROM started_sessions ss
    LEFT JOIN tasks t ON t.id = ss.task_id
    WHERE ss.project_id IS NOT NULL
    UNION ALL
    SELECT t.session_gateway_id, t.session_key, t.project_id, t.title, t.id, t.agent_id, NULL, t.model,
           t.created_at, t.status, t.session_key, t.session_gateway_id, t.completed_at, 'task-link', NULL
    FROM tasks t
    WHERE t.session_key IS NOT NULL AND t.project_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM started_sessions s
                      WHERE s.session_key = t.session_key AND s.project_id IS NOT NULL
                        AND s.gateway_id = COALESCE(t.session_gateway_id, s.gateway_id))
    UNION ALL
    SELECT r.gateway_id, r.session_key, r.project_id, r.task, t.id, NULL, r.label, r.model, r.created_at,
           t.status, t.session_key, t.session_gateway_id, t.completed_at, 'registered', r.registered_by_label
    FROM agent_associations r
    LEFT JOIN tasks t ON t.session_key = r.session_key
                     AND (r.gateway_id IS NULL OR t.session_gateway_id IS NULL OR t.session_gateway_id = r.gateway_id)
    WHERE NOT EXISTS (SELECT 1 FROM started_sessions s
                      WHERE s.session_key = r.session_key AND s.project_id IS NOT NULL
                        AND s.gateway_id = COALESCE(r.gateway_id, s.gateway_id))
      AND NOT EXISTS (SELECT 1 FROM tasks u
                      WHERE u.session_key = r.session_key AND u.project_id IS NOT NULL
                        AND (r.gateway_id IS NULL OR u.session_gateway_id IS NULL
                             OR u.session_gateway_id = r.gateway_id))
) a
LEFT JOIN projects p ON p.id = a.project_id
WHERE CAST(:project_id AS TEXT) IS NULL OR a.project_id = :project_id
ORDER BY a.since DESC, a.session_key
LIMIT :limit

-- name: register
-- A registration from outside; a session already registered keeps its first registration.
INSERT INTO agent_associations (session_key, gateway_id, project_id, task, label, model, registered_by,
                                registered_by_token, registered_by_label, created_at)
VALUES (:session_key, :gateway_id, :project_id, :task, :label, :model, :registered_by, :registered_by_token,
        :registered_by_label, :created_at)
ON CONFLICT (session_key) DO NOTHING
RETURNING session_key

-- name: get
SELECT * FROM agent_associations WHERE session_key = :session_key

-- name: unregister
-- When a gateway deletes its session: the registration of that key on that gateway (or on no recorded one).
DELETE FROM agent_associations
WHERE session_key = :session_key AND COALESCE(gateway_id, :gateway_id) = :gateway_id
RETURNING session_key
