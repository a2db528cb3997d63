-- name: get
SELECT id, github_id, login, name, email, avatar_url, role, active, created_at, updated_at, last_login_at,
       reviewed_at, reviewed_by
FROM users WHERE id = :id

-- name: get_by_github_id
SELECT id, github_id, login, name, email, avatar_url, role, active, created_at, updated_at, last_login_at,
       reviewed_at, reviewed_by
FROM users WHERE github_id = :github_id

-- name: get_local
-- A local dev sign-in user (no GitHub account behind it).
SELECT id, github_id, login, name, email, avatar_url, role, active, created_at, updated_at, last_login_at,
       reviewed_at, reviewed_by
FROM users WHERE login = :login AND github_id IS NULL

-- name: list
SELECT id, github_id, login, name, email, avatar_url, role, active, created_at, updated_at, last_login_at,
       reviewed_at, reviewed_by
FROM users ORDER BY created_at, login

-- name: insert
-- reviewed_at: NULL for an account an admin should look at ("new" on the users page).
INSERT INTO users (id, github_id, login, name, email, avatar_url, role, active, created_at, updated_at,
                   last_login_at, reviewed_at)
VALUES (:id, :github_id, :login, :name, :email, :avatar_url, :role, TRUE, :now, :now, :now, :reviewed_at)
RETURNING id

-- name: update_profile
-- Refresh what GitHub says about the user at every sign-in. GitHub tokens are not kept (always NULL).
UPDATE users
SET login = :login, name = :name, email = :email, avatar_url = :avatar_url, github_token = NULL,
    updated_at = :now, last_login_at = :now
WHERE id = :id
RETURNING id

-- name: record_login
UPDATE users SET last_login_at = :now WHERE id = :id RETURNING id

-- name: claim_first_admin
-- Succeeds (returns a row) only for the first user while no admin exists; concurrent callers queue on
-- the key and all but one get nothing back.
INSERT INTO app_state (key, value, created_at)
SELECT 'first_admin', :user_id, :now
WHERE NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND active = TRUE)
ON CONFLICT (key) DO NOTHING
RETURNING value

-- name: lock_admins
-- Lock every active admin row for the rest of the transaction (last-admin checks), return their ids.
UPDATE users SET role = role WHERE role = 'admin' AND active = TRUE RETURNING id

-- name: set_role
UPDATE users SET role = :role, updated_at = :now WHERE id = :id RETURNING id

-- name: set_active
UPDATE users SET active = :active, updated_at = :now WHERE id = :id RETURNING id

-- name: delete
DELETE FROM users WHERE id = :id RETURNING id

-- name: mark_reviewed
-- An admin looked at the account (role change, (de)activation, or "Mark reviewed"); reviewer NULL: the system.
UPDATE users SET reviewed_at = :now, reviewed_by = :reviewed_by WHERE id = :id RETURNING id
