"""Security headers on every response."""

from quart import Quart, Response, request

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


def install(app: Quart) -> None:
    defaults = BASE_HEADERS + ((HSTS,) if app.config["CLAWTROL"].secure_cookies else ())

    @app.after_request
    async def add_security_headers(response: Response) -> Response:
        # One pass over the headers the view set (werkzeug's setdefault raises and catches a KeyError for
        # each header that is missing: most of this hook's time, on every response).
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        wanted = defaults if request.endpoint == "static" else defaults + (NO_STORE,)
        for name, value in wanted:
            if name.lower() not in present:
                headers.add(name, value)
        return response
