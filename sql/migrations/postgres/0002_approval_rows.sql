-- Approvals as the app reads them: the approval plus the task it belongs to (the task_id recorded when the
-- request arrived, or else the task that holds the request's session key now) and that task's project.
CREATE VIEW approval_rows AS
SELECT a.*, t.id AS linked_task_id, t.title AS task_title, t.status AS task_status, t.project_id,
       t.project_name, t.project_owner_id, t.created_by AS task_created_by,
       t.created_by_token AS task_created_by_token, t.assigned_to AS task_assigned_to
FROM approvals a
LEFT JOIN task_rows t
       ON t.id = a.task_id OR (a.task_id IS NULL AND a.session_key IS NOT NULL AND t.session_key = a.session_key);

CREATE INDEX idx_approvals_expiry ON approvals (status, expires_at);
