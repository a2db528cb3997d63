-- name: insert
INSERT INTO api_tokens (id, name, prefix, token_hash, role, created_by, created_at, expires_at)
VALUES (:id, :name, :prefix, :token_hash, :role, :created_by, :now, :expires_at)
RETURNING id

-- name: resolve
-- A usable token: not revoked, not expired.
SELECT id, name, prefix, role, last_used_at, expires_at
FROM api_tokens
WHERE token_hash = :token_hash AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)

-- name: get
SELECT t.id, t.name, t.prefix, t.role, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
       t.created_by, u.login AS created_by_login
FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
WHERE t.id = :id

-- name: list
SELECT t.id, t.name, t.prefix, t.role, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
       t.created_by, u.login AS created_by_login
FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC

-- name: touch
-- Record use (auth/activity.py writes the noted times about once a minute); never moves backwards.
UPDATE api_tokens SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :stale_before)
RETURNING id

-- name: revoke
UPDATE api_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL RETURNING id
