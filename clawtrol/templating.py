"""Template rendering tuned for rows: the app renders plain dicts (database rows, API shapes), and Jinja's
`task.title` tries `getattr(task, "title")` first and catches the AttributeError before it looks the key up.
For a dict holding the key, this looks the key up first — the same answer, without an exception per
attribute (on the board, ~140 cards × ~20 attributes per page)."""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.templating import Environment


class RowEnvironment(Environment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


class App(Quart):
    jinja_environment = RowEnvironment
