"""The Celery application: autodiscovers ``tasks.py`` in every app.

Queues are named for priority: ``interactive`` (a person is waiting: emails they asked for,
AI replies), ``default`` and ``bulk`` (mass sends, imports). Workers started by the Procfile
consume all three; production can run dedicated workers per queue.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import before_task_publish, task_prerun
from kombu import Exchange, Queue

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
app.autodiscover_tasks()


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
