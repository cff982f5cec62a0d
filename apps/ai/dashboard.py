"""The AI card on the home dashboard: calls, spend (owners and managers only, like the cost page),
and whether the built-in writer is in use."""

from __future__ import annotations

from apps.accounts.permissions import Perm, has_perm
from apps.ai.selectors import usage_summary
from apps.core.registry import Card


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    summary = usage_summary(agency_id=membership.agency_id)
    if not has_perm(membership, Perm.EDIT):
        summary["cost"] = None  # spend is the agency's business figure (docs/ai-cost.md, "Who sees it")
    return [Card("AI", "ai/cards/usage.html", summary, order=70)]
