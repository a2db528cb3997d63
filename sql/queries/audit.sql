-- name: insert
INSERT INTO audit_log (id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id,
                       details, ip, user_agent, created_at)
VALUES (:id, :user_id, :token_id, :actor_kind, :actor_label, :action, :entity_type, :entity_id,
        :details, :ip, :user_agent, :created_at)
RETURNING id, (SELECT count(*) FROM webhooks WHERE enabled = TRUE) AS enabled_webhooks

-- name: for_entity
SELECT id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id, details, ip,
       user_agent, created_at
FROM audit_log
WHERE entity_type = :entity_type AND entity_id = :entity_id
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: search
-- Newest first; every filter is optional (NULL means "any"). `before` pages backwards by time.
SELECT id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id, details, ip,
       user_agent, created_at
FROM audit_log
WHERE (CAST(:action AS TEXT) IS NULL OR action = :action)
  AND (CAST(:entity_type AS TEXT) IS NULL OR entity_type = :entity_type)
  AND (CAST(:entity_id AS TEXT) IS NULL OR entity_id = :entity_id)
  AND (CAST(:user_id AS TEXT) IS NULL OR user_id = :user_id)
  AND (CAST(:actor AS TEXT) IS NULL OR lower(actor_label) = lower(:actor))
  AND (CAST(:since AS TEXT) IS NULL OR created_at >= :since)
  AND (CAST(:before AS TEXT) IS NULL OR created_at < :before)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: actions
SELECT DISTINCT action FROM audit_log ORDER BY action
