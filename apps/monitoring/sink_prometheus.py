"""The Prometheus sink (METRICS_SINKS): emit()'s events as prometheus-client metrics, served at
/metrics (apps/monitoring/prometheus.py).

Several daphne and Celery worker processes each hold their own samples, so the sink needs
prometheus-client's multiprocess mode: every process writes its values to memory-mapped files in
PROMETHEUS_MULTIPROC_DIR and the /metrics view merges the files of all processes. Settings put the
directory into the environment when this sink is configured, before anything imports
prometheus_client (it chooses its value storage at import). A process that ends marks itself dead
(at interpreter exit, and on Celery's worker_process_shutdown), so its gauges stop counting.

How our units map (docs/metrics-sinks.md lists every metric):

- Milliseconds, Seconds: a Histogram in seconds over BOUNDS_MS (``huntaze_http_request_seconds``);
- Count: a Counter increased by the value (``huntaze_delivery_attempt_total``), except the names in
  METRICS_PROMETHEUS_GAUGES (``celery.queue_depth``), which are Gauges (the latest sample of each
  process, the highest of the live processes: multiprocess mode ``livemax``);
- USD and Bytes: Counters (``huntaze_ai_cost_usd_total``); Percent and None: Gauges.

Dimension keys become label names; a process keeps at most METRICS_PROMETHEUS_MAX_SERIES label sets
per metric and folds the rest into the label value ``other``, so a runaway dimension (a raw path,
an id) cannot grow the exposition without bound.

The sink observes the batch's raw events in the flush thread; nothing here runs on the request path.
"""

from __future__ import annotations

import logging
import math
import os
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.metrics import BOUNDS_MS, Batch, recorder
from apps.core.shutdown import at_shutdown

logger = logging.getLogger(__name__)

PREFIX = "huntaze_"
BUCKETS_SECONDS: tuple[float, ...] = (*(bound / 1000 for bound in BOUNDS_MS), math.inf)
TIME_FACTORS = {"Milliseconds": 0.001, "Seconds": 1.0}  # to seconds
COUNTER_SUFFIXES = {"Count": "", "USD": "_usd", "Bytes": "_bytes"}
GAUGE_SUFFIXES = {"Count": "", "Bytes": "_bytes", "Percent": "_percent", "None": ""}
OVERFLOW = "other"
RESERVED_LABELS = {"le", "quantile", "pid"}  # added by histograms, summaries and multiprocess gauges
MAX_LABEL_VALUE = 200

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str) -> str:
    """``http.request`` -> ``huntaze_http_request``: letters, digits and underscores only."""
    return PREFIX + _INVALID.sub("_", name).strip("_").lower()


def label_name(key: str) -> str:
    """A dimension key as a label name: sanitized, never reserved (``le`` -> ``le_``)."""
    label = _INVALID.sub("_", key).lstrip("_") or "dimension"
    if label[0].isdigit():
        label = f"d_{label}"
    return f"{label}_" if label in RESERVED_LABELS else label


def kind_of(name: str, unit: str) -> tuple[str, str]:
    """Which Prometheus type a metric becomes and its family name (without ``_total``)."""
    base = metric_name(name)
    if unit in TIME_FACTORS:
        return "histogram", f"{base}_seconds"
    if name in settings.METRICS_PROMETHEUS_GAUGES or unit not in COUNTER_SUFFIXES:
        return "gauge", base + GAUGE_SUFFIXES.get(unit, "")
    return "counter", base + COUNTER_SUFFIXES[unit]


def multiprocess_ready() -> bool:
    """Whether prometheus_client was imported with PROMETHEUS_MULTIPROC_DIR set (files, not memory)."""
    from prometheus_client import values

    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")) and values.ValueClass is not values.MutexValue


class PrometheusSink:
    name = "prometheus"

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        self._series: dict[str, set[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        _install_exit_hooks()

    def write(self, batch: Batch) -> None:
        if not multiprocess_ready():
            raise ImproperlyConfigured(
                "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set; the Prometheus "
                "sink must be in METRICS_SINKS when settings load (docs/metrics-sinks.md)"
            )
        # Nothing below raises for one bad event: a batch half applied and then retried would count
        # its first half twice. An event prometheus-client refuses is logged and skipped.
        gauges: dict[tuple[Any, tuple[str, ...]], tuple[float, float]] = {}
        for name, value, unit, dimensions, at in batch.events:
            if not math.isfinite(value):
                continue
            try:
                kind, family = kind_of(name, unit)
                labels, values = self._labels(family, dimensions)
                metric = self._metric(kind, family, labels, name, unit)
                if kind == "histogram":
                    _child(metric, values).observe(value * TIME_FACTORS[unit])
                elif kind == "counter":
                    if value >= 0:  # a counter only goes up; a negative increment is an emitter's bug
                        _child(metric, values).inc(value)
                elif (metric, values) not in gauges or at >= gauges[metric, values][0]:
                    gauges[metric, values] = (at, value)  # a gauge shows the latest sample
            except ValueError:
                logger.warning("metric %s (%s) not exposed to Prometheus", name, unit, exc_info=True)
        for (metric, values), (_, value) in gauges.items():
            _child(metric, values).set(value)

    def _labels(self, family: str, dimensions: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        found: dict[str, str] = {}
        for key, value in dimensions:
            found.setdefault(label_name(key), value[:MAX_LABEL_VALUE])
        labels = tuple(found)
        values = tuple(found.values())
        seen = self._series.setdefault(family, set())
        if (labels, values) not in seen:
            if len(seen) >= settings.METRICS_PROMETHEUS_MAX_SERIES:
                if len(seen) == settings.METRICS_PROMETHEUS_MAX_SERIES:
                    logger.warning("metric %s has too many label sets; folding new ones into %r", family, OVERFLOW)
                values = (OVERFLOW,) * len(labels)
            seen.add((labels, values))
        return labels, values

    def _metric(self, kind: str, family: str, labels: tuple[str, ...], name: str, unit: str) -> Any:
        metric = self._metrics.get((kind, family, labels))
        if metric is None:
            from prometheus_client import Counter, Gauge, Histogram

            # registry=None: in multiprocess mode the files are the registry; /metrics reads them.
            documentation = f"{name} ({unit}), from emit()"
            if kind == "histogram":
                metric = Histogram(family, documentation, labels, buckets=BUCKETS_SECONDS, registry=None)
            elif kind == "counter":
                metric = Counter(family, documentation, labels, registry=None)
            else:
                metric = Gauge(family, documentation, labels, registry=None, multiprocess_mode="livemax")
            self._metrics[kind, family, labels] = metric
        return metric


def _child(metric: Any, values: tuple[str, ...]) -> Any:
    """The series of a metric for these label values (a metric without labels is its own series)."""
    return metric.labels(*values) if values else metric


def mark_process_dead(**_: Any) -> None:
    """This process ends: flush what it buffered, then remove its live gauges from the directory
    (counters and histograms stay: what the process counted still happened)."""
    recorder.shutdown()
    if multiprocess_ready():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


_hooks_installed = False


def _install_exit_hooks() -> None:
    """Once per process, when the sink is first built (not merely imported by the /metrics URL)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    # atexit runs handlers last-registered-first: this one runs before core's flush, hence the
    # recorder.shutdown() in mark_process_dead (a second shutdown finds nothing left to flush).
    at_shutdown(mark_process_dead)
