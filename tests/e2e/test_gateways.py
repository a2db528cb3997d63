"""Several gateways in a real browser against the real server (issue #15): an admin adds a second gateway on
Admin › Gateways (testing the connection first), it shows connected without a restart, and an approval raised on
it appears in the one shared approvals queue next to the first gateway's."""

from __future__ import annotations


import pytest
from playwright.async_api import expect

from .conftest import Crew, Person, ThreadedGateway, threaded_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIVE_TIMEOUT_MS = 2_000
TOKEN = "second-gateway-token"


@pytest.fixture
def second_gateway():
    """Another fake OpenClaw gateway on its own loop in a thread (the server is a separate process)."""
    with threaded_gateway("second-gateway", token=TOKEN, version="2026.10.2-second") as gateway:
        yield gateway


async def test_an_admin_adds_a_gateway_and_its_approval_appears_in_the_shared_queue(
        crew: Crew, octocat: Person, fake_gateway: ThreadedGateway, second_gateway: ThreadedGateway):
    page = octocat.page
    await octocat.goto("/")
    await page.locator(".user-menu summary").click()
    async with page.expect_navigation():
        await page.locator(".user-menu").get_by_role("link", name="Gateways").click()
    default_row = page.locator("#gateway-list tr[data-gateway-name='default']")
    await expect(default_row.locator("[data-gateway-state]")).to_have_text("connected")

    form = page.locator("#gateway-form")
    await form.get_by_label("Name").fill("gpu box")
    await form.get_by_label("Address").fill(second_gateway.fake.url)
    await form.get_by_label("Token").fill(TOKEN)
    await form.get_by_role("button", name="Test connection").click()
    await expect(page.locator("#gateway-test-result")).to_contain_text("Connected: OpenClaw 2026.10.2-second")
    await form.get_by_role("button", name="Add gateway").click()
    await expect(octocat.toast("Gateway 'gpu box' added.")).to_be_visible()
    row = page.locator("#gateway-list tr[data-gateway-name='gpu box']")
    await expect(row).to_contain_text(second_gateway.fake.url)
    await expect(row.locator("[data-gateway-state]")).to_have_text("connected", timeout=8_000)  # refreshes every 3 s
    await expect(row.locator("[data-gateway-version]")).to_have_text("2026.10.2-second")
    await expect(page.locator("#gateway-form input[name='token']")).to_have_value("")  # never shown again
    gateway_id = await row.get_attribute("id")
    gateway_id = gateway_id.removeprefix("gateway-")
    await octocat.screenshot("gateways")

    # one queue across both gateways
    await octocat.goto("/approvals", live=True)
    first = fake_gateway.call(fake_gateway.fake.raise_approval("make release"))
    second = second_gateway.call(second_gateway.fake.raise_approval("nvidia-smi --gpu-reset"))
    queue = page.locator("#approvals li.approval")
    mine = queue.filter(has_text="nvidia-smi --gpu-reset")
    await expect(mine).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(mine).to_have_attribute("data-gateway", gateway_id)
    await expect(mine).to_contain_text("gpu box")  # the gateway's name on each item
    await expect(queue.filter(has_text="make release")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await octocat.screenshot("approvals-two-gateways")

    # removed: its pending approval leaves the queue, the other gateway's stays
    answer = await octocat.api("DELETE", f"/api/gateways/{gateway_id}")
    assert answer == {"success": True, "id": gateway_id, "closedApprovals": 1}
    await expect(mine).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    await expect(queue.filter(has_text="make release")).to_be_visible()
    await octocat.api("POST", f"/api/approvals/{first['id']}/resolve", {"decision": "deny"})
    assert second["id"]
    crew.assert_clean()
