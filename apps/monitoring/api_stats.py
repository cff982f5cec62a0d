"""The API, websocket and task tables of the monitoring overview, read from the metric rollups.

Each table is one ``rollups.read()`` (a fixed handful of queries whatever the number of routes,
tasks or queues: the series are summed by the database and merged here), so the overview's query
count does not grow with the product. Percentiles come from the merged histograms
(``Totals.quantile``), exact to within a bucket of apps.core.metrics.BOUNDS_MS; a percentile in the
open last bucket (beyond 10 s) is shown as "> 10 s", not as a made-up number.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from apps.core.metrics import BOUNDS_MS
from apps.monitoring.models import MetricSample
from apps.monitoring.rollups import Totals, read

OPEN_BUCKET_MS = float(BOUNDS_MS[-1])


def format_ms(value: float | None) -> str:
    """A duration for a table cell: "—" for none, "> 10 s" in the open bucket, else ms or s."""
    if value is None:
        return "—"
    if value >= OPEN_BUCKET_MS:
        return f"> {OPEN_BUCKET_MS / 1000:g} s"
    if value < 10:
        return f"{value:.1f} ms"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.2f} s"


def _merge(totals: list[Totals]) -> Totals:
    merged = Totals()
    for part in totals:
        merged.merge(part)
    return merged


def _split_last(series: dict[tuple, Totals]) -> dict[tuple, tuple[Totals, dict[str, int]]]:
    """A read grouped by (a, b, c) as {(a, b): (the totals over every c, the count per c)}: a
    table's row with its latency over all outcomes and the number of each outcome."""
    rows: dict[tuple, tuple[Totals, dict[str, int]]] = {}
    for (*key, last), totals in series.items():
        merged, counts = rows.setdefault(tuple(key), (Totals(), {}))
        merged.merge(totals)
        counts[last] = counts.get(last, 0) + totals.count
    return rows


# -- HTTP routes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteRow:
    route: str
    method: str
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    server_errors: int  # 5xx answers
    client_errors: int  # 4xx answers

    @property
    def error_rate(self) -> float:
        """The share of answers that were 5xx (0 to 1): what the availability SLO counts."""
        return self.server_errors / self.requests if self.requests else 0.0

    @property
    def error_percent(self) -> float:
        return self.error_rate * 100

    @property
    def p50_text(self) -> str:
        return format_ms(self.p50_ms)

    @property
    def p95_text(self) -> str:
        return format_ms(self.p95_ms)


def route_table(start: datetime, end: datetime, *, limit: int | None = None) -> list[RouteRow]:
    """``http.request`` over [start, end) per route pattern and method, busiest first."""
    series = read("http.request", start, end, group_by=("route", "method", "status"))
    rows = []
    for (route, method), (merged, statuses) in _split_last(series).items():
        rows.append(
            RouteRow(
                route=route,
                method=method,
                requests=merged.count,
                p50_ms=merged.quantile(0.5),
                p95_ms=merged.quantile(0.95),
                server_errors=statuses.get("5xx", 0),
                client_errors=statuses.get("4xx", 0),
            )
        )
    rows.sort(key=lambda row: (-row.requests, row.route, row.method))
    return rows[:limit] if limit is not None else rows


# -- websocket sessions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WebsocketRow:
    route: str
    opens: int
    sessions: int  # accepted sessions that ended in the window
    rejected: int  # handshakes refused before an accept
    mean_s: float | None
    max_s: float | None
    p50_s: float | None  # None also when the median is beyond the histogram's last bound
    close_codes: list[tuple[str, int]] = field(default_factory=list)  # most frequent first


def ws_table(start: datetime, end: datetime) -> list[WebsocketRow]:
    """``ws.open``, ``ws.session`` and ``ws.rejected`` over [start, end) per websocket route."""
    opens = read("ws.open", start, end, group_by=("route",))
    sessions = read("ws.session", start, end, group_by=("route", "close_code"))
    rejected = read("ws.rejected", start, end, group_by=("route",))
    by_route: dict[str, list[tuple[str, Totals]]] = defaultdict(list)
    for (route, code), totals in sessions.items():
        by_route[route].append((code, totals))
    routes = {key[0] for key in opens} | set(by_route) | {key[0] for key in rejected}
    rows = []
    for route in routes:
        closed = _merge([totals for _, totals in by_route.get(route, [])])
        median = closed.quantile(0.5)
        codes = sorted(((code, totals.count) for code, totals in by_route.get(route, [])), key=lambda c: (-c[1], c[0]))
        rows.append(
            WebsocketRow(
                route=route,
                opens=opens[(route,)].count if (route,) in opens else 0,
                sessions=closed.count,
                rejected=rejected[(route,)].count if (route,) in rejected else 0,
                mean_s=closed.mean,
                max_s=closed.max,
                p50_s=median / 1000 if median is not None and median < OPEN_BUCKET_MS else None,
                close_codes=codes,
            )
        )
    rows.sort(key=lambda row: (-(row.opens + row.rejected), row.route))
    return rows


# -- Celery tasks ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskRow:
    task: str
    queue: str
    runs: int
    failures: int
    retries: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def failure_rate(self) -> float:
        return self.failures / self.runs if self.runs else 0.0

    @property
    def p50_text(self) -> str:
        return format_ms(self.p50_ms)

    @property
    def p95_text(self) -> str:
        return format_ms(self.p95_ms)


def task_table(start: datetime, end: datetime, *, limit: int | None = None) -> list[TaskRow]:
    """``celery.task`` over [start, end) per task and queue, most runs first. Durations are over
    every run (successes, failures and retries alike)."""
    series = read("celery.task", start, end, group_by=("task", "queue", "outcome"))
    rows = []
    for (task, queue), (merged, outcomes) in _split_last(series).items():
        rows.append(
            TaskRow(
                task=task,
                queue=queue,
                runs=merged.count,
                failures=outcomes.get("failure", 0),
                retries=outcomes.get("retry", 0),
                p50_ms=merged.quantile(0.5),
                p95_ms=merged.quantile(0.95),
            )
        )
    rows.sort(key=lambda row: (-row.runs, row.task, row.queue))
    return rows[:limit] if limit is not None else rows


# -- queue depth -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueDepth:
    queue: str
    depth: int  # the largest sample of the latest minute sampled
    mean: float  # the mean of that minute's samples
    at: datetime  # the start of that minute


def queue_depths(*, now: datetime | None = None, within: timedelta = timedelta(minutes=10)) -> list[QueueDepth]:
    """The latest ``celery.queue_depth`` sample per queue (the beat task samples every 30 s),
    from the minute rows of the last ``within``; a queue with no sample since is left out. One
    query."""
    now = now or timezone.now()
    rows = (
        MetricSample.objects.filter(
            name="celery.queue_depth",
            resolution=MetricSample.Resolution.MINUTE,
            start__gte=now - within,
            start__lte=now,
        )
        .order_by("-start")
        .values_list("dims_key", "start", "count", "sum", "max")
    )
    latest: dict[str, list] = {}
    for dims_key, start, count, total, largest in rows:
        queue = dict(part.split("=", 1) for part in dims_key.split("|") if part).get("queue", "")
        seen = latest.get(queue)
        if seen is None:
            latest[queue] = [start, count, total, largest]
        elif seen[0] == start:  # another process's rows for the same minute
            seen[1] += count
            seen[2] += total
            seen[3] = max(seen[3], largest)
    return [
        QueueDepth(queue=queue, depth=int(largest), mean=total / count if count else 0.0, at=start)
        for queue, (start, count, total, largest) in sorted(latest.items())
    ]


def api_overview(*, now: datetime | None = None, window: timedelta = timedelta(hours=1), limit: int = 50) -> dict:
    """The context of templates/monitoring/partials/api.html: the tables over the last ``window``."""
    now = now or timezone.now()
    start = now - window
    return {
        "api_window_minutes": round(window.total_seconds() / 60),
        "routes": route_table(start, now, limit=limit),
        "websockets": ws_table(start, now),
        "tasks": task_table(start, now, limit=limit),
        "queues": queue_depths(now=now),
    }
