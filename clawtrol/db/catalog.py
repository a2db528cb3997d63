"""Named SQL queries loaded from `sql/queries/<area>.sql`.

Each file holds queries in the aiosql style::

    -- name: get_by_id
    -- Optional description lines.
    SELECT ... WHERE id = :id

A condition several queries of a file share is written once as a fragment and pulled in where a query says
so::

    -- fragment: board_filter
    (CAST(:project_id AS TEXT) IS NULL OR t.project_id = :project_id) AND ...

    -- name: board_counts
    SELECT t.status, count(*) AS n FROM tasks t
    WHERE
    -- include: board_filter
    GROUP BY t.status

(a fragment is not a query; it is defined before the queries that include it). A query is addressed as
`<area>.<name>` (e.g. `users.get_by_id`). The same DML text runs on SQLite and
PostgreSQL, so the files stick to the common subset (see README, "Writing SQL"). The few statements that
exist on one database only (advisory locks, NOTIFY) live in `sql/queries/<dialect>/<area>.sql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from typing import Any

_NAME_LINE = re.compile(r"^--\s*(name|fragment):\s*([a-z_][a-z0-9_]*)\s*$")
_INCLUDE_LINE = re.compile(r"^--\s*include:\s*([a-z_][a-z0-9_]*)\s*$")
# :param, but not PostgreSQL casts (::type) nor times inside string literals we never write.
_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")
# A list parameter: `x IN :ids` / `x NOT IN :ids` (the caller passes a list).
_IN_LIST = re.compile(r"\b(NOT\s+)?IN\s+:([a-zA-Z_]\w*)", re.IGNORECASE)
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|WITH\b.*\b(INSERT|UPDATE|DELETE)\b)",
                    re.IGNORECASE | re.DOTALL)
EMPTY_LIST = "(SELECT NULL WHERE 1 = 0)"  # `x IN ()` is not SQL; this is the empty list on SQLite


@dataclass(frozen=True)
class NamedQuery:
    name: str
    sql: str
    params: frozenset[str]


@dataclass(frozen=True)
class Statement:
    """A named query in the form its driver takes, prepared once when the catalog loads: SQLite keeps the
    `:name` placeholders (sqlite3 binds them from a dict), PostgreSQL gets `$1, $2, …` in `order`, and
    `IN :ids` becomes `= ANY($n)` with the list as one array parameter."""

    name: str
    dialect: str
    text: str
    params: frozenset[str]
    order: tuple[str, ...] = ()
    lists: frozenset[str] = frozenset()
    writes: bool = False  # it changes the database (SQLite runs it on the writer, in a transaction)

    @classmethod
    def prepare(cls, query: NamedQuery, dialect: str) -> "Statement":
        lists = frozenset(match.group(2) for match in _IN_LIST.finditer(query.sql))
        writes = bool(_WRITE.match(query.sql))
        if dialect == "sqlite":
            return cls(query.name, dialect, query.sql, query.params, lists=lists, writes=writes)
        sql = _IN_LIST.sub(lambda m: f"{'<> ALL' if m.group(1) else '= ANY'}(:{m.group(2)})", query.sql)
        order: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"
        return cls(query.name, dialect, _PARAM.sub(number, sql), query.params, tuple(order), lists, writes)

    def bind(self, values: dict[str, Any]) -> tuple[str, Any]:
        """(SQL text, arguments) for the driver: a dict for sqlite3, a list for asyncpg."""
        if self.dialect != "sqlite":
            return self.text, [list(values[n]) if n in self.lists else values[n] for n in self.order]
        if not self.lists:
            return self.text, values
        sql, bound = self.text, dict(values)
        for name in self.lists:
            items = list(bound.pop(name))
            names = [f"{name}__{i}" for i in range(len(items))]
            bound.update(zip(names, items))
            expanded = "(" + ", ".join(":" + n for n in names) + ")" if names else EMPTY_LIST
            sql = re.sub(rf":{name}\b", expanded, sql)
        return sql, bound


class QueryCatalog:
    def __init__(self, queries: dict[str, Statement]):
        self._queries = queries

    def __getitem__(self, name: str) -> Statement:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in sql/queries") from None

    def names(self) -> set[str]:
        return set(self._queries)

    @classmethod
    def load(cls, directory: Path, dialect: str) -> "QueryCatalog":
        queries: dict[str, Statement] = {}
        for path in sorted(directory.glob("*.sql")) + sorted((directory / dialect).glob("*.sql")):
            for query in parse_file(path.stem, path.read_text()):
                if query.name in queries:
                    raise ValueError(f"{path}: query {query.name!r} is defined twice")
                queries[query.name] = Statement.prepare(query, dialect)
        return cls(queries)


def parse_file(area: str, source: str) -> list[NamedQuery]:
    queries: list[NamedQuery] = []
    fragments: dict[str, list[str]] = {}
    kind, name, body = None, None, []

    def sql_lines(lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            included = _INCLUDE_LINE.match(line.strip())
            if included:
                if included.group(1) not in fragments:
                    raise ValueError(f"sql/queries/{area}.sql: {name!r} includes {included.group(1)!r}, "
                                     "which is not a fragment defined above it")
                out.extend(fragments[included.group(1)])
            elif not line.lstrip().startswith("--"):
                out.append(line)
        return out

    def flush() -> None:
        if name is None:
            return
        if kind == "fragment":
            fragments[name] = "\n".join(sql_lines(body)).strip("\n").splitlines()
            return
        sql = "\n".join(sql_lines(body)).strip().rstrip(";")
        if not sql:
            raise ValueError(f"sql/queries/{area}.sql: query {name!r} has no SQL")
        if "%" in sql:
            # The databases SQLite backend formats the query text with %, so a literal % breaks it.
            raise ValueError(f"sql/queries/{area}.sql: {name!r} contains '%'; pass LIKE patterns as parameters")
        queries.append(NamedQuery(f"{area}.{name}", sql, frozenset(_PARAM.findall(sql))))

    for line in source.splitlines():
        match = _NAME_LINE.match(line.strip())
        if match:
            flush()
            kind, name, body = match.group(1), match.group(2), []
        elif name is not None:
            body.append(line)
    flush()
    return queries
