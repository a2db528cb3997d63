"""Reading request bodies strictly: a JSON object with known fields, or a 4xx that says what is wrong."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from quart import Quart, Request, request
from quart.formparser import FormDataParser
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import InvalidInput, UnsupportedMediaType


MAX_DEPTH = 20  # our bodies nest two levels; anything deeper is refused before it is walked
# Form fields per request. Quart caps multipart parts (MAX_FORM_PARTS, 1000) but not url-encoded fields;
# our largest form (100 task suggestions, three fields each) stays far below this.
MAX_FORM_FIELDS = 1000


async def json_object(allowed: set[str] | frozenset[str]) -> dict:
    """The request's JSON object body. Unknown fields, non-objects and malformed JSON are refused."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    raw = await request.get_data()
    try:
        text = raw.decode("utf-8")
        body = json.loads(text) if text.strip() else None
    except UnicodeDecodeError:
        raise InvalidInput("Malformed JSON body: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError):  # e.g. integers too long to convert, absurd nesting
        raise InvalidInput("Malformed JSON body: a value is too large or too deeply nested") from None
    if not isinstance(body, dict):
        raise InvalidInput("Request body must be a JSON object")
    for name, value in body.items():
        problem = bad_text(value)
        if problem:
            raise InvalidInput(f"{name}: {problem}", field=name)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}",
                           field=unknown[0])
    return body


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    if _SURROGATE.search(text):
        return "must not contain unpaired surrogate characters"
    return None


def bad_text(value: object) -> str | None:
    """Why a (possibly nested) value can't be stored as text, or None. NUL and lone surrogates are never
    meaningful in our fields, and PostgreSQL refuses both."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return "nested too deeply"
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            stack.extend((part, depth + 1) for part in item)
    return None


def query_int(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter within [low, high], or a 400 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name}: a whole number from {low} to {high}", field=name)
    return int(raw)


def form_int(raw: str | None) -> int | None:
    """A whole number typed into a form, or None."""
    return int(raw) if raw and raw.isascii() and raw.isdigit() else None


class BoundedFormParser(FormDataParser):
    """Quart's form parser, with url-encoded forms held to MAX_FORM_FIELDS (413 beyond) like multipart."""

    async def _parse_urlencoded(self, body, mimetype, content_length, options):
        raw = await body
        if raw.count(b"&") >= MAX_FORM_FIELDS:
            raise RequestEntityTooLarge(f"more than {MAX_FORM_FIELDS} form fields")
        return self.cls(parse_qsl(raw.decode(), keep_blank_values=True)), self.cls()

    parse_functions = {**FormDataParser.parse_functions,
                       "application/x-www-form-urlencoded": _parse_urlencoded,
                       "application/x-url-encoded": _parse_urlencoded}


def _address_problem(incoming: Request) -> str | None:
    """bad_text for the path and the query's values; a plain ASCII path with no query (most requests) is
    answered without parsing anything."""
    path = incoming.path
    if not incoming.query_string and path.isascii() and "\x00" not in path:
        return None
    return bad_text(path) or bad_text(list(incoming.args.values()))


def install(app: Quart) -> None:
    """Bounded form parsing, and the NUL check. clawtrol/app.py installs this after the guard: the check reads
    the form, and an anonymous request must be refused before its body is parsed."""
    app.request_class = type("Request", (app.request_class,), {"form_data_parser_class": BoundedFormParser})

    @app.before_request
    async def refuse_nul_characters():
        """NUL or a lone surrogate in a path, query or form value is never valid input."""
        problem = _address_problem(request)
        if problem:
            raise InvalidInput(f"The request's address or query {problem}.")
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form
            for name, value in form.items():
                problem = bad_text(value)
                if problem:
                    raise InvalidInput(f"{name}: {problem}", field=name)
