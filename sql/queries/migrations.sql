-- name: create_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)

-- name: applied
SELECT version, name, applied_at FROM schema_migrations ORDER BY version

-- name: is_applied
SELECT count(*) FROM schema_migrations WHERE version = :version

-- name: record
INSERT INTO schema_migrations (version, name, applied_at)
VALUES (:version, :name, :applied_at)
RETURNING version
