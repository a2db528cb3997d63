-- OpenClaw gateways as records (clawtrol/gateways/). A removed gateway keeps its row (deleted_at) so history
-- still names it; `live` are the ones not removed, enabled or not.

-- name: live
SELECT * FROM gateways WHERE deleted_at IS NULL ORDER BY name, id

-- name: names
SELECT id, name FROM gateways

-- name: get
SELECT * FROM gateways WHERE id = :id AND deleted_at IS NULL

-- name: lock
UPDATE gateways SET enabled = enabled WHERE id = :id AND deleted_at IS NULL RETURNING *

-- name: insert
INSERT INTO gateways (id, name, url, token_encrypted, enabled, created_by, created_by_label, created_at,
                      updated_by, updated_by_label, updated_at)
VALUES (:id, :name, :url, :token_encrypted, :enabled, :user_id, :label, :now, :user_id, :label, :now)
RETURNING *

-- name: insert_default
-- GATEWAY_URL at the first start (clawtrol/gateways/bootstrap.py); several processes starting at once insert it once.
INSERT INTO gateways (id, name, url, token_encrypted, enabled, created_by, created_by_label, created_at,
                      updated_by, updated_by_label, updated_at)
SELECT 'default', 'default', :url, :token_encrypted, TRUE, NULL, 'GATEWAY_URL', :now, NULL, 'GATEWAY_URL', :now
WHERE NOT EXISTS (SELECT 1 FROM gateways WHERE name = 'default' AND deleted_at IS NULL)
ON CONFLICT (id) DO NOTHING
RETURNING *

-- name: update
UPDATE gateways
SET name = :name, url = :url, token_encrypted = :token_encrypted, enabled = :enabled, updated_by = :user_id,
    updated_by_label = :label, updated_at = :now
WHERE id = :id AND deleted_at IS NULL
RETURNING *

-- name: remove
UPDATE gateways SET enabled = FALSE, deleted_at = :now, updated_by = :user_id, updated_by_label = :label,
    updated_at = :now
WHERE id = :id AND deleted_at IS NULL
RETURNING *

-- name: pending_counts
SELECT gateway_id, count(*) AS pending FROM approvals
WHERE status = 'pending' AND (expires_at IS NULL OR expires_at > :now)
GROUP BY gateway_id
