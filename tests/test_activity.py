"""The activity feed: POST /api/activity (persisted, validated, audited, broadcast) and GET /api/activity."""

from __future__ import annotations

import asyncio

from clawtrol import audit
from clawtrol.services import services_of

from .conftest import Agent

XSS = "<img src=x onerror=alert(1)>"


async def next_of_type(queue: asyncio.Queue, type_: str, timeout: float = 5.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if event["type"] == type_:
                return event


async def test_a_posted_event_is_stored_audited_and_broadcast(app, db, member):
    queue = services_of(app).hub.subscribe()
    try:
        response = await member.post("/api/activity", json={
            "type": "status", "severity": "success", "agent": "senior-dev", "message": "Deployed to staging",
            "details": {"commit": "abc1234", "checks": ["lint", "tests"]}, "project": "website",
            "model": "anthropic/claude-sonnet-4-5", "sessionKey": "agent:main:deploy", "from": "ci", "to": "ops"})
        assert response.status_code == 201
        event = await response.get_json()
        live = await next_of_type(queue, "activity")
    finally:
        services_of(app).hub.unsubscribe(queue)
    assert event["id"] and event["timestamp"].endswith("Z")
    assert {k: event[k] for k in ("type", "severity", "agent", "message", "project", "model", "sessionKey", "from",
                                  "to")} == {
        "type": "status", "severity": "success", "agent": "senior-dev", "message": "Deployed to staging",
        "project": "website", "model": "anthropic/claude-sonnet-4-5", "sessionKey": "agent:main:deploy",
        "from": "ci", "to": "ops"}
    assert event["details"] == {"commit": "abc1234", "checks": ["lint", "tests"]}
    assert event["postedBy"] == {"label": "mel", "userId": member.user["id"], "tokenId": None}
    assert live["payload"]["id"] == event["id"] and live["payload"]["actor"] == "mel"
    assert live["payload"]["actorId"] == member.user["id"]
    [entry] = await audit.search(db, action="activity.posted")
    assert entry["entity_id"] == event["id"] and entry["user_id"] == member.user["id"]
    assert entry["details"] == {"type": "status", "severity": "success", "message": "Deployed to staging"}


async def test_the_feed_is_newest_first_with_numeric_paging(admin):
    for n in range(5):
        assert (await admin.post("/api/activity", json={"type": "task", "message": f"event {n}"})).status_code == 201
    body = await (await admin.get("/api/activity")).get_json()
    assert body["total"] == 5 and body["limit"] == 50 and body["offset"] == 0
    assert [e["message"] for e in body["events"]] == [f"event {n}" for n in (4, 3, 2, 1, 0)]
    assert body["events"][0]["severity"] == "info"  # the default
    page = await (await admin.get("/api/activity?limit=2&offset=1")).get_json()
    # The original concatenated the strings ("1" + "2" → slice end "12"); here they are numbers.
    assert page["limit"] == 2 and page["offset"] == 1 and page["total"] == 5
    assert [e["message"] for e in page["events"]] == ["event 3", "event 2"]
    beyond = await (await admin.get("/api/activity?offset=10")).get_json()
    assert beyond["events"] == [] and beyond["total"] == 5
    for query, field in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
                         ("offset=-1", "offset"), ("limit=2&offset=1.5", "offset")):
        response = await admin.get(f"/api/activity?{query}")
        assert response.status_code == 400, query
        assert (await response.get_json())["field"] == field, query


async def test_posted_events_are_validated_naming_the_field(admin, db):
    cases = [
        ({}, "type"), ({"type": "gossip"}, "type"), ({"type": None}, "type"),
        ({"type": "task", "severity": "fatal"}, "severity"), ({"type": "task", "message": 5}, "message"),
        ({"type": "task", "message": "x" * 5001}, "message"), ({"type": "task", "agent": ["a"]}, "agent"),
        ({"type": "task", "details": {"blob": "x" * 10_001}}, "details"),
        ({"type": "task", "id": "mine"}, "id"), ({"type": "task", "timestamp": "2020-01-01T00:00:00Z"}, "timestamp"),
        ({"type": "task", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = await admin.post("/api/activity", json=body)
        assert response.status_code == 400, body
        assert (await response.get_json())["field"] == field, body
    assert (await (await admin.get("/api/activity")).get_json())["total"] == 0
    assert not await audit.search(db, action="activity.posted")


async def test_members_and_tokens_post_viewers_do_not(app, db, viewer, api_token):
    refused = await viewer.post("/api/activity", json={"type": "task", "message": "no"})
    assert refused.status_code == 403 and (await refused.get_json())["code"] == "FORBIDDEN"
    viewer_bot = Agent(app, await api_token("viewer"))
    assert (await viewer_bot.post("/api/activity", json={"type": "task"})).status_code == 403
    bot = Agent(app, await api_token("member", "deploy-bot"))
    posted = await bot.post("/api/activity", json={"type": "complete", "message": "done"})
    assert posted.status_code == 201
    event = await posted.get_json()
    assert event["postedBy"]["label"] == "deploy-bot" and event["postedBy"]["tokenId"]
    [entry] = await audit.search(db, action="activity.posted")
    assert entry["actor_kind"] == "token" and entry["actor_label"] == "deploy-bot"
    feed = await (await viewer.get("/api/activity")).get_json()  # reading is open to every role
    assert [e["message"] for e in feed["events"]] == ["done"]


async def test_the_overview_shows_posted_events_beside_the_audit_trail(admin, member, viewer):
    await member.post("/api/tasks", json={"title": "Audited task"})
    await asyncio.sleep(0.002)  # timestamps are milliseconds: "newest" needs two different ones
    await member.post("/api/activity", json={"type": "error", "severity": "error", "agent": "qa",
                                             "message": f"Tests failed {XSS}"})
    html = await (await viewer.get("/")).get_data(as_text=True)
    activity = html.split("Recent activity", 1)[1]
    assert "mel created &#39;Audited task&#39;" in activity
    assert 'badge-event-error">error</span>' in activity and "qa: Tests failed" in activity
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in activity
    # newest first: the posted event came after the task
    assert activity.index("qa: Tests failed") < activity.index("Audited task")
    assert "posted error activity" not in activity  # the event is listed once, not again as its audit entry


async def test_a_large_event_is_broadcast_cut_short_and_stored_whole(app, admin):
    big = {"type": "file", "message": "é" * 5000, "details": {"diff": "+" * 9000}}
    queue = services_of(app).hub.subscribe()
    try:
        event = await (await admin.post("/api/activity", json=big)).get_json()
        live = await next_of_type(queue, "activity")  # on PostgreSQL it crossed NOTIFY's 8000-byte limit
    finally:
        services_of(app).hub.unsubscribe(queue)
    assert live["payload"]["id"] == event["id"] and live["payload"]["truncated"] is True
    assert live["payload"]["details"] is None and live["payload"]["message"] == "é" * 300
    [stored] = (await (await admin.get("/api/activity")).get_json())["events"]
    assert stored["message"] == "é" * 5000 and stored["details"] == {"diff": "+" * 9000} and "truncated" not in stored
