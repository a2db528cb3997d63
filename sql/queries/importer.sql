-- `clawtrol import-sqlite`: writes into the target database (clawtrol/importer.py). Every insert keeps
-- the source's id and does nothing when the id is already there, so a second run inserts nothing; the
-- RETURNING row tells inserted from skipped. The *_keys queries read back the verification fields.

-- name: user_ids
SELECT id, github_id, login FROM users

-- name: insert_user
INSERT INTO users (id, github_id, login, name, email, avatar_url, role, active, github_token, created_at,
                   updated_at, last_login_at, reviewed_at, reviewed_by)
VALUES (:id, :github_id, :login, :name, :email, :avatar_url, :role, :active, :github_token, :created_at,
        :updated_at, :last_login_at, :reviewed_at, :reviewed_by)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: insert_app_state
INSERT INTO app_state (key, value, created_at) VALUES (:key, :value, :created_at)
ON CONFLICT (key) DO NOTHING
RETURNING key

-- name: insert_api_token
INSERT INTO api_tokens (id, name, prefix, token_hash, role, created_by, created_at, expires_at, last_used_at,
                        revoked_at)
VALUES (:id, :name, :prefix, :token_hash, :role, :created_by, :created_at, :expires_at, :last_used_at,
        :revoked_at)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: insert_project
INSERT INTO projects (id, name, description, owner_id, archived, created_at, updated_at)
VALUES (:id, :name, :description, :owner_id, :archived, :created_at, :updated_at)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: insert_task
INSERT INTO tasks (id, title, description, status, priority, project_id, agent_id, user_id, created_by,
                   created_by_token, assigned_to, session_key, handoff_notes, commit_hash, lines_added,
                   lines_removed, lines_total, estimated_human_minutes, human_cost, cost, runtime, model,
                   tokens_input, tokens_output, tokens_total, due_date, version, created_at, updated_at,
                   completed_at)
VALUES (:id, :title, :description, :status, :priority, :project_id, :agent_id, :user_id, :created_by,
        :created_by_token, :assigned_to, :session_key, :handoff_notes, :commit_hash, :lines_added,
        :lines_removed, :lines_total, :estimated_human_minutes, :human_cost, :cost, :runtime, :model,
        :tokens_input, :tokens_output, :tokens_total, :due_date, :version, :created_at, :updated_at,
        :completed_at)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: insert_comment
INSERT INTO comments (id, task_id, user_id, token_id, user_name, user_avatar, content, created_at, updated_at)
VALUES (:id, :task_id, :user_id, :token_id, :user_name, :user_avatar, :content, :created_at, :updated_at)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: get_setting
SELECT value FROM settings WHERE key = :key

-- name: put_setting
-- Only called when the value differs from the target's, so an unchanged setting is not rewritten.
INSERT INTO settings (key, value, updated_at, updated_by)
VALUES (:key, :value, :updated_at, :updated_by)
ON CONFLICT (key) DO UPDATE
SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by
RETURNING key

-- name: insert_approval
INSERT INTO approvals (id, command, cwd, host, agent_id, session_key, task_id, allowed_decisions, status,
                       decision, decided_by, decided_by_token, decided_by_label, decided_at, gateway_ack_at,
                       requested_at, expires_at, payload, updated_at)
VALUES (:id, :command, :cwd, :host, :agent_id, :session_key, :task_id, :allowed_decisions, :status,
        :decision, :decided_by, :decided_by_token, :decided_by_label, :decided_at, :gateway_ack_at,
        :requested_at, :expires_at, :payload, :updated_at)
ON CONFLICT (gateway_id, id) DO NOTHING
RETURNING id

-- name: insert_audit
INSERT INTO audit_log (id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id,
                       details, ip, user_agent, created_at)
VALUES (:id, :user_id, :token_id, :actor_kind, :actor_label, :action, :entity_type, :entity_id,
        :details, :ip, :user_agent, :created_at)
ON CONFLICT (id) DO NOTHING
RETURNING id

-- name: link_sessions_to_default
-- After an import: imported session links belong to the gateway 'default' (GATEWAY_URL), as approvals and start
-- work records do (their gateway_id column defaults to it).
UPDATE tasks SET session_gateway_id = 'default' WHERE session_key IS NOT NULL AND session_gateway_id IS NULL

-- name: insert_started_session
INSERT INTO started_sessions (session_key, task_id, project_id, agent_id, started_by, started_by_token,
                              started_by_label, run_id, started_at)
VALUES (:id, :task_id, :project_id, :agent_id, :started_by, :started_by_token, :started_by_label, :run_id,
        :started_at)
ON CONFLICT (gateway_id, session_key) DO NOTHING
RETURNING session_key

-- name: users_keys
SELECT id, login, role FROM users WHERE id IN :ids

-- name: app_state_keys
SELECT key AS id, value FROM app_state WHERE key IN :ids

-- name: api_tokens_keys
SELECT id, name, role FROM api_tokens WHERE id IN :ids

-- name: projects_keys
SELECT id, name FROM projects WHERE id IN :ids

-- name: tasks_keys
SELECT id, title, status, priority, cost, completed_at FROM tasks WHERE id IN :ids

-- name: comments_keys
SELECT id, task_id, content FROM comments WHERE id IN :ids

-- name: settings_keys
SELECT key AS id, value FROM settings WHERE key IN :ids

-- name: approvals_keys
SELECT id, command, status FROM approvals WHERE id IN :ids

-- name: started_sessions_keys
SELECT session_key AS id, started_by_label FROM started_sessions WHERE session_key IN :ids

-- name: audit_log_keys
SELECT id, action FROM audit_log WHERE id IN :ids

-- name: table_counts
-- Rows per imported table, for the summary's "in target" column.
SELECT 'users' AS name, count(*) AS n FROM users
UNION ALL SELECT 'app_state', count(*) FROM app_state
UNION ALL SELECT 'api_tokens', count(*) FROM api_tokens
UNION ALL SELECT 'projects', count(*) FROM projects
UNION ALL SELECT 'tasks', count(*) FROM tasks
UNION ALL SELECT 'comments', count(*) FROM comments
UNION ALL SELECT 'settings', count(*) FROM settings
UNION ALL SELECT 'approvals', count(*) FROM approvals
UNION ALL SELECT 'started_sessions', count(*) FROM started_sessions
UNION ALL SELECT 'audit_log', count(*) FROM audit_log
