"""One blueprint per area of the app, registered in this order; NAVIGATION is the main menu as
(label, endpoint) — an entry shows only once its area is registered."""

from . import (activity, admin, agents, approval_rules, approvals, associations, audit, auth, board, costs, gateways,
               health, live, message, overview, pages, projects, settings, tasks, webhooks)

BLUEPRINTS = tuple(area.blueprint for area in (
    health, auth, overview, pages, board, tasks, approvals, agents, associations, message, activity, costs,
    projects, live, admin, audit, settings, approval_rules, webhooks, gateways))

NAVIGATION = (
    ("Overview", "overview.overview_page"),
    ("Board", "board.board_page"),
    ("Approvals", "approvals.approvals_page"),
    ("Agents", "agents.roster_page"),
    ("Costs", "costs.costs_page"),
    ("Projects", "projects.projects_page"),
    ("Status", "pages.status"),
)
