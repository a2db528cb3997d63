-- name: ping
-- Cheapest round trip, used by /api/health to time the database.
SELECT 1
