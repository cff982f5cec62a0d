"""The metrics facade (apps/core/metrics.py) and the database rollups (apps/monitoring/rollups.py):
what an operator relies on — every emitted event reaches the sinks, a failing sink never reaches
the code that emitted and its losses are counted, and rolled-up hours and days answer the same
totals and percentiles as the minutes they came from."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.core import metrics
from apps.core.metrics import Batch, recorder, sink_status
from apps.monitoring import rollups
from apps.monitoring.models import MetricSample

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday, midnight UTC


class Broken:
    """A sink whose service is down: every write raises, as boto3 does when CloudWatch is."""

    name = "broken"
    calls = 0

    def write(self, batch: Batch) -> None:
        Broken.calls += 1
        raise ConnectionError("endpoint unreachable")


class Flaky:
    """Fails once, then works: the batch it missed must arrive at the next flush."""

    name = "flaky"
    seen: list[int] = []
    fail_next = True

    def write(self, batch: Batch) -> None:
        if Flaky.fail_next:
            Flaky.fail_next = False
            raise TimeoutError("throttled")
        Flaky.seen.append(len(batch.events))


@pytest.fixture
def sinks(settings):
    def use(*paths: str) -> None:
        settings.METRICS_SINKS = list(paths)
        recorder.reset_sinks()

    yield use
    recorder.reset_sinks()


def test_events_are_aggregated_per_series_and_minute_with_their_histogram(sinks):
    sinks("apps.monitoring.sinks.DatabaseSink")
    for value in (3, 7, 40, 900):
        metrics.emit("http.request", value, "Milliseconds", {"route": "/inbox/", "status": "2xx"}, at=BASE + 5)
    metrics.emit("http.request", 12, "Milliseconds", {"status": "2xx", "route": "/inbox/"}, at=BASE + 61)
    metrics.emit("delivery.attempt", 1, "Count", {"outcome": "sent"}, at=BASE + 5)
    assert metrics.flush() == 6

    first = MetricSample.objects.get(name="http.request", start=datetime.fromtimestamp(BASE, UTC))
    assert (first.count, first.sum, first.min, first.max) == (4, 950, 3, 900)
    assert first.dims_key == "route=/inbox/|status=2xx"  # dimension order does not split series
    assert first.dimensions == {"route": "/inbox/", "status": "2xx"}
    # 3 ms ≤ 5, 7 ms ≤ 10, 40 ms ≤ 50, 900 ms ≤ 1000
    assert first.buckets == [0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    assert MetricSample.objects.filter(name="http.request").count() == 2
    counted = MetricSample.objects.get(name="delivery.attempt")
    assert counted.count == 1 and sum(counted.buckets) == 0  # counts have no latency histogram


def test_a_failing_sink_never_reaches_the_caller_and_its_losses_are_counted(sinks):
    sinks("tests.monitoring.test_facade.Broken", "apps.monitoring.sinks.DatabaseSink")
    Broken.calls = 0
    started = time.perf_counter()
    for _ in range(100):
        metrics.emit("ai.request", 120, "Milliseconds", {"outcome": "ok"})
    emitting = time.perf_counter() - started
    assert emitting < 0.05  # emit() never waits for a sink

    assert metrics.flush() == 100  # no exception although one sink is down
    assert MetricSample.objects.get(name="ai.request").count == 100  # the other sink got everything
    status = {s.name: s for s in sink_status()}
    assert status["broken"].failures == 1 and status["broken"].dropped == 0  # kept for one more try
    assert not status["broken"].healthy and "endpoint unreachable" in status["broken"].last_error

    metrics.flush()  # the retry fails too: the batch is dropped and counted
    status = {s.name: s for s in sink_status()}
    assert Broken.calls == 2
    assert status["broken"].failures == 2 and status["broken"].dropped == 100
    assert status["database"].written == 100 and status["database"].healthy


def test_a_batch_a_sink_missed_arrives_at_the_next_flush(sinks):
    sinks("tests.monitoring.test_facade.Flaky")
    Flaky.seen, Flaky.fail_next = [], True
    for _ in range(7):
        metrics.emit("celery.task", 30, "Milliseconds", {"task": "send"})
    metrics.flush()
    metrics.emit("celery.task", 30, "Milliseconds", {"task": "send"})
    metrics.flush()
    assert Flaky.seen == [7, 1]  # the missed batch, then the new one
    status = {s.name: s for s in sink_status()}["flaky"]
    assert (status.failures, status.dropped, status.written) == (1, 0, 8)
    assert status.healthy  # it has worked since it last failed


def test_a_full_buffer_drops_new_events_and_counts_them(sinks, settings):
    sinks("apps.monitoring.sinks.DatabaseSink")
    settings.METRICS_BUFFER_MAX = 10
    for _ in range(15):
        metrics.emit("http.request", 1, "Milliseconds")
    assert metrics.flush() == 10
    assert {s.name: s for s in sink_status()}["buffer"].dropped == 5


def one_day_of_requests() -> None:
    """Three hours on 2 November: /a answers in 40 to 139 ms, /b fails in 400 ms, every 10 s."""
    for second in range(0, 3 * 3600, 10):
        metrics.emit(
            "http.request", 40 + second % 100, "Milliseconds", {"route": "/a", "status": "2xx"}, at=BASE + second
        )
        metrics.emit("http.request", 400, "Milliseconds", {"route": "/b", "status": "5xx"}, at=BASE + second)
    metrics.flush()


def test_rollups_answer_the_same_totals_as_the_minutes(sinks):
    sinks("apps.monitoring.sinks.DatabaseSink")
    one_day_of_requests()
    start, end = datetime.fromtimestamp(BASE, UTC), datetime.fromtimestamp(BASE + 2 * 86400, UTC)
    from_minutes = rollups.read("http.request", start, end, group_by=["route"], rolled_up_until=start)

    written = rollups.rollup(now=end)
    assert written["hour"] == 6 and written["day"] == 2  # 3 hours x 2 routes, 1 day x 2 routes
    assert rollups.rollup(now=end)["hour"] == 0  # nothing new: idempotent
    assert MetricSample.objects.filter(resolution="h").count() == 6
    from_rollups = rollups.read("http.request", start, end, group_by=["route"])

    for route in (("/a",), ("/b",)):
        assert from_rollups[route].count == from_minutes[route].count == 1080
        assert from_rollups[route].sum == pytest.approx(from_minutes[route].sum)
        assert from_rollups[route].buckets == from_minutes[route].buckets
    assert from_rollups[("/b",)].min == from_rollups[("/b",)].max == 400
    # /a is uniform over 40 to 139 ms: its median lies in the 50 to 100 ms bucket, /b's p95 in 200 to 500.
    assert 50 <= from_rollups[("/a",)].quantile(0.5) <= 100
    assert 200 <= from_rollups[("/b",)].quantile(0.95) <= 500


def test_a_window_mixes_rolled_up_hours_with_the_minutes_around_them(sinks):
    sinks("apps.monitoring.sinks.DatabaseSink")
    one_day_of_requests()
    rollups.rollup(now=datetime.fromtimestamp(BASE + 3 * 3600 + 600, UTC))
    # 00:30 to 02:45: minutes, then the hour 01:00, then minutes of the third hour (not yet a day).
    start = datetime.fromtimestamp(BASE + 1800, UTC)
    end = datetime.fromtimestamp(BASE + 2 * 3600 + 2700, UTC)
    totals = rollups.read("http.request", start, end, group_by=["status"], where={"route": "/a"})
    assert list(totals) == [("2xx",)]
    assert totals[("2xx",)].count == (2 * 3600 + 2700 - 1800) // 10


def test_retention_deletes_each_resolution_after_its_days(sinks, settings):
    sinks("apps.monitoring.sinks.DatabaseSink")
    settings.METRICS_RETENTION_DAYS = {"minute": 1, "hour": 3, "day": 10}
    one_day_of_requests()
    rollups.rollup(now=datetime.fromtimestamp(BASE + 86400 + 3600, UTC))
    assert MetricSample.objects.filter(resolution="m").exists()
    rollups.rollup(now=datetime.fromtimestamp(BASE + 2 * 86400 + 3600, UTC))
    assert not MetricSample.objects.filter(resolution="m").exists()  # minutes older than a day go
    assert MetricSample.objects.filter(resolution="h").count() == 6  # hours stay three days
    rollups.rollup(now=datetime.fromtimestamp(BASE, UTC) + timedelta(days=5))
    assert not MetricSample.objects.filter(resolution="h").exists()
    assert MetricSample.objects.filter(resolution="d").count() == 2


def test_quantile_of_an_empty_histogram_is_unknown_not_zero():
    assert rollups.quantile([0] * metrics.BUCKETS, 0.5) is None


def test_a_forked_child_starts_with_its_own_buffer_lock_and_thread():
    # Celery's prefork pool forks workers from a process that may be flushing: the child must not
    # inherit a held lock (its first flush would hang), a dead flush thread (it would never flush)
    # or the parent's buffered events (they would be written twice).
    metrics.emit("celery.task", 5, "Milliseconds", {"task": "x"})
    recorder._lock.acquire()  # a flush in progress at the moment of the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            fresh = recorder.pending() == 0 and recorder._thread is None
            unlocked = recorder._lock.acquire(blocking=False)
            os._exit(0 if fresh and unlocked else 1)
    finally:
        recorder._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert recorder.pending() == 1  # the parent's event is still the parent's


@pytest.mark.django_db(transaction=True)
def test_two_rollups_at_once_write_each_hour_once(sinks):
    # Beat's entries queued behind a backlog can be drained by two workers at the same moment.
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    sinks("apps.monitoring.sinks.DatabaseSink")
    one_day_of_requests()
    end = datetime.fromtimestamp(BASE + 2 * 86400, UTC)

    def run() -> dict:
        try:
            return rollups.rollup(now=end)
        except Exception as error:  # SQLite: the second writer is refused on the first one's snapshot
            return {"refused": type(error).__name__}
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: run(), range(2)))
    if connection.vendor == "postgresql":
        assert sorted(r["hour"] for r in results) == [0, 6]  # the second waited, then found them done
    else:
        assert any("hour" in r for r in results)
    assert MetricSample.objects.filter(resolution="h").count() == 6
    assert MetricSample.objects.filter(resolution="d").count() == 2
