-- Stalls of agent sessions that were announced (live event `agent.stalled`, webhook): one row per quiet period
-- of a session, keyed by the gateway's own last activity time for it, so that with several app processes
-- (each watching the gateway) only the one whose insert wins announces it, and a restart does not repeat it.
CREATE TABLE agent_stalls (
    session_key   TEXT NOT NULL,
    activity_ms   BIGINT NOT NULL,   -- the session's last activity (epoch ms) when it was found stalled
    agent_id      TEXT,
    detected_at   TEXT NOT NULL,
    PRIMARY KEY (session_key, activity_ms)
);
