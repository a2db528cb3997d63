"""Suggest tasks from a PROJECT.md, with the original's rules.

- The title is the first `# ` heading; the description is the text between it and the first `## `
  (at most 500 characters).
- Tasks are the bullets (`-`, `*`, `+`, numbered) under `## ` sections whose heading mentions tasks,
  requirements, deliverables, goals, features, todo or work items. Bullets that start with `[` or `(`
  (links, notes) are skipped, except checkboxes (`[ ]`, `[x]`), whose text is used.
- Priority keywords: P0 `(p0)`, `[p0]`, critical, blocker, urgent; P1 `(p1)`, `[p1]`, high priority,
  important, must do; P3 `(p3)`, `[p3]`, low priority, nice to have, optional; otherwise P2. The priority
  markers are removed from the title.
- Titles of 3 characters or fewer are dropped, and duplicates (case-insensitive) are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECTION_WORDS = ("tasks", "requirements", "deliverables", "goals", "features", "todo", "work items")
PRIORITY_WORDS = {
    "P0": ("(p0)", "[p0]", "critical", "blocker", "urgent"),
    "P1": ("(p1)", "[p1]", "high priority", "important", "must do"),
    "P3": ("(p3)", "[p3]", "low priority", "nice to have", "optional"),
}
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_CHECKBOX = re.compile(r"^\[[ xX]\]\s*")
_MARKER = re.compile(r"[(\[]\s*p[0-3]\s*[)\]]", re.IGNORECASE)
MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class Suggestion:
    title: str
    priority: str
    description: str = ""

    def as_json(self) -> dict:
        return {"title": self.title, "description": self.description, "priority": self.priority}


@dataclass(frozen=True)
class ParsedProject:
    title: str | None
    description: str
    suggestions: list[Suggestion]


def priority_of(text: str) -> str:
    lowered = text.lower()
    for priority in ("P0", "P1", "P3"):
        if any(word in lowered for word in PRIORITY_WORDS[priority]):
            return priority
    return "P2"


def _clean_title(text: str) -> str:
    text = _MARKER.sub("", text)
    text = re.sub(r"\*\*|__|`", "", text)  # emphasis and code marks
    return re.sub(r"\s+", " ", text).strip(" -:–—")


def parse(markdown: str) -> ParsedProject:
    title = None
    description_lines: list[str] = []
    in_intro = False
    in_task_section = False
    suggestions: list[Suggestion] = []
    seen: set[str] = set()
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and title is None:
            title = stripped[2:].strip()
            in_intro = True
            continue
        if stripped.startswith("## "):
            in_intro = False
            heading = stripped[3:].lower()
            in_task_section = any(word in heading for word in SECTION_WORDS)
            continue
        if stripped.startswith("#"):
            continue  # deeper headings keep the current section
        if in_intro and stripped:
            description_lines.append(stripped)
            continue
        if not in_task_section:
            continue
        match = _BULLET.match(line)
        if not match:
            continue
        text = match.group(1).strip()
        checkbox = _CHECKBOX.match(text)
        if checkbox:
            text = text[checkbox.end():]
        elif text.startswith(("[", "(")):
            continue
        clean = _clean_title(text)
        if len(clean) <= 3 or clean.lower() in seen:
            continue
        seen.add(clean.lower())
        suggestions.append(Suggestion(title=clean[:500], priority=priority_of(text)))
    description = " ".join(description_lines)[:MAX_DESCRIPTION]
    return ParsedProject(title=title, description=description, suggestions=suggestions)
