"""Outcomes of "investigate a change" recommendations: met when the flagged number came back
inside the range the detector expected (within 7 days, or 48 hours for an hourly one) after the
member accepted it, missed when the change persisted; shown in the track record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.optimization import selectors, services
from apps.optimization.models import HourlyPerformance, Recommendation
from apps.optimization.outcomes import measure_outcomes
from tests.optimization.factories import add_daily, yesterday

pytestmark = pytest.mark.django_db


def _anomaly_advice(world, *, day, low, high, metric="revenue_tips", granularity="day", at=None):
    at = at or datetime(day.year, day.month, day.day, tzinfo=UTC)
    return Recommendation.objects.create(
        agency=world.agency, creator=world.creator, kind="anomaly", status="open",
        headline="Tips were above the expected range", run_date=day,
        payload={"granularity": granularity, "metric": metric, "day": day.isoformat(), "at": at.isoformat(),
                 "value": 400.0, "expected_low": low, "expected_high": high, "severity": "high"},
        expected_value=(low + high) / 2, baseline_value=400.0, confidence=0.9,
    )  # fmt: skip


def _accept(world, recommendation, when):
    services.recommendation_accept(membership=world.manager, recommendation_id=recommendation.pk)
    Recommendation.objects.filter(pk=recommendation.pk).update(decided_at=when)


def test_back_to_normal_is_met_and_a_change_that_stays_is_missed(world, client_for):
    end = yesterday(world.creator)
    add_daily(world.creator, end=end, spike_days_ago=10, spike=10)  # tips about 40-52 a day, 400+ on the spike
    flagged = end - timedelta(days=10)
    back = _anomaly_advice(world, day=flagged, low=30.0, high=60.0)
    _accept(world, back, timezone.now() - timedelta(days=9))
    stuck = _anomaly_advice(world, day=flagged, low=100.0, high=200.0)  # tips never got back up to this
    _accept(world, stuck, timezone.now() - timedelta(days=9))
    for recommendation in (back, stuck):
        recommendation.refresh_from_db()
        assert recommendation.outcome == "pending"  # accepted anomaly advice is now measured

    assert measure_outcomes(agency_id=world.agency.pk) == 2
    back.refresh_from_db()
    stuck.refresh_from_db()
    assert (back.outcome, stuck.outcome) == ("met", "missed")
    assert 30 <= back.outcome_value <= 60 and back.outcome_samples == 7  # the first 7 days after

    track = {row.kind: row for row in selectors.track_record(agency_id=world.agency.pk, creator_id=world.creator.pk)}
    assert (track["anomaly"].measured, track["anomaly"].met, track["anomaly"].hit_rate) == (2, 1, 0.5)
    page = client_for(world.owner).get(reverse("optimization:overview") + f"?creator={world.creator.pk}")
    assert "came back inside its expected range" in page.content.decode()
    listing = client_for(world.owner).get(reverse("optimization:recommendations") + "?status=accepted").content.decode()
    assert "back inside its expected range (median" in listing and "still outside its expected range" in listing


def test_too_few_days_after_stays_pending_then_no_data(world):
    end = yesterday(world.creator)
    add_daily(world.creator, end=end)
    recommendation = _anomaly_advice(world, day=end - timedelta(days=1), low=30.0, high=60.0)
    _accept(world, recommendation, timezone.now())
    assert measure_outcomes(agency_id=world.agency.pk) == 0  # one day at most after it: wait
    assert measure_outcomes(agency_id=world.agency.pk, now=timezone.now() + timedelta(days=31)) == 1
    recommendation.refresh_from_db()
    assert recommendation.outcome == "no_data"


def test_an_hourly_anomaly_is_judged_on_the_hours_after(world):
    flagged = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    HourlyPerformance.objects.bulk_create(
        HourlyPerformance(
            agency=world.agency, creator=world.creator, hour=flagged + timedelta(hours=h),
            messages_sent=100, message_replies=2 if h == 0 else 30,
        )
        for h in range(0, 10)
    )  # fmt: skip
    recommendation = _anomaly_advice(
        world, day=flagged.date(), at=flagged, low=20.0, high=45.0, metric="message_replies", granularity="hour"
    )
    _accept(world, recommendation, flagged + timedelta(minutes=30))
    assert measure_outcomes(agency_id=world.agency.pk) == 1
    recommendation.refresh_from_db()
    assert (recommendation.outcome, recommendation.outcome_value, recommendation.outcome_samples) == ("met", 30.0, 9)
