-- Costs: AI cost against the human-equivalent cost of done tasks.
--
-- Every query reads the per-task figures of the view done_task_figures (migration 0010, where the rule is
-- written): lines, human_minutes, the stored human_cost, and unpriced_minutes, the minutes of tasks without
-- a stored human cost, which the caller prices at the humanHourlyRate setting (clawtrol/costs/report.py).
-- Runtime is in milliseconds. Money and minutes are rounded by the caller.

-- name: summary
SELECT count(*) AS tasks,
       coalesce(sum(lines), 0) AS lines,
       coalesce(sum(cost), 0) AS ai_cost,
       coalesce(sum(runtime), 0) AS runtime_ms,
       coalesce(sum(human_minutes), 0) AS human_minutes,
       coalesce(sum(human_cost), 0) AS human_cost,
       coalesce(sum(unpriced_minutes), 0) AS unpriced_minutes
FROM done_task_figures

-- name: by_agent
-- Done tasks with an agent, per agent (sorted by the caller, after rounding).
SELECT agent_id,
       count(*) AS tasks,
       coalesce(sum(lines), 0) AS lines,
       coalesce(sum(cost), 0) AS ai_cost,
       coalesce(sum(human_cost), 0) AS human_cost,
       coalesce(sum(unpriced_minutes), 0) AS unpriced_minutes
FROM done_task_figures
WHERE agent_id IS NOT NULL
GROUP BY agent_id

-- name: by_project
-- Done tasks with a project, per project, with the project's name (NULL if the row is gone).
SELECT f.project_id,
       p.name AS project_name,
       count(*) AS tasks,
       coalesce(sum(f.lines), 0) AS lines,
       coalesce(sum(f.cost), 0) AS ai_cost,
       coalesce(sum(f.human_cost), 0) AS human_cost,
       coalesce(sum(f.unpriced_minutes), 0) AS unpriced_minutes
FROM done_task_figures f
LEFT JOIN projects p ON p.id = f.project_id
WHERE f.project_id IS NOT NULL
GROUP BY f.project_id, p.name

-- name: by_day
-- Done tasks completed in [:start, :end) (ISO-8601 UTC text), per UTC day; the caller rolls days up
-- into weeks or months and fills the empty buckets.
SELECT substr(completed_at, 1, 10) AS day,
       count(*) AS tasks,
       coalesce(sum(lines), 0) AS lines,
       coalesce(sum(cost), 0) AS ai_cost,
       coalesce(sum(human_cost), 0) AS human_cost,
       coalesce(sum(unpriced_minutes), 0) AS unpriced_minutes
FROM done_task_figures
WHERE completed_at >= :start AND completed_at < :end
GROUP BY substr(completed_at, 1, 10)
ORDER BY day

-- name: recent
-- The latest done tasks, newest completion first, each with its figures.
SELECT f.id, f.title, f.agent_id, f.project_id, p.name AS project_name, f.model, f.cost, f.runtime,
       f.lines_added, f.lines_removed, f.lines_total, f.completed_at, f.lines, f.human_minutes, f.human_cost,
       f.unpriced_minutes
FROM done_task_figures f
LEFT JOIN projects p ON p.id = f.project_id
ORDER BY f.completed_at DESC, f.id DESC
LIMIT :limit
