"""The Amazon CloudWatch sink (METRICS_SINKS): each flush's per-minute points as PutMetricData calls.

- Namespace by metric family, the name's first part (``ai.request`` -> METRICS_CLOUDWATCH_NAMESPACES
  ["ai"], ``Huntaze/AI``), else METRICS_CLOUDWATCH_NAMESPACE; the metric name is ours as is.
- Dimensions: ``Environment`` (METRICS_ENVIRONMENT) and the event's own, at most 30 in all.
- Durations (Milliseconds, Seconds) go as ``Values``/``Counts``, so CloudWatch can answer
  percentiles (p95 latency alarms): the minute's exact values when there are at most 150 distinct
  ones, else up to 150 representative values (the exact minimum and maximum, and the mean of each
  of 148 log-spaced bins between them), which keeps the count, sum, minimum and maximum exact and
  the percentiles within a bin's width. Every other unit goes as ``StatisticValues`` (SampleCount,
  Sum, Minimum, Maximum). USD has no CloudWatch unit and is sent as ``None``.
- One call holds at most 1,000 datums and stays under the 1 MB request limit, sized as the JSON
  botocore sends (before the gzip it applies to bodies over 10 kB), with a fifth kept in reserve.
- Retries on throttling and transient errors are botocore's own (standard mode, with short connect
  and read timeouts so a dead endpoint cannot hold the flush thread for long). A call that still
  fails raises: the facade (apps/core/metrics.py) counts the failure, keeps the batch for the next
  flush and drops it after a second failure. Calls that succeeded before the failure are not sent
  again on that retry, so CloudWatch does not count them twice.
"""

from __future__ import annotations

import json
import math
import weakref
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from apps.core.metrics import Batch, Point

CLOUDWATCH_UNITS = {
    "Milliseconds": "Milliseconds",
    "Seconds": "Seconds",
    "Count": "Count",
    "Bytes": "Bytes",
    "Percent": "Percent",
    "None": "None",
    "USD": "None",
}
TIME_UNITS = {"Milliseconds", "Seconds"}
MAX_DATUMS_PER_CALL = 1000
MAX_PAYLOAD_BYTES = 1_000_000
PAYLOAD_BUDGET = int(MAX_PAYLOAD_BYTES * 0.8)  # room for the envelope, headers and another encoding
MAX_DIMENSIONS = 30
MAX_VALUES = 150
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
# CloudWatch refuses magnitudes outside this range (except zero), and NaN or infinity.
_SMALLEST, _LARGEST = 8.515920e-109, 1.174271e108


def namespace_for(name: str) -> str:
    family = name.split(".", 1)[0]
    return settings.METRICS_CLOUDWATCH_NAMESPACES.get(family, settings.METRICS_CLOUDWATCH_NAMESPACE)


def acceptable(value: float) -> bool:
    return value == 0 or (math.isfinite(value) and _SMALLEST <= abs(value) <= _LARGEST)


def value_counts(values: list[float], limit: int = MAX_VALUES) -> tuple[list[float], list[float]]:
    """At most ``limit`` (value, count) pairs standing for ``values``: exact when few are distinct,
    else the minimum, the maximum and per-bin means over log-spaced bins (count and sum kept)."""
    distinct = Counter(values)
    if len(distinct) <= limit:
        pairs = sorted(distinct.items())
        return [v for v, _ in pairs], [float(c) for _, c in pairs]
    low, high = min(values), max(values)

    def scale(v: float) -> float:
        return math.copysign(math.log1p(abs(v)), v)

    bins = limit - 2
    start, width = scale(low), (scale(high) - scale(low)) / bins
    sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    for value in values:
        if value in (low, high):
            continue
        index = min(int((scale(value) - start) / width), bins - 1)
        sums[index] += value
        counts[index] += 1
    pairs = [(low, float(distinct[low])), (high, float(distinct[high]))]
    pairs += [(sums[i] / counts[i], float(counts[i])) for i in counts]
    pairs.sort()
    return [v for v, _ in pairs], [c for _, c in pairs]


def dimensions_for(point: Point) -> list[dict[str, str]]:
    found = [{"Name": "Environment", "Value": settings.METRICS_ENVIRONMENT}]
    for key, value in point.dimensions:
        if key == "Environment" or len(found) >= MAX_DIMENSIONS:
            continue
        found.append({"Name": key[:255] or "dimension", "Value": value[:1024] or "none"})
    return found


def datum_for(point: Point, raw: list[float] | None) -> dict[str, Any] | None:
    datum: dict[str, Any] = {
        "MetricName": point.name[:255],
        "Dimensions": dimensions_for(point),
        "Timestamp": datetime.fromtimestamp(point.minute, UTC),
        "Unit": CLOUDWATCH_UNITS.get(point.unit, "None"),
    }
    if raw is not None:
        values = [v for v in raw if acceptable(v)]
        if not values:
            return None
        datum["Values"], datum["Counts"] = value_counts(values)
    else:
        statistics = (point.count, point.sum, point.min, point.max)
        if not all(acceptable(float(s)) for s in statistics):
            return None
        datum["StatisticValues"] = {
            "SampleCount": float(point.count),
            "Sum": point.sum,
            "Minimum": point.min,
            "Maximum": point.max,
        }
    return datum


def datum_size(datum: dict[str, Any]) -> int:
    return len(json.dumps(datum, default=str)) + 2


def calls_for(batch: Batch) -> list[tuple[str, list[dict[str, Any]]]]:
    """The batch as PutMetricData calls, (namespace, datums), each within the API's limits."""
    raw: dict[tuple[str, str, tuple[tuple[str, str], ...], int], list[float]] = defaultdict(list)
    for name, value, unit, dimensions, at in batch.events:
        if unit in TIME_UNITS:
            raw[name, unit, dimensions, int(at // 60) * 60].append(value)
    by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in batch.points:
        values = raw.get((point.name, point.unit, point.dimensions, point.minute)) if point.unit in TIME_UNITS else None
        datum = datum_for(point, values)
        if datum is not None:
            by_namespace[namespace_for(point.name)].append(datum)
    calls: list[tuple[str, list[dict[str, Any]]]] = []
    for namespace, datums in by_namespace.items():
        chunk: list[dict[str, Any]] = []
        size = 0
        for datum in datums:
            grows = datum_size(datum)
            if chunk and (len(chunk) >= MAX_DATUMS_PER_CALL or size + grows > PAYLOAD_BUDGET):
                calls.append((namespace, chunk))
                chunk, size = [], 0
            chunk.append(datum)
            size += grows
        if chunk:
            calls.append((namespace, chunk))
    return calls


class CloudWatchSink:
    name = "cloudwatch"

    def __init__(self) -> None:
        self._client: Any = None
        # Calls already made for a batch the facade will hand back after a failure.
        self._sent: dict[int, tuple[weakref.ref[Batch], int]] = {}

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=READ_TIMEOUT,
                retries={"mode": "standard", "total_max_attempts": settings.METRICS_CLOUDWATCH_MAX_ATTEMPTS},
            )
            self._client = boto3.session.Session().client(
                "cloudwatch",
                region_name=settings.AWS_REGION,
                endpoint_url=settings.METRICS_CLOUDWATCH_ENDPOINT_URL or None,
                config=config,
            )
        return self._client

    def write(self, batch: Batch) -> None:
        self._sent = {key: entry for key, entry in self._sent.items() if entry[0]() is not None}
        ref, done = self._sent.get(id(batch), (None, 0))
        if ref is not None and ref() is not batch:
            done = 0
        calls = calls_for(batch)
        client = self.client()
        for index in range(done, len(calls)):
            namespace, datums = calls[index]
            try:
                client.put_metric_data(Namespace=namespace, MetricData=datums)
            except Exception:
                self._sent[id(batch)] = (weakref.ref(batch), index)
                raise
        self._sent.pop(id(batch), None)
