"""Fixtures for tests of an app connected to the in-process fake gateway. Import them into a test module:

    from .gateway_fixtures import config, connected, fake  # noqa: F401  (the app's `config` is overridden)
"""

from __future__ import annotations

import asyncio

import pytest

from clawtrol.config import load_config

from .helpers import default_gateway
from .conftest import make_environ
from .fake_gateway import FakeGateway


@pytest.fixture
async def fake():
    async with FakeGateway(token="gw-token") as gateway:
        yield gateway


@pytest.fixture
def config(database_url, tmp_path, fake):
    """The app under test talks to the fake gateway."""
    return load_config(make_environ(database_url, tmp_path / "data", GATEWAY_URL=fake.url, GATEWAY_TOKEN="gw-token"),
                       env_file=None)


@pytest.fixture
async def connected(app):
    await default_gateway(app).wait_connected(5)
    return app


async def eventually(check, timeout: float = 5.0):
    """Poll the coroutine function `check` until it returns something truthy; return that."""
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.02)
