"""The AI card on the home dashboard: spend, and whether the built-in writer is in use."""

from __future__ import annotations

from apps.ai.selectors import usage_summary
from apps.core.registry import Card


def cards(request) -> list[Card]:
    summary = usage_summary(agency_id=request.tenant.membership.agency_id)
    return [Card("AI", "ai/cards/usage.html", summary, order=70)]
