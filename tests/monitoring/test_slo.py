"""SLO indicators, error budgets and multiwindow multi-burn-rate alerts, through simulated time.

Traffic goes through the real metrics facade (``emit(..., at=t)`` then ``flush()`` into the
database sink); history older than the simulation is written as minute points through the sink's
Batch/Point API (three days of ten requests a second would be 2.6 million events). The evaluator
runs every EVALUATION_INTERVAL seconds of simulated time, as beat runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.core.metrics import BUCKETS, Batch, Point, bucket_index, emit, flush
from apps.monitoring import slo as slo_module
from apps.monitoring.models import SLO, Alert
from apps.monitoring.rollups import rollup
from apps.monitoring.sinks import DatabaseSink
from apps.monitoring.tasks import evaluate_slos

EVALUATION_INTERVAL = 30
RATE = 10  # requests a second
START = datetime(2025, 3, 3, 12, 0, tzinfo=UTC).timestamp()  # the simulation's first second
API = {"route": "/api/v1/creators/{id}", "method": "GET"}


def write_points(points: list[Point]) -> None:
    batch = Batch(events=[])
    batch.points = points  # the sink writes a batch's per-minute points; these are ready-made
    DatabaseSink().write(batch)


def point(name: str, minute: float, count: int, dims: dict[str, str], *, unit: str = "Milliseconds",
          value_ms: float = 20.0) -> Point:  # fmt: skip
    buckets = [0] * BUCKETS
    if unit == "Milliseconds":
        buckets[bucket_index(value_ms)] = count
    return Point(
        name=name, unit=unit, dimensions=tuple(sorted(dims.items())), minute=int(minute), count=count,
        sum=value_ms * count, min=value_ms, max=value_ms, buckets=buckets,
    )  # fmt: skip


def history(start: float, end: float, *, per_minute: int = RATE * 60, errors_per_minute: int = 0) -> None:
    """Steady API traffic as minute points over [start, end)."""
    points = []
    for minute in range(int(start), int(end), 60):
        points.append(point("http.request", minute, per_minute - errors_per_minute, {**API, "status": "2xx"}))
        if errors_per_minute:
            points.append(point("http.request", minute, errors_per_minute, {**API, "status": "5xx"}))
    write_points(points)


def requests(first: int, last: int, failing: Callable[[int, int], bool]) -> None:
    """RATE requests in each second of [first, last] through emit(); ``failing(second, i)``
    says whether the i-th request of that second answers 5xx."""
    for second in range(first, last + 1):
        for i in range(RATE):
            status = "5xx" if failing(second, i) else "2xx"
            emit("http.request", 20.0, "Milliseconds", {**API, "status": status}, at=second)
    flush()


class Simulation:
    """Time advancing in evaluation intervals, traffic for each second, evaluation at each step."""

    def __init__(self, now: float) -> None:
        self.now = int(now)

    def run(self, seconds: int, failing: Callable[[int, int], bool], *, until: Callable[[], bool] | None = None) -> int:
        """Advance up to ``seconds``; answers the seconds it took until ``until()`` held (or all)."""
        started = self.now
        while self.now - started < seconds:
            requests(self.now + 1, self.now + EVALUATION_INTERVAL, failing)
            self.now += EVALUATION_INTERVAL
            slo_module.evaluate(now=datetime.fromtimestamp(self.now, UTC))
            if until is not None and until():
                break
        return self.now - started


def ok(second: int, i: int) -> bool:
    return False


def outage(second: int, i: int) -> bool:
    return True


def one_percent(second: int, i: int) -> bool:
    return second % 10 == 0 and i == 0  # one request in a hundred


def firing(rule: str, slo: SLO) -> Alert | None:
    return Alert.objects.filter(key=f"slo:{slo.pk}:{rule}", state=Alert.State.FIRING).first()


@pytest.fixture
def availability(db) -> SLO:
    """99.9% API availability over 30 days, with three days of healthy history behind it."""
    history(START - 3 * 86400, START)
    rollup(now=datetime.fromtimestamp(START, UTC))  # as beat does: hours for the long windows
    return SLO.objects.create(name="API availability", indicator="api_availability", objective=Decimal("99.9"))


def test_a_full_outage_pages_within_52_seconds_plus_one_interval(availability):
    sim = Simulation(START)
    sim.run(300, ok)
    assert not Alert.objects.exists()

    took = sim.run(600, outage, until=lambda: firing("page-1h", availability) is not None)

    alert = firing("page-1h", availability)
    assert alert is not None, "a full outage never paged"
    assert took <= 52 + EVALUATION_INTERVAL
    assert alert.severity == "page"
    assert alert.values["threshold"] == 14.4
    assert alert.values["long_burn"] >= 14.4 and alert.values["short_burn"] >= 14.4


def test_a_30_second_outage_does_not_page(availability):
    sim = Simulation(START)
    sim.run(300, ok)
    sim.run(30, outage)
    sim.run(3600, ok)
    assert not Alert.objects.filter(severity="page").exists()


def test_one_percent_errors_pages_at_6x_within_216_minutes_never_at_14x(availability):
    sim = Simulation(START)
    took = sim.run(
        216 * 60 + 2 * EVALUATION_INTERVAL, one_percent, until=lambda: firing("page-6h", availability) is not None
    )
    assert firing("page-6h", availability) is not None, "1% errors (6x the budget) never paged"
    assert took <= 216 * 60 + EVALUATION_INTERVAL
    assert took > 216 * 60 - 5 * EVALUATION_INTERVAL, "paged long before 5% of the budget was spent"
    assert not Alert.objects.filter(key=f"slo:{availability.pk}:page-1h").exists()
    sim.run(20 * 60, one_percent)  # and it keeps not firing the fast page
    assert not Alert.objects.filter(key=f"slo:{availability.pk}:page-1h").exists()


def test_the_page_resolves_within_5_minutes_plus_one_interval_after_recovery(availability):
    sim = Simulation(START)
    sim.run(600, outage, until=lambda: firing("page-1h", availability) is not None)
    alert = firing("page-1h", availability)
    assert alert is not None

    recovered_at = sim.now
    took = sim.run(3600, ok, until=lambda: firing("page-1h", availability) is None)

    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert took <= 5 * 60 + EVALUATION_INTERVAL
    assert alert.resolved_at == datetime.fromtimestamp(recovered_at + took, UTC)
    assert not Alert.objects.filter(state="firing").exists()


def test_one_alert_per_key_while_firing_and_a_new_one_after_resolving(availability):
    sim = Simulation(START)
    sim.run(10 * 60, outage)  # twenty evaluations, every one of them with the rule holding
    assert Alert.objects.filter(key=f"slo:{availability.pk}:page-1h").count() == 1
    alert = firing("page-1h", availability)
    assert alert.fired_at < alert.last_evaluated_at == datetime.fromtimestamp(sim.now, UTC)

    sim.run(3600, ok, until=lambda: firing("page-1h", availability) is None)
    sim.run(10 * 60, outage)
    alerts = list(Alert.objects.filter(key=f"slo:{availability.pk}:page-1h").order_by("fired_at"))
    assert [a.state for a in alerts] == ["resolved", "firing"]


def test_the_rules_thresholds_for_28_and_30_day_windows():
    thresholds = {rule.name: (rule.threshold(30), rule.threshold(28)) for rule in slo_module.RULES}
    assert thresholds["page-1h"] == pytest.approx((14.4, 13.44))
    assert thresholds["page-6h"] == pytest.approx((6.0, 5.6))
    assert thresholds["ticket-3d"] == pytest.approx((1.0, 0.9333), rel=1e-3)


def test_a_28_day_slo_pages_at_a_burn_the_30_day_slo_tolerates(db):
    now = START
    history(now - 3 * 86400, now - 3600)
    history(now - 3600, now + 60, per_minute=1000, errors_per_minute=14)  # 1.4%: 14x a 0.1% budget
    thirty = SLO.objects.create(name="30 days", indicator="api_availability", objective=Decimal("99.9"))
    twenty_eight = SLO.objects.create(
        name="28 days", indicator="api_availability", objective=Decimal("99.9"), window_days=28
    )
    slo_module.evaluate(now=datetime.fromtimestamp(now, UTC))
    assert firing("page-1h", twenty_eight) is not None
    assert firing("page-1h", twenty_eight).values["threshold"] == pytest.approx(13.44)
    assert firing("page-1h", thirty) is None


def test_budget_remaining_over_the_slo_window(db):
    now = START
    # 100,000 requests in the window with 40 errors: 40% of a 0.1% budget spent.
    write_points(
        [point("http.request", now - 10 * 86400 + i * 60, 1000, {**API, "status": "2xx"}) for i in range(99)]
        + [point("http.request", now - 5 * 86400, 960, {**API, "status": "2xx"})]
        + [point("http.request", now - 5 * 86400 + 60, 40, {**API, "status": "5xx"})]
        # Outside the 30-day window: ignored.
        + [point("http.request", now - 35 * 86400, 5000, {**API, "status": "5xx"})]
    )
    slo = SLO.objects.create(name="API", indicator="api_availability", objective=Decimal("99.9"))
    [status] = slo_module.slo_status([slo], now=datetime.fromtimestamp(now, UTC))
    assert status.window.total == 100_000
    assert status.current == pytest.approx(99.96)
    assert status.budget_remaining == pytest.approx(60.0)
    assert status.state == "ok"

    write_points([point("http.request", now - 60, 100, {**API, "status": "5xx"})])
    [status] = slo_module.slo_status([slo], now=datetime.fromtimestamp(now, UTC))
    assert status.budget_remaining < 0  # overspent: shown as such, not clamped


def test_no_events_is_no_data_not_an_outage(db):
    SLO.objects.create(name="API", indicator="api_availability", objective=Decimal("99.9"))
    [status] = slo_module.evaluate(now=datetime.fromtimestamp(START, UTC))
    assert status.state == "no-data" and status.current is None and status.budget_remaining is None
    assert not Alert.objects.exists()


def test_ai_success_latency_and_delivery_indicators(db):
    now = START
    minute = now - 120
    ai = {"provider": "openai", "feature": "studio", "error_kind": ""}
    write_points(
        [
            point("ai.request", minute, 80, {**ai, "outcome": "ok"}, value_ms=900),  # within 1000 ms
            point("ai.request", minute, 15, {**ai, "outcome": "ok"}, value_ms=4000),  # over 1000 ms
            point("ai.request", minute, 5, {**ai, "outcome": "error", "error_kind": "timeout"}, value_ms=30000),
            # streams the member closed before their end: neither good nor bad
            point("ai.request", minute, 40, {**ai, "outcome": "cancelled", "error_kind": "CANCELLED"}, value_ms=800),
            point("delivery.attempt", minute, 90, {"platform": "onlyfans", "outcome": "sent"}, unit="Count"),
            point("delivery.attempt", minute, 30, {"platform": "onlyfans", "outcome": "failed"}, unit="Count"),
            point("delivery.attempt", minute, 10, {"platform": "onlyfans", "outcome": "dead"}, unit="Count"),
        ]
    )
    slos = [
        SLO(name="AI success", indicator="ai_success", objective=Decimal("99")),
        SLO(name="AI latency", indicator="ai_latency", objective=Decimal("95"), threshold_ms=1000),
        SLO(name="AI latency loose", indicator="ai_latency", objective=Decimal("95"), threshold_ms=5000),
        SLO(name="Delivery", indicator="delivery_success", objective=Decimal("99.5")),
    ]
    for slo in slos:
        slo.save()
    current = {s.slo.name: s.current for s in slo_module.slo_status(slos, now=datetime.fromtimestamp(now, UTC))}
    assert current["AI success"] == pytest.approx(95.0)
    assert current["AI latency"] == pytest.approx(80.0)  # errors are not fast answers
    assert current["AI latency loose"] == pytest.approx(95.0)
    assert current["Delivery"] == pytest.approx(90.0)  # retried failures are not counted


def test_latency_threshold_must_be_a_histogram_bound(db):
    from django.core.exceptions import ValidationError

    slo = SLO(name="AI latency", indicator="ai_latency", objective=Decimal("95"), threshold_ms=4500)
    with pytest.raises(ValidationError) as error:
        slo.full_clean()
    assert "threshold_ms" in error.value.message_dict
    slo.threshold_ms = 5000
    slo.full_clean()


def test_the_beat_task_evaluates_what_the_processes_flushed(db, settings):
    now = datetime.now(UTC).timestamp()
    history(now - 3 * 86400, now - 120)
    slo = SLO.objects.create(name="API", indicator="api_availability", objective=Decimal("99.9"))
    for second in range(int(now) - 119, int(now) + 1):  # two minutes of full outage
        for _ in range(RATE):
            emit("http.request", 20.0, "Milliseconds", {**API, "status": "5xx"}, at=second)
    flush()  # what a process's flush thread does every METRICS_FLUSH_SECONDS
    result = evaluate_slos()
    assert result["evaluated"] == 1
    assert firing("page-1h", slo) is not None


def test_disabling_an_slo_resolves_its_alerts(availability):
    sim = Simulation(START)
    sim.run(600, outage, until=lambda: firing("page-1h", availability) is not None)
    availability.enabled = False
    availability.save()
    slo_module.evaluate(now=datetime.fromtimestamp(sim.now + 30, UTC))
    assert not Alert.objects.filter(state="firing").exists()


def test_a_minute_partly_inside_a_window_counts_for_its_share(db):
    minute = START - 3600 - 60  # the minute that starts 61 minutes before START
    history(minute, minute + 60, per_minute=600, errors_per_minute=600)
    history(minute + 60, START + 60, per_minute=600)
    slo = SLO.objects.create(name="API", indicator="api_availability", objective=Decimal("99.9"))
    reader = slo_module.Reader(datetime.fromtimestamp(START - 30, UTC))  # half of it is inside 1 h
    counts = reader.window(slo, timedelta(hours=1))
    assert counts.bad == pytest.approx(300)
    assert counts.total == pytest.approx(300 + 60 * 600)


def test_the_demo_creates_the_default_slos_once(db):
    import random

    from apps.core.registry import DemoContext
    from apps.monitoring import demo

    context = DemoContext(options={}, log=lambda line: None, rng=random.Random(1))
    demo.seed(context)
    demo.seed(context)
    slos = {slo.name: slo for slo in SLO.objects.all()}
    assert len(slos) == 4
    assert slos["AI latency under 5 s"].threshold_ms == 5000 and slos["AI latency under 5 s"].window_days == 28
    assert slos["API availability"].objective == Decimal("99.9")
