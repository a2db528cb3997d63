-- Projects live in the database: a slug id, a name, a description and an owner.

-- name: get
SELECT id, name, description, owner_id, archived, default_gateway_id, created_at, updated_at
FROM projects WHERE id = :id

-- name: options
-- Projects to pick from in filters and task forms.
SELECT id, name FROM projects WHERE archived = FALSE ORDER BY lower(name), id

-- name: list_with_stats
-- Every project with its owner and task counts (costs come from costs.by_project).
SELECT p.id, p.name, p.description, p.owner_id, p.archived, p.default_gateway_id, p.created_at, p.updated_at,
       u.login AS owner_login, u.name AS owner_name, u.avatar_url AS owner_avatar,
       count(t.id) AS total,
       sum(CASE WHEN t.status = 'done' THEN 1 ELSE 0 END) AS done
FROM projects p
LEFT JOIN users u ON u.id = p.owner_id
LEFT JOIN tasks t ON t.project_id = p.id
WHERE (CAST(:include_archived AS INTEGER) = 1 OR p.archived = FALSE)
GROUP BY p.id, p.name, p.description, p.owner_id, p.archived, p.default_gateway_id, p.created_at, p.updated_at,
         u.login, u.name, u.avatar_url
ORDER BY p.archived, lower(p.name), p.id

-- name: get_with_stats
SELECT p.id, p.name, p.description, p.owner_id, p.archived, p.default_gateway_id, p.created_at, p.updated_at,
       u.login AS owner_login, u.name AS owner_name, u.avatar_url AS owner_avatar,
       count(t.id) AS total,
       sum(CASE WHEN t.status = 'done' THEN 1 ELSE 0 END) AS done
FROM projects p
LEFT JOIN users u ON u.id = p.owner_id
LEFT JOIN tasks t ON t.project_id = p.id
WHERE p.id = :id
GROUP BY p.id, p.name, p.description, p.owner_id, p.archived, p.default_gateway_id, p.created_at, p.updated_at,
         u.login, u.name, u.avatar_url

-- name: status_counts
SELECT status, count(*) AS n FROM tasks WHERE project_id = :id GROUP BY status

-- name: tasks
-- A project's tasks, by status in board order, then priority.
SELECT t.id, t.title, t.status, t.priority, t.agent_id, t.assigned_to, t.created_by, t.created_by_token,
       t.updated_at, t.completed_at, t.cost, t.version, au.login AS assigned_login, au.name AS assigned_name
FROM tasks t LEFT JOIN users au ON au.id = t.assigned_to
WHERE t.project_id = :id
ORDER BY CASE t.status WHEN 'backlog' THEN 0 WHEN 'todo' THEN 1 WHEN 'in-progress' THEN 2
                       WHEN 'review' THEN 3 ELSE 4 END, t.priority, t.created_at, t.id
LIMIT :limit

-- name: insert
INSERT INTO projects (id, name, description, owner_id, archived, default_gateway_id, created_at, updated_at)
VALUES (:id, :name, :description, :owner_id, FALSE, :default_gateway_id, :now, :now)
RETURNING id

-- name: update
UPDATE projects SET name = :name, description = :description, archived = :archived,
                    default_gateway_id = :default_gateway_id, updated_at = :now
WHERE id = :id
RETURNING id

-- name: lock
UPDATE projects SET id = id WHERE id = :id RETURNING id

-- name: delete
DELETE FROM projects WHERE id = :id RETURNING id

-- name: agent_summary
-- Per agent, a project's tasks: how many, done, in progress, and the agent's latest change.
SELECT agent_id, count(*) AS task_count,
       sum(CASE WHEN status = 'done' THEN 1 ELSE 0 END) AS done_tasks,
       sum(CASE WHEN status = 'in-progress' THEN 1 ELSE 0 END) AS in_progress,
       max(updated_at) AS last_active
FROM tasks
WHERE project_id = :id AND agent_id IS NOT NULL
GROUP BY agent_id
ORDER BY last_active DESC, agent_id

-- name: agent_models
-- The models each agent reported on a project's tasks.
SELECT DISTINCT agent_id, model FROM tasks
WHERE project_id = :id AND agent_id IS NOT NULL AND model IS NOT NULL
ORDER BY agent_id, model

-- name: handoffs
-- The latest handoff notes of a project's tasks.
SELECT id, title, status, agent_id, handoff_notes, commit_hash, updated_at FROM tasks
WHERE project_id = :id AND handoff_notes IS NOT NULL AND handoff_notes <> ''
ORDER BY updated_at DESC, id DESC
LIMIT :limit
