"""Service-metric anomalies: the anomaly detector (anomalies.py, through analysis.py's log-scale
wrapper) over the service's own hourly numbers, raised as monitoring alerts.

Series, one value per closed UTC hour over the last ``SERVICE_HISTORY_DAYS`` days:

- platform-wide, from the monitoring app's hourly rollups of ``http.request`` (docs/metrics.md):
  requests per hour (``http_requests``; an hour without rows counts 0 once the series has begun),
  the share of them answered 5xx (``http_error_rate``) and the 95th percentile latency from the
  rolled-up histogram (``http_latency_p95``; both undefined, a gap, in an hour without requests);
- per agency, from the AI gateway's ledger: AI cost per hour in USD (``ai_cost``).

Each run (the ``hourly-anomalies`` beat task) scores the last ``SERVICE_REPORT_HOURS`` closed
hours of every series; a flagged hour is stored once as a ServiceAnomaly (with the range the
detector expected and a severity from its score) and, when medium or high, fires a monitoring
alert (``apps.monitoring.alerts.fire``, kind "anomaly", one firing alert per series key):
monitoring tells the staff of a platform-wide alert and an agency's owners and managers of its
own, in the app (notifications), by email and by webhook. A series none of whose last
``SERVICE_REPORT_HOURS`` hours is flagged resolves its alert.

What this does not do: watch per-route or per-provider series (a few platform-wide numbers
catch an incident; the monitoring overview breaks it down), or page anyone ("ticket" at most:
the SLO burn-rate alerts are the paging rules).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.core.metrics import BUCKETS
from apps.monitoring import alerts, rollups
from apps.monitoring.models import MetricSample
from apps.optimization.analysis import flag_series, severity_for
from apps.optimization.models import ServiceAnomaly, Severity

logger = logging.getLogger(__name__)

SERVICE_HISTORY_DAYS = 28  # four weeks of hours: the weekly profile needs three visits per bin
SERVICE_REPORT_HOURS = 3  # hours scored per run: an hourly task that missed a run or two catches up
SERVICE_MIN_POINTS = 7 * 24  # a week of hours before a series is judged
SENSITIVITY = "medium"
ALERT_SEVERITY = {Severity.HIGH: "ticket", Severity.MEDIUM: "warning"}
HOUR = 3600


@dataclass
class ServiceReport:
    series: int = 0
    anomalies_stored: int = 0
    alerts_fired: int = 0
    alerts_resolved: int = 0


def alert_key(metric: str, agency_id: int | None) -> str:
    return f"optimization.service:{metric}" if agency_id is None else f"optimization.service:{agency_id}:{metric}"


def _offsets(moments: list[datetime], start: datetime) -> np.ndarray:
    base = start.timestamp()
    return np.fromiter(((m.timestamp() - base) // HOUR for m in moments), dtype=np.int64, count=len(moments))


def platform_series(start: datetime, n_hours: int) -> dict[str, np.ndarray]:
    """Requests, 5xx share and p95 latency per hour from ``http.request``'s hourly rollup rows
    (two queries). Hours not rolled up yet are unknown (NaN)."""
    rows = list(
        MetricSample.objects.filter(
            name="http.request",
            resolution=MetricSample.Resolution.HOUR,
            start__gte=start,
            start__lt=start + timedelta(hours=n_hours),
        )
        .order_by()
        .values_list("start", "dims_key", "count", *MetricSample.BUCKET_FIELDS)
    )
    requests = np.zeros(n_hours)
    errors = np.zeros(n_hours)
    buckets = np.zeros((n_hours, BUCKETS), dtype=np.int64)
    if not rows:
        return {}
    offsets = _offsets([row[0] for row in rows], start)
    for offset, (_start, dims, count, *histogram) in zip(offsets.tolist(), rows, strict=True):
        requests[offset] += count
        buckets[offset] += histogram
        if "status=5xx" in dims.split("|"):
            errors[offset] += count
    requests[: int(offsets.min())] = np.nan  # before the series began: unknown, not zero
    # Hours the rollup has not reached yet (it runs every few minutes, a little behind): unknown,
    # not zero, or the last closed hour would read as "no requests" and raise a false alert.
    rolled_hours = (rollups.last_rolled_up() - start) // timedelta(hours=1)
    requests[max(0, rolled_hours) :] = np.nan
    served = requests > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        error_rate = np.where(served, errors / requests, np.nan)
    p95 = np.full(n_hours, np.nan)
    for offset in np.flatnonzero(served).tolist():
        value = rollups.quantile(buckets[offset].tolist(), 0.95)
        p95[offset] = np.nan if value is None else value
    return {"http_requests": requests, "http_error_rate": error_rate, "http_latency_p95": p95}


def ai_cost_series(start: datetime, n_hours: int) -> dict[int, np.ndarray]:
    """Each agency's AI cost (USD) per hour from the AI ledger (one aggregate query); 0 in an
    hour without requests once the agency's series has begun."""
    rows = list(
        AIRequestLog.objects.filter(
            agency__isnull=False, created_at__gte=start, created_at__lt=start + timedelta(hours=n_hours)
        )
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .order_by()
        .values_list("agency_id", "hour")
        .annotate(cost=Sum("cost_usd"))
    )
    out: dict[int, np.ndarray] = {}
    for agency_id, hour, cost in rows:
        series = out.setdefault(agency_id, np.full(n_hours, np.nan))
        offset = int((hour.timestamp() - start.timestamp()) // HOUR)
        if 0 <= offset < n_hours:
            series[offset] = float(cost or 0)
    for series in out.values():
        known = np.flatnonzero(np.isfinite(series))
        series[known[0] :] = np.nan_to_num(series[known[0] :], nan=0.0)
    return out


def _number(metric: str, value: float) -> str:
    if metric == "http_error_rate":
        return f"{value:.2%}"
    if metric == "ai_cost":
        return f"${value:,.2f}"
    if metric == "http_latency_p95":
        return f"{value:,.0f} ms"
    return f"{value:,.0f}"


def run_service_anomalies(*, now: datetime | None = None) -> ServiceReport:
    """Score, store and alert the last closed hours of every service series (module docstring)."""
    now = now or timezone.now()
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)  # the current hour is not over
    n_hours = SERVICE_HISTORY_DAYS * 24
    start = end - timedelta(hours=n_hours)
    stamps = np.arange(n_hours, dtype=np.int64) * HOUR + int(start.timestamp())
    watched: list[tuple[int | None, str, np.ndarray]] = [
        (None, metric, values) for metric, values in platform_series(start, n_hours).items()
    ]
    watched += [(agency_id, "ai_cost", values) for agency_id, values in sorted(ai_cost_series(start, n_hours).items())]
    report = ServiceReport(series=len(watched))
    flagged: list[ServiceAnomaly] = []
    quiet: list[str] = []
    for agency_id, metric, values in watched:
        hits = flag_series(
            stamps, values, report_from=n_hours - SERVICE_REPORT_HOURS, sensitivity=SENSITIVITY,
            min_points=SERVICE_MIN_POINTS,
        )  # fmt: skip
        if not hits:
            quiet.append(alert_key(metric, agency_id))
        for hit in hits:
            flagged.append(
                ServiceAnomaly(
                    agency_id=agency_id, metric=metric, at=start + timedelta(hours=hit.row), value=hit.value,
                    expected_low=hit.low, expected_high=hit.high, score=hit.score, severity=severity_for(hit.score),
                )
            )  # fmt: skip
    with transaction.atomic():
        known = set(
            ServiceAnomaly.objects.filter(at__gte=end - timedelta(hours=SERVICE_REPORT_HOURS + 1)).values_list(
                "agency_id", "metric", "at"
            )
        )
        new = [a for a in flagged if (a.agency_id, a.metric, a.at) not in known]
        for anomaly in new:
            if anomaly.severity in ALERT_SEVERITY:
                anomaly.alert_key = alert_key(anomaly.metric, anomaly.agency_id)
        ServiceAnomaly.objects.bulk_create(new, ignore_conflicts=True)  # a concurrent run stored it: fine
        report.anomalies_stored = len(new)
        for anomaly in new:
            if not anomaly.alert_key:
                continue
            fired = alerts.fire(
                anomaly.alert_key,
                kind="anomaly",
                severity=ALERT_SEVERITY[anomaly.severity],
                title=f"Unusual {anomaly.label.lower()}: {_number(anomaly.metric, anomaly.value)} at "
                f"{anomaly.at:%b %d %H}:00 UTC",
                detail=f"{anomaly.label} was {_number(anomaly.metric, anomaly.value)} in the hour from "
                f"{anomaly.at:%Y-%m-%d %H}:00 UTC; expected {_number(anomaly.metric, anomaly.expected_low)} to "
                f"{_number(anomaly.metric, anomaly.expected_high)} from the last {SERVICE_HISTORY_DAYS} days.",
                agency_id=anomaly.agency_id,
                values={"metric": anomaly.metric, "value": anomaly.value, "expected_low": anomaly.expected_low,
                        "expected_high": anomaly.expected_high, "score": anomaly.score},
                now=now,
            )  # fmt: skip
            report.alerts_fired += fired is not None
        # Series that raised an alert in the last week and are quiet now: resolve it.
        raised = set(
            ServiceAnomaly.objects.filter(at__gte=end - timedelta(days=7))
            .exclude(alert_key="")
            .values_list("alert_key", flat=True)
        )
        for key in sorted(raised.intersection(quiet)):
            report.alerts_resolved += alerts.resolve(key, now=now) is not None
    return report
