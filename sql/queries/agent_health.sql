-- Agent health (clawtrol/agents/health_poller.py).

-- name: claim_stall
-- Record a stall once: the process whose insert wins announces it; the others (and later polls) get no row.
INSERT INTO agent_stalls (session_key, activity_ms, agent_id, detected_at)
VALUES (:session_key, :activity_ms, :agent_id, :detected_at)
ON CONFLICT (session_key, activity_ms) DO NOTHING
RETURNING session_key
