"""The outbox dispatcher: claim committed events, fan them out, mark them dispatched.

Stages, in order, for one batch:

1. **Claim** up to EVENTS_BATCH_SIZE undispatched events whose lease is free, in id order, in one
   transaction: ``SELECT id … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED``, then ``UPDATE … WHERE
   id IN (those) AND <still claimable>`` setting a lease (``claimed_until`` = now +
   EVENTS_LEASE_SECONDS), a claim token and ``attempts + 1``. On PostgreSQL concurrent
   dispatchers skip each other's rows; SQLite ignores the lock clause, its IMMEDIATE transactions
   serialise writers, and the repeated condition keeps two claims from taking the same row.
2. **Fan out** on the channel layer: every event to each of its groups (``group_send``, one event
   loop hop per batch, sends of a batch in flight together), then to the in-process subscribers
   (apps/core/events.py ``subscribe``).
3. **Mark** the events that went out (``dispatched_at``) in one UPDATE, and record a failure on the
   others (``last_error``, lease pushed back with exponential backoff up to MAX_BACKOFF_SECONDS).

A dispatcher killed between 1 and 3 leaves its claim to expire; the next sweep claims the events
again, so every event is sent at least once and consumers drop ids they have seen.

Who runs it: ``dispatch_ids`` right after the publisher's commit (EVENTS_DISPATCH_ON_COMMIT=inline,
the default: the process that holds the websockets of the embedded default's in-memory layer),
or the ``dispatch_events`` Celery task enqueued on commit (``worker``); and in every mode beat's
``dispatch-events`` sweep every EVENTS_SWEEP_SECONDS in the worker, which picks up whatever a
dead or failed dispatcher left. ``purge_dispatched`` keeps EVENTS_RETENTION_DAYS of history.

Hand-written rather than a library: the outbox libraries for Django either need a broker of
their own or dispatch to Celery only; this one needs Channels groups and the SSE stream's
reading of the same table.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from apps.core.events import subscribers_for
from apps.core.models import OutboxEvent

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
SEND_CONCURRENCY = 100  # group sends of a batch in flight at once
# Test hook: seconds a dispatcher sleeps between claiming a batch and fanning it out, so a test can
# kill it there (tests/events/test_dispatcher_crash.py). Read from the environment, never set in
# production.
PAUSE_AFTER_CLAIM_ENV = "HUNTAZE_OUTBOX_PAUSE_AFTER_CLAIM"


@dataclass
class DispatchReport:
    claimed: int = 0
    dispatched: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    dispatched_ids: list[int] = field(default_factory=list)

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.dispatched += other.dispatched
        self.failed += other.failed
        self.errors.extend(other.errors)
        self.dispatched_ids.extend(other.dispatched_ids)


def _claimable(now):
    return OutboxEvent.objects.filter(dispatched_at__isnull=True).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def claim(*, limit: int | None = None, ids: Iterable[int] | None = None) -> list[OutboxEvent]:
    """Take a lease on up to ``limit`` claimable events (only among ``ids`` when given)."""
    limit = limit or settings.EVENTS_BATCH_SIZE
    now = timezone.now()
    token = uuid.uuid4().hex
    candidates = _claimable(now)
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    with transaction.atomic():
        # Two statements: PostgreSQL may run an ``IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``
        # subquery more than once in one UPDATE and so claim more than n rows.
        locked = candidates.select_for_update(skip_locked=True).order_by("id")
        chosen = list(locked.values_list("id", flat=True)[:limit])
        if not chosen:
            return []
        count = (
            _claimable(now)
            .filter(pk__in=chosen)
            .update(
                claimed_until=now + timedelta(seconds=settings.EVENTS_LEASE_SECONDS),
                claim_token=token,
                attempts=F("attempts") + 1,
            )
        )
    if not count:
        return []
    # Only what the fan-out needs: the timestamps' conversion costs a third of a batch's read.
    fields = ("id", "kind", "agency_id", "user_id", "payload", "groups", "attempts", "claim_token", "created_at")
    return list(OutboxEvent.objects.filter(claim_token=token).order_by("id").only(*fields))


def group_message(event: OutboxEvent) -> dict:
    """What a websocket consumer's ``outbox_event`` handler receives."""
    return {
        "type": "outbox.event",
        "id": event.pk,
        "kind": event.kind,
        "agency_id": event.agency_id,
        "user_id": event.user_id,
        "payload": event.payload,
    }


async def _send_to_groups(layer, events: list[OutboxEvent]) -> dict[int, str]:
    """Send every event to its groups; answers the error of each event whose send failed."""
    errors: dict[int, str] = {}
    sends = [(event, group) for event in events for group in event.groups]
    for start in range(0, len(sends), SEND_CONCURRENCY):
        chunk = sends[start : start + SEND_CONCURRENCY]
        results = await asyncio.gather(
            *(layer.group_send(group, group_message(event)) for event, group in chunk), return_exceptions=True
        )
        for (event, group), result in zip(chunk, results, strict=True):
            if isinstance(result, BaseException):
                errors.setdefault(event.pk, f"group {group}: {type(result).__name__}: {result}")
    return errors


def fan_out(events: list[OutboxEvent]) -> dict[int, str]:
    """Send claimed events to their groups and subscribers; answers {event id: error} of failures."""
    errors: dict[int, str] = {}
    layer = get_channel_layer()
    if layer is not None and any(event.groups for event in events):
        try:
            errors.update(async_to_sync(_send_to_groups)(layer, events))
        except Exception as exc:  # the layer itself is down: the whole batch is retried
            return {event.pk: f"channel layer: {type(exc).__name__}: {exc}" for event in events}
    for event in events:
        if event.pk in errors:
            continue
        for handler in subscribers_for(event.kind):
            try:
                handler(event)
            except Exception as exc:
                logger.warning("event %s (%s): subscriber %r failed", event.pk, event.kind, handler, exc_info=True)
                name = getattr(handler, "__qualname__", repr(handler))
                errors[event.pk] = f"subscriber {name}: {type(exc).__name__}: {exc}"
                break
    return errors


def _finish(events: list[OutboxEvent], errors: dict[int, str]) -> DispatchReport:
    now = timezone.now()
    done = [event.pk for event in events if event.pk not in errors]
    if done:
        OutboxEvent.objects.filter(pk__in=done, claim_token=events[0].claim_token).update(
            dispatched_at=now, claimed_until=None, last_error=""
        )
    for event in events:
        if event.pk in errors:
            backoff = min(MAX_BACKOFF_SECONDS, 2 ** min(event.attempts, 9))
            OutboxEvent.objects.filter(pk=event.pk, claim_token=event.claim_token).update(
                claimed_until=now + timedelta(seconds=backoff), last_error=errors[event.pk][:2000]
            )
    return DispatchReport(
        claimed=len(events),
        dispatched=len(done),
        failed=len(errors),
        errors=list(errors.values()),
        dispatched_ids=done,
    )


def dispatch_batch(*, limit: int | None = None, ids: Iterable[int] | None = None) -> DispatchReport:
    """Claim one batch, fan it out, mark it. Answers what happened."""
    events = claim(limit=limit, ids=ids)
    if not events:
        return DispatchReport()
    pause = float(os.environ.get(PAUSE_AFTER_CLAIM_ENV) or 0)
    if pause:
        logger.warning("outbox: claimed %d events, pausing %.1f s (%s)", len(events), pause, PAUSE_AFTER_CLAIM_ENV)
        time.sleep(pause)
    return _finish(events, fan_out(events))


def dispatch_ids(ids: list[int]) -> DispatchReport:
    """Dispatch these just-committed events now, in this process (the on-commit kick)."""
    return dispatch_batch(ids=ids, limit=len(ids))


def dispatch_pending(*, max_batches: int = 100) -> DispatchReport:
    """Dispatch claimable events batch after batch until none is left (or ``max_batches``)."""
    report = DispatchReport()
    for _ in range(max_batches):
        batch = dispatch_batch()
        report.add(batch)
        if batch.claimed < settings.EVENTS_BATCH_SIZE:
            break
    return report


def purge_dispatched(*, days: int | None = None) -> int:
    """Delete events dispatched more than ``days`` (EVENTS_RETENTION_DAYS) ago; answers how many."""
    days = settings.EVENTS_RETENTION_DAYS if days is None else days
    deleted, _ = OutboxEvent.objects.filter(dispatched_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted


@dataclass
class OutboxStatus:
    pending: int
    failing: int
    oldest_pending_at: object
    lag_seconds: float


def outbox_status(*, agency_id: int | None = None, all_agencies: bool = False) -> OutboxStatus:
    """Undispatched events, those that failed at least once, and the age of the oldest one.

    One agency's events unless ``all_agencies`` (the admin's view of the whole table)."""
    pending = OutboxEvent.objects.filter(dispatched_at__isnull=True)
    if not all_agencies:
        pending = pending.filter(agency_id=agency_id)
    totals = pending.aggregate(oldest=Min("created_at"))
    count = pending.count()
    failing = pending.exclude(last_error="").count()
    oldest = totals["oldest"]
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return OutboxStatus(pending=count, failing=failing, oldest_pending_at=oldest, lag_seconds=round(lag, 3))
