-- name: lock
-- Session-level advisory lock: concurrent `clawtrol db upgrade` / `serve` processes take turns.
SELECT pg_advisory_lock(:key)

-- name: unlock
SELECT pg_advisory_unlock(:key)
