"""The AI cost card on the home dashboard: the month's spend against the agency-wide budget.

Owners and managers only (like the cost page); two queries whatever the data size."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from apps.accounts.permissions import Perm, has_perm
from apps.core.registry import Card
from apps.monitoring.budgets import budget_month_spend, budget_progress, ledger_spend, month_start
from apps.monitoring.models import Budget


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    if not has_perm(membership, Perm.EDIT):
        return []
    month = month_start(timezone.now())
    spent = ledger_spend(agency_id=membership.agency_id, creator_id=None, month=month)
    budget = Budget.objects.for_agency(membership.agency_id).filter(creator__isnull=True).first()
    data: dict = {"month": month, "spent": spent, "limit": None}
    if budget is not None:
        spent = budget_month_spend(budget, ledger_usd=spent, month=month)
        progress = budget_progress(budget, spent)
        data.update(spent=spent, limit=budget.monthly_usd, percent=progress["percent"], bar=progress["bar"],
                    hard_stop=budget.hard_stop)  # fmt: skip
    data["spent"] = Decimal(data["spent"])
    return [Card("AI cost", "monitoring/cards/cost.html", data, order=75)]
