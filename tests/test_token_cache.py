"""API tokens resolved once a second (auth/token_cache.py), with revocation and expiry still immediate."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from clawtrol.audit import Actor
from clawtrol.auth import tokens
from clawtrol.auth.token_cache import TokenCache
from clawtrol.clock import iso, utcnow
from clawtrol.services import services_of


async def new_token(app, admin, role: str = "member", days: int | None = None) -> tuple[str, str]:
    actor = Actor(kind="user", label=admin.user["login"], user_id=admin.user["id"])
    row, raw = await tokens.create(services_of(app).db, actor, f"{role}-agent", role, days)
    return row["id"], raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def count_lookups(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = tokens.lookup

    async def counting(db, raw):
        reads.append(raw)
        return await real(db, raw)
    monkeypatch.setattr(tokens, "lookup", counting)
    return reads


async def test_a_stream_of_calls_reads_the_token_once(app, admin, client, monkeypatch):
    _, raw = await new_token(app, admin)
    reads = count_lookups(monkeypatch)
    for _ in range(20):
        assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200
    assert len(reads) == 1


async def test_the_cache_expires_after_its_ttl(app, admin, client, monkeypatch):
    services_of(app).token_cache.ttl = 0.05
    _, raw = await new_token(app, admin)
    reads = count_lookups(monkeypatch)
    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200
    await asyncio.sleep(0.1)
    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200
    assert len(reads) == 2


async def test_a_revoked_token_is_refused_on_the_next_call(app, admin, client):
    token_id, raw = await new_token(app, admin)
    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200  # now cached
    assert (await admin.delete(f"/api/tokens/{token_id}")).status_code == 200
    response = await client.get("/api/auth/me", headers=bearer(raw))
    assert response.status_code == 401


async def test_a_cached_token_is_refused_once_it_expires(app, admin, client, monkeypatch):
    _, raw = await new_token(app, admin, days=1)
    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200  # now cached
    later = utcnow() + timedelta(days=1, minutes=1)
    monkeypatch.setattr(tokens, "now_iso", lambda: iso(later))
    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 401


async def test_failed_lookups_are_not_cached(app, admin, client, monkeypatch):
    reads = count_lookups(monkeypatch)
    for _ in range(3):
        assert (await client.get("/api/auth/me", headers=bearer("mct_not-a-real-token"))).status_code == 401
    assert len(reads) == 3


async def test_a_lookup_that_races_a_revocation_is_not_stored(app, admin):
    """The read started before the revocation committed; its (stale) answer must not be remembered."""
    _, raw = await new_token(app, admin)
    cache = TokenCache()
    db = services_of(app).db
    release = asyncio.Event()

    class SlowDatabase:
        async def one(self, name, **params):
            row = await db.one(name, **params)
            await release.wait()
            return row

    pending = asyncio.create_task(cache.lookup(SlowDatabase(), raw))
    await asyncio.sleep(0)
    cache.clear()  # what the hub does when it applies a revocation
    release.set()
    assert await pending is not None  # this caller got the answer of its time…
    assert cache._rows == {}  # …but nobody after it will


async def test_the_hub_clears_the_cache_when_it_applies_a_revocation(app, admin, client):
    _, raw = await new_token(app, admin)
    assert (await client.get("/api/auth/me", headers=bearer(raw))).status_code == 200
    cache = services_of(app).token_cache
    assert cache._rows
    await services_of(app).hub.revoke("deleted", user_id="someone-else")
    assert cache._rows == {}
