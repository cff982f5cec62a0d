"""Monitoring's cost on the request path and the rollup job: the monitoring issue's Speed section.

On the product's code, in a database of its own (SQLite file under var/, or PostgreSQL database
``hz_monitoring_bench`` on the server of ``DATABASE_URL``), with the default database sink:

- ``emit_p50_us`` / ``emit_p99_us``: ``apps.core.metrics.emit()`` as the request middleware calls it
  (a name, a latency, a unit and three dimensions), each call timed on its own, the buffer
  emptied between rounds (outside the timing) so it never reaches its cap. Target p50 <= 20 us.
- ``middleware_overhead_p50_ms``: the project's whole MIDDLEWARE stack in front of a bare view
  (``/bench/items/<int:item_id>/`` behind an ``include()``, answering "ok") through Django's request
  handler, with and without ``RequestMetricsMiddleware``, built in the same run. Each sample is a
  pair (one request through each stack, in random order) and the overhead is the median of the
  pairs' differences, so drift of the machine cancels out. Target <= 0.3 ms.
- ``rollup_day_s``: ``apps.monitoring.rollups.rollup()`` over one day of one event per second on
  each of 100 routes: the 144,000 minute rows (1,440 minutes x 100 routes, 60 events each with
  their histogram) the database sink writes for them, written through ``DatabaseSink`` (not
  timed), then rolled up into 2,400 hour rows and 100 day rows (timed). Target <= 5 s.

Prints a table, then one JSON line; exits 1 when a target is missed. Usage:

    python bench/monitoring.py [--quick]                                    # embedded (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python bench/monitoring.py   # PostgreSQL
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_DATABASE = "hz_monitoring_bench"
EMITS, QUICK_EMITS = 300_000, 100_000
PAIRS, QUICK_PAIRS = 6_000, 2_000
ROUTES, MINUTES = 100, 1440
MAX_EMIT_P50_US = 20.0
MAX_MIDDLEWARE_P50_MS = 0.3
MAX_ROLLUP_S = 5.0
DAY = datetime(2025, 1, 6, tzinfo=UTC)  # any closed day; rollup() is given a clock just after it
MIDDLEWARE_PATH = "apps.monitoring.middleware.RequestMetricsMiddleware"


def bench_emit(calls: int) -> list[float]:
    """Per-call emit() durations in microseconds."""
    from apps.core.metrics import emit, recorder

    dims = {"route": "/inbox/c/<int:conversation_id>/", "method": "GET", "status": "2xx"}
    samples: list[float] = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(max(1, calls // 10_000)):
            recorder.discard()
            for latency in range(min(calls, 10_000)):
                began = clock()
                emit("http.request", latency * 0.01, "Milliseconds", dims)
                samples.append((clock() - began) / 1000)
    finally:
        gc.enable()
        recorder.discard()
    return samples


def _bare_view(request, item_id: int):
    from django.http import HttpResponse

    return HttpResponse("ok")


def bench_middleware(pairs: int) -> dict:
    """Paired requests through the full stack with and without the metrics middleware."""
    from django.conf import settings
    from django.core.handlers.base import BaseHandler
    from django.test import RequestFactory, override_settings
    from django.urls import clear_url_caches, include, path

    from apps.core.metrics import recorder

    urls = types.ModuleType("bench_monitoring_urls")
    inner = [path("items/<int:item_id>/", _bare_view, name="item")]
    urls.urlpatterns = [path("bench/", include((inner, "bench")))]
    sys.modules[urls.__name__] = urls
    assert settings.MIDDLEWARE[0] == MIDDLEWARE_PATH, "RequestMetricsMiddleware is not first in MIDDLEWARE"
    with override_settings(ROOT_URLCONF=urls.__name__):
        clear_url_caches()
        with_metrics = BaseHandler()
        with_metrics.load_middleware()
        with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]):
            without = BaseHandler()
            without.load_middleware()
        factory = RequestFactory()
        clock = time.perf_counter_ns

        def timed(handler: BaseHandler, item: int) -> float:
            request = factory.get(f"/bench/items/{item}/")
            began = clock()
            response = handler.get_response(request)
            elapsed = clock() - began
            assert response.status_code == 200, response.status_code
            response.close()
            return elapsed / 1e6

        for item in range(200):  # warm both stacks (imports, caches, the route label)
            timed(with_metrics, item), timed(without, item)
        recorder.discard()
        for item in range(10):
            timed(with_metrics, item), timed(without, item)
        assert recorder.pending() == 10, f"{recorder.pending()} events for 10 metered requests, not 10"
        recorder.discard()
        diffs, plain, metered = [], [], []
        order = random.Random(12)
        gc.disable()
        try:
            for item in range(pairs):
                if order.random() < 0.5:
                    a = timed(with_metrics, item)
                    b = timed(without, item)
                else:
                    b = timed(without, item)
                    a = timed(with_metrics, item)
                metered.append(a)
                plain.append(b)
                diffs.append(a - b)
                if item % 1000 == 999:
                    recorder.discard()
        finally:
            gc.enable()
        recorder.discard()
    clear_url_caches()
    return {"diffs": diffs, "plain": plain, "metered": metered}


@dataclass
class _Prebuilt:
    """A Batch whose per-minute points are already aggregated (what one day of flushes wrote)."""

    points: list
    events: tuple = ()


def bench_rollup() -> dict:
    from django.db import connection

    from apps.core.metrics import BUCKETS, Point, bucket_index
    from apps.monitoring.models import MetricSample
    from apps.monitoring.rollups import LATE, rollup
    from apps.monitoring.sinks import DatabaseSink

    MetricSample.objects.all().delete()
    # One minute of one request a second: 60 latencies spread like a real route's (mostly fast).
    latencies = [3.0 + (i * 7919 % 97) * (1.0 if i % 10 else 9.0) for i in range(60)]
    buckets = [0] * BUCKETS
    for value in latencies:
        buckets[bucket_index(value)] += 1
    began = time.perf_counter()
    start = int(DAY.timestamp())
    points = []
    for minute in range(60):
        for route in range(ROUTES):
            dims = (("method", "GET"), ("route", f"/bench/route-{route}/<int:item_id>/"), ("status", "2xx"))
            points.append(
                Point("http.request", "Milliseconds", dims, start + minute * 60, count=60, sum=sum(latencies),
                      min=min(latencies), max=max(latencies), buckets=list(buckets))
            )  # fmt: skip
    DatabaseSink().write(_Prebuilt(points))  # the first hour, as the sink writes it
    # The other 23 hours: the same rows an hour later each, copied by the database (writing
    # 138,000 more rows through the ORM takes a minute on SQLite and is not what is measured).
    table = connection.ops.quote_name(MetricSample._meta.db_table)
    columns = ["name", "unit", "dims_key", "dimensions", "resolution", "count", "sum", "min", "max",
               *MetricSample.BUCKET_FIELDS]  # fmt: skip
    names = ", ".join(columns)
    if connection.vendor == "postgresql":
        shifted = "start + make_interval(hours => %s)"
    else:
        shifted = "strftime('%%Y-%%m-%%d %%H:%%M:%%S', start, '+' || %s || ' hours')"
    copy = (
        f"INSERT INTO {table} ({names}, start) SELECT {names}, {shifted} FROM {table} "
        "WHERE resolution = 'm' AND start >= %s AND start < %s"
    )
    first_hour = [connection.ops.adapt_datetimefield_value(moment) for moment in (DAY, DAY + timedelta(hours=1))]
    with connection.cursor() as cursor:
        for hour in range(1, MINUTES // 60):
            cursor.execute(copy, [hour, *first_hour])
        cursor.execute("ANALYZE")
    setup_s = time.perf_counter() - began
    minute_rows = MetricSample.objects.filter(resolution="m").count()

    began = time.perf_counter()
    written = rollup(now=DAY + timedelta(days=1) + LATE + timedelta(minutes=1))
    rollup_s = time.perf_counter() - began
    day_rows = MetricSample.objects.filter(resolution="d")
    result = {
        "setup_s": setup_s,
        "minute_rows": minute_rows,
        "rollup_s": rollup_s,
        "written": written,
        "day_rows": day_rows.count(),
        "day_events": sum(day_rows.values_list("count", flat=True)),
        "database": connection.vendor,
    }
    MetricSample.objects.all().delete()
    return result


def run(quick: bool) -> dict:
    from _support import configure_django, percentile

    mode = configure_django(
        ROOT / "var" / "bench-monitoring",
        PG_DATABASE,
        {"CELERY_BROKER_URL": "memory://", "METRICS_FLUSH_SECONDS": "0"},
    )
    (ROOT / "var" / "bench-monitoring" / "staticfiles").mkdir(parents=True, exist_ok=True)  # WhiteNoise's root
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    emits = sorted(bench_emit(QUICK_EMITS if quick else EMITS))
    middleware = bench_middleware(QUICK_PAIRS if quick else PAIRS)
    rollups = bench_rollup()
    return {
        "mode": mode,
        "emit_calls": len(emits),
        "emit_p50_us": percentile(emits, 50),
        "emit_p99_us": percentile(emits, 99),
        "pairs": len(middleware["diffs"]),
        "overhead_p50_ms": percentile(sorted(middleware["diffs"]), 50),
        "plain_p50_ms": percentile(sorted(middleware["plain"]), 50),
        "metered_p50_ms": percentile(sorted(middleware["metered"]), 50),
        **{f"rollup_{key}": value for key, value in rollups.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer emit calls and request pairs (same rollup day)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    r = run(args.quick)
    print(f"bench/monitoring.py on {r['rollup_database']} ({r['mode']})")
    print(f"  emit() per call, {r['emit_calls']:,} calls        p50 {r['emit_p50_us']:7.2f} us   "
          f"p99 {r['emit_p99_us']:7.2f} us   (target p50 <= {MAX_EMIT_P50_US:g} us)")  # fmt: skip
    print(f"  bare view, full stack, {r['pairs']:,} pairs     without {r['plain_p50_ms']:.3f} ms   "
          f"with {r['metered_p50_ms']:.3f} ms (p50)")  # fmt: skip
    print(f"  middleware added per request (paired)  p50 {r['overhead_p50_ms']:7.4f} ms   "
          f"(target <= {MAX_MIDDLEWARE_P50_MS:g} ms)")  # fmt: skip
    print(f"  one day x {ROUTES} routes: {r['rollup_minute_rows']:,} minute rows written "
          f"in {r['rollup_setup_s']:.1f} s (setup, not timed)")  # fmt: skip
    print(f"  rollup(): {r['rollup_written']['hour']:,} hour + {r['rollup_written']['day']:,} day rows "
          f"in {r['rollup_rollup_s']:.2f} s   (target <= {MAX_ROLLUP_S:g} s)")  # fmt: skip
    failures = []
    if r["emit_p50_us"] > MAX_EMIT_P50_US:
        failures.append(f"emit() p50 {r['emit_p50_us']:.2f} us > {MAX_EMIT_P50_US:g} us")
    if r["overhead_p50_ms"] > MAX_MIDDLEWARE_P50_MS:
        failures.append(f"middleware overhead p50 {r['overhead_p50_ms']:.4f} ms > {MAX_MIDDLEWARE_P50_MS:g} ms")
    if r["rollup_rollup_s"] > MAX_ROLLUP_S:
        failures.append(f"rollup of one day {r['rollup_rollup_s']:.2f} s > {MAX_ROLLUP_S:g} s")
    expected = {"hour": ROUTES * 24, "day": ROUTES}
    if {k: r["rollup_written"][k] for k in expected} != expected or r["rollup_day_events"] != ROUTES * MINUTES * 60:
        failures.append(f"rollup wrote {r['rollup_written']} and counted {r['rollup_day_events']:,} events in days")
    for failure in failures:
        print(f"MISSED  {failure}")
    if not failures:
        print("pass    monitoring targets met")
    out = {
        "emit_p50_us": round(r["emit_p50_us"], 2),
        "emit_p99_us": round(r["emit_p99_us"], 2),
        "middleware_overhead_p50_ms": round(r["overhead_p50_ms"], 4),
        "rollup_day_s": round(r["rollup_rollup_s"], 3),
        "_meta": {
            "mode": r["mode"],
            "database": r["rollup_database"],
            "quick": args.quick,
            "emit_calls": r["emit_calls"],
            "pairs": r["pairs"],
            "bare_view_p50_ms": round(r["plain_p50_ms"], 4),
            "minute_rows": r["rollup_minute_rows"],
            "seconds": round(time.monotonic() - began, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        },
    }
    print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
