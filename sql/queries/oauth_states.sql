-- GitHub sign-ins in flight (clawtrol/auth/oauth_state.py): the state is stored hashed, used once, for
-- 10 minutes, and only by the browser that started the sign-in.

-- name: insert
INSERT INTO oauth_states (id, browser, verifier, next_path, created_at, expires_at)
VALUES (:id, :browser, :verifier, :next_path, :now, :expires_at)
RETURNING id

-- name: consume
-- Single use: the row is deleted by whoever gets it first; a replay, another browser or an expired state
-- gets nothing back.
DELETE FROM oauth_states
WHERE id = :id AND browser = :browser AND expires_at > :now
RETURNING verifier, next_path

-- name: delete_expired
DELETE FROM oauth_states WHERE expires_at <= :now RETURNING id
