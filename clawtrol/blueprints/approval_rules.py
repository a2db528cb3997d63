"""Approval rules: the JSON API (/api/approval-rules) and the admin page with its HTMX fragments."""

from __future__ import annotations

from quart import Blueprint, render_template, request

from .. import htmx
from ..auth.principal import current_actor, require_principal, require_role
from ..clock import iso, parse_iso
from ..errors import Refused
from ..payload import json_object
from ..policies import decide, rules
from ..projects import service as projects
from ..policies.matching import BadPattern, compile_pattern, is_regex
from ..services import current_db, current_registry

blueprint = Blueprint("approval_rules", __name__)

MANAGE = "manage approval rules"


# --- JSON API ------------------------------------------------------------------------------------------

@blueprint.get("/api/approval-rules")
async def api_list():
    require_principal()
    db = current_db()
    counts = await rules.decided_counts(db)
    return {"rules": [rules.to_json(row, counts.get(row["id"], 0)) for row in await rules.list_all(db)]}


@blueprint.get("/api/approval-rules/<rule_id>")
async def api_get(rule_id: str):
    require_principal()
    row = await rules.find(current_db(), rule_id)
    return rules.to_json(row, (await rules.decided_counts(current_db())).get(rule_id, 0))


@blueprint.post("/api/approval-rules")
async def api_create():
    require_role("admin", MANAGE)
    body = await json_object(rules.FIELDS)
    return rules.to_json(await rules.create(current_db(), current_actor(), body), 0), 201


@blueprint.patch("/api/approval-rules/<rule_id>")
async def api_update(rule_id: str):
    require_role("admin", MANAGE)
    body = await json_object(rules.FIELDS)
    row = await rules.update(current_db(), current_actor(), rule_id, body)
    return rules.to_json(row, (await rules.decided_counts(current_db())).get(rule_id, 0))


@blueprint.delete("/api/approval-rules/<rule_id>")
async def api_delete(rule_id: str):
    require_role("admin", MANAGE)
    await rules.delete(current_db(), current_actor(), rule_id)
    return {"success": True, "id": rule_id}


@blueprint.post("/api/approval-rules/reorder")
async def api_reorder():
    require_role("admin", MANAGE)
    body = await json_object({"ids"})
    db = current_db()
    rows = await rules.reorder(db, current_actor(), body.get("ids"))
    counts = await rules.decided_counts(db)
    return {"rules": [rules.to_json(row, counts.get(row["id"], 0)) for row in rows]}


@blueprint.post("/api/approval-rules/test")
async def api_test():
    """A dry run: which rule would decide such an approval now. Decides nothing, so any role may ask."""
    require_principal()
    return await decide.dry_run(current_db(), await json_object(decide.TEST_FIELDS))


# --- the admin page ---------------------------------------------------------------------------------------

FORM_TEXT = ("name", "action", "agentId", "commandPattern", "cwdPrefix", "host", "projectId", "gatewayId")


def _from_form(form) -> dict:
    """The form's fields as the API's body: empty text is null, checkboxes are booleans, the expiry is
    the <input type=datetime-local> value read as UTC."""
    body: dict = {field: (form.get(field) or "").strip() or None for field in FORM_TEXT}
    body["name"] = body["name"] or ""
    body["allowCompound"] = form.get("allowCompound") == "on"
    body["enabled"] = form.get("enabled") == "on"
    expires = (form.get("expiresAt") or "").strip()
    body["expiresAt"] = (expires + "Z" if expires and len(expires) <= 19 else expires) or None
    return body


def _form_values(row: dict | None) -> dict:
    if row is None:
        return {"enabled": True, "action": "allow-once"}
    values = rules.to_json(row)
    if values["expiresAt"]:
        values["expiresAt"] = iso(parse_iso(values["expiresAt"]))[:16]  # datetime-local: YYYY-MM-DDTHH:MM
    return values


async def _page_context(**extra) -> dict:
    db = current_db()
    return {"rules": [rules.to_json(row) for row in await rules.list_all(db)],
            "counts": await rules.decided_counts(db), "projects": await projects.options(db),
            "gateways": current_registry().connections(),
            "gateway_names": {c.id: c.name for c in current_registry().connections()},
            "actions": rules.ACTIONS, **extra}


async def _render(template: str, status: int = 200, toast: str | None = None, **extra):
    """The template with the page's context; `toast`: a success message to show."""
    headers = htmx.toast(toast, "success") if toast else {}
    return await render_template(template, **await _page_context(**extra)), status, headers


@blueprint.get("/admin/approval-rules")
async def rules_page():
    require_role("admin", MANAGE)
    return await render_template("approval_rules/page.html",
                                 **await _page_context(form=_form_values(None), editing=None, error=None))


@blueprint.get("/admin/approval-rules/new")
async def new_rule_form():
    require_role("admin", MANAGE)
    return await _render("approval_rules/_form.html", form=_form_values(None), editing=None, error=None)


@blueprint.get("/admin/approval-rules/<rule_id>/edit")
async def edit_rule_form(rule_id: str):
    require_role("admin", MANAGE)
    row = await rules.find(current_db(), rule_id)
    return await _render("approval_rules/_form.html", form=_form_values(row), editing=row["id"], error=None)


@blueprint.post("/admin/approval-rules")
async def create_rule_fragment():
    require_role("admin", MANAGE)
    form = await request.form
    body = _from_form(form)
    try:
        row = await rules.create(current_db(), current_actor(), body)
    except Refused as error:
        return await _render("approval_rules/_form.html", 400, form={**body, "expiresAt": form.get("expiresAt")},
                             editing=None, error=error)
    return await _render("approval_rules/_saved.html", form=_form_values(None), editing=None, error=None,
                         toast=f"Rule '{row['name']}' added.")


@blueprint.post("/admin/approval-rules/<rule_id>")
async def update_rule_fragment(rule_id: str):
    require_role("admin", MANAGE)
    form = await request.form
    body = _from_form(form)
    try:
        row = await rules.update(current_db(), current_actor(), rule_id, body)
    except Refused as error:
        return await _render("approval_rules/_form.html", 400, form={**body, "expiresAt": form.get("expiresAt")},
                             editing=rule_id, error=error)
    return await _render("approval_rules/_saved.html", form=_form_values(None), editing=None, error=None,
                         toast=f"Rule '{row['name']}' saved.")


@blueprint.post("/admin/approval-rules/<rule_id>/toggle")
async def toggle_rule_fragment(rule_id: str):
    require_role("admin", MANAGE)
    row = await rules.find(current_db(), rule_id)
    await rules.update(current_db(), current_actor(), rule_id, {"enabled": not bool(row["enabled"])})
    return await _render("approval_rules/_list.html")


@blueprint.post("/admin/approval-rules/<rule_id>/move")
async def move_rule_fragment(rule_id: str):
    require_role("admin", MANAGE)
    await rules.move(current_db(), current_actor(), rule_id, (await request.form).get("direction", ""))
    return await _render("approval_rules/_list.html")


@blueprint.post("/admin/approval-rules/<rule_id>/delete")
async def delete_rule_fragment(rule_id: str):
    require_role("admin", MANAGE)
    row = await rules.delete(current_db(), current_actor(), rule_id)
    return await _render("approval_rules/_list.html",
                         toast=f"Rule '{row['name']}' deleted.")


@blueprint.post("/admin/approval-rules/pattern")
async def check_pattern_fragment():
    """Inline validation of the command pattern as it is typed."""
    require_role("admin", MANAGE)
    pattern = ((await request.form).get("commandPattern") or "").strip()
    kind, problem = None, None
    if pattern:
        try:
            compile_pattern(pattern)
            kind = "regular expression" if is_regex(pattern) else "glob"
        except BadPattern as error:
            problem = str(error)
    return await render_template("approval_rules/_pattern_hint.html", pattern=pattern, kind=kind, problem=problem)


@blueprint.post("/admin/approval-rules/try")
async def try_command_fragment():
    require_role("admin", MANAGE)
    form = await request.form
    body = {field: form.get(field) or None for field in decide.TEST_FIELDS}
    try:
        result, error = await decide.dry_run(current_db(), body), None
    except Refused as problem:
        result, error = None, problem.message
    return await render_template("approval_rules/_try_result.html", result=result, error=error, tried=body)
