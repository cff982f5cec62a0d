"""The Celery application: autodiscovers ``tasks.py`` in every app.

Queues are named for priority: ``interactive`` (a person is waiting: emails they asked for,
AI replies), ``default`` and ``bulk`` (mass sends, imports). Workers started by the Procfile
consume all three; production can run dedicated workers per queue.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu import Exchange, Queue

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")

QUEUES = ("interactive", "default", "bulk")

app = Celery("huntaze")
# The current app in every thread (daphne runs views in worker threads), so library code and
# apps/core/health.py reach it through celery.current_app without importing the project.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES]
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
# Celery's Django fixup closes every database connection before and after each task unless
# CELERY_DB_REUSE_MAX is set, whatever CONN_MAX_AGE says: a new PostgreSQL connection per task,
# about 10 ms of each workflow step (bench/workflow_steps.py). The fixup is told never to recycle
# them; ``_close_old_connections`` below applies Django's own rule at each task boundary instead.
app.conf.CELERY_DB_REUSE_MAX = 2**62
app.autodiscover_tasks()


class Consumer(CeleryConsumer):
    """Celery's consumer, surviving a Redis broker restart.

    Celery 5.7.0 with kombu's Redis transport: when the broker connection is lost while a
    late-acknowledged task (the delivery send tasks) is unacknowledged, the consumer closes the
    connection after ``collect()`` dropped the transport's client, and kombu's channel, putting the
    unacknowledged message back, reads that client's ``hostname``: an ``AttributeError`` that ends
    the worker instead of reconnecting (tests/delivery/test_restarts.py reproduces it; no newer
    release is available). The message it wanted to put back lives in the broker that went away;
    the delivery sweeper re-publishes what was lost. Swallowing the error skips only the method's
    tail: cancelling long-running tasks (off here) and the prefetch reduction after a reconnect.
    """

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError:
            logger.warning("closing the lost broker connection raised kombu's AttributeError", exc_info=True)


app.conf.worker_consumer = "huntaze.celery:Consumer"


@before_task_publish.connect
def _attach_request_id(headers: dict | None = None, **_: object) -> None:
    """Carry the current request id into the task so its logs can be followed."""
    from apps.core.logging import get_request_id

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = get_request_id()


@task_prerun.connect
def _restore_request_id(task=None, **_: object) -> None:
    from apps.core.logging import set_request_id

    request_id = getattr(task.request, "request_id", None) if task else None
    set_request_id(request_id or "-")


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **_: object) -> None:
    """What Django does around each request: drop a connection older than CONN_MAX_AGE, one that
    saw an error or was left inside a transaction (eager tasks run inside their caller's)."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def _hand_off_events(**_: object) -> None:
    """A worker process dispatches the events its tasks commit on a thread of its own
    (apps/core/outbox.py ``_Handoff``): a task's commit no longer waits for the channel layer and
    the dispatched mark (about 0.7 ms of a workflow step's 9, bench/workflow_steps.py)."""
    from apps.core.outbox import hand_off_in_this_process

    hand_off_in_this_process()
