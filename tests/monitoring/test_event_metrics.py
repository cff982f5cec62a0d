"""Events → metrics (apps/monitoring/event_metrics.py): every event the outbox dispatches is counted
by kind and its publish → dispatch lag observed, in the metrics an operator scrapes or charts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.core import events, metrics, outbox
from apps.core.models import OutboxEvent
from apps.monitoring.models import MetricSample
from apps.monitoring.sink_prometheus import kind_of

pytestmark = pytest.mark.django_db


def _counts(name: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for sample in MetricSample.objects.filter(name=name):
        kind = sample.dimensions["kind"]
        totals[kind] = totals.get(kind, 0) + (sample.sum if name == "events.dispatched" else sample.count)
    return totals


def test_dispatched_events_are_counted_by_kind_with_their_lag(
    database_sink, settings, django_capture_on_commit_callbacks
):
    settings.EVENTS_DISPATCH_ON_COMMIT = "inline"
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for index in range(3):
            events.publish("bench.metrics_a", agency_id=None, payload={"i": index})
        events.publish("bench.metrics_b", agency_id=None, payload={})
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 0

    assert metrics.flush() >= 8
    assert _counts("events.dispatched") == {"bench.metrics_a": 3, "bench.metrics_b": 1}
    lag = MetricSample.objects.filter(name="events.dispatch_lag", dimensions__kind="bench.metrics_a")
    assert sum(sample.count for sample in lag) == 3
    assert all(sample.unit == "Seconds" and 0 <= sample.min <= sample.max < 60 for sample in lag)


def test_an_event_swept_late_shows_its_wait_and_an_undispatched_one_is_not_counted(database_sink, settings):
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"
    old = events.publish("bench.metrics_late", agency_id=None, payload={})
    OutboxEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    events.publish("bench.metrics_late", agency_id=None, payload={})
    metrics.flush()
    assert _counts("events.dispatched") == {}  # published, not yet dispatched: nothing counted

    report = outbox.dispatch_pending()
    assert report.dispatched == 2
    metrics.flush()
    assert _counts("events.dispatched") == {"bench.metrics_late": 2}
    lag = MetricSample.objects.filter(name="events.dispatch_lag", dimensions__kind="bench.metrics_late")
    assert max(sample.max for sample in lag) >= 120
    assert min(sample.min for sample in lag) < 60


def test_the_prometheus_names_are_the_documented_ones():
    assert kind_of("events.dispatched", "Count") == ("counter", "huntaze_events_dispatched")
    assert kind_of("events.dispatch_lag", "Seconds") == ("histogram", "huntaze_events_dispatch_lag_seconds")
