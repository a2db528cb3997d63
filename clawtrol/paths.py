"""Where the project's non-Python resources live (templates/, static/, sql/ beside the package)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
SQL_QUERIES = ROOT / "sql" / "queries"
SQL_MIGRATIONS = ROOT / "sql" / "migrations"
