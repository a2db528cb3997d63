"""GATEWAY_URL / GATEWAY_TOKEN, when set, become the gateway record named "default" at the first start, so an
install from before several gateways existed keeps working unchanged: its approvals, start work records and
task session links already belong to the id 'default' (migration 0009). From then on the record is what
counts: edit it on Admin › Gateways; a GATEWAY_URL that differs later is reported, not applied."""

from __future__ import annotations

import logging

from .. import audit
from ..clock import now_iso
from ..db import Database, UniqueViolation
from .model import described
from .secrets import TokenBox

log = logging.getLogger(__name__)

FROM_ENVIRONMENT = audit.Actor(kind="system", label="GATEWAY_URL")


async def default_from_environment(db: Database, box: TokenBox, url: str, token: str) -> None:
    if not url:
        return
    try:
        async with db.transaction():
            row = await db.one("gateways.insert_default", url=url, token_encrypted=box.seal(token), now=now_iso())
            if row is not None:
                await audit.record(db, FROM_ENVIRONMENT, "gateway.created", "gateway", row["id"], described(row))
    except UniqueViolation:
        # another process starting at the same moment inserted it first: on PostgreSQL the name's unique index
        # (not the ON CONFLICT target) can be the one that notices
        row = None
    if row is not None:
        log.info("GATEWAY_URL became the gateway named default", extra={"url": url})
        return
    existing = await db.one("gateways.get", id="default")
    if existing is None:
        log.info("GATEWAY_URL is set but the gateway record 'default' was removed; it stays removed "
                 "(add gateways on Admin › Gateways)", extra={"environment": url})
    elif existing["url"] != url:
        log.warning("GATEWAY_URL differs from the gateway record 'default'; the record is used (Admin › Gateways)",
                    extra={"environment": url, "record": existing["url"]})
