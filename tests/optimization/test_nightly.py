"""The nightly run: what it stores, that running it again stores nothing twice, who is told about
anomalies, and that its queries do not grow with the number of creators."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.monitoring.models import Alert
from apps.notifications.models import Notification
from apps.optimization import services
from apps.optimization.models import Anomaly, DailyPerformance, Offer, OptimizationSettings, Recommendation
from apps.optimization.tasks import nightly_optimization
from tests.accounts.factories import CreatorFactory
from tests.optimization.factories import add_daily, add_hourly, add_offers, add_posts, yesterday

pytestmark = pytest.mark.django_db


def _fill(world):
    add_offers(world.creator, rounds=4)
    add_offers(world.other_creator, rounds=2, seed=3)
    add_posts(world.creator)
    add_hourly(world.creator)
    add_daily(world.creator, spike_days_ago=3, spike=12)
    add_daily(world.other_creator, seed=5)


def test_the_nightly_run_opens_one_recommendation_per_creator_and_kind(world):
    _fill(world)
    report = services.run_nightly(agency_id=world.agency.pk)

    assert report.creators == 2 and report.anomalies_stored >= 1
    mine = Recommendation.objects.filter(creator=world.creator, status="open")
    kinds = set(mine.values_list("kind", flat=True))
    assert {"price", "post_time", "message_time", "anomaly"} <= kinds
    assert report.recommendations_created == Recommendation.objects.count()
    price = mine.get(kind="price")
    assert price.headline.startswith(("Raise", "Lower", "Keep", "Ask")) and "confidence" in price.headline
    assert 0 <= price.confidence <= 1 and price.expected_value > 0
    assert price.strategy == "balanced" and price.run_date == timezone.now().date()
    spike = Anomaly.objects.get(creator=world.creator, metric="revenue_tips")
    assert spike.value > spike.expected_high and spike.severity in ("medium", "high")


def test_running_twice_stores_nothing_twice(world):
    _fill(world)
    services.run_nightly(agency_id=world.agency.pk)
    counts = (Recommendation.objects.count(), Anomaly.objects.count(), Notification.objects.count())
    alerts = Alert.objects.count()

    again = services.run_nightly(agency_id=world.agency.pk)

    assert again.recommendations_created == 0 and again.anomalies_stored == 0
    assert (Recommendation.objects.count(), Anomaly.objects.count(), Notification.objects.count()) == counts
    assert Alert.objects.count() == alerts
    assert not Recommendation.objects.filter(status="expired").exists()


def test_changed_advice_expires_the_open_one_and_decided_ones_stay(world):
    _fill(world)
    services.run_nightly(agency_id=world.agency.pk)
    price = Recommendation.objects.get(creator=world.creator, kind="price", status="open")
    post_time = Recommendation.objects.get(creator=world.creator, kind="post_time", status="open")
    services.recommendation_accept(membership=world.owner, recommendation_id=post_time.pk)
    OptimizationSettings.objects.create(agency=world.agency, strategy="revenue_max", risk="aggressive")
    Offer.objects.filter(creator=world.creator, price__lt=15).delete()  # the evidence changes

    services.run_nightly(agency_id=world.agency.pk)

    price.refresh_from_db()
    assert price.status == "expired"
    new_price = Recommendation.objects.get(creator=world.creator, kind="price", status="open")
    assert (new_price.strategy, new_price.risk) == ("revenue_max", "aggressive")
    post_time.refresh_from_db()
    assert post_time.status == "accepted"  # a decision is never undone by a later run
    assert Recommendation.objects.filter(creator=world.creator, kind="post_time", status="open").count() == 1


def test_anomalies_reach_managers_through_the_alert_and_the_chatter_directly(
    world, eager_celery, django_capture_on_commit_callbacks
):
    _fill(world)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_nightly(agency_id=world.agency.pk)

    alert = Alert.objects.get(kind="anomaly", agency=world.agency)
    assert alert.state == "firing" and world.creator.display_name in alert.detail
    told = sorted(Notification.objects.values_list("user_id", flat=True))
    assert told == sorted([world.owner.user_id, world.manager.user_id, world.chatter.user_id])  # once each
    chatter_note = Notification.objects.get(user_id=world.chatter.user_id)
    assert world.creator.display_name in chatter_note.body and chatter_note.url == "/optimization/anomalies/"
    assert not Anomaly.objects.filter(severity__in=["medium", "high"], notified_at__isnull=True).exists()

    # A new incident while the alert is still firing: monitoring stays quiet, so the summary goes
    # to the owners and managers too.
    day = yesterday(world.other_creator) - timedelta(days=1)
    DailyPerformance.objects.filter(creator=world.other_creator, day=day).update(revenue_tips=Decimal("900"))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_nightly(agency_id=world.agency.pk)
    latest = Notification.objects.filter(user_id=world.owner.user_id).order_by("-id").first()
    assert world.other_creator.display_name in latest.body
    assert Notification.objects.filter(user_id=world.owner.user_id).count() == 2
    assert not Notification.objects.filter(user_id=world.viewer.user_id).exists()


def test_a_chatter_is_not_told_about_creators_they_do_not_have(world):
    add_daily(world.other_creator, spike_days_ago=2, spike=12)
    services.run_nightly(agency_id=world.agency.pk)
    assert Anomaly.objects.filter(creator=world.other_creator).exists()
    assert Alert.objects.filter(kind="anomaly", agency=world.agency).exists()
    assert not Notification.objects.filter(user_id=world.chatter.user_id).exists()


def test_acknowledging_the_last_anomaly_resolves_the_alert(world):
    add_daily(world.creator, spike_days_ago=2, spike=12)
    services.run_nightly(agency_id=world.agency.pk)
    for anomaly in Anomaly.objects.all():
        services.anomaly_acknowledge(membership=world.manager, anomaly_id=anomaly.pk)
    assert Alert.objects.get(kind="anomaly").state == "resolved"
    assert set(Anomaly.objects.values_list("status", flat=True)) == {"acknowledged"}


def test_one_agencys_run_leaves_the_other_alone(world, other_world):
    _fill(world)
    add_daily(other_world.creator, spike_days_ago=2, spike=12)
    services.run_nightly(agency_id=world.agency.pk)
    assert not Anomaly.objects.filter(agency=other_world.agency).exists()
    assert not Notification.objects.filter(agency=other_world.agency).exists()
    services.run_nightly()
    assert Anomaly.objects.filter(agency=other_world.agency).exists()


def test_the_nightly_run_measures_outcomes(world):
    recommendation = Recommendation.objects.create(
        agency=world.agency, creator=world.creator, kind="price", status="accepted", outcome="pending",
        headline="Raise PPV to $15", payload={"price": 15.0}, expected_value=3.0, confidence=0.8,
        run_date=timezone.now().date(), decided_at=timezone.now() - timedelta(days=40),
    )  # fmt: skip
    assert services.run_nightly(agency_id=world.agency.pk).outcomes_measured == 1
    recommendation.refresh_from_db()
    assert recommendation.outcome == "no_data"


def _queries(agency_id) -> int:
    with CaptureQueriesContext(connection) as captured:
        services.run_nightly(agency_id=agency_id)
    return len(captured.captured_queries)


def test_queries_do_not_grow_with_creators(world):
    _fill(world)
    small = _queries(world.agency.pk)
    for index in range(6):
        creator = CreatorFactory(agency=world.agency, display_name=f"Extra {index}")
        add_daily(creator, spike_days_ago=4, spike=12, seed=10 + index)
        add_posts(creator, days=20)
        add_offers(creator, rounds=2, seed=20 + index)
    # The same work as the first run (advice and anomalies to store, people to tell), for four
    # times the creators.
    for model in (Recommendation, Anomaly, Alert, Notification):
        model.objects.all().delete()
    large = _queries(world.agency.pk)
    assert large == small, (small, large)


def test_the_task_runs_the_nightly_job_and_beat_schedules_it(world, eager_celery):
    add_daily(world.creator)
    result = nightly_optimization.delay(world.agency.pk).get()
    assert result["creators"] == 2
    entry = settings.CELERY_BEAT_SCHEDULE["nightly-optimization"]
    assert entry["task"] == nightly_optimization.name
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({3}, {30})
