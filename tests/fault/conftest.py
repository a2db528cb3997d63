"""Fixtures of the fault and load suite: app processes, a private PostgreSQL cluster, and the shared real
gateway put back on its feet after a test that kills it."""

from __future__ import annotations

import pytest

from .harness import AppServer
from .private_pg import find_bin_dir, private_cluster


@pytest.fixture
def serve(tmp_path):
    """Factory: start `clawtrol serve` with an environ (see conftest.make_environ); stopped at teardown."""
    servers: list[AppServer] = []

    def start(environ: dict[str, str]) -> AppServer:
        server = AppServer(environ, tmp_path)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def pg_cluster():
    """A private PostgreSQL cluster the test may stop and start (never the shared server)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin; "
                    "install the postgresql server package to run the outage test")
    with private_cluster(bin_dir) as cluster:
        yield cluster


@pytest.fixture
def restored_gateway(real_gateway):
    """The session's real gateway, started again after the test if the test left it down."""
    yield real_gateway
    if not real_gateway.running:
        real_gateway.start()
