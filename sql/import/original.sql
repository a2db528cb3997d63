-- Read-only queries against a SOURCE SQLite file (run with Python's sqlite3 by clawtrol/importer.py, never
-- through the app's Database): the original Mission Clawtrol's camelCase schema, P0 (tasks, settings) or
-- Phase 1 (plus users, audit_log, comments, and tasks.userId/createdBy/assignedTo/dueDate).
-- The detection queries (tables, columns) are used for every source, ours included.

-- name: tables
SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' ORDER BY name

-- name: columns
SELECT name FROM pragma_table_info(:table) ORDER BY cid

-- name: count_tasks
SELECT count(*) FROM tasks

-- name: tasks
-- Phase 1 with due dates (84f9b8e and later). A source without some of the optional Phase 1 columns
-- (userId, createdBy, assignedTo, dueDate: P0, or a commit in between) reads each missing one as NULL
-- (clawtrol/importer.py puts `NULL AS <column>` in its place).
SELECT id, title, description, status, priority, projectId, agentId, userId, createdBy, assignedTo, sessionKey,
       handoffNotes, commitHash, linesAdded, linesRemoved, linesTotal, estimatedHumanMinutes, humanCost, cost,
       runtime, model, dueDate, createdAt, updatedAt, completedAt
FROM tasks ORDER BY createdAt, id

-- name: count_projects
SELECT count(DISTINCT projectId) FROM tasks WHERE projectId IS NOT NULL AND projectId <> ''

-- name: projects
-- The original had no projects table: a project is the folder name in tasks.projectId.
SELECT projectId AS id, min(createdAt) AS createdAt, max(updatedAt) AS updatedAt
FROM tasks WHERE projectId IS NOT NULL AND projectId <> ''
GROUP BY projectId ORDER BY projectId

-- name: count_users
SELECT count(*) FROM users

-- name: users
SELECT id, githubId, githubLogin, name, email, avatarUrl, role, createdAt, lastLoginAt
FROM users ORDER BY createdAt, id

-- name: count_comments
SELECT count(*) FROM comments

-- name: comments
SELECT id, taskId, userId, userName, userAvatar, content, createdAt, updatedAt
FROM comments ORDER BY createdAt, id

-- name: count_audit_log
SELECT count(*) FROM audit_log

-- name: audit_log
SELECT id, userId, action, entityType, entityId, details, createdAt
FROM audit_log ORDER BY createdAt, id

-- name: count_settings
SELECT count(*) FROM settings

-- name: settings
SELECT key, value FROM settings ORDER BY key
