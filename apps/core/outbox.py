"""The outbox dispatcher: claim committed events, fan them out, mark them dispatched.

Stages, in order, for one batch:

1. **Claim** up to EVENTS_BATCH_SIZE undispatched events whose lease is free, in id order,
   setting a lease (``claimed_until`` = now + EVENTS_LEASE_SECONDS), a claim token and
   ``attempts + 1``. PostgreSQL: one statement, ``WITH picked AS MATERIALIZED (SELECT id … ORDER
   BY id LIMIT n FOR UPDATE SKIP LOCKED) UPDATE … FROM picked RETURNING …``, so concurrent
   dispatchers skip each other's rows and the batch comes back without a second read. SQLite: in
   one transaction a ``SELECT``, an ``UPDATE … WHERE id IN (those) AND <still claimable>`` (its
   writers are serialised; the repeated condition keeps two claims from taking the same row) and
   a read of the batch.
2. **Fan out** on the channel layer: ONE ``group_send`` per group and batch (``outbox.event`` when
   the batch has one event for the group, else ``outbox.batch`` messages carrying up to
   BATCH_MESSAGE_EVENTS events in id order), all of a batch's sends in flight together, then the
   in-process subscribers (apps/core/events.py ``subscribe``). Without an event loop to borrow
   (Celery workers, commands) the sends run on one loop this process keeps on a daemon thread:
   ``async_to_sync`` would start a thread, a loop and, with Redis, new connections every call.
3. **Mark** the events that went out (``dispatched_at``) in one UPDATE, and record a failure on the
   others (``last_error``, lease pushed back with exponential backoff up to MAX_BACKOFF_SECONDS).

The on-commit kick (``dispatch_published``) skips the claim: it sends the copy the publisher holds,
then marks it with one UPDATE conditional on nobody holding it (one statement per event; a sweep
racing it in the milliseconds after the commit may send it too, which at-least-once allows). That
UPDATE commits without waiting for the disk on PostgreSQL (``unflushed``): it is on
the path of every published event, a flush costs more than the rest of the kick, and a mark lost
in a database crash only sends the event once more.

A dispatcher killed between 1 and 3 leaves its claim to expire; the next sweep claims the events
again, so every event is sent at least once and consumers drop ids they have seen.

Who runs it: ``dispatch_published`` right after the publisher's commit (EVENTS_DISPATCH_ON_COMMIT=inline,
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
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, F, Min, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.core.events import subscribers_for
from apps.core.models import OutboxEvent
from apps.core.shutdown import at_shutdown
from apps.core.statements import statement_cursor

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
SEND_CONCURRENCY = 100  # group sends of a batch in flight at once
BATCH_MESSAGE_EVENTS = 50  # events carried by one ``outbox.batch`` message at most
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


_CLAIM_FIELDS = ("id", "kind", "agency_id", "user_id", "payload", "groups", "attempts", "claim_token", "created_at")

# PostgreSQL: claim and read the batch in one statement. The MATERIALIZED CTE runs once, so the
# UPDATE takes exactly the rows it locked (an ``IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``
# subquery may be run more than once and claim more than n rows).
_PG_CLAIM = """
WITH picked AS MATERIALIZED (
    SELECT id FROM core_outboxevent
    WHERE dispatched_at IS NULL AND (claimed_until IS NULL OR claimed_until < %(now)s) {only_ids}
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
UPDATE core_outboxevent AS o
SET claimed_until = %(until)s, claim_token = %(token)s, attempts = o.attempts + 1
FROM picked WHERE o.id = picked.id
RETURNING o.id, o.kind, o.agency_id, o.user_id, o.payload, o.groups, o.attempts, o.created_at
"""


# PostgreSQL: a condition that is always true and sets synchronous_commit off for the rest of the
# transaction of the statement that evaluates it (no extra round trip, unlike ``SET LOCAL``).
NO_FLUSH_CONDITION = "set_config('synchronous_commit', 'off', true) = 'off'"
NO_FLUSH_SQL = f" AND {NO_FLUSH_CONDITION}"  # the condition, for SQL written out
_NO_FLUSH = RawSQL(NO_FLUSH_CONDITION, [], output_field=BooleanField())  # noqa: S611 (a constant)


def unflushed(queryset: QuerySet) -> QuerySet:
    """``queryset`` made so that, on PostgreSQL, the transaction of the UPDATE it runs commits
    without waiting for the WAL to reach the disk. The change is visible to every other connection
    at once and survives any client process dying; only a crash of the database server (or its
    machine) within a fraction of a second (three wal_writer_delay at most) can lose it. Only for
    writes whose loss in that crash repeats work: marking an event dispatched (it is sent again),
    an idempotent workflow step's claim and result (the step runs again). Only for a statement
    that is its own transaction (autocommit) or in a transaction its caller opened: the setting
    lasts until that transaction's end. SQLite needs nothing (WAL with synchronous=NORMAL never
    waits for the disk on commit)."""
    return queryset.filter(_NO_FLUSH) if connection.vendor == "postgresql" else queryset


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _claim_postgresql(*, now, until, token: str, limit: int, ids: list[int] | None) -> list[OutboxEvent]:
    params = {"now": now, "until": until, "token": token, "limit": limit, "ids": ids}
    sql = _PG_CLAIM.format(only_ids="AND id = ANY(%(ids)s)" if ids is not None else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    claimed = [
        OutboxEvent(
            id=pk, kind=kind, agency_id=agency_id, user_id=user_id, payload=_json(payload),
            groups=_json(groups), attempts=attempts, claim_token=token, created_at=created_at,
        )
        for pk, kind, agency_id, user_id, payload, groups, attempts, created_at in rows
    ]  # fmt: skip
    claimed.sort(key=lambda event: event.pk)
    return claimed


def claim(*, limit: int | None = None, ids: Iterable[int] | None = None) -> list[OutboxEvent]:
    """Take a lease on up to ``limit`` claimable events (only among ``ids`` when given)."""
    limit = limit or settings.EVENTS_BATCH_SIZE
    now = timezone.now()
    until = now + timedelta(seconds=settings.EVENTS_LEASE_SECONDS)
    token = uuid.uuid4().hex
    ids = None if ids is None else list(ids)
    if connection.vendor == "postgresql":
        return _claim_postgresql(now=now, until=until, token=token, limit=limit, ids=ids)
    candidates = _claimable(now)
    if ids is not None:
        candidates = candidates.filter(pk__in=ids)
    with transaction.atomic():
        # Two statements: the lock clause is for other backends with row locks; SQLite's
        # IMMEDIATE transactions serialise writers and the repeated condition does the rest.
        locked = candidates.select_for_update(skip_locked=True).order_by("id")
        chosen = list(locked.values_list("id", flat=True)[:limit])
        if not chosen:
            return []
        count = (
            _claimable(now)
            .filter(pk__in=chosen)
            .update(claimed_until=until, claim_token=token, attempts=F("attempts") + 1)
        )
    if not count:
        return []
    # Only what the fan-out needs: the timestamps' conversion costs a third of a batch's read. By id
    # as well as token: claim_token has no index, and the table holds every event of the retention.
    return list(OutboxEvent.objects.filter(pk__in=chosen, claim_token=token).order_by("id").only(*_CLAIM_FIELDS))


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


def group_messages(events: list[OutboxEvent]) -> list[tuple[str, dict]]:
    """The channel-layer messages for a batch: (group, message) pairs, ONE message per group
    where the batch has one event for it (``outbox.event``), else ``outbox.batch`` messages of up
    to BATCH_MESSAGE_EVENTS events each, in id order (``{"type": "outbox.batch", "events":
    [<outbox.event message>, …]}``; a consumer's ``outbox_batch`` handles them one by one)."""
    per_group: dict[str, list[dict]] = {}
    for event in events:
        message = group_message(event)
        for group in event.groups:
            per_group.setdefault(group, []).append(message)
    sends: list[tuple[str, dict]] = []
    for group, messages in per_group.items():
        if len(messages) == 1:
            sends.append((group, messages[0]))
            continue
        for start in range(0, len(messages), BATCH_MESSAGE_EVENTS):
            sends.append((group, {"type": "outbox.batch", "events": messages[start : start + BATCH_MESSAGE_EVENTS]}))
    return sends


def _event_ids(message: dict) -> list[int]:
    return [item["id"] for item in message["events"]] if message["type"] == "outbox.batch" else [message["id"]]


async def _send_to_groups(layer, events: list[OutboxEvent]) -> dict[int, str]:
    """Send every event to its groups; answers the error of each event whose send failed."""
    errors: dict[int, str] = {}
    sends = group_messages(events)
    for start in range(0, len(sends), SEND_CONCURRENCY):
        chunk = sends[start : start + SEND_CONCURRENCY]
        results = await asyncio.gather(
            *(layer.group_send(group, message) for group, message in chunk), return_exceptions=True
        )
        for (group, message), result in zip(chunk, results, strict=True):
            if isinstance(result, BaseException):
                for event_id in _event_ids(message):
                    errors.setdefault(event_id, f"group {group}: {type(result).__name__}: {result}")
    return errors


_own_loop: tuple[int, asyncio.AbstractEventLoop] | None = None
_own_loop_lock = threading.Lock()


def _dispatcher_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for group sends made outside any event loop (Celery workers,
    commands): one loop on a daemon thread, kept, so the Redis layer's connections (one pool per
    loop) are reused instead of a new thread, loop and connection per call (``async_to_sync``)."""
    global _own_loop
    with _own_loop_lock:
        if _own_loop is None or _own_loop[0] != os.getpid() or _own_loop[1].is_closed():  # new after a fork
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="outbox-dispatch", daemon=True).start()
            _own_loop = (os.getpid(), loop)
        return _own_loop[1]


def _run_sends(layer, events: list[OutboxEvent]) -> dict[int, str]:
    outer = None
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid():
        outer = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if outer is not None and outer.is_running():
        # Sync code an event loop handed to a thread (daphne, sync_to_async): send on that loop
        # (async_to_sync does), which the in-memory layer's queues belong to.
        return async_to_sync(_send_to_groups)(layer, events)
    return asyncio.run_coroutine_threadsafe(_send_to_groups(layer, events), _dispatcher_loop()).result()


def fan_out(events: list[OutboxEvent]) -> dict[int, str]:
    """Send claimed events to their groups and subscribers; answers {event id: error} of failures."""
    errors: dict[int, str] = {}
    layer = get_channel_layer()
    if layer is not None and any(event.groups for event in events):
        try:
            errors.update(_run_sends(layer, events))
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
    _pause_after_claim(len(events))
    return _finish(events, fan_out(events))


def _pause_after_claim(count: int) -> None:
    pause = float(os.environ.get(PAUSE_AFTER_CLAIM_ENV) or 0)
    if pause:
        logger.warning("outbox: claimed %d events, pausing %.1f s (%s)", count, pause, PAUSE_AFTER_CLAIM_ENV)
        time.sleep(pause)


def dispatch_ids(ids: list[int]) -> DispatchReport:
    """Dispatch these committed events now, in this process, if nobody holds them."""
    return dispatch_batch(ids=ids, limit=len(ids))


def dispatch_published(event: OutboxEvent) -> DispatchReport:
    """The on-commit kick: dispatch one just-committed event from the publisher's own copy, then
    record the outcome with ONE conditional UPDATE (no lease first, no read back).

    The UPDATE only touches the event while nobody else holds it (not dispatched, no live lease):
    a sweep that claimed it in the few milliseconds since the commit keeps it, marks it itself, and
    the event has gone out twice, which at-least-once delivery allows (consumers drop repeated ids).
    A failed send leaves it to the sweep after a backoff, as a failed batch does."""
    return dispatch_copies([event])


# The mark of ``dispatch_copies``, on every published event's path: written out, because building
# the same UPDATE as a queryset cost three times its round trip (bench/workflow_steps.py). Only
# while nobody holds the event (``_claimable``).
_MARK_SENT = f"""
UPDATE {OutboxEvent._meta.db_table} SET dispatched_at = %s, attempts = attempts + 1, claimed_until = NULL,
    last_error = ''
WHERE id {{ids}} AND dispatched_at IS NULL AND (claimed_until IS NULL OR claimed_until < %s){{no_flush}}
"""  # noqa: S608 (the table name from the model)


def dispatch_copies(events: list[OutboxEvent]) -> DispatchReport:
    """``dispatch_published`` for several committed events at once (in id order): one fan-out,
    one UPDATE marking those sent, one per failure."""
    _pause_after_claim(len(events))
    errors = fan_out(events)
    now = timezone.now()
    for event in events:
        if event.pk in errors:
            backoff = min(MAX_BACKOFF_SECONDS, 2 ** min(event.attempts + 1, 9))
            _claimable(now).filter(pk=event.pk).update(
                attempts=F("attempts") + 1,
                claimed_until=now + timedelta(seconds=backoff),
                last_error=errors[event.pk][:2000],
            )
    sent = [event.pk for event in events if event.pk not in errors]
    report = DispatchReport(claimed=len(events), failed=len(errors), errors=list(errors.values()))
    if not sent:
        return report
    postgresql = connection.vendor == "postgresql"
    # Its own transaction: a mark lost in a database crash means one more send.
    no_flush = postgresql and not connection.in_atomic_block
    # PostgreSQL: one array parameter, so one prepared statement serves batches of every size.
    ids = "= ANY(%s::bigint[])" if postgresql else f"IN ({', '.join(['%s'] * len(sent))})"
    sql = _MARK_SENT.format(ids=ids, no_flush=NO_FLUSH_SQL if no_flush else "")
    when = connection.ops.adapt_datetimefield_value(now)
    with statement_cursor() as cursor:
        cursor.execute(sql, [when, *([sent] if postgresql else sent), when])
        report.dispatched = cursor.rowcount
    if report.dispatched == len(sent):  # else a sweep holds some of them: it marks those
        report.dispatched_ids = sent
    return report


# --- Handing events to a thread of the process (Celery workers) ------------------------------

HANDOFF_LIMIT = 10_000  # events waiting for the thread at most; past it the publisher sends itself
HANDOFF_IDLE_SECONDS = 30.0  # the thread's database connection is closed after this long idle
HANDOFF_DRAIN_SECONDS = 5.0  # a clean stop waits this long at most for the thread to send what it holds
# While events keep coming, a batch goes out at most this long after the previous one, so that
# those arriving meanwhile share its sends (one per group) and its dispatched mark. An event after
# a quiet spell goes out at once.
HANDOFF_LINGER_SECONDS = 0.02


class _Handoff:
    """A worker process's dispatch thread: ``dispatch_published`` of what the process's tasks
    commit, moved off the task's path (a workflow step, a delivery) onto one daemon thread that
    sends them in the order they were handed over (commit order, for one task thread's events),
    as many at a time as have queued up (``dispatch_copies``).

    Only in Celery worker processes (``hand_off_in_this_process``, called by huntaze/celery.py at
    worker start): a web process keeps dispatching inline, because the embedded default's
    in-memory layer reaches its websockets only from the loop that owns them. A clean stop waits
    up to HANDOFF_DRAIN_SECONDS for what was handed over (``drain``, at shutdown); an event the
    thread had not sent when the process died is still undispatched in the table: the sweep
    sends it."""

    def __init__(self) -> None:
        self.enabled = False
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked child starts its own thread

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[OutboxEvent] = deque()
        self._busy = False  # a batch taken from the queue is being sent
        self._thread: threading.Thread | None = None
        self._last_batch = 0.0  # time.monotonic() when the previous batch was taken

    def put(self, event: OutboxEvent) -> bool:
        """Queue ``event`` for the thread; False when handing off is off or the queue is full
        (the caller dispatches it itself)."""
        if not self.enabled:
            return False
        with self._cond:
            if len(self._queue) >= HANDOFF_LIMIT:
                return False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="outbox-handoff", daemon=True)
                self._thread.start()
            self._queue.append(event)
            self._cond.notify_all()  # the thread, and a ``drain`` waiting on the same condition
        return True

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the thread has sent everything handed to it (at most ``timeout``, default
        HANDOFF_DRAIN_SECONDS); True when nothing is left. For a clean stop of the process."""
        deadline = time.monotonic() + (HANDOFF_DRAIN_SECONDS if timeout is None else timeout)
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    logger.warning("outbox: %d handed-off events left unsent at shutdown; the sweep will send them",
                                   len(self._queue))  # fmt: skip
                    return False
                self._cond.wait(left)
        return True

    def _take(self) -> tuple[list[OutboxEvent], bool]:
        """The next batch, and whether the thread sat idle for a while before it."""
        started = time.monotonic()
        while True:
            with self._cond:
                if self._queue:
                    # Events keep coming: let more join this batch, up to the linger or a full batch.
                    due = self._last_batch + HANDOFF_LINGER_SECONDS
                    while len(self._queue) < settings.EVENTS_BATCH_SIZE and (left := due - time.monotonic()) > 0:
                        self._cond.wait(left)
                    count = min(len(self._queue), settings.EVENTS_BATCH_SIZE)
                    self._busy = True
                    self._last_batch = time.monotonic()
                    return [self._queue.popleft() for _ in range(count)], self._last_batch - started >= 1.0
                idle = not self._cond.wait(HANDOFF_IDLE_SECONDS) and not self._queue
            if idle:  # outside the lock: a task handing over an event never waits for it
                with contextlib.suppress(Exception):
                    connection.close()  # this thread's own connection: none kept while idle

    def _loop(self) -> None:
        from django.db import close_old_connections

        while True:
            events, rested = self._take()
            try:
                if rested:  # as at a request's start: drop a connection too old or broken
                    close_old_connections()
                dispatch_copies(events)
            except Exception:
                logger.warning("%d events: dispatch on the hand-off thread failed; the sweep will retry them",
                               len(events), exc_info=True)  # fmt: skip
                with contextlib.suppress(Exception):
                    close_old_connections()  # a broken connection is replaced for the next batch
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


_handoff = _Handoff()
at_shutdown(_handoff.drain)


def hand_off_in_this_process() -> None:
    """From now on this process's committed events are dispatched on its hand-off thread."""
    _handoff.enabled = True


def hand_off(event: OutboxEvent) -> bool:
    """Give a committed event to this process's hand-off thread; False (dispatch it yourself)
    when this process does not hand off or the thread is too far behind."""
    return _handoff.put(event)


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


def outbox_failing(*, agency_id: int):
    """One agency's undispatched events that failed at least once, oldest first: what the outbox
    page of the API lists with each one's error and next attempt."""
    return OutboxEvent.objects.filter(agency_id=agency_id, dispatched_at__isnull=True).exclude(last_error="")


def outbox_retry_now(*, agency_id: int, event_id: int) -> OutboxEvent | None:
    """Make one of the agency's failing events due now instead of after its backoff (the sweep
    sends it on its next pass). ``None`` when the agency has no such undispatched event. A backoff
    and a dispatcher's lease look alike (both ``claimed_until``), so an event being sent at that
    very moment may be sent twice: delivery is at-least-once and consumers are idempotent on the
    event id, as after any lost lease."""
    due = outbox_failing(agency_id=agency_id).filter(pk=event_id)
    if not due.update(claimed_until=timezone.now()):
        return None
    return due.first()
