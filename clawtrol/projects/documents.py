"""The original's per-project markdown files, written from our records: STATUS.md (`/status`), PROJECT.md
(`/project`), HANDOFF.md (`/handoff`) and AGENTS.md (`/agents`, from the project's associations), plus the
per-agent task rollup (`/agent-summary`). Projects here are database rows, not folders."""

from __future__ import annotations

from collections import defaultdict

from ..clock import from_epoch_ms
from ..db import Database
from ..tasks.model import STATUS_LABELS, STATUSES
from . import service

HANDOFF_TASKS = 20
CONTEXT_CHARACTERS = 500  # as much of each file as the original put in a message's project context


async def status_counts(db: Database, project_id: str) -> dict[str, int]:
    counts = {row["status"]: row["n"] for row in await db.all("projects.status_counts", id=project_id)}
    return {status: counts.get(status, 0) for status in STATUSES}


def status_markdown(project: dict, counts: dict[str, int], with_description: bool = True) -> str:
    stats = service.stats(project)
    lines = [f"# {project['name']} — status", ""]
    if with_description and project.get("description"):
        lines += [project["description"], ""]
    lines += [f"Progress: {stats['done']} of {stats['total']} tasks done ({stats['completionPercent']}%)", ""]
    lines += [f"- {STATUS_LABELS[status]}: {counts[status]}" for status in STATUSES]
    if project.get("archived"):
        lines += ["", "This project is archived."]
    return "\n".join(lines) + "\n"


def project_markdown(project: dict) -> str:
    lines = [f"# {project['name']}", ""]
    if project.get("description"):
        lines += [project["description"], ""]
    if project.get("owner_login"):
        lines += [f"Owner: {project['owner_login']}", ""]
    return "\n".join(lines)


def handoff_markdown(project: dict, handoffs: list[dict]) -> str:
    lines = [f"# {project['name']} — handoff", ""]
    if not handoffs:
        lines.append("No task has handoff notes yet.")
    for task in handoffs:
        agent = f", {task['agent_id']}" if task["agent_id"] else ""
        commit = f", commit {task['commit_hash']}" if task["commit_hash"] else ""
        lines += [f"## {task['title']} ({task['status']}{agent}{commit})", "", task["handoff_notes"].strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


async def handoffs(db: Database, project_id: str) -> list[dict]:
    return await db.all("projects.handoffs", id=project_id, limit=HANDOFF_TASKS)


def context(project: dict, counts: dict[str, int]) -> str:
    """The project context put before a message to the main agent, as the original did from its files."""
    about = project_markdown(project)[:CONTEXT_CHARACTERS].strip()
    status = status_markdown(project, counts, with_description=False)[:CONTEXT_CHARACTERS].strip()
    return (f'[Project Context for "{project["id"]}":\n\n## Project: {project["id"]}\n\n{about}\n\n'
            f"## Current Status:\n\n{status}]\n\nUser request: ")


def agents_json(associations: list[dict]) -> dict:
    """AGENTS.md's `{active, completed, total}` from the project's associations."""
    active, completed = [], []
    for item in associations:
        entry = {"name": item["label"] or item["agentId"] or item["sessionKey"], "agentId": item["agentId"],
                 "session": item["sessionKey"], "task": item["task"], "since": from_epoch_ms(item["spawnedAt"]),
                 "status": {"running": "working", "completed": "completed"}.get(item["status"], "idle"),
                 "source": item["source"]}
        if item["status"] == "completed":
            completed.append({**entry, "completed": from_epoch_ms(item["completedAt"])})
        else:
            active.append(entry)
    return {"active": active, "completed": completed, "total": len(active) + len(completed)}


async def agent_summary(db: Database, project_id: str) -> list[dict]:
    models: dict[str, list[str]] = defaultdict(list)
    for row in await db.all("projects.agent_models", id=project_id):
        models[row["agent_id"]].append(row["model"])
    return [{"agentId": row["agent_id"], "taskCount": row["task_count"], "doneTasks": row["done_tasks"] or 0,
             "inProgress": row["in_progress"] or 0, "lastActive": row["last_active"],
             "models": models.get(row["agent_id"], [])}
            for row in await db.all("projects.agent_summary", id=project_id)]
