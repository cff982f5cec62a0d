"""Capacity advice (apps/monitoring/capacity.py) on fixed metric data, as an operator reads it:
the processes recommended per queue and for the web, why, and what they cost a month.

Metrics are written the way production writes them: emit(at=…) then flush() into the database
sink. Every expected number is worked out here by hand from the inputs (arrival rate * mean
service time = busy processes; divided by the target utilisation; rounded up; at least the
minimum), never by calling the code under test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from apps.core import metrics
from apps.core.metrics import recorder
from apps.monitoring import rollups
from apps.monitoring.capacity import capacity_advice, capacity_context

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
LAST_HOUR = NOW - timedelta(hours=1)


@pytest.fixture(autouse=True)
def capacity_settings(settings):
    """The database sink, and settings stated here so the arithmetic below does not depend on
    the installation's defaults."""
    settings.METRICS_SINKS = ["apps.monitoring.sinks.DatabaseSink"]
    recorder.reset_sinks()
    recorder.discard()
    settings.CAPACITY_TARGET_UTILISATION = 0.65
    settings.CAPACITY_LOOKBACK_DAYS = 7
    settings.CAPACITY_MIN_WEB_PROCESSES = 2
    settings.CAPACITY_MIN_WORKER_PROCESSES = 1
    settings.CAPACITY_WEB_PROCESSES = 2
    settings.CAPACITY_WORKER_PROCESSES = {"interactive": 1, "default": 2, "bulk": 1}
    settings.CAPACITY_VCPU_HOUR_USD = Decimal("0.04048")
    settings.CAPACITY_GB_HOUR_USD = Decimal("0.004445")
    settings.CAPACITY_WEB_VCPU = Decimal("0.5")
    settings.CAPACITY_WEB_MEMORY_GB = Decimal("1")
    settings.CAPACITY_WORKER_VCPU = Decimal("0.5")
    settings.CAPACITY_WORKER_MEMORY_GB = Decimal("1")
    yield settings
    recorder.discard()
    recorder.reset_sinks()


def tasks(queue: str, start: datetime, *, minutes: int, per_minute: int, ms: float, task: str = "apps.x.tasks.run"):
    """``per_minute`` tasks of ``ms`` each, evenly spread over ``minutes`` minutes from ``start``."""
    for minute in range(minutes):
        for i in range(per_minute):
            at = start.timestamp() + minute * 60 + i * 60 / per_minute
            metrics.emit("celery.task", ms, "Milliseconds", {"task": task, "queue": queue, "outcome": "success"}, at=at)
    metrics.flush()


def requests(start: datetime, *, minutes: int, per_minute: int, ms: float):
    for minute in range(minutes):
        for i in range(per_minute):
            at = start.timestamp() + minute * 60 + i * 60 / per_minute
            dims = {"route": "/inbox/<int:pk>/", "method": "GET", "status": "2xx"}
            metrics.emit("http.request", ms, "Milliseconds", dims, at=at)
    metrics.flush()


def depths(queue: str, start: datetime, *, minutes: int, depth_at):
    """The sampler's gauge every 30 s; ``depth_at(minutes since start)`` gives the depth."""
    for half in range(minutes * 2):
        metrics.emit(
            "celery.queue_depth", depth_at(half / 2), "Count", {"queue": queue}, at=start.timestamp() + half * 30
        )
    metrics.flush()


def row(advice, queue=None, role=None):
    for item in advice.rows:
        if (queue is not None and item.queue == queue) or (role is not None and item.role == role):
            return item
    raise AssertionError(f"no row for {queue or role}")


def usd(value: str) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- workers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("rolled_up", [False, True], ids=["minute rows", "rolled up into hours"])
def test_a_steady_load_needing_three_workers_on_default_recommends_three(rolled_up):
    # 30 tasks a minute (0.5 per second) of 3.9 s for two hours: 0.5 * 3.9 = 1.95 processes busy
    # on average; at 65 % utilisation 1.95 / 0.65 = 3 processes.
    tasks("default", NOW - timedelta(hours=2), minutes=120, per_minute=30, ms=3900)
    if rolled_up:
        rollups.rollup(now=NOW)

    advice = capacity_advice(now=NOW)

    default = row(advice, "default")
    assert default.current == 2
    assert default.recommended == 3
    assert default.change == "add" and default.delta == 1
    assert default.offered_load == pytest.approx(1.95)
    # The two processes running now were busy 1.95 / 2 = 97.5 % of the time.
    assert default.utilisation == pytest.approx(0.975)
    assert default.peak_utilisation == pytest.approx(0.975)
    text = " ".join(default.reasons)
    assert "1,800 tasks ran on default" in text
    assert "3.90 s each" in text
    assert "1.95 / 0.65 = 3.00, rounded up to 3" in text
    assert "busy 98% of the last hour" in text
    assert not default.queue_growing


def test_idle_queues_recommend_the_minimum_and_one_queue_alone_is_advised():
    tasks("default", LAST_HOUR, minutes=60, per_minute=6, ms=1000)  # 0.1 s busy per second

    advice = capacity_advice(now=NOW)

    assert [r.queue for r in advice.roles[1:]] == ["interactive", "default", "bulk"]
    for queue in ("interactive", "bulk"):
        idle = row(advice, queue)
        assert idle.recommended == 1
        assert idle.utilisation == 0
        assert any("No task ran on" in reason for reason in idle.reasons)
        assert any("At least 1 process per queue" in reason for reason in idle.reasons)
    # 0.1 busy processes / 0.65 = 0.15, rounded up to 1: the minimum anyway.
    assert row(advice, "default").recommended == 1
    assert row(advice, "default").change == "remove"


def test_the_busiest_hour_of_the_week_sets_the_size_and_older_data_is_ignored():
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)  # 1.95 busy: 3 processes
    # Wednesday 14:00: 40 a minute of 3.9 s = 2.6 busy; 2.6 / 0.65 = 4 processes.
    busiest = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)
    tasks("default", busiest, minutes=60, per_minute=40, ms=3900)
    # Eight days ago, outside the 7-day look-back: 60 a minute of 3.9 s would need 6.
    tasks("default", NOW - timedelta(days=8), minutes=60, per_minute=60, ms=3900)

    default = row(capacity_advice(now=NOW), "default")

    assert default.recommended == 4
    assert default.peak_utilisation == pytest.approx(2.6 / 2)
    assert any("busiest hour (Wed 04 Nov 14:00 UTC), 2,400 tasks" in reason for reason in default.reasons)


def test_a_growing_queue_flags_under_provisioning_and_adds_the_work_that_waits():
    # Two processes finish 30 tasks of 3.9 s a minute (1.95 busy) while the queue grows by
    # 2 messages a minute: 2 more arrive each minute than finish. Arrivals are then
    # (30 + 2) / 60 per second, so the load is 1.95 + 2 / 60 * 3.9 = 2.08 busy processes;
    # 2.08 / 0.65 = 3.2, rounded up to 4.
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)
    depths("default", LAST_HOUR, minutes=60, depth_at=lambda minute: 2 * minute)
    tasks("interactive", LAST_HOUR, minutes=60, per_minute=6, ms=500)
    depths("interactive", LAST_HOUR, minutes=60, depth_at=lambda minute: 3 + (minute % 2))  # wobbles, flat

    advice = capacity_advice(now=NOW)

    default = row(advice, "default")
    expected_load = 1.95 + 2 / 60 * 3.9
    assert default.queue_growing and default.under_provisioned
    assert default.offered_load == pytest.approx(expected_load)
    assert default.recommended == math.ceil(expected_load / 0.65) == 4
    assert any("tasks arrive faster than they finish" in reason for reason in default.reasons)
    assert not row(advice, "interactive").queue_growing

    html = render_to_string("monitoring/partials/capacity.html", capacity_context(now=NOW))
    assert "queue growing" in html


def test_messages_waiting_with_no_task_finishing_point_at_a_missing_worker(settings):
    settings.CAPACITY_WORKER_PROCESSES = {"interactive": 1, "default": 1}  # nobody consumes bulk
    tasks("default", LAST_HOUR, minutes=60, per_minute=6, ms=1000)
    depths("bulk", LAST_HOUR, minutes=60, depth_at=lambda minute: 40)

    bulk = row(capacity_advice(now=NOW), "bulk")

    assert bulk.current == 0
    assert bulk.queue_growing
    assert bulk.recommended == 1
    assert any("No process consumes this queue now" in reason for reason in bulk.reasons)
    assert any("40 messages are waiting and no task finished" in reason for reason in bulk.reasons)


def test_one_shared_pool_as_the_procfile_runs_it_is_compared_with_dedicated_workers(settings):
    settings.CAPACITY_WORKER_PROCESSES = 2  # one worker, --concurrency=2, all queues
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)  # 1.95 busy: 3 dedicated
    tasks("interactive", LAST_HOUR, minutes=60, per_minute=6, ms=500)  # 0.05 busy: 1

    advice = capacity_advice(now=NOW)

    assert row(advice, "default").current is None  # served by the pool
    pool = advice.worker_pool
    assert pool is not None and pool.current == 2
    # 3 (default) + 1 (interactive) + 1 (bulk, idle) dedicated processes.
    assert pool.recommended == 5
    # (1.95 + 0.05) busy of 2 processes: 100 %.
    assert pool.utilisation == pytest.approx(1.0)
    # Kept as one pool: 2.0 / 0.65 = 3.08, rounded up to 4.
    assert any("Kept as one pool, 4 would carry" in reason for reason in pool.reasons)
    worker = usd("18.02005")
    assert advice.current_monthly_usd == usd("18.02005") * 2 + worker * 2  # 2 web + the pool of 2


# -- the web ---------------------------------------------------------------------------------------
def test_web_processes_follow_request_rate_times_mean_latency():
    # One request a second taking 1.5 s: 1.5 requests in flight on average; 1.5 / 0.65 = 2.31,
    # rounded up to 3 daphne processes.
    requests(LAST_HOUR, minutes=60, per_minute=60, ms=1500)

    web = row(capacity_advice(now=NOW), role="web")

    assert web.recommended == math.ceil(1 * 1.5 / 0.65) == 3
    assert web.utilisation == pytest.approx(1.5 / 2)
    assert any("3,600 requests were served, 1.50 s each" in reason for reason in web.reasons)


def test_a_quiet_site_keeps_two_web_processes_for_availability():
    requests(LAST_HOUR, minutes=60, per_minute=10, ms=80)  # 10 / 60 * 0.08 = 0.013 busy

    web = row(capacity_advice(now=NOW), role="web")

    assert web.recommended == 2
    assert any("At least 2 web processes" in reason for reason in web.reasons)


# -- cost ------------------------------------------------------------------------------------------
def test_monthly_cost_at_the_default_fargate_prices():
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)
    requests(LAST_HOUR, minutes=60, per_minute=60, ms=1500)

    advice = capacity_advice(now=NOW)

    # 0.5 vCPU * $0.04048 + 1 GB * $0.004445 = $0.024685 an hour; * 730 hours = $18.02 a month.
    per_process = usd("18.02005")
    web = row(advice, role="web")
    assert web.current_monthly_usd == per_process * 2
    assert web.recommended_monthly_usd == per_process * 3
    assert web.difference_monthly_usd == per_process
    assert web.difference_display == "+$18.02"
    # Now: 2 web + 1 + 2 + 1 workers = 6 processes; recommended 3 web + 1 + 3 + 1 = 8.
    assert advice.current_monthly_usd == per_process * 6
    assert advice.recommended_monthly_usd == per_process * 8
    assert advice.difference_display == "+$36.04"


def test_monthly_cost_at_configured_prices_and_sizes(settings):
    settings.CAPACITY_VCPU_HOUR_USD = Decimal("0.04")
    settings.CAPACITY_GB_HOUR_USD = Decimal("0.005")
    settings.CAPACITY_WEB_VCPU = Decimal("1")
    settings.CAPACITY_WEB_MEMORY_GB = Decimal("2")
    settings.CAPACITY_WORKER_VCPU = Decimal("0.25")
    settings.CAPACITY_WORKER_MEMORY_GB = Decimal("0.5")
    settings.CAPACITY_WEB_PROCESSES = 4
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)  # 3 recommended, 2 now
    requests(LAST_HOUR, minutes=60, per_minute=10, ms=80)  # the minimum, 2

    advice = capacity_advice(now=NOW)

    # Web: (1 * 0.04 + 2 * 0.005) * 730 = $36.50 per process. Worker: (0.25 * 0.04 + 0.5 * 0.005)
    # * 730 = $9.125 per process.
    web, default = row(advice, role="web"), row(advice, "default")
    assert web.current_monthly_usd == Decimal("146.00")
    assert web.recommended_monthly_usd == Decimal("73.00")
    assert web.difference_display == "\u2212$73.00"
    assert default.current_monthly_usd == Decimal("18.25")
    assert default.recommended_monthly_usd == Decimal("27.38")  # 27.375, rounded half up


# -- no data ---------------------------------------------------------------------------------------
def test_without_data_the_advice_says_what_is_missing():
    advice = capacity_advice(now=NOW)

    assert not advice.enough_data
    assert not advice.has_recommendations
    assert all(r.recommended is None for r in advice.rows)
    assert advice.recommended_monthly_usd is None
    assert any("http.request" in item for item in advice.missing)
    assert any("celery.task" in item and "celery.queue_depth" in item for item in advice.missing)
    assert advice.current_monthly_usd == usd("18.02005") * 6

    html = render_to_string("monitoring/partials/capacity.html", capacity_context(now=NOW))
    assert "Not enough data yet for capacity advice." in html
    assert "No web requests recorded in the last 7 days" in html
    assert "<table" not in html


def test_workers_without_web_requests_are_advised_and_the_web_row_waits_for_data():
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)

    advice = capacity_advice(now=NOW)

    assert row(advice, "default").recommended == 3
    assert row(advice, role="web").recommended is None
    assert advice.missing and "http.request" in advice.missing[0]
    assert any("Only 1 hour of metrics so far" in note for note in advice.notes)
    html = render_to_string("monitoring/partials/capacity.html", capacity_context(now=NOW))
    assert "Some roles have no advice yet" in html
    assert "not enough data" in html


# -- the partial -----------------------------------------------------------------------------------
def test_the_partial_shows_the_numbers_and_escapes_what_came_from_metrics():
    tasks("default", LAST_HOUR, minutes=60, per_minute=30, ms=3900)
    requests(LAST_HOUR, minutes=60, per_minute=60, ms=1500)
    tasks("<script>alert(1)</script>", LAST_HOUR, minutes=2, per_minute=1, ms=100)

    html = render_to_string("monitoring/partials/capacity.html", capacity_context(now=NOW))

    assert "Celery workers: default" in html
    assert "<strong>3</strong>" in html  # default: 3 recommended
    assert "(+1)" in html
    assert "98%" in html  # default's two processes, 97.5 % busy
    assert "$18.02" in html and "$36.04" in html  # one web process a month; web 2 → 3
    assert "1.95 / 0.65 = 3.00, rounded up to 3" in html
    assert "at a target of 65% busy" in html
    assert "<script>alert(1)</script>" not in html
    assert "Celery workers: &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_reads_are_a_constant_few_queries_whatever_the_amount_of_data():
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            capacity_context(now=NOW)
        return len(queries)

    tasks("default", LAST_HOUR, minutes=5, per_minute=1, ms=100)
    small = count()
    for day in range(1, 7):
        tasks("bulk", NOW - timedelta(days=day), minutes=30, per_minute=2, ms=100)
    requests(LAST_HOUR, minutes=60, per_minute=5, ms=50)
    depths("default", LAST_HOUR, minutes=60, depth_at=lambda minute: minute)
    rollups.rollup(now=NOW - timedelta(hours=3))

    assert count() == small <= 3


# -- settings --------------------------------------------------------------------------------------
def load_settings(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import json; from huntaze import settings as s; "
        "print(json.dumps({'workers': s.CAPACITY_WORKER_PROCESSES, 'target': s.CAPACITY_TARGET_UTILISATION}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CAPACITY_TARGET_UTILISATION": "65"}, "CAPACITY_TARGET_UTILISATION=65.0 must be a fraction"),
        ({"CAPACITY_WORKER_PROCESSES": "0"}, "use a number of at least 1"),
        ({"CAPACITY_WORKER_PROCESSES": "default=two"}, "'default=two' is not a queue=number pair"),
        ({"CAPACITY_VCPU_HOUR_USD": "cheap"}, "CAPACITY_VCPU_HOUR_USD='cheap' is not a number"),
        ({"CAPACITY_WEB_VCPU": "0"}, "CAPACITY_WEB_VCPU='0' must be a number above 0"),
        ({"CAPACITY_MIN_WEB_PROCESSES": "0"}, "must be at least 1"),
        ({"CAPACITY_LOOKBACK_DAYS": "400"}, "CAPACITY_LOOKBACK_DAYS must be between 1 and 90"),
    ],
)
def test_nonsense_settings_stop_the_process_with_a_clear_message(env, message):
    result = load_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_worker_processes_per_queue_or_one_pool():
    per_queue = load_settings({"CAPACITY_WORKER_PROCESSES": "interactive=2, default=1,bulk=0"})
    assert json.loads(per_queue.stdout)["workers"] == {"interactive": 2, "default": 1, "bulk": 0}
    procfile = load_settings({"WORKER_CONCURRENCY": "3"})
    assert json.loads(procfile.stdout)["workers"] == 3
