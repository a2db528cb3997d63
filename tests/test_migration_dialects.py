"""The SQLite and PostgreSQL migrations build the same schema: the same files, and after each file the same
tables (columns in the same order, with their constraints), primary keys, indexes and views. Only type names and
dialect-only syntax may differ; the few legitimate differences beyond that are listed in ALLOWED, each with its
reason (an entry that is no longer needed fails too, so the list stays true).

The statements are read with regular expressions, conservatively: a statement this file does not understand
fails the test rather than being skipped, except data statements (INSERT, UPDATE, DELETE), which change rows,
not the schema."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clawtrol.db.migrations import discover
from clawtrol.paths import SQL_MIGRATIONS

# Type names by family: what each dialect calls the same kind of value.
TYPES = {
    "integer": "integer", "int": "integer", "bigint": "integer", "smallint": "integer", "boolean": "integer",
    "real": "real", "double precision": "real", "float": "real",
    "text": "text", "jsonb": "text", "json": "text", "varchar": "text",
    "blob": "blob", "bytea": "blob",
    "serial": "integer", "bigserial": "integer",
}
TABLE_CONSTRAINT = re.compile(r"^(primary\s+key|unique|check|foreign\s+key|constraint)\b")

# (what, object): why the dialects legitimately differ there.
ALLOWED = {
    ("column order", "approvals"):
        "0009: SQLite cannot change a primary key in place, so it rebuilds the table with gateway_id first; "
        "PostgreSQL adds gateway_id and close_reason at the end",
    ("column order", "started_sessions"):
        "0009: SQLite rebuilds the table for its new primary key (gateway_id first); PostgreSQL appends gateway_id",
    ("column order", "agent_stalls"):
        "0009: SQLite rebuilds the table for its new primary key (gateway_id first); PostgreSQL appends gateway_id",
    ("index", "idx_approvals_expiry"):
        "0009 lost it on SQLite when it rebuilt approvals (found by this test); 0010 creates it again",
}


@dataclass
class Schema:
    tables: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # name → [(column, type, rest)]
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)                # table → primary key columns
    constraints: dict[str, list[str]] = field(default_factory=dict)               # table → other table constraints
    indexes: dict[str, tuple[str, str, bool]] = field(default_factory=dict)       # name → (table, columns, unique)
    views: dict[str, str] = field(default_factory=dict)                           # name → normalised query


def statements(script: str) -> list[str]:
    """The script's statements, without comments (quotes and $$ bodies respected)."""
    out, buffer, i, quote = [], [], 0, None
    while i < len(script):
        char = script[i]
        if quote:
            end = script.find(quote, i)
            end = len(script) if end < 0 else end + len(quote)
            buffer.append(script[i:end])
            i, quote = end, None
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
        elif char == "'" or script.startswith("$$", i):
            quote = "'" if char == "'" else "$$"
            buffer.append(quote)
            i += len(quote)
        elif char == ";":
            out.append("".join(buffer))
            buffer, i = [], i + 1
        else:
            buffer.append(char)
            i += 1
    out.append("".join(buffer))
    return [" ".join(s.split()) for s in out if s.strip()]


def split_top_level(text: str) -> list[str]:
    parts, depth, start, quoted = [], 0, 0, False
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def normal(text: str) -> str:
    """Lower case, one space, no space inside parentheses, TRUE/FALSE as 1/0."""
    text = " ".join(text.lower().split())
    text = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", text))
    text = re.sub(r"\s*,\s*", ", ", text)
    return re.sub(r"\btrue\b", "1", re.sub(r"\bfalse\b", "0", text))


def column(definition: str, table: str, schema: Schema) -> tuple[str, str, str]:
    """(name, type family, the rest normalised); a column's own PRIMARY KEY becomes the table's key."""
    match = re.match(r'^"?(\w+)"?\s+(double precision|\w+)(\s*\(\s*\d+\s*\))?(.*)$', definition, re.IGNORECASE)
    assert match, f"{table}: cannot read the column definition {definition!r}"
    name, type_name, rest = match.group(1).lower(), match.group(2).lower(), normal(match.group(4))
    assert type_name in TYPES, f"{table}.{name}: unknown type {type_name!r} (add it to TYPES)"
    rest = rest.replace(" autoincrement", "")
    if "primary key" in rest:
        schema.keys[table] = (name,)
        rest = rest.replace("primary key", "")
    if table in schema.keys and name in schema.keys[table] or type_name in ("serial", "bigserial"):
        rest = "not null " + rest.replace("not null", "")  # a key column is never null (SQLite: by our convention)
    return name, TYPES[type_name], " ".join(rest.split())


def create_table(schema: Schema, name: str, body: str) -> None:
    schema.tables[name], schema.constraints[name] = [], []
    schema.keys.pop(name, None)
    items = split_top_level(body)
    for item in items:  # the table's key first: its columns are NOT NULL
        key = re.match(r"^primary\s+key\s*\((.*)\)$", item, re.IGNORECASE)
        if key:
            schema.keys[name] = tuple(c.strip().lower() for c in key.group(1).split(","))
    for item in items:
        if TABLE_CONSTRAINT.match(item.lower()):
            if not item.lower().startswith("primary"):
                schema.constraints[name].append(normal(item))
        else:
            schema.tables[name].append(column(item, name, schema))


def apply(schema: Schema, statement: str) -> str | None:
    """Change `schema` by one statement; return the statement when it is not understood."""
    s = statement
    if re.match(r"^(insert|update|delete)\b", s, re.IGNORECASE):
        return None
    if m := re.match(r"^create table (?:if not exists )?(\w+) \((.*)\)$", s, re.IGNORECASE):
        create_table(schema, m.group(1).lower(), m.group(2))
    elif m := re.match(r"^alter table (\w+) add column (?:if not exists )?(.*)$", s, re.IGNORECASE):
        table = m.group(1).lower()
        schema.tables[table].append(column(m.group(2), table, schema))
    elif m := re.match(r"^alter table (\w+) drop column (?:if exists )?(\w+)$", s, re.IGNORECASE):
        table = m.group(1).lower()
        schema.tables[table] = [c for c in schema.tables[table] if c[0] != m.group(2).lower()]
    elif m := re.match(r"^alter table (\w+) rename to (\w+)$", s, re.IGNORECASE):
        old, new = m.group(1).lower(), m.group(2).lower()
        for part in (schema.tables, schema.keys, schema.constraints):
            if old in part:
                part[new] = part.pop(old)
        for index, (table, columns, unique) in schema.indexes.items():
            if table == old:
                schema.indexes[index] = (new, columns, unique)
    elif m := re.match(r"^alter table (\w+) drop constraint (\w+)_pkey$", s, re.IGNORECASE):
        assert m.group(2).lower() == m.group(1).lower(), s
        schema.keys.pop(m.group(1).lower())
    elif m := re.match(r"^alter table (\w+) add primary key \((.*)\)$", s, re.IGNORECASE):
        table = m.group(1).lower()
        schema.keys[table] = tuple(c.strip().lower() for c in m.group(2).split(","))
        schema.tables[table] = [(n, t, r if n not in schema.keys[table] or "not null" in r else f"not null {r}".strip())
                                for n, t, r in schema.tables[table]]
    elif m := re.match(r"^drop table (?:if exists )?(\w+)$", s, re.IGNORECASE):
        table = m.group(1).lower()
        for part in (schema.tables, schema.keys, schema.constraints):
            part.pop(table, None)
        schema.indexes = {k: v for k, v in schema.indexes.items() if v[0] != table}
    elif m := re.match(r"^create (unique )?index (?:if not exists )?(\w+) on (\w+) (\(.*)$", s, re.IGNORECASE):
        schema.indexes[m.group(2).lower()] = (m.group(3).lower(), normal(m.group(4)), bool(m.group(1)))
    elif m := re.match(r"^drop index (?:if exists )?(\w+)$", s, re.IGNORECASE):
        del schema.indexes[m.group(1).lower()]
    elif m := re.match(r"^create view (\w+) as (.*)$", s, re.IGNORECASE):
        schema.views[m.group(1).lower()] = normal(m.group(2))
    elif m := re.match(r"^drop view (?:if exists )?(\w+)$", s, re.IGNORECASE):
        del schema.views[m.group(1).lower()]
    else:
        return statement
    return None


def differences(sqlite: Schema, postgres: Schema, used: set) -> list[str]:
    found = []

    def compare(what: str, name: str, a, b) -> None:
        if a != b and (what, name) in ALLOWED:
            used.add((what, name))
        elif a != b:
            found.append(f"{what} {name}:\n    sqlite:   {a}\n    postgres: {b}")

    for table in sorted(set(sqlite.tables) | set(postgres.tables)):
        if table not in sqlite.tables or table not in postgres.tables:
            compare("table", table, table in sqlite.tables, table in postgres.tables)
            continue
        a = {name: (kind, rest) for name, kind, rest in sqlite.tables[table]}
        b = {name: (kind, rest) for name, kind, rest in postgres.tables[table]}
        if set(a) != set(b):
            compare("columns of", table, sorted(set(a) - set(b)), sorted(set(b) - set(a)))
        elif list(a) != list(b):
            compare("column order", table, list(a), list(b))
        for name in a.keys() & b.keys():
            compare("column", f"{table}.{name}", a[name], b[name])
        compare("primary key of", table, sqlite.keys.get(table), postgres.keys.get(table))
        compare("constraints of", table, sqlite.constraints.get(table), postgres.constraints.get(table))
    for index in sorted(set(sqlite.indexes) | set(postgres.indexes)):
        compare("index", index, sqlite.indexes.get(index), postgres.indexes.get(index))
    for view in sorted(set(sqlite.views) | set(postgres.views)):
        compare("view", view, sqlite.views.get(view), postgres.views.get(view))
    return found


def test_the_statement_reader():
    assert statements("-- a; comment\nCREATE TABLE a (x TEXT DEFAULT 'a;b');  -- done\nDROP TABLE a;") == [
        "CREATE TABLE a (x TEXT DEFAULT 'a;b')", "DROP TABLE a"]
    schema = Schema()
    assert apply(schema, "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, on_ BOOLEAN NOT NULL DEFAULT TRUE, "
                         "PRIMARY KEY (id), CHECK (on_ IN (0, 1)))") is None
    assert schema.tables["t"] == [("id", "integer", "not null"), ("on_", "integer", "not null default 1")]
    assert schema.keys["t"] == ("id",) and schema.constraints["t"] == ["check (on_ in (0, 1))"]
    assert apply(schema, "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; END") is not None


def test_sqlite_and_postgresql_migrations_differ_only_in_types():
    sqlite_files = discover(SQL_MIGRATIONS / "sqlite")
    postgres_files = discover(SQL_MIGRATIONS / "postgres")
    assert [m.path.name for m in sqlite_files] == [m.path.name for m in postgres_files]
    schemas = {"sqlite": Schema(), "postgres": Schema()}
    problems, used, reported = [], set(), set()
    for lite, pg in zip(sqlite_files, postgres_files):
        for dialect, migration in (("sqlite", lite), ("postgres", pg)):
            for statement in statements(migration.path.read_text()):
                unread = apply(schemas[dialect], statement)
                if unread:
                    problems.append(f"{dialect}/{migration.path.name}: statement not understood: {unread[:120]}")
        for difference in differences(schemas["sqlite"], schemas["postgres"], used):
            if difference not in reported:  # once, after the first file that has it
                reported.add(difference)
                problems.append(f"after {lite.path.name}: {difference}")
    assert not problems, "\n".join(problems)
    assert not set(ALLOWED) - used, f"allowed differences no longer needed: {sorted(set(ALLOWED) - used)}"
