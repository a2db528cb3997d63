-- name: notify
-- Fan a live event out to every app process (each LISTENs on the channel). Delivered at commit.
SELECT pg_notify(:channel, :payload)
