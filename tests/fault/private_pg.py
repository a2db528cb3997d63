"""A private, throw-away PostgreSQL cluster that a test may stop and start at will.

The shared server at 127.0.0.1:5432 serves other test runs, so the outage test never touches it: it runs
`initdb` into a temporary directory, serves on a free loopback port (trust auth, its own socket directory)
and is removed afterwards. Run as root, the server binaries run as the `postgres` OS user (PostgreSQL refuses
to run as root), which is why the directory lives under /tmp rather than pytest's root-only tmp dir.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..helpers import free_port

SERVER_USER = "postgres"


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl (Debian/Ubuntu layout)."""
    candidates = [Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
                  if Path(path).with_name("initdb").is_file()]
    return max(candidates, key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()],
               default=None)


class PrivateCluster:
    def __init__(self, bin_dir: Path, base: Path):
        self.bin_dir = bin_dir
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                               f"{result.stderr}\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.base}'\nfsync = off\nmax_connections = 100\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` disconnects every client and rolls back open transactions."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextlib.contextmanager
def private_cluster(bin_dir: Path) -> Iterator[PrivateCluster]:
    """An initialised, started cluster; stopped and deleted afterwards."""
    base = Path(tempfile.mkdtemp(prefix="clawtrol-fault-pg-"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(base, account.pw_uid, account.pw_gid)
        cluster = PrivateCluster(bin_dir, base)
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running:
                cluster.stop("immediate")
    finally:
        shutil.rmtree(base, ignore_errors=True)
