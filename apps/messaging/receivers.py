"""What messaging does when the delivery pipeline (a lower layer) moves a message along.

delivery cannot import messaging, so it announces each status change as the
``delivery_status_changed`` signal (apps/delivery/signals.py), sent after the change committed,
in the process that made it (usually a Celery worker). This module, connected in
``MessagingConfig.ready``, reflects the deliveries that carry an inbox message
(``source="messaging.message"``) on that Message through ``services.message_delivery_update``:

| delivery | message |
|---|---|
| sent | sent, with the platform's message id and send time; a previous error is cleared |
| failed (retry scheduled), pending (re-queued) | queued: still on its way |
| dead | failed, with the delivery's last error; the conversation waits again, its PPV not offered |
| sending | unchanged |

A message never goes back: once sent (or delivered, read) a late "failed" or "pending" from an
older attempt is ignored. Deliveries of other sources (campaigns) are not ours and are skipped.
"""

from __future__ import annotations

from django.dispatch import receiver

from apps.delivery.models import Delivery, DeliveryStatus
from apps.delivery.signals import delivery_status_changed
from apps.messaging import services
from apps.messaging.models import Direction, Message, MessageStatus

SOURCE = "messaging.message"
STATUS_MAP = {
    DeliveryStatus.SENT: MessageStatus.SENT,
    DeliveryStatus.FAILED: MessageStatus.QUEUED,
    DeliveryStatus.PENDING: MessageStatus.QUEUED,
    DeliveryStatus.DEAD: MessageStatus.FAILED,
}
ON_THE_PLATFORM = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ}


@receiver(delivery_status_changed, dispatch_uid="messaging.message_delivery_status")
def message_delivery_status(sender, *, delivery_id, agency_id, status, source, source_id, **kwargs) -> None:
    if source != SOURCE or source_id is None or status not in STATUS_MAP:
        return
    current = (
        Message.objects.for_agency(agency_id)
        .filter(pk=source_id, direction=Direction.OUTBOUND)
        .values_list("status", flat=True)
        .first()
    )
    if current is None:
        return
    new_status = STATUS_MAP[status]
    if current in ON_THE_PLATFORM and new_status not in ON_THE_PLATFORM:
        return
    delivery = (
        Delivery.objects.for_agency(agency_id)
        .filter(pk=delivery_id)
        .values("platform_message_id", "sent_at", "last_error")
        .first()
    )
    if delivery is None:
        return
    services.message_delivery_update(
        message_id=source_id,
        status=new_status,
        platform_message_id=delivery["platform_message_id"] or "",
        error=delivery["last_error"] or "",
        at=delivery["sent_at"] if new_status == MessageStatus.SENT else None,
    )
