-- name: insert
INSERT INTO auth_sessions (id, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
VALUES (:id, :user_id, :now, :expires_at, :now, :ip, :user_agent)
RETURNING id

-- name: resolve
-- The signed-in user behind a live session.
SELECT s.id AS session_id, s.last_seen_at, u.id, u.login, u.name, u.email, u.avatar_url, u.role, u.active
FROM auth_sessions s JOIN users u ON u.id = s.user_id
WHERE s.id = :id AND s.expires_at > :now

-- name: touch
UPDATE auth_sessions SET last_seen_at = :now WHERE id = :id RETURNING id

-- name: delete
DELETE FROM auth_sessions WHERE id = :id RETURNING user_id

-- name: delete_for_user
DELETE FROM auth_sessions WHERE user_id = :user_id RETURNING id

-- name: delete_expired
DELETE FROM auth_sessions WHERE expires_at <= :now RETURNING id
