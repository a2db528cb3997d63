-- Tasks (work orders). Reads go through the task_rows view (see the migration): the task's columns plus
-- who created it, who it is assigned to, and its project's name and owner.

-- name: get
SELECT t.* FROM task_rows t
WHERE t.id = :id

-- name: title
-- Whether a task exists, and its title (for comments: no joins needed).
SELECT id, title FROM tasks WHERE id = :id

-- name: lock
-- Hold the task's row until the transaction ends (portable SELECT ... FOR UPDATE), so a
-- read-check-write (version, review gate, enrichment) cannot interleave with another writer.
UPDATE tasks SET version = version WHERE id = :id RETURNING id

-- name: insert
INSERT INTO tasks (id, title, description, status, priority, project_id, agent_id, created_by, created_by_token,
                   assigned_to, session_key, session_gateway_id, handoff_notes, commit_hash, lines_added,
                   lines_removed, lines_total, estimated_human_minutes, human_cost, cost, runtime, model,
                   tokens_input, tokens_output, tokens_total, due_date, version, created_at, updated_at,
                   completed_at)
VALUES (:id, :title, :description, :status, :priority, :project_id, :agent_id, :created_by, :created_by_token,
        :assigned_to, :session_key, :session_gateway_id, :handoff_notes, :commit_hash, :lines_added,
        :lines_removed, :lines_total, :estimated_human_minutes, :human_cost, :cost, :runtime, :model,
        :tokens_input, :tokens_output, :tokens_total, :due_date, 1, :created_at, :updated_at, :completed_at)
RETURNING id

-- name: update
-- Write every editable column (the service merges the change into the current row first), only if the row
-- is still at the version the service read: no row back means another writer got there first.
UPDATE tasks
SET title = :title, description = :description, status = :status, priority = :priority,
    project_id = :project_id, agent_id = :agent_id, assigned_to = :assigned_to, session_key = :session_key,
    session_gateway_id = :session_gateway_id,
    handoff_notes = :handoff_notes, commit_hash = :commit_hash, lines_added = :lines_added,
    lines_removed = :lines_removed, lines_total = :lines_total,
    estimated_human_minutes = :estimated_human_minutes, human_cost = :human_cost, cost = :cost,
    runtime = :runtime, model = :model, tokens_input = :tokens_input, tokens_output = :tokens_output,
    tokens_total = :tokens_total, due_date = :due_date, completed_at = :completed_at,
    updated_at = :updated_at, version = version + 1
WHERE id = :id AND version = :version
RETURNING version

-- name: delete
DELETE FROM tasks WHERE id = :id RETURNING id

-- fragment: board_filter
-- The board's filters, each optional (a NULL parameter leaves it out): project, assignee or unassigned, and text
-- in the title or description. The API's list adds agent and status. Written as `AND ...` lines after a
-- condition of the query's own.
  AND (CAST(:project_id AS TEXT) IS NULL OR t.project_id = :project_id)
  AND (CAST(:assigned_to AS TEXT) IS NULL OR t.assigned_to = :assigned_to)
  AND (CAST(:unassigned AS INTEGER) = 0 OR t.assigned_to IS NULL)
  AND (CAST(:q AS TEXT) IS NULL OR lower(t.title) LIKE lower(:q) ESCAPE '\'
       OR lower(coalesce(t.description, '')) LIKE lower(:q) ESCAPE '\')

-- name: search
-- The API's list: every filter optional, combinable; newest first.
SELECT t.* FROM task_rows t
WHERE (CAST(:agent_id AS TEXT) IS NULL OR t.agent_id = :agent_id)
  AND (CAST(:status AS TEXT) IS NULL OR t.status = :status)
-- include: board_filter
ORDER BY t.created_at DESC, t.id
LIMIT :limit OFFSET :offset

-- name: count_all
-- The list's total when no filter is set: a plain count, which the database answers without testing rows.
SELECT count(*) FROM tasks

-- name: search_count
SELECT count(*)
FROM tasks t
WHERE (CAST(:agent_id AS TEXT) IS NULL OR t.agent_id = :agent_id)
  AND (CAST(:status AS TEXT) IS NULL OR t.status = :status)
-- include: board_filter

-- name: board_counts
-- Cards per column under the board's filters.
SELECT t.status, count(*) AS n
FROM tasks t
WHERE 1 = 1
-- include: board_filter
GROUP BY t.status

-- name: board_column
-- One open column: priority first, then oldest first.
SELECT t.* FROM task_rows t
WHERE t.status = :status
-- include: board_filter
ORDER BY t.priority, t.created_at, t.id
LIMIT :limit OFFSET :offset

-- name: board_done
-- The done column: most recently completed first, so old history never loads by default.
SELECT t.* FROM task_rows t
WHERE t.status = 'done'
-- include: board_filter
ORDER BY t.completed_at DESC, t.id
LIMIT :limit OFFSET :offset
