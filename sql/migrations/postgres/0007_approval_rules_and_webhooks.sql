-- Approval policies (issue #14): the ordered rules an approval meets before a person sees it, and which rule
-- decided an approval. Outbound webhooks: subscriptions and a durable outbox of deliveries.

-- An admin's ordered rules: the first enabled, unexpired rule whose matchers (all optional, ANDed) fit an
-- approval decides it. project_id is not a reference: a rule for a deleted project matches nothing (a
-- cascade or SET NULL would silently widen or drop it).
CREATE TABLE approval_rules (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    action             TEXT NOT NULL CHECK (action IN ('allow-once', 'deny', 'ask')),
    agent_id           TEXT,
    command_pattern    TEXT,
    cwd_prefix         TEXT,
    host               TEXT,
    project_id         TEXT,
    allow_compound     BOOLEAN NOT NULL DEFAULT FALSE,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at         TEXT,
    position           INTEGER NOT NULL,
    created_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_by_token   TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    created_by_label   TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX idx_approval_rules_position ON approval_rules (position, created_at, id);

-- The rule that decided an approval (its id; the rule may be deleted later, decided_by_label keeps its name).
ALTER TABLE approvals ADD COLUMN decided_by_rule TEXT;
CREATE INDEX idx_approvals_rule ON approvals (decided_by_rule, decided_at);

-- PostgreSQL expands a.* when a view is created: recreate it so it carries the new column.
DROP VIEW approval_rows;
CREATE VIEW approval_rows AS
SELECT a.*, t.id AS linked_task_id, t.title AS task_title, t.status AS task_status, t.project_id,
       p.name AS project_name,
       ss.started_by, ss.started_by_token, ss.started_by_label, ss.started_at, ss.task_id AS started_task_id,
       ss.project_id AS started_project_id, sp.name AS started_project_name, sp.owner_id AS started_project_owner_id
FROM approvals a
LEFT JOIN started_sessions ss ON ss.session_key = a.session_key
LEFT JOIN tasks t ON t.id = COALESCE(a.task_id, ss.task_id,
                                     (SELECT s.id FROM tasks s WHERE s.session_key = a.session_key))
LEFT JOIN projects p ON p.id = t.project_id
LEFT JOIN projects sp ON sp.id = ss.project_id;

-- Outbound webhooks. The secret signs every delivery (HMAC-SHA256), so it is kept as the sender needs it;
-- the API shows it once, at creation (README, "Webhooks").
CREATE TABLE webhooks (
    id                 TEXT PRIMARY KEY,
    url                TEXT NOT NULL,
    events             TEXT NOT NULL,  -- JSON array of event names
    format             TEXT NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    secret             TEXT NOT NULL,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    created_by         TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_by_token   TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    created_by_label   TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- The outbox: one row per (webhook, event), written in the transaction of the change that caused it, sent by
-- a background sender in every app process. A sender claims due rows by setting a lease with a conditional
-- UPDATE, so each attempt is made by one process.
CREATE TABLE webhook_deliveries (
    id                 TEXT PRIMARY KEY,
    webhook_id         TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event              TEXT NOT NULL,
    payload            TEXT NOT NULL,  -- the JSON body's data, as it was when the event happened
    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_status_code   INTEGER,
    last_error         TEXT,
    last_attempt_at    TEXT,
    next_attempt_at    TEXT NOT NULL,
    lease_until        TEXT,
    leased_by          TEXT,
    delivered_at       TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX idx_webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
