"""Several OpenClaw gateways as records (issue #15): the table, its admin API and pages, and one connection each."""
