"""What people do in Mission Clawtrol, in a real browser against the real server (`clawtrol serve`).

The stories share one server and one browser (see conftest.py), run in file order on one event loop, and
each ends by asserting that no page logged a console error, threw, got a 5xx or opened a JS dialog.
octocat signs in first and is admin; hubot is a member; monalisa signs in to be made a viewer.
Each story makes the tasks it needs, so it can also run alone (`-k`).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import expect

from .conftest import VIEWPORT, Crew, Person, ThreadedGateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIVE_TIMEOUT_MS = 2_000  # other people's changes must show up without reload within this
XSS_TITLE = "<img src=x onerror=alert(1)>"


def role_badge(person: Person):
    return person.page.locator(".user-menu summary .badge")


async def new_task(person: Person, title: str, **fields) -> dict:
    return await person.api("POST", "/api/tasks", {"title": title, **fields}, expect_status=201)


async def set_role_on_admin_page(admin: Person, login: str, role: str) -> None:
    """/admin/users: pick the role in the person's row; htmx posts it and swaps the row back in."""
    await admin.goto("/admin/users")
    row = admin.page.locator("#user-rows tr", has_text=f"@{login}")
    async with admin.page.expect_response(
            lambda r: "/admin/users/" in r.url and r.request.method == "POST") as answer:
        await row.get_by_role("combobox").select_option(role)
    assert (await answer.value).status == 200
    row = admin.page.locator("#user-rows tr", has_text=f"@{login}")  # the swapped-in row
    await expect(row.get_by_role("combobox")).to_have_value(role)
    await expect(row.locator(".field-error")).to_have_count(0)


async def assert_no_controls(person: Person, title: str) -> None:
    """A viewer's board: the cards, but no New task button, nothing draggable, a read-only dialog."""
    page = person.page
    await expect(role_badge(person)).to_have_text("viewer")
    await expect(person.card(title)).to_have_count(1)
    await expect(page.get_by_role("button", name="New task")).to_have_count(0)
    await expect(page.locator(".task-card[draggable='true']")).to_have_count(0)
    detail = await person.open_task(title)
    await expect(detail.locator("form.task-form")).to_have_count(0)
    await expect(detail.locator("form.comment-form")).to_have_count(0)
    await expect(detail.locator(".task-facts").first).to_be_visible()
    await person.close_task()


# --- 1. sign-in and roles --------------------------------------------------------------------------

async def test_first_person_is_admin_next_is_member_and_a_promoted_viewer_loses_controls(
        crew: Crew, octocat: Person, hubot: Person):
    await expect(role_badge(octocat)).to_have_text("admin")
    await expect(role_badge(hubot)).to_have_text("member")
    await expect(octocat.page.get_by_role("heading", name="Overview", level=1)).to_be_visible()

    mona = await crew.sign_in("monalisa")
    await expect(role_badge(mona)).to_have_text("member")
    users = {u["githubLogin"]: u for u in (await octocat.api("GET", "/api/users"))["users"]}
    assert users["octocat"]["role"] == "admin" and users["hubot"]["role"] == "member"
    await new_task(octocat, "Survey the landing site", assignedTo=users["monalisa"]["id"])

    # As a member, Mona can create tasks and drag the one assigned to her.
    await mona.click_nav("Board")
    await expect(mona.page.get_by_role("button", name="New task")).to_be_visible()
    await expect(mona.card("Survey the landing site")).to_have_attribute("draggable", "true")

    await set_role_on_admin_page(octocat, "monalisa", "viewer")

    # Her next click shows the new role: no controls anywhere.
    await mona.click_nav("Board")
    await assert_no_controls(mona, "Survey the landing site")
    crew.assert_clean()


# --- 2. projects and the New task dialog -------------------------------------------------------------

async def test_admin_creates_a_project_and_tasks_with_the_new_task_dialog(crew: Crew, octocat: Person):
    page = octocat.page
    await octocat.click_nav("Projects")
    form = page.locator("form", has=page.get_by_role("button", name="Create project"))
    await form.get_by_label("Name").fill("Apollo")
    await form.get_by_label("Description").fill("Put a crew on the Moon and bring it back")
    async with page.expect_navigation():
        await form.get_by_role("button", name="Create project").click()
    assert page.url.endswith("/projects/apollo")
    await expect(page.get_by_role("heading", name="Apollo", level=1)).to_be_visible()
    await expect(page.get_by_text("No tasks yet.")).to_be_visible()

    await octocat.click_nav("Board")
    lander = await octocat.create_task_in_dialog("Design the lander", priority="P1", project="Apollo")
    checklist = await octocat.create_task_in_dialog("Write the launch checklist", priority="P0", project="Apollo")
    card = octocat.card("Design the lander", "backlog")
    await expect(card.locator(".badge-p1")).to_have_text("P1")
    await expect(card).to_contain_text("Apollo")
    # Cards are in priority order: the P0 one comes first.
    ids = await page.locator("#column-backlog .task-card").evaluate_all("cards => cards.map(c => c.dataset.taskId)")
    assert ids.index(checklist) < ids.index(lander)

    task = await octocat.api("GET", f"/api/tasks/{lander}")
    assert (task["title"], task["priority"], task["projectId"], task["status"]) == \
        ("Design the lander", "P1", "apollo", "backlog")

    await octocat.goto("/projects/apollo")
    tasks = page.locator(".task-list")
    await expect(tasks.get_by_role("link", name="Design the lander")).to_be_visible()
    await expect(tasks.get_by_role("link", name="Write the launch checklist")).to_be_visible()
    crew.assert_clean()


# --- 3. drag and drop, live ----------------------------------------------------------------------------

async def test_a_drag_shows_up_live_for_others_and_a_refused_move_snaps_back(
        crew: Crew, octocat: Person, hubot: Person):
    admins_task = await new_task(octocat, "Order the fuel")
    await octocat.goto("/board", live=True)
    await hubot.goto("/board", live=True)

    task_id = await hubot.create_task_in_dialog("Calibrate the sensors", priority="P1")
    # The admin sees it arrive, without reload, with a toast.
    await octocat.page.wait_for_selector(f"#column-backlog #task-{task_id}", timeout=LIVE_TIMEOUT_MS)
    await expect(octocat.toast("hubot created 'Calibrate the sensors'")).to_be_visible()

    # hubot may only move what he created or is assigned to.
    await expect(hubot.card("Order the fuel")).to_have_count(1)
    assert await hubot.card("Order the fuel").get_attribute("draggable") is None
    assert admins_task["createdBy"] != (await hubot.api("GET", "/api/auth/me"))["id"]

    # hubot drags his card to To do; the admin's board shows it there within LIVE_TIMEOUT_MS of the drop.
    await hubot.card("Calibrate the sensors", "backlog").drag_to(hubot.page.locator("#column-todo .column-body"))
    dropped = time.monotonic()
    await octocat.page.wait_for_selector(f"#column-todo #task-{task_id}", timeout=LIVE_TIMEOUT_MS)
    latency = time.monotonic() - dropped
    print(f"live update of a move: {latency * 1000:.0f} ms from the drop to the other browser")
    await expect(octocat.card("Calibrate the sensors", "backlog")).to_have_count(0)
    await expect(octocat.toast("hubot moved 'Calibrate the sensors' to To do")).to_be_visible()
    await expect(hubot.card("Calibrate the sensors", "todo")).to_have_count(1)
    await expect(hubot.card("Calibrate the sensors", "backlog")).to_have_count(0)
    assert (await hubot.api("GET", f"/api/tasks/{task_id}"))["status"] == "todo"

    # Into Review without the handoff checklist: refused, snaps back, and the mover is told why.
    await hubot.card("Calibrate the sensors", "todo").drag_to(hubot.page.locator("#column-review .column-body"))
    error = hubot.page.locator("#toasts .toast-error")
    await expect(error).to_contain_text("Review checklist missing")
    await expect(hubot.card("Calibrate the sensors", "todo")).to_have_count(1)
    await expect(hubot.card("Calibrate the sensors", "review")).to_have_count(0)
    assert (await hubot.api("GET", f"/api/tasks/{task_id}"))["status"] == "todo"
    await expect(octocat.card("Calibrate the sensors", "todo")).to_have_count(1)
    crew.assert_clean()


# --- 4. comments ---------------------------------------------------------------------------------------

async def test_a_comment_appears_in_the_dialog_and_for_the_other_person(
        crew: Crew, octocat: Person, hubot: Person):
    await new_task(hubot, "Test the parachutes")
    await octocat.goto("/board", live=True)
    await hubot.goto("/board", live=True)
    hubot_detail = await hubot.open_task("Test the parachutes")
    await expect(hubot_detail.locator("#task-comments .comment")).to_have_count(0)

    detail = await octocat.open_task("Test the parachutes")
    await detail.get_by_label("Add a comment").fill("Drop test from 10 km first, please.")
    await detail.get_by_role("button", name="Comment", exact=True).click()
    comment = detail.locator("#task-comments .comment")
    await expect(comment).to_have_count(1)
    await expect(comment).to_contain_text("Drop test from 10 km first, please.")
    await expect(comment.locator("strong")).to_have_text("The Octocat")
    await expect(detail.get_by_label("Add a comment")).to_have_value("")

    # hubot has the task open: the thread reloads by itself, and a toast says who commented.
    await expect(hubot_detail.locator("#task-comments .comment")).to_contain_text(
        "Drop test from 10 km first, please.", timeout=LIVE_TIMEOUT_MS)
    await expect(hubot.toast("octocat commented on 'Test the parachutes'")).to_be_visible()
    # ... and sees it when opening the task afresh.
    await hubot.close_task()
    await hubot.goto("/board")
    hubot_detail = await hubot.open_task("Test the parachutes")
    await expect(hubot_detail.locator("#task-comments h3")).to_contain_text("(1)")
    await expect(hubot_detail.locator("#task-comments .comment")).to_contain_text("Drop test from 10 km first")
    await hubot.close_task()
    await octocat.close_task()
    crew.assert_clean()


# --- 5. user text is text ------------------------------------------------------------------------------

async def test_a_title_with_markup_is_shown_as_text_everywhere(crew: Crew, octocat: Person, hubot: Person):
    await octocat.goto("/board", live=True)
    await hubot.goto("/board", live=True)
    task_id = await hubot.create_task_in_dialog(XSS_TITLE)

    # hubot's board, the admin's board (live), the toast, the dialog: the literal text, no <img>.
    await expect(hubot.card(XSS_TITLE, "backlog").locator(".task-card-title")).to_have_text(XSS_TITLE)
    await octocat.page.wait_for_selector(f"#column-backlog #task-{task_id}", timeout=LIVE_TIMEOUT_MS)
    await expect(octocat.card(XSS_TITLE).locator(".task-card-title")).to_have_text(XSS_TITLE)
    await expect(octocat.toast(f"hubot created '{XSS_TITLE}'")).to_have_text(f"hubot created '{XSS_TITLE}'")
    await hubot.card(XSS_TITLE).drag_to(hubot.page.locator("#column-todo .column-body"))
    await expect(octocat.toast(f"hubot moved '{XSS_TITLE}' to To do")).to_be_visible()
    detail = await octocat.open_task(XSS_TITLE)
    await expect(detail.get_by_role("heading", level=2)).to_have_text(XSS_TITLE)
    await expect(detail.locator("input[name=title]")).to_have_value(XSS_TITLE)
    await expect(detail.locator(".history")).to_contain_text(f"hubot created '{XSS_TITLE}'")
    await octocat.close_task()

    # The overview's activity and the audit log say it too, as text.
    await octocat.goto("/")
    await expect(octocat.page.locator("#overview")).to_contain_text(f"moved '{XSS_TITLE}' from backlog to todo")
    await octocat.goto("/admin/audit")
    await expect(octocat.page.locator("#audit-entries")).to_contain_text(f"hubot created '{XSS_TITLE}'")

    for person in (octocat, hubot):
        assert await person.page.locator("img[src='x']").count() == 0, f"markup was parsed on {person.login}'s page"
        assert person.dialogs == [], f"a dialog opened on {person.login}'s page: {person.dialogs}"
    crew.assert_clean()


# --- 6. costs -------------------------------------------------------------------------------------------

async def test_a_done_task_with_cost_and_lines_shows_on_the_costs_page(crew: Crew, octocat: Person):
    if not any(p["id"] == "apollo" for p in (await octocat.api("GET", "/api/projects"))["projects"]):
        await octocat.api("POST", "/api/projects", {"name": "Apollo"}, expect_status=201)
    await octocat.goto("/board", live=True)
    task = await new_task(octocat, "Land the module", projectId="apollo", agentId="senior-dev")
    await expect(octocat.card("Land the module", "backlog")).to_have_count(1)

    # What an agent reports when it finishes: through the API, with the page's session and CSRF token.
    done = await octocat.api("PATCH", f"/api/tasks/{task['id']}", {
        "status": "done", "cost": 1.25, "linesChanged": {"added": 30, "removed": 10}, "runtime": 120_000,
        "model": "claude-sonnet-4", "version": task["version"]})
    assert done["status"] == "done" and done["completedAt"]
    assert done["estimatedHumanMinutes"] == 120 and done["humanCost"] == 200  # 40 lines × 3 min at $100/h

    # The board moves it to Done by itself, with its numbers.
    done_card = octocat.card("Land the module", "done")
    await expect(done_card).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    await expect(done_card.locator(".task-card-cost")).to_contain_text("AI $1.25")
    await expect(done_card.locator(".task-card-cost")).to_contain_text("human $200.00")

    await octocat.click_nav("Costs")
    page = octocat.page
    summary = await octocat.api("GET", "/api/costs/summary")
    assert summary["totalTasks"] == 1, "only this story finishes tasks"
    await expect(page.locator("#costs-ai-cost")).to_have_text("$1.25")
    await expect(page.locator("#costs-human-cost")).to_have_text("$200.00")
    await expect(page.locator("#costs-net-savings")).to_have_text("$198.75")
    await expect(page.locator("#costs-hours-saved")).to_have_text("1.97 h")  # (120 − 2) min of human time
    await expect(page.locator("#costs-lines")).to_have_text("40")
    await expect(page.locator("#costs-tasks")).to_have_text("1")
    row = page.locator("#costs-recent tbody tr", has_text="Land the module")
    await expect(row).to_have_count(1)
    for text in ("senior-dev", "Apollo", "40", "2m", "$1.25", "$200.00", "$198.75"):
        await expect(row).to_contain_text(text)
    await expect(page.locator("section[aria-labelledby='costs-agents-heading']")).to_contain_text("senior-dev")
    await expect(page.locator("section[aria-labelledby='costs-projects-heading']")).to_contain_text("Apollo")
    crew.assert_clean()


# --- screenshots of every main page ------------------------------------------------------------------

MAIN_PAGES = [  # (screenshot name, path, the page's <h1>)
    ("overview", "/", "Overview"),
    ("board", "/board", "Board"),
    ("projects", "/projects", "Projects"),
    ("costs", "/costs", "Costs"),
    ("approvals", "/approvals", "Approvals"),
    ("agents", "/agents", "Agents"),
    ("admin-users", "/admin/users", "Users and roles"),
    ("admin-tokens", "/admin/tokens", "API tokens"),
    ("audit-log", "/admin/audit", "Audit log"),
    ("settings", "/admin/settings", "Settings"),
]


TRANSCRIPT = [
    {"role": "user", "content": "Fix the flaky login test", "timestamp": 1_795_900_000_000},
    {"role": "assistant", "model": "fake-1", "content": [
        {"type": "text", "text": "Running the test suite first."},
        {"type": "toolCall", "id": "call-1", "name": "exec", "arguments": {"command": "pytest -q tests/test_login.py"}}]},
    {"role": "toolResult", "toolName": "exec", "content": [{"type": "text", "text": "1 failed, 12 passed in 0.41s"}]},
    {"role": "assistant", "content": "The session cookie expires too early; fixed and re-ran: all green."},
]


async def test_every_main_page_renders_without_browser_errors(crew: Crew, octocat: Person,
                                                             fake_gateway: ThreadedGateway):
    """Each page as the admin: its heading, its live channel connected, a full-page screenshot, no errors.
    (The login page is taken by the sign-out story.)"""
    fake_gateway.fake.add_session("agent:main:e2e-demo", totalTokens=1834, estimatedCostUsd=0.0123)
    fake_gateway.fake.transcripts["agent:main:e2e-demo"] = TRANSCRIPT
    shots = []
    for name, path, heading in MAIN_PAGES + [("agent-sessions", "/agents/main", "Sessions of main"),
                                             ("transcript", "/sessions/agent:main:e2e-demo", "Session agent:main:e2e-demo")]:
        await octocat.goto(path, live=True)
        await expect(octocat.page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        shots.append(await octocat.screenshot(name))

    if not (await octocat.api("GET", "/api/projects"))["count"]:
        await octocat.api("POST", "/api/projects", {"name": "Apollo"}, expect_status=201)
    await octocat.goto("/projects")
    async with octocat.page.expect_navigation():
        await octocat.page.locator("table tbody a").first.click()
    await expect(octocat.page.get_by_role("heading", name="Progress")).to_be_visible()
    shots.append(await octocat.screenshot("project-detail"))

    # The task dialog, of a done task when there is one (it shows cost and savings too).
    await octocat.goto("/board", live=True)
    if not await octocat.page.locator(".task-card").count():
        await new_task(octocat, "Something to look at")
        await octocat.goto("/board", live=True)
    done = octocat.page.locator("#column-done .task-card")
    card = done.first if await done.count() else octocat.page.locator(".task-card").first
    await octocat.open_task(await card.locator(".task-card-title a").inner_text())
    # The dialog scrolls inside the viewport: a tall viewport shows all of it.
    await octocat.page.set_viewport_size({"width": VIEWPORT["width"], "height": 2_400})
    try:
        shots.append(await octocat.screenshot("task-dialog"))
    finally:
        await octocat.page.set_viewport_size(VIEWPORT)
    await octocat.close_task()

    for shot in shots:
        assert shot.stat().st_size > 5_000, f"{shot} looks empty"
    crew.assert_clean()


# --- 7. demotion takes effect on the next navigation ---------------------------------------------------

async def test_demoting_a_member_to_viewer_removes_his_controls_at_his_next_navigation(
        crew: Crew, octocat: Person, hubot: Person):
    await new_task(hubot, "Pack the rover")
    await hubot.goto("/board")
    await expect(hubot.card("Pack the rover")).to_have_attribute("draggable", "true")
    await expect(hubot.page.get_by_role("button", name="New task")).to_be_visible()

    await set_role_on_admin_page(octocat, "hubot", "viewer")
    await hubot.click_nav("Board")
    await assert_no_controls(hubot, "Pack the rover")
    # The API agrees: writes are refused.
    await hubot.api("POST", "/api/tasks", {"title": "Not allowed"}, expect_status=403)

    await set_role_on_admin_page(octocat, "hubot", "member")
    await hubot.click_nav("Board")
    await expect(role_badge(hubot)).to_have_text("member")
    await expect(hubot.card("Pack the rover")).to_have_attribute("draggable", "true")
    crew.assert_clean()


# --- 8. sign-out ----------------------------------------------------------------------------------------

async def test_signing_out_from_the_user_menu_ends_the_session(crew: Crew, octocat: Person):
    person = await crew.sign_in("octocat")  # a second browser of the admin: only this session ends
    page = person.page
    await page.locator(".user-menu summary").click()
    async with page.expect_navigation():
        await page.locator(".user-menu").get_by_role("button", name="Sign out").click()
    assert page.url == f"{crew.server.base_url}/login"
    await expect(page.get_by_role("link", name="Sign in with GitHub")).to_be_visible()
    await expect(page.locator(".user-menu")).to_have_count(0)
    await person.screenshot("login")

    await person.goto("/board")
    assert page.url == f"{crew.server.base_url}/login?next=/board"
    await expect(page.get_by_role("link", name="Sign in with GitHub")).to_be_visible()

    # The admin's other browser is still signed in.
    await octocat.goto("/board")
    await expect(octocat.page.get_by_role("heading", name="Board", level=1)).to_be_visible()
    crew.assert_clean()


# --- 9. an approval raised on the gateway, decided by one person, seen by the other -----------------------

async def test_an_approval_appears_live_for_both_and_the_other_sees_who_decided(
        crew: Crew, octocat: Person, hubot: Person, fake_gateway: ThreadedGateway):
    for person in (octocat, hubot):
        await person.goto("/approvals", live=True)
    command = "rm -rf build/ && echo '<b>done</b>'"
    record = fake_gateway.call(fake_gateway.fake.raise_approval(command, allowedDecisions=["allow-once", "deny"],
                                                                sessionKey="agent:main:e2e"))
    started = time.monotonic()
    for person in (octocat, hubot):
        item = person.page.locator(f"#approval-default-{record['id']}")
        await expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(item.locator(".approval-command")).to_have_text(command)  # shown as text, not markup
        await expect(person.page.locator("[data-pending-approvals]")).to_have_text("1")
        await expect(item.locator(".countdown")).to_contain_text("m")
    print(f"approval visible in both browsers after {(time.monotonic() - started) * 1000:.0f} ms")
    # hubot (member) may not decide an approval that is not linked to a task of his: no buttons for him
    await expect(hubot.page.locator(f"#approval-default-{record['id']} button")).to_have_count(0)
    await expect(octocat.page.locator(f"#approval-default-{record['id']} button")).to_have_count(2)
    await octocat.screenshot("approvals-pending")

    await octocat.page.locator(f"#approval-default-{record['id']}").get_by_role("button", name="Allow once").click()
    await expect(octocat.toast("decision sent to the gateway")).to_be_visible()
    started = time.monotonic()
    row = hubot.page.locator("#recent-heading ~ .table-wrap tbody tr").first
    await expect(row).to_contain_text("octocat", timeout=LIVE_TIMEOUT_MS)
    await expect(row).to_contain_text("Allow once")
    await expect(hubot.page.locator(f"#approval-default-{record['id']}")).to_have_count(0)
    await expect(hubot.page.locator("[data-pending-approvals]")).to_be_hidden()
    print(f"decision visible to the other person after {(time.monotonic() - started) * 1000:.0f} ms")
    assert ("exec.approval.resolve", {"id": record["id"], "decision": "allow-once"}) in fake_gateway.fake.requests
    crew.assert_clean()


async def test_a_decision_keeps_its_toast_when_the_live_refresh_answers_first(
        crew: Crew, octocat: Person, fake_gateway: ThreadedGateway):
    """The decision's own `approval.resolved` event sets off a live refresh of the queue. Here the decision's
    response is held back until that refresh has had time to answer: the response must still be shown, with its
    toast (htmx drops a response whose target was replaced meanwhile; hx-sync in approvals/_queue.html)."""
    await octocat.goto("/approvals", live=True)
    record = fake_gateway.call(fake_gateway.fake.raise_approval("make deploy", allowedDecisions=["allow-once", "deny"],
                                                                sessionKey="agent:main:e2e-race"))
    item = octocat.page.locator(f"#approval-default-{record['id']}")
    await expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)

    async def hold_back(route) -> None:
        response = await route.fetch()  # the server decides now and publishes the event
        await asyncio.sleep(1.5)  # the event, the refresh's 500 ms throttle and its round trip fit in this
        await route.fulfill(response=response)
    await octocat.page.route("**/decide", hold_back)
    await item.get_by_role("button", name="Deny").click()
    await expect(octocat.toast("decision sent to the gateway")).to_be_visible(timeout=LIVE_TIMEOUT_MS + 1_500)
    await expect(octocat.page.locator(f"#approval-default-{record['id']}")).to_have_count(0)
    row = octocat.page.locator("#recent-heading ~ .table-wrap tbody tr").first
    await expect(row).to_contain_text("Deny")
    crew.assert_clean()
