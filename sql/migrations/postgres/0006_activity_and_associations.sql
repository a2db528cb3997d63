-- The activity feed agents and scripts post to (POST /api/activity): the original kept it in memory (1000
-- events, lost on restart); here it is a table. Who posted each event is recorded by the server.
CREATE TABLE activity_events (
    id               TEXT PRIMARY KEY,
    type             TEXT NOT NULL CHECK (type IN ('message', 'status', 'file', 'approval', 'task', 'spawn',
                                                   'complete', 'error', 'project', 'system')),
    severity         TEXT NOT NULL DEFAULT 'info' CHECK (severity IN ('info', 'warning', 'error', 'success')),
    agent            TEXT,
    from_name        TEXT,
    to_name          TEXT,
    message          TEXT,
    details          JSONB,
    project          TEXT,  -- as the poster names it (the original's folder name); not a reference
    model            TEXT,
    session_key      TEXT,
    posted_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    posted_by_token  TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    posted_by_label  TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX idx_activity_events_created ON activity_events (created_at, id);

-- Sessions registered from outside as working for a project (POST /api/agents/associations), e.g. helpers an
-- agent spawned itself. Associations started through start work (started_sessions) and task session links
-- are derived, not stored here. A registration is information only: it grants no authority over the session.
CREATE TABLE agent_associations (
    session_key          TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task                 TEXT NOT NULL,
    label                TEXT,
    model                TEXT,
    registered_by        TEXT REFERENCES users (id) ON DELETE SET NULL,
    registered_by_token  TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    registered_by_label  TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE INDEX idx_agent_associations_project ON agent_associations (project_id, created_at);
