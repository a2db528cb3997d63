-- name: get
SELECT id, name, description, owner_id, archived, created_at, updated_at FROM projects WHERE id = :id

-- name: options
-- Projects to pick from in filters and task forms.
SELECT id, name FROM projects WHERE archived = FALSE ORDER BY lower(name), id
