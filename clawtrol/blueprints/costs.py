"""Costs: the JSON API under /api/costs (the original's paths and shapes) and the Costs page with its chart
and table fragments and CSV export. Every signed-in role may read them; all figures are over done tasks."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qsl, urlencode, urlsplit

from quart import Blueprint, Response, render_template, request, url_for

from .. import htmx
from ..auth.principal import require_principal
from ..costs import charts, periods, report
from ..errors import InvalidInput, Refused
from ..payload import query_int
from ..spreadsheet import csv_cell
from ..services import current_db

blueprint = Blueprint("costs", __name__)

RECENT_DEFAULT, RECENT_MAX = 10, 100
PAGE_RECENT = 25
CSV_MAX = 1000
PAGE_KEYS = ("period", "from", "to", "sort", "dir")


# --- the JSON API --------------------------------------------------------------------------------------

def _limit(default: int, maximum: int) -> int:
    return query_int("limit", default, 1, maximum)


def _range() -> periods.Range:
    args = request.args
    return periods.parse_range(args.get("period"), args.get("from"), args.get("to"))


@blueprint.get("/api/costs/summary")
async def api_summary():
    require_principal()
    db = current_db()
    return await report.summary(db, await report.hourly_rate(db))


@blueprint.get("/api/costs/by-agent")
async def api_by_agent():
    require_principal()
    db = current_db()
    return {"agents": await report.by_agent(db, await report.hourly_rate(db))}


@blueprint.get("/api/costs/by-project")
async def api_by_project():
    require_principal()
    db = current_db()
    return {"projects": await report.by_project(db, await report.hourly_rate(db))}


@blueprint.get("/api/costs/over-time")
async def api_over_time():
    require_principal()
    span = _range()
    db = current_db()
    series = await report.over_time(db, await report.hourly_rate(db), span)
    return {"timeSeries": series, **span.args()}


@blueprint.get("/api/costs/recent")
async def api_recent():
    require_principal()
    limit = _limit(RECENT_DEFAULT, RECENT_MAX)
    db = current_db()
    rows = await report.recent(db, await report.hourly_rate(db), limit)
    return {"tasks": [report.recent_json(row) for row in rows]}


# --- the page ------------------------------------------------------------------------------------------

def _page_state(overrides: dict[str, str | None]) -> dict[str, str]:
    """The page's query (period, from, to, sort, dir): the Costs page the request came from (htmx's current
    URL) when it is a fragment request, overridden by the request's own arguments."""
    state: dict[str, str] = {}
    current = htmx.current_url()
    if current and urlsplit(current).path == url_for("costs.costs_page"):
        state.update((k, v) for k, v in parse_qsl(urlsplit(current).query) if k in PAGE_KEYS)
    for key, value in overrides.items():
        if value:
            state[key] = value
        else:
            state.pop(key, None)
    return state


def _page_url(state: dict[str, str], **changes: str | None) -> str:
    merged = {**state, **changes}
    query = urlencode([(k, merged[k]) for k in PAGE_KEYS if merged.get(k)])
    return url_for("costs.costs_page") + (f"?{query}" if query else "")


def _sort() -> tuple[str, str]:
    sort = request.args.get("sort") or "completedAt"
    if sort not in report.SORTS:
        raise InvalidInput(f"sort: must be one of {', '.join(report.SORTS)}", field="sort")
    direction = request.args.get("dir") or report.SORTS[sort][1]
    if direction not in ("asc", "desc"):
        raise InvalidInput("dir: must be asc or desc", field="dir")
    return sort, direction


def _form_values() -> dict[str, str]:
    return {key: (request.args.get(key) or "").strip() for key in ("period", "from", "to")}


async def _chart_context(rate: float) -> dict:
    """The over-time chart for the request's period/from/to, or the error that names the bad field."""
    form = _form_values()
    try:
        span = _range()
    except Refused as error:
        return {"form": form, "span": None, "chart": None, "series": [], "chart_error": error}
    series = await report.over_time(current_db(), rate, span)
    return {"form": form, "span": span, "series": series, "chart": charts.time_chart(series, span.period),
            "chart_error": None, "totals": {
                "tasks": sum(p["tasks"] for p in series),
                "aiCost": round(sum(p["aiCost"] for p in series), 2),
                "humanCost": round(sum(p["humanCost"] for p in series), 2)}}


async def _recent_context(rate: float, limit: int) -> dict:
    sort, direction = _sort()
    rows = report.sort_rows(await report.recent(current_db(), rate, limit), sort, direction)
    return {"recent": rows, "sort": sort, "dir": direction, "sorts": report.SORTS, "recent_limit": limit}


@blueprint.get("/costs")
async def costs_page():
    require_principal()
    db = current_db()
    rate = await report.hourly_rate(db)
    state = {key: request.args[key] for key in PAGE_KEYS if request.args.get(key)}
    context = {
        "summary": await report.summary(db, rate),
        "agents": await report.by_agent(db, rate),
        "projects": await report.by_project(db, rate),
        "rate": rate,
        "state": state,
        "page_url": lambda **changes: _page_url(state, **changes),
        **await _chart_context(rate),
        **await _recent_context(rate, PAGE_RECENT),
    }
    context["agent_chart"] = charts.bar_chart(context["agents"], "agentId")
    context["project_items"] = [{**p, "label": p["projectName"] or p["projectId"]} for p in context["projects"]]
    context["project_chart"] = charts.bar_chart(context["project_items"], "label")
    status = 400 if context["chart_error"] else 200
    return await render_template("costs/index.html", **context), status


@blueprint.get("/costs/chart")
async def chart_fragment():
    """The over-time chart for the page's form (htmx): pushes the page's own URL, so a reload or the back
    button shows the whole page with the same range. A bad field comes back as 400 with the message,
    swapped in place of the chart."""
    require_principal()
    context = await _chart_context(await report.hourly_rate(current_db()))
    if context["chart_error"]:
        html = await render_template("costs/_chart.html", **context)
        return html, context["chart_error"].status, htmx.push_url(None)
    state = _page_state({key: request.args.get(key) for key in ("period", "from", "to")})
    html = await render_template("costs/_chart.html", **context)
    return html, 200, htmx.push_url(_page_url(state))


@blueprint.get("/costs/recent-table")
async def recent_fragment():
    """The recent table sorted by one column (htmx, from the column headers)."""
    require_principal()
    rate = await report.hourly_rate(current_db())
    state = _page_state({"sort": request.args.get("sort"), "dir": request.args.get("dir")})
    try:
        context = await _recent_context(rate, PAGE_RECENT)
    except Refused as error:
        return await render_template("costs/_recent.html", recent=None, recent_error=error, state=state,
                                     page_url=lambda **c: _page_url(state, **c)), error.status
    html = await render_template("costs/_recent.html", **context, recent_error=None, state=state,
                                 page_url=lambda **changes: _page_url(state, **changes))
    return html, 200, htmx.push_url(_page_url(state))


@blueprint.get("/costs/recent.csv")
async def recent_csv():
    """The recent done tasks as CSV: the columns of /api/costs/recent, up to 1000 rows (?limit=), newest
    first unless ?sort=&dir= ask otherwise."""
    require_principal()
    limit = _limit(CSV_MAX, CSV_MAX)
    sort, direction = _sort()
    db = current_db()
    rows = report.sort_rows(await report.recent(db, await report.hourly_rate(db), limit), sort, direction)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(report.RECENT_COLUMNS)
    for row in rows:
        task = report.recent_json(row)
        writer.writerow([csv_cell(task[column]) for column in report.RECENT_COLUMNS])
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="clawtrol-costs.csv"'})
