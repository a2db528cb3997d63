-- name: pending_count
SELECT count(*) FROM approvals WHERE status = 'pending'
