"""Configuration from the environment (and an optional `.env` file), validated once at start.

Every problem is collected and reported together, one line per variable, so an operator can fix a
deployment in one pass instead of one restart per mistake.
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
class Config:
    env: str
    database_url: str
    data_dir: Path
    session_secret: str
    public_url: str
    host: str
    port: int
    workers: int
    log_level: str
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
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

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


def load_config(environ: dict[str, str] | None = None, env_file: str | Path | None = ".env") -> Config:
    """Build a Config from `environ` (default os.environ) layered over `env_file` if it exists."""
    source: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        source.update({k: v or "" for k, v in dotenv_values(env_file).items()})
    source.update(os.environ if environ is None else environ)

    def get(name: str, default: str = "") -> str:
        return (source.get(name) or default).strip()

    problems: list[str] = []

    env = get("CLAWTROL_ENV", "production").lower()
    if env not in ENVIRONMENTS:
        problems.append(f"CLAWTROL_ENV: must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")
        env = "production"

    data_dir = Path(get("CLAWTROL_DATA_DIR", "./data"))
    database_url, problem = normalize_database_url(get("DATABASE_URL"), data_dir)
    if problem:
        problems.append(problem)

    port = _parse_int("PORT", get("PORT", "3001"), 1, 65535, problems)
    host = get("HOST", "127.0.0.1")
    workers = _parse_int("CLAWTROL_WORKERS", get("CLAWTROL_WORKERS", "1"), 1, 64, problems)
    if workers > 1 and database_url.startswith("sqlite"):
        problems.append("CLAWTROL_WORKERS: more than one worker needs PostgreSQL (live updates cross "
                        "processes through LISTEN/NOTIFY); use 1 with SQLite")

    public_url = get("PUBLIC_URL", f"http://localhost:{port}").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"PUBLIC_URL: must be an http(s) base URL such as https://clawtrol.example.com, got {public_url!r}")

    session_secret = get("SESSION_SECRET")
    if env == "production":
        if not session_secret:
            problems.append("SESSION_SECRET: required in production; generate one with "
                            "python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        elif len(session_secret) < MIN_SECRET_LENGTH:
            problems.append(f"SESSION_SECRET: must be at least {MIN_SECRET_LENGTH} characters, got {len(session_secret)}")
    elif session_secret and len(session_secret) < MIN_SECRET_LENGTH:
        problems.append(f"SESSION_SECRET: must be at least {MIN_SECRET_LENGTH} characters, got {len(session_secret)}")

    dev_login = _parse_bool("CLAWTROL_DEV_LOGIN", get("CLAWTROL_DEV_LOGIN"), problems)
    if dev_login and env != "development":
        problems.append("CLAWTROL_DEV_LOGIN: the local dev sign-in only works with CLAWTROL_ENV=development")
    if dev_login and host not in LOOPBACK_HOSTS:
        problems.append(f"CLAWTROL_DEV_LOGIN: the local dev sign-in needs HOST on loopback (127.0.0.1), got {host!r}")

    github_client_id = get("GITHUB_CLIENT_ID")
    github_client_secret = get("GITHUB_CLIENT_SECRET")
    if env == "production" and not (github_client_id and github_client_secret):
        for name, value in (("GITHUB_CLIENT_ID", github_client_id), ("GITHUB_CLIENT_SECRET", github_client_secret)):
            if not value:
                problems.append(f"{name}: required in production (register an OAuth app; callback "
                                f"{public_url}/api/auth/callback)")

    urls = {}
    for name, default, schemes in (
        ("GITHUB_URL", "https://github.com", ("http", "https")),
        ("GITHUB_API_URL", "https://api.github.com", ("http", "https")),
        ("GATEWAY_URL", "ws://127.0.0.1:18789", ("ws", "wss")),
    ):
        value = get(name, default).rstrip("/")
        if urlsplit(value).scheme not in schemes or not urlsplit(value).netloc:
            problems.append(f"{name}: must be a {' or '.join(schemes)} URL, got {value!r}")
        urls[name] = value

    # Sign-up policy: least privilege unless the operator chose more (DESIGN §4).
    allowed_org = get("ALLOWED_ORG")
    default_role = get("DEFAULT_ROLE", "member" if allowed_org else "viewer").lower()
    if default_role not in SIGNUP_ROLES:
        problems.append(f"DEFAULT_ROLE: must be viewer or member, got {default_role!r} "
                        "(name admins with ADMIN_LOGINS)")
    allowed_users = _parse_logins("ALLOWED_USERS", get("ALLOWED_USERS"), problems)
    admin_logins = _parse_logins("ADMIN_LOGINS", get("ADMIN_LOGINS"), problems)

    # Reverse proxy, Host names, idle sessions (clawtrol/proxy.py, clawtrol/hosts.py, clawtrol/auth/sessions.py).
    trusted_proxies, bad = parse_trusted_proxies(get("TRUSTED_PROXIES"))
    if bad:
        problems.append(f"TRUSTED_PROXIES: not an IP address or CIDR network: {', '.join(map(repr, bad))}; "
                        "list the proxy's addresses, e.g. 127.0.0.1,172.16.0.0/12")
    allowed_hosts, bad = parse_allowed_hosts(get("ALLOWED_HOSTS"))
    if bad:
        problems.append(f"ALLOWED_HOSTS: not a host name or IP address: {', '.join(map(repr, bad))}; "
                        "list bare names, e.g. clawtrol.internal,10.0.0.5 (no scheme, port or path)")
    session_idle_hours = _parse_int("SESSION_IDLE_HOURS", get("SESSION_IDLE_HOURS", "12"), 1, 168, problems)

    main_session_key = get("MAIN_SESSION_KEY", DEFAULT_MAIN_SESSION)
    if not SESSION_KEY.match(main_session_key):
        problems.append(f"MAIN_SESSION_KEY: an OpenClaw session key such as {DEFAULT_MAIN_SESSION} (no spaces or "
                        f"slashes, at most 200 characters), got {main_session_key[:60]!r}")

    stall_minutes = _parse_int("STALL_MINUTES", get("STALL_MINUTES", "10"), 1, 1440, problems)

    log_level = get("LOG_LEVEL", "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    if problems:
        raise ConfigError(problems)

    if not session_secret:
        session_secret = _dev_session_secret(data_dir)

    return Config(
        env=env,
        database_url=database_url,
        data_dir=data_dir,
        session_secret=session_secret,
        public_url=public_url,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        github_client_id=github_client_id,
        github_client_secret=github_client_secret,
        github_url=urls["GITHUB_URL"],
        github_api_url=urls["GITHUB_API_URL"],
        allowed_org=allowed_org,
        gateway_url=urls["GATEWAY_URL"],
        gateway_token=get("GATEWAY_TOKEN"),
        dev_login=dev_login,
        default_role=default_role,
        allowed_users=allowed_users,
        admin_logins=admin_logins,
        trusted_proxies=trusted_proxies,
        allowed_hosts=allowed_hosts,
        session_idle_hours=session_idle_hours,
        main_session_key=main_session_key,
        stall_minutes=stall_minutes,
    )
