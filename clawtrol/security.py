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


def install(app: Quart) -> None:
    @app.after_request
    async def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config["CLAWTROL"].secure_cookies:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        # Nothing but the static files may be kept by browsers or shared caches: pages, fragments, JSON and the
        # CSV exports carry private data (a view that sets its own Cache-Control keeps it).
        if request.endpoint != "static":
            headers.setdefault("Cache-Control", "no-store")
        return response
