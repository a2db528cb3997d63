-- Exec approvals requested through the OpenClaw gateway. Reads go through the approval_rows view (the
-- linked task and project). Every write is conditional, so several app processes receiving the same
-- gateway event, or two people deciding at once, change a row once: the one whose statement returns the
-- row does the audit entry and the live event.
--
-- A decision is taken in two steps: `claim` marks the row with the decision and who took it (decided_at set,
-- status still pending) before the gateway is asked; `confirm` makes it resolved once the gateway accepted,
-- `release` undoes the claim if it did not. A claim older than :stale_before (its process died) no longer counts.
-- A rule's automatic decision takes the same claim, then names itself on it (approval_rules.mark_claim).

-- name: pending_count
SELECT count(*) FROM approvals WHERE status = 'pending' AND (expires_at IS NULL OR expires_at > :now)

-- name: get
SELECT * FROM approval_rows WHERE gateway_id = :gateway_id AND id = :id

-- name: find
-- An approval by its id alone (API callers that leave out gatewayId): every gateway's row with this id.
SELECT * FROM approval_rows WHERE id = :id ORDER BY gateway_id

-- name: pending
SELECT * FROM approval_rows
WHERE status = 'pending' AND (expires_at IS NULL OR expires_at > :now)
ORDER BY requested_at, gateway_id, id

-- name: pending_at
SELECT * FROM approval_rows
WHERE status = 'pending' AND (expires_at IS NULL OR expires_at > :now) AND gateway_id = :gateway_id
ORDER BY requested_at, id

-- name: recent
SELECT * FROM approval_rows WHERE status <> 'pending'
ORDER BY updated_at DESC, id DESC
LIMIT :limit

-- name: recent_at
SELECT * FROM approval_rows WHERE status <> 'pending' AND gateway_id = :gateway_id
ORDER BY updated_at DESC, id DESC
LIMIT :limit

-- name: insert
-- The same (gateway, id) reported again (another process, a resync) inserts nothing and returns no row; nor
-- does a request from a gateway that was disabled or removed meanwhile (another process may still be connected).
INSERT INTO approvals (gateway_id, id, command, cwd, host, agent_id, session_key, task_id, allowed_decisions,
                       status, requested_at, expires_at, payload, updated_at)
SELECT :gateway_id, :id, :command, :cwd, :host, :agent_id, :session_key,
       (SELECT t.id FROM tasks t WHERE t.session_key = :session_key AND t.session_gateway_id = :gateway_id),
       :allowed_decisions, 'pending', :requested_at, :expires_at, :payload, :now
WHERE EXISTS (SELECT 1 FROM gateways g WHERE g.id = :gateway_id AND g.enabled = TRUE AND g.deleted_at IS NULL)
ON CONFLICT (gateway_id, id) DO NOTHING
RETURNING id

-- name: claim
UPDATE approvals
SET decision = :decision, decided_by = :user_id, decided_by_token = :token_id, decided_by_label = :label,
    decided_by_rule = NULL, decided_at = :now, updated_at = :now
WHERE gateway_id = :gateway_id AND id = :id AND status = 'pending' AND (decided_at IS NULL OR decided_at < :stale_before)
  AND (expires_at IS NULL OR expires_at > :now)
RETURNING id

-- name: confirm
UPDATE approvals SET status = 'resolved', gateway_ack_at = :now, updated_at = :now
WHERE gateway_id = :gateway_id AND id = :id AND status = 'pending' AND decided_at = :claimed_at
RETURNING id

-- name: release
UPDATE approvals
SET decision = NULL, decided_by = NULL, decided_by_token = NULL, decided_by_label = NULL,
    decided_by_rule = NULL, decided_at = NULL, updated_at = :now
WHERE gateway_id = :gateway_id AND id = :id AND status = 'pending' AND decided_at = :claimed_at
RETURNING id

-- name: resolved_elsewhere
-- The gateway reports a decision taken outside this app (OpenClaw's own UI, another dashboard).
UPDATE approvals
SET status = 'resolved', decision = :decision, decided_by_label = :label, decided_by_rule = NULL,
    decided_at = :now, gateway_ack_at = :now, updated_at = :now
WHERE gateway_id = :gateway_id AND id = :id AND status = 'pending' AND (decided_at IS NULL OR decided_at < :stale_before)
RETURNING id

-- name: expire_due
UPDATE approvals SET status = 'expired', updated_at = :now
WHERE status = 'pending' AND expires_at <= :now AND (decided_at IS NULL OR decided_at < :stale_before)
RETURNING gateway_id, id, command

-- name: close_vanished
-- After a resync: pending rows the gateway no longer lists (decided or expired while this app was not
-- listening). Only rows last touched before the list was taken, so a request that arrived meanwhile stays.
UPDATE approvals SET status = 'closed', close_reason = 'vanished', updated_at = :now
WHERE gateway_id = :gateway_id AND status = 'pending' AND updated_at < :listed_at AND id NOT IN :ids
  AND (decided_at IS NULL OR decided_at < :stale_before)
RETURNING gateway_id, id, command

-- name: close_for_gateway
-- A gateway disabled or removed: its pending approvals can no longer be decided here (claims included: the
-- decision never reached a gateway that is gone).
UPDATE approvals SET status = 'closed', close_reason = 'gateway_removed', updated_at = :now
WHERE gateway_id = :gateway_id AND status = 'pending'
RETURNING gateway_id, id, command
