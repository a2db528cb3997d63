from .catalog import QueryCatalog
from .database import Database, DatabaseUnavailable, UniqueViolation

__all__ = ["Database", "DatabaseUnavailable", "QueryCatalog", "UniqueViolation", "current_db"]


def current_db() -> Database:
    """The Database of the running app (inside a request or app context)."""
    from quart import current_app

    return current_app.extensions["db"]
