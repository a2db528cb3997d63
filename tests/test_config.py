"""Configuration: validated at start, one clear line per problem, no traceback."""

from __future__ import annotations

import pytest

from clawtrol.config import ConfigError, load_config, load_database_config

from .conftest import make_environ
from .helpers import run_cli


def problems_of(load, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(environ, env_file=None)
    return caught.value.problems


def problems(environ: dict[str, str]) -> list[str]:
    return problems_of(load_config, environ)


def names(reported: list[str]) -> list[str]:
    return [line.split(":", 1)[0] for line in reported]


def test_production_defaults_are_valid(tmp_path):
    config = load_config(make_environ("", tmp_path), env_file=None)
    assert config.is_sqlite and config.database_url.endswith("clawtrol.db")
    assert config.port == 3001 and config.host == "127.0.0.1" and config.workers == 1
    assert not config.secure_cookies


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url", "postgresql://", "postgresql://db:5432/", "sqlite://"])
def test_malformed_database_url(tmp_path, url):
    [problem] = problems(make_environ(url, tmp_path))
    assert problem.startswith("DATABASE_URL: ")


def test_postgres_url_forms_are_normalized(tmp_path):
    for url in ("postgres://u:p@db/clawtrol", "postgresql+asyncpg://u:p@db/clawtrol"):
        assert load_config(make_environ(url, tmp_path), env_file=None).database_url == "postgresql://u:p@db/clawtrol"


def test_every_problem_is_reported_at_once(tmp_path):
    environ = make_environ("mysql://x", tmp_path, SESSION_SECRET="short", PORT="http", GITHUB_CLIENT_ID="",
                           GATEWAY_URL="http://gw", CLAWTROL_WORKERS="2")
    reported = problems(environ)
    assert names(reported) == ["DATABASE_URL", "PORT", "SESSION_SECRET", "GITHUB_CLIENT_ID", "GATEWAY_URL"]
    assert "at least 32 characters" in reported[2]


def test_sqlite_refuses_several_workers(tmp_path):
    [problem] = problems(make_environ("", tmp_path, CLAWTROL_WORKERS="2"))
    assert problem.startswith("CLAWTROL_WORKERS: more than one worker needs PostgreSQL")


def test_dev_login_needs_development_mode_and_loopback(tmp_path):
    assert problems(make_environ("", tmp_path, CLAWTROL_DEV_LOGIN="1"))[0].startswith("CLAWTROL_DEV_LOGIN:")
    environ = make_environ("", tmp_path, CLAWTROL_ENV="development", CLAWTROL_DEV_LOGIN="1", HOST="0.0.0.0")
    assert "loopback" in problems(environ)[0]
    environ["HOST"] = "127.0.0.1"
    assert load_config(environ, env_file=None).dev_login


def test_development_mode_generates_and_keeps_a_session_secret(tmp_path):
    environ = {"CLAWTROL_ENV": "development", "CLAWTROL_DATA_DIR": str(tmp_path)}
    first = load_config(environ, env_file=None).session_secret
    assert len(first) >= 32 and load_config(environ, env_file=None).session_secret == first


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4100\nALLOWED_ORG=acme\n")
    config = load_config({**make_environ("", tmp_path), "PORT": "4200"}, env_file=env_file)
    assert config.port == 4200 and config.allowed_org == "acme"


def test_the_maintenance_commands_read_only_where_the_data_is(tmp_path):
    environ = {"DATABASE_URL": "sqlite:///store.db", "CLAWTROL_DATA_DIR": str(tmp_path), "PORT": "http",
               "GITHUB_CLIENT_ID": "", "SESSION_SECRET": "short"}
    config = load_database_config(environ, env_file=None)
    assert config.is_sqlite and config.database_url == "sqlite:///store.db" and config.data_dir == tmp_path
    assert config.log_level == "INFO"
    [problem] = problems_of(load_database_config, {**environ, "DATABASE_URL": "mysql://x/y"})
    assert problem.startswith("DATABASE_URL: ")
    assert names(problems({**environ, "CLAWTROL_ENV": "development"})) == ["PORT", "SESSION_SECRET"]


def test_development_maintenance_commands_write_no_session_secret(tmp_path):
    load_database_config({"CLAWTROL_ENV": "development", "CLAWTROL_DATA_DIR": str(tmp_path)}, env_file=None)
    assert not (tmp_path / ".session_secret").exists()


@pytest.mark.parametrize("command, overrides, expected", [
    (("db", "upgrade"), {"DATABASE_URL": "mongodb://localhost/x"}, "DATABASE_URL: unsupported or malformed URL"),
    (("serve",), {"SESSION_SECRET": "too-short"}, "SESSION_SECRET: must be at least 32 characters"),
])
def test_cli_exits_non_zero_with_a_clear_message(tmp_path, command, overrides, expected):
    environ = {**make_environ("", tmp_path), **overrides}
    result = run_cli(*command, environ=environ)
    assert result.returncode == 2
    assert f"clawtrol: configuration error: {expected}" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_an_unreachable_database_without_traceback(tmp_path):
    environ = make_environ("postgresql://nobody@127.0.0.1:9/none", tmp_path)
    result = run_cli("db", "upgrade", environ=environ)
    assert result.returncode == 3
    assert result.stderr.startswith("clawtrol: cannot reach the database")
    assert "Traceback" not in result.stderr
