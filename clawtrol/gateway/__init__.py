"""The OpenClaw gateway connection."""
