"""The `clawtrol` command: serve, db upgrade, token create, import-sqlite.

Each command loads the configuration it uses: `serve` all of it, the others only where the data is
(config.load_database_config), so they run in production without the app's sign-in settings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import AsyncIterator

from . import __version__, logs
from .config import Config, ConfigError, DatabaseConfig, load_config, load_database_config
from .db import Database, DatabaseUnavailable
from .db import migrations
from .paths import SQL_MIGRATIONS

log = logging.getLogger("clawtrol")


@contextlib.asynccontextmanager
async def connected(config: DatabaseConfig) -> AsyncIterator[Database]:
    """The configured database, connected for the block (a SQLite file's data directory is created first)."""
    if config.is_sqlite:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.open(config.database_url)
    await db.connect()
    try:
        yield db
    finally:
        await db.disconnect()


async def _upgrade(config: DatabaseConfig) -> list[migrations.Migration]:
    async with connected(config) as db:
        return await migrations.upgrade(db, SQL_MIGRATIONS)


def cmd_db_upgrade(config: DatabaseConfig, args: argparse.Namespace) -> int:
    applied = asyncio.run(_upgrade(config))
    for migration in applied:
        print(f"applied {migration.version:04d}_{migration.name}")
    print("database is up to date" if not applied else f"{len(applied)} migration(s) applied")
    return 0


def event_loop() -> str:
    """uvloop where it is installed (a few per cent more requests/s, measured: README, Performance)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.run import run

    from . import access_log

    from .auth.signup import open_signup_warning

    applied = asyncio.run(_upgrade(config))
    if applied:
        log.info("applied %d migration(s) at start", len(applied))
    hyper = HypercornConfig()
    hyper.bind = [f"[{config.host}]:{config.port}" if ":" in config.host else f"{config.host}:{config.port}"]
    hyper.application_path = "clawtrol.asgi:app"
    # workers=0 runs the server in this process; more spawn that many worker processes.
    hyper.workers = 0 if config.workers == 1 else config.workers
    hyper.graceful_timeout = 10
    hyper.accesslog = logging.getLogger("hypercorn.access")
    hyper.errorlog = logging.getLogger("hypercorn.error")
    hyper.access_log_format = access_log.FORMAT
    hyper.logger_class = access_log.AccessLogger
    hyper.worker_class = event_loop()
    log.info("serving Mission Clawtrol %s on http://%s:%d (%s, %d worker(s))", __version__, config.host,
             config.port, "SQLite" if config.is_sqlite else "PostgreSQL", config.workers)
    if warning := open_signup_warning(config):
        log.warning(warning)
    return run(hyper)


async def _create_token(config: DatabaseConfig, name: str, role: str,
                        expires_in_days: int | None) -> tuple[dict, str]:
    from .audit import Actor
    from .auth import tokens

    async with connected(config) as db:
        actor = Actor(kind="system", label=f"cli:{getpass.getuser()}")
        return await tokens.create(db, actor, *tokens.validate(name, role, expires_in_days))


def cmd_token_create(config: DatabaseConfig, args: argparse.Namespace) -> int:
    from .errors import ApiError

    try:
        token, raw = asyncio.run(_create_token(config, args.name, args.role, args.expires_days))
    except ApiError as error:
        print(f"clawtrol: {error.message}", file=sys.stderr)
        return 2
    print(raw)
    print(f"created token '{token['name']}' ({token['role']}, prefix {token['prefix']}); it is shown only once",
          file=sys.stderr)
    return 0


async def _import(config: DatabaseConfig, path: str) -> None:
    from . import importer

    source, plan = importer.prepare(path)  # a bad source is refused before the target is touched
    try:
        async with connected(config) as db:
            await importer.import_source(db, source, plan, out=lambda line: print(line, flush=True))
    finally:
        source.close()


def cmd_import_sqlite(config: DatabaseConfig, args: argparse.Namespace) -> int:
    from .importer import ImportFailed

    try:
        asyncio.run(_import(config, args.path))
    except ImportFailed as error:
        print(f"clawtrol: import failed: {error}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clawtrol", description="Mission Clawtrol command center.")
    parser.add_argument("--version", action="version", version=f"clawtrol {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations, then serve the app with Hypercorn")
    serve.add_argument("--host", help="address to bind (default $HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default $PORT or 3001)")
    serve.add_argument("--workers", type=int, help="worker processes (default $CLAWTROL_WORKERS or 1)")
    serve.set_defaults(handler=cmd_serve, load_config=load_config)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.set_defaults(handler=cmd_db_upgrade, load_config=load_database_config)

    token = sub.add_parser("token", help="API tokens for agents and scripts")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it (once) on stdout")
    create.add_argument("--name", required=True, help="a label, e.g. ci-agent (the audit log shows it)")
    create.add_argument("--role", required=True, choices=("viewer", "member", "admin"))
    create.add_argument("--expires-days", type=int, help="days until it expires (default: never)")
    create.set_defaults(handler=cmd_token_create, load_config=load_database_config)

    import_sqlite = sub.add_parser("import-sqlite", help="copy a SQLite database (ours or the original's) in")
    import_sqlite.add_argument("path", metavar="PATH", help="the SQLite file, e.g. ~/.openclaw/mission-clawtrol.db")
    import_sqlite.set_defaults(handler=cmd_import_sqlite, load_config=load_database_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Command-line overrides go through the environment so that worker processes see them too.
    for name, value in (("HOST", getattr(args, "host", None)), ("PORT", getattr(args, "port", None)),
                        ("CLAWTROL_WORKERS", getattr(args, "workers", None))):
        if value is not None:
            os.environ[name] = str(value)
    try:
        config = args.load_config()
    except ConfigError as error:
        for problem in error.problems:
            print(f"clawtrol: configuration error: {problem}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    try:
        return args.handler(config, args) or 0
    except DatabaseUnavailable as error:
        print(f"clawtrol: cannot reach the database: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
