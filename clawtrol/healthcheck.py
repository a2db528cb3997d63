"""Container health check: exit 0 when GET /api/health answers 200 (healthy or degraded), 1 otherwise.

    python -m clawtrol.healthcheck

Uses only the standard library (slim images have no curl or wget) and the PORT the server listens on.
"""

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '3001')}/api/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # includes HTTPError for 503 "unhealthy"
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
