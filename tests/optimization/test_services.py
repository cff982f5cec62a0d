"""Optimization services and selectors on the real database: settings, series, the comprehensive
answer, members' decisions, offers and outcome measurement."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from apps.core.errors import ApplicationError, ConflictError
from apps.optimization import pricing, selectors, services, timing
from apps.optimization.models import DailyPerformance, Offer, OptimizationSettings, Recommendation
from tests.accounts.factories import CreatorFactory
from tests.optimization.factories import add_daily, add_hourly, add_offers, add_posts, yesterday

pytestmark = pytest.mark.django_db


def _recommendation(creator, *, kind=Recommendation.Kind.PRICE, status=Recommendation.Status.OPEN, **fields):
    defaults = {
        "headline": "Raise PPV to $15",
        "payload": {"price": 15.0},
        "expected_value": 3.0,
        "confidence": 0.8,
        "run_date": timezone.now().date(),
    }
    return Recommendation.objects.create(
        agency_id=creator.agency_id, creator=creator, kind=kind, status=status, **(defaults | fields)
    )


# --- Selectors -------------------------------------------------------------------------------------


def test_effective_settings_prefers_the_creator_then_the_agency_then_defaults(world):
    default = selectors.effective_settings(world.creator)
    assert default.pk is None
    assert (default.strategy, default.risk, default.sensitivity, default.explore_prices) == (
        "balanced",
        "moderate",
        "medium",
        False,
    )
    OptimizationSettings.objects.create(agency=world.agency, strategy="revenue_max", sensitivity="high")
    assert selectors.effective_settings(world.creator).strategy == "revenue_max"
    OptimizationSettings.objects.create(agency=world.agency, creator=world.creator, strategy="conversion_max")
    assert selectors.effective_settings(world.creator).strategy == "conversion_max"
    assert selectors.effective_settings(world.other_creator).strategy == "revenue_max"


def test_daily_series_has_every_metric_with_gaps_as_nan(world):
    end = yesterday(world.creator)
    add_daily(world.creator, days=10, end=end)
    DailyPerformance.objects.filter(creator=world.creator, day=end - timedelta(days=3)).delete()
    DailyPerformance.objects.filter(creator=world.creator, day=end).update(posts=0)

    series = selectors.daily_series(world.creator, days=14, end=end)

    assert len(series.days) == 14 and series.days[-1] == end
    assert set(series.values) == set(selectors.SERIES_NAMES)
    assert all(len(values) == 14 for values in series.values.values())
    assert np.isnan(series.values["revenue_tips"][:4]).all()  # before the first row
    assert np.isnan(series.values["revenue_tips"][-4])  # the deleted day: a gap, not a zero
    row = DailyPerformance.objects.get(creator=world.creator, day=end - timedelta(days=1))
    assert series.values["revenue_total"][-2] == pytest.approx(float(row.revenue_total))
    assert series.values["engagement_per_post"][-2] == pytest.approx(row.engagement / row.posts)
    assert np.isnan(series.values["engagement_per_post"][-1])  # no posts that day


def test_offer_history_is_none_without_offers_and_oldest_first_with(world, other_world):
    assert selectors.offer_history_for_agency(world.agency.pk) is None
    add_offers(world.creator, rounds=1)
    add_offers(other_world.creator, rounds=2)
    history = selectors.offer_history_for_agency(world.agency.pk)
    assert len(history.price) == 5  # the other agency's offers are not pooled
    assert list(history.price) == [8, 12, 15, 20, 25]
    assert set(history.creator.tolist()) == {world.creator.pk}


# --- Comprehensive -----------------------------------------------------------------------------------


def test_comprehensive_without_data_says_what_is_missing(world):
    result = services.comprehensive(creator=world.creator)
    assert isinstance(result.pricing, pricing.NotEnoughData)
    assert result.pricing.needed > 0 and "need" in result.pricing.message.lower()
    assert isinstance(result.post_timing, timing.NotEnoughData)
    assert isinstance(result.message_timing, timing.NotEnoughData)
    assert result.anomalies == []
    assert (result.strategy, result.risk, result.sensitivity) == ("balanced", "moderate", "medium")


@pytest.mark.parametrize("name", ["strategy", "risk", "sensitivity"])
def test_comprehensive_rejects_an_unknown_choice_naming_the_field(world, name):
    with pytest.raises(ApplicationError) as caught:
        services.comprehensive(creator=world.creator, **{name: "yolo"})
    assert caught.value.field == name
    assert "yolo" in caught.value.message


def test_comprehensive_recommends_a_price_and_finds_a_spike(world):
    add_offers(world.creator, rounds=4)
    add_offers(world.other_creator, rounds=2, seed=3)
    add_daily(world.creator, days=120, spike_days_ago=5)

    result = services.comprehensive(creator=world.creator, strategy="revenue_max", risk="moderate")

    assert isinstance(result.pricing, pricing.Recommendation)
    assert 12 <= result.pricing.price <= 20  # revenue per recipient peaks at $15
    assert result.pricing.expected_revenue_per_recipient > 0
    spikes = [anomaly for anomaly in result.anomalies if anomaly.metric == "revenue_tips"]
    assert spikes, result.anomalies
    spike = spikes[-1]
    assert spike.day == yesterday(world.creator) - timedelta(days=5)
    assert spike.value > spike.expected_high and spike.direction == "above"
    assert spike.severity in ("medium", "high") and 0 <= spike.score <= 1


def test_a_constant_series_raises_no_anomaly(world):
    add_daily(world.creator, days=90, constant=True)
    assert services.comprehensive(creator=world.creator).anomalies == []


@pytest.mark.parametrize(
    ("zone", "local_hour", "utc_hour"),
    # Kathmandu is UTC+5:45, St John's UTC-3:30; New York's history spans the change from EDT to EST,
    # which must not shift the hour (21:00 is 01:00 UTC before it, 02:00 after).
    [("Asia/Kathmandu", 21, 15), ("America/St_Johns", 21, 0), ("America/New_York", 21, 2)],
)
def test_post_and_message_slots_are_in_the_creators_timezone(world, zone, local_hour, utc_hour):
    creator = CreatorFactory(agency=world.agency, display_name=f"Zone {zone}", timezone=zone)
    add_posts(creator, best_hour=local_hour)
    add_hourly(creator, best_hour=20)

    result = services.comprehensive(creator=creator)

    assert isinstance(result.post_timing, timing.TimingAdvice), result.post_timing
    assert result.post_timing.timezone == zone
    hours = {slot.hour for slot in result.post_timing.slots}
    assert hours == {local_hour}, hours  # the local evening, not the UTC hour it falls in
    assert utc_hour not in hours
    assert isinstance(result.message_timing, timing.TimingAdvice), result.message_timing
    assert result.message_timing.slots[0].hour == 20


# --- Decisions --------------------------------------------------------------------------------------------


def test_accepting_records_who_and_when_and_waits_for_an_outcome(world):
    recommendation = _recommendation(world.creator)
    accepted = services.recommendation_accept(membership=world.manager, recommendation_id=recommendation.pk)
    assert accepted.status == "accepted"
    assert accepted.decided_by_id == world.manager.user_id and accepted.decided_at is not None
    assert accepted.outcome == "pending"


def test_dismissing_keeps_the_reason(world):
    recommendation = _recommendation(world.creator)
    dismissed = services.recommendation_dismiss(
        membership=world.owner, recommendation_id=recommendation.pk, reason="Fans hate price changes"
    )
    assert dismissed.status == "dismissed" and dismissed.dismiss_reason == "Fans hate price changes"
    assert dismissed.outcome == ""


@pytest.mark.parametrize("status", ["accepted", "dismissed", "expired"])
def test_only_open_recommendations_can_be_decided(world, status):
    recommendation = _recommendation(world.creator, status=status)
    with pytest.raises(ConflictError, match="only open recommendations"):
        services.recommendation_accept(membership=world.owner, recommendation_id=recommendation.pk)
    with pytest.raises(ConflictError):
        services.recommendation_dismiss(membership=world.owner, recommendation_id=recommendation.pk)


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_viewers_and_chatters_cannot_decide(world, role):
    recommendation = _recommendation(world.creator)
    with pytest.raises(PermissionDenied):
        services.recommendation_accept(membership=world.member(role), recommendation_id=recommendation.pk)
    recommendation.refresh_from_db()
    assert recommendation.status == "open"


def test_another_agencys_recommendation_is_not_found(world, other_world):
    theirs = _recommendation(other_world.creator)
    with pytest.raises(Http404):
        services.recommendation_accept(membership=world.owner, recommendation_id=theirs.pk)
    with pytest.raises(Http404):
        services.recommendation_dismiss(membership=world.owner, recommendation_id=theirs.pk)
    theirs.refresh_from_db()
    assert theirs.status == "open"


def test_settings_update_validates_and_overrides_per_creator(world, other_world):
    with pytest.raises(ApplicationError) as caught:
        services.settings_update(
            membership=world.owner, strategy="cheap", risk="moderate", sensitivity="low", explore_prices=False
        )
    assert caught.value.field == "strategy"
    with pytest.raises(PermissionDenied):
        services.settings_update(
            membership=world.viewer, strategy="balanced", risk="moderate", sensitivity="low", explore_prices=False
        )
    services.settings_update(
        membership=world.owner, strategy="revenue_max", risk="aggressive", sensitivity="high", explore_prices=True
    )
    row = services.settings_update(
        membership=world.manager,
        creator=world.creator,
        strategy="conversion_max",
        risk="conservative",
        sensitivity="low",
        explore_prices=False,
    )
    assert row.updated_by_id == world.manager.user_id
    assert selectors.effective_settings(world.creator).strategy == "conversion_max"
    assert selectors.effective_settings(world.other_creator).risk == "aggressive"
    assert OptimizationSettings.objects.filter(agency=world.agency).count() == 2
    with pytest.raises((Http404, PermissionDenied)):
        services.settings_update(
            membership=world.owner,
            creator=other_world.creator,
            strategy="balanced",
            risk="moderate",
            sensitivity="low",
            explore_prices=False,
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": float("nan")}, "price"),
        ({"price": "inf"}, "price"),
        ({"price": -5}, "price"),
        ({"price": 0}, "price"),
        ({"price": "ten"}, "price"),
        ({"unlocks": 300}, "unlocks"),
        ({"recipients": 0, "unlocks": 0}, "recipients"),
        ({"recipients": -1}, "recipients"),
    ],
)
def test_offer_record_rejects_bad_offers_naming_the_field(world, changes, field):
    values = {"price": 12, "recipients": 200, "unlocks": 20} | changes
    with pytest.raises(ApplicationError) as caught:
        services.offer_record(membership=world.owner, creator=world.creator, **values)
    assert caught.value.field == field
    assert not Offer.objects.exists()


def test_offer_record_stores_revenue_as_price_times_unlocks(world):
    offer = services.offer_record(
        membership=world.manager, creator=world.creator, price="12.5", recipients=200, unlocks=20
    )
    assert offer.revenue == Decimal("250.00") and offer.agency_id == world.agency.pk
    with pytest.raises(PermissionDenied):
        services.offer_record(membership=world.viewer, creator=world.creator, price=12, recipients=10)


# --- Outcomes ------------------------------------------------------------------------------------------------


def _accepted(creator, *, kind=Recommendation.Kind.PRICE, days_ago=10, **fields):
    return _recommendation(
        creator,
        kind=kind,
        status=Recommendation.Status.ACCEPTED,
        outcome=Recommendation.Outcome.PENDING,
        decided_at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )


def _offer(creator, *, price, recipients, unlocks, days_ago=1):
    return Offer.objects.create(
        agency_id=creator.agency_id,
        creator=creator,
        sent_at=timezone.now() - timedelta(days=days_ago),
        price=Decimal(price),
        recipients=recipients,
        unlocks=unlocks,
        revenue=Decimal(price) * unlocks,
    )


def test_an_accepted_price_that_earned_what_was_expected_is_met(world):
    recommendation = _accepted(world.creator, expected_value=3.0)  # $15 expected to earn $3 per fan
    _offer(world.creator, price="15", recipients=100, unlocks=20)  # $3.00 per fan
    _offer(world.creator, price="16", recipients=100, unlocks=19)  # within 10 %: $3.04 per fan
    _offer(world.creator, price="30", recipients=100, unlocks=1)  # another price: not counted
    _offer(world.creator, price="15", recipients=500, unlocks=0, days_ago=20)  # before acceptance

    assert services.measure_outcomes() == 1
    recommendation.refresh_from_db()
    assert recommendation.outcome == "met"
    assert recommendation.outcome_value == pytest.approx((300 + 304) / 200)
    assert recommendation.outcome_samples == 2 and recommendation.outcome_measured_at is not None


def test_an_accepted_price_that_fell_short_is_missed(world):
    recommendation = _accepted(world.creator, expected_value=3.0)
    _offer(world.creator, price="15", recipients=100, unlocks=10)  # $1.50 per fan: half of expected
    services.measure_outcomes()
    recommendation.refresh_from_db()
    assert recommendation.outcome == "missed" and recommendation.outcome_value == pytest.approx(1.5)


def test_too_little_evidence_waits_then_becomes_no_data(world):
    waiting = _accepted(world.creator, days_ago=5)
    stale = _accepted(world.other_creator, days_ago=31)
    _offer(world.creator, price="15", recipients=20, unlocks=5)  # fewer than 50 recipients
    assert services.measure_outcomes() == 1
    waiting.refresh_from_db()
    stale.refresh_from_db()
    assert waiting.outcome == "pending"
    assert stale.outcome == "no_data" and stale.outcome_value is None


def test_accepted_posting_times_are_judged_on_posts_in_those_slots(world):
    creator = CreatorFactory(agency=world.agency, display_name="Kathmandu", timezone="Asia/Kathmandu")
    now = timezone.now()
    add_posts(creator, best_hour=21, days=14, end=now)
    posts_at_21 = [
        post for post in creator.posts.all() if post.posted_at.astimezone(timing.ZoneInfo(creator.timezone)).hour == 21
    ]
    slots = sorted(
        {(post.posted_at.astimezone(timing.ZoneInfo(creator.timezone)).weekday(), 21) for post in posts_at_21}
    )
    recommendation = _accepted(
        creator,
        kind=Recommendation.Kind.POST_TIME,
        days_ago=15,
        expected_value=300.0,
        payload={"timezone": "Asia/Kathmandu", "slots": [{"weekday": w, "hour": h} for w, h in slots]},
    )
    assert services.measure_outcomes() == 1
    recommendation.refresh_from_db()
    assert recommendation.outcome == "met"
    assert recommendation.outcome_samples == len(posts_at_21)
    assert math.isclose(recommendation.outcome_value, np.mean([p.likes + p.comments for p in posts_at_21]))


def test_a_creator_with_an_unknown_stored_timezone_is_read_in_utc(world):
    Creator = type(world.creator)
    Creator.objects.filter(pk=world.creator.pk).update(timezone="Mars/Olympus_Mons")  # past the form's check
    world.creator.refresh_from_db()
    add_posts(world.other_creator)
    result = services.comprehensive(creator=world.creator)
    assert result.post_timing.timezone == "UTC"
    report = services.run_nightly(agency_id=world.agency.pk)
    assert report.creators == 2 and report.skipped == []
