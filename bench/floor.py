"""The bench's floor: the smallest Quart app with one JSON route, served by Hypercorn like the real app.
Every figure the bench reports is a fraction of what this serves in the same run on the same machine."""

from quart import Quart

app = Quart(__name__)


@app.get("/ping")
async def ping():
    return {"ok": True}
