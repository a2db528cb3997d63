"""The overview: cards, status breakdown, needs-attention reasons, readable activity, live refresh."""

from __future__ import annotations

XSS = "<img src=x onerror=alert(1)>"


async def test_overview_cards_breakdown_attention_and_activity(admin, member):
    await member.post("/api/tasks", json={"title": "Unowned todo", "status": "todo"})
    await member.post("/api/tasks", json={"title": "Urgent", "priority": "P0", "agentId": "dev"})
    await member.post("/api/tasks", json={"title": "Late", "dueDate": "2020-01-01", "agentId": "dev"})
    await member.post("/api/tasks", json={"title": "Working", "status": "in-progress", "agentId": "ops"})
    await member.post("/api/tasks", json={"title": "Shipped", "status": "done", "cost": 1, "humanCost": 51,
                                          "agentId": "dev"})
    await member.post("/api/tasks", json={"title": "Quiet", "agentId": "qa"})
    html = await (await admin.get("/")).get_data(as_text=True)
    assert "<h1>Overview</h1>" in html
    cards = dict(zip(["Total tasks", "Done this week", "Net savings", "Active agents", "Pending approvals"],
                     ["6", "1", "$50.00", "1", "0"]))
    for label, value in cards.items():
        assert f'<h2 class="card-label">{label}</h2><p class="card-value">{value}</p>' in html, label
    assert 'aria-labelledby="status-chart-title"' in html and ">Backlog</text>" in html
    attention = html.split("Needs attention", 1)[1].split("Recent activity", 1)[0]
    assert "Unowned todo" in attention and "nobody on it" in attention
    assert "Urgent" in attention and "P0 and not done" in attention
    assert "Late" in attention and "overdue" in attention
    assert "Quiet" not in attention and "Shipped" not in attention and "Working" not in attention
    assert "mel created &#39;Quiet&#39;" in html


async def test_overview_refreshes_as_a_fragment(member):
    fragment = await (await member.get("/", headers={"HX-Request": "true"})).get_data(as_text=True)
    assert fragment.startswith('<div id="overview"') and 'hx-trigger="clawtrol:event from:document' in fragment


async def test_overview_escapes_titles_and_is_open_to_viewers(member, viewer):
    await member.post("/api/tasks", json={"title": XSS, "priority": "P0"})
    html = await (await viewer.get("/")).get_data(as_text=True)
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
