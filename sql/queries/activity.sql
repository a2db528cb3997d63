-- The activity feed (activity_events): events agents and scripts post with POST /api/activity.

-- name: insert
INSERT INTO activity_events (id, type, severity, agent, from_name, to_name, message, details, project, model,
                             session_key, posted_by, posted_by_token, posted_by_label, created_at)
VALUES (:id, :type, :severity, :agent, :from_name, :to_name, :message, :details, :project, :model,
        :session_key, :posted_by, :posted_by_token, :posted_by_label, :created_at)
RETURNING *

-- name: page
-- Newest first (ids are time-ordered, so they break ties within a millisecond).
SELECT * FROM activity_events ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset

-- name: count
SELECT count(*) AS n FROM activity_events
