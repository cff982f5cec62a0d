"""Segment filters: every key narrows the audience as documented; bad keys are named."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.messaging import selectors
from apps.messaging.segments import segment_filters_parse
from tests.messaging.factories import FanFactory, FanTagFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _fan(world, spent="0", **fields):
    return FanFactory(creator=world.creator, spent_tips=Decimal(spent), total_spent=Decimal(spent), **fields)


def _names(membership, **filters):
    parsed = segment_filters_parse(filters)
    return sorted(f.username for f in selectors.fan_list(membership=membership, filters=parsed))


def test_each_key_narrows_the_audience(world):
    now = timezone.now()
    _fan(world, "900", username="whale", last_purchase_at=now - timedelta(days=2))
    _fan(
        world, "30", username="mid", last_purchase_at=now - timedelta(days=40), last_active_at=now - timedelta(days=20)
    )
    FanTagFactory(fan=_fan(world, "0", username="free", platform="fansly"), name="vip")
    owner = world.owner
    assert _names(owner, tiers=["whale"]) == ["whale"]
    assert _names(owner, tiers=["whale", "mid"]) == ["mid", "whale"]
    assert _names(owner, tags=["VIP "]) == ["free"]
    assert _names(owner, platforms=["fansly"]) == ["free"]
    assert _names(owner, purchased_within_days=7) == ["whale"]
    assert _names(owner, no_purchase_for_days=7) == ["free", "mid"]
    assert _names(owner, inactive_for_days=14) == ["mid"]
    assert _names(owner, spent_min="25", spent_max="100") == ["mid"]
    assert _names(owner, tiers=["whale"], tags=["vip"]) == []


@pytest.mark.parametrize(
    ("filters", "key"),
    [
        ({"tier": ["whale"]}, "tier"),
        ({"tiers": ["shark"]}, "tiers.0"),
        ({"purchased_within_days": 0}, "purchased_within_days"),
        ({"spent_min": "-1"}, "spent_min"),
        ({"spent_min": "50", "spent_max": "10"}, "filters"),
        ({"tags": ["x" * 41]}, "tags.0"),
        ({"active_within_days": True}, "active_within_days"),  # not 1 day
        ({"tags": ["vip", " "]}, "tags"),  # not "any tag" once the blank is dropped
        ({"tags": [" "]}, "tags"),  # not every fan
    ],
)
def test_bad_filters_name_the_key(filters, key):
    with pytest.raises(ApplicationError) as error:
        segment_filters_parse(filters)
    assert error.value.field == "filters"
    assert error.value.extra["key"] == key or key == "filters"


def test_segment_count_is_live_and_respects_chatter_scope(world):
    segment = SegmentFactory(agency=world.agency, filters={"tiers": ["whale"]})
    _fan(world, "600")
    FanFactory(creator=world.other_creator, spent_tips=Decimal("700"), total_spent=Decimal("700"))
    assert selectors.segment_count(membership=world.owner, segment=segment) == 2
    assert selectors.segment_count(membership=world.chatter, segment=segment) == 1  # assigned creator only
    _fan(world, "501")
    assert selectors.segment_count(membership=world.chatter, segment=segment) == 2
