-- Approval policies (clawtrol/policies/): an admin's ordered rules, and which approvals each one decided.
-- Order is (position, created_at, id); reordering rewrites the positions 1..n.

-- name: list
SELECT * FROM approval_rules ORDER BY position, created_at, id

-- name: in_force
-- The rules an arriving approval is matched against, in order.
SELECT id, name, action, agent_id, command_pattern, cwd_prefix, host, project_id, allow_compound, enabled,
       expires_at, gateway_id
FROM approval_rules
WHERE enabled = TRUE AND (expires_at IS NULL OR expires_at > :now)
ORDER BY position, created_at, id

-- name: version
-- Changes whenever a rule is added, changed, reordered or deleted (every write stamps updated_at later than
-- the latest one): processes keep the rules in memory until it does (clawtrol/policies/decide.py RuleBook).
SELECT count(*) AS rules, MAX(updated_at) AS changed FROM approval_rules

-- name: get
SELECT * FROM approval_rules WHERE id = :id

-- name: insert
-- Appended at the end of the list.
INSERT INTO approval_rules (id, name, action, agent_id, command_pattern, cwd_prefix, host, project_id, gateway_id,
                            allow_compound, enabled, expires_at, position, created_by, created_by_token,
                            created_by_label, created_at, updated_at)
VALUES (:id, :name, :action, :agent_id, :command_pattern, :cwd_prefix, :host, :project_id, :gateway_id, :allow_compound,
        :enabled, :expires_at, (SELECT COALESCE(MAX(r.position), 0) + 1 FROM approval_rules r), :user_id,
        :token_id, :label, :now, :now)
RETURNING *

-- name: update
UPDATE approval_rules
SET name = :name, action = :action, agent_id = :agent_id, command_pattern = :command_pattern,
    cwd_prefix = :cwd_prefix, host = :host, project_id = :project_id, gateway_id = :gateway_id, allow_compound = :allow_compound,
    enabled = :enabled, expires_at = :expires_at, updated_at = :now
WHERE id = :id
RETURNING *

-- name: lock
-- Hold the rule's row until the transaction ends (a portable SELECT ... FOR UPDATE).
UPDATE approval_rules SET position = position WHERE id = :id RETURNING *

-- name: set_position
UPDATE approval_rules SET position = :position, updated_at = :now WHERE id = :id RETURNING id

-- name: delete
DELETE FROM approval_rules WHERE id = :id RETURNING id, name

-- name: decided_since
-- How many approvals each rule decided since :since (resolved at the gateway).
SELECT decided_by_rule AS rule_id, count(*) AS decided
FROM approvals
WHERE decided_by_rule IS NOT NULL AND status = 'resolved' AND decided_at >= :since
GROUP BY decided_by_rule

-- name: mark_claim
-- Name the rule on the claim it just took (approvals.claim), so the decision is shown as automatic.
UPDATE approvals SET decided_by_rule = :rule_id
WHERE gateway_id = :gateway_id AND id = :id AND status = 'pending' AND decided_at = :claimed_at
RETURNING id

-- name: project_exists
SELECT id FROM projects WHERE id = :id
