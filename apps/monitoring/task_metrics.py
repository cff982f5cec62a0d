"""The queue-depth sampler (beat's ``sample-queue-depth``, every 30 s): ``celery.queue_depth``.

Registered under the name ``apps.monitoring.tasks.sample_queue_depth`` (apps/monitoring/tasks.py
imports this module so Celery's autodiscovery, which loads ``tasks`` modules only, finds it).
It runs on the ``interactive`` queue: a backlog on ``default`` or ``bulk`` is exactly when the
sample matters, and the task takes milliseconds.
"""

from __future__ import annotations

from celery import shared_task

from apps.core.metrics import emit
from apps.delivery.metrics import queue_depths


def sample_queue_depth_now() -> dict[str, int | None]:
    """Emit one ``celery.queue_depth`` gauge sample per queue the broker can count; answers the
    depths (None for a queue that could not be counted: nothing is emitted for it)."""
    depths = queue_depths()
    for queue, depth in depths.items():
        if depth is not None:
            emit("celery.queue_depth", depth, "Count", {"queue": queue})
    return depths


@shared_task(name="apps.monitoring.tasks.sample_queue_depth", queue="interactive", ignore_result=True)
def sample_queue_depth() -> dict[str, int | None]:
    return sample_queue_depth_now()
