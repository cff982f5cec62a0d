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
