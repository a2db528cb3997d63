from .catalog import QueryCatalog
from .database import Database, DatabaseUnavailable, UniqueViolation

__all__ = ["Database", "DatabaseUnavailable", "QueryCatalog", "UniqueViolation"]

