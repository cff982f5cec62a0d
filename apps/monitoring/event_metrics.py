"""Events → metrics: the event bus's metrics subscriber (registered in MonitoringConfig.ready).

For every event the outbox dispatcher hands to its subscribers (apps/core/outbox.py ``fan_out``)
it emits, through the metrics facade (apps/core/metrics.py ``emit``: an in-process append, no I/O):

- ``events.dispatched`` (Count, dimension ``kind``) — Prometheus ``huntaze_events_dispatched_total{kind}``;
- ``events.dispatch_lag`` (Seconds, dimension ``kind``) — Prometheus histogram
  ``huntaze_events_dispatch_lag_seconds{kind}``: from the event's ``created_at`` (set when it was
  published, inside the publisher's transaction, so it includes the rest of that transaction) to
  this dispatch. A re-dispatched event (a failed send retried, a dead dispatcher's lease expired)
  shows its whole wait, backoff included.

Deliberately not here: no database query (the event's own fields are enough) and no de-duplication.
Delivery is at least once, so an event dispatched twice is counted twice: the counter measures
dispatches, which is what load on the consumers follows; ``outbox_status`` counts events.
"""

from __future__ import annotations

import time

from apps.core.metrics import emit
from apps.core.models import OutboxEvent

DISPATCHED = "events.dispatched"
DISPATCH_LAG = "events.dispatch_lag"


def count_dispatch(event: OutboxEvent) -> None:
    """Count one dispatched event and observe its publish → dispatch lag."""
    dimensions = {"kind": event.kind}
    emit(DISPATCHED, 1, "Count", dimensions)
    if event.created_at is not None:
        emit(DISPATCH_LAG, max(time.time() - event.created_at.timestamp(), 0.0), "Seconds", dimensions)


def connect() -> None:
    from apps.core.events import subscribe

    subscribe("*", count_dispatch)
