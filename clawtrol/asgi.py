"""ASGI entry point for Hypercorn workers: `clawtrol.asgi:app`."""

import gc

from . import logs
from .app import create_app

# Objects allocated between two young-generation collections. Python's default (700) runs one every few
# requests, and each walks what the requests in flight hold; measured on the bench (GET /api/tasks/:id,
# PostgreSQL), collections took ~5% of the server's CPU with the default and under 1% with this.
YOUNG_COLLECTION_EVERY = 10_000

app = create_app()
logs.configure(app.config["CLAWTROL"].log_level)


@app.before_serving
async def settle_the_heap() -> None:
    """Once started (registered last, so after the app's own start-up): what start-up built — modules,
    templates, SQL, routes — lives as long as the process, so move it out of the collector's sight
    (`gc.freeze`) instead of walking it in every full collection, and collect the young generation less
    often. Only the serving process does this; tests and CLI commands keep Python's defaults."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
