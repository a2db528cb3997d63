"""Costs: the /api/costs figures over a known dataset, the over-time buckets across a month boundary, the
page with its charts, fragments and CSV, escaping, and read access for every role."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest

from clawtrol.clock import now_iso
from clawtrol.costs import periods
from clawtrol.tasks import service

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


async def create(browser, **fields) -> dict:
    response = await browser.post("/api/tasks", json={"title": "Task", **fields})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


async def done_at(browser, monkeypatch, moment: str, **fields) -> dict:
    """A task created straight into done, completed at `moment` (the service's clock, patched)."""
    monkeypatch.setattr(service, "now_iso", lambda: moment)
    try:
        return await create(browser, status="done", **fields)
    finally:
        monkeypatch.setattr(service, "now_iso", now_iso)


async def set_rate(db, value: str) -> None:
    await db.changed("settings.upsert", key="humanHourlyRate", value=value, updated_at=now_iso(), updated_by=None)


async def get_json(browser, path: str, status: int = 200) -> dict:
    response = await browser.get(path)
    assert response.status_code == status, await response.get_data(as_text=True)
    return await response.get_json()


@pytest.fixture
async def dataset(admin, db, monkeypatch) -> dict:
    """Five done tasks and one open one:

    one   alpha  p-one  2026-01-31T23:30Z  $1.50  2 min   10+5 lines → 45 min, $75 (done at the default $100/h)
    two   beta   p-one  2026-02-01T00:30Z  $0.50  1 min   total 20 lines; humanCost $50, 30 min given
    three alpha  p-two  2026-02-09T10:00Z  $2.00  5 min   no lines → 10 × runtime = 50 min, $100 at $120/h
    four  —      —      2026-02-09T12:00Z  $0.25  —       lines added after done: backfilled 15 min, $30 at $120/h
    six   gamma  —      2025-12-01T00:00Z  $1.00  —       1 line → 3 min, $6 at $120/h
    open  alpha  p-one  (in progress)      $100           not counted anywhere
    """
    p1 = (await (await admin.post("/api/projects", json={"id": "p-one", "name": "Project " + XSS})).get_json())
    p2 = (await (await admin.post("/api/projects", json={"id": "p-two", "name": "Second"})).get_json())
    p1, p2 = p1["project"]["id"], p2["project"]["id"]
    one = await done_at(admin, monkeypatch, "2026-01-31T23:30:00.000Z", title="One " + XSS, agentId="alpha",
                        projectId=p1, cost=1.5, runtime=120_000, linesChanged={"added": 10, "removed": 5},
                        model="anthropic/claude-sonnet-4-5")
    assert one["humanCost"] == 75.0 and one["estimatedHumanMinutes"] == 45.0
    await set_rate(db, "120")
    two = await done_at(admin, monkeypatch, "2026-02-01T00:30:00.000Z", title="Two", agentId="beta", projectId=p1,
                        cost=0.5, runtime=60_000, linesChanged={"total": 20}, humanCost=50, estimatedHumanMinutes=30)
    three = await done_at(admin, monkeypatch, "2026-02-09T10:00:00.000Z", title="Three", agentId="alpha",
                          projectId=p2, cost=2.0, runtime=300_000)
    assert three["humanCost"] == 100.0 and three["estimatedHumanMinutes"] == 50.0
    four = await done_at(admin, monkeypatch, "2026-02-09T12:00:00.000Z", title="Four", cost=0.25)
    assert four["humanCost"] is None and four["estimatedHumanMinutes"] is None
    patched = await admin.patch(f"/api/tasks/{four['id']}", json={"linesChanged": {"added": 4, "removed": 1}})
    assert (await patched.get_json())["humanCost"] is None  # no transition: nothing stored, costs backfill it
    six = await done_at(admin, monkeypatch, "2025-12-01T00:00:00.000Z", title="Six", agentId="gamma", cost=1.0,
                        linesChanged={"added": 1})
    await create(admin, title="Open", status="in-progress", agentId="alpha", projectId=p1, cost=100.0,
                 linesChanged={"added": 1000})
    return {"one": one, "two": two, "three": three, "four": four, "six": six, "p1": p1, "p2": p2}


# --- the JSON API ----------------------------------------------------------------------------------

async def test_summary_counts_done_tasks_with_runtime_in_milliseconds_and_the_backfill(dataset, viewer):
    summary = await get_json(viewer, "/api/costs/summary")
    assert summary == {
        "totalTasks": 5,
        "totalLines": 41,               # 15 + 20 (total only) + 0 + 5 + 1
        "totalAiCost": 5.25,
        "totalHumanCost": 261.0,        # 75 + 50 + 100 + 30 (backfilled at $120/h) + 6
        "totalAiSeconds": 480.0,        # 480 000 ms
        "totalHumanMinutes": 143.0,     # 45 + 30 + 50 + 15 + 3
        "netSavings": 255.75,
        "hoursSaved": 2.25,             # (143 − 8 AI minutes) / 60
    }


async def test_backfill_uses_the_current_hourly_rate(dataset, db, viewer):
    await set_rate(db, "60")  # stored human costs keep their rate; the backfilled task is priced at $60/h
    summary = await get_json(viewer, "/api/costs/summary")
    assert summary["totalHumanCost"] == 246.0 and summary["netSavings"] == 240.75
    assert summary["totalHumanMinutes"] == 143.0


async def test_summary_with_no_done_tasks_is_all_zeros(admin, viewer):
    await create(admin, title="Not done", cost=3.0, runtime=1000)
    assert await get_json(viewer, "/api/costs/summary") == {
        "totalTasks": 0, "totalLines": 0, "totalAiCost": 0.0, "totalHumanCost": 0.0, "totalAiSeconds": 0.0,
        "totalHumanMinutes": 0.0, "netSavings": 0.0, "hoursSaved": 0.0}


async def test_hours_saved_is_never_negative(admin, viewer, monkeypatch):
    await done_at(admin, monkeypatch, "2026-02-01T00:00:00.000Z", cost=1.0, runtime=7_200_000,
                  estimatedHumanMinutes=30, humanCost=10)
    summary = await get_json(viewer, "/api/costs/summary")
    assert summary["hoursSaved"] == 0.0 and summary["totalAiSeconds"] == 7200.0 and summary["netSavings"] == 9.0


async def test_by_agent_skips_tasks_without_an_agent_and_sorts_by_savings(dataset, viewer):
    agents = (await get_json(viewer, "/api/costs/by-agent"))["agents"]
    assert agents == [
        {"agentId": "alpha", "tasks": 2, "lines": 15, "aiCost": 3.5, "humanCost": 175.0, "savings": 171.5},
        {"agentId": "beta", "tasks": 1, "lines": 20, "aiCost": 0.5, "humanCost": 50.0, "savings": 49.5},
        {"agentId": "gamma", "tasks": 1, "lines": 1, "aiCost": 1.0, "humanCost": 6.0, "savings": 5.0},
    ]


async def test_by_project_names_projects_and_includes_the_backfill(dataset, admin, db, viewer):
    # Move the backfilled task into p-two: it counts with its backfilled $30 there too.
    await admin.patch(f"/api/tasks/{dataset['four']['id']}", json={"projectId": dataset["p2"]})
    projects = (await get_json(viewer, "/api/costs/by-project"))["projects"]
    assert projects == [
        {"projectId": "p-two", "projectName": "Second", "tasks": 2, "lines": 5, "aiCost": 2.25, "humanCost": 130.0,
         "savings": 127.75},
        {"projectId": "p-one", "projectName": "Project " + XSS, "tasks": 2, "lines": 35, "aiCost": 2.0,
         "humanCost": 125.0, "savings": 123.0},
    ]


async def test_over_time_by_day_across_the_month_boundary_with_empty_days(dataset, viewer):
    body = await get_json(viewer, "/api/costs/over-time?period=day&from=2026-01-30&to=2026-02-10")
    assert body["period"] == "day" and body["from"] == "2026-01-30" and body["to"] == "2026-02-10"
    series = body["timeSeries"]
    assert [p["date"] for p in series] == ["2026-01-30", "2026-01-31"] + [f"2026-02-{d:02d}" for d in range(1, 11)]
    by_date = {p["date"]: p for p in series}
    assert by_date["2026-01-31"] == {"date": "2026-01-31", "tasks": 1, "lines": 15, "aiCost": 1.5, "humanCost": 75.0,
                                     "savings": 73.5}
    assert by_date["2026-02-01"] == {"date": "2026-02-01", "tasks": 1, "lines": 20, "aiCost": 0.5, "humanCost": 50.0,
                                     "savings": 49.5}
    assert by_date["2026-02-09"] == {"date": "2026-02-09", "tasks": 2, "lines": 5, "aiCost": 2.25,
                                     "humanCost": 130.0, "savings": 127.75}
    empty = {"tasks": 0, "lines": 0, "aiCost": 0.0, "humanCost": 0.0, "savings": 0.0}
    for day in ("2026-01-30", "2026-02-02", "2026-02-05", "2026-02-08", "2026-02-10"):
        assert by_date[day] == {"date": day, **empty}


async def test_over_time_by_iso_week_labels_mondays(dataset, viewer):
    body = await get_json(viewer, "/api/costs/over-time?period=week&from=2026-01-26&to=2026-02-15")
    # Jan 31 (Saturday) and Feb 1 (Sunday) share the ISO week that starts on Monday Jan 26.
    assert [(p["date"], p["tasks"], p["aiCost"], p["humanCost"]) for p in body["timeSeries"]] == [
        ("2026-01-26", 2, 2.0, 125.0), ("2026-02-02", 0, 0.0, 0.0), ("2026-02-09", 2, 2.25, 130.0)]


async def test_over_time_by_month(dataset, viewer):
    body = await get_json(viewer, "/api/costs/over-time?period=month&from=2025-11-01&to=2026-03-31")
    assert [(p["date"], p["tasks"], p["lines"], p["aiCost"], p["humanCost"], p["savings"])
            for p in body["timeSeries"]] == [
        ("2025-11", 0, 0, 0.0, 0.0, 0.0),
        ("2025-12", 1, 1, 1.0, 6.0, 5.0),
        ("2026-01", 1, 15, 1.5, 75.0, 73.5),
        ("2026-02", 3, 25, 2.75, 180.0, 177.25),
        ("2026-03", 0, 0, 0.0, 0.0, 0.0),
    ]


async def test_over_time_honours_the_range_in_utc(dataset, viewer):
    body = await get_json(viewer, "/api/costs/over-time?period=day&from=2026-02-01&to=2026-02-01")
    assert body["timeSeries"] == [{"date": "2026-02-01", "tasks": 1, "lines": 20, "aiCost": 0.5, "humanCost": 50.0,
                                   "savings": 49.5}]  # 23:30Z on Jan 31 is outside
    month = await get_json(viewer, "/api/costs/over-time?period=month&from=2026-02-05&to=2026-02-28")
    assert [(p["date"], p["tasks"]) for p in month["timeSeries"]] == [("2026-02", 2)]  # Feb 1 is outside


async def test_over_time_defaults_to_the_last_30_days_12_weeks_or_12_months(viewer, monkeypatch):
    monkeypatch.setattr(periods, "utcnow", lambda: periods.datetime(2026, 3, 4, 15, 0, tzinfo=periods.timezone.utc))
    day = await get_json(viewer, "/api/costs/over-time")
    assert (day["period"], day["from"], day["to"], len(day["timeSeries"])) == ("day", "2026-02-03", "2026-03-04", 30)
    week = await get_json(viewer, "/api/costs/over-time?period=week")
    assert (week["from"], week["to"], len(week["timeSeries"])) == ("2025-12-15", "2026-03-04", 12)
    assert week["timeSeries"][-1]["date"] == "2026-03-02"  # this week's Monday
    month = await get_json(viewer, "/api/costs/over-time?period=month")
    assert (month["from"], month["to"]) == ("2025-04-01", "2026-03-04")
    assert [p["date"] for p in month["timeSeries"]][::11] == ["2025-04", "2026-03"]
    only_to = await get_json(viewer, "/api/costs/over-time?to=2026-01-31")
    assert only_to["from"] == "2026-01-02"


@pytest.mark.parametrize("query, field", [
    ("period=year", "period"),
    ("from=2026-02-30", "from"),
    ("from=31-01-2026", "from"),
    ("to=yesterday", "to"),
    ("from=2026-02-10&to=2026-02-01", "from"),
    ("from=2023-01-01&to=2026-01-02", "from"),
    ("from=0999-01-01&to=1000-01-01", "from"),
])
async def test_over_time_refuses_bad_ranges_naming_the_field(viewer, query, field):
    body = await get_json(viewer, f"/api/costs/over-time?{query}", status=400)
    assert body["field"] == field and body["error"].startswith(field + ":")


async def test_over_time_allows_three_years(viewer):
    body = await get_json(viewer, "/api/costs/over-time?period=month&from=2023-01-01&to=2025-12-31")
    assert len(body["timeSeries"]) == 36


async def test_recent_is_newest_first_with_backfilled_figures(dataset, viewer):
    tasks = (await get_json(viewer, "/api/costs/recent"))["tasks"]
    assert [t["title"] for t in tasks] == ["Four", "Three", "Two", "One " + XSS, "Six"]
    four = tasks[0]
    assert four == {"id": dataset["four"]["id"], "title": "Four", "agentId": None, "projectId": None, "model": None,
                    "cost": 0.25, "runtime": None, "humanCost": 30.0, "estimatedHumanMinutes": 15.0,
                    "linesAdded": 4, "linesRemoved": 1, "linesTotal": 5,
                    "completedAt": "2026-02-09T12:00:00.000Z", "savings": 29.75}
    one = tasks[3]
    assert (one["agentId"], one["projectId"], one["runtime"], one["humanCost"], one["savings"]) == (
        "alpha", "p-one", 120_000, 75.0, 73.5)
    limited = (await get_json(viewer, "/api/costs/recent?limit=2"))["tasks"]
    assert [t["title"] for t in limited] == ["Four", "Three"]


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1", ""])
async def test_recent_limit_is_checked(viewer, limit):
    body = await get_json(viewer, f"/api/costs/recent?limit={limit}", status=400)
    assert body["field"] == "limit"


async def test_costs_api_needs_a_sign_in_but_any_role_or_token(app, api_token):
    client = app.test_client()
    for path in ("/api/costs/summary", "/api/costs/by-agent", "/api/costs/by-project", "/api/costs/over-time",
                 "/api/costs/recent"):
        assert (await client.get(path)).status_code == 401
        token = await api_token("viewer")
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, path


# --- the page --------------------------------------------------------------------------------------

async def test_page_shows_the_figures_charts_and_escapes_names(dataset, admin, viewer, monkeypatch):
    await done_at(admin, monkeypatch, "2026-02-02T08:00:00.000Z", title="Agent named badly", agentId=XSS, cost=0.1,
                  humanCost=0.6)
    response = await viewer.get("/costs?period=day&from=2026-01-30&to=2026-02-10")
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert XSS not in html and ESCAPED in html
    assert 'id="costs-ai-cost">$5.35<' in html
    assert 'id="costs-human-cost">$261.60<' in html
    assert 'id="costs-net-savings">$256.25<' in html
    assert 'id="costs-hours-saved">2.25 h<' in html
    assert 'id="costs-lines">41<' in html and 'id="costs-tasks">6<' in html
    # Charts: accessible SVGs with titles, descriptions and the numbers as text.
    assert html.count('role="img"') == 3
    assert '<title id="costs-agents-title">' in html and '<desc id="costs-agents-desc">' in html
    assert "alpha: 2 tasks, $175.00 human, $3.50 AI · saved $171.50" in html
    assert f"{ESCAPED}: 1 tasks" in html                      # the agent id in the SVG, escaped
    assert "Project " + ESCAPED in html                         # the project name, escaped
    assert "2026-01-30 to 2026-02-10 (UTC), per day" in html
    assert "2026-02-09: 2 tasks, AI $2.25, human-equivalent $130.00" in html
    assert html.count('class="costs-bucket"') == 12             # every day, the empty ones too
    assert '<a href="/board/tasks/' + dataset["one"]["id"] + '">One ' + ESCAPED + "</a>" in html
    assert 'href="/costs/recent.csv"' in html
    assert 'hx-get="/costs/chart"' in html and 'hx-target="#costs-chart"' in html and 'hx-push-url="true"' in html
    assert '<a href="/costs" aria-current="page">Costs</a>' in html
    assert "style=" not in html and "<script>" not in html


async def test_page_empty_state(viewer):
    html = await (await viewer.get("/costs")).get_data(as_text=True)
    assert "No done tasks yet" in html and "No tasks were completed in this range." in html
    assert 'role="img"' not in html
    assert 'id="costs-net-savings">$0.00<' in html


async def test_chart_fragment_swaps_the_chart_and_pushes_the_page_url(dataset, viewer):
    response = await viewer.get("/costs/chart?period=week&from=2026-01-26&to=2026-02-15", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/costs?sort=cost&dir=asc"})
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == "/costs?period=week&from=2026-01-26&to=2026-02-15&sort=cost&dir=asc"
    html = await response.get_data(as_text=True)
    assert html.startswith('<div id="costs-chart"') and "<html" not in html
    assert "per week (weeks start on Monday)" in html and html.count('class="costs-bucket"') == 3
    assert "2026-01-26: 2 tasks, AI $2.00, human-equivalent $125.00" in html
    assert ">Jan 26</text>" in html and ">$0</text>" in html


async def test_chart_fragment_draws_lines_for_long_ranges(dataset, viewer):
    html = await (await viewer.get("/costs/chart?period=day&from=2025-11-01&to=2026-02-28")).get_data(as_text=True)
    assert html.count("<polyline") == 2 and 'class="costs-bucket"' not in html
    assert html.count('<th scope="row" class="mono">') == 120   # the numbers, every day


async def test_chart_fragment_reports_a_bad_field_in_place(viewer):
    response = await viewer.get("/costs/chart?period=day&from=2026-02-10&to=2026-02-01",
                                headers={"HX-Request": "true"})
    assert response.status_code == 400 and response.headers["HX-Push-Url"] == "false"
    html = await response.get_data(as_text=True)
    assert html.startswith('<div id="costs-chart"') and 'data-field="from"' in html and "from: must be on or before" in html
    page = await viewer.get("/costs?period=decade")
    assert page.status_code == 400
    assert "period: must be one of day, week, month" in await page.get_data(as_text=True)


def recent_titles(html: str) -> list[str]:
    return re.findall(r'<a href="/board/tasks/[^"]+">([^<]+)</a>', html)


async def test_recent_table_sorts_by_column(dataset, viewer):
    html = await (await viewer.get("/costs")).get_data(as_text=True)
    assert recent_titles(html) == ["Four", "Three", "Two", "One " + ESCAPED, "Six"]
    assert 'aria-sort="descending"' in html
    by_cost = await (await viewer.get("/costs?sort=cost&dir=desc")).get_data(as_text=True)
    assert recent_titles(by_cost) == ["Three", "One " + ESCAPED, "Six", "Two", "Four"]
    # the active column's link flips the direction and keeps the rest of the page's query
    assert 'href="/costs?sort=cost&amp;dir=asc#costs-recent"' in by_cost
    fragment = await viewer.get("/costs/recent-table?sort=title&dir=asc", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/costs?period=month&sort=cost"})
    assert fragment.headers["HX-Push-Url"] == "/costs?period=month&sort=title&dir=asc"
    html = await fragment.get_data(as_text=True)
    assert html.startswith('<section id="costs-recent"')
    assert recent_titles(html) == ["Four", "One " + ESCAPED, "Six", "Three", "Two"]
    assert 'href="/costs?period=month&amp;sort=savings&amp;dir=desc#costs-recent"' in html
    agents = await (await viewer.get("/costs/recent-table?sort=agentId&dir=asc")).get_data(as_text=True)
    assert recent_titles(agents)[-1] == "Four"                   # no agent: last either way
    bad = await viewer.get("/costs/recent-table?sort=secret", headers={"HX-Request": "true"})
    assert bad.status_code == 400 and 'data-field="sort"' in await bad.get_data(as_text=True)


async def test_csv_export_has_the_recent_columns(dataset, admin, viewer, monkeypatch):
    await done_at(admin, monkeypatch, "2026-02-10T00:00:00.000Z", title="=HYPERLINK(1)", cost=0.5)
    response = await viewer.get("/costs/recent.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="clawtrol-costs.csv"'
    rows = list(csv.DictReader(io.StringIO(await response.get_data(as_text=True))))
    assert list(rows[0]) == ["id", "title", "agentId", "projectId", "model", "cost", "runtime", "humanCost",
                             "estimatedHumanMinutes", "linesAdded", "linesRemoved", "linesTotal", "completedAt",
                             "savings"]
    assert [r["title"] for r in rows] == ["'=HYPERLINK(1)", "Four", "Three", "Two", "One " + XSS, "Six"]
    one = rows[4]
    assert (one["id"], one["agentId"], one["projectId"], one["model"], one["cost"], one["runtime"], one["humanCost"],
            one["estimatedHumanMinutes"], one["linesAdded"], one["linesRemoved"], one["linesTotal"],
            one["completedAt"], one["savings"]) == (
        dataset["one"]["id"], "alpha", "p-one", "anthropic/claude-sonnet-4-5", "1.5", "120000", "75.0", "45.0",
        "10", "5", "15", "2026-01-31T23:30:00.000Z", "73.5")
    assert rows[1]["humanCost"] == "30.0" and rows[1]["agentId"] == ""
    limited = await viewer.get("/costs/recent.csv?limit=2&sort=cost&dir=desc")
    assert [r["title"] for r in csv.DictReader(io.StringIO(await limited.get_data(as_text=True)))] == [
        "'=HYPERLINK(1)", "Four"]
    assert (await viewer.get("/costs/recent.csv?limit=1001")).status_code == 400


async def test_viewer_sees_everything(dataset, viewer):
    for path in ("/costs", "/costs/chart", "/costs/recent-table", "/costs/recent.csv", "/api/costs/summary",
                 "/api/costs/by-agent", "/api/costs/by-project", "/api/costs/over-time", "/api/costs/recent"):
        assert (await viewer.get(path)).status_code == 200, path


async def test_page_needs_a_sign_in(app):
    response = await app.test_client().get("/costs")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_week_and_month_buckets():
    span = periods.parse_range("week", "2026-01-01", "2026-01-31")
    assert span.buckets() == ["2025-12-29", "2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"]
    assert span.bounds == ("2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z")
    assert periods.parse_range("month", "2025-11-15", "2026-02-01").buckets() == [
        "2025-11", "2025-12", "2026-01", "2026-02"]
    assert periods.default_start(date(2026, 1, 31), "month") == date(2025, 2, 1)
