"""Hostile inputs for tests/test_security.py, kept apart so the lists are easy to read and extend.

Every XSS payload must fit the shortest field it is written to with a tag appended (agentId and model:
100 characters, see clawtrol/tasks/model.py), so keep them under 80 characters.
"""

from __future__ import annotations

# (id, payload): markup, attribute breakers, URL schemes, template syntax, encodings.
XSS_PAYLOADS: list[tuple[str, str]] = [
    ("script-tag", "<script>alert(1)</script>"),
    ("img-onerror", "<img src=x onerror=alert(1)>"),
    ("attr-break-svg", '"><svg onload=alert(1)>'),
    ("javascript-url", "javascript:alert(1)"),
    ("textarea-breaker", "</textarea><script>x</script>"),
    ("jinja-expression", "{{7*7}}"),
    ("jinja-raw-config", "{% raw %}{{ config }}{% endraw %}{{ config.items() }}"),
    ("jinja-arith-mro", "{{ 1337*1001 }}{{ ''.__class__.__mro__ }}"),
    ("single-quote-attr", "' onmouseover='x"),
    ("iframe-srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
    ("title-breaker", "</title><script>alert(1)</script>"),
    ("unicode-fullwidth-rtl", "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e \u202egnp.exe \U0001f980"),
    ("percent-and-entity-encoded", "%3Cscript%3Ealert(1)%3C%2Fscript%3E &lt;b&gt;&#60;i&#62;"),
    ("css-expression", "x:expression(alert(1)); background:url(javascript:alert(1))"),
    ("nested-script", "<scr<script>ipt>alert(1)</scr</script>ipt>"),
    ("style-import", "<style>@import'//evil.example/x.css';</style>"),
]

# Expressions whose evaluation would be visible: 7*7 is too common a number to look for on a page, so
# the payloads also carry 1337*1001, whose product must never appear.
JINJA_EVALUATED_MARKERS = ("1338337", "SECRET_KEY", "<class 'str'>", "&lt;class &#39;str&#39;&gt;")

# SQL injection attempts and LIKE wildcards, for search and filter parameters.
SQLI_PAYLOADS: list[tuple[str, str]] = [
    ("or-true", "' OR '1'='1"),
    ("drop-table", "'; DROP TABLE tasks; --"),
    ("like-comment", "%' --"),
    ("backslash", "\\"),
    ("union-select", "' UNION SELECT id, title, NULL FROM users --"),
    ("pg-sleep", "1; SELECT pg_sleep(5)"),
    ("pg-sleep-quoted", "'; SELECT pg_sleep(5); --"),
    ("escaped-quote", "\\x27"),
    ("percent", "%"),
    ("underscore", "_"),
    ("double-quote-or", '") OR ("1"="1'),
    ("stacked-sqlite", "x'); ATTACH DATABASE '/tmp/pwn.db' AS pwn; --"),
    ("concat-subquery", "' || (SELECT name FROM sqlite_master LIMIT 1) || '"),
    ("bracket-class", "[a-z]%"),
    ("very-long", "A" * 5000),
    ("long-or-true", "' OR '1'='1" + "-" * 300),
]

# Text that must be stored and returned exactly, on both databases.
UNICODE_SAMPLES: list[tuple[str, str]] = [
    ("emoji", "Ship it \U0001f680\U0001f980 \u2705"),
    ("zwj-sequence", "pair \U0001f469\u200d\U0001f4bb\U0001f468\u200d\U0001f52c done"),
    ("rtl-override", "invoice \u202efdp.exe\u202c end"),
    ("astral-cjk-math", "\U00020b9f\U0002000b \U0001d54f\U0001d7d8 \U0001f600"),
    ("combining", "Cafe\u0301 nai\u0308ve \u1e9b\u0323"),
    ("zero-width", "zero\u200bwidth\ufeffbom\u2060join"),
    ("mixed-scripts", "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd "
                      "\u041f\u0440\u0438\u0432\u0435\u0442 \u3053\u3093\u306b\u3061\u306f"),
]
