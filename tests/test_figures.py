"""One definition of a done task's figures (issue #16): the task API, the Costs page, GET /api/costs/* and the
project rollups report the same lines, minutes and costs for the same task, and the done-time estimate
(clawtrol/tasks/rules.py) equals the view done_task_figures (migration 0010) that the costs read.

The rule (the original's): lines = added + removed (the total only when neither is known); human minutes =
a stored human cost's own minutes, else the given estimate, else lines × 3, else ceil(runtime s × 10 / 60);
human cost = the stored one, else the minutes at the humanHourlyRate setting."""

from __future__ import annotations

import re

import pytest

from clawtrol.clock import now_iso
from clawtrol.tasks import rules

RATE = 120.0

# (name, fields set while the task is open, fields sent with the move to done, expected figures)
CASES = [
    # 15 lines (10 + 5; the total of 100 is not what changed), 45 min, $90 at $120/h
    ("lines-total", {"linesChanged": {"added": 10, "removed": 5, "total": 100}, "cost": 1.0, "runtime": 60_000}, {},
     {"lines": 15, "minutes": 45.0, "human": 90.0, "shown": "$90.00 · 45m"}),
    # no lines: ceil(601 s × 10 / 60) = 101 min, $202
    ("runtime-only", {"cost": 0.5, "runtime": 601_000}, {},
     {"lines": 0, "minutes": 101.0, "human": 202.0, "shown": "$202.00 · 1h 41m"}),
    # the given estimate wins over the 100 lines: 30 min, $60
    ("explicit-minutes", {"linesChanged": {"added": 100}, "cost": 0.25}, {"estimatedHumanMinutes": 30},
     {"lines": 100, "minutes": 30.0, "human": 60.0, "shown": "$60.00 · 30m"}),
    # a given human cost: nothing is estimated (the original's rule), no minutes anywhere
    ("explicit-cost", {"linesChanged": {"added": 2, "removed": 1}, "cost": 2.0}, {"humanCost": 55.5},
     {"lines": 3, "minutes": None, "human": 55.5, "shown": "$55.50"}),
]


async def get_json(browser, path: str) -> dict:
    response = await browser.get(path)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


@pytest.fixture
async def done_tasks(admin, member) -> dict[str, dict]:
    """One done task per case, each with its own agent and project, made through the HTTP API."""
    assert (await admin.put("/api/settings", json={"humanHourlyRate": RATE})).status_code == 200
    tasks = {}
    for name, open_fields, done_fields, expected in CASES:
        project = await member.post("/api/projects", json={"id": f"p-{name}", "name": f"Project {name}"})
        assert project.status_code == 201, await project.get_data(as_text=True)
        created = await member.post("/api/tasks", json={"title": f"Task {name}", "status": "in-progress",
                                                        "agentId": f"agent-{name}", "projectId": f"p-{name}",
                                                        **open_fields})
        assert created.status_code == 201, await created.get_data(as_text=True)
        task = await created.get_json()
        done = await member.patch(f"/api/tasks/{task['id']}", json={"status": "done", **done_fields})
        assert done.status_code == 200, await done.get_data(as_text=True)
        tasks[name] = {"id": task["id"], **expected, "cost": open_fields["cost"],
                       "runtime": open_fields.get("runtime")}
    return tasks


def money(value: float) -> str:
    return f"${value:,.2f}"


def page_row(html: str, task_id: str) -> list[str]:
    """The numeric cells of a task's row in the Costs page's recent table: lines, runtime, AI cost, human-equivalent
    (money and minutes), savings."""
    row = re.search(rf'<tr>\s*<td><time[^>]*>[^<]*</time></td>\s*<td class="costs-name"><a href="/board/tasks/{task_id}">'
                    rf'.*?</tr>', html, re.DOTALL)
    assert row, f"no row for {task_id}"
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="num[^"]*">(.*?)</td>', row.group(0))]


async def test_a_done_tasks_figures_agree_everywhere(done_tasks, viewer):
    recent = {t["id"]: t for t in (await get_json(viewer, "/api/costs/recent?limit=100"))["tasks"]}
    agents = {a["agentId"]: a for a in (await get_json(viewer, "/api/costs/by-agent"))["agents"]}
    projects = {p["projectId"]: p for p in (await get_json(viewer, "/api/costs/by-project"))["projects"]}
    listed = {p["id"]: p["taskStats"] for p in (await get_json(viewer, "/api/projects"))["projects"]}
    html = await (await viewer.get("/costs")).get_data(as_text=True)
    for name, want in done_tasks.items():
        savings = round(want["human"] - want["cost"], 2)
        # the task API: what was stored when the task entered done
        task = await get_json(viewer, f"/api/tasks/{want['id']}")
        assert (task["estimatedHumanMinutes"], task["humanCost"], task["cost"], task["runtime"]) == (
            want["minutes"], want["human"], want["cost"], want["runtime"]), name
        # GET /api/costs/recent
        row = recent[want["id"]]
        assert (row["estimatedHumanMinutes"], row["humanCost"], row["cost"], row["runtime"], row["savings"]) == (
            want["minutes"], want["human"], want["cost"], want["runtime"], savings), name
        # GET /api/costs/by-agent and /by-project: one task per agent and per project
        figures = {"tasks": 1, "lines": want["lines"], "aiCost": want["cost"], "humanCost": want["human"],
                   "savings": savings}
        assert {k: agents[f"agent-{name}"][k] for k in figures} == figures, name
        assert {k: projects[f"p-{name}"][k] for k in figures} == figures, name
        # the project rollup, listed and alone
        rollup = {"aiCost": want["cost"], "humanCost": want["human"], "savings": savings}
        assert {k: listed[f"p-{name}"][k] for k in rollup} == rollup, name
        alone = (await get_json(viewer, f"/api/projects/p-{name}"))["taskStats"]
        assert {k: alone[k] for k in rollup} == rollup, name
        # the Costs page's table
        lines, _runtime, ai, human, saved = page_row(html, want["id"])
        assert (lines, ai, human, saved) == (str(want["lines"]), money(want["cost"]), want["shown"], money(savings)), name
    # GET /api/costs/summary and the page's cards: the sums of the same figures
    summary = await get_json(viewer, "/api/costs/summary")
    total_human = round(sum(t["human"] for t in done_tasks.values()), 2)
    total_ai = round(sum(t["cost"] for t in done_tasks.values()), 2)
    assert (summary["totalTasks"], summary["totalLines"], summary["totalHumanMinutes"], summary["totalHumanCost"],
            summary["totalAiCost"]) == (4, 118, 176.0, total_human, total_ai)
    assert f'id="costs-human-cost">{money(total_human)}<' in html and 'id="costs-lines">118<' in html


async def test_the_10_5_100_task_is_estimated_on_the_15_lines_that_changed(done_tasks, viewer):
    """The bug of issue #16: done time estimated 100 lines × 3 = 300 min while the Costs page counted 15."""
    task = await get_json(viewer, f"/api/tasks/{done_tasks['lines-total']['id']}")
    assert task["linesChanged"] == {"added": 10, "removed": 5, "total": 100}
    assert task["estimatedHumanMinutes"] == 45.0 and task["humanCost"] == 90.0


LEGACY_COLUMNS = ("description", "project_id", "agent_id", "user_id", "created_by", "created_by_token",
                  "assigned_to", "session_key", "handoff_notes", "commit_hash", "lines_added", "lines_removed",
                  "lines_total", "estimated_human_minutes", "human_cost", "cost", "runtime", "model", "tokens_input",
                  "tokens_output", "tokens_total", "due_date")

# Rows that reached done without the done-time figures (imported, or done before they were computed):
# the view's backfill must equal what rules.py would have stored.
LEGACY = [
    {"lines_added": 10, "lines_removed": 5, "lines_total": 100},
    {"lines_added": 7},
    {"lines_removed": 4, "runtime": 60_000},
    {"lines_total": 12},
    {"lines_added": 0, "lines_removed": 0, "lines_total": 9, "runtime": 6_000},
    {"runtime": 1},
    {"runtime": 5_999},
    {"runtime": 6_000},
    {"runtime": 6_001},
    {"runtime": 0},
    {},
    {"estimated_human_minutes": 12.5, "lines_added": 40},
    {"human_cost": 9.99, "lines_added": 40},
    {"human_cost": 9.99, "estimated_human_minutes": 3.0, "runtime": 60_000},
]


async def test_the_views_backfill_is_the_done_time_rule(db, viewer):
    await db.changed("settings.upsert", key="humanHourlyRate", value="90", updated_at=now_iso(), updated_by=None)
    expected = {}
    for number, values in enumerate(LEGACY):
        row = {**dict.fromkeys(LEGACY_COLUMNS), **values}
        stamp = f"2026-01-01T00:00:{number:02d}.000Z"
        await db.changed("importer.insert_task", id=f"legacy-{number}", title=f"Legacy {number}", status="done",
                         priority="P2", version=1, created_at=stamp, updated_at=stamp, completed_at=stamp, **row)
        minutes, cost = rules.human_equivalent(row, 90.0)
        expected[f"legacy-{number}"] = (rules.lines_changed(row), minutes, cost)
    html = await (await viewer.get("/costs")).get_data(as_text=True)
    recent = (await get_json(viewer, "/api/costs/recent?limit=100"))["tasks"]
    assert len(recent) == len(LEGACY)
    for row in recent:
        lines, minutes, cost = expected[row["id"]]
        assert (row["estimatedHumanMinutes"], row["humanCost"]) == (minutes, cost), (row["id"], LEGACY[int(row["id"][7:])])
        assert page_row(html, row["id"])[0] == str(lines), row["id"]
    summary = await get_json(viewer, "/api/costs/summary")
    assert summary["totalLines"] == sum(lines for lines, _, _ in expected.values())
    assert summary["totalHumanMinutes"] == round(sum(m or 0 for _, m, _ in expected.values()), 2)
    assert summary["totalHumanCost"] == round(sum(c or 0 for _, _, c in expected.values()), 2)
