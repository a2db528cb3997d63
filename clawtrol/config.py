"""Configuration from the environment (and an optional `.env` file), validated once at start.

Every problem is collected and reported together, one line per variable, so an operator can fix a
deployment in one pass instead of one restart per mistake. Each command validates what it uses: `serve`
everything (`load_config`), the maintenance commands only where the data is (`load_database_config`), so
`db upgrade` or `import-sqlite` run in production without, say, the GitHub OAuth settings.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .hosts import parse_allowed_hosts
from .proxy import parse_trusted_proxies

ENVIRONMENTS = ("development", "production")
MIN_SECRET_LENGTH = 32
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SIGNUP_ROLES = ("viewer", "member")  # DEFAULT_ROLE choices; admins are named with ADMIN_LOGINS
GITHUB_LOGIN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,38}$")
SESSION_KEY = re.compile(r"^[^\s/]{1,200}$")  # an OpenClaw session key, e.g. agent:cso:main
DEFAULT_MAIN_SESSION = "agent:cso:main"  # the original's fixed target of POST /api/message


class ConfigError(Exception):
    """Raised with every configuration problem found; `problems` holds one line per variable."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DatabaseConfig:
    """What the maintenance commands (db upgrade, token create, import-sqlite) use: the database, the data
    directory and the log level."""
    database_url: str
    data_dir: Path
    log_level: str

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@dataclass(frozen=True)
class Config(DatabaseConfig):
    """Everything the app (`clawtrol serve`) uses."""
    env: str
    session_secret: str
    public_url: str
    host: str
    port: int
    workers: int
    github_client_id: str
    github_client_secret: str
    github_url: str
    github_api_url: str
    allowed_org: str
    gateway_url: str
    gateway_token: str
    dev_login: bool
    # Who may sign up and with what role (see clawtrol/auth/signup.py).
    default_role: str = "viewer"
    allowed_users: frozenset[str] = frozenset()
    admin_logins: frozenset[str] = frozenset()
    # Behind a reverse proxy, the Host names we answer to, idle sign-out (proxy.py, hosts.py, auth/sessions.py).
    trusted_proxies: tuple = ()
    allowed_hosts: frozenset[str] = frozenset()
    session_idle_hours: int = 12
    # The main agent session POST /api/message talks to (clawtrol/agents/main_session.py).
    main_session_key: str = DEFAULT_MAIN_SESSION
    # A run in progress with no activity for this long is stalled (clawtrol/agents/health.py).
    stall_minutes: int = 10

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


def _parse_bool(name: str, raw: str, problems: list[str]) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    problems.append(f"{name}: expected true or false, got {raw!r}")
    return False


def _parse_int(name: str, raw: str, low: int, high: int, problems: list[str]) -> int:
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}: expected a whole number, got {raw!r}")
        return low
    if not low <= value <= high:
        problems.append(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _parse_logins(name: str, raw: str, problems: list[str]) -> frozenset[str]:
    """A comma-separated list of GitHub logins, lowercased (GitHub logins are case-insensitive)."""
    logins = set()
    for item in raw.split(","):
        login = item.strip().lstrip("@").lower()
        if not login:
            continue
        if not GITHUB_LOGIN.match(login):
            problems.append(f"{name}: {item.strip()!r} is not a GitHub login (letters, digits and dashes, "
                            "comma-separated)")
            continue
        logins.add(login)
    return frozenset(logins)


def normalize_database_url(raw: str, data_dir: Path) -> tuple[str, str | None]:
    """Return (url for the `databases` library, problem or None).

    Accepts sqlite:///relative.db, sqlite:////absolute.db, postgres://, postgresql:// and
    postgresql+asyncpg:// URLs; an empty value means the SQLite file under the data directory.
    """
    if not raw:
        return f"sqlite:///{(data_dir / 'clawtrol.db').resolve()}", None
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        path = raw.split(":///", 1)[1] if ":///" in raw else ""
        if not path or path.startswith(":memory:"):
            return raw, "DATABASE_URL: SQLite needs a file path, e.g. sqlite:///data/clawtrol.db"
        return f"sqlite:///{path}", None
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        if not parts.hostname and "host=" not in parts.query:
            return raw, "DATABASE_URL: PostgreSQL URL has no host, e.g. postgresql://user:pass@db:5432/clawtrol"
        if not parts.path.strip("/"):
            return raw, "DATABASE_URL: PostgreSQL URL has no database name after the host"
        return "postgresql://" + raw.split("://", 1)[1], None
    shown = f"{scheme}://…" if scheme else repr(raw[:40])
    return raw, f"DATABASE_URL: unsupported or malformed URL {shown}; use sqlite:///PATH or postgresql://USER:PASS@HOST/DB"


def _dev_session_secret(data_dir: Path) -> str:
    """A development secret kept in the data directory so sign-ins survive restarts."""
    path = data_dir / ".session_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


class _Settings:
    """The environment layered over the `.env` file, read a variable at a time, with the problems found."""

    def __init__(self, environ: dict[str, str] | None, env_file: str | Path | None):
        self.source: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            self.source.update({k: v or "" for k, v in dotenv_values(env_file).items()})
        self.source.update(os.environ if environ is None else environ)
        self.problems: list[str] = []

    def get(self, name: str, default: str = "") -> str:
        return (self.source.get(name) or default).strip()

    def problem(self, line: str) -> None:
        self.problems.append(line)

    def integer(self, name: str, default: str, low: int, high: int) -> int:
        return _parse_int(name, self.get(name, default), low, high, self.problems)

    def flag(self, name: str) -> bool:
        return _parse_bool(name, self.get(name), self.problems)

    def logins(self, name: str) -> frozenset[str]:
        return _parse_logins(name, self.get(name), self.problems)

    def check(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


# --- one function per group of settings, each returning Config fields ------------------------------------

def _environment(settings: _Settings) -> str:
    env = settings.get("CLAWTROL_ENV", "production").lower()
    if env not in ENVIRONMENTS:
        settings.problem(f"CLAWTROL_ENV: must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
        return "production"
    return env


def _storage(settings: _Settings) -> dict:
    data_dir = Path(settings.get("CLAWTROL_DATA_DIR", "./data"))
    database_url, problem = normalize_database_url(settings.get("DATABASE_URL"), data_dir)
    if problem:
        settings.problem(problem)
    return {"database_url": database_url, "data_dir": data_dir}


def _log_level(settings: _Settings) -> str:
    log_level = settings.get("LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        settings.problem(f"LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    return log_level


def _server(settings: _Settings, database_url: str) -> dict:
    port = settings.integer("PORT", "3001", 1, 65535)
    host = settings.get("HOST", "127.0.0.1")
    workers = settings.integer("CLAWTROL_WORKERS", "1", 1, 64)
    if workers > 1 and database_url.startswith("sqlite"):
        settings.problem("CLAWTROL_WORKERS: more than one worker needs PostgreSQL (live updates cross "
                         "processes through LISTEN/NOTIFY); use 1 with SQLite")
    public_url = settings.get("PUBLIC_URL", f"http://localhost:{port}").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        settings.problem(f"PUBLIC_URL: must be an http(s) base URL such as https://clawtrol.example.com, "
                         f"got {public_url!r}")
    return {"host": host, "port": port, "workers": workers, "public_url": public_url}


def _session_secret(settings: _Settings, env: str) -> str:
    """SESSION_SECRET as given ("" in development without one: a kept one is generated after validation)."""
    session_secret = settings.get("SESSION_SECRET")
    if env == "production" and not session_secret:
        settings.problem("SESSION_SECRET: required in production; generate one with "
                         "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    elif session_secret and len(session_secret) < MIN_SECRET_LENGTH:
        settings.problem(f"SESSION_SECRET: must be at least {MIN_SECRET_LENGTH} characters, "
                         f"got {len(session_secret)}")
    return session_secret


def _dev_login(settings: _Settings, env: str, host: str) -> bool:
    dev_login = settings.flag("CLAWTROL_DEV_LOGIN")
    if dev_login and env != "development":
        settings.problem("CLAWTROL_DEV_LOGIN: the local dev sign-in only works with CLAWTROL_ENV=development")
    if dev_login and host not in LOOPBACK_HOSTS:
        settings.problem(f"CLAWTROL_DEV_LOGIN: the local dev sign-in needs HOST on loopback (127.0.0.1), "
                         f"got {host!r}")
    return dev_login


def _url(settings: _Settings, name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = settings.get(name, default).rstrip("/")
    if urlsplit(value).scheme not in schemes or not urlsplit(value).netloc:
        settings.problem(f"{name}: must be a {' or '.join(schemes)} URL, got {value!r}")
    return value


def _github(settings: _Settings, env: str, public_url: str) -> dict:
    client_id = settings.get("GITHUB_CLIENT_ID")
    client_secret = settings.get("GITHUB_CLIENT_SECRET")
    if env == "production":
        for name, value in (("GITHUB_CLIENT_ID", client_id), ("GITHUB_CLIENT_SECRET", client_secret)):
            if not value:
                settings.problem(f"{name}: required in production (register an OAuth app; callback "
                                 f"{public_url}/api/auth/callback)")
    return {"github_client_id": client_id, "github_client_secret": client_secret,
            "github_url": _url(settings, "GITHUB_URL", "https://github.com", ("http", "https")),
            "github_api_url": _url(settings, "GITHUB_API_URL", "https://api.github.com", ("http", "https"))}


def _gateway(settings: _Settings) -> dict:
    return {"gateway_url": _url(settings, "GATEWAY_URL", "ws://127.0.0.1:18789", ("ws", "wss")),
            "gateway_token": settings.get("GATEWAY_TOKEN")}


def _signup(settings: _Settings) -> dict:
    """Who may sign up and with what role: least privilege unless the operator chose more (DESIGN §4)."""
    allowed_org = settings.get("ALLOWED_ORG")
    default_role = settings.get("DEFAULT_ROLE", "member" if allowed_org else "viewer").lower()
    if default_role not in SIGNUP_ROLES:
        settings.problem(f"DEFAULT_ROLE: must be viewer or member, got {default_role!r} "
                         "(name admins with ADMIN_LOGINS)")
    return {"allowed_org": allowed_org, "default_role": default_role,
            "allowed_users": settings.logins("ALLOWED_USERS"), "admin_logins": settings.logins("ADMIN_LOGINS")}


def _proxy(settings: _Settings) -> dict:
    """Reverse proxy, Host names, idle sessions (clawtrol/proxy.py, clawtrol/hosts.py, clawtrol/auth/sessions.py)."""
    trusted_proxies, bad = parse_trusted_proxies(settings.get("TRUSTED_PROXIES"))
    if bad:
        settings.problem(f"TRUSTED_PROXIES: not an IP address or CIDR network: {', '.join(map(repr, bad))}; "
                         "list the proxy's addresses, e.g. 127.0.0.1,172.16.0.0/12")
    allowed_hosts, bad = parse_allowed_hosts(settings.get("ALLOWED_HOSTS"))
    if bad:
        settings.problem(f"ALLOWED_HOSTS: not a host name or IP address: {', '.join(map(repr, bad))}; "
                         "list bare names, e.g. clawtrol.internal,10.0.0.5 (no scheme, port or path)")
    return {"trusted_proxies": trusted_proxies, "allowed_hosts": allowed_hosts,
            "session_idle_hours": settings.integer("SESSION_IDLE_HOURS", "12", 1, 168)}


def _agents(settings: _Settings) -> dict:
    main_session_key = settings.get("MAIN_SESSION_KEY", DEFAULT_MAIN_SESSION)
    if not SESSION_KEY.match(main_session_key):
        settings.problem(f"MAIN_SESSION_KEY: an OpenClaw session key such as {DEFAULT_MAIN_SESSION} (no spaces "
                         f"or slashes, at most 200 characters), got {main_session_key[:60]!r}")
    return {"main_session_key": main_session_key,
            "stall_minutes": settings.integer("STALL_MINUTES", "10", 1, 1440)}


# --- per command ----------------------------------------------------------------------------------------

def load_config(environ: dict[str, str] | None = None, env_file: str | Path | None = ".env") -> Config:
    """Everything `serve` needs, from `environ` (default os.environ) layered over `env_file` if it exists."""
    settings = _Settings(environ, env_file)
    env = _environment(settings)
    storage = _storage(settings)
    server = _server(settings, storage["database_url"])
    session_secret = _session_secret(settings, env)
    fields = {"env": env, **storage, **server, "dev_login": _dev_login(settings, env, server["host"]),
              **_github(settings, env, server["public_url"]), **_gateway(settings), **_signup(settings),
              **_proxy(settings), **_agents(settings), "log_level": _log_level(settings)}
    settings.check()
    return Config(session_secret=session_secret or _dev_session_secret(storage["data_dir"]), **fields)


def load_database_config(environ: dict[str, str] | None = None,
                         env_file: str | Path | None = ".env") -> DatabaseConfig:
    """What `db upgrade`, `token create` and `import-sqlite` need (DATABASE_URL, CLAWTROL_DATA_DIR, LOG_LEVEL),
    read like load_config; nothing else is read, so they run where the app's other settings are absent."""
    settings = _Settings(environ, env_file)
    fields = {**_storage(settings), "log_level": _log_level(settings)}
    settings.check()
    return DatabaseConfig(**fields)
