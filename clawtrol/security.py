"""Security headers on every response."""

from quart import Quart

# htmx is vendored and all script lives in static files, so no inline script or eval is needed.
# Avatars come from GitHub (or a GitHub Enterprise host), hence https: images.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


BASE_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
# Nothing but the static files may be kept by browsers or shared caches: pages, fragments, JSON and the
# CSV exports carry private data (a view that sets its own Cache-Control keeps it).
NO_STORE = ("Cache-Control", "no-store")


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response a view did not set itself, error pages
    included. Added to the encoded header list Quart hands the server, as bytes built once: a werkzeug
    `after_request` hook re-parsed and re-validated them on every response (~15 µs of a ~500 µs request)."""

    def __init__(self, app, defaults: tuple[tuple[str, str], ...], static_prefix: str):
        self.app = app
        self.static_prefix = static_prefix
        self.for_static = _encoded(defaults)
        self.for_private = _encoded(defaults + (NO_STORE,))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        wanted = self.for_static if scope["path"].startswith(self.static_prefix) else self.for_private

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = message["headers"]
                present = {name.lower() for name, _ in headers}
                message["headers"] = [*headers, *(pair for pair in wanted if pair[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _encoded(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode(), value.encode()) for name, value in headers)


def install(app: Quart) -> None:
    defaults = BASE_HEADERS + ((HSTS,) if app.config["CLAWTROL"].secure_cookies else ())
    app.asgi_app = SecurityHeaders(app.asgi_app, defaults, app.static_url_path.rstrip("/") + "/")
