-- name: insert
INSERT INTO audit_log (id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id,
                       details, ip, user_agent, created_at)
VALUES (:id, :user_id, :token_id, :actor_kind, :actor_label, :action, :entity_type, :entity_id,
        :details, :ip, :user_agent, :created_at)
RETURNING id

-- name: for_entity
SELECT id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id, details, ip,
       user_agent, created_at
FROM audit_log
WHERE entity_type = :entity_type AND entity_id = :entity_id
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: recent
-- Newest first, optionally only one action.
SELECT id, user_id, token_id, actor_kind, actor_label, action, entity_type, entity_id, details, ip,
       user_agent, created_at
FROM audit_log
WHERE CAST(:action AS TEXT) IS NULL OR action = :action
ORDER BY created_at DESC, id DESC
LIMIT :limit
