-- Who started which agent session through the app ("start work"), recorded by the server in the same
-- transaction that links the session to its task. This record, not the client-writable tasks.session_key,
-- is what grants a member authority over a session (deciding its approvals, messaging it): DESIGN §4.
-- project_id is the task's project when work started, so moving the task later grants nothing.
CREATE TABLE started_sessions (
    session_key       TEXT PRIMARY KEY,
    task_id           TEXT REFERENCES tasks (id) ON DELETE SET NULL,
    project_id        TEXT REFERENCES projects (id) ON DELETE SET NULL,
    agent_id          TEXT NOT NULL,
    started_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    started_by_token  TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    started_by_label  TEXT NOT NULL,
    run_id            TEXT,
    started_at        TEXT NOT NULL
);
CREATE INDEX idx_started_sessions_task ON started_sessions (task_id);
CREATE INDEX idx_started_sessions_user ON started_sessions (started_by);
CREATE INDEX idx_started_sessions_project ON started_sessions (project_id);

-- Existing installs: rebuild the records from the audit trail's agent.work_started entries (written in the
-- same transaction as each start). References to rows that are gone become NULL.
INSERT INTO started_sessions (session_key, task_id, project_id, agent_id, started_by, started_by_token,
                              started_by_label, run_id, started_at)
SELECT (a.details ->> 'sessionKey'),
       (SELECT t.id FROM tasks t WHERE t.id = a.entity_id),
       (SELECT t.project_id FROM tasks t WHERE t.id = a.entity_id),
       COALESCE((a.details ->> 'agentId'), ''),
       (SELECT u.id FROM users u WHERE u.id = a.user_id),
       (SELECT k.id FROM api_tokens k WHERE k.id = a.token_id),
       COALESCE(a.actor_label, 'unknown'),
       (a.details ->> 'runId'),
       a.created_at
FROM audit_log a
WHERE a.action = 'agent.work_started' AND (a.details ->> 'sessionKey') IS NOT NULL
ORDER BY a.created_at
ON CONFLICT (session_key) DO NOTHING;

-- Approvals as the app reads them: the approval, the task it belongs to (the task_id recorded when the
-- request arrived, else the task start work linked, else the task holding the session key now), that
-- task's project, and the start work record of its session (who started it, the project it was started in
-- and that project's owner) which decides who may resolve it.
DROP VIEW approval_rows;
CREATE VIEW approval_rows AS
SELECT a.*, t.id AS linked_task_id, t.title AS task_title, t.status AS task_status, t.project_id,
       p.name AS project_name,
       ss.started_by, ss.started_by_token, ss.started_by_label, ss.started_at, ss.task_id AS started_task_id,
       ss.project_id AS started_project_id, sp.name AS started_project_name, sp.owner_id AS started_project_owner_id
FROM approvals a
LEFT JOIN started_sessions ss ON ss.session_key = a.session_key
LEFT JOIN tasks t ON t.id = COALESCE(a.task_id, ss.task_id,
                                     (SELECT s.id FROM tasks s WHERE s.session_key = a.session_key))
LEFT JOIN projects p ON p.id = t.project_id
LEFT JOIN projects sp ON sp.id = ss.project_id;
