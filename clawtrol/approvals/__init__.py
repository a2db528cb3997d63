"""Exec approvals requested through the OpenClaw gateway: a durable, shared queue."""
