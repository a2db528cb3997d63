-- Several OpenClaw gateways (issue #15). Gateways become records; everything gateway-shaped names its gateway.
-- Rows from before this change belong to the gateway with id 'default', the record GATEWAY_URL becomes at the
-- first start (clawtrol/gateways/bootstrap.py).

-- The token is encrypted (clawtrol/gateways/secrets.py); a removed gateway keeps its row (deleted_at) so the
-- history of its approvals still names it. Names are unique among the gateways not removed.
CREATE TABLE gateways (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    url              TEXT NOT NULL,
    token_encrypted  TEXT,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_by_label TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    updated_by_label TEXT,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT
);
CREATE UNIQUE INDEX idx_gateways_name ON gateways (name) WHERE deleted_at IS NULL;

-- An approval rule may apply to one gateway's approvals only (null: every gateway's).
ALTER TABLE approval_rules ADD COLUMN gateway_id TEXT;

-- A project may name the gateway its tasks' work starts on (not a reference: a removed gateway is just unused).
ALTER TABLE projects ADD COLUMN default_gateway_id TEXT;

-- A task's session link records its gateway. PostgreSQL expands t.* when a view is created: recreate task_rows.
ALTER TABLE tasks ADD COLUMN session_gateway_id TEXT;
UPDATE tasks SET session_gateway_id = 'default' WHERE session_key IS NOT NULL;
DROP VIEW task_rows;
CREATE VIEW task_rows AS
SELECT t.*, p.name AS project_name, p.owner_id AS project_owner_id,
       cu.login AS created_by_login, ct.name AS created_by_token_name,
       au.login AS assigned_login, au.name AS assigned_name, au.avatar_url AS assigned_avatar
FROM tasks t
LEFT JOIN projects p ON p.id = t.project_id
LEFT JOIN users cu ON cu.id = t.created_by
LEFT JOIN api_tokens ct ON ct.id = t.created_by_token
LEFT JOIN users au ON au.id = t.assigned_to;

-- Approval identity is (gateway, approval id); close_reason says why a closed approval was closed.
DROP VIEW approval_rows;
ALTER TABLE approvals ADD COLUMN gateway_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE approvals ADD COLUMN close_reason TEXT CHECK (close_reason IN ('vanished', 'gateway_removed'));
UPDATE approvals SET close_reason = 'vanished' WHERE status = 'closed';
ALTER TABLE approvals DROP CONSTRAINT approvals_pkey;
ALTER TABLE approvals ADD PRIMARY KEY (gateway_id, id);
CREATE INDEX idx_approvals_id ON approvals (id);

-- Start work records are per (gateway, session key): a start on one gateway grants nothing on another.
ALTER TABLE started_sessions ADD COLUMN gateway_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE started_sessions DROP CONSTRAINT started_sessions_pkey;
ALTER TABLE started_sessions ADD PRIMARY KEY (gateway_id, session_key);
CREATE INDEX idx_started_sessions_key ON started_sessions (session_key);

-- Registrations and announced stalls name their gateway too.
ALTER TABLE agent_associations ADD COLUMN gateway_id TEXT;
UPDATE agent_associations SET gateway_id = 'default';
ALTER TABLE agent_stalls ADD COLUMN gateway_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE agent_stalls DROP CONSTRAINT agent_stalls_pkey;
ALTER TABLE agent_stalls ADD PRIMARY KEY (gateway_id, session_key, activity_ms);

-- Approvals as the app reads them (see 0007), now joined per gateway, with the gateway's name.
CREATE VIEW approval_rows AS
SELECT a.*, gw.name AS gateway_name,
       t.id AS linked_task_id, t.title AS task_title, t.status AS task_status, t.project_id,
       p.name AS project_name,
       ss.started_by, ss.started_by_token, ss.started_by_label, ss.started_at, ss.task_id AS started_task_id,
       ss.project_id AS started_project_id, sp.name AS started_project_name, sp.owner_id AS started_project_owner_id
FROM approvals a
LEFT JOIN gateways gw ON gw.id = a.gateway_id
LEFT JOIN started_sessions ss ON ss.gateway_id = a.gateway_id AND ss.session_key = a.session_key
LEFT JOIN tasks t ON t.id = COALESCE(a.task_id, ss.task_id,
                                     (SELECT s.id FROM tasks s
                                      WHERE s.session_key = a.session_key AND s.session_gateway_id = a.gateway_id))
LEFT JOIN projects p ON p.id = t.project_id
LEFT JOIN projects sp ON sp.id = ss.project_id;
