"""The event bus: publish a domain event once, in the caller's transaction; consumers receive it after commit.

``publish()`` writes an ``OutboxEvent`` row (apps/core/models.py) in the same database
transaction as the change it announces, so an event exists exactly when its change does, and
asks for a dispatch once the transaction commits. The dispatcher (apps/core/outbox.py) then
sends it to its Channels groups (websocket pages) and to the in-process subscribers registered
with ``subscribe()`` (webhooks, metrics: higher layers register from their ``AppConfig.ready``;
core never imports them). The SSE stream (``/api/v1/events/stream``) reads the outbox itself.

Delivery is at least once: a consumer may see an event twice (a dispatcher that died after the
fan-out but before marking it) and must ignore an event id it has already handled.

Not here: workflow definitions and runs (apps/workflows), what each consumer does with an event.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q

from apps.core.models import OutboxEvent
from apps.core.statements import statement_cursor

logger = logging.getLogger(__name__)

Handler = Callable[[OutboxEvent], None]

# Kinds are dotted lower-case names: "<area>.<what happened>", e.g. "notification.created".
KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
PREFIX = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.$")
# Channels accepts ASCII letters, digits, hyphens, underscores and periods, under 100 characters.
GROUP = re.compile(r"^[A-Za-z0-9._-]{1,99}$")
MAX_PAYLOAD_BYTES = 64 * 1024


class EventError(ValueError):
    """A publish call the bus refuses: a bad kind, group, key or a payload that is not JSON."""


@dataclass(frozen=True)
class Subscription:
    prefix: str
    handler: Handler

    def matches(self, kind: str) -> bool:
        return kind == self.prefix or (self.prefix.endswith(".") and kind.startswith(self.prefix)) or self.prefix == "*"


_subscriptions: list[Subscription] = []


def subscribe(kind_or_prefix: str, handler: Handler) -> None:
    """Call ``handler(event)`` in the dispatcher for every event of a kind ("campaign.progress"),
    of every kind under a prefix ending with a dot ("campaign."), or of every kind ("*").

    Register from ``AppConfig.ready`` so every process (web, worker) has the same subscribers.
    The handler runs after commit, outside the publisher's transaction; an exception marks the
    event failed and it is dispatched again later (to every consumer), so handlers must be
    idempotent by ``event.id``. Registering the same handler twice for a prefix has no effect.
    """
    if kind_or_prefix != "*" and not (KIND.match(kind_or_prefix) or PREFIX.match(kind_or_prefix)):
        raise EventError(
            f"Subscribe to a kind like 'campaign.progress', a prefix like 'campaign.', or '*'; got {kind_or_prefix!r}."
        )
    subscription = Subscription(kind_or_prefix, handler)
    if subscription not in _subscriptions:
        _subscriptions.append(subscription)


def unsubscribe(kind_or_prefix: str, handler: Handler) -> None:
    subscription = Subscription(kind_or_prefix, handler)
    if subscription in _subscriptions:
        _subscriptions.remove(subscription)


def subscribers_for(kind: str) -> list[Handler]:
    return [subscription.handler for subscription in _subscriptions if subscription.matches(kind)]


def agency_group(agency_id: int) -> str:
    """The Channels group that receives every event of one agency."""
    return f"events.agency.{agency_id}"


def _validated_payload(payload: dict) -> dict:
    if not isinstance(payload, dict):
        raise EventError("An event payload must be a JSON object (a dict).")
    try:
        encoded = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EventError(f"An event payload must be JSON: {exc}") from exc
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        raise EventError(
            f"An event payload must be at most {MAX_PAYLOAD_BYTES} bytes of JSON; send ids, not documents."
        )
    return json.loads(encoded)  # what consumers will read back: tuples became lists, keys strings


def publish(
    kind: str,
    *,
    agency_id: int | None,
    payload: dict,
    groups: Sequence[str] = (),
    key: str | None = None,
    user_id: int | None = None,
) -> OutboxEvent:
    """Record an event in the caller's transaction and dispatch it once that commits.

    ``agency_id`` scopes it (the agency's SSE stream shows it; None: a platform event no stream
    shows); ``user_id`` narrows it to one member. ``groups`` are the Channels groups whose
    websocket consumers receive ``{"type": "outbox.event", "id", "kind", "agency_id", "user_id",
    "payload"}``. ``key`` makes publishing idempotent: a second publish of the same kind and key
    answers the first event and writes nothing. Raises ``EventError`` on a bad argument. A
    rolled-back transaction takes its events with it; nothing is sent for them.
    """
    if not isinstance(kind, str) or len(kind) > 100 or not KIND.match(kind):
        raise EventError(f"An event kind is a dotted lower-case name like 'campaign.progress'; got {kind!r}.")
    if isinstance(groups, str):
        raise EventError("groups is a list of group names, not one string.")
    groups = list(groups)
    bad = [group for group in groups if not isinstance(group, str) or not GROUP.match(group)]
    if bad:
        raise EventError(
            f"Channels group names are letters, digits, '.', '-' and '_' under 100 characters; got {bad!r}."
        )
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        raise EventError("An event key is a string of 1 to 200 characters.")
    for name, value in (("agency_id", agency_id), ("user_id", user_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise EventError(f"{name} must be an integer or None.")
    data = _validated_payload(payload)
    fields = {"agency_id": agency_id, "user_id": user_id, "payload": data, "groups": groups}
    event = _insert(OutboxEvent(kind=kind, key=key, **fields))
    if event.pk is None:  # an event of this kind and key is there already (one statement, no savepoint)
        return OutboxEvent.objects.get(kind=kind, key=key)
    transaction.on_commit(lambda: _kick(event))
    return event


# An event's INSERT, on the path of everything that publishes (a workflow step publishes one per
# step): the statement is built once per connection vendor from the model's fields, which spares the
# queryset machinery that cost several times the round trip (bench/workflow_steps.py). Each value
# goes through its field as ``Model.save`` would put it (``pre_save``, ``get_db_prep_save``).
#
# A keyed event's INSERT does nothing when its kind and key are taken (the partial unique index
# ``core_outbox_one_per_key``; PostgreSQL and SQLite 3.24+ name it by its columns and predicate), so
# publishing it once is one statement: no read first, no savepoint around an IntegrityError.
_INSERT_FIELDS = [field for field in OutboxEvent._meta.concrete_fields if not field.primary_key]
_insert_sql: dict[tuple[str, bool], str] = {}  # per database vendor, keyed or not


def _insert_statement(keyed: bool) -> str:
    sql = _insert_sql.get((connection.vendor, keyed))
    if sql is None:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in _INSERT_FIELDS)
        values = ", ".join(["%s"] * len(_INSERT_FIELDS))
        on_conflict = (
            f" ON CONFLICT ({quote('kind')}, {quote('key')}) WHERE {quote('key')} IS NOT NULL DO NOTHING"
            if keyed
            else ""
        )
        returning = " RETURNING id" if connection.features.can_return_columns_from_insert else ""
        sql = f"INSERT INTO {quote(OutboxEvent._meta.db_table)} ({columns}) VALUES ({values}){on_conflict}{returning}"  # noqa: S608
        _insert_sql[(connection.vendor, keyed)] = sql
    return sql


def _insert(event: OutboxEvent) -> OutboxEvent:
    """Write ``event``; its ``pk`` stays None when it has a key another event of its kind holds."""
    keyed = event.key is not None
    params = [field.get_db_prep_save(field.pre_save(event, True), connection) for field in _INSERT_FIELDS]
    with statement_cursor() as cursor:
        cursor.execute(_insert_statement(keyed), params)
        if connection.features.can_return_columns_from_insert:
            row = cursor.fetchone()
            event.pk = row[0] if row else None
        else:
            event.pk = cursor.lastrowid if cursor.rowcount else None
    if event.pk is None:
        return event
    event._state.adding = False
    event._state.db = connection.alias
    return event


def _kick(event: OutboxEvent) -> None:
    """Start the dispatch of a committed event as EVENTS_DISPATCH_ON_COMMIT says. Never raises:
    the commit has happened, and the periodic sweep dispatches whatever a kick could not.
    ``inline`` sends this process's own copy of the event (no read back)."""
    mode = settings.EVENTS_DISPATCH_ON_COMMIT
    event_id = event.pk
    try:
        if mode == "inline":
            from apps.core.outbox import dispatch_published, hand_off

            if not hand_off(event):  # a Celery worker sends it on a thread of its own
                dispatch_published(event)
        elif mode == "worker":
            from apps.core.tasks import dispatch_events

            dispatch_events.delay()
    except Exception:
        logger.warning("event %s: dispatch on commit failed; the sweep will retry it", event_id, exc_info=True)


def events_after(*, agency_id: int, user_id: int | None, after_id: int, limit: int = 200) -> list[OutboxEvent]:
    """An agency's committed events after ``after_id``, in id order: those for the whole agency
    and those for ``user_id``; never another agency's, never another member's private ones."""
    return list(
        OutboxEvent.objects.filter(agency_id=agency_id, id__gt=after_id)
        .filter(Q(user_id__isnull=True) | Q(user_id=user_id))
        .order_by("id")
        .only("id", "kind", "payload", "created_at")[:limit]
    )


def latest_event_id() -> int:
    """The highest event id so far (0 when there is none): where a new stream starts."""
    return OutboxEvent.objects.aggregate(latest=Max("id"))["latest"] or 0


# --- Many events at once ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    """One event for ``publish_many``: what ``publish`` takes, without ``key``."""

    kind: str
    agency_id: int | None
    payload: dict
    groups: Sequence[str] = ()
    user_id: int | None = None


def publish_many(events: Sequence[NewEvent]) -> list[OutboxEvent]:
    """``publish`` for many events at once (a page of a bulk ingest): each is checked as ``publish``
    checks it (``EventError``, and nothing is written, when one is refused), all are written with
    one INSERT in the caller's transaction, and ONE dispatch of them all is asked for once that
    commits instead of a kick per event: inline, in id-ordered batches of EVENTS_BATCH_SIZE through
    the dispatcher's claim (apps/core/outbox.py ``dispatch_ids``); ``worker``, one
    ``dispatch_events`` task. No ``key``: an event that must be published once is published alone
    with ``publish``. Answers the saved events, in the order given."""
    kinds: set[str] = set()
    names: set[str] = set()
    rows = []
    for event in events:
        if event.kind not in kinds:
            if not isinstance(event.kind, str) or len(event.kind) > 100 or not KIND.match(event.kind):
                raise EventError(
                    f"An event kind is a dotted lower-case name like 'campaign.progress'; got {event.kind!r}."
                )
            kinds.add(event.kind)
        if isinstance(event.groups, str):
            raise EventError("groups is a list of group names, not one string.")
        groups = list(event.groups)
        bad = [group for group in groups if not (isinstance(group, str) and (group in names or GROUP.match(group)))]
        if bad:
            raise EventError(
                f"Channels group names are letters, digits, '.', '-' and '_' under 100 characters; got {bad!r}."
            )
        names.update(groups)
        for name, value in (("agency_id", event.agency_id), ("user_id", event.user_id)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise EventError(f"{name} must be an integer or None.")
        rows.append(
            OutboxEvent(
                kind=event.kind, agency_id=event.agency_id, user_id=event.user_id,
                payload=_validated_payload(event.payload), groups=groups,
            )
        )  # fmt: skip
    if not rows:
        return []
    saved = OutboxEvent.objects.bulk_create(rows, batch_size=settings.EVENTS_BATCH_SIZE)
    ids = [event.pk for event in saved if event.pk is not None]
    transaction.on_commit(lambda: _kick_many(ids))
    return saved


def _kick_many(ids: list[int]) -> None:
    """``_kick`` for the events of one ``publish_many``; never raises (the sweep dispatches what it
    could not). Without ids (a backend whose bulk INSERT returns none) inline mode queues a
    ``dispatch_events`` task, as ``worker`` mode always does; ``sweep`` mode leaves them to beat."""
    mode = settings.EVENTS_DISPATCH_ON_COMMIT
    try:
        if mode == "inline" and ids:
            from apps.core.outbox import dispatch_ids

            for start in range(0, len(ids), settings.EVENTS_BATCH_SIZE):
                dispatch_ids(ids[start : start + settings.EVENTS_BATCH_SIZE])
        elif mode in ("worker", "inline"):
            from apps.core.tasks import dispatch_events

            dispatch_events.delay()
    except Exception:
        logger.warning("%d events: dispatch on commit failed; the sweep will retry them", len(ids), exc_info=True)
