"""One blueprint per area of the app. Each module in AREAS defines `blueprint`; NAVIGATION is the main
menu as (label, endpoint) — an entry shows only once its area is registered."""

AREAS = ("health", "auth", "overview", "pages", "board", "tasks", "approvals", "agents", "associations", "message",
         "activity", "costs", "projects", "live", "admin", "audit", "settings", "approval_rules", "webhooks",
         "gateways")

NAVIGATION = (
    ("Overview", "overview.overview_page"),
    ("Board", "board.board_page"),
    ("Approvals", "approvals.approvals_page"),
    ("Agents", "agents.roster_page"),
    ("Costs", "costs.costs_page"),
    ("Projects", "projects.projects_page"),
    ("Status", "pages.status"),
)
