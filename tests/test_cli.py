"""Each `clawtrol` command validates the settings it uses: the maintenance commands (db upgrade, token create,
import-sqlite) run in production without the app's sign-in settings; `serve` still refuses to start without them."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import make_environ
from .helpers import run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "original-p1-200.db"
# What only the app uses: the GitHub OAuth app, the session secret, its URLs and the gateway.
APP_ONLY = ("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "SESSION_SECRET", "PUBLIC_URL", "GITHUB_URL",
            "GITHUB_API_URL", "GATEWAY_URL")


def maintenance_environ(database_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """Production with DATABASE_URL and CLAWTROL_DATA_DIR only."""
    environ = {name: value for name, value in make_environ(database_url, data_dir).items() if name not in APP_ONLY}
    assert environ["CLAWTROL_ENV"] == "production"
    return {**environ, **overrides}


def assert_clean(result) -> None:
    assert result.returncode == 0, result.stderr
    assert "configuration error" not in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_runs_in_production_without_the_apps_settings(empty_database_url, tmp_path):
    # PORT is the server's: a value that would stop `serve` does not concern `db upgrade`.
    result = run_cli("db", "upgrade", environ=maintenance_environ(empty_database_url, tmp_path, PORT="http"))
    assert_clean(result)
    assert "migration(s) applied" in result.stdout
    assert not (tmp_path / ".session_secret").exists()


def test_token_create_runs_in_production_without_the_apps_settings(database_url, tmp_path):
    result = run_cli("token", "create", "--name", "ci", "--role", "member",
                     environ=maintenance_environ(database_url, tmp_path))
    assert_clean(result)
    assert result.stdout.startswith("mct_") and "shown only once" in result.stderr


def test_import_sqlite_runs_in_production_without_the_apps_settings(database_url, tmp_path):
    source = tmp_path / "mission-clawtrol.db"
    shutil.copyfile(FIXTURE, source)
    result = run_cli("import-sqlite", str(source), environ=maintenance_environ(database_url, tmp_path))
    assert_clean(result)
    assert "tasks: 200/200" in result.stdout.splitlines() and "verified: checksums match" in result.stdout


def test_the_maintenance_commands_still_check_what_they_use(tmp_path):
    environ = maintenance_environ("mysql://db/clawtrol", tmp_path, LOG_LEVEL="loud")
    for command in (("db", "upgrade"), ("token", "create", "--name", "ci", "--role", "member"),
                    ("import-sqlite", str(FIXTURE))):
        result = run_cli(*command, environ=environ)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.splitlines()
        assert [line.split(":", 2)[2].split(":")[0].strip() for line in lines] == ["DATABASE_URL", "LOG_LEVEL"]
        assert all(line.startswith("clawtrol: configuration error: ") for line in lines), lines
        assert result.stdout == ""


def test_serve_still_refuses_to_start_without_them(empty_database_url, tmp_path):
    result = run_cli("serve", environ=maintenance_environ(empty_database_url, tmp_path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert all(line.startswith("clawtrol: configuration error: ") for line in lines), lines
    for name in ("SESSION_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"):
        assert any(line.startswith(f"clawtrol: configuration error: {name}: required in production")
                   for line in lines), lines
    assert "Traceback" not in result.stderr and result.stdout == ""
