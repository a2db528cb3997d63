"""Which rule, if any, decides an approval: pure functions over rules and one approval, no I/O.

Rules are tried in order; the first enabled, unexpired rule whose matchers all fit wins, and no match means
"ask" (a person decides). Matchers are optional and ANDed: `agentId`, `projectId` (the linked task's
project) and `gatewayId` (the gateway the approval came from) exactly, `host` ignoring case, `cwdPrefix` as a path prefix (compared after normalising `..` and
duplicate slashes, so `/srv/app/../../etc` is not under `/srv/app`), and `commandPattern`, a pattern that must
match the **whole** command line: a glob (`git status*`, `ls *`; `*` and `?` match any character, spaces and
slashes included, `[…]` a set) or, written `/…/` or `/…/i`, a regular expression.

Safety:
- a command with a shell control operator (`;` `&` `|` `` ` `` `$(` `>` `<` or a line break) never matches an
  `allow-once` rule unless the rule sets `allowCompound` — `git status; rm -rf ~` is not `git status`;
- patterns are compiled when a rule is saved (at most MAX_PATTERN characters and MAX_COUNTED counted
  repetitions; an invalid or too complex one is refused). Globs cannot backtrack badly; regular expressions
  run under a time budget (the `regex` module's timeout): one that exceeds it ends the evaluation with "ask",
  so a slow `deny` pattern can never let a later `allow-once` rule through.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

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


@dataclass(frozen=True)
class Pattern:
    """A compiled command pattern. Globs run on the standard library's `re` (fnmatch translates them with
    atomic groups, so they never backtrack badly); regular expressions on `regex`, under a timeout."""

    compiled: Any  # re.Pattern for a glob, regex.Pattern for a regular expression
    timed: bool

    def matches(self, command: str, timeout: float = MATCH_BUDGET) -> bool:
        """Whether the pattern matches the whole command; TimeoutError past `timeout` seconds."""
        if self.timed:
            return self.compiled.fullmatch(command, timeout=timeout) is not None
        return self.compiled.fullmatch(command) is not None


@lru_cache(maxsize=2048)
def compile_pattern(text: str) -> Pattern:
    """The compiled form of a command pattern: `/regex/` or `/regex/i`, else a glob; BadPattern says why not."""
    if len(text) > MAX_PATTERN:
        raise BadPattern(f"at most {MAX_PATTERN} characters")
    if "\x00" in text:
        raise BadPattern("must not contain NUL characters")
    if not is_regex(text):
        if not text.strip():
            raise BadPattern("an empty pattern")
        return Pattern(re.compile(fnmatch.translate(text)), timed=False)
    flags = regex.V0
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
        return Pattern(regex.compile(body, flags), timed=True)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        raise BadPattern(f"not a valid regular expression ({exc})") from None


def is_compound(command: str) -> bool:
    """Whether a command line contains a shell control operator (it may run more than one command)."""
    return _COMPOUND.search(command) is not None


def _normalised(path: str) -> str:
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("/") else path  # "//x" is "/x" here


@lru_cache(maxsize=4096)
def _directory(prefix: str) -> tuple[str, str]:
    """A cwdPrefix as (the directory itself, what paths under it start with)."""
    prefix = _normalised(prefix)
    return prefix, prefix.rstrip("/") + "/"


def _under(normalised_cwd: str, prefix: str) -> bool:
    directory, inside = _directory(prefix)
    return normalised_cwd == directory or normalised_cwd.startswith(inside)


def under(cwd: str | None, prefix: str) -> bool:
    """Whether directory `cwd` is `prefix` or inside it (after normalising both)."""
    return bool(cwd) and _under(_normalised(cwd), prefix)


class Rule(NamedTuple):
    """One rule as matching needs it (a tuple: quick to build from rows, quick to read)."""

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
    gateway_id: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Rule":
        return cls(row["id"], row["name"], row["action"], row.get("agent_id"), row.get("command_pattern"),
                   row.get("cwd_prefix"), row.get("host"), row.get("project_id"), bool(row.get("allow_compound")),
                   bool(row.get("enabled", True)), row.get("expires_at"), row.get("gateway_id"))


@dataclass(frozen=True)
class Subject:
    """What the rules look at in an approval."""

    command: str
    agent_id: str | None = None
    cwd: str | None = None
    host: str | None = None
    project_id: str | None = None
    gateway_id: str | None = None

    @classmethod
    def from_approval(cls, row: dict) -> "Subject":
        """From an approval_rows row (its project is the linked task's)."""
        return cls(row["command"], row.get("agent_id"), row.get("cwd"), row.get("host"), row.get("project_id"),
                   row.get("gateway_id"))


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
    cwd = _normalised(subject.cwd) if subject.cwd else None
    host = (subject.host or "").casefold()
    for rule in rules:
        if not rule.enabled or (rule.expires_at is not None and rule.expires_at <= now):
            continue
        if rule.agent_id is not None and rule.agent_id != subject.agent_id:
            continue
        if rule.project_id is not None and rule.project_id != subject.project_id:
            continue
        if rule.gateway_id is not None and rule.gateway_id != subject.gateway_id:
            continue
        if rule.host is not None and host != rule.host.casefold():
            continue
        if rule.cwd_prefix is not None and (cwd is None or not _under(cwd, rule.cwd_prefix)):
            continue
        if rule.action == "allow-once" and not rule.allow_compound:
            if compound is None:
                compound = is_compound(subject.command)
            if compound:
                continue
        if rule.command_pattern is not None:
            try:
                pattern = compile_pattern(rule.command_pattern)
                left = deadline - time.monotonic() if pattern.timed else budget
                if left <= 0:
                    return Verdict("ask", timed_out=True)
                if not pattern.matches(subject.command, left):
                    continue
            except TimeoutError:
                return Verdict("ask", timed_out=True)
            except BadPattern:
                continue  # saved before a limit changed: it matches nothing
        return Verdict(rule.action, rule)
    return ASK
