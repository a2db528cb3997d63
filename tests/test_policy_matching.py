"""Approval rules, the pure part (clawtrol/policies/matching.py): every matcher, order, first wins, disabled
and expired rules, compound commands, patterns and their limits."""

from __future__ import annotations

import pytest

from clawtrol.policies.matching import (
    MAX_PATTERN, BadPattern, Rule, Subject, compile_pattern, evaluate, is_compound, under)

NOW = "2026-06-01T12:00:00.000Z"


def rule(name: str, action: str = "allow-once", **matchers) -> Rule:
    return Rule(id=f"id-{name}", name=name, action=action, **matchers)


def decide(rules: list[Rule], command: str, **facts) -> tuple[str, str | None]:
    verdict = evaluate(rules, Subject(command, **facts), NOW)
    return verdict.action, verdict.rule.name if verdict.rule else None


@pytest.mark.parametrize("pattern, command, matches", [
    ("git status*", "git status", True),
    ("git status*", "git status --short", True),
    ("git status*", "git  status", False),
    ("git status*", "sudo git status", False),       # the whole command line, not a substring
    ("ls *", "ls -la /srv", True),
    ("ls *", "ls", False),
    ("ls ?", "ls a", True),
    ("cat [abc].txt", "cat b.txt", True),
    ("cat [!abc].txt", "cat b.txt", False),
    ("npm test", "npm test", True),
    ("npm test", "NPM TEST", False),                 # globs are case-sensitive
    ("/^git (status|log)( .*)?$/", "git log --oneline", True),
    ("/^git (status|log)( .*)?$/", "git push", False),
    ("/git (status|log)/", "rm -rf / # git status", False),  # a regex must match the whole line too
    ("/make (test|lint)/i", "MAKE TEST", True),
    ("/pytest.*/", "pytest -q tests/", True),
])
def test_patterns_match_the_whole_command(pattern, command, matches):
    assert compile_pattern(pattern).matches(command) is matches


@pytest.mark.parametrize("pattern, reason", [
    ("/[unclosed/", "not a valid regular expression"),
    ("/(a{50}){50}(b{50})/", "too complex"),
    ("/a{1000}/", "too complex"),
    ("//", "an empty regular expression"),
    ("x" * (MAX_PATTERN + 1), f"at most {MAX_PATTERN} characters"),
    ("   ", "an empty pattern"),
])
def test_bad_patterns_are_refused_with_the_reason(pattern, reason):
    with pytest.raises(BadPattern, match=reason):
        compile_pattern(pattern)


@pytest.mark.parametrize("command", [
    "git status; rm -rf ~", "git status && curl x | sh", "git status || true", "git status | tee x",
    "git status `id`", "git status $(id)", "git status > /etc/passwd", "git status < /dev/zero",
    "git status\nrm -rf /", "git status & disown",
])
def test_compound_commands_never_match_allow_once(command):
    assert is_compound(command)
    allow = rule("git read", command_pattern="git status*")
    assert decide([allow], command) == ("ask", None)
    # unless the rule says so; deny and ask rules match them as written
    assert decide([rule("git any", command_pattern="git status*", allow_compound=True)], command)[0] == "allow-once"
    assert decide([rule("no git", "deny", command_pattern="git status*")], command) == ("deny", "no git")


def test_plain_commands_are_not_compound():
    for command in ("git status", "ls -la /srv/app", "echo 'a b' \"c\"", "python -c 'print(1)'"):
        assert not is_compound(command)


def test_every_matcher_must_fit():
    r = rule("scoped", command_pattern="make *", agent_id="builder", cwd_prefix="/srv/app", host="Gateway",
             project_id="web")
    facts = {"agent_id": "builder", "cwd": "/srv/app/sub", "host": "gateway", "project_id": "web"}
    assert decide([r], "make test", **facts) == ("allow-once", "scoped")
    for key, other in (("agent_id", "other"), ("cwd", "/srv/application"), ("host", "edge"), ("project_id", "api"),
                       ("agent_id", None), ("cwd", None), ("project_id", None)):
        assert decide([r], "make test", **{**facts, key: other}) == ("ask", None), key
    assert decide([r], "npm test", **facts) == ("ask", None)


@pytest.mark.parametrize("cwd, prefix, inside", [
    ("/srv/app", "/srv/app", True), ("/srv/app/x/y", "/srv/app/", True), ("/srv/app2", "/srv/app", False),
    ("/srv/app/../../etc", "/srv/app", False), ("//srv//app/./x", "/srv/app", True), ("/etc", "/", True),
    ("srv/app", "/srv/app", False), (None, "/srv", False),
])
def test_cwd_prefix_is_a_path_prefix(cwd, prefix, inside):
    assert under(cwd, prefix) is inside


def test_first_matching_rule_wins_in_order():
    deny_force = rule("no force push", "deny", command_pattern="git push*--force*")
    allow_git = rule("git", command_pattern="git *")
    assert decide([deny_force, allow_git], "git push origin --force") == ("deny", "no force push")
    assert decide([allow_git, deny_force], "git push origin --force") == ("allow-once", "git")
    assert decide([deny_force, allow_git], "git fetch") == ("allow-once", "git")


def test_ask_stops_evaluation_and_no_match_asks():
    ask = rule("humans decide deploys", "ask", command_pattern="*deploy*")
    allow = rule("make", command_pattern="make *")
    assert decide([ask, allow], "make deploy") == ("ask", "humans decide deploys")
    assert decide([ask, allow], "make test") == ("allow-once", "make")
    assert decide([], "anything") == ("ask", None)


def test_disabled_and_expired_rules_are_skipped():
    off = rule("off", command_pattern="ls*", enabled=False)
    expired = rule("expired", command_pattern="ls*", expires_at="2026-06-01T11:59:59.999Z")
    later = rule("later", command_pattern="ls*", expires_at="2026-06-01T12:00:00.001Z")
    assert decide([off, expired, later], "ls") == ("allow-once", "later")
    assert decide([off, expired], "ls") == ("ask", None)


def test_a_slow_pattern_asks_a_person_and_stops_evaluation():
    slow = rule("slow deny", "deny", command_pattern="/(a|aa)+$/")
    allow = rule("allow a", command_pattern="a*")
    verdict = evaluate([slow, allow], Subject("a" * 5000 + "b"), NOW, budget=0.02)
    assert verdict.action == "ask" and verdict.rule is None and verdict.timed_out


def test_globs_do_not_backtrack_on_long_commands():
    # fnmatch translates each `*` to an atomic group: this returns at once instead of running for ages
    assert compile_pattern("*a*a*a*a*a*a*a*a*a*a*b").matches("a" * 20_000) is False
    assert compile_pattern("*a*a*a*a*a*a*a*a*a*a*b").matches("a" * 20_000 + "b") is True
