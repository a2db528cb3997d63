"""Issue #12 items 4 and 5: the real client behind a trusted proxy (TRUSTED_PROXIES) for audit rows and
rate limits, and the Host allow-list against DNS rebinding (PUBLIC_URL, loopback names, ALLOWED_HOSTS),
including the dev sign-in and WebSockets."""

from __future__ import annotations

import ipaddress

import pytest
from quart.testing import WebsocketResponseError
from quart_auth import generate_auth_token

from clawtrol import audit
from clawtrol.app import create_app
from clawtrol.audit import Actor
from clawtrol.auth import tokens
from clawtrol.config import ConfigError, load_config
from clawtrol.hosts import HostPolicy, hostname_of, parse_allowed_hosts
from clawtrol.proxy import forwarded_client, parse_trusted_proxies
from clawtrol.services import services_of

from .conftest import make_environ, sign_in_as
from .helpers import run_cli

PROXY = {"client": ("127.0.0.1", 51000)}  # the TLS proxy on the same machine
STRANGER = {"client": ("198.51.100.77", 51000)}  # anyone else who reaches the port directly
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def build(database_url, tmp_path, **overrides):
    return create_app(load_config(make_environ(database_url, tmp_path / "data", **overrides), env_file=None))


@pytest.fixture
async def proxied_app(database_url, tmp_path):
    app = build(database_url, tmp_path, TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    async with app.test_app():
        yield app


async def make_token(app, role: str = "member", name: str = "agent") -> str:
    admin = await sign_in_as(app, "ada", "admin")
    actor = Actor(kind="user", label="ada", user_id=admin.user["id"])
    return (await tokens.create(services_of(app).db, actor, name, role, None))[1]


def bearer(raw: str, forwarded_for: str | None = None, **extra: str) -> dict:
    headers = {"Authorization": f"Bearer {raw}", **extra}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return headers


async def audited_ip(app, title: str) -> str | None:
    rows = [row for row in await audit.search(services_of(app).db, 50, action="task.created")
            if (row["details"] or {}).get("title") == title]
    assert rows, f"no audit row for {title}"
    return rows[0]["ip"]


# --- 4. the client behind the proxy -------------------------------------------------------------------

async def test_audit_rows_carry_the_forwarded_client_behind_a_trusted_proxy(proxied_app):
    token = await make_token(proxied_app)
    client = proxied_app.test_client()
    response = await client.post("/api/tasks", json={"title": "via proxy"}, scope_base=PROXY,
                                 headers=bearer(token, "203.0.113.9"))
    assert response.status_code == 201
    assert await audited_ip(proxied_app, "via proxy") == "203.0.113.9"
    # The client can prepend anything; the proxy appends the address it saw, and that one counts.
    response = await client.post("/api/tasks", json={"title": "spoofed"}, scope_base=PROXY,
                                 headers=bearer(token, "6.6.6.6, 203.0.113.10"))
    assert response.status_code == 201
    assert await audited_ip(proxied_app, "spoofed") == "203.0.113.10"
    # A chain of trusted proxies (10.0.0.0/8) is skipped: the right-most untrusted address is the client.
    response = await client.post("/api/tasks", json={"title": "two hops"}, scope_base=PROXY,
                                 headers=bearer(token, "6.6.6.6, 203.0.113.11, 10.1.2.3"))
    assert await audited_ip(proxied_app, "two hops") == "203.0.113.11"
    # A peer that is not a trusted proxy cannot claim another address.
    response = await client.post("/api/tasks", json={"title": "direct"}, scope_base=STRANGER,
                                 headers=bearer(token, "203.0.113.12"))
    assert response.status_code == 201
    assert await audited_ip(proxied_app, "direct") == "198.51.100.77"


async def test_forwarded_headers_are_ignored_without_trusted_proxies(app, api_token):
    token = await api_token("member")
    response = await app.test_client().post("/api/tasks", json={"title": "no proxy configured"}, scope_base=PROXY,
                                            headers=bearer(token, "203.0.113.9", Forwarded="for=203.0.113.8"))
    assert response.status_code == 201
    assert await audited_ip(app, "no proxy configured") == "127.0.0.1"


async def test_sign_in_audit_and_session_record_the_forwarded_client(proxied_app):
    """The sign-in path (users.sign_in through the blueprint) sees the same client as every other route."""
    client = proxied_app.test_client()
    refused = await client.get("/api/auth/callback?error=access_denied", scope_base=PROXY,
                               headers={"X-Forwarded-For": "203.0.113.40"})
    assert refused.status_code == 400
    rows = await audit.search(services_of(proxied_app).db, 10)
    assert rows and rows[0]["ip"] == "203.0.113.40"


async def test_junk_tokens_from_one_client_do_not_lock_out_another(proxied_app):
    good = await make_token(proxied_app)
    client = proxied_app.test_client()
    for attempt in range(20):
        response = await client.get("/api/auth/me", scope_base=PROXY,
                                    headers=bearer(f"mct_junk{attempt:040d}", "203.0.113.50"))
        assert response.status_code == 401, attempt
    assert (await client.get("/api/auth/me", scope_base=PROXY,
                             headers=bearer("mct_more", "203.0.113.50"))).status_code == 429
    # Another client behind the same proxy: its valid token works.
    other = await client.get("/api/auth/me", scope_base=PROXY, headers=bearer(good, "203.0.113.60"))
    assert other.status_code == 200
    # The limited client is refused even with a valid token (documented: no oracle, no DB work while limited).
    assert (await client.get("/api/auth/me", scope_base=PROXY, headers=bearer(good, "203.0.113.50"))).status_code == 429
    # WebSockets are keyed the same way.
    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket("/ws", headers=bearer(good, "203.0.113.50"), scope_base=PROXY) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 429
    async with client.websocket("/ws", headers=bearer(good, "203.0.113.60"), scope_base=PROXY) as ws:
        assert "connected" in await ws.receive()


async def test_failed_sign_ins_from_one_client_do_not_block_sign_in_for_others(proxied_app):
    client = proxied_app.test_client()
    for _ in range(10):
        response = await client.get("/api/auth/callback?code=x&state=y", scope_base=PROXY,
                                    headers={"X-Forwarded-For": "203.0.113.70"})
        assert response.status_code == 400
    limited = await client.get("/api/auth/login", scope_base=PROXY, headers={"X-Forwarded-For": "203.0.113.70"})
    assert limited.status_code == 429
    other = await client.get("/api/auth/login", scope_base=PROXY, headers={"X-Forwarded-For": "203.0.113.71"})
    assert other.status_code == 302


def test_forwarding_headers_are_read_right_to_left():
    networks, bad = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, fd00::/8")
    assert not bad
    peer = ipaddress.ip_address("127.0.0.1")

    def headers(**values: str) -> list[tuple[bytes, bytes]]:
        return [(name.replace("_", "-").lower().encode(), value.encode()) for name, value in values.items()]

    assert forwarded_client(peer, headers(X_Forwarded_For="1.1.1.1, 2.2.2.2"), networks) == ("2.2.2.2", None)
    assert forwarded_client(peer, headers(X_Forwarded_For="1.1.1.1:443"), networks) == ("1.1.1.1", None)
    assert forwarded_client(peer, headers(X_Forwarded_For="2.2.2.2, 10.0.0.1", X_Forwarded_Proto="http, https"),
                            networks) == ("2.2.2.2", "http")
    assert forwarded_client(peer, headers(X_Forwarded_For="2.2.2.2", X_Forwarded_Proto="HTTPS"),
                            networks) == ("2.2.2.2", "https")
    forwarded = 'for=1.1.1.1, for="[2001:db8::17]:4711";proto=https;by=10.0.0.1'
    assert forwarded_client(peer, headers(Forwarded=forwarded), networks) == ("2001:db8::17", "https")
    assert forwarded_client(peer, headers(X_Forwarded_For="unknown"), networks) == ("127.0.0.1", None)
    assert forwarded_client(peer, headers(X_Forwarded_For="10.0.0.2, 10.0.0.1"), networks) == ("10.0.0.2", None)
    assert forwarded_client(peer, [], networks) == ("127.0.0.1", None)
    assert parse_trusted_proxies("10.0.0.0/8, nonsense, 300.1.1.1")[1] == ["nonsense", "300.1.1.1"]


async def test_forwarded_https_counts_as_our_origin_behind_the_proxy(proxied_app):
    """X-Forwarded-Proto from the trusted proxy: the browser's https Origin on an allowed Host is ours."""
    admin = await sign_in_as(proxied_app, "ada", "admin")
    headers = {"X-CSRF-Token": admin.csrf_token, "Origin": "https://localhost", "X-Forwarded-Proto": "https",
               "X-Forwarded-For": "203.0.113.5"}
    response = await admin.client.post("/api/tasks", json={"title": "over https"}, headers=headers, scope_base=PROXY)
    assert response.status_code == 201
    spoofed = await admin.client.post("/api/tasks", json={"title": "not via proxy"}, headers=headers,
                                      scope_base=STRANGER)
    assert spoofed.status_code == 403


@pytest.mark.parametrize("overrides, expected", [
    ({"TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"},
     "TRUSTED_PROXIES: not an IP address or CIDR network: 'proxy.internal'"),
    ({"ALLOWED_HOSTS": "clawtrol.internal, https://clawtrol.example.com/"},
     "ALLOWED_HOSTS: not a host name or IP address: 'https://clawtrol.example.com/'"),
    ({"SESSION_IDLE_HOURS": "0"}, "SESSION_IDLE_HOURS: must be between 1 and 168"),
])
def test_bad_proxy_host_and_idle_settings_are_one_clear_line(tmp_path, overrides, expected):
    with pytest.raises(ConfigError) as error:
        load_config({**make_environ("", tmp_path), **overrides}, env_file=None)
    assert [line for line in error.value.problems if line.startswith(expected)]
    assert len(error.value.problems) == 1


def test_cli_refuses_a_bad_trusted_proxy_with_exit_2(tmp_path):
    result = run_cli("serve", environ={**make_environ("", tmp_path), "TRUSTED_PROXIES": "10.0.0.0/33"})
    assert result.returncode == 2
    assert "clawtrol: configuration error: TRUSTED_PROXIES: not an IP address or CIDR network: '10.0.0.0/33'" \
        in result.stderr
    assert "Traceback" not in result.stderr


# --- 5. Host names and DNS rebinding --------------------------------------------------------------------

def test_host_names_we_answer_to():
    policy = HostPolicy("https://Clawtrol.Example.com", parse_allowed_hosts("clawtrol.internal, 10.0.0.5")[0])
    for host in ("clawtrol.example.com", "CLAWTROL.example.com:443", "clawtrol.example.com.", "localhost:3001",
                 "127.0.0.1", "127.0.0.2:80", "[::1]:3001", "app.localhost", "clawtrol.internal:8080", "10.0.0.5"):
        assert policy.allows(host), host
    for host in ("rebind.attacker.example", "clawtrol.example.com.evil.example", "evil.example:3001", "",
                 None, "10.0.0.6", "[::2]", "localhost.evil.example", "clawtrol.internal@evil.example",
                 "a b", "clawtrol.example.com/x", "[::1"):
        assert not policy.allows(host), host
    assert hostname_of("[0:0::1]:80") == "::1"


async def test_foreign_host_is_refused_and_health_is_exempt(app, admin, api_token):
    token = await api_token("member")
    client = app.test_client()
    foreign = {"Host": "rebind.attacker.example:3001"}
    page = await admin.get("/board", headers=foreign)
    assert page.status_code == 400 and "does not answer to the host name" in await page.get_data(as_text=True)
    api = await client.get("/api/tasks", headers={**foreign, **bearer(token)})
    assert api.status_code == 400 and (await api.get_json())["code"] == "HOST"
    assert (await client.get("/login", headers=foreign)).status_code == 400
    health = await client.get("/api/health", headers=foreign)
    assert health.status_code == 200
    # No credentials are looked at for a foreign Host: junk there does not count against the client.
    limiter = services_of(app).token_failures
    for _ in range(25):
        assert (await client.get("/api/auth/me", headers={**foreign, **bearer("mct_junk")})).status_code == 400
    assert limiter.retry_after("unknown") == 0
    # Loopback names and PUBLIC_URL's host are ours.
    for host in ("localhost:3001", "127.0.0.1:3001", "[::1]:3001", "board.localhost"):
        assert (await client.get("/api/auth/me", headers={"Host": host, **bearer(token)})).status_code == 200, host


async def test_rebinding_page_cannot_use_a_signed_in_session(app, admin):
    """Host and Origin both rebind.attacker.example (what a rebound page sends): refused before any write."""
    rebound = {"Host": "rebind.attacker.example:3001", "Origin": "http://rebind.attacker.example:3001",
               **SAME_ORIGIN}
    response = await admin.post("/api/tokens", json={"name": "stolen", "role": "admin"}, headers=rebound)
    assert response.status_code == 400
    assert [t for t in await services_of(app).db.all("tokens.list") if t["name"] == "stolen"] == []


async def test_foreign_host_websocket_is_refused(app, admin, api_token):
    token = await api_token("viewer")
    with pytest.raises(WebsocketResponseError) as refused:
        async with app.test_client().websocket("/ws", headers={"Host": "rebind.attacker.example",
                                                               **bearer(token)}) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 400
    with pytest.raises(WebsocketResponseError) as refused:
        async with admin.client.websocket("/ws", headers={"Host": "rebind.attacker.example",
                                                          "Origin": "http://rebind.attacker.example"}) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 400


@pytest.fixture
async def hosts_app(database_url, tmp_path):
    app = build(database_url, tmp_path, ALLOWED_HOSTS="clawtrol.internal,192.0.2.10")
    async with app.test_app():
        yield app


async def test_allowed_hosts_admits_a_listed_host_and_its_origin(hosts_app):
    admin = await sign_in_as(hosts_app, "ada", "admin")
    client = hosts_app.test_client()
    name = hosts_app.config["QUART_AUTH_COOKIE_NAME"]
    client.set_cookie("clawtrol.internal", name, generate_auth_token(client, admin.raw_session), path="/",
                      domain="clawtrol.internal")
    listed = {"Host": "clawtrol.internal:3001", "X-CSRF-Token": admin.csrf_token}
    assert (await client.get("/board", headers=listed)).status_code == 200
    ok = await client.post("/api/tasks", json={"title": "from the internal name"},
                           headers={**listed, "Origin": "http://clawtrol.internal:3001", **SAME_ORIGIN})
    assert ok.status_code == 201
    # PUBLIC_URL's origin stays ours; another listed host's origin is not this request's, so it is not.
    ok = await client.post("/api/tasks", json={"title": "public origin"},
                           headers={**listed, "Origin": "http://localhost:3001"})
    assert ok.status_code == 201
    cross = await client.post("/api/tasks", json={"title": "sibling"},
                              headers={**listed, "Origin": "http://192.0.2.10:3001"})
    assert cross.status_code == 403 and (await cross.get_json())["code"] == "CSRF"
    anonymous = hosts_app.test_client()
    assert (await anonymous.get("/login", headers={"Host": "192.0.2.10"})).status_code == 200
    assert (await anonymous.get("/login", headers={"Host": "clawtrol.example"})).status_code == 400


# --- the dev sign-in ---------------------------------------------------------------------------------------

LOOPBACK = {"client": ("127.0.0.1", 50000)}


def dev_app_for(database_url, tmp_path, **overrides):
    return build(database_url, tmp_path, CLAWTROL_ENV="development", CLAWTROL_DEV_LOGIN="true",
                 GITHUB_CLIENT_ID="", GITHUB_CLIENT_SECRET="", **overrides)


async def test_dev_sign_in_through_a_rebinding_host_or_origin_is_refused(database_url, tmp_path):
    app = dev_app_for(database_url, tmp_path, ALLOWED_HOSTS="devbox.lan")
    async with app.test_app():
        db = services_of(app).db
        client = app.test_client()
        attempts = [
            # a rebound page: its own name as Host and Origin (the browser calls that same-origin)
            ({"Host": "rebind.attacker.example:3001", "Origin": "http://rebind.attacker.example:3001"}, 400),
            # a loopback Host with a foreign Origin, even claiming same-origin
            ({"Host": "localhost:3001", "Origin": "http://rebind.attacker.example:3001"}, 403),
            ({"Host": "127.0.0.1:3001", "Origin": "null"}, 404),
            # a host the operator listed is fine for the app, but the dev sign-in wants loopback only
            ({"Host": "devbox.lan:3001", "Origin": "http://devbox.lan:3001"}, 404),
            ({"Host": "devbox.lan:3001"}, 404),
        ]
        for headers, status in attempts:
            response = await client.post("/auth/dev-login", form={"login": "mallory"}, scope_base=LOOPBACK,
                                         headers={**SAME_ORIGIN, **headers})
            assert response.status_code == status, headers
            assert "Set-Cookie" not in response.headers or "clawtrol_session=" not in response.headers["Set-Cookie"]
        assert await db.all("users.list") == []
        # From a loopback page to a loopback Host it works.
        ok = await client.post("/auth/dev-login", form={"login": "dev"}, scope_base=LOOPBACK,
                               headers={**SAME_ORIGIN, "Host": "127.0.0.1:3001", "Origin": "http://127.0.0.1:3001"})
        assert ok.status_code == 302
        assert [u["login"] for u in await db.all("users.list")] == ["dev"]


async def test_refused_host_is_logged_with_the_client(app, caplog):
    caplog.set_level("WARNING", logger="clawtrol.auth.principal")
    await app.test_client().get("/board", headers={"Host": "rebind.attacker.example"},
                                scope_base={"client": ("192.0.2.55", 1)})
    record = next(r for r in caplog.records if r.getMessage() == "refused" and r.action == "host")
    assert record.ip == "192.0.2.55" and "rebind.attacker.example" in record.reason

