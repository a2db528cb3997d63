"""Deployment contract: docker-compose.yml, the Dockerfile and .env.example agree with what the app reads,
and a venv built the way the Dockerfile builds it runs the image's CMD and HEALTHCHECK."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

from .conftest import make_environ
from .helpers import PROJECT_ROOT, free_port

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
ENV_EXAMPLE = (PROJECT_ROOT / ".env.example").read_text()


def names_the_app_reads() -> set[str]:
    names = set()
    for path in (PROJECT_ROOT / "clawtrol").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'\bget\("([A-Z][A-Z0-9_]+)"', text))
        names |= set(re.findall(r'environ(?:\.get)?\(\s*"([A-Z][A-Z0-9_]+)"', text))
        names |= set(re.findall(r'environ\.get\(\s*\'([A-Z][A-Z0-9_]+)\'', text))
    return names


def dockerfile_instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_compose_services_healthchecks_volumes_and_ports():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "app"}
    postgres, app = services["postgres"], services["app"]
    assert postgres["image"] == "postgres:16-alpine"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"] and "pgdata" in COMPOSE["volumes"]
    assert app["build"] == "." and app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert app["healthcheck"]["test"] == ["CMD", "python", "-m", "clawtrol.healthcheck"]
    assert any(port.endswith(":3001") for port in app["ports"])
    assert app["restart"] == postgres["restart"] == "unless-stopped"
    assert "host.docker.internal:host-gateway" in app["extra_hosts"]
    assert app["environment"]["GATEWAY_URL"] == "${GATEWAY_URL:-ws://host.docker.internal:18789}"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://clawtrol:${POSTGRES_PASSWORD}@postgres:5432/")


def test_every_variable_the_app_reads_is_wired_and_documented():
    read = names_the_app_reads()
    assert {"DATABASE_URL", "SESSION_SECRET", "GITHUB_CLIENT_ID", "GATEWAY_TOKEN", "PORT"} <= read
    environment = set(COMPOSE["services"]["app"]["environment"])
    image_env = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", " ".join(dockerfile_instructions("ENV"))))
    missing = sorted(read - environment - image_env)
    assert not missing, f"not set by compose or the image: {missing}"
    undocumented = sorted(name for name in read | {"POSTGRES_PASSWORD"} - {"CLAWTROL_HOME"}
                          if not re.search(rf"^#?\s*{name}=", ENV_EXAMPLE, re.M))
    assert not undocumented, f"not in .env.example: {undocumented}"


def test_dockerfile_contract():
    froms = dockerfile_instructions("FROM")
    assert len(froms) == 2 and all("slim" in f for f in froms), "multi-stage, slim runtime"
    python = re.search(r"ARG PYTHON_VERSION=(\d+\.\d+)", DOCKERFILE).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}", "the Python minor CI tests"
    assert any("--constraint constraints.txt" in run for run in dockerfile_instructions("RUN"))
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    user = re.search(r"^USER (\S+)", runtime, re.M).group(1)
    assert user not in ("root", "0")
    assert "EXPOSE 3001" in runtime and 'VOLUME ["/data"]' in runtime
    assert "HOST=0.0.0.0" in runtime and "PORT=3001" in runtime
    assert "COPY tests" not in runtime and "build-essential" not in runtime and "gcc" not in runtime
    healthcheck = dockerfile_instructions("HEALTHCHECK")[0]
    assert "curl" not in healthcheck and "wget" not in healthcheck
    assert json.loads(dockerfile_instructions("CMD")[0]) == ["clawtrol", "serve"]


def test_image_cmd_and_healthcheck_run_from_a_venv_built_like_the_dockerfile(tmp_path, empty_database_url):
    """pip install --constraint constraints.txt . into a fresh venv, resources copied to CLAWTROL_HOME,
    then the CMD serves and the HEALTHCHECK passes (and fails once the server is gone)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("constraints.txt", "pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "clawtrol", source / "clawtrol", ignore=shutil.ignore_patterns("__pycache__"))
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                              "--constraint", "constraints.txt", "."], cwd=source, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    home = tmp_path / "app"
    for name in ("templates", "static", "sql"):
        shutil.copytree(PROJECT_ROOT / name, home / name)
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "CLAWTROL_HOME": str(home),
           **make_environ(empty_database_url, tmp_path / "data", HOST="127.0.0.1", PORT=str(port))}
    cmd = json.loads(dockerfile_instructions("CMD")[0])
    healthcheck = json.loads(dockerfile_instructions("HEALTHCHECK")[0].split("CMD", 1)[1].strip())
    server = subprocess.Popen(cmd, env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(healthcheck, env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "healthcheck never passed"
            time.sleep(0.5)
        # The installed package serves the resources from CLAWTROL_HOME, not from a checkout.
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
            assert "Sign in with GitHub" in page.read().decode()
        assert "site-packages" in subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import clawtrol; print(clawtrol.__file__)"],
            capture_output=True, text=True, cwd=tmp_path).stdout
    finally:
        server.terminate()
        server.communicate(timeout=20)
    assert subprocess.run(healthcheck, env=env, capture_output=True).returncode == 1
