"""Tiers and lifecycle: the Python rule and the SQL rule agree on every fan, and follow the
agency's thresholds."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.messaging.models import Fan, FanRules
from apps.messaging.tiers import Lifecycle, Tier, lifecycle, lifecycle_q, rules_for, spend_tier, tier_q
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("spent", "tier"),
    [("0", Tier.FREE), ("0.01", Tier.LOW), ("24.99", Tier.LOW), ("25", Tier.MID), ("100", Tier.HIGH),
     ("499.99", Tier.HIGH), ("500", Tier.WHALE), ("12000", Tier.WHALE)],
)  # fmt: skip
def test_default_spend_tiers(world, spent, tier):
    assert spend_tier(Decimal(spent), rules_for(world.agency.pk)) is tier


def test_agency_thresholds_move_a_fan_between_tiers(world):
    rules = FanRules.objects.create(
        agency=world.agency, whale_min=Decimal("200"), high_min=Decimal("50"), mid_min=Decimal("10")
    )
    assert spend_tier(Decimal("250"), rules_for(world.agency.pk)) is Tier.WHALE
    rules.whale_min = Decimal("1000")
    rules.save()
    assert spend_tier(Decimal("250"), rules_for(world.agency.pk)) is Tier.HIGH


def test_lifecycle_rules_in_order(world):
    rules = rules_for(world.agency.pk)
    now = timezone.now()
    fan = Fan(subscription_state="expired", subscribed_since=now, last_active_at=now)
    assert lifecycle(fan, rules, now) is Lifecycle.EXPIRED  # expired wins over new
    fan = Fan(subscription_state="active", subscribed_since=now - timedelta(days=2), last_active_at=None)
    assert lifecycle(fan, rules, now) is Lifecycle.NEW  # new wins over never active
    fan = Fan(subscription_state="active", subscribed_since=now - timedelta(days=90), last_active_at=None)
    assert lifecycle(fan, rules, now) is Lifecycle.CHURNED
    fan = Fan(subscription_state="active", subscribed_since=now - timedelta(days=90),
              last_active_at=now - timedelta(days=10))  # fmt: skip
    assert lifecycle(fan, rules, now) is Lifecycle.AT_RISK
    fan = Fan(subscription_state="active", renew_on=False, subscribed_since=now - timedelta(days=90),
              last_active_at=now - timedelta(hours=1))  # fmt: skip
    assert lifecycle(fan, rules, now) is Lifecycle.AT_RISK  # renewal switched off
    fan = Fan(subscription_state="active", subscribed_since=now - timedelta(days=90),
              last_active_at=now - timedelta(hours=1))  # fmt: skip
    assert lifecycle(fan, rules, now) is Lifecycle.ACTIVE


def test_sql_and_python_rules_agree_on_a_random_population(world):
    rng = random.Random(10)
    now = timezone.now()
    day = timedelta(days=1)
    for _ in range(150):
        spent = Decimal(rng.choice(["0", "0.01", "5", "25", "99.99", "100", "480", "500", "900"]))
        FanFactory(
            creator=world.creator,
            spent_tips=spent,
            total_spent=spent,
            subscription_state=rng.choice(["active", "active", "expired", "none"]),
            renew_on=rng.random() > 0.3,
            subscribed_since=rng.choice([None, now - rng.randint(0, 60) * day]),
            last_active_at=rng.choice([None, now - rng.randint(0, 60) * day, now - 7 * day, now - 30 * day]),
        )
    rules = rules_for(world.agency.pk)
    fans = list(Fan.objects.filter(agency=world.agency))
    for tier in Tier:
        in_sql = set(Fan.objects.filter(tier_q(tier, rules)).values_list("pk", flat=True))
        assert in_sql == {f.pk for f in fans if spend_tier(f.total_spent, rules) is tier}, tier
    seen = set()
    for stage in Lifecycle:
        in_sql = set(Fan.objects.filter(lifecycle_q(stage, rules, now)).values_list("pk", flat=True))
        assert in_sql == {f.pk for f in fans if lifecycle(f, rules, now) is stage}, stage
        assert not in_sql & seen  # stages never overlap
        seen |= in_sql
    assert len(seen) == len(fans)  # and every fan has one
