"""Events of delivery that higher layers act on without delivery importing them.

``delivery_status_changed``: a delivery moved to another status. Sent after the transaction that
changed it has committed (never for a change that was rolled back), with ``sender=Delivery`` and
the keyword arguments ``delivery_id``, ``agency_id``, ``status`` (the new one: sending, sent,
failed, dead, or pending after a re-queue: held when its source is paused), ``source`` and
``source_id`` (what the enqueuing app passed, e.g. ``"messaging.message"`` and its Message id).
Receivers run in the process that made the change (usually a Celery worker) and are isolated from
each other: one that raises is logged and does not stop the others or the send. docs/delivery.md
describes it.
"""

from django.dispatch import Signal

delivery_status_changed = Signal()
