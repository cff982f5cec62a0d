"""Background work of the fan CRM and inbox."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

SIMULATED_EVENTS_PER_TICK = 4


@shared_task(queue="bulk", ignore_result=True)
def simulate_fans_tick(events: int = SIMULATED_EVENTS_PER_TICK) -> int:
    """Beat, every ~30 s: a few SIMULATED fan events (messages, subscriptions, purchases) for the
    demo agency, so the ``make run`` inbox is alive. Does nothing unless ``SIMULATE_FANS`` is on;
    answers the number of events produced."""
    if not settings.SIMULATE_FANS:
        return 0
    from apps.messaging.simulation import simulate_demo_tick

    return simulate_demo_tick(events=events)


@shared_task(bind=True, queue="bulk", acks_late=True, reject_on_worker_lost=True, time_limit=900, soft_time_limit=870)
def fan_import_task(self, import_id: int) -> None:
    """Run a large CSV import (apps/messaging/imports.py). The run claims the import with a
    conditional UPDATE (queued → running), so a duplicate task returns at once; the rows are
    written in one transaction, so a worker lost mid-import wrote nothing, and the broker's
    redelivery of its task (acks_late) takes the import over again."""
    from apps.messaging.imports import fan_import_run

    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    fan_import_run(import_id=import_id, reclaim=redelivered)
