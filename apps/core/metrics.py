"""The metrics facade: ``emit(name, value, unit, dimensions)`` from anywhere, never blocking.

``emit()`` appends one tuple to an in-process buffer (about a microsecond: no lock, no I/O, no
database). A background thread hands the buffer to the sinks every METRICS_FLUSH_SECONDS, and
the buffer is flushed at clean shutdown (interpreter exit, Celery worker stop), like the AI
ledger. With METRICS_FLUSH_SECONDS=0 (the tests) there is no thread: ``flush()`` runs when called.

Sinks are chosen in settings (METRICS_SINKS, dotted paths to classes; the monitoring app provides
the database rollups, Prometheus and CloudWatch). Core never imports them: a lower layer reaches
the higher one through the setting. A sink gets a ``Batch``: the raw events and, computed once,
their per-minute aggregates (``Point``: count, sum, min, max and a histogram over BOUNDS).

A sink that fails (CloudWatch unreachable or throttled) never reaches the request: its batch is
kept for one more try at the next flush, then dropped; both are counted per sink in the shared
state (``sink_status()``), which the monitoring overview shows. The buffer holds at most
METRICS_BUFFER_MAX events; beyond that new events are dropped and counted, never blocking.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.core.shutdown import at_shutdown

logger = logging.getLogger(__name__)

# Histogram bucket upper bounds for time units, in milliseconds; a 14th bucket holds the rest.
BOUNDS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
BUCKETS = len(BOUNDS_MS) + 1
UNITS = ("Count", "Milliseconds", "Seconds", "Bytes", "Percent", "None", "USD")
_TO_MS = {"Milliseconds": 1.0, "Seconds": 1000.0}

Event = tuple[str, float, str, tuple[tuple[str, str], ...], float]  # name, value, unit, dims, unix time


def dims_key(dimensions: tuple[tuple[str, str], ...]) -> str:
    """The canonical text of a set of dimensions: ``k=v|k=v`` sorted by key."""
    return "|".join(f"{k}={v}" for k, v in dimensions)


def bucket_index(value_ms: float) -> int:
    """Which histogram bucket a duration in milliseconds falls in (a bound is inclusive)."""
    return bisect_left(BOUNDS_MS, value_ms)


@dataclass(slots=True)
class Point:
    """One series' events within one minute, aggregated."""

    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    minute: int  # unix time of the minute's start
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        factor = _TO_MS.get(self.unit)
        if factor is not None:
            self.buckets[bucket_index(value * factor)] += 1

    @property
    def dims_key(self) -> str:
        return dims_key(self.dimensions)


@dataclass
class Batch:
    events: list[Event]

    @cached_property
    def points(self) -> list[Point]:
        """The events aggregated per series and minute, in first-seen order."""
        points: dict[tuple[str, str, tuple[tuple[str, str], ...], int], Point] = {}
        for name, value, unit, dimensions, at in self.events:
            minute = int(at // 60) * 60
            key = (name, unit, dimensions, minute)
            point = points.get(key)
            if point is None:
                point = points[key] = Point(name, unit, dimensions, minute)
            point.add(value)
        return list(points.values())


class Sink(Protocol):
    """Where a batch goes. ``write`` raises on failure; the facade counts, keeps and retries."""

    name: str

    def write(self, batch: Batch) -> None: ...


class Recorder:
    def __init__(self) -> None:
        # A deque: append() and popleft() are atomic, so a flush draining it never loses an event
        # another thread appends meanwhile (swapping a list could).
        self._buffer: deque[Event] = deque()
        self._retry: dict[str, Batch] = {}
        self._lock = threading.Lock()  # flushes only: emit() appends without it
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sinks: list[Sink] | None = None
        self._dropped = 0

    # -- the request path ---------------------------------------------------------------------
    def emit(self, name: str, value: float = 1.0, unit: str = "Count", dimensions: dict[str, Any] | None = None,
             at: float | None = None) -> None:  # fmt: skip
        buffer = self._buffer
        if len(buffer) >= settings.METRICS_BUFFER_MAX:
            self._dropped += 1
            return
        dims = tuple(sorted((k, str(v)) for k, v in dimensions.items())) if dimensions else ()
        buffer.append((name, float(value), unit, dims, time.time() if at is None else at))
        if self._thread is None and settings.METRICS_FLUSH_SECONDS > 0:
            self._ensure_thread()

    # -- flushing ------------------------------------------------------------------------------
    def sinks(self) -> list[Sink]:
        if self._sinks is None:
            self._sinks = [import_string(path)() for path in settings.METRICS_SINKS]
        return self._sinks

    def reset_sinks(self) -> None:
        """Build the sinks again from settings (tests that change METRICS_SINKS)."""
        with self._lock:
            self._sinks = None
            self._retry.clear()

    def pending(self) -> int:
        return len(self._buffer)

    def discard(self) -> int:
        with self._lock:
            dropped = len(self._buffer)
            self._buffer.clear()
            self._retry.clear()
        return dropped

    def flush(self) -> int:
        """Hand everything buffered to every sink; answers how many events were flushed."""
        with self._lock:
            popleft = self._buffer.popleft
            events = [popleft() for _ in range(len(self._buffer))]
            dropped, self._dropped = self._dropped, 0
            if dropped:
                sink_count("buffer", "dropped", dropped)
            batch = Batch(events)
            for sink in self.sinks():
                retry = self._retry.pop(sink.name, None)
                if retry is not None:
                    self._write(sink, retry, last_try=True)
                if events:
                    self._write(sink, batch, last_try=False)
        return len(events)

    def _write(self, sink: Sink, batch: Batch, *, last_try: bool) -> None:
        started = time.perf_counter()
        try:
            sink.write(batch)
        except Exception as exc:  # a sink's failure never reaches the code that emitted
            sink_count(sink.name, "failures", 1, error=f"{type(exc).__name__}: {exc}"[:300])
            if last_try:
                sink_count(sink.name, "dropped", len(batch.events))
                logger.warning("metrics sink %s failed twice; dropped %d events", sink.name, len(batch.events))
            else:
                self._retry[sink.name] = batch
                logger.warning("metrics sink %s failed; retrying at the next flush", sink.name, exc_info=True)
            return
        sink_count(sink.name, "written", len(batch.events), seconds=time.perf_counter() - started)

    def after_fork(self) -> None:
        self._buffer = deque()
        self._retry = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._dropped = 0

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections, connection

        while not self._stop.is_set():
            self._wake.wait(settings.METRICS_FLUSH_SECONDS)
            self._wake.clear()
            try:
                close_old_connections()
                self.flush()
            except Exception:
                logger.exception("metrics flush failed")
        connection.close()

    def shutdown(self) -> None:
        """Stop the thread and flush what is left (clean shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except Exception:
            logger.exception("metrics lost at shutdown")


recorder = Recorder()
emit = recorder.emit
# A forked child (Celery's prefork pool) starts with its own buffer, lock and flush thread: the
# parent's thread does not exist in it, its lock may have been held at the fork, and the parent's
# buffered events are the parent's to flush.
os.register_at_fork(after_in_child=recorder.after_fork)
flush = recorder.flush


# -- sink health, kept where every process agrees ----------------------------------------------
_STATUS_TTL = 7 * 24 * 3600


def sink_count(sink: str, what: str, amount: int, *, error: str = "", seconds: float | None = None) -> None:
    """Count a sink's written, failed or dropped events (and remember its last success and last
    error). Never raises: the metrics of metrics are not worth a failed flush."""
    from apps.core.shared import shared_state

    try:
        state = shared_state()
        state.incr_sync(f"metrics:sink:{sink}:{what}", _STATUS_TTL, int(amount))
        if error:
            state.set_record_sync(f"metrics:sink:{sink}:last_error", {"at": time.time(), "error": error}, _STATUS_TTL)
        elif what == "written":
            state.set_record_sync(f"metrics:sink:{sink}:last_ok", {"at": time.time()}, _STATUS_TTL)
    except Exception:
        logger.warning("could not count metrics sink status for %s", sink, exc_info=True)


@dataclass
class SinkStatus:
    name: str
    written: int
    failures: int
    dropped: int
    last_ok: float | None
    last_error_at: float | None
    last_error: str

    @property
    def healthy(self) -> bool:
        return self.last_error_at is None or (self.last_ok is not None and self.last_ok > self.last_error_at)


def sink_status() -> list[SinkStatus]:
    """Each configured sink's counts and last error (plus the buffer's drops, as ``buffer``)."""
    from apps.core.shared import shared_state

    state = shared_state()
    names = [getattr(import_string(path), "name", path) for path in settings.METRICS_SINKS] + ["buffer"]
    found = []
    for name in names:
        error = state.get_record_sync(f"metrics:sink:{name}:last_error")
        found.append(
            SinkStatus(
                name=name,
                written=state.incr_sync(f"metrics:sink:{name}:written", _STATUS_TTL, 0),
                failures=state.incr_sync(f"metrics:sink:{name}:failures", _STATUS_TTL, 0),
                dropped=state.incr_sync(f"metrics:sink:{name}:dropped", _STATUS_TTL, 0),
                last_ok=state.get_record_sync(f"metrics:sink:{name}:last_ok").get("at"),
                last_error_at=error.get("at"),
                last_error=error.get("error", ""),
            )
        )
    return found


at_shutdown(recorder.shutdown)
