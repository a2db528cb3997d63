-- name: list
SELECT key, value, updated_at, updated_by FROM settings ORDER BY key

-- name: get
SELECT value FROM settings WHERE key = :key

-- name: lock
-- Read a setting and hold its row until the transaction ends (a portable SELECT ... FOR UPDATE:
-- PostgreSQL locks the row, SQLite already holds the write lock from BEGIN IMMEDIATE).
UPDATE settings SET key = key WHERE key = :key RETURNING value

-- name: upsert
INSERT INTO settings (key, value, updated_at, updated_by)
VALUES (:key, :value, :updated_at, :updated_by)
ON CONFLICT (key) DO UPDATE
SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by
RETURNING key

-- name: get_many
SELECT key, value FROM settings WHERE key IN :keys ORDER BY key
