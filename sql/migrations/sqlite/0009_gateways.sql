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
    enabled          INTEGER NOT NULL DEFAULT 1,
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

-- A task's session link records its gateway.
ALTER TABLE tasks ADD COLUMN session_gateway_id TEXT;
UPDATE tasks SET session_gateway_id = 'default' WHERE session_key IS NOT NULL;

-- Approval identity is (gateway, approval id); close_reason says why a closed approval was closed.
DROP VIEW approval_rows;
CREATE TABLE approvals_new (
    gateway_id         TEXT NOT NULL DEFAULT 'default',
    id                 TEXT NOT NULL,
    command            TEXT NOT NULL,
    cwd                TEXT,
    host               TEXT,
    agent_id           TEXT,
    session_key        TEXT,
    task_id            TEXT REFERENCES tasks (id) ON DELETE SET NULL,
    allowed_decisions  TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'resolved', 'expired', 'closed')),
    decision           TEXT CHECK (decision IN ('allow-once', 'allow-always', 'deny')),
    decided_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    decided_by_token   TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    decided_by_label   TEXT,
    decided_at         TEXT,
    gateway_ack_at     TEXT,
    requested_at       TEXT NOT NULL,
    expires_at         TEXT,
    payload            TEXT,
    updated_at         TEXT NOT NULL,
    decided_by_rule    TEXT,
    close_reason       TEXT CHECK (close_reason IN ('vanished', 'gateway_removed')),
    PRIMARY KEY (gateway_id, id)
);
INSERT INTO approvals_new (gateway_id, id, command, cwd, host, agent_id, session_key, task_id, allowed_decisions,
                           status, decision, decided_by, decided_by_token, decided_by_label, decided_at,
                           gateway_ack_at, requested_at, expires_at, payload, updated_at, decided_by_rule,
                           close_reason)
SELECT 'default', id, command, cwd, host, agent_id, session_key, task_id, allowed_decisions, status, decision,
       decided_by, decided_by_token, decided_by_label, decided_at, gateway_ack_at, requested_at, expires_at,
       payload, updated_at, decided_by_rule, CASE WHEN status = 'closed' THEN 'vanished' END
FROM approvals;
DROP TABLE approvals;
ALTER TABLE approvals_new RENAME TO approvals;
CREATE INDEX idx_approvals_status ON approvals (status, requested_at);
CREATE INDEX idx_approvals_session ON approvals (session_key);
CREATE INDEX idx_approvals_decided ON approvals (decided_at);
CREATE INDEX idx_approvals_rule ON approvals (decided_by_rule, decided_at);
CREATE INDEX idx_approvals_id ON approvals (id);

-- Start work records are per (gateway, session key): a start on one gateway grants nothing on another.
CREATE TABLE started_sessions_new (
    gateway_id        TEXT NOT NULL DEFAULT 'default',
    session_key       TEXT NOT NULL,
    task_id           TEXT REFERENCES tasks (id) ON DELETE SET NULL,
    project_id        TEXT REFERENCES projects (id) ON DELETE SET NULL,
    agent_id          TEXT NOT NULL,
    started_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    started_by_token  TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    started_by_label  TEXT NOT NULL,
    run_id            TEXT,
    started_at        TEXT NOT NULL,
    PRIMARY KEY (gateway_id, session_key)
);
INSERT INTO started_sessions_new (gateway_id, session_key, task_id, project_id, agent_id, started_by,
                                  started_by_token, started_by_label, run_id, started_at)
SELECT 'default', session_key, task_id, project_id, agent_id, started_by, started_by_token, started_by_label,
       run_id, started_at
FROM started_sessions;
DROP TABLE started_sessions;
ALTER TABLE started_sessions_new RENAME TO started_sessions;
CREATE INDEX idx_started_sessions_task ON started_sessions (task_id);
CREATE INDEX idx_started_sessions_user ON started_sessions (started_by);
CREATE INDEX idx_started_sessions_project ON started_sessions (project_id);
CREATE INDEX idx_started_sessions_key ON started_sessions (session_key);

-- Registrations and announced stalls name their gateway too.
ALTER TABLE agent_associations ADD COLUMN gateway_id TEXT;
UPDATE agent_associations SET gateway_id = 'default';
CREATE TABLE agent_stalls_new (
    gateway_id    TEXT NOT NULL DEFAULT 'default',
    session_key   TEXT NOT NULL,
    activity_ms   INTEGER NOT NULL,
    agent_id      TEXT,
    detected_at   TEXT NOT NULL,
    PRIMARY KEY (gateway_id, session_key, activity_ms)
);
INSERT INTO agent_stalls_new (gateway_id, session_key, activity_ms, agent_id, detected_at)
SELECT 'default', session_key, activity_ms, agent_id, detected_at FROM agent_stalls;
DROP TABLE agent_stalls;
ALTER TABLE agent_stalls_new RENAME TO agent_stalls;

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
