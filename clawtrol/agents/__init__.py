"""OpenClaw agents through the gateway: roster, sessions, transcripts, starting work and usage."""
