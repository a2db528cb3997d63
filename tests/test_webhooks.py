"""Outbound webhooks: the API and page, the durable outbox written with each change, and the sender against
a real local HTTP receiver (signature, retries with backoff, final failures, redelivery, restart)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from clawtrol import audit
from clawtrol.app import create_app
from clawtrol.clock import iso, parse_iso, utcnow
from clawtrol.webhooks import sender as sender_module
from clawtrol.webhooks.sender import MAX_TRIES, WebhookSender, retry_delay
from clawtrol.services import services_of

from .conftest import Agent
from .helpers import PROJECT_ROOT
from .gateway_fixtures import config, connected, eventually, fake  # noqa: F401
from .webhook_receiver import receiving


@pytest.fixture
def receiver():
    with receiving() as running:
        yield running


@pytest.fixture
def sender(app) -> WebhookSender:
    """The app's sender, with retries due at once and a short poll (tests never wait for backoff)."""
    running = services_of(app).webhook_sender
    running.retry_base = 0.0
    running.poll_interval = 0.05
    return running


async def add_webhook(admin, url: str, events: list[str], **extra) -> dict:
    response = await admin.post("/api/webhooks", json={"url": url, "events": events, **extra})
    body = await response.get_json()
    assert response.status_code == 201, body
    return body


async def deliveries(admin, webhook_id: str) -> list[dict]:
    response = await admin.get(f"/api/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200
    return (await response.get_json())["deliveries"]


async def settled(admin, webhook_id: str, count: int = 1) -> list[dict]:
    """The webhook's deliveries once `count` of them are no longer pending."""
    async def check():
        found = await deliveries(admin, webhook_id)
        return found if len([d for d in found if d["status"] != "pending"]) >= count else None
    return await eventually(check, timeout=10)


def readme_check():
    """The signature check README shows receivers ("Checking a signature"), run as written."""
    text = (PROJECT_ROOT / "README.md").read_text()
    code = text.split("**Checking a signature**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)
    return namespace["is_genuine"]


def verify(secret: str, headers: dict, body: bytes) -> bool:
    return readme_check()(secret, headers, body)


# --- the API ---------------------------------------------------------------------------------------------

async def test_admins_manage_webhooks_and_the_secret_is_shown_once(admin, db):
    created = await add_webhook(admin, "https://hooks.example/x", ["task.created", "approval.requested"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["secretHint"] == "…" + created["secret"][-4:] and created["format"] == "json"
    assert created["events"] == ["approval.requested", "task.created"] and created["enabled"] is True
    listed = await (await admin.get("/api/webhooks")).get_json()
    assert listed["count"] == 1 and "secret" not in listed["webhooks"][0]
    assert "secret" not in await (await admin.get(f"/api/webhooks/{created['id']}")).get_json()

    patched = await (await admin.patch(f"/api/webhooks/{created['id']}", json={"enabled": False,
                                                                               "format": "slack"})).get_json()
    assert patched["enabled"] is False and patched["format"] == "slack" and "secret" not in patched
    put = await admin.put(f"/api/webhooks/{created['id']}", json={"events": ["task.comment_added"]})
    assert put.status_code == 200 and (await put.get_json())["events"] == ["task.comment_added"]
    rotated = await (await admin.patch(f"/api/webhooks/{created['id']}", json={"rotateSecret": True})).get_json()
    assert rotated["secret"] != created["secret"]
    own = await (await admin.patch(f"/api/webhooks/{created['id']}", json={"secret": "s" * 20})).get_json()
    assert own["secret"] == "s" * 20

    deleted = await admin.delete(f"/api/webhooks/{created['id']}")
    assert deleted.status_code == 200 and (await deleted.get_json())["id"] == created["id"]
    assert (await admin.get(f"/api/webhooks/{created['id']}")).status_code == 404

    logged = [e for e in await audit.search(db, entity_type="webhook")]
    assert [e["action"] for e in reversed(logged)] == ["webhook.created"] + ["webhook.updated"] * 4 + [
        "webhook.deleted"]
    assert all(created["secret"] not in json.dumps(e["details"]) and "s" * 20 not in json.dumps(e["details"])
               for e in logged)
    assert logged[2]["details"]["changes"] == {"secret": "replaced"}


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://hooks.example/x", "events": ["task.created"]}, "url"),
    ({"url": "javascript:alert(1)", "events": ["task.created"]}, "url"),
    ({"url": "file:///etc/passwd", "events": ["task.created"]}, "url"),
    ({"url": "hooks.example/x", "events": ["task.created"]}, "url"),
    ({"url": "https://", "events": ["task.created"]}, "url"),
    ({"url": "https://user:pw@hooks.example/", "events": ["task.created"]}, "url"),
    ({"url": "https://hooks.example:99999/", "events": ["task.created"]}, "url"),
    ({"events": ["task.created"]}, "url"),
    ({"url": "https://hooks.example/x"}, "events"),
    ({"url": "https://hooks.example/x", "events": []}, "events"),
    ({"url": "https://hooks.example/x", "events": ["task.exploded"]}, "events"),
    ({"url": "https://hooks.example/x", "events": ["task.created"], "format": "xml"}, "format"),
    ({"url": "https://hooks.example/x", "events": ["task.created"], "secret": "short"}, "secret"),
    ({"url": "https://hooks.example/x", "events": ["task.created"], "enabled": "yes"}, "enabled"),
    ({"url": "https://hooks.example/x", "events": ["task.created"], "name": "x"}, "name"),
])
async def test_bad_webhooks_are_refused_naming_the_field(admin, db, body, field):
    response = await admin.post("/api/webhooks", json=body)
    answer = await response.get_json()
    assert response.status_code == 400 and answer["field"] == field, answer
    if field == "events" and "events" in body and body["events"]:
        assert "task.created" in answer["validEvents"]
    assert await db.all("webhooks.list") == []


async def test_only_admins_reach_webhooks(admin, member, viewer, api_token):
    hook = await add_webhook(admin, "https://hooks.example/x", ["task.created"])
    agent = Agent(admin.app, await api_token("member"))
    for who in (member, viewer, agent):
        for method, path in (("GET", "/api/webhooks"), ("GET", f"/api/webhooks/{hook['id']}"),
                             ("POST", "/api/webhooks"), ("PATCH", f"/api/webhooks/{hook['id']}"),
                             ("DELETE", f"/api/webhooks/{hook['id']}"), ("POST", f"/api/webhooks/{hook['id']}/test"),
                             ("GET", f"/api/webhooks/{hook['id']}/deliveries")):
            response = await who.request(method, path, **({"json": {}} if method in ("POST", "PATCH") else {}))
            assert response.status_code == 403, (method, path)
    assert (await member.get("/admin/webhooks")).status_code == 403


# --- delivery ----------------------------------------------------------------------------------------------

async def test_a_receiver_gets_a_correctly_signed_body(admin, member, sender, receiver, db):
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    task = await (await member.post("/api/tasks", json={"title": "Ship <it>"})).get_json()
    [request] = await receiver.wait_for(1)
    assert request.path == "/hook"
    headers = request.headers
    assert headers["X-Clawtrol-Event"] == "task.created" and headers["Content-Type"] == "application/json"
    assert verify(hook["secret"], headers, request.body)
    assert not verify("another secret that is long enough", headers, request.body)
    body = request.json
    assert body["id"] == headers["X-Clawtrol-Delivery"] and body["event"] == "task.created"
    assert body["actor"] == "mel" and body["occurredAt"]
    assert body["url"] == f"http://localhost:3001/board/tasks/{task['id']}"
    assert body["data"]["task"]["id"] == task["id"] and body["data"]["task"]["title"] == "Ship <it>"
    assert abs(int(headers["X-Clawtrol-Timestamp"]) - utcnow().timestamp()) < 60
    [delivery] = await settled(admin, hook["id"])
    assert delivery["id"] == body["id"] and delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["lastStatusCode"] == 200 and delivery["lastError"] is None and delivery["nextAttemptAt"] is None
    assert set(delivery) >= {"id", "event", "status", "attempts", "lastStatusCode", "lastError", "nextAttemptAt",
                             "createdAt"}


async def test_500_twice_then_200_takes_three_attempts_and_ends_delivered(admin, sender, receiver):
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    receiver.answer(500, 500, 200)
    await admin.post("/api/tasks", json={"title": "Retried"})
    [delivery] = await settled(admin, hook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3 and delivery["lastStatusCode"] == 200
    requests = receiver.received()
    assert len(requests) == 3 and len({r.headers["X-Clawtrol-Delivery"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1  # the same body every time, each attempt signed anew
    assert all(verify(hook["secret"], r.headers, r.body) for r in requests)


async def test_a_4xx_ends_failed_after_one_attempt_and_429_is_retried(admin, sender, receiver):
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    receiver.answer(400)
    await admin.post("/api/tasks", json={"title": "Refused"})
    [delivery] = await settled(admin, hook["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1 and delivery["lastStatusCode"] == 400
    assert delivery["lastError"] == "HTTP 400: refused with 400"
    receiver.answer(429, 200)
    await admin.post("/api/tasks", json={"title": "Throttled"})
    found = await settled(admin, hook["id"], 2)
    assert found[0]["status"] == "delivered" and found[0]["attempts"] == 2
    assert len(receiver.received()) == 3


async def test_network_errors_are_retried_up_to_the_limit_then_failed(admin, sender, db):
    from .helpers import free_port
    hook = await add_webhook(admin, f"http://127.0.0.1:{free_port()}/nobody-listens", ["task.created"])
    await admin.post("/api/tasks", json={"title": "Unreachable"})
    [delivery] = await settled(admin, hook["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_TRIES
    assert delivery["lastStatusCode"] is None and "ConnectError" in delivery["lastError"]


def test_the_backoff_grows_from_10_seconds_to_about_6_hours():
    delays = [retry_delay(n) for n in range(1, MAX_TRIES)]
    assert delays[0] == 10 and 5 * 3600 < delays[-1] < 7 * 3600
    assert all(later > earlier * 3 for earlier, later in zip(delays, delays[1:]))
    assert MAX_TRIES == 8


async def test_a_retry_waits_for_its_backoff(admin, app, receiver, db):
    running = services_of(app).webhook_sender  # the real 10 s backoff
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    receiver.answer(503)
    await admin.post("/api/tasks", json={"title": "Later"})
    [delivery] = await eventually(lambda: _attempted(admin, hook["id"]))
    assert delivery["status"] == "pending" and delivery["lastStatusCode"] == 503
    assert delivery["lastError"] == "HTTP 503: refused with 503"
    assert 5 < parse_iso(delivery["nextAttemptAt"]).timestamp() - utcnow().timestamp() <= 10.5
    assert await running.run_once() == 0  # not due yet: nothing is sent
    assert len(receiver.received()) == 1


async def _attempted(admin, webhook_id: str):
    found = await deliveries(admin, webhook_id)
    return found if found and found[0]["attempts"] >= 1 else None


async def test_a_redirect_is_not_followed():
    from clawtrol.webhooks.sender import Outcome
    import httpx2

    def answer(request):
        return httpx2.Response(302, headers={"Location": "https://elsewhere.example/"})
    running = WebhookSender(None, "http://localhost", transport=httpx2.MockTransport(answer))
    await running.start()
    try:
        outcome = await running.post({"id": "d1", "event": "ping", "payload": json.dumps({"data": {}}),
                                      "format": "json", "secret": "x" * 20, "url": "https://hooks.example/"})
    finally:
        await running.stop()
    assert outcome == Outcome("failed", 302, "HTTP 302: redirects are not followed; point the webhook at "
                                             "https://elsewhere.example/")


async def test_pending_deliveries_are_sent_after_a_restart(config, receiver, db, admin):
    """Queued while the sending process was down (or died holding a lease): the next process sends them."""
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    first = create_app(config)
    async with first.test_app():
        await services_of(first).webhook_sender.stop()  # this process dies before sending anything
        admin_of_first = await _browser_for(first, admin)
        await admin_of_first.post("/api/tasks", json={"title": "Queued before the restart"})
        await admin_of_first.post("/api/tasks", json={"title": "Leased by a process that died"})
    rows = await db.all("webhooks.deliveries", webhook_id=hook["id"], limit=10)
    assert [row["status"] for row in rows] == ["pending", "pending"] and receiver.received() == []
    await db.changed("webhooks.claim_due", now=iso(utcnow()), lease_until=iso(utcnow() - timedelta(seconds=1)),
                     claimant="dead-process", limit=1)  # its lease has run out already

    second = create_app(config)
    async with second.test_app():
        services_of(second).webhook_sender.poll_interval = 0.05
        requests = await receiver.wait_for(2)
    assert sorted(r.json["data"]["task"]["title"] for r in requests) == [
        "Leased by a process that died", "Queued before the restart"]
    assert {row["status"] for row in await db.all("webhooks.deliveries", webhook_id=hook["id"], limit=10)} == {
        "delivered"}


async def _browser_for(app, admin):
    from .conftest import sign_in_as
    return await sign_in_as(app, admin.user["login"])


async def test_two_senders_deliver_each_event_once(admin, app, config, receiver, db):
    """Two processes' senders racing over the same outbox (in one process here; see
    test_webhook_processes.py for two real processes on PostgreSQL)."""
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    await services_of(app).webhook_sender.stop()
    for n in range(30):
        await admin.post("/api/tasks", json={"title": f"race {n}"})
    senders = [WebhookSender(db, "http://localhost", retry_base=0), WebhookSender(db, "http://localhost", retry_base=0)]
    for one in senders:
        await one.start()
    async def all_delivered():
        rows = await db.all("webhooks.deliveries", webhook_id=hook["id"], limit=100)
        return {row["status"] for row in rows} == {"delivered"}
    try:
        async with asyncio.timeout(20):
            while not await all_delivered():
                sent = await asyncio.gather(*(one.run_once() for one in senders))  # beside their own loops
                if sum(sent) == 0:
                    await asyncio.sleep(0.02)
    finally:
        for one in senders:
            await one.stop()
    ids = [r.headers["X-Clawtrol-Delivery"] for r in receiver.received()]
    assert len(ids) == len(set(ids)) == 30
    rows = await db.all("webhooks.deliveries", webhook_id=hook["id"], limit=100)
    assert {row["status"] for row in rows} == {"delivered"} and len(rows) == 30


async def test_a_change_that_rolls_back_queues_nothing(admin, sender, receiver, db):
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    await admin.post("/api/tasks", json={"title": "Linked", "sessionKey": "agent:main:one"})
    clash = await admin.post("/api/tasks", json={"title": "Clash", "sessionKey": "agent:main:one"})
    assert clash.status_code == 409  # the insert and its audit entry rolled back, and the delivery with them
    await settled(admin, hook["id"])
    assert [d["event"] for d in await deliveries(admin, hook["id"])] == ["task.created"]


# --- what raises which event ----------------------------------------------------------------------------------

async def test_task_and_comment_events_carry_a_snapshot(admin, member, sender, receiver):
    await add_webhook(admin, receiver.url, ["task.status_changed", "task.done", "comment.created",
                                            "task.comment_added", "task.assigned", "task.deleted"])
    task = await (await member.post("/api/tasks", json={"title": "Lifecycle"})).get_json()  # not subscribed
    await member.patch(f"/api/tasks/{task['id']}", json={"status": "in-progress"})
    await member.post(f"/api/tasks/{task['id']}/comments", json={"content": "Looks good"})
    await member.patch(f"/api/tasks/{task['id']}", json={"status": "done"})
    await member.patch(f"/api/tasks/{task['id']}", json={"assignedTo": member.user["id"]})
    await admin.delete(f"/api/tasks/{task['id']}")
    requests = await receiver.wait_for(7)
    by_event: dict = {}
    for request in requests:
        by_event.setdefault(request.headers["X-Clawtrol-Event"], []).append(request.json)
    assert {event: len(bodies) for event, bodies in by_event.items()} == {
        "task.status_changed": 2, "comment.created": 1, "task.comment_added": 1, "task.done": 1, "task.assigned": 1,
        "task.deleted": 1}
    moves = sorted((b["data"]["from"], b["data"]["to"]) for b in by_event["task.status_changed"])
    assert moves == [("backlog", "in-progress"), ("in-progress", "done")]
    assert by_event["task.done"][0]["data"]["task"]["status"] == "done"
    assert by_event["comment.created"][0]["data"]["comment"]["content"] == "Looks good"
    assert by_event["task.comment_added"][0]["data"] == by_event["comment.created"][0]["data"]
    assert by_event["task.assigned"][0]["data"]["to"] == member.user["id"]
    assert by_event["task.deleted"][0]["data"]["task"] == {"id": task["id"], "title": "Lifecycle", "status": "done"}
    assert by_event["task.deleted"][0]["url"] == "http://localhost:3001/board"


async def test_approval_events_and_rule_decisions(connected, fake, admin, sender, receiver, db):
    await add_webhook(admin, receiver.url, ["approval.requested", "approval.resolved", "approval.expired"])
    await admin.post("/api/approval-rules", json={"name": "ls", "action": "allow-once", "commandPattern": "ls*"})
    asked = await fake.raise_approval("rm -rf build")
    automatic = await fake.raise_approval("ls -la")
    expiring = await fake.raise_approval("sleep 1", expires_in_ms=-1000)
    await eventually(lambda: db.one("approvals.get", gateway_id="default", id=expiring["id"]))
    await services_of(connected).approvals.expire_due()
    await admin.post(f"/api/approvals/{asked['id']}/resolve", json={"decision": "deny"})
    requests = await receiver.wait_for(5)
    seen = sorted((r.headers["X-Clawtrol-Event"], r.json["data"]["approval"]["id"]) for r in requests)
    assert seen == sorted([("approval.requested", asked["id"]), ("approval.requested", expiring["id"]),
                           ("approval.expired", expiring["id"]), ("approval.resolved", asked["id"]),
                           ("approval.resolved", automatic["id"])])  # no approval.requested for the automatic one
    resolved = {r.json["data"]["approval"]["id"]: r.json for r in requests
                if r.headers["X-Clawtrol-Event"] == "approval.resolved"}
    assert resolved[automatic["id"]]["data"]["approval"]["automatic"] is True
    assert resolved[automatic["id"]]["actor"] == "policy: ls"
    assert resolved[asked["id"]]["data"]["approval"]["resolvedBy"] == "ada"
    assert resolved[asked["id"]]["url"] == "http://localhost:3001/approvals"


async def test_slack_format_posts_text_with_a_link(admin, member, sender, receiver):
    hook = await add_webhook(admin, receiver.url, ["task.created"], format="slack")
    await member.post("/api/tasks", json={"title": "Fix <b> & more"})
    [request] = await receiver.wait_for(1)
    body = request.json
    assert set(body) == {"text"} and verify(hook["secret"], request.headers, request.body)
    assert body["text"].startswith("mel created 'Fix &lt;b&gt; &amp; more'\n<http://localhost:3001/board/tasks/")
    assert body["text"].endswith("|Open in Mission Clawtrol>")


async def test_disabled_webhooks_get_nothing_until_enabled(admin, sender, receiver, db):
    hook = await add_webhook(admin, receiver.url, ["task.created"], enabled=False)
    await admin.post("/api/tasks", json={"title": "Unseen"})
    assert await deliveries(admin, hook["id"]) == []
    test = await admin.post(f"/api/webhooks/{hook['id']}/test")
    assert test.status_code == 202 and (await test.get_json())["delivery"]["event"] == "ping"
    assert await sender.run_once() == 0  # queued, held while the webhook is off
    await admin.patch(f"/api/webhooks/{hook['id']}", json={"enabled": True})
    sender.wake()
    [request] = await receiver.wait_for(1)
    assert request.headers["X-Clawtrol-Event"] == "ping" and request.json["data"]["webhookId"] == hook["id"]


async def test_send_again_requeues_a_finished_delivery(admin, sender, receiver, db):
    hook = await add_webhook(admin, receiver.url, ["task.created"])
    receiver.answer(410)
    await admin.post("/api/tasks", json={"title": "Gone then back"})
    [failed] = await settled(admin, hook["id"])
    assert failed["status"] == "failed"
    again = await admin.post(f"/api/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver")
    assert again.status_code == 202 and (await again.get_json())["delivery"]["status"] == "pending"
    [delivered] = await eventually(lambda: _delivered(admin, hook["id"]))
    assert delivered["id"] == failed["id"] and delivered["attempts"] == 1
    requests = receiver.received()
    assert len(requests) == 2 and requests[0].headers["X-Clawtrol-Delivery"] == requests[1].headers[
        "X-Clawtrol-Delivery"]
    [entry] = await audit.search(db, action="webhook.redelivered")
    assert entry["details"] == {"deliveryId": failed["id"], "event": "task.created"}
    await sender.stop()
    await admin.post(f"/api/webhooks/{hook['id']}/test")
    pending = (await deliveries(admin, hook["id"]))[0]
    response = await admin.post(f"/api/webhooks/{hook['id']}/deliveries/{pending['id']}/redeliver")
    assert response.status_code == 409
    assert (await admin.post(f"/api/webhooks/{hook['id']}/deliveries/nope/redeliver")).status_code == 404
    assert (await admin.get("/api/webhooks/nope/deliveries")).status_code == 404


async def _delivered(admin, webhook_id):
    found = await deliveries(admin, webhook_id)
    return found if found and found[0]["status"] == "delivered" else None


async def test_finished_deliveries_are_pruned_after_30_days(admin, app, db):
    hook = await add_webhook(admin, "https://hooks.example/x", ["task.created"])
    await services_of(app).webhook_sender.stop()
    await admin.post(f"/api/webhooks/{hook['id']}/test")
    await admin.post(f"/api/webhooks/{hook['id']}/test")
    recent, old = await db.all("webhooks.deliveries", webhook_id=hook["id"], limit=10)  # newest first
    long_ago = iso(utcnow() - timedelta(days=31))
    claimant = "pruner-test"
    await db.changed("webhooks.claim_due", now=iso(utcnow()), lease_until=iso(utcnow() + timedelta(minutes=1)),
                     claimant=claimant, limit=10)
    for row in (old, recent):
        await db.changed("webhooks.record_attempt", id=row["id"], claimant=claimant, status="delivered",
                         status_code=200, error=None, now=long_ago if row is old else iso(utcnow()),
                         next_attempt_at=iso(utcnow()), delivered_at=iso(utcnow()))
    running = WebhookSender(db, "http://localhost")
    await running._prune()
    assert [row["id"] for row in await db.all("webhooks.deliveries", webhook_id=hook["id"], limit=10)] == [
        recent["id"]]


# --- the admin page ------------------------------------------------------------------------------------------

HX = {"HX-Request": "true"}


async def test_the_page_adds_a_webhook_shows_its_secret_once_and_sends_tests(admin, sender, receiver, db):
    page = await admin.get("/admin/webhooks")
    assert page.status_code == 200 and "No webhooks yet" in await page.get_data(as_text=True)
    bad = await admin.post("/admin/webhooks", form={"url": "gopher://x", "events": "task.created"}, headers=HX)
    html = await bad.get_data(as_text=True)
    assert bad.status_code == 400 and "url: must start with http:// or https://" in html and 'value="gopher://x"' in html
    fields = [("url", receiver.url), ("events", "task.created"), ("events", "task.done"), ("format", "slack")]
    created = await admin.post("/admin/webhooks", data=urlencode(fields),  # the test client's form= keeps one value
                               headers={**HX, "Content-Type": "application/x-www-form-urlencoded"})
    html = await created.get_data(as_text=True)
    [row] = await db.all("webhooks.list")
    assert created.status_code == 200 and row["secret"] in html and 'id="new-webhook-secret"' in html
    assert json.loads(row["events"]) == ["task.created", "task.done"] and row["format"] == "slack"
    assert row["secret"] not in await (await admin.get("/admin/webhooks")).get_data(as_text=True)

    tested = await admin.post(f"/admin/webhooks/{row['id']}/test", headers=HX)
    assert tested.status_code == 200 and "Test event queued" in tested.headers["HX-Trigger"]
    [request] = await receiver.wait_for(1)
    assert request.headers["X-Clawtrol-Event"] == "ping" and "this webhook works" in request.json["text"]
    await settled(admin, row["id"])
    listing = await (await admin.get("/admin/webhooks/deliveries", headers=HX)).get_data(as_text=True)
    assert "delivered" in listing and "Send again" in listing
    [delivery] = await deliveries(admin, row["id"])
    await sender.stop()  # so the delivery stays pending for the second click
    again = await admin.post(f"/admin/webhooks/{row['id']}/deliveries/{delivery['id']}/redeliver", headers=HX)
    assert "Queued to be sent again" in again.headers["HX-Trigger"]
    again = await admin.post(f"/admin/webhooks/{row['id']}/deliveries/{delivery['id']}/redeliver", headers=HX)
    assert again.status_code == 200 and "still pending" in json.loads(again.headers["HX-Trigger"])[
        "clawtrol:toast"]["message"]

    toggled = await admin.post(f"/admin/webhooks/{row['id']}/toggle", headers=HX)
    assert toggled.status_code == 200 and not (await db.one("webhooks.get", id=row["id"]))["enabled"]
    deleted = await admin.post(f"/admin/webhooks/{row['id']}/delete", headers=HX)
    assert deleted.status_code == 200 and await db.all("webhooks.list") == []
    assert await db.all("webhooks.recent_deliveries", limit=10) == []  # the deliveries went with it


async def test_audit_sentences_name_the_webhook(admin, db):
    hook = await add_webhook(admin, "https://hooks.example/x", ["task.created"])
    await admin.post(f"/api/webhooks/{hook['id']}/test")
    [entry] = await audit.search(db, action="webhook.tested")
    assert audit.describe(entry) == "ada sent a test event to https://hooks.example/x"


def test_sender_module_constants_match_the_issue():
    assert sender_module.TIMEOUT == 10.0 and sender_module.RETRY_BASE == 10.0
