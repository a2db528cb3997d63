"""Where the project's non-Python resources live: templates/, static/ and sql/ beside the package in a
checkout, or under CLAWTROL_HOME when the package is installed elsewhere (the Docker image)."""

import os
from pathlib import Path

ROOT = Path(os.environ.get("CLAWTROL_HOME") or Path(__file__).resolve().parent.parent)
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
SQL_QUERIES = ROOT / "sql" / "queries"
SQL_MIGRATIONS = ROOT / "sql" / "migrations"
