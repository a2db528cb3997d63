-- name: totals
-- Headline numbers: all tasks, tasks done since :since, agents working on in-progress tasks.
SELECT count(*) AS total,
       sum(CASE WHEN status = 'done' AND completed_at >= :since THEN 1 ELSE 0 END) AS done_recently,
       count(DISTINCT CASE WHEN status = 'in-progress' THEN agent_id END) AS active_agents
FROM tasks

-- name: needs_attention
-- Open tasks that want a human: in review, unowned todo/in-progress, P0/P1, or past due.
SELECT t.id, t.title, t.status, t.priority, t.agent_id, t.assigned_to, t.due_date, t.updated_at,
       au.login AS assigned_login, au.name AS assigned_name
FROM tasks t LEFT JOIN users au ON au.id = t.assigned_to
WHERE t.status <> 'done'
  AND (t.status = 'review'
       OR (t.status IN ('todo', 'in-progress') AND t.assigned_to IS NULL AND t.agent_id IS NULL)
       OR t.priority IN ('P0', 'P1')
       OR (t.due_date IS NOT NULL AND t.due_date < :now))
ORDER BY t.priority, t.updated_at DESC, t.id
LIMIT :limit
