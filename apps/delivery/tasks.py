"""Celery tasks of delivery: the send task, the account pump and the sweeper. All are thin:
services.py decides.

``deliver`` is published by ``delivery_enqueue`` on the delivery's queue (``interactive`` for an
inbox reply) and by itself, with a countdown, for a retry. ``pump_deliveries`` is published by
``delivery_enqueue_many`` (a mass send), by itself and by the sweeper, once per platform account.
Both are idempotent (claims are conditional UPDATEs and the connector sends by idempotency key),
so they are acknowledged late and given back to the broker when their worker dies. Their time
limits stay below the claim's lease, so a live worker never loses its deliveries to the sweeper.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

# Both send tasks: acknowledged after they ran and given back when their worker dies (they are
# idempotent), with time limits below the claim's lease.
SENDING = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "soft_time_limit": max(1, settings.DELIVERY_LEASE_SECONDS // 2 - 5),
    "time_limit": max(2, settings.DELIVERY_LEASE_SECONDS // 2),
}


@shared_task(queue="interactive", **SENDING)
def deliver(delivery_id: int) -> str:
    """One send attempt of a delivery; "skipped" when another worker has it or it is done."""
    from apps.delivery.services import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task(queue="bulk", **SENDING)
def pump_deliveries(creator_id: int, platform: str) -> dict[str, int]:
    """Send one platform account's due bulk deliveries at its pace (services.delivery_pump)."""
    from apps.delivery.services import delivery_pump

    return delivery_pump(creator_id=creator_id, platform=platform)


@shared_task(queue="default")
def sweep_deliveries() -> dict[str, int]:
    """Beat's rescue pass (CELERY_BEAT_SCHEDULE): expired leases and deliveries whose task was lost."""
    from apps.delivery.services import delivery_sweep

    return delivery_sweep()
