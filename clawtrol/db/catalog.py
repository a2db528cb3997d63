"""Named SQL queries loaded from `sql/queries/<area>.sql`.

Each file holds queries in the aiosql style::

    -- name: get_by_id
    -- Optional description lines.
    SELECT ... WHERE id = :id

A query is addressed as `<area>.<name>` (e.g. `users.get_by_id`). The same DML text runs on SQLite and
PostgreSQL, so the files stick to the common subset (see README, "Writing SQL"). The few statements that
exist on one database only (advisory locks, NOTIFY) live in `sql/queries/<dialect>/<area>.sql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$")
# :param, but not PostgreSQL casts (::type) nor times inside string literals we never write.
_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    sql: str
    params: frozenset[str]
    clause: TextClause


class QueryCatalog:
    def __init__(self, queries: dict[str, NamedQuery]):
        self._queries = queries

    def __getitem__(self, name: str) -> NamedQuery:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in sql/queries") from None

    def names(self) -> set[str]:
        return set(self._queries)

    @classmethod
    def load(cls, directory: Path, dialect: str) -> "QueryCatalog":
        queries: dict[str, NamedQuery] = {}
        for path in sorted(directory.glob("*.sql")) + sorted((directory / dialect).glob("*.sql")):
            for query in parse_file(path.stem, path.read_text()):
                if query.name in queries:
                    raise ValueError(f"{path}: query {query.name!r} is defined twice")
                queries[query.name] = query
        return cls(queries)


def parse_file(area: str, source: str) -> list[NamedQuery]:
    queries: list[NamedQuery] = []
    name: str | None = None
    body: list[str] = []

    def flush() -> None:
        if name is None:
            return
        sql = "\n".join(line for line in body if not line.lstrip().startswith("--")).strip().rstrip(";")
        if not sql:
            raise ValueError(f"sql/queries/{area}.sql: query {name!r} has no SQL")
        if "%" in sql:
            # The databases SQLite backend formats the query text with %, so a literal % breaks it.
            raise ValueError(f"sql/queries/{area}.sql: {name!r} contains '%'; pass LIKE patterns as parameters")
        queries.append(NamedQuery(f"{area}.{name}", sql, frozenset(_PARAM.findall(sql)), text(sql)))

    for line in source.splitlines():
        match = _NAME_LINE.match(line.strip())
        if match:
            flush()
            name, body = match.group(1), []
        elif name is not None:
            body.append(line)
    flush()
    return queries
