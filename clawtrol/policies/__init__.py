"""Approval policies: ordered rules that decide routine exec approvals before a person sees them."""
