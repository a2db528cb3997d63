-- name: notify
-- Fan a live event out to every app process (each LISTENs on the channel). Delivered at commit.
SELECT pg_notify(:channel, :payload)

-- name: notify_many
-- Several live events in one round trip, in the order given (unnest yields the array in order).
SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS TEXT[])) AS payload
