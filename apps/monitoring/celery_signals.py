"""Celery task metrics: ``celery.task`` (duration in ms, {task, queue, outcome}) for every run.

Connected in MonitoringConfig.ready(), so every process that loads Django (the workers, and the
web process when a task runs eagerly) records its task runs. One event per run:

- ``task_prerun`` notes the start on the task's request (per run, no shared table);
- ``task_retry`` records the run as ``retry`` (the task asked to be run again);
- ``task_failure`` records it as ``failure`` (it raised, or its time limit ran out);
- ``task_postrun`` records the rest by their final state (``success`` for most; an eager run
  whose exception propagates to the caller is recorded here as ``failure`` or ``retry``).

The queue is the one the message came from (its routing key), else the task's declared queue,
else CELERY_TASK_DEFAULT_QUEUE (eager runs have no delivery information).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from billiard.exceptions import TimeLimitExceeded
from celery.exceptions import Retry
from celery.signals import task_failure, task_postrun, task_prerun, task_retry
from django.conf import settings

from apps.core.metrics import emit

_STARTED = "_monitoring_started"
_RECORDED = "_monitoring_recorded"
# A task's final state -> outcome; IGNORED (the task chose to stop, e.g. replaced itself) counts as
# success, REJECTED (the message was refused) as failure.
_OUTCOMES = {"SUCCESS": "success", "IGNORED": "success", "RETRY": "retry", "FAILURE": "failure", "REJECTED": "failure"}


def _queue(task: Any, request: Any) -> str:
    info = getattr(request, "delivery_info", None) or {}
    return info.get("routing_key") or getattr(task, "queue", None) or settings.CELERY_TASK_DEFAULT_QUEUE


def _record(task: Any, request: Any, outcome: str) -> None:
    if request is None or getattr(request, _RECORDED, False):
        return
    setattr(request, _RECORDED, True)
    started = getattr(request, _STARTED, None)
    duration_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    emit(
        "celery.task",
        duration_ms,
        "Milliseconds",
        {"task": task.name, "queue": _queue(task, request), "outcome": outcome},
    )


def on_prerun(task: Any = None, **_: Any) -> None:
    if task is not None:
        setattr(task.request, _STARTED, time.perf_counter())
        setattr(task.request, _RECORDED, False)


def on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    if sender is not None:
        _record(sender, request, "retry")


def on_failure(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None,
               **_: Any) -> None:  # fmt: skip
    if sender is None:
        return
    request = sender.request
    if getattr(request, "id", None) == task_id:
        _record(sender, request, "failure")
        return
    # Sent by the worker's main process for a run that ended elsewhere (its hard time limit, a
    # lost child): ``sender.request`` is then the task's idle default request, shared by every
    # later failure in this process, so nothing is marked on it. A time limit ran that long.
    limit = getattr(sender, "time_limit", None) or settings.CELERY_TASK_TIME_LIMIT
    duration_ms = limit * 1000 if isinstance(exception, TimeLimitExceeded) else 0.0
    emit(
        "celery.task",
        duration_ms,
        "Milliseconds",
        {"task": sender.name, "queue": _queue(sender, None), "outcome": "failure"},
    )


def on_postrun(task: Any = None, state: str | None = None, **_: Any) -> None:
    if task is None:
        return
    if state is None:
        # An eager run with task_eager_propagates: the exception is on its way to the caller
        # and no retry or failure signal was sent; postrun is sent while it propagates.
        error = sys.exc_info()[1]
        outcome = "retry" if isinstance(error, Retry) else "failure"
    else:
        outcome = _OUTCOMES.get(state, "success")
    _record(task, task.request, outcome)


def connect() -> None:
    """Connect the handlers (strong references, one uid each: connecting twice is harmless)."""
    task_prerun.connect(on_prerun, weak=False, dispatch_uid="monitoring.task_prerun")
    task_retry.connect(on_retry, weak=False, dispatch_uid="monitoring.task_retry")
    task_failure.connect(on_failure, weak=False, dispatch_uid="monitoring.task_failure")
    task_postrun.connect(on_postrun, weak=False, dispatch_uid="monitoring.task_postrun")
