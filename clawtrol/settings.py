"""Team settings with types, bounds and defaults; stored as strings in the settings table."""

from __future__ import annotations

import json
import math
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .audit import record
from .clock import now_iso
from .db import Database
from .errors import ApiError, InvalidInput

if TYPE_CHECKING:
    from .services import Call

CACHE_SECONDS = 5.0
THEME_COOKIE = "clawtrol_theme"  # a person's own light/dark choice
THEMES = ("auto", "light", "dark")


@dataclass(frozen=True)
class Spec:
    label: str
    kind: str  # "number", "integer" or "choice"
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[str, ...] = ()

    def check(self, key: str, value: Any) -> Any:
        if self.kind == "choice":
            if value not in self.options:
                raise InvalidInput(f"{key}: must be one of {', '.join(self.options)}", field=key)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInput(f"{key}: must be a number", field=key)
        if self.kind == "integer" and value != int(value):
            raise InvalidInput(f"{key}: must be a whole number", field=key)
        if not self.minimum <= value <= self.maximum:
            raise InvalidInput(f"{key}: must be between {self.minimum:g} and {self.maximum:g}", field=key)
        return int(value) if self.kind == "integer" else float(value)

    def parse(self, stored: str | None) -> Any:
        """A stored string back to its type; anything unreadable falls back to the default."""
        if stored is None:
            return self.default
        try:
            return self.check("", stored if self.kind == "choice" else json.loads(stored))
        except (ApiError, ValueError):
            return self.default

    def from_form(self, key: str, raw: str) -> Any:
        if self.kind == "choice":
            return raw
        try:
            return float(raw) if "." in raw or "e" in raw.lower() else int(raw)
        except ValueError:
            raise InvalidInput(f"{key}: must be a number", field=key) from None


SPECS: dict[str, Spec] = {
    "humanHourlyRate": Spec("Human hourly rate (USD)", "number", 100.0, 0, 10_000),
    "kanbanColumnWidth": Spec("Board column width (px)", "integer", 384, 280, 600),
    "theme": Spec("Default theme", "choice", "auto", options=("auto", "light", "dark")),
}

_cache: weakref.WeakKeyDictionary[Database, tuple[float, dict]] = weakref.WeakKeyDictionary()


def _stored(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def load(db: Database) -> dict[str, Any]:
    rows = await db.all("settings.get_many", keys=list(SPECS))
    stored = {row["key"]: row["value"] for row in rows}
    values = {key: spec.parse(stored.get(key)) for key, spec in SPECS.items()}
    _cache[db] = (time.monotonic(), values)
    return values


async def cached(db: Database) -> dict[str, Any]:
    """Settings for page chrome (theme, column width), re-read at most every few seconds."""
    hit = _cache.get(db)
    if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    return await load(db)


def validate(body: dict) -> dict[str, Any]:
    unknown = sorted(set(body) - set(SPECS))
    if unknown:
        raise InvalidInput(f"Unknown setting(s): {', '.join(unknown)}; known: {', '.join(SPECS)}", field=unknown[0])
    if not body:
        raise InvalidInput("No settings provided")
    return {key: SPECS[key].check(key, value) for key, value in body.items()}


async def update(call: Call, changes: dict[str, Any]) -> dict[str, Any]:
    """Write validated changes; one audit entry lists each changed key's old and new value."""
    db, actor = call.db, call.actor
    async with db.transaction():
        current = await load(db)
        changed = {key: {"from": current[key], "to": value} for key, value in changes.items() if current[key] != value}
        for key in changed:
            await db.changed("settings.upsert", key=key, value=_stored(changes[key]), updated_at=now_iso(),
                             updated_by=actor.user_id or actor.token_id)
        if changed:
            await record(db, actor, "settings.changed", "settings", None, {"changes": changed})
    return await load(db)


def parse_theme(value: object) -> str:
    if value not in THEMES:
        raise InvalidInput(f"theme: must be one of {', '.join(THEMES)}", field="theme")
    return str(value)


async def page_theme(db: Database, chosen: str | None) -> str:
    """The theme for a page: the person's choice (their cookie), else the team default."""
    if chosen in THEMES:
        return chosen
    try:
        return (await cached(db))["theme"]
    except Exception:  # error pages render even when the database is down
        return "auto"
