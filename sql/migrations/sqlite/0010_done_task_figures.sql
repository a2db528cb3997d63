-- The figures of a done task, defined once (issue #16): the Costs page, GET /api/costs/*, the project
-- rollups and the overview read them from this view, and clawtrol/tasks/rules.py stores the same values on
-- the task when it enters done (so the task API shows them too). The rule is the original's
-- (reference: "Cost / LOC / human-cost computation"):
--   lines         = lines added + lines removed (a missing one counts as 0); lines_total only when neither
--                   is known (the original counts `git diff --shortstat` insertions + deletions, and its
--                   Costs page sums linesAdded + linesRemoved);
--   human_minutes = for a task with a stored human cost: its stored minutes (possibly none), as the original
--                   estimates nothing when humanCost is set; otherwise the stored estimate, or else
--                   lines × 3 when it has lines, or else ceil(runtime seconds × 10 / 60) ("AI is 10× faster";
--                   runtime is in ms, so ceil(runtime / 6000)) when it has a runtime;
--   human_cost    = the stored human cost; when there is none, unpriced_minutes are the minutes still to be
--                   priced at the humanHourlyRate setting (a setting, so the caller prices them:
--                   clawtrol/tasks/rules.py `price`). human_cost and unpriced_minutes are never both set.
-- Runtime is in milliseconds, money in USD, not rounded.
CREATE VIEW done_task_figures AS
SELECT id, title, agent_id, project_id, model, completed_at, cost, runtime,
       lines_added, lines_removed, lines_total, lines, human_minutes, human_cost,
       CASE WHEN human_cost IS NULL THEN human_minutes END AS unpriced_minutes
FROM (
    SELECT counted.*,
           CASE WHEN human_cost IS NOT NULL OR estimated_human_minutes IS NOT NULL THEN estimated_human_minutes
                WHEN lines > 0 THEN lines * 3
                WHEN runtime > 0 THEN (runtime + 5999) / 6000
           END AS human_minutes
    FROM (
        SELECT id, title, agent_id, project_id, model, completed_at, cost, runtime, human_cost,
               estimated_human_minutes, lines_added, lines_removed, lines_total,
               CASE WHEN lines_added IS NULL AND lines_removed IS NULL THEN coalesce(lines_total, 0)
                    ELSE coalesce(lines_added, 0) + coalesce(lines_removed, 0) END AS lines
        FROM tasks
        WHERE status = 'done'
    ) AS counted
) AS estimated;

-- On SQLite, 0009 rebuilt the approvals table (to change its primary key) and lost the index 0002 made for
-- the expiry sweep (sql/queries/approvals.sql); PostgreSQL kept it. Restore it (a no-op on PostgreSQL).
CREATE INDEX IF NOT EXISTS idx_approvals_expiry ON approvals (status, expires_at);
