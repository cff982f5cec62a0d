"""Reads for the billing pages: the agency's plan and usage, the month's AI credits and their
linear forecast, the plan catalogue."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.billing import entitlements
from apps.billing.models import Plan, Subscription, SubscriptionChange


@dataclass
class LimitUsage:
    name: str
    label: str
    used: int
    limit: int | None

    @property
    def percent(self) -> float:
        return self.used / self.limit * 100 if self.limit else 0.0

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.filter(is_public=True).order_by("position", "id")


def credits_forecast(*, used: int, now: datetime) -> int:
    """The month's credits if use goes on at this month's pace so far (linear)."""
    days = calendar.monthrange(now.year, now.month)[1]
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elapsed = max((now - start).total_seconds() / 86400, 1 / 24)  # at least an hour: no huge early jumps
    return round(used / elapsed * days)


def usage_list(*, agency_id: int, found: entitlements.Entitlements | None = None) -> list[LimitUsage]:
    """The agency's use of each plan limit (creators, seats, AI credits this month): the one place
    the billing page and the API read them from. Any member may read it."""
    found = found or entitlements.entitlements_for(agency_id)
    return [
        LimitUsage(name, entitlements.LIMIT_LABELS[name], entitlements.usage(agency_id, name), found.limit(name))
        for name in entitlements.LIMITS
    ]


def billing_overview(*, membership: Membership, now: datetime | None = None) -> dict[str, Any]:
    """What the billing page shows; owners only (PermissionDenied otherwise)."""
    require(membership, Perm.MANAGE_BILLING)
    now = now or timezone.now()
    agency_id = membership.agency_id
    subscription = Subscription.objects.select_related("plan", "assigned_by").filter(agency_id=agency_id).first()
    found = entitlements.entitlements_for(agency_id)
    rows = usage_list(agency_id=agency_id, found=found)
    credits = next(row for row in rows if row.name == "ai_credits")
    trial_days_left = None
    if subscription and subscription.status == Subscription.Status.TRIALING and subscription.trial_ends_at:
        trial_days_left = max(0, math.ceil((subscription.trial_ends_at - now).total_seconds() / 86400))
    return {
        "subscription": subscription,
        "entitlements": found,
        "usage": rows,
        "credits": credits,
        "credits_forecast": credits_forecast(used=credits.used, now=now),
        "trial_days_left": trial_days_left,
        "trial_over": subscription is not None and trial_days_left == 0,
        "readonly_reason": found.readonly_reason(now),
        "readonly_message": entitlements.READONLY_MESSAGES.get(found.readonly_reason(now), ""),
        "readonly_creators": len(found.readonly_creator_ids),
        "changes": SubscriptionChange.objects.for_agency(agency_id).select_related("from_plan", "to_plan", "by")[:10],
        "features": [(label, found.allows(feature)) for feature, label in entitlements.FEATURE_LABELS.items()],
    }
