-- Agent health (clawtrol/agents/health_poller.py).

-- name: claim_stall
-- Record a stall once: the process whose insert wins announces it; the others (and later polls) get no row.
INSERT INTO agent_stalls (gateway_id, session_key, activity_ms, agent_id, detected_at)
VALUES (:gateway_id, :session_key, :activity_ms, :agent_id, :detected_at)
ON CONFLICT (gateway_id, session_key, activity_ms) DO NOTHING
RETURNING session_key
