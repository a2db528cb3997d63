"""Agent and session health, derived from what the gateway reports (no agent-side heartbeat needed).

States, per session:
- `offline`: this app's connection to the session's gateway is down;
- `stalled`: a run is in progress and nothing moved for the stall threshold (STALL_MINUTES);
- `working`: a run is in progress and something moved more recently than that;
- `error`: no run in progress and the last one failed (status failed/timeout, abortedLastRun, an error event);
- `idle`: anything else.

"Something moved" (activity) is any change of the sessions.list row's updatedAt, lastActivityAt, lastRunId or
token counts, a run starting, or a chat/agent/session event naming the session. The tracker remembers, per
session, when it last saw activity on its own clock; a session seen for the first time takes the gateway's own
latest timestamp. An agent's state is its sessions' worst: stalled, then working, then its most recent session's
error, else idle (offline when the gateway is).

Everything is per gateway: a session is (gateway id, session key), an agent is an agent of one gateway, and
`offline` is that gateway's connection alone.

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
DEFAULT_GATEWAY = "default"  # the gateway rows from before several gateways belong to


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
    gateway_id: str = DEFAULT_GATEWAY

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
    """The per-process cache of session activity, per gateway: sessions are keyed (gateway id, session key).
    `clock` (epoch ms) and `connected(gateway_id)` are injectable."""

    def __init__(self, stall_minutes: float, *, clock: Callable[[], int] = now_ms,
                 connected: Callable[[str], bool] = lambda _gateway_id: True):
        self.stall_ms = int(stall_minutes * 60_000)
        self.clock = clock
        self.connected = connected
        self.sessions: dict[tuple[str, str], Observed] = {}
        self.agents: dict[str, list[dict]] = {}  # per gateway, its last agents.list (the roster while offline)
        self.default_agent: dict[str, str | None] = {}

    # --- feeding -----------------------------------------------------------------------------------

    def observe(self, gateway_id: str, rows: list[dict], complete: bool = True) -> None:
        """Rows of a gateway's sessions.list; `complete`: the list covers every session of that gateway (forget
        the ones not in it)."""
        now = self.clock()
        seen = set()
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("key"), str):
                self.observe_row(gateway_id, row, now)
                seen.add((gateway_id, row["key"]))
        if complete:
            for ident in [ident for ident in self.sessions if ident[0] == gateway_id and ident not in seen]:
                del self.sessions[ident]

    def set_agents(self, gateway_id: str, agents: list[dict], default_id: str | None) -> None:
        self.agents[gateway_id], self.default_agent[gateway_id] = agents, default_id

    def forget_gateways(self, keep: set[str]) -> None:
        """Drop what is known of gateways no longer enabled (removed or disabled records)."""
        for ident in [ident for ident in self.sessions if ident[0] not in keep]:
            del self.sessions[ident]
        for gateway_id in [gateway_id for gateway_id in self.agents if gateway_id not in keep]:
            self.agents.pop(gateway_id, None)
            self.default_agent.pop(gateway_id, None)

    def observe_row(self, gateway_id: str, row: dict, now: int | None = None) -> Observed:
        now = self.clock() if now is None else now
        ident = (gateway_id, row["key"])
        key, previous, running = row["key"], self.sessions.get(ident), is_running(row)
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
                            running, error, activity, current, gateway_time, previous.state if previous else None,
                            gateway_id)
        self.sessions[ident] = observed
        return observed

    def observe_event(self, gateway_id: str, name: str, payload: Any) -> None:
        """A gateway event: activity for the session it names; run start, end and failure where it says so."""
        if not isinstance(payload, dict):
            return
        if name == "sessions.changed" and isinstance(payload.get("session"), dict) and payload["session"].get("key"):
            self.observe_row(gateway_id, payload["session"])
            return
        key = payload.get("sessionKey") or payload.get("key")
        if not isinstance(key, str) or not key:
            return
        now = self.clock()
        observed = self.sessions.get((gateway_id, key))
        if observed is None:
            observed = self.sessions[(gateway_id, key)] = Observed(key, agent_of(key), None, True, False, now,
                                                                   gateway_id=gateway_id)
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

    def _find(self, session_key: str, gateway_id: str | None) -> Observed | None:
        if gateway_id is not None:
            return self.sessions.get((gateway_id, session_key))
        found = [o for (_, key), o in self.sessions.items() if key == session_key]
        return found[0] if len(found) == 1 else None

    def session_state(self, session_key: str | None, gateway_id: str | None = None) -> str | None:
        """The state of a session this tracker knows on that gateway (None for one it has not seen). Without a
        gateway id: the one session of that key any gateway has (None when none or several)."""
        if not session_key:
            return None
        observed = self._find(session_key, gateway_id)
        if observed is None:
            return "offline" if gateway_id is not None and not self.connected(gateway_id) else None
        return state_of(observed, self.clock(), self.connected(observed.gateway_id), self.stall_ms)

    def agent_states(self, gateway_id: str) -> dict[str, str]:
        """Every agent's state on one gateway, by agent id (agents without sessions are idle, or offline)."""
        now, connected = self.clock(), self.connected(gateway_id)
        rank = {"stalled": 2, "working": 1}  # otherwise (rank 0) the most recent session decides: error or idle
        best: dict[str, tuple[int, int, str]] = {}  # agent → (rank, latest activity, state)
        for (session_gateway, _), observed in self.sessions.items():
            if session_gateway != gateway_id or not observed.agent_id:
                continue
            state = state_of(observed, now, connected, self.stall_ms)
            candidate = (rank.get(state, 0), observed.activity_ms, state)
            if observed.agent_id not in best or candidate[:2] > best[observed.agent_id][:2]:
                best[observed.agent_id] = candidate
        states = {agent: found[2] for agent, found in best.items()}
        for agent in self.agents.get(gateway_id, []):
            states.setdefault(agent["id"], "offline" if not connected else "idle")
        return states

    def agent_state(self, gateway_id: str, agent_id: str) -> str:
        return self.agent_states(gateway_id).get(agent_id, "idle" if self.connected(gateway_id) else "offline")

    def describe_session(self, gateway_id: str, session: dict) -> str:
        """The state of a session in this app's session shape (roster.session_json): from the cache, or for a
        session not polled yet, from the row alone (its own timestamps, as on first sight)."""
        known = self.session_state(session.get("sessionKey"), gateway_id)
        if known is not None:
            return known
        now = self.clock()
        updated = _ms(session.get("updatedAt"))
        observed = Observed(session.get("sessionKey") or "", session.get("agentId"), session.get("label"),
                            bool(session.get("running")), session.get("status") in ERROR_STATUSES,
                            min(now, updated) if updated else now, gateway_id=gateway_id)
        return state_of(observed, now, self.connected(gateway_id), self.stall_ms)

    def annotate_sessions(self, gateway_id: str, sessions: list[dict]) -> list[dict]:
        for session in sessions:
            session["health"] = self.describe_session(gateway_id, session)
        return sessions

    def annotate_agents(self, gateway_id: str, members: list[dict]) -> list[dict]:
        states = self.agent_states(gateway_id)
        fallback = "idle" if self.connected(gateway_id) else "offline"
        for member in members:
            member["health"] = states.get(member["id"], fallback)
        return members

    def last_roster(self, gateway_id: str) -> list[dict]:
        """A gateway's roster as of its last poll, every agent offline: what the roster shows while it is
        disconnected."""
        from .roster import member_json

        sessions = sorted((o for (g, _), o in self.sessions.items() if g == gateway_id),
                          key=lambda o: o.gateway_activity_ms or o.activity_ms, reverse=True)
        members = []
        for agent in self.agents.get(gateway_id, []):
            own = [{"sessionKey": o.key, "running": o.running, "updatedAt": o.gateway_activity_ms}
                   for o in sessions if o.agent_id == agent["id"]]
            members.append({**member_json(agent, self.default_agent.get(gateway_id), own), "status": "offline",
                            "health": "offline", "gatewayId": gateway_id})
        return members

    def stalled(self) -> list[dict]:
        """Stalled sessions of every gateway, the longest quiet first."""
        now = self.clock()
        found = [o for o in self.sessions.values()
                 if state_of(o, now, self.connected(o.gateway_id), self.stall_ms) == "stalled"]
        return [as_json(o, "stalled", now) for o in sorted(found, key=lambda o: o.activity_ms)]

    # --- transitions ---------------------------------------------------------------------------------

    def newly_stalled(self) -> list[Observed]:
        """Sessions that became stalled since the previous call (each stall once); records every state."""
        now = self.clock()
        found = []
        for observed in self.sessions.values():
            state = state_of(observed, now, self.connected(observed.gateway_id), self.stall_ms)
            if state == "stalled" and observed.state != "stalled":
                found.append(observed)
            if state != "offline":  # a disconnect says nothing about the session: keep what it was
                observed.state = state
        return found


def as_json(observed: Observed, state: str, now: int) -> dict:
    return {"sessionKey": observed.key, "gatewayId": observed.gateway_id, "agentId": observed.agent_id,
            "label": observed.label, "health": state, "lastActivity": observed.activity_ms, "quietMs": max(0, now - observed.activity_ms)}
