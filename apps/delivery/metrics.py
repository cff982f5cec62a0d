"""The delivery pipeline's numbers, as plain functions that monitoring (a later issue) collects and
that the admin and operators can call: work waiting in the broker per queue, deliveries per
status, and, over the last minute, messages sent, failed attempts and the time the send rate
limits held sends back.

The per-minute counts are kept where every process agrees (apps.core.shared: Redis, or the
embedded default's state file), in one bucket per minute that lives three minutes, written once
per recorded batch by the pipeline (``count``); reading never touches the deliveries table for
them. "Last minute" is the previous bucket plus the current one, divided by the time they cover,
so the rate is exact over 60 to 120 seconds and never jumps to zero at a minute's turn.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db.models import Count

from apps.core.metrics import emit
from apps.core.shared import shared_state
from apps.delivery.models import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

BUCKET_SECONDS = 60
BUCKET_TTL = 3 * BUCKET_SECONDS
SENT = "sent"
FAILED = "failed"  # attempts that failed (retried or dead)
DEFERRED = "deferred"  # sends the rate limits held back
WAITED_MS = "waited_ms"  # how long they were held, in all
NAMES = (SENT, FAILED, DEFERRED, WAITED_MS)
UNSENT = [
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.FAILED,
    DeliveryStatus.HELD,
    DeliveryStatus.DEAD,
]


def _key(name: str, bucket: int) -> str:
    return f"metrics:delivery:{name}:{bucket}"


def count(name: str, amount: int | float = 1) -> None:
    """Add to this minute's bucket of ``name`` (one of NAMES). Never raises: a metric is not worth a
    failed send."""
    if not amount:
        return
    try:
        shared_state().incr_sync(_key(name, int(time.time() // BUCKET_SECONDS)), BUCKET_TTL, int(amount))
    except Exception:  # the shared state is down: the send itself goes on
        logger.warning("could not count delivery metric %s", name, exc_info=True)


def attempts(platform: str, outcome: str, amount: int = 1) -> None:
    """Emit ``delivery.attempt`` (1, Count, {platform, outcome: sent, failed or dead}) once per
    delivery attempt recorded, for the monitoring sinks (docs/metrics.md). An append to the metrics
    buffer each: cheap enough for a batch of sends."""
    dimensions = {"platform": platform, "outcome": outcome}
    for _ in range(amount):
        emit("delivery.attempt", 1, "Count", dimensions)


def held(wait_s: float) -> None:
    """A send the rate limits held back for ``wait_s``: counted for the last-minute numbers and
    emitted as ``ratelimit.wait`` (Milliseconds, {scope: delivery}) for the monitoring sinks."""
    count(DEFERRED)
    count(WAITED_MS, wait_s * 1000)
    emit("ratelimit.wait", wait_s * 1000, "Milliseconds", {"scope": "delivery"})


def _last_minute(name: str) -> tuple[int, float]:
    now = time.time()
    bucket = int(now // BUCKET_SECONDS)
    state = shared_state()
    total = sum(state.incr_sync(_key(name, b), BUCKET_TTL, 0) for b in (bucket - 1, bucket))
    covered = BUCKET_SECONDS + (now - bucket * BUCKET_SECONDS)
    return total, covered


@dataclass(frozen=True)
class Recent:
    sent_per_s: float  # messages accepted by the platforms, per second
    failed_per_s: float  # failed attempts per second (a retry or a dead letter each)
    deferred_per_s: float  # sends held back by the rate limits, per second
    mean_limiter_wait_s: float  # how long a held-back send waited, on average
    window_s: float


def recent() -> Recent:
    """Send rate, failure rate and limiter wait over the last minute (all processes)."""
    sent, window = _last_minute(SENT)
    failed, _ = _last_minute(FAILED)
    deferred, _ = _last_minute(DEFERRED)
    waited_ms, _ = _last_minute(WAITED_MS)
    return Recent(
        sent_per_s=sent / window,
        failed_per_s=failed / window,
        deferred_per_s=deferred / window,
        mean_limiter_wait_s=(waited_ms / 1000 / deferred) if deferred else 0.0,
        window_s=window,
    )


def deliveries_by_status() -> dict[str, int]:
    """How many deliveries are waiting, being sent, retrying, held (paused campaigns) and dead,
    everywhere. Sent and cancelled ones are left out (they only grow, and counting them would
    read the whole table)."""
    counts = dict.fromkeys(UNSENT, 0)
    rows = Delivery.objects.filter(status__in=UNSENT).order_by().values("status").annotate(n=Count("id"))
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in the broker on each Celery queue (huntaze/celery.py), or None for a
    queue the broker cannot count. Works on every broker kombu supports here (Redis, RabbitMQ,
    SQS, the embedded default's database transport) through a declaration of the queue with its
    own attributes, which answers its message count. Not a passive one: the Redis transport only
    knows a queue once something declared it, and declaring Celery's own queues is what every
    worker does anyway (``manage.py declare_queues`` too)."""
    from celery import current_app

    depths: dict[str, int | None] = {}
    with current_app.connection_for_read() as connection:
        channel = connection.default_channel
        for name, queue in current_app.amqp.queues.items():
            try:
                depths[name] = queue.bind(channel).queue_declare().message_count
            except Exception:
                logger.warning("could not count the messages on queue %s", name, exc_info=True)
                depths[name] = None
    return depths


def dead_letters() -> int:
    return Delivery.objects.filter(status=DeliveryStatus.DEAD).count()
