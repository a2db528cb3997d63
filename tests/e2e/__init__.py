"""End-to-end tests: the real `clawtrol serve` driven by a real browser (Playwright + Debian's Chromium)."""
