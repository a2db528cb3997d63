"""The package's shape, as rules a change cannot quietly break: no import cycles between its modules, and
blueprints that talk to area modules only (no database module, no named query, no raw app extensions, htmx
headers through clawtrol/htmx.py). Imports under `if TYPE_CHECKING:` are for type checkers and not counted."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import clawtrol

PACKAGE = Path(clawtrol.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("clawtrol",) + path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for child in ast.walk(node))
    return inside


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
        if node.level:
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    found = []
    for name in names:
        while name and name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in MODULES and name != module:
            found.append(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports when it is imported or run (lazy imports in functions count)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_nodes(tree)
        graph[module] = {target for node in ast.walk(tree)
                         if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped
                         for target in _targets(module, node)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_a_made_up_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


BLUEPRINTS = sorted(module for module in MODULES if module.startswith("clawtrol.blueprints."))


def test_blueprints_import_no_database_module():
    graph = import_graph()
    leaks = {module: sorted(t for t in graph[module] if t == "clawtrol.db" or t.startswith("clawtrol.db."))
             for module in BLUEPRINTS}
    assert {module: found for module, found in leaks.items() if found} == {}


NAMED_QUERY = re.compile(r"""\.(one|all|value|changed|execute)\(\s*["'][a-z_]+\.[a-z_]+["']""")
RAW = re.compile(r"""\.transaction\(|extensions\[|["']HX-[A-Za-z-]+["']""")


def test_blueprints_call_no_named_query_nor_raw_app_objects_or_htmx_headers():
    found = {}
    for module in BLUEPRINTS:
        source = MODULES[module].read_text()
        hits = [match.group(0) for pattern in (NAMED_QUERY, RAW) for match in pattern.finditer(source)]
        if hits:
            found[module] = hits
    assert found == {}
