"""The htmx request and response headers, in one place: what a request says about itself (is it htmx, from
which page) and what a response asks of htmx (a toast, closing the dialog, no swap, a redirect, the address
bar). Views combine the response helpers with `|`: `return html, 200, no_swap() | toast("Saved")`."""

from __future__ import annotations

import json

from quart import request


def is_htmx() -> bool:
    """The request came from htmx (a fragment is wanted), not from a full page load."""
    return bool(request.headers.get("HX-Request"))


def current_url() -> str | None:
    """The address of the page the htmx request came from."""
    return request.headers.get("HX-Current-URL")


def trigger(event: str, detail: dict | None = None) -> dict[str, str]:
    """Fire `event` on the page (app.js listens for the clawtrol:* events)."""
    return {"HX-Trigger": json.dumps({event: detail or {}})}


def toast(message: str, level: str = "info") -> dict[str, str]:
    """Show a toast with `message`; level is info, success or error."""
    return trigger("clawtrol:toast", {"message": message, "level": level})


def close_dialog() -> dict[str, str]:
    return trigger("clawtrol:close-dialog")


def no_swap() -> dict[str, str]:
    """Swap nothing at the target (the response carries out-of-band parts only)."""
    return {"HX-Reswap": "none"}


def redirect(url: str) -> dict[str, str]:
    """A full-page navigation to `url` (after the response is handled)."""
    return {"HX-Redirect": url}


def push_url(url: str | None) -> dict[str, str]:
    """Put `url` in the address bar; None keeps the address as it is."""
    return {"HX-Push-Url": url if url is not None else "false"}
