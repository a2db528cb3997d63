"""Task filters from a query string, shared by the API list and the board."""

from __future__ import annotations

from dataclasses import dataclass

from ..auth.principal import Principal
from ..errors import InvalidInput
from ..payload import bad_text
from .model import STATUSES


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with LIKE's wildcards escaped (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class TaskFilters:
    project_id: str | None = None
    agent_id: str | None = None
    status: str | None = None
    assignee: str | None = None  # a user id, "me" or "unassigned"
    q: str | None = None

    @classmethod
    def from_args(cls, args, *, project_key: str = "projectId") -> "TaskFilters":
        def value(*names: str) -> str | None:
            for name in names:
                raw = args.get(name)
                if raw is not None and raw.strip():
                    problem = bad_text(raw)  # also filters read from HX-Current-URL, not only the query
                    if problem:
                        raise InvalidInput(f"{name}: {problem}", field=name)
                    return raw.strip()
            return None

        status = value("status")
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status: must be one of {', '.join(STATUSES)}", field="status")
        q = value("q")
        if q is not None and len(q) > 200:
            raise InvalidInput("q: at most 200 characters", field="q")
        return cls(project_id=value(project_key, "projectId", "project"), agent_id=value("agentId"),
                   status=status, assignee=value("assignee"), q=q)

    def params(self, principal: Principal | None, *, with_status: bool = True, with_agent: bool = True) -> dict:
        """Named-query parameters (NULL = no filter)."""
        assigned_to = None
        if self.assignee not in (None, "unassigned"):
            assigned_to = principal.id if self.assignee == "me" and principal else self.assignee
        params = {
            "project_id": self.project_id,
            "assigned_to": assigned_to,
            "unassigned": 1 if self.assignee == "unassigned" else 0,
            "q": like_pattern(self.q) if self.q else None,
        }
        if with_agent:
            params["agent_id"] = self.agent_id
        if with_status:
            params["status"] = self.status
        return params

    def query_string(self) -> dict:
        """The board's URL parameters for these filters (empty ones left out)."""
        pairs = {"q": self.q, "assignee": self.assignee, "project": self.project_id}
        return {k: v for k, v in pairs.items() if v}
