"""Metric rollups: minute rows summed into hours and days, retention, and reading a window back.

The database sink writes minute rows (several per series and minute when several processes
flush). ``rollup()`` (beat, every few minutes) sums each closed hour's minute rows into one hour
row and each closed day's hour rows into one day row, with one ``INSERT … SELECT … GROUP BY`` per
level (no rows through Python), then deletes rows older than METRICS_RETENTION_DAYS. It remembers
how far it got by the last rolled-up row of each level and goes on from the next period; a
period's rows are replaced, never added twice, so running it again changes nothing.

``read()`` answers a window's totals per series from the coarsest rows that cover it exactly:
days, then hours, then minutes for the ragged ends. ``quantile()`` estimates a percentile from a
histogram the way Prometheus' ``histogram_quantile`` does (linear within the bucket).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Q, Sum
from django.utils import timezone

from apps.core.metrics import BOUNDS_MS, BUCKETS
from apps.monitoring.models import MetricSample

R = MetricSample.Resolution
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_LEVELS = ((R.MINUTE, R.HOUR, HOUR), (R.HOUR, R.DAY, DAY))
# A period is rolled up once this long has passed since its end: processes flush every
# METRICS_FLUSH_SECONDS, so a minute's last rows arrive a little after it.
LATE = timedelta(minutes=2)
ROLLUP_LOCK = 0x6875_6E74_726F_6C6C  # "huntroll": the advisory lock key of rollup()


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp((moment.timestamp() // seconds) * seconds, UTC)


def rollup(now: datetime | None = None) -> dict[str, int]:
    """Roll closed hours and days up and apply retention; answers rows written and deleted.

    One run at a time: on PostgreSQL a transaction-scoped advisory lock is taken before reading
    how far the last run got, so two runs (a backlog of beat's entries drained by two workers)
    cannot both insert the same hours; SQLite has one writer, and the second run's first write
    fails on the first one's snapshot instead. The hour and day rows are unique per series and
    start besides (``metric_rollup_unique``)."""
    now = now or timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        return _rollup(now)


def _rollup(now: datetime) -> dict[str, int]:
    written = {R.HOUR.label.lower(): 0, R.DAY.label.lower(): 0}
    for source, target, step in _LEVELS:
        end = _floor(now - LATE, step)  # periods before this one are closed
        first = MetricSample.objects.filter(resolution=source).aggregate(first=Min("start"))["first"]
        if first is None:
            continue
        done = MetricSample.objects.filter(resolution=target).aggregate(last=Max("start"))["last"]
        start = _floor(first, step) if done is None else max(_floor(first, step), done + step)
        if start >= end:
            continue
        written[target.label.lower()] += _roll(source, target, step, start, end)
    deleted = _retention(now)
    return {**written, "deleted": deleted}


def _roll(source: str, target: str, step: timedelta, start: datetime, end: datetime) -> int:
    """Replace the target rows of [start, end) by the sums of the source rows, in one statement."""
    table = connection.ops.quote_name(MetricSample._meta.db_table)
    buckets = ", ".join(f"b{i:02d}" for i in range(BUCKETS))
    sums = ", ".join(f"SUM(b{i:02d})" for i in range(BUCKETS))
    seconds = int(step.total_seconds())
    if connection.vendor == "postgresql":
        period = f"to_timestamp(floor(extract(epoch from start) / {seconds}) * {seconds})"
        dims = "(array_agg(dimensions::text))[1]::jsonb"
    else:
        # %% is a literal % once Django has turned the parameters' %s into SQLite's ?.
        epoch = "CAST(strftime('%%s', start) AS INTEGER)"
        period = f"strftime('%%Y-%%m-%%d %%H:%%M:%%S', ({epoch} / {seconds}) * {seconds}, 'unixepoch')"
        dims = "MIN(dimensions)"
    sql = (
        f"INSERT INTO {table} (name, unit, dims_key, dimensions, resolution, start, count, sum, min, max, {buckets}) "  # noqa: S608 (names from the model)
        f"SELECT name, MIN(unit), dims_key, {dims}, %s, {period}, SUM(count), SUM(sum), MIN(min), MAX(max), {sums} "
        f"FROM {table} WHERE resolution = %s AND start >= %s AND start < %s "
        f"GROUP BY name, dims_key, {period}"
    )
    with transaction.atomic():
        MetricSample.objects.filter(resolution=target, start__gte=start, start__lt=end).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [target, source, connection.ops.adapt_datetimefield_value(start),
                 connection.ops.adapt_datetimefield_value(end)],
            )  # fmt: skip
            return cursor.rowcount


def _retention(now: datetime) -> int:
    keep = settings.METRICS_RETENTION_DAYS
    deleted = 0
    for resolution, name in ((R.MINUTE, "minute"), (R.HOUR, "hour"), (R.DAY, "day")):
        cutoff = now - timedelta(days=float(keep.get(name, 3650)))
        deleted += MetricSample.objects.filter(resolution=resolution, start__lt=cutoff).delete()[0]
    return deleted


# -- reading ---------------------------------------------------------------------------------------
@dataclass
class Totals:
    count: int = 0
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, row: dict) -> None:
        self.count += row["count"] or 0
        if "sum" not in row:  # a counts-only read
            return
        self.sum += row["sum"] or 0.0
        if row["min"] is not None:
            self.min = row["min"] if self.min is None else min(self.min, row["min"])
        if row["max"] is not None:
            self.max = row["max"] if self.max is None else max(self.max, row["max"])
        for i in range(BUCKETS):
            self.buckets[i] += row[f"b{i:02d}"] or 0

    def merge(self, other: Totals) -> Totals:
        """Fold another series' totals into these (a group of series summed); answers self."""
        self.add({"count": other.count, "sum": other.sum, "min": other.min, "max": other.max,
                  **dict(zip(MetricSample.BUCKET_FIELDS, other.buckets, strict=True))})  # fmt: skip
        return self

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        return quantile(self.buckets, q)


def quantile(buckets: list[int], q: float) -> float | None:
    """The q-quantile (0 to 1) of a histogram over BOUNDS_MS, in milliseconds; None when empty.
    Linear within the bucket it falls in; the open last bucket answers its lower bound."""
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index == len(BOUNDS_MS):
                return float(BOUNDS_MS[-1])
            lower = 0.0 if index == 0 else float(BOUNDS_MS[index - 1])
            upper = float(BOUNDS_MS[index])
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return float(BOUNDS_MS[-1])


def _spans(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) cut into the coarsest resolutions that tile it: days, hours, minutes."""
    spans: list[tuple[str, datetime, datetime]] = []

    def cut(lo: datetime, hi: datetime, levels: list[tuple[str, timedelta]]) -> None:
        if lo >= hi:
            return
        if not levels:
            spans.append((R.MINUTE, lo, hi))
            return
        resolution, step = levels[0]
        inner_lo = _floor(lo, step) if _floor(lo, step) == lo else _floor(lo, step) + step
        inner_hi = _floor(hi, step)
        if inner_lo >= inner_hi:
            cut(lo, hi, levels[1:])
            return
        cut(lo, inner_lo, levels[1:])
        spans.append((resolution, inner_lo, inner_hi))
        cut(inner_hi, hi, levels[1:])

    cut(start, end, [(R.DAY, DAY), (R.HOUR, HOUR)])
    return spans


def read(
    name: str,
    start: datetime,
    end: datetime,
    *,
    group_by: Iterable[str] = (),
    where: dict[str, str] | None = None,
    rolled_up_until: datetime | None = None,
    counts_only: bool = False,
) -> dict[tuple, Totals]:
    """Totals of metric ``name`` over [start, end), per value of the ``group_by`` dimensions
    (a tuple key, ``()`` for everything), keeping only series whose dimensions match ``where``.
    With ``counts_only`` only the counts are summed (the SLO evaluation of counted indicators,
    every 30 s): a quarter of the work of the sums, extremes and 14 histogram columns.

    Hours and days are read from rolled-up rows only where the rollup has run
    (``rolled_up_until``, by default the end of the last hour rolled up); the rest from minutes."""
    group_by = tuple(group_by)
    if rolled_up_until is None:
        rolled_up_until = last_rolled_up()
    filters = Q()
    for resolution, lo, hi in _spans(start, min(end, rolled_up_until)) if rolled_up_until > start else []:
        filters |= Q(resolution=resolution, start__gte=lo, start__lt=hi)
    if end > rolled_up_until:
        filters |= Q(resolution=R.MINUTE, start__gte=max(start, rolled_up_until), start__lt=end)
    totals: dict[tuple, Totals] = {}
    if not filters:
        return totals
    aggregates = {"count": Sum("count")}
    if not counts_only:
        aggregates.update(sum=Sum("sum"), min=Min("min"), max=Max("max"))
        aggregates.update({f: Sum(f) for f in MetricSample.BUCKET_FIELDS})
    rows = MetricSample.objects.filter(filters, name=name).values_list("dims_key").annotate(**aggregates)
    names = ["dims_key", *aggregates]
    rows = (dict(zip(names, row, strict=True)) for row in rows)
    for row in rows:
        dims = dict(part.split("=", 1) for part in row["dims_key"].split("|") if part)
        if where and any(dims.get(k) != v for k, v in where.items()):
            continue
        key = tuple(dims.get(k, "") for k in group_by)
        totals.setdefault(key, Totals()).add(row)
    return totals


def last_rolled_up() -> datetime:
    """The end of the last hour that has hour rows (the epoch when none has)."""
    last = MetricSample.objects.filter(resolution=R.HOUR).aggregate(last=Max("start"))["last"]
    return last + HOUR if last else datetime.fromtimestamp(0, UTC)


def now_minute() -> int:
    return int(time.time() // 60) * 60
