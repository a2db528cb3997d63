-- Outbound webhooks (clawtrol/webhooks/) and their outbox of deliveries.
--
-- A delivery is claimed for sending with a conditional UPDATE that sets a lease (lease_until, leased_by): the
-- same text on SQLite and PostgreSQL. Two processes claiming at once both pick the due rows, but the second
-- UPDATE waits for the first's row locks and then re-checks its WHERE on the new row versions (PostgreSQL's
-- READ COMMITTED; SQLite has one writer at a time), finds them leased, and leaves them: each attempt is made
-- by exactly one process. Results are written only by the holder of the lease.

-- name: list
SELECT * FROM webhooks ORDER BY created_at, id

-- name: get
SELECT * FROM webhooks WHERE id = :id

-- name: subscribers
SELECT id, events FROM webhooks WHERE enabled = TRUE

-- name: insert
INSERT INTO webhooks (id, url, events, format, secret, enabled, created_by, created_by_token, created_by_label,
                      created_at, updated_at)
VALUES (:id, :url, :events, :format, :secret, :enabled, :user_id, :token_id, :label, :now, :now)
RETURNING *

-- name: update
UPDATE webhooks
SET url = :url, events = :events, format = :format, secret = :secret, enabled = :enabled, updated_at = :now
WHERE id = :id
RETURNING *

-- name: lock
UPDATE webhooks SET enabled = enabled WHERE id = :id RETURNING *

-- name: delete
DELETE FROM webhooks WHERE id = :id RETURNING id, url

-- name: insert_delivery
INSERT INTO webhook_deliveries (id, webhook_id, event, payload, status, attempts, next_attempt_at, created_at,
                                updated_at)
VALUES (:id, :webhook_id, :event, :payload, 'pending', 0, :now, :now, :now)
RETURNING *

-- name: claim_due
-- Lease up to :limit due deliveries of enabled webhooks to :claimant until :lease_until.
UPDATE webhook_deliveries
SET lease_until = :lease_until, leased_by = :claimant
WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= :now
               AND (d.lease_until IS NULL OR d.lease_until < :now) AND w.enabled = TRUE
             ORDER BY d.next_attempt_at, d.id
             LIMIT :limit)
  AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)
RETURNING id

-- name: leased
-- The deliveries :claimant holds, with what sending them needs.
SELECT d.id, d.webhook_id, d.event, d.payload, d.attempts, d.created_at, w.url, w.secret, w.format
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.id IN :ids AND d.leased_by = :claimant
ORDER BY d.next_attempt_at, d.id

-- name: record_attempt
-- The outcome of one attempt, by the holder of the lease: delivered, failed, or pending again (a retry at
-- :next_attempt_at).
UPDATE webhook_deliveries
SET status = :status, attempts = attempts + 1, last_status_code = :status_code, last_error = :error,
    last_attempt_at = :now, next_attempt_at = :next_attempt_at, delivered_at = :delivered_at,
    lease_until = NULL, leased_by = NULL, updated_at = :now
WHERE id = :id AND leased_by = :claimant AND status = 'pending'
RETURNING id, status, attempts

-- name: next_due
-- When the next pending, unleased delivery of an enabled webhook is due (the sender sleeps until then at most).
SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.status = 'pending' AND w.enabled = TRUE AND (d.lease_until IS NULL OR d.lease_until < :now)

-- name: deliveries
SELECT * FROM webhook_deliveries WHERE webhook_id = :webhook_id ORDER BY created_at DESC, id DESC LIMIT :limit

-- name: recent_deliveries
-- The admin page's list: the latest deliveries of every webhook, with its URL.
SELECT d.*, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
ORDER BY d.created_at DESC, d.id DESC
LIMIT :limit

-- name: get_delivery
SELECT d.*, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = :id

-- name: redeliver
-- "Send again": a delivered or failed delivery goes back in the queue, due now, with a fresh set of tries.
UPDATE webhook_deliveries
SET status = 'pending', attempts = 0, next_attempt_at = :now, lease_until = NULL, leased_by = NULL,
    delivered_at = NULL, updated_at = :now
WHERE id = :id AND webhook_id = :webhook_id AND status <> 'pending'
RETURNING *

-- name: prune
-- Finished deliveries older than :before (kept 30 days for the pages and the API).
DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < :before RETURNING id
