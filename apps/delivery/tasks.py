"""Celery tasks of delivery: the send task and the sweeper. Both are thin: services.py decides.

``deliver`` is published by ``delivery_enqueue`` on the delivery's queue (``interactive`` for an
inbox reply, ``bulk`` for a campaign) and by itself, with a countdown, for a retry. It is
idempotent (the claim is a conditional UPDATE and the connector sends by idempotency key), so it
is acknowledged late and given back to the broker when its worker dies. Its time limits stay
below the claim's lease, so a live worker never loses its delivery to the sweeper.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(
    queue="interactive",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=max(1, settings.DELIVERY_LEASE_SECONDS // 2 - 5),
    time_limit=max(2, settings.DELIVERY_LEASE_SECONDS // 2),
)
def deliver(delivery_id: int) -> str:
    """One send attempt of a delivery; "skipped" when another worker has it or it is done."""
    from apps.delivery.services import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task(
    queue="bulk",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=max(1, settings.DELIVERY_LEASE_SECONDS // 2 - 5),
    time_limit=max(2, settings.DELIVERY_LEASE_SECONDS // 2),
)
def pump_deliveries(creator_id: int, platform: str) -> dict[str, int]:
    """Send one platform account's due bulk deliveries at its pace (services.delivery_pump)."""
    from apps.delivery.services import delivery_pump

    return delivery_pump(creator_id=creator_id, platform=platform)


@shared_task(queue="default")
def sweep_deliveries() -> dict[str, int]:
    """Beat's rescue pass (CELERY_BEAT_SCHEDULE): expired leases and deliveries whose task was lost."""
    from apps.delivery.services import delivery_sweep

    return delivery_sweep()
