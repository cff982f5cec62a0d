"""Spend tiers and lifecycle stages: the one place that decides them.

Each rule exists twice, kept side by side so they cannot drift: as a Python function on one fan
(badges, drafts, scores) and as a ``Q`` over ``Fan`` (segments, filters, counts in SQL). The
tests check that both give the same answer on every fan of a generated population.

Spend tier, from the fan's lifetime spend (``total_spent``) and the agency's ``FanRules``:
whale ≥ whale_min, high ≥ high_min, mid ≥ mid_min, low ≥ low_min (any spend), free otherwise.

Lifecycle, the first rule that holds:
1. expired: the subscription has expired;
2. new: subscribed less than ``new_days`` ago;
3. churned: no activity for ``churned_days`` (or never active);
4. at risk: no activity for ``at_risk_days``, or a subscriber who switched renewal off;
5. active: everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from django.db.models import Q
from django.utils import timezone

from apps.messaging.models import Fan, FanRules, SubscriptionState


class Tier(StrEnum):
    WHALE = "whale"
    HIGH = "high"
    MID = "mid"
    LOW = "low"
    FREE = "free"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self)


TIER_ORDER = [Tier.FREE, Tier.LOW, Tier.MID, Tier.HIGH, Tier.WHALE]


class Lifecycle(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


def rules_for(agency_id: int) -> FanRules:
    """The agency's rules, or the defaults (unsaved) when it never changed them."""
    rules = FanRules.objects.filter(agency_id=agency_id).first()
    return rules if rules is not None else FanRules(agency_id=agency_id)


def _minimums(rules: FanRules) -> list[tuple[Tier, Decimal]]:
    return [
        (Tier.WHALE, rules.whale_min),
        (Tier.HIGH, rules.high_min),
        (Tier.MID, rules.mid_min),
        (Tier.LOW, rules.low_min),
    ]


def spend_tier(total_spent: Decimal, rules: FanRules) -> Tier:
    for tier, minimum in _minimums(rules):
        if total_spent >= minimum:
            return tier
    return Tier.FREE


def tier_q(tier: Tier | str, rules: FanRules, prefix: str = "") -> Q:
    """Fans of ``tier``; ``prefix`` ("fan__") filters a related model."""
    tier = Tier(tier)
    field = f"{prefix}total_spent"
    bounds = {Tier.FREE: None, **dict(_minimums(rules))}
    upper = {Tier.WHALE: None, Tier.HIGH: rules.whale_min, Tier.MID: rules.high_min, Tier.LOW: rules.mid_min}
    if tier is Tier.FREE:
        return Q(**{f"{field}__lt": rules.low_min})
    q = Q(**{f"{field}__gte": bounds[tier]})
    if upper[tier] is not None:
        q &= Q(**{f"{field}__lt": upper[tier]})
    return q


@dataclass(frozen=True)
class _Cuts:
    new: datetime
    at_risk: datetime
    churned: datetime


def _cuts(rules: FanRules, now: datetime) -> _Cuts:
    return _Cuts(
        new=now - timedelta(days=rules.new_days),
        at_risk=now - timedelta(days=rules.at_risk_days),
        churned=now - timedelta(days=rules.churned_days),
    )


def lifecycle(fan: Fan, rules: FanRules, now: datetime | None = None) -> Lifecycle:
    cuts = _cuts(rules, now or timezone.now())
    if fan.subscription_state == SubscriptionState.EXPIRED:
        return Lifecycle.EXPIRED
    if fan.subscribed_since is not None and fan.subscribed_since >= cuts.new:
        return Lifecycle.NEW
    if fan.last_active_at is None or fan.last_active_at < cuts.churned:
        return Lifecycle.CHURNED
    if fan.last_active_at < cuts.at_risk or (fan.subscription_state == SubscriptionState.ACTIVE and not fan.renew_on):
        return Lifecycle.AT_RISK
    return Lifecycle.ACTIVE


def lifecycle_q(stage: Lifecycle | str, rules: FanRules, now: datetime | None = None, prefix: str = "") -> Q:
    """Fans in ``stage``, the same rules as ``lifecycle()`` in SQL."""
    stage = Lifecycle(stage)
    cuts = _cuts(rules, now or timezone.now())
    p = prefix
    expired = Q(**{f"{p}subscription_state": SubscriptionState.EXPIRED})
    new = Q(**{f"{p}subscribed_since__gte": cuts.new})
    churned = Q(**{f"{p}last_active_at__isnull": True}) | Q(**{f"{p}last_active_at__lt": cuts.churned})
    at_risk = Q(**{f"{p}last_active_at__lt": cuts.at_risk}) | Q(
        **{f"{p}subscription_state": SubscriptionState.ACTIVE, f"{p}renew_on": False}
    )
    if stage is Lifecycle.EXPIRED:
        return expired
    if stage is Lifecycle.NEW:
        return ~expired & new
    if stage is Lifecycle.CHURNED:
        return ~expired & ~new & churned
    if stage is Lifecycle.AT_RISK:
        return ~expired & ~new & ~churned & at_risk
    return ~expired & ~new & ~churned & ~at_risk


@dataclass(frozen=True)
class FanBadges:
    tier: Tier
    lifecycle: Lifecycle


def badges(fan: Fan, rules: FanRules, now: datetime | None = None) -> FanBadges:
    return FanBadges(tier=spend_tier(fan.total_spent, rules), lifecycle=lifecycle(fan, rules, now))
