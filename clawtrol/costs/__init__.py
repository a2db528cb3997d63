"""Costs: what done tasks cost in AI spend against the human time they replaced.

- `report`  reads the figures (summary, per agent, per project, over time, recent tasks) and shapes the JSON;
- `periods` parses and validates the over-time range and buckets UTC days into days, ISO weeks or months;
- `charts`  lays out the server-rendered SVG charts of the Costs page.
"""
