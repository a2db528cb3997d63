"""Settings: typed values, validation, admin only, audited; the personal theme; the board's CSS."""

from __future__ import annotations

import pytest

from clawtrol import audit


async def test_defaults_are_typed(viewer):
    assert await (await viewer.get("/api/settings")).get_json() == {
        "humanHourlyRate": 100.0, "kanbanColumnWidth": 384, "theme": "auto"}


async def test_admin_updates_and_it_is_audited(admin, db):
    response = await admin.put("/api/settings", json={"humanHourlyRate": 120, "kanbanColumnWidth": 420})
    assert response.status_code == 200
    assert await response.get_json() == {"humanHourlyRate": 120.0, "kanbanColumnWidth": 420, "theme": "auto"}
    [entry] = await audit.search(db, action="settings.changed")
    assert entry["details"] == {"changes": {"humanHourlyRate": {"from": 100.0, "to": 120.0},
                                            "kanbanColumnWidth": {"from": 384, "to": 420}}}
    # The same values again change and audit nothing.
    await admin.put("/api/settings", json={"humanHourlyRate": 120})
    assert len(await audit.search(db, action="settings.changed")) == 1


@pytest.mark.parametrize("body, field", [
    ({"humanHourlyRate": -1}, "humanHourlyRate"), ({"humanHourlyRate": 10_001}, "humanHourlyRate"),
    ({"humanHourlyRate": "120"}, "humanHourlyRate"), ({"humanHourlyRate": True}, "humanHourlyRate"),
    ({"kanbanColumnWidth": 279}, "kanbanColumnWidth"), ({"kanbanColumnWidth": 601}, "kanbanColumnWidth"),
    ({"kanbanColumnWidth": 300.5}, "kanbanColumnWidth"), ({"theme": "blue"}, "theme"),
    ({"audioVolume": 5}, "audioVolume"),
])
async def test_validation(admin, body, field):
    response = await admin.put("/api/settings", json=body)
    assert response.status_code == 400 and (await response.get_json())["field"] == field
    assert (await (await admin.get("/api/settings")).get_json())["humanHourlyRate"] == 100.0


async def test_a_refused_update_writes_nothing(admin):
    response = await admin.put("/api/settings", json={"humanHourlyRate": 150, "kanbanColumnWidth": 10})
    assert response.status_code == 400
    assert (await (await admin.get("/api/settings")).get_json())["humanHourlyRate"] == 100.0


async def test_only_admins_change_settings(member, viewer):
    for browser in (member, viewer):
        assert (await browser.put("/api/settings", json={"theme": "dark"})).status_code == 403
        assert (await browser.get("/admin/settings")).status_code == 403


async def test_the_rate_prices_done_tasks(admin, member):
    await admin.put("/api/settings", json={"humanHourlyRate": 60})
    task = await (await member.post("/api/tasks", json={"title": "t", "status": "done",
                                                        "linesChanged": {"added": 20}})).get_json()
    assert task["estimatedHumanMinutes"] == 60.0 and task["humanCost"] == 60.0


async def test_settings_page_form(admin):
    page = await (await admin.get("/admin/settings")).get_data(as_text=True)
    assert 'name="humanHourlyRate"' in page and 'value="384"' in page
    saved = await admin.post("/admin/settings", form={"humanHourlyRate": "85.5", "kanbanColumnWidth": "300",
                                                      "theme": "dark"})
    assert saved.status_code == 200 and "Settings saved." in await saved.get_data(as_text=True)
    bad = await admin.post("/admin/settings", form={"humanHourlyRate": "lots", "kanbanColumnWidth": "300",
                                                    "theme": "dark"})
    assert bad.status_code == 400 and "humanHourlyRate: must be a number" in await bad.get_data(as_text=True)
    assert (await (await admin.get("/api/settings")).get_json())["humanHourlyRate"] == 85.5


async def test_default_theme_and_personal_choice(admin, member):
    await admin.put("/api/settings", json={"theme": "dark"})
    assert '<html lang="en" data-theme="dark">' in await (await member.get("/board")).get_data(as_text=True)
    chosen = await member.post("/settings/theme", form={"theme": "light"},
                               headers={"Referer": "http://localhost/projects?archived=1"})
    assert chosen.status_code == 303 and chosen.headers["Location"] == "/projects?archived=1"
    assert "clawtrol_theme=light" in chosen.headers["Set-Cookie"]
    assert '<html lang="en" data-theme="light">' in await (await member.get("/board")).get_data(as_text=True)
    evil = await member.post("/settings/theme", form={"theme": "dark"}, headers={"Referer": "https://evil.example/x"})
    assert evil.headers["Location"] == "/x"
    assert (await member.post("/settings/theme", form={"theme": "neon"})).status_code == 400


async def test_column_width_reaches_the_board_as_css(admin):
    await admin.put("/api/settings", json={"kanbanColumnWidth": 500})
    css = await admin.get("/settings.css")
    assert css.mimetype == "text/css" and "--column-width: 500px" in await css.get_data(as_text=True)
    assert '/settings.css' in await (await admin.get("/board")).get_data(as_text=True)
