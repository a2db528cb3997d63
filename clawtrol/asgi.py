"""ASGI entry point for Hypercorn workers: `clawtrol.asgi:app`."""

from . import logs
from .app import create_app

app = create_app()
logs.configure(app.config["CLAWTROL"].log_level)
