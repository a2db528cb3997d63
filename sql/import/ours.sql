-- Read-only queries against a SOURCE SQLite file written by this app (run with Python's sqlite3 by
-- clawtrol/importer.py). Column lists follow sql/migrations/sqlite/; the importer refuses a source whose
-- schema_migrations version differs from the target's, so both sides have these columns.
-- Not read: auth_sessions (sessions belong to the old deployment) and schema_migrations.

-- name: schema_version
SELECT max(version) FROM schema_migrations

-- name: count_users
SELECT count(*) FROM users

-- name: users
SELECT id, github_id, login, name, email, avatar_url, role, active, github_token, created_at, updated_at,
       last_login_at, reviewed_at, reviewed_by
FROM users ORDER BY created_at, id

-- name: count_app_state
SELECT count(*) FROM app_state

-- name: app_state
SELECT key, value, created_at FROM app_state ORDER BY key

-- name: count_api_tokens
SELECT count(*) FROM api_tokens

-- name: api_tokens
SELECT id, name, prefix, token_hash, role, created_by, created_at, expires_at, last_used_at, revoked_at
FROM api_tokens ORDER BY created_at, id

-- name: count_projects
SELECT count(*) FROM projects

-- name: projects
SELECT id, name, description, owner_id, archived, created_at, updated_at FROM projects ORDER BY created_at, id

-- name: count_tasks
SELECT count(*) FROM tasks

-- name: tasks
SELECT id, title, description, status, priority, project_id, agent_id, user_id, created_by, created_by_token,
       assigned_to, session_key, handoff_notes, commit_hash, lines_added, lines_removed, lines_total,
       estimated_human_minutes, human_cost, cost, runtime, model, tokens_input, tokens_output, tokens_total,
       due_date, version, created_at, updated_at, completed_at
FROM tasks ORDER BY created_at, id

-- name: count_comments
SELECT count(*) FROM comments

-- name: comments
SELECT id, task_id, user_id, token_id, user_name, user_avatar, content, created_at, updated_at
FROM comments ORDER BY created_at, id

-- name: count_settings
SELECT count(*) FROM settings

-- name: settings
SELECT key, value, updated_at, updated_by FROM settings ORDER BY key

-- name: count_approvals
SELECT count(*) FROM approvals

-- name: approvals
SELECT id, command, cwd, host, agent_id, session_key, task_id, allowed_decisions, status, decision, decided_by,
       decided_by_token, decided_by_label, decided_at, gateway_ack_at, requested_at, expires_at, payload,
       updated_at
FROM approvals ORDER BY requested_at, id

-- name: count_started_sessions
SELECT count(*) FROM started_sessions

-- name: started_sessions
SELECT session_key AS id, task_id, project_id, agent_id, started_by, started_by_token, started_by_label, run_id,
       started_at
FROM started_sessions ORDER BY started_at, session_key

-- name: count_audit_log
SELECT count(*) FROM audit_log

-- name: audit_log
SELECT id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id, details, ip, user_agent,
       created_at
FROM audit_log ORDER BY created_at, id
