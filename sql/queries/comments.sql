-- name: list_for_task
SELECT c.id, c.task_id, c.user_id, c.token_id, c.user_name, c.user_avatar, c.content, c.created_at, c.updated_at
FROM comments c WHERE c.task_id = :task_id ORDER BY c.created_at, c.id

-- name: get
SELECT id, task_id, user_id, token_id, user_name, user_avatar, content, created_at, updated_at
FROM comments WHERE id = :id AND task_id = :task_id

-- name: insert
-- Only when the task exists (no row back: no such task), returning the new comment and the task's title.
INSERT INTO comments (id, task_id, user_id, token_id, user_name, user_avatar, content, created_at, updated_at)
SELECT :id, t.id, :user_id, :token_id, :user_name, :user_avatar, :content, :now, NULL
FROM tasks t WHERE t.id = :task_id
RETURNING id, task_id, user_id, token_id, user_name, user_avatar, content, created_at, updated_at,
          (SELECT title FROM tasks WHERE tasks.id = comments.task_id) AS task_title

-- name: update
UPDATE comments SET content = :content, updated_at = :now WHERE id = :id AND task_id = :task_id RETURNING id

-- name: delete
DELETE FROM comments WHERE id = :id AND task_id = :task_id RETURNING id
