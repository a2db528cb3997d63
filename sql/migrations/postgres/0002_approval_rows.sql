-- Approvals as the app reads them: the approval plus the task it belongs to (the task_id recorded when the
-- request arrived, or else the task that holds the request's session key now) and that task's project.
-- Base tables, not task_rows: SQLite would materialize that view (every task) for each read. Both task
-- lookups use an index (the primary key, the unique session_key), however many tasks there are.
CREATE VIEW approval_rows AS
SELECT a.*, t.id AS linked_task_id, t.title AS task_title, t.status AS task_status, t.project_id,
       p.name AS project_name, p.owner_id AS project_owner_id, t.created_by AS task_created_by,
       t.created_by_token AS task_created_by_token, t.assigned_to AS task_assigned_to
FROM approvals a
LEFT JOIN tasks t ON t.id = COALESCE(a.task_id, (SELECT s.id FROM tasks s WHERE s.session_key = a.session_key))
LEFT JOIN projects p ON p.id = t.project_id;

CREATE INDEX idx_approvals_expiry ON approvals (status, expires_at);
