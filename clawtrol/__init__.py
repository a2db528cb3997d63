"""Mission Clawtrol: a self-hosted command center for teams running OpenClaw AI agents."""

__version__ = "0.1.0"
