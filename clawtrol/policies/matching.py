"""Which rule, if any, decides an approval: pure functions over rules and one approval, no I/O.

Rules are tried in order; the first enabled, unexpired rule whose matchers all fit wins, and no match means
"ask" (a person decides). Matchers are optional and ANDed: `agentId` and `projectId` (the linked task's
project) exactly, `host` ignoring case, `cwdPrefix` as a path prefix (compared after normalising `..` and
duplicate slashes, so `/srv/app/../../etc` is not under `/srv/app`), and `commandPattern`, a pattern that must
match the **whole** command line: a glob (`git status*`, `ls *`; `*` and `?` match any character, spaces and
slashes included, `[…]` a set) or, written `/…/` or `/…/i`, a regular expression.

Safety:
- a command with a shell control operator (`;` `&` `|` `` ` `` `$(` `>` `<` or a line break) never matches an
  `allow-once` rule unless the rule sets `allowCompound` — `git status; rm -rf ~` is not `git status`;
- patterns are compiled when a rule is saved (at most MAX_PATTERN characters and MAX_COUNTED counted
  repetitions; an invalid or too complex one is refused), and
  matching runs under a time budget (the `regex` module's timeout): a pattern that exceeds it ends the
  evaluation with "ask", so a slow `deny` pattern can never let a later `allow-once` rule through.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from dataclasses import dataclass
from functools import lru_cache

import regex

ACTIONS = ("allow-once", "deny", "ask")
MAX_PATTERN = 300
# Counted repetitions ({n}, {n,m}) are unrolled when a pattern compiles: nested big ones take seconds and
# gigabytes. A pattern may have at most MAX_COUNTED of them, each bound at most MAX_COUNT.
MAX_COUNTED = 2
MAX_COUNT = 100
_COUNTED = re.compile(r"\{(\d*)(?:,(\d*))?\}")
MATCH_BUDGET = 0.05  # seconds for all the patterns of one evaluation
_COMPOUND = re.compile(r"[;&|`<>\n\r]|\$\(")


class BadPattern(ValueError):
    """A command pattern that cannot be used; the message says why."""


def is_regex(text: str) -> bool:
    """Whether a command pattern is written as a regular expression (`/…/` or `/…/i`) rather than a glob."""
    return len(text) >= 2 and text.startswith("/") and (text.endswith("/") or text.endswith("/i"))


@lru_cache(maxsize=2048)
def compile_pattern(text: str) -> regex.Pattern:
    """The compiled form of a command pattern: `/regex/` or `/regex/i`, else a glob."""
    if len(text) > MAX_PATTERN:
        raise BadPattern(f"at most {MAX_PATTERN} characters")
    if "\x00" in text:
        raise BadPattern("must not contain NUL characters")
    flags = regex.V0
    if is_regex(text):
        if text.endswith("/i") and len(text) >= 3:
            body, flags = text[1:-2], flags | regex.IGNORECASE
        else:
            body = text[1:-1]
        if not body:
            raise BadPattern("an empty regular expression")
        counted = _COUNTED.findall(body)
        if len(counted) > MAX_COUNTED or any(int(n) > MAX_COUNT for pair in counted for n in pair if n):
            raise BadPattern(f"too complex: at most {MAX_COUNTED} counted repetitions {{n,m}}, "
                             f"with bounds up to {MAX_COUNT}")
        try:
            return regex.compile(body, flags)
        except (regex.error, OverflowError, RecursionError, ValueError) as exc:
            raise BadPattern(f"not a valid regular expression ({exc})") from None
    if not text.strip():
        raise BadPattern("an empty pattern")
    return regex.compile(fnmatch.translate(text), flags)


def is_compound(command: str) -> bool:
    """Whether a command line contains a shell control operator (it may run more than one command)."""
    return _COMPOUND.search(command) is not None


def _normalised(path: str) -> str:
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("/") else path  # "//x" is "/x" here


def under(cwd: str | None, prefix: str) -> bool:
    if not cwd:
        return False
    cwd, prefix = _normalised(cwd), _normalised(prefix)
    return cwd == prefix or cwd.startswith(prefix.rstrip("/") + "/")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    action: str
    agent_id: str | None = None
    command_pattern: str | None = None
    cwd_prefix: str | None = None
    host: str | None = None
    project_id: str | None = None
    allow_compound: bool = False
    enabled: bool = True
    expires_at: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Rule":
        return cls(row["id"], row["name"], row["action"], row.get("agent_id"), row.get("command_pattern"),
                   row.get("cwd_prefix"), row.get("host"), row.get("project_id"), bool(row.get("allow_compound")),
                   bool(row.get("enabled", True)), row.get("expires_at"))


@dataclass(frozen=True)
class Subject:
    """What the rules look at in an approval."""

    command: str
    agent_id: str | None = None
    cwd: str | None = None
    host: str | None = None
    project_id: str | None = None

    @classmethod
    def from_approval(cls, row: dict) -> "Subject":
        """From an approval_rows row (its project is the linked task's)."""
        return cls(row["command"], row.get("agent_id"), row.get("cwd"), row.get("host"), row.get("project_id"))


@dataclass(frozen=True)
class Verdict:
    action: str  # "allow-once" | "deny" | "ask"
    rule: Rule | None = None
    timed_out: bool = False


ASK = Verdict("ask")


def evaluate(rules: list[Rule], subject: Subject, now: str, budget: float = MATCH_BUDGET) -> Verdict:
    """The first rule (in the order given) that decides `subject` at `now` (an ISO time), or ask."""
    deadline = time.monotonic() + budget
    compound: bool | None = None
    for rule in rules:
        if not rule.enabled or (rule.expires_at is not None and rule.expires_at <= now):
            continue
        if rule.agent_id is not None and rule.agent_id != subject.agent_id:
            continue
        if rule.project_id is not None and rule.project_id != subject.project_id:
            continue
        if rule.host is not None and (subject.host or "").casefold() != rule.host.casefold():
            continue
        if rule.cwd_prefix is not None and not under(subject.cwd, rule.cwd_prefix):
            continue
        if rule.action == "allow-once" and not rule.allow_compound:
            if compound is None:
                compound = is_compound(subject.command)
            if compound:
                continue
        if rule.command_pattern is not None:
            try:
                pattern = compile_pattern(rule.command_pattern)
                left = deadline - time.monotonic()
                if left <= 0:
                    return Verdict("ask", timed_out=True)
                if pattern.fullmatch(subject.command, timeout=left) is None:
                    continue
            except TimeoutError:
                return Verdict("ask", timed_out=True)
            except BadPattern:
                continue  # saved before a limit changed: it matches nothing
        return Verdict(rule.action, rule)
    return ASK
