"""Hourly anomalies: the causal detector over each creator's messages sent and fan replies per UTC
hour, with daily and weekly seasonality, gaps skipped; stored with granularity "hour", alerted
like the daily ones, shown on the creator's page and the anomaly list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.monitoring.models import Alert
from apps.notifications.models import Notification
from apps.optimization import services
from apps.optimization.analysis import detect_hourly
from apps.optimization.models import Anomaly, HourlyPerformance, Recommendation
from apps.optimization.tasks import hourly_anomalies
from tests.conftest import build_world
from tests.optimization.factories import add_daily

pytestmark = pytest.mark.django_db


def _hourly_rows(creator, *, now, days=42, drop_hours_ago=None, gaps=()):
    """A daily rhythm (busy evenings, quiet nights) with a weekend lift; ``drop_hours_ago``: the
    replies of that hour collapse to 2 although as many messages went out."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rng = np.random.default_rng(7)
    rows = []
    for back in range(days * 24, 0, -1):
        hour = end - timedelta(hours=back)
        if back in gaps:
            continue
        base = 40 + 60 * (hour.hour >= 18) + 20 * (hour.weekday() >= 5)
        sent = int(base + rng.integers(0, 6))
        replies = int(sent * 0.3 + rng.integers(0, 4))
        if back == drop_hours_ago:
            replies = 2
        rows.append(
            HourlyPerformance(
                agency_id=creator.agency_id, creator=creator, hour=hour, messages_sent=sent, message_replies=replies
            )
        )
    HourlyPerformance.objects.bulk_create(rows)


def test_the_detector_flags_a_collapsed_hour_and_not_the_daily_rhythm():
    start = datetime(2026, 10, 1, tzinfo=UTC)
    hours = 42 * 24
    stamps = [start + timedelta(hours=h) for h in range(hours)]
    rng = np.random.default_rng(3)
    sent = np.array([40 + 60 * (t.hour >= 18) + 20 * (t.weekday() >= 5) for t in stamps], dtype=float)
    sent += rng.integers(0, 6, hours)
    matrix = np.stack([sent, np.round(sent * 0.3) + rng.integers(0, 4, hours)], axis=1)
    matrix[hours - 5, 1] = 1.0  # replies collapse in one evening hour
    matrix[100:130] = np.nan  # a day and more without data: gaps, not zeros
    found = detect_hourly(matrix, start=start, report_from=hours - 48, sensitivity="medium")
    assert [(a.metric, a.at, a.granularity) for a in found] == [
        ("message_replies", start + timedelta(hours=hours - 5), "hour")
    ]
    point = found[0]
    assert point.value == 1.0 and point.expected_low > 1.0 and point.direction == "below"
    assert point.when.endswith(":00 UTC")


def test_the_hourly_run_stores_alerts_once_and_the_page_shows_it(world, client, django_capture_on_commit_callbacks):
    now = timezone.now()
    _hourly_rows(world.creator, now=now, drop_hours_ago=3, gaps=(200, 201, 202))
    with django_capture_on_commit_callbacks(execute=True):
        report = services.run_hourly(agency_id=world.agency.pk, now=now)
    assert report.anomalies_stored >= 1
    anomaly = Anomaly.objects.get(creator=world.creator, metric="message_replies")
    assert anomaly.granularity == "hour" and anomaly.value == 2
    assert anomaly.at == now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    assert anomaly.severity in ("medium", "high") and anomaly.notified_at is not None
    assert Alert.objects.get(kind="anomaly", agency=world.agency).state == "firing"
    assert Notification.objects.filter(user_id=world.chatter.user_id).exists()

    # Running it again (the next hour's task, or the nightly run) stores nothing twice.
    assert services.run_hourly(agency_id=world.agency.pk, now=now).anomalies_stored == 0
    services.run_nightly(agency_id=world.agency.pk, now=now)
    assert Anomaly.objects.filter(creator=world.creator, metric="message_replies").count() == 1
    advice = Recommendation.objects.get(creator=world.creator, kind="anomaly", status="open")
    assert "Fan replies (hourly)" in advice.headline and "UTC" in advice.headline

    client.force_login(world.owner.user)
    page = client.get(f"/optimization/?creator={world.creator.pk}")
    assert page.status_code == 200
    assert "Fan replies (hourly)" in page.content.decode() and f"{anomaly.at:%H}:00 UTC" in page.content.decode()
    listing = client.get("/optimization/anomalies/")
    assert "Fan replies (hourly)" in listing.content.decode()


def test_too_few_hours_is_no_anomaly(world):
    now = timezone.now()
    _hourly_rows(world.creator, now=now, days=5, drop_hours_ago=3)
    assert services.run_hourly(agency_id=world.agency.pk, now=now).anomalies_stored == 0


def test_the_hourly_task_is_scheduled_every_hour(world, eager_celery):
    _hourly_rows(world.creator, now=timezone.now(), days=3)
    result = hourly_anomalies.delay(world.agency.pk).get()
    assert result["agencies"] == 1 and result["anomalies_stored"] == 0
    entry = settings.CELERY_BEAT_SCHEDULE["hourly-anomalies"]
    assert entry["task"] == hourly_anomalies.name
    assert entry["schedule"].minute == {5} and len(entry["schedule"].hour) == 24


def test_daily_and_hourly_advice_stay_open_side_by_side(world, django_capture_on_commit_callbacks):
    """The nightly run's "investigate" advice on a day and the hourly task's on an hour are two
    pieces of advice: neither replaces the other; a newer hourly one replaces the older hourly one."""
    now = timezone.now()
    add_daily(world.creator, spike_days_ago=1, spike=12.0)
    _hourly_rows(world.creator, now=now, drop_hours_ago=3)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_nightly(agency_id=world.agency.pk, now=now)
        daily = Recommendation.objects.get(creator=world.creator, kind="anomaly", status="open")
        assert daily.granularity == "day" and "UTC" not in daily.headline
        services.run_hourly(agency_id=world.agency.pk, now=now)
        services.run_nightly(agency_id=world.agency.pk, now=now)  # again: nothing new, nothing replaced
    open_now = {
        r.granularity: r for r in Recommendation.objects.filter(creator=world.creator, kind="anomaly", status="open")
    }
    assert set(open_now) == {"day", "hour"} and open_now["day"].pk == daily.pk
    assert "Fan replies (hourly)" in open_now["hour"].headline

    # An hour later replies collapse again: the new hourly advice replaces the old hourly one only.
    later = now + timedelta(hours=1)
    HourlyPerformance.objects.filter(creator=world.creator).delete()
    _hourly_rows(world.creator, now=later, drop_hours_ago=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_hourly(agency_id=world.agency.pk, now=later)
    open_after = {
        r.granularity: r for r in Recommendation.objects.filter(creator=world.creator, kind="anomaly", status="open")
    }
    assert open_after["day"].pk == daily.pk and open_after["hour"].pk != open_now["hour"].pk
    assert Recommendation.objects.get(pk=open_now["hour"].pk).status == "expired"


def test_the_hourly_run_reads_only_agencies_with_hourly_rows(world, django_assert_num_queries):
    """Agencies without hourly rows in the hours judged cost nothing: one query finds the others,
    and each agency with rows costs the same few queries whatever its number of creators."""
    now = timezone.now()
    for index in range(3):  # more agencies with creators but no hourly data: still one query
        build_world(f"Quiet{index}")
    with django_assert_num_queries(1):
        report = services.run_hourly(now=now)
    assert report.agencies == 0 and report.anomalies_stored == 0

    _hourly_rows(world.creator, now=now)  # an ordinary six weeks: nothing to flag
    with CaptureQueriesContext(connection) as one_agency:
        assert services.run_hourly(now=now).agencies == 1
    per_agency = len(one_agency.captured_queries) - 1
    assert per_agency <= 6
    for index in range(3):
        busy = build_world(f"Busy{index}")
        _hourly_rows(busy.creator, now=now)
        _hourly_rows(busy.other_creator, now=now)
    with django_assert_num_queries(1 + 4 * per_agency):
        assert services.run_hourly(now=now).agencies == 4
