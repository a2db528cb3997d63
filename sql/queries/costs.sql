-- Costs: AI cost against the human-equivalent cost of done tasks.
--
-- Every query works on the same per-task figures (keep the expressions identical across queries):
--   lines         = lines_added + lines_removed (NULL counts as 0), or lines_total when only it is known;
--   human_minutes = estimated_human_minutes, or else lines × :minutes_per_line when the task has lines
--                   (the backfill for tasks that reached done without an estimate);
--   human_cost    = human_cost, or else human_minutes priced at :rate (the humanHourlyRate setting).
-- Runtime is in milliseconds. Money and minutes are rounded by the caller.

-- name: summary
WITH done AS (
    SELECT cost, runtime, human_cost, estimated_human_minutes,
           CASE WHEN lines_added IS NULL AND lines_removed IS NULL THEN coalesce(lines_total, 0)
                ELSE coalesce(lines_added, 0) + coalesce(lines_removed, 0) END AS lines
    FROM tasks
    WHERE status = 'done'
), priced AS (
    SELECT cost, runtime, lines, human_cost,
           coalesce(estimated_human_minutes,
                    CASE WHEN lines > 0 THEN lines * CAST(:minutes_per_line AS DOUBLE PRECISION) END) AS human_minutes
    FROM done
)
SELECT count(*) AS tasks,
       coalesce(sum(lines), 0) AS lines,
       coalesce(sum(cost), 0) AS ai_cost,
       coalesce(sum(runtime), 0) AS runtime_ms,
       coalesce(sum(human_minutes), 0) AS human_minutes,
       coalesce(sum(coalesce(human_cost, human_minutes / 60.0 * CAST(:rate AS DOUBLE PRECISION))), 0) AS human_cost
FROM priced

-- name: by_agent
-- Done tasks with an agent, per agent (sorted by the caller, after rounding).
WITH done AS (
    SELECT agent_id, cost, human_cost, estimated_human_minutes,
           CASE WHEN lines_added IS NULL AND lines_removed IS NULL THEN coalesce(lines_total, 0)
                ELSE coalesce(lines_added, 0) + coalesce(lines_removed, 0) END AS lines
    FROM tasks
    WHERE status = 'done' AND agent_id IS NOT NULL
), priced AS (
    SELECT agent_id, cost, lines, human_cost,
           coalesce(estimated_human_minutes,
                    CASE WHEN lines > 0 THEN lines * CAST(:minutes_per_line AS DOUBLE PRECISION) END) AS human_minutes
    FROM done
)
SELECT agent_id,
       count(*) AS tasks,
       coalesce(sum(lines), 0) AS lines,
       coalesce(sum(cost), 0) AS ai_cost,
       coalesce(sum(coalesce(human_cost, human_minutes / 60.0 * CAST(:rate AS DOUBLE PRECISION))), 0) AS human_cost
FROM priced
GROUP BY agent_id

-- name: by_project
-- Done tasks with a project, per project, with the project's name (NULL if the row is gone).
WITH done AS (
    SELECT project_id, cost, human_cost, estimated_human_minutes,
           CASE WHEN lines_added IS NULL AND lines_removed IS NULL THEN coalesce(lines_total, 0)
                ELSE coalesce(lines_added, 0) + coalesce(lines_removed, 0) END AS lines
    FROM tasks
    WHERE status = 'done' AND project_id IS NOT NULL
), priced AS (
    SELECT project_id, cost, lines, human_cost,
           coalesce(estimated_human_minutes,
                    CASE WHEN lines > 0 THEN lines * CAST(:minutes_per_line AS DOUBLE PRECISION) END) AS human_minutes
    FROM done
)
SELECT pr.project_id,
       p.name AS project_name,
       count(*) AS tasks,
       coalesce(sum(pr.lines), 0) AS lines,
       coalesce(sum(pr.cost), 0) AS ai_cost,
       coalesce(sum(coalesce(pr.human_cost, pr.human_minutes / 60.0 * CAST(:rate AS DOUBLE PRECISION))), 0) AS human_cost
FROM priced pr
LEFT JOIN projects p ON p.id = pr.project_id
GROUP BY pr.project_id, p.name

-- name: by_day
-- Done tasks completed in [:start, :end) (ISO-8601 UTC text), per UTC day; the caller rolls days up
-- into weeks or months and fills the empty buckets.
WITH done AS (
    SELECT substr(completed_at, 1, 10) AS day, cost, human_cost, estimated_human_minutes,
           CASE WHEN lines_added IS NULL AND lines_removed IS NULL THEN coalesce(lines_total, 0)
                ELSE coalesce(lines_added, 0) + coalesce(lines_removed, 0) END AS lines
    FROM tasks
    WHERE status = 'done' AND completed_at >= :start AND completed_at < :end
), priced AS (
    SELECT day, cost, lines, human_cost,
           coalesce(estimated_human_minutes,
                    CASE WHEN lines > 0 THEN lines * CAST(:minutes_per_line AS DOUBLE PRECISION) END) AS human_minutes
    FROM done
)
SELECT day,
       count(*) AS tasks,
       coalesce(sum(lines), 0) AS lines,
       coalesce(sum(cost), 0) AS ai_cost,
       coalesce(sum(coalesce(human_cost, human_minutes / 60.0 * CAST(:rate AS DOUBLE PRECISION))), 0) AS human_cost
FROM priced
GROUP BY day
ORDER BY day

-- name: recent
-- The latest done tasks, newest completion first, each with its (backfilled) human figures.
WITH done AS (
    SELECT id, title, agent_id, project_id, model, cost, runtime, human_cost, estimated_human_minutes,
           lines_added, lines_removed, lines_total, completed_at,
           CASE WHEN lines_added IS NULL AND lines_removed IS NULL THEN coalesce(lines_total, 0)
                ELSE coalesce(lines_added, 0) + coalesce(lines_removed, 0) END AS lines
    FROM tasks
    WHERE status = 'done'
    ORDER BY completed_at DESC, id DESC
    LIMIT :limit
), priced AS (
    SELECT done.*,
           coalesce(estimated_human_minutes,
                    CASE WHEN lines > 0 THEN lines * CAST(:minutes_per_line AS DOUBLE PRECISION) END) AS human_minutes
    FROM done
)
SELECT t.id, t.title, t.agent_id, t.project_id, p.name AS project_name, t.model, t.cost, t.runtime,
       t.lines_added, t.lines_removed, t.lines_total, t.completed_at, t.lines, t.human_minutes,
       coalesce(t.human_cost, t.human_minutes / 60.0 * CAST(:rate AS DOUBLE PRECISION)) AS human_cost
FROM priced t
LEFT JOIN projects p ON p.id = t.project_id
ORDER BY t.completed_at DESC, t.id DESC
