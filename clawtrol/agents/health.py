"""Agent and session health, derived from what the gateway reports (no agent-side heartbeat needed).

States, per session:
- `offline`: this app's connection to the gateway is down;
- `stalled`: a run is in progress and nothing moved for the stall threshold (STALL_MINUTES);
- `working`: a run is in progress and something moved more recently than that;
- `error`: no run in progress and the last one failed (status failed/timeout, abortedLastRun, an error event);
- `idle`: anything else.

"Something moved" (activity) is any change of the sessions.list row's updatedAt, lastActivityAt, lastRunId or
token counts, a run starting, or a chat/agent/session event naming the session. The tracker remembers, per
session, when it last saw activity on its own clock; a session seen for the first time takes the gateway's own
latest timestamp. An agent's state is its sessions' worst: stalled, then working, then its most recent session's
error, else idle (offline when the gateway is).

The tracker is an in-memory cache fed by the poller (health_poller.py); pages and the API only read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

STATES = ("working", "idle", "stalled", "offline", "error")
WORKING_MS = 2 * 60 * 1000  # a run with activity this recent is plainly working
RUNNING_STATUSES = frozenset({"running", "queued"})
ERROR_STATUSES = frozenset({"failed", "timeout"})  # "killed" is an operator's abort, not an error
ACTIVITY_EVENTS = ("agent", "chat", "session.message", "session.tool", "sessions.changed")


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def is_running(row: dict) -> bool:
    """hasActiveRun is the gateway's authoritative flag; older rows only have a run status."""
    if isinstance(row.get("hasActiveRun"), bool):
        return row["hasActiveRun"]
    return row.get("status") in RUNNING_STATUSES


def ended_in_error(row: dict) -> bool:
    if is_running(row):
        return False
    status = row.get("status")
    return (status in ERROR_STATUSES or row.get("abortedLastRun") is True
            or (status is None and bool(row.get("lastRunError"))))


def row_activity(row: dict) -> int | None:
    """The gateway's own latest activity time for a row (epoch ms)."""
    times = [t for t in (_ms(row.get("updatedAt")), _ms(row.get("lastActivityAt"))) if t is not None]
    return max(times) if times else None


def marker(row: dict) -> tuple:
    """What changes when a session does anything: a different marker between two polls is activity."""
    return tuple(row.get(name) for name in ("updatedAt", "lastActivityAt", "lastRunId", "inputTokens",
                                            "outputTokens", "totalTokens"))


def agent_of(session_key: str) -> str | None:
    parts = session_key.split(":")
    return parts[1] if len(parts) >= 3 and parts[0] == "agent" and parts[1] else None


@dataclass
class Observed:
    key: str
    agent_id: str | None
    label: str | None
    running: bool
    error: bool
    activity_ms: int             # last activity, on this app's clock
    marker: tuple = ()
    gateway_activity_ms: int | None = None  # the row's own timestamp: the same in every app process
    state: str | None = None     # the state the last check() saw (transitions are announced from it)

    @property
    def stall_id(self) -> int:
        """Identifies one quiet period of this session, identically in every process watching the gateway."""
        return self.gateway_activity_ms or self.activity_ms


def state_of(observed: Observed, now: int, connected: bool, stall_ms: int) -> str:
    if not connected:
        return "offline"
    if observed.running:
        return "stalled" if now - observed.activity_ms >= stall_ms else "working"
    return "error" if observed.error else "idle"


class HealthTracker:
    """The per-process cache of session activity. `clock` (epoch ms) and `connected` are injectable."""

    def __init__(self, stall_minutes: float, *, clock: Callable[[], int] = now_ms,
                 connected: Callable[[], bool] = lambda: True):
        self.stall_ms = int(stall_minutes * 60_000)
        self.clock = clock
        self.connected = connected
        self.sessions: dict[str, Observed] = {}
        self.agents: list[dict] = []  # the last agents.list, so the roster can show agents while offline
        self.default_agent: str | None = None

    # --- feeding -----------------------------------------------------------------------------------

    def observe(self, rows: list[dict], complete: bool = True) -> None:
        """Rows of sessions.list; `complete`: the list covers every session (forget the ones not in it)."""
        now = self.clock()
        seen = set()
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("key"), str):
                self.observe_row(row, now)
                seen.add(row["key"])
        if complete:
            for key in set(self.sessions) - seen:
                del self.sessions[key]

    def observe_row(self, row: dict, now: int | None = None) -> Observed:
        now = self.clock() if now is None else now
        key, previous, running = row["key"], self.sessions.get(row["key"]), is_running(row)
        current = marker(row)
        gateway_time = row_activity(row)
        if previous is None:
            activity = min(now, gateway_time) if gateway_time else now
        elif current != previous.marker or (running and not previous.running):
            activity = now
        else:
            activity = previous.activity_ms
        error = ended_in_error(row) or bool(previous and previous.error and not running and current == previous.marker)
        observed = Observed(key, row.get("agentId") or agent_of(key), row.get("label") or row.get("displayName"),
                            running, error, activity, current, gateway_time, previous.state if previous else None)
        self.sessions[key] = observed
        return observed

    def observe_event(self, name: str, payload: Any) -> None:
        """A gateway event: activity for the session it names; run start, end and failure where it says so."""
        if not isinstance(payload, dict):
            return
        if name == "sessions.changed" and isinstance(payload.get("session"), dict) and payload["session"].get("key"):
            self.observe_row(payload["session"])
            return
        key = payload.get("sessionKey") or payload.get("key")
        if not isinstance(key, str) or not key:
            return
        now = self.clock()
        observed = self.sessions.get(key)
        if observed is None:
            observed = self.sessions[key] = Observed(key, agent_of(key), None, True, False, now)
        observed.activity_ms = now
        phase = (payload.get("data") or {}).get("phase") if isinstance(payload.get("data"), dict) else None
        lifecycle = name == "agent" and payload.get("stream") == "lifecycle"
        if (name == "chat" and payload.get("state") == "error") or (lifecycle and phase == "error"):
            observed.running, observed.error = False, True
        elif (name == "chat" and payload.get("state") in ("final", "aborted")) or (lifecycle and phase == "end"):
            observed.running, observed.error = False, False
        elif lifecycle and phase == "start":
            observed.running, observed.error = True, False

    # --- reading (cheap: no gateway call) ------------------------------------------------------------

    def session_state(self, session_key: str | None) -> str | None:
        """The state of a session this tracker knows (None for one it has not seen)."""
        observed = self.sessions.get(session_key) if session_key else None
        if observed is None:
            return "offline" if session_key and not self.connected() else None
        return state_of(observed, self.clock(), self.connected(), self.stall_ms)

    def agent_states(self) -> dict[str, str]:
        """Every agent's state, by agent id (agents without sessions are idle, or offline)."""
        now, connected = self.clock(), self.connected()
        rank = {"stalled": 2, "working": 1}  # otherwise (rank 0) the most recent session decides: error or idle
        best: dict[str, tuple[int, int, str]] = {}  # agent → (rank, latest activity, state)
        for observed in self.sessions.values():
            if not observed.agent_id:
                continue
            state = state_of(observed, now, connected, self.stall_ms)
            candidate = (rank.get(state, 0), observed.activity_ms, state)
            if observed.agent_id not in best or candidate[:2] > best[observed.agent_id][:2]:
                best[observed.agent_id] = candidate
        states = {agent: found[2] for agent, found in best.items()}
        for agent in self.agents:
            states.setdefault(agent["id"], "offline" if not connected else "idle")
        return states

    def agent_state(self, agent_id: str) -> str:
        return self.agent_states().get(agent_id, "idle" if self.connected() else "offline")

    def describe_session(self, session: dict) -> str:
        """The state of a session in this app's session shape (roster.session_json): from the cache, or for a
        session not polled yet, from the row alone (its own timestamps, as on first sight)."""
        known = self.session_state(session.get("sessionKey"))
        if known is not None:
            return known
        now = self.clock()
        updated = _ms(session.get("updatedAt"))
        observed = Observed(session.get("sessionKey") or "", session.get("agentId"), session.get("label"),
                            bool(session.get("running")), session.get("status") in ERROR_STATUSES,
                            min(now, updated) if updated else now)
        return state_of(observed, now, self.connected(), self.stall_ms)

    def annotate_sessions(self, sessions: list[dict]) -> list[dict]:
        for session in sessions:
            session["health"] = self.describe_session(session)
        return sessions

    def annotate_agents(self, members: list[dict]) -> list[dict]:
        states = self.agent_states()
        fallback = "idle" if self.connected() else "offline"
        for member in members:
            member["health"] = states.get(member["id"], fallback)
        return members

    def last_roster(self) -> list[dict]:
        """The roster as of the last poll, every agent offline: what the roster page shows while disconnected."""
        from .roster import member_json

        sessions = sorted(self.sessions.values(), key=lambda o: o.gateway_activity_ms or o.activity_ms, reverse=True)
        members = []
        for agent in self.agents:
            own = [{"sessionKey": o.key, "running": o.running, "updatedAt": o.gateway_activity_ms}
                   for o in sessions if o.agent_id == agent["id"]]
            members.append({**member_json(agent, self.default_agent, own), "status": "offline", "health": "offline"})
        return members

    def stalled(self) -> list[dict]:
        """Stalled sessions, the longest quiet first."""
        now, connected = self.clock(), self.connected()
        found = [o for o in self.sessions.values() if state_of(o, now, connected, self.stall_ms) == "stalled"]
        return [as_json(o, "stalled", now) for o in sorted(found, key=lambda o: o.activity_ms)]

    # --- transitions ---------------------------------------------------------------------------------

    def newly_stalled(self) -> list[Observed]:
        """Sessions that became stalled since the previous call (each stall once); records every state."""
        now, connected = self.clock(), self.connected()
        found = []
        for observed in self.sessions.values():
            state = state_of(observed, now, connected, self.stall_ms)
            if state == "stalled" and observed.state != "stalled":
                found.append(observed)
            if state != "offline":  # a disconnect says nothing about the session: keep what it was
                observed.state = state
        return found


def as_json(observed: Observed, state: str, now: int) -> dict:
    return {"sessionKey": observed.key, "agentId": observed.agent_id, "label": observed.label, "health": state,
            "lastActivity": observed.activity_ms, "quietMs": max(0, now - observed.activity_ms)}
