"""Approval rules as admins manage them: validation (4xx naming the field), the JSON shape, and changes
written with their audit entry in one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .. import audit
from ..audit import Actor
from ..clock import iso, new_id, now_iso, parse_iso, utcnow
from ..db import Database, UniqueViolation
from ..errors import ApiError, Conflict, InvalidInput, NotFound
from .matching import ACTIONS, BadPattern, Rule, compile_pattern

MAX_NAME = 100
TEXT_LIMITS = {"agentId": 200, "host": 255, "cwdPrefix": 1000, "projectId": 200, "gatewayId": 200}
COLUMNS = {"name": "name", "action": "action", "agentId": "agent_id", "commandPattern": "command_pattern",
           "cwdPrefix": "cwd_prefix", "host": "host", "projectId": "project_id", "gatewayId": "gateway_id",
           "allowCompound": "allow_compound", "enabled": "enabled", "expiresAt": "expires_at"}
FIELDS = frozenset(COLUMNS)
MATCHERS = ("agentId", "commandPattern", "cwdPrefix", "host", "projectId", "gatewayId")
COUNT_WINDOW = timedelta(days=7)


def to_json(row: dict, decided: int | None = None) -> dict:
    rule = {"id": row["id"], "name": row["name"], "action": row["action"], "agentId": row["agent_id"],
            "commandPattern": row["command_pattern"], "cwdPrefix": row["cwd_prefix"], "host": row["host"],
            "projectId": row["project_id"], "gatewayId": row["gateway_id"], "allowCompound": bool(row["allow_compound"]),
            "enabled": bool(row["enabled"]), "expiresAt": row["expires_at"], "position": row["position"],
            "createdBy": row["created_by_label"], "createdAt": row["created_at"], "updatedAt": row["updated_at"]}
    if decided is not None:
        rule["decidedLast7Days"] = decided
    return rule


def rule_json(rule: Rule) -> dict:
    """A matching Rule (no bookkeeping columns), e.g. for the dry run's answer."""
    return {"id": rule.id, "name": rule.name, "action": rule.action, "agentId": rule.agent_id,
            "commandPattern": rule.command_pattern, "cwdPrefix": rule.cwd_prefix, "host": rule.host,
            "projectId": rule.project_id, "gatewayId": rule.gateway_id, "allowCompound": rule.allow_compound, "enabled": rule.enabled,
            "expiresAt": rule.expires_at}


def _optional_text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be a string or null", field=field)
    value = value.strip()
    if len(value) > TEXT_LIMITS.get(field, 1000):
        raise InvalidInput(f"{field}: at most {TEXT_LIMITS[field]} characters", field=field)
    return value or None


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field}: must be true or false", field=field)
    return value


def _value(field: str, value: Any) -> Any:
    """One field's column value, checked."""
    if field == "name":
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("name: required", field="name")
        if len(value.strip()) > MAX_NAME:
            raise InvalidInput(f"name: at most {MAX_NAME} characters", field="name")
        return value.strip()
    if field == "action":
        if value not in ACTIONS:
            raise InvalidInput(f"action: must be one of {', '.join(ACTIONS)}", field="action")
        return value
    if field in ("allowCompound", "enabled"):
        return _boolean(field, value)
    if field == "expiresAt":
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidInput("expiresAt: an ISO-8601 time such as 2026-12-31T18:00:00Z, or null", field="expiresAt")
        try:
            return iso(parse_iso(value.strip()))
        except (ValueError, OverflowError):
            raise InvalidInput("expiresAt: an ISO-8601 time such as 2026-12-31T18:00:00Z, or null",
                               field="expiresAt") from None
    if field == "commandPattern":
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidInput("commandPattern: must be a string or null", field="commandPattern")
        try:
            compile_pattern(value)
        except BadPattern as problem:
            raise InvalidInput(f"commandPattern: {problem}", field="commandPattern") from None
        return value
    return _optional_text(field, value)


async def list_all(db: Database) -> list[dict]:
    """Every rule, in the order they are matched."""
    return await db.all("approval_rules.list")


async def find(db: Database, rule_id: str) -> dict:
    """The rule's row; 404 if there is none."""
    row = await db.one("approval_rules.get", id=rule_id)
    if row is None:
        raise NotFound("No approval rule with this id.", code="NOT_FOUND")
    return row


async def validate(db: Database, body: dict, current: dict | None = None) -> dict:
    """Column values for a new rule (`current` None: name and action required) or a rule after a partial
    change; raises ApiError naming the first bad field."""
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(FIELDS))}",
                           field=unknown[0])
    if current is None:
        for required in ("name", "action"):
            if required not in body:
                raise InvalidInput(f"{required}: required", field=required)
    values = {column: current[column] for column in COLUMNS.values()} if current else {
        "agent_id": None, "command_pattern": None, "cwd_prefix": None, "host": None, "project_id": None,
        "gateway_id": None, "allow_compound": False, "enabled": True, "expires_at": None}
    for field, value in body.items():
        values[COLUMNS[field]] = _value(field, value)
    values["allow_compound"], values["enabled"] = bool(values["allow_compound"]), bool(values["enabled"])
    if "projectId" in body and values["project_id"] is not None:
        if await db.one("approval_rules.project_exists", id=values["project_id"]) is None:
            raise InvalidInput("projectId: no project with this id", field="projectId")
    if "gatewayId" in body and values["gateway_id"] is not None:
        if await db.one("gateways.get", id=values["gateway_id"]) is None:
            raise InvalidInput("gatewayId: no gateway with this id", field="gatewayId")
    if values["action"] == "allow-once" and not any(values[COLUMNS[m]] for m in MATCHERS):
        raise InvalidInput("commandPattern: an allow-once rule needs at least one matcher (commandPattern, agentId, "
                           "cwdPrefix, host, projectId or gatewayId); it would allow every command otherwise",
                           field="commandPattern")
    return values


def _changes(before: dict, after: dict) -> dict:
    changes = {}
    for field, column in COLUMNS.items():
        old, new = before[column], after[column]
        if column in ("allow_compound", "enabled"):
            old, new = bool(old), bool(new)  # SQLite answers 0/1
        if old != new:
            changes[field] = {"from": old, "to": new}
    return changes


def _summary(row: dict) -> dict:
    """What an audit entry says about a rule (never more than its definition)."""
    return {"name": row["name"], "action": row["action"],
            **{field: row[COLUMNS[field]] for field in MATCHERS if row[COLUMNS[field]] is not None}}


async def _stamp(db: Database) -> str:
    """The time to stamp a change with: now, or just after the latest change if this clock is behind it, so
    every change moves `approval_rules.version` (what processes' cached rules are checked against)."""
    latest = (await db.one("approval_rules.version"))["changed"]
    now = now_iso()
    if latest is not None and latest >= now:
        now = iso(parse_iso(latest) + timedelta(milliseconds=1))
    return now


def _name_taken(name: str) -> ApiError:
    return Conflict(f"name: a rule named '{name}' exists already", field="name")


async def create(db: Database, actor: Actor, body: dict) -> dict:
    values = await validate(db, body)
    try:
        async with db.transaction():
            row = await db.one("approval_rules.insert", id=new_id(), **values, user_id=actor.user_id,
                               token_id=actor.token_id, label=actor.label, now=await _stamp(db))
            await audit.record(db, actor, "approval_rule.created", "approval_rule", row["id"], _summary(row))
    except UniqueViolation:
        raise _name_taken(values["name"]) from None
    return row


async def _locked(db: Database, rule_id: str) -> dict:
    row = await db.one("approval_rules.lock", id=rule_id)
    if row is None:
        raise NotFound("No approval rule with this id.", code="NOT_FOUND")
    return row


async def update(db: Database, actor: Actor, rule_id: str, body: dict) -> dict:
    if not body:
        raise InvalidInput(f"No updates provided: send any of {', '.join(sorted(FIELDS))}")
    try:
        async with db.transaction():
            before = await _locked(db, rule_id)
            values = await validate(db, body, before)
            row = await db.one("approval_rules.update", id=rule_id, **values, now=await _stamp(db))
            changes = _changes(before, row)
            if changes:
                await audit.record(db, actor, "approval_rule.updated", "approval_rule", rule_id,
                                   {"name": row["name"], "changes": changes})
    except UniqueViolation:
        raise _name_taken(body.get("name", "")) from None
    return row


async def delete(db: Database, actor: Actor, rule_id: str) -> dict:
    async with db.transaction():
        row = await _locked(db, rule_id)
        await db.changed("approval_rules.delete", id=rule_id)
        await audit.record(db, actor, "approval_rule.deleted", "approval_rule", rule_id, _summary(row))
    return row


async def _renumber(db: Database, actor: Actor, ordered: list[dict], moved: str | None = None) -> None:
    now = await _stamp(db)
    for position, row in enumerate(ordered, start=1):
        if row["position"] != position:
            await db.changed("approval_rules.set_position", id=row["id"], position=position, now=now)
    await audit.record(db, actor, "approval_rule.reordered", "approval_rule", moved,
                       {"order": [row["name"] for row in ordered]})


async def reorder(db: Database, actor: Actor, ids: Any) -> list[dict]:
    """Put the rules in the order of `ids`, which must name every rule once."""
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput("ids: a list of every rule's id, in the new order", field="ids")
    async with db.transaction():
        rows = await db.all("approval_rules.list")
        by_id = {row["id"]: row for row in rows}
        if len(ids) != len(set(ids)) or set(ids) != set(by_id):
            raise InvalidInput("ids: must name every rule exactly once (the list changed? reload it)", field="ids")
        await _renumber(db, actor, [by_id[i] for i in ids])
    return await db.all("approval_rules.list")


async def move(db: Database, actor: Actor, rule_id: str, direction: str) -> list[dict]:
    """Move one rule up or down by one place (the page's arrows)."""
    if direction not in ("up", "down"):
        raise InvalidInput("direction: up or down", field="direction")
    async with db.transaction():
        rows = await db.all("approval_rules.list")
        index = next((n for n, row in enumerate(rows) if row["id"] == rule_id), None)
        if index is None:
            raise NotFound("No approval rule with this id.", code="NOT_FOUND")
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(rows):
            rows[index], rows[other] = rows[other], rows[index]
            await _renumber(db, actor, rows, rule_id)
    return await db.all("approval_rules.list")


async def decided_counts(db: Database) -> dict[str, int]:
    """Approvals each rule decided in the last 7 days, by rule id."""
    rows = await db.all("approval_rules.decided_since", since=iso(utcnow() - COUNT_WINDOW))
    return {row["rule_id"]: int(row["decided"]) for row in rows}
