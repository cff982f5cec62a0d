"""Capacity advice: how many web (daphne) and Celery worker processes the observed load needs.

The arithmetic is the one from queueing theory that right-sizing on a container platform rests on
(docs/capacity.md explains it with examples):

- **Offered load** (Little's law): arrival rate * mean service time = the number of processes busy
  on average. 1,800 tasks an hour taking 3.9 s each keep 1,800 * 3.9 / 3,600 = 1.95 processes busy.
  It is read straight from the recorded busy time: the sum of ``celery.task`` durations of a queue
  (or of ``http.request`` latencies for the web) divided by the window's length.
- **Sizing load**: the larger of the busiest complete hour of the last CAPACITY_LOOKBACK_DAYS and
  the last 60 complete minutes, plus, when a queue's depth grew over those minutes, the work that
  arrived and was not served (growth rate * mean task time): completed tasks alone understate
  the load of a queue that is falling behind.
- **Recommendation**: ceil(sizing load / CAPACITY_TARGET_UTILISATION), at least
  CAPACITY_MIN_WORKER_PROCESSES per queue and CAPACITY_MIN_WEB_PROCESSES for the web. Running at
  a target utilisation of about 65 % instead of 100 % is the headroom that keeps waiting times
  short when arrivals bunch up within the hour (queueing delay grows without bound as utilisation
  approaches 1).
- **Utilisation** of the current processes: busy time / (processes * window), with the current
  counts from settings (CAPACITY_WEB_PROCESSES; CAPACITY_WORKER_PROCESSES, either one pool that
  serves every queue, as the Procfile runs it, or a count per queue).
- **Monthly cost**: processes * (vCPU * price per vCPU-hour + GB * price per GB-hour) * 730 hours,
  at the configured prices (AWS Fargate's public us-east-1 prices by default).

Every recommendation carries its reasons as plain sentences with the numbers used.

Reads: three queries whatever the amount of data (the end of the rolled-up hours, per-hour totals
over the look-back, per-minute totals over the last hour); the database does the grouping.

What this deliberately does not do: change anything (it advises; an operator applies the counts),
model CPU or memory saturation inside a process (a web request's latency counts as busy time
even while it waits on the database, which makes the web advice conservative), or forecast
growth beyond the observed week.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from apps.monitoring import rollups
from apps.monitoring.models import MetricSample

TASK = "celery.task"
DEPTH = "celery.queue_depth"
REQUEST = "http.request"
NAMES = (TASK, DEPTH, REQUEST)

HOURS_PER_MONTH = Decimal(730)  # AWS prices a month as 730 hours (365 * 24 / 12)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
# A queue counts as growing when its fitted depth rose by at least this many messages over the
# last hour: smaller wobbles are the ordinary jitter of a gauge sampled between tasks.
GROWTH_MIN_MESSAGES = 10.0
# Fewer per-minute depth samples than this cannot show a trend.
GROWTH_MIN_SAMPLES = 5
# Less data than this and the busiest hour is probably not the week's peak: said in the advice.
FULL_COVERAGE_HOURS = 24
CENT = Decimal("0.01")
TIMES = "\u00d7"  # the multiplication sign in the sentences


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def signed_usd(value: Decimal | None) -> str:
    """A monthly difference as people write it: +$18.02, \u2212$18.02, $0.00 (empty for none)."""
    if value is None:
        return ""
    if value > 0:
        return f"+${value:,.2f}"
    if value < 0:
        return f"\u2212${-value:,.2f}"
    return "$0.00"


# -- the advice ------------------------------------------------------------------------------------
@dataclass
class RoleAdvice:
    """The advice for one kind of process: the web, one queue's workers, or the shared pool."""

    role: str  # "web" | "worker" | "worker_pool"
    label: str
    queue: str | None = None
    current: int | None = None  # None: the queue is served by the shared pool
    recommended: int | None = None  # None: not enough data to say
    utilisation: float | None = None  # the last hour: busy time / (current * window)
    peak_utilisation: float | None = None  # the busiest hour, same formula
    offered_load: float | None = None  # busy processes the recommendation is sized for
    queue_growing: bool = False
    backlog_load: float = 0.0  # busy processes the queue's growth adds (arrived, not served)
    reasons: list[str] = field(default_factory=list)
    current_monthly_usd: Decimal | None = None
    recommended_monthly_usd: Decimal | None = None

    @property
    def difference_monthly_usd(self) -> Decimal | None:
        if self.current_monthly_usd is None or self.recommended_monthly_usd is None:
            return None
        return self.recommended_monthly_usd - self.current_monthly_usd

    @property
    def difference_display(self) -> str:
        return signed_usd(self.difference_monthly_usd)

    @property
    def delta(self) -> int | None:
        """Processes to add (positive) or remove (negative)."""
        if self.current is None or self.recommended is None:
            return None
        return self.recommended - self.current

    @property
    def change(self) -> str:
        """One of add, remove or keep; empty when there is nothing to compare."""
        if self.current is None or self.recommended is None:
            return ""
        if self.recommended > self.current:
            return "add"
        if self.recommended < self.current:
            return "remove"
        return "keep"

    @property
    def under_provisioned(self) -> bool:
        return self.queue_growing or self.change == "add"


@dataclass
class CapacityAdvice:
    generated_at: datetime
    lookback_days: int
    target_utilisation: float
    roles: list[RoleAdvice]  # the web first, then one row per queue
    worker_pool: RoleAdvice | None  # the shared pool's row when one pool serves every queue
    enough_data: bool
    missing: list[str]
    notes: list[str]
    current_monthly_usd: Decimal
    recommended_monthly_usd: Decimal | None  # None while a role has no recommendation
    vcpu_hour_usd: Decimal
    gb_hour_usd: Decimal

    @property
    def difference_monthly_usd(self) -> Decimal | None:
        if self.recommended_monthly_usd is None:
            return None
        return self.recommended_monthly_usd - self.current_monthly_usd

    @property
    def difference_display(self) -> str:
        return signed_usd(self.difference_monthly_usd)

    @property
    def has_recommendations(self) -> bool:
        return any(row.recommended is not None for row in self.roles)

    @property
    def rows(self) -> list[RoleAdvice]:
        """The table's rows: the web, the queues, then the shared pool they add up to."""
        return self.roles + ([self.worker_pool] if self.worker_pool else [])


# -- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Config:
    target: float
    lookback_days: int
    min_web: int
    min_worker: int
    web_processes: int
    worker_pool: int | None  # one pool for every queue …
    worker_processes: dict[str, int]  # … or processes per queue
    web_process_usd: Decimal  # per process and month
    worker_process_usd: Decimal


def process_monthly_usd(vcpu: Decimal, memory_gb: Decimal) -> Decimal:
    """What one process of this size costs a month at the configured prices."""
    hourly = Decimal(vcpu) * Decimal(settings.CAPACITY_VCPU_HOUR_USD) + Decimal(memory_gb) * Decimal(
        settings.CAPACITY_GB_HOUR_USD
    )
    return hourly * HOURS_PER_MONTH


def _config() -> _Config:
    workers: Any = settings.CAPACITY_WORKER_PROCESSES
    if isinstance(workers, bool) or not isinstance(workers, int | dict):
        raise ImproperlyConfigured("CAPACITY_WORKER_PROCESSES must be a number or a mapping of queue to number.")
    return _Config(
        target=float(settings.CAPACITY_TARGET_UTILISATION),
        lookback_days=int(settings.CAPACITY_LOOKBACK_DAYS),
        min_web=int(settings.CAPACITY_MIN_WEB_PROCESSES),
        min_worker=int(settings.CAPACITY_MIN_WORKER_PROCESSES),
        web_processes=int(settings.CAPACITY_WEB_PROCESSES),
        worker_pool=workers if isinstance(workers, int) else None,
        worker_processes=dict(workers) if isinstance(workers, dict) else {},
        web_process_usd=process_monthly_usd(settings.CAPACITY_WEB_VCPU, settings.CAPACITY_WEB_MEMORY_GB),
        worker_process_usd=process_monthly_usd(settings.CAPACITY_WORKER_VCPU, settings.CAPACITY_WORKER_MEMORY_GB),
    )


def declared_queues() -> list[str]:
    """The Celery queues the project declares (huntaze/celery.py), in its order."""
    from celery import current_app

    queues = [queue.name for queue in current_app.conf.task_queues or ()]
    return queues or [settings.CELERY_TASK_DEFAULT_QUEUE]


# -- reading the metrics ---------------------------------------------------------------------------
@dataclass
class _Series:
    """Totals of one metric (for one queue, or the whole web) in one period."""

    count: int = 0
    sum: float = 0.0
    max: float = 0.0

    def add(self, row: dict) -> None:
        self.count += row["count"] or 0
        self.sum += row["sum"] or 0.0
        self.max = max(self.max, row["max"] or 0.0)


@dataclass
class _Observed:
    hours: list[datetime]  # the complete hours of the look-back, oldest first
    # (metric, queue or "") -> hour -> totals
    hourly: dict[tuple[str, str], dict[datetime, _Series]]
    # (metric, queue or "") -> minute -> totals, for the last 60 complete minutes
    minutely: dict[tuple[str, str], dict[datetime, _Series]]
    first_hour: datetime | None


def _queue_of(dims_key: str) -> str:
    for part in dims_key.split("|"):
        key, _, value = part.partition("=")
        if key == "queue":
            return value
    return ""


def _observe(hours_from: datetime, hours_to: datetime, minutes_from: datetime, minutes_to: datetime) -> _Observed:
    """Per-hour totals over [hours_from, hours_to) and per-minute totals over
    [minutes_from, minutes_to) of the three metrics, grouped in the database (three queries)."""
    rolled = rollups.last_rolled_up()
    R = MetricSample.Resolution
    # Hour rows where the rollup has run, minute rows truncated to their hour after that point;
    # the two never overlap, so nothing is counted twice.
    span = Q(resolution=R.HOUR, start__gte=hours_from, start__lt=min(hours_to, rolled)) | Q(
        resolution=R.MINUTE, start__gte=max(hours_from, rolled), start__lt=hours_to
    )
    hourly_rows = (
        MetricSample.objects.filter(span, name__in=NAMES)
        .annotate(hour=TruncHour("start", tzinfo=UTC))
        .values("name", "dims_key", "hour")
        .annotate(count=Sum("count"), sum=Sum("sum"), max=Max("max"))
        .order_by()
    )
    hourly: dict[tuple[str, str], dict[datetime, _Series]] = defaultdict(lambda: defaultdict(_Series))
    first_hour = None
    for row in hourly_rows:
        hour = row["hour"].astimezone(UTC)
        hourly[(row["name"], _queue_of(row["dims_key"]))][hour].add(row)
        first_hour = hour if first_hour is None else min(first_hour, hour)
    minute_rows = (
        MetricSample.objects.filter(name__in=NAMES, resolution=R.MINUTE, start__gte=minutes_from, start__lt=minutes_to)
        .values("name", "dims_key", "start")
        .annotate(count=Sum("count"), sum=Sum("sum"), max=Max("max"))
        .order_by()
    )
    minutely: dict[tuple[str, str], dict[datetime, _Series]] = defaultdict(lambda: defaultdict(_Series))
    for row in minute_rows:
        minute = row["start"].astimezone(UTC)
        minutely[(row["name"], _queue_of(row["dims_key"]))][minute].add(row)
        first_hour = minute.replace(minute=0) if first_hour is None else min(first_hour, minute.replace(minute=0))
    hours = []
    hour = hours_from
    while hour < hours_to:
        hours.append(hour)
        hour += HOUR
    return _Observed(hours=hours, hourly=hourly, minutely=minutely, first_hour=first_hour)


# -- the arithmetic --------------------------------------------------------------------------------
def processes_needed(offered_load: float, target: float, minimum: int) -> int:
    """ceil(offered load / target utilisation), at least ``minimum``. Rounded to 6 decimals first
    so that 1.95 / 0.65 is 3, not 3.0000000000000004 → 4."""
    return max(minimum, math.ceil(round(offered_load / target, 6)))


@dataclass
class _Trend:
    growing: bool
    per_minute: float  # fitted growth, messages per minute
    rise: float  # fitted growth over the observed minutes
    first: float
    last: float
    minutes: int


def depth_trend(depths: dict[datetime, _Series]) -> _Trend | None:
    """The least-squares trend of a queue's per-minute mean depth; None with too few samples."""
    points = sorted((minute, series.sum / series.count) for minute, series in depths.items() if series.count)
    if len(points) < GROWTH_MIN_SAMPLES:
        return None
    start = points[0][0]
    xs = [(minute - start).total_seconds() / 60 for minute, _ in points]
    ys = [depth for _, depth in points]
    slope = statistics.linear_regression(xs, ys).slope
    rise = slope * (xs[-1] - xs[0])
    return _Trend(
        growing=slope > 0 and rise >= GROWTH_MIN_MESSAGES and ys[-1] > ys[0],
        per_minute=slope,
        rise=rise,
        first=ys[0],
        last=ys[-1],
        minutes=len(points),
    )


def _busiest(hourly: dict[datetime, _Series]) -> tuple[datetime, _Series] | None:
    """The hour with the most busy time (the latest of equals); None without any."""
    best = None
    for hour, series in sorted(hourly.items()):
        if series.count and (best is None or series.sum >= best[1].sum):
            best = (hour, series)
    return best


def _total(series: dict[datetime, _Series]) -> _Series:
    total = _Series()
    for item in series.values():
        total.count += item.count
        total.sum += item.sum
        total.max = max(total.max, item.max)
    return total


# -- wording ---------------------------------------------------------------------------------------
def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _count(value: float) -> str:
    return f"{round(value):,}"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:,.2f} s" if ms >= 100 else f"{ms:,.0f} ms"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _hour(moment: datetime) -> str:
    return f"{moment:%a %d %b %H:00} UTC"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"


# -- one role --------------------------------------------------------------------------------------
def _advise(
    *,
    advice: RoleAdvice,
    work_hourly: dict[datetime, _Series],
    work_last_hour: _Series,
    depth_minutely: dict[datetime, _Series] | None,
    what: str,  # "tasks ran on default" / "requests were served"
    target: float,
    minimum: int,
    minimum_reason: str,
    process_usd: Decimal,
) -> None:
    """Fill ``advice`` from one role's busy time: the busiest hour, the last hour, the queue's
    trend. ``advice.current`` is set already (None inside a shared pool)."""
    window_ms = HOUR.total_seconds() * 1000
    reasons = advice.reasons
    busiest = _busiest(work_hourly)
    peak_load = busiest[1].sum / window_ms if busiest else 0.0
    last_load = work_last_hour.sum / window_ms
    lookback_total = _total(work_hourly)
    mean_ms = (
        work_last_hour.sum / work_last_hour.count
        if work_last_hour.count
        else (lookback_total.sum / lookback_total.count if lookback_total.count else None)
    )
    current = advice.current

    if busiest:
        hour, series = busiest
        reasons.append(
            f"In the busiest hour ({_hour(hour)}), {_count(series.count)} {what}, "
            f"{_seconds(series.sum / series.count)} each on average: {_num(series.count / 3600, 3)} per second {TIMES} "
            f"{_seconds(series.sum / series.count)} = {_num(peak_load)} processes busy on average."
        )
    if work_last_hour.count:
        reasons.append(
            f"In the last hour, {_count(work_last_hour.count)} {what}, keeping {_num(last_load)} processes busy."
        )
    elif busiest:
        reasons.append("Nothing was recorded in the last hour.")
    if current:
        advice.utilisation = last_load / current
        advice.peak_utilisation = peak_load / current
        reasons.append(
            f"The {_plural(current, 'process')} running now were busy {_pct(advice.utilisation)} of the last hour"
            + (f" and {_pct(advice.peak_utilisation)} of the busiest hour." if busiest else ".")
        )
    elif current == 0:
        reasons.append("No process consumes this queue now: its tasks wait until one does.")

    extra_load = 0.0
    trend = depth_trend(depth_minutely) if depth_minutely else None
    if trend and trend.growing:
        advice.queue_growing = True
        sentence = (
            f"The queue grew from {_count(trend.first)} to {_count(trend.last)} waiting messages over the last "
            f"{trend.minutes} minutes ({_num(trend.per_minute, 1)} per minute): tasks arrive faster than they "
            f"finish, a sign of too few processes."
        )
        if mean_ms is not None:
            extra_load = trend.per_minute / 60 * mean_ms / 1000
            sentence += (
                f" Serving that too takes {_num(trend.per_minute / 60, 3)} per second {TIMES} {_seconds(mean_ms)} = "
                f"{_num(extra_load)} more busy processes."
            )
        reasons.append(sentence)
    elif trend and trend.last >= 1 and not work_last_hour.count:
        advice.queue_growing = True
        reasons.append(
            f"{_count(trend.last)} messages are waiting and no task finished in the last hour: "
            "check that a worker consumes this queue."
        )

    sizing = max(peak_load, last_load + extra_load)
    advice.offered_load = sizing
    advice.backlog_load = extra_load
    recommended = processes_needed(sizing, target, minimum)
    if sizing > 0:
        reasons.append(
            f"Sized for {_num(sizing)} busy processes at the {_pct(target)} target utilisation "
            f"(the headroom for bursts within the hour): {_num(sizing)} / {_num(target)} = "
            f"{_num(sizing / target)}, rounded up to {math.ceil(round(sizing / target, 6))}."
        )
    if recommended == minimum and math.ceil(round(sizing / target, 6)) < minimum:
        reasons.append(minimum_reason)
    if advice.queue_growing and current is not None and recommended <= current:
        recommended = current + 1
        reasons.append(f"Because the queue is growing, at least one more than now: {recommended}.")
    advice.recommended = recommended
    advice.recommended_monthly_usd = _money(process_usd * recommended)
    if current is not None:
        advice.current_monthly_usd = _money(process_usd * current)


# -- the report ------------------------------------------------------------------------------------
def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp((moment.timestamp() // seconds) * seconds, UTC)


def capacity_advice(now: datetime | None = None) -> CapacityAdvice:
    """The advice for the web and each queue's workers from the recorded metrics (three queries)."""
    config = _config()
    now = now or timezone.now()
    this_hour = _floor(now, HOUR)
    this_minute = _floor(now, MINUTE)
    observed = _observe(this_hour - timedelta(days=config.lookback_days), this_hour, this_minute - HOUR, this_minute)
    empty: dict[datetime, _Series] = {}
    missing: list[str] = []
    notes: list[str] = []
    lookback = f"the last {_plural(config.lookback_days, 'day')}"

    # -- the web
    web = RoleAdvice(role="web", label="Web (daphne)", current=config.web_processes)
    web_hourly = observed.hourly.get((REQUEST, ""), empty)
    web_last = _total(observed.minutely.get((REQUEST, ""), empty))
    if not web_hourly and not web_last.count:
        missing.append(
            f"No web requests recorded in {lookback} (metric {REQUEST}, written by the API monitoring middleware)."
        )
        web.current_monthly_usd = _money(config.web_process_usd * web.current)
        web.reasons.append("Not enough data yet: no web request has been recorded.")
    else:
        _advise(
            advice=web,
            work_hourly=web_hourly,
            work_last_hour=web_last,
            depth_minutely=None,
            what="requests were served",
            target=config.target,
            minimum=config.min_web,
            minimum_reason=(
                f"At least {config.min_web} web processes, so that one can restart or fail without the site going down."
            ),
            process_usd=config.web_process_usd,
        )

    # -- the workers, per queue
    seen = {queue for (name, queue) in [*observed.hourly, *observed.minutely] if name in (TASK, DEPTH)}
    declared = declared_queues()
    queues = declared + sorted((seen | set(config.worker_processes)) - set(declared))
    has_worker_data = any(name in (TASK, DEPTH) for name, _ in [*observed.hourly, *observed.minutely])
    shared = config.worker_pool is not None
    roles = [web]
    for queue in queues:
        row = RoleAdvice(
            role="worker",
            queue=queue,
            label=f"Celery workers: {queue}",
            current=None if shared else config.worker_processes.get(queue, 0),
        )
        roles.append(row)
        if queue not in declared:
            row.reasons.append(f"Queue {queue} is not declared by huntaze/celery.py.")
        if not has_worker_data:
            row.reasons.append("Not enough data yet: no task or queue depth has been recorded.")
            if row.current is not None:
                row.current_monthly_usd = _money(config.worker_process_usd * row.current)
            continue
        task_hourly = observed.hourly.get((TASK, queue), empty)
        task_last = _total(observed.minutely.get((TASK, queue), empty))
        if not task_hourly and not task_last.count:
            row.reasons.append(f"No task ran on {queue} in {lookback}.")
        _advise(
            advice=row,
            work_hourly=task_hourly,
            work_last_hour=task_last,
            depth_minutely=observed.minutely.get((DEPTH, queue)),
            what=f"tasks ran on {queue}",
            target=config.target,
            minimum=config.min_worker,
            minimum_reason=(
                f"At least {_plural(config.min_worker, 'process')} per queue, so that its tasks never wait "
                "for a worker to start."
            ),
            process_usd=config.worker_process_usd,
        )
    if not has_worker_data:
        missing.append(
            f"No Celery task or queue depth recorded in {lookback} (metrics {TASK} and {DEPTH}, written by the "
            "worker signals and the queue-depth sampler)."
        )

    pool = _pool_advice(config, roles[1:], observed, has_worker_data) if shared else None

    if observed.first_hour is not None:
        covered = (this_hour - observed.first_hour) / HOUR
        if covered < FULL_COVERAGE_HOURS:
            so_far = f"Only {_plural(int(covered), 'hour')}" if covered >= 1 else "Less than an hour"
            notes.append(
                f"{so_far} of metrics so far: the busiest hour of a full {_plural(config.lookback_days, 'day')} "
                "is a safer basis."
            )

    billed = [web, pool] if pool else roles
    current_usd = sum((row.current_monthly_usd or Decimal(0) for row in billed), Decimal(0))
    recommended = [row.recommended_monthly_usd for row in roles]
    return CapacityAdvice(
        generated_at=now,
        lookback_days=config.lookback_days,
        target_utilisation=config.target,
        roles=roles,
        worker_pool=pool,
        enough_data=not missing,
        missing=missing,
        notes=notes,
        current_monthly_usd=_money(current_usd),
        recommended_monthly_usd=None if None in recommended else _money(sum(recommended, Decimal(0))),
        vcpu_hour_usd=Decimal(settings.CAPACITY_VCPU_HOUR_USD),
        gb_hour_usd=Decimal(settings.CAPACITY_GB_HOUR_USD),
    )


def _pool_advice(config: _Config, queues: list[RoleAdvice], observed: _Observed, has_data: bool) -> RoleAdvice:
    """The row of the one worker pool that serves every queue today (the Procfile's way)."""
    size = config.worker_pool or 0
    pool = RoleAdvice(
        role="worker_pool",
        label="Celery workers: one pool for all queues",
        current=size,
        current_monthly_usd=_money(config.worker_process_usd * size),
    )
    pool.reasons.append(
        f"Today one pool of {_plural(size, 'worker process')} serves every queue (CAPACITY_WORKER_PROCESSES={size})."
    )
    if not has_data:
        pool.reasons.append("Not enough data yet: no task or queue depth has been recorded.")
        return pool
    window_ms = HOUR.total_seconds() * 1000
    hourly: dict[datetime, float] = defaultdict(float)
    last_ms = 0.0
    for row in queues:
        for hour, series in observed.hourly.get((TASK, row.queue or ""), {}).items():
            hourly[hour] += series.sum
        last_ms += _total(observed.minutely.get((TASK, row.queue or ""), {})).sum
    peak_hour = max(hourly, key=lambda hour: (hourly[hour], hour)) if hourly else None
    peak_load = hourly[peak_hour] / window_ms if peak_hour else 0.0
    last_load = last_ms / window_ms
    if size:
        pool.utilisation = last_load / size
        pool.peak_utilisation = peak_load / size
        pool.reasons.append(
            f"All queues together kept it busy {_pct(pool.utilisation)} of the last hour"
            + (f" and {_pct(pool.peak_utilisation)} of the busiest hour ({_hour(peak_hour)})." if peak_hour else ".")
        )
    pool.offered_load = sum(row.offered_load or 0.0 for row in queues)
    pool.recommended = sum(row.recommended or 0 for row in queues)
    pool.queue_growing = any(row.queue_growing for row in queues)
    backlog_load = sum(row.backlog_load for row in queues)
    pooled = processes_needed(max(peak_load, last_load + backlog_load), config.target, config.min_worker)
    pool.reasons.append(
        f"The advice gives each queue its own workers (celery worker -Q <queue>), {pool.recommended} processes "
        f"in all, so that bulk work never delays interactive tasks. Kept as one pool, {pooled} would carry the "
        f"same load at the {_pct(config.target)} target, but a burst on one queue would wait ahead of the others."
    )
    pool.recommended_monthly_usd = _money(config.worker_process_usd * pool.recommended)
    return pool


def capacity_context(now: datetime | None = None) -> dict[str, Any]:
    """The context of templates/monitoring/partials/capacity.html (the overview page includes it)."""
    return {"capacity": capacity_advice(now)}
