"""The board as people use it: columns, cards, filters, moves, the detail dialog, comments — all HTML."""

from __future__ import annotations

import json
import re

from .conftest import sign_in_as

XSS = "<img src=x onerror=alert(1)>"
CHECKLIST = "Files changed: a\nHow tested: b\nEdge cases: c\nRollback: d\nCommit hash: abc1234"


async def create(browser, **fields) -> dict:
    response = await browser.post("/api/tasks", json={"title": "Task", **fields})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return await response.get_json()


def column_html(html: str, status: str) -> str:
    match = re.search(rf'<section class="column" id="column-{status}".*?</section>', html, re.S)
    assert match, f"no column {status}"
    return match.group(0)


def card_ids(html: str) -> list[str]:
    return re.findall(r'id="task-([0-9a-f-]{36})"', html)


async def test_board_shows_five_columns_with_counts_and_priority_order(member):
    low = await create(member, title="Low", priority="P3")
    high = await create(member, title="High", priority="P0")
    await create(member, title="Todo one", status="todo")
    html = await (await member.get("/board")).get_data(as_text=True)
    for status in ("backlog", "todo", "in-progress", "review", "done"):
        assert f'id="column-{status}"' in html
    backlog = column_html(html, "backlog")
    assert card_ids(backlog) == [high["id"], low["id"]]
    assert '<span class="count" title="2 tasks">2</span>' in backlog
    assert '<script src="/static/js/board.js' in html


async def test_titles_are_escaped_on_cards_and_in_the_detail(member):
    task = await create(member, title=XSS, description=XSS)
    await member.post(f"/api/tasks/{task['id']}/comments", json={"content": XSS})
    for path in ("/board", f"/board/tasks/{task['id']}"):
        html = await (await member.get(path, headers={"HX-Request": "true"})).get_data(as_text=True)
        assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_viewer_sees_the_board_without_controls(member, viewer):
    task = await create(member)
    html = await (await viewer.get("/board")).get_data(as_text=True)
    assert task["id"] in html
    assert 'draggable="true"' not in html and "New task" not in html
    detail = await (await viewer.get(f"/board/tasks/{task['id']}", headers={"HX-Request": "true"})).get_data(
        as_text=True)
    assert "hx-post" not in detail and "hx-delete" not in detail and "Add a comment" not in detail
    assert (await viewer.get("/board/new")).status_code == 403


async def test_members_can_drag_only_what_they_may_edit(app, admin, member):
    mine = await create(member, title="Mine")
    theirs = await create(admin, title="Theirs")
    html = await (await member.get("/board")).get_data(as_text=True)
    assert re.search(rf'id="task-{mine["id"]}"[^>]*draggable="true"', html)
    assert not re.search(rf'id="task-{theirs["id"]}"[^>]*draggable="true"', html)


async def test_filters_from_the_url_and_as_an_htmx_fragment(app, admin, member):
    await create(member, title="Fix the login page")
    other = await create(admin, title="Write docs", assignedTo=member.user["id"])
    html = await (await member.get("/board?q=LOGIN")).get_data(as_text=True)
    assert "Fix the login page" in html and "Write docs" not in html
    assert 'value="LOGIN"' in html
    fragment = await (await member.get("/board?assignee=me", headers={"HX-Request": "true"})).get_data(as_text=True)
    assert fragment.startswith('<div id="board"') and card_ids(fragment) == [other["id"]]
    unassigned = await (await member.get("/board?assignee=unassigned")).get_data(as_text=True)
    assert "Write docs" not in unassigned and "Fix the login page" in unassigned


async def test_move_returns_both_columns_out_of_band(member, db):
    task = await create(member)
    response = await member.post(f"/board/tasks/{task['id']}/move?status=todo&version=1",
                                 headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/board"})
    assert response.status_code == 200 and response.headers["HX-Reswap"] == "none"
    html = await response.get_data(as_text=True)
    assert re.search(r'<section class="column" id="column-backlog"[^>]*hx-swap-oob="true"', html)
    assert task["id"] in column_html(html, "todo") and task["id"] not in column_html(html, "backlog")
    assert (await db.one("tasks.get", id=task["id"]))["status"] == "todo"


async def test_refused_move_snaps_back_and_says_why(member, db):
    task = await create(member)
    response = await member.post(f"/board/tasks/{task['id']}/move?status=review&version=1",
                                 headers={"HX-Request": "true"})
    html = await response.get_data(as_text=True)
    trigger = json.loads(response.headers["HX-Trigger"])["clawtrol:toast"]
    assert trigger["level"] == "error" and "Review checklist missing" in trigger["message"]
    assert task["id"] in column_html(html, "backlog") and task["id"] not in column_html(html, "review")
    assert (await db.one("tasks.get", id=task["id"]))["status"] == "backlog"


async def test_move_with_a_stale_version_is_refused(member, db):
    task = await create(member)
    await member.patch(f"/api/tasks/{task['id']}", json={"title": "Renamed"})  # version 2 now
    response = await member.post(f"/board/tasks/{task['id']}/move?status=done&version=1")
    assert "changed by someone else" in json.loads(response.headers["HX-Trigger"])["clawtrol:toast"]["message"]
    assert (await db.one("tasks.get", id=task["id"]))["status"] == "backlog"


async def test_move_into_review_with_the_checklist(member):
    task = await create(member, handoffNotes=CHECKLIST)
    response = await member.post(f"/board/tasks/{task['id']}/move?status=review&version=1")
    assert "HX-Trigger" not in response.headers
    assert task["id"] in column_html(await response.get_data(as_text=True), "review")


async def test_done_column_shows_the_latest_and_more_on_demand(member):
    for n in range(23):
        await create(member, title=f"Done {n:02d}", status="done")
    html = await (await member.get("/board")).get_data(as_text=True)
    done = column_html(html, "done")
    assert len(card_ids(done)) == 20 and "Show 3 more" in done
    assert "Done 22" in done and "Done 00" not in done  # most recently completed first
    more = await (await member.get("/board/columns/done?offset=20")).get_data(as_text=True)
    assert len(card_ids(more)) == 3 and "Done 00" in more and "Show" not in more


async def test_done_cards_show_cost_and_savings(member, db):
    await db.changed("settings.upsert", key="humanHourlyRate", value="120", updated_at="t", updated_by=None)
    await create(member, title="Shipped", status="done", cost=1.5, linesChanged={"added": 30, "removed": 10})
    done = column_html(await (await member.get("/board")).get_data(as_text=True), "done")
    assert "AI $1.50" in done and "human $240.00" in done and "saved $238.50" in done


async def test_overdue_and_due_soon_cards(member):
    await create(member, title="Late", dueDate="2020-01-01")
    html = await (await member.get("/board")).get_data(as_text=True)
    assert "due-overdue" in html and "Overdue 2020-01-01" in html and "is-overdue" in html


async def test_new_task_dialog_creates_and_reports_errors(member, db):
    form_html = await (await member.get("/board/new")).get_data(as_text=True)
    assert 'name="title"' in form_html and 'hx-post="/board/tasks"' in form_html
    bad = await member.post("/board/tasks", form={"title": "  ", "priority": "P1"})
    assert bad.status_code == 400 and "title: must not be blank" in await bad.get_data(as_text=True)
    good = await member.post("/board/tasks", form={"title": "From the dialog", "priority": "P1", "status": "todo",
                                                   "description": "", "dueDate": ""})
    assert good.status_code == 200 and "clawtrol:close-dialog" in good.headers["HX-Trigger"]
    assert "From the dialog" in column_html(await good.get_data(as_text=True), "todo")


async def test_detail_edit_saves_and_rejects_conflicts(member, db):
    task = await create(member, title="Before")
    saved = await member.post(f"/board/tasks/{task['id']}", form={"title": "After", "version": "1",
                                                                  "status": "todo", "priority": "P1"})
    html = await saved.get_data(as_text=True)
    assert saved.status_code == 200 and "Saved." in html and 'hx-swap-oob="true"' in html
    stale = await member.post(f"/board/tasks/{task['id']}", form={"title": "Lost", "version": "1"})
    assert stale.status_code == 409 and "changed by someone else" in await stale.get_data(as_text=True)
    assert (await db.one("tasks.get", id=task["id"]))["title"] == "After"


async def test_detail_shows_history_and_the_comment_thread_works(app, member, admin):
    task = await create(member, title="Discuss")
    thread = await member.post(f"/board/tasks/{task['id']}/comments", form={"content": "First!"})
    html = await thread.get_data(as_text=True)
    assert html.startswith('<section class="comments"') and "First!" in html
    empty = await member.post(f"/board/tasks/{task['id']}/comments", form={"content": " "})
    assert empty.status_code == 400 and "content: required" in await empty.get_data(as_text=True)
    [comment] = (await (await member.get(f"/api/tasks/{task['id']}/comments")).get_json())["comments"]
    edited = await member.post(f"/board/tasks/{task['id']}/comments/{comment['id']}", form={"content": "Edited"})
    assert "Edited" in await edited.get_data(as_text=True) and "(edited)" in await edited.get_data(as_text=True)
    other = await sign_in_as(app, "otto", "member")
    other_view = await (await other.get(f"/board/tasks/{task['id']}/comments")).get_data(as_text=True)
    assert "comment-edit" not in other_view  # not the author
    detail = await (await member.get(f"/board/tasks/{task['id']}", headers={"HX-Request": "true"})).get_data(
        as_text=True)
    assert "mel created &#39;Discuss&#39;" in detail and "mel commented on &#39;Discuss&#39;" in detail
    removed = await member.delete(f"/board/tasks/{task['id']}/comments/{comment['id']}")
    assert "Edited" not in await removed.get_data(as_text=True)


async def test_delete_from_the_dialog(member, db):
    task = await create(member)
    response = await member.delete(f"/board/tasks/{task['id']}")
    assert response.status_code == 200 and "clawtrol:close-dialog" in response.headers["HX-Trigger"]
    assert await db.one("tasks.get", id=task["id"]) is None


async def test_task_page_without_htmx_is_a_full_page(member):
    task = await create(member, title="Linkable")
    html = await (await member.get(f"/board/tasks/{task['id']}")).get_data(as_text=True)
    assert html.startswith("<!doctype html>") and "Linkable" in html and "← Board" in html


async def test_live_refresh_renders_several_columns_together_with_the_page_filters(member):
    mine = await create(member, title="Login bug", status="todo")
    await create(member, title="Other", status="todo")
    response = await member.get("/board/columns?status=todo&status=backlog&status=bogus",
                                headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/board?q=login"})
    html = await response.get_data(as_text=True)
    assert response.headers["HX-Reswap"] == "none"
    assert card_ids(column_html(html, "todo")) == [mine["id"]] and 'id="column-backlog"' in html
    assert html.count('hx-swap-oob="true"') == 2
    assert (await member.get("/board/columns?status=nope")).status_code == 400


async def test_a_move_keeps_the_pages_filters(member):
    match = await create(member, title="Login bug")
    await create(member, title="Unrelated")
    response = await member.post(f"/board/tasks/{match['id']}/move?status=todo&version=1",
                                 headers={"HX-Current-URL": "http://localhost/board?q=login"})
    html = await response.get_data(as_text=True)
    assert card_ids(column_html(html, "backlog")) == [] and card_ids(column_html(html, "todo")) == [match["id"]]
