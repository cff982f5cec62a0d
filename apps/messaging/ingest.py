"""Bulk ingest: one page of fans, fan messages or purchases of one creator and platform, in a few statements.

The same observable results as the per-record ingest services of services.py (``fan_upsert``,
``message_receive``, ``purchase_record``) applied to the page's items in order, item by item:

- fans: created with the given fields, or updated with them (other fields kept); ``fan.created``
  for each new fan;
- fan messages: stored once per (conversation, platform message id); each conversation (created
  when missing, valued at the fan's spend) gains them in ``message_count``, and moves only
  forward by their own times, whatever the page's order (a feed newest first, a sync catching
  up on messages older than the thread's last): the latest becomes the last message unless the
  thread has a newer one; those no reply came after count as unread and make it wait since the
  earliest of them (or since its earlier wait); the fan's ``last_active_at`` becomes the latest
  message's time unless it is later already;
- purchases: stored once per (creator, platform purchase id), added to the fan's spend per kind,
  total and conversation value; ``last_active_at`` is the last purchase's time and
  ``last_purchase_at`` the latest; ``purchase.recorded`` for each.

What differs is the cost and the events: a page is a fixed number of statements (reads; new
fans and messages in one ``COPY`` each on PostgreSQL, one INSERT run for every row with
``executemany`` on SQLite, conversations likewise with ``ON CONFLICT DO NOTHING``; one UPDATE per
table run for every row; counters add to the stored value, so a concurrent writer is never
overwritten), and its events are written with the bus's ``publish_many`` (one INSERT)
and dispatched together once the transaction commits: ``fan.created`` and ``purchase.recorded``
per record (CRM webhooks need them one by one), ``inbox.changed`` once per conversation or fan
the page touched, not per message. A page that meets a concurrent writer of the same new fan
falls back to the per-record services for that page. Every read is ``order_by()``: the models'
default orderings (a fan's spend first) made SQLite walk a creator's whole fan list in that
index's order instead of looking the page's ids up in the unique index (at 100,000 fans, most of
a first sync's time).

Not here: PPV unlocks tied to a message (``purchase_record(message=…)`` is per record), member
actions, reading any outside API (integrations/sync.py feeds this).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import Creator
from apps.core.events import NewEvent, publish_many
from apps.core.statements import server_bound_cursor
from apps.messaging import services
from apps.messaging.events import INBOX_CHANGED, inbox_group
from apps.messaging.models import Conversation, Direction, Fan, Message, MessageStatus, Purchase, Source
from apps.messaging.services import FAN_FIELDS, SPEND_FIELD, _preview, _replies

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundMessage:
    """One message a fan wrote, as the platform reported it."""

    platform_fan_id: str
    text: str
    platform_message_id: str
    at: datetime
    media_count: int = 0


@dataclass(frozen=True)
class PurchaseIn:
    """One purchase as the platform reported it (``currency`` None: the creator's)."""

    platform_fan_id: str
    kind: str
    amount: Decimal
    platform_purchase_id: str
    at: datetime
    currency: str | None = None


def fans_upsert(*, creator: Creator, platform: str, fans: dict[str, dict], only_new: bool = False) -> int:
    """Create or update each fan of ``fans`` (platform fan id → fields, as ``fan_upsert`` takes
    them); with ``only_new``, create the missing ones and leave the others as they are. Answers
    how many fans were created or changed. Call inside a transaction."""
    for fields in fans.values():
        unknown = set(fields) - set(FAN_FIELDS)
        if unknown:
            raise ValueError(f"Unknown fan fields: {sorted(unknown)}")
    if not fans:
        return 0
    try:
        with transaction.atomic():
            return _fans_upsert(creator, platform, fans, only_new)
    except IntegrityError:  # a webhook created one of these fans meanwhile: take the page one by one
        if only_new:
            known = _fans_by_id(creator, platform, fans)
            fans = {fan_id: fields for fan_id, fields in fans.items() if fan_id not in known}
        for fan_id, fields in fans.items():
            services.fan_upsert(creator=creator, platform=platform, platform_fan_id=fan_id, **fields)
        return len(fans)


def _fans_upsert(creator: Creator, platform: str, fans: dict[str, dict], only_new: bool) -> int:
    existing = Fan.objects.order_by().filter(creator_id=creator.pk, platform=platform, platform_fan_id__in=list(fans))
    if only_new:
        found = dict.fromkeys(existing.values_list("platform_fan_id", flat=True))
    else:
        keys = set().union(*fans.values())
        found = {fan.platform_fan_id: fan for fan in existing.only("id", "platform_fan_id", *keys)}
    new: dict[tuple[str, ...], list[tuple]] = {}  # the new fans by the fields they are given
    new_ids = []
    for fan_id, fields in fans.items():
        if fan_id not in found:
            new_ids.append(fan_id)
            new.setdefault(tuple(fields), []).append(
                (creator.agency_id, creator.pk, platform, fan_id, *(_db(Fan, key, fields[key]) for key in fields))
            )
    for keys, rows in new.items():
        _insert_rows(Fan, ("agency_id", "creator_id", "platform", "platform_fan_id", *keys), rows)
    if new_ids:
        ids = dict(
            Fan.objects.order_by()
            .filter(creator_id=creator.pk, platform=platform, platform_fan_id__in=new_ids)
            .values_list("platform_fan_id", "pk")
        )
        payload = {"creator_id": creator.pk, "platform": platform}
        publish_many([NewEvent("fan.created", creator.agency_id, {"fan_id": ids[f], **payload}) for f in new_ids])
    changed, touched = [], set()
    now = timezone.now()
    for fan_id, fields in fans.items():
        fan = found.get(fan_id)
        if fan is None or all(getattr(fan, key) == value for key, value in fields.items()):
            continue
        for key, value in fields.items():
            setattr(fan, key, value)
        fan.updated_at = now
        changed.append(fan)
        touched.update(fields)
    if changed:
        columns = [*sorted(touched), "updated_at"]
        _update_rows(
            Fan,
            ", ".join(f"{connection.ops.quote_name(Fan._meta.get_field(name).column)} = %s" for name in columns),
            [(*(_db(Fan, name, getattr(fan, name)) for name in columns), fan.pk) for fan in changed],
        )
    return len(new_ids) + len(changed)


def messages_receive(*, creator: Creator, platform: str, messages: list[InboundMessage]) -> int:
    """Store the page's fan messages whose fans exist (``fans_upsert`` first), once per platform
    message id; answers how many were new. Call inside a transaction."""
    fans = _fans_by_id(creator, platform, {m.platform_fan_id for m in messages})
    messages = [m for m in messages if m.platform_fan_id in fans]
    if not messages:
        return 0
    fan_pks = list(dict.fromkeys(fans[m.platform_fan_id].pk for m in messages))  # in the page's order
    found = list(
        Conversation.objects.order_by().filter(fan_id__in=fan_pks).values_list("fan_id", "pk", "last_message_at")
    )
    conversations = {fan_pk: pk for fan_pk, pk, _ in found}
    last_at = {pk: at for _, pk, at in found}  # each thread's last message before the page
    missing = [pk for pk in fan_pks if pk not in conversations]
    if missing:
        spent = {fan.pk: fan.total_spent for fan in fans.values()}
        _insert_rows(
            Conversation,
            ("agency_id", "creator_id", "fan_id", "fan_value"),
            [(creator.agency_id, creator.pk, pk, spent[pk]) for pk in missing],
            ignore_conflicts=True,  # a webhook opened it meanwhile: it is read below all the same
        )
        conversations.update(Conversation.objects.order_by().filter(fan_id__in=missing).values_list("fan_id", "pk"))
    known = set(
        Message.objects.order_by()
        .filter(
            conversation_id__in=list(conversations.values()),
            platform_message_id__in=[m.platform_message_id for m in messages if m.platform_message_id],
        )
        # The partial unique index's own condition, said outright: PostgreSQL does not infer it
        # from an IN list of more than 100 values, so without it that index is not a candidate.
        .exclude(platform_message_id="")
        .values_list("conversation_id", "platform_message_id")
    )
    rows: list[tuple] = []
    per_conversation: dict[int, list[InboundMessage]] = {}
    for item in messages:
        fan_pk = fans[item.platform_fan_id].pk
        conversation_pk = conversations[fan_pk]
        if item.platform_message_id:
            if (conversation_pk, item.platform_message_id) in known:
                continue
            known.add((conversation_pk, item.platform_message_id))
        at = _at(item.at)
        rows.append(
            (creator.agency_id, creator.pk, conversation_pk, fan_pk, item.text, item.media_count,
             item.platform_message_id, at, at)
        )  # fmt: skip
        per_conversation.setdefault(fan_pk, []).append(item)
    if not rows:
        return 0
    inbound = (Direction.INBOUND.value, Source.FAN.value, MessageStatus.RECEIVED.value)
    _insert_rows(
        Message,
        ("agency_id", "creator_id", "conversation_id", "fan_id", "text", "media_count", "platform_message_id",
         "created_at", "sent_at", "direction", "source", "status"),
        [row + inbound for row in rows],
    )  # fmt: skip
    # Only forward, as ``message_receive``: the page's latest message is the thread's last unless
    # a newer one is stored (compared in the UPDATE, with the row as it is then), and its messages
    # no reply came after make the fan wait (since the earliest of them, if that is earlier).
    replied = _last_replies(per_conversation, conversations, last_at)
    updates = []
    for fan_pk, items in per_conversation.items():
        pk = conversations[fan_pk]
        last = max(reversed(items), key=lambda item: item.at)  # of equal times the page's later: the higher id
        waiting = [item.at for item in items if pk not in replied or item.at >= replied[pk]]
        since = _at(min(waiting, default=last.at))
        at = _at(last.at)
        updates.append(
            (bool(waiting), bool(waiting), since, since, len(waiting), len(items),
             at, at, at, _preview(last.text, last.media_count), at, Direction.INBOUND.value, pk)
        )  # fmt: skip
    newer = "last_message_at IS NULL OR last_message_at <= %s"
    _update_rows(
        Conversation,
        "needs_reply = needs_reply OR %s, "
        "waiting_since = CASE WHEN %s AND NOT (needs_reply AND waiting_since <= %s) THEN %s ELSE waiting_since END, "
        "unread_count = unread_count + %s, message_count = message_count + %s, "
        f"last_message_at = CASE WHEN {newer} THEN %s ELSE last_message_at END, "
        f"last_message_preview = CASE WHEN {newer} THEN %s ELSE last_message_preview END, "
        f"last_message_direction = CASE WHEN {newer} THEN %s ELSE last_message_direction END",
        updates,
    )
    active = [(_at(max(item.at for item in items)), pk) for pk, items in per_conversation.items()]
    _update_rows(
        Fan,
        "last_active_at = CASE WHEN last_active_at IS NULL OR last_active_at < %s THEN %s ELSE last_active_at END",
        [(at, at, pk) for at, pk in active],
    )
    publish_many([
        _inbox_changed(creator.agency_id, creator_id=creator.pk, conversation_id=conversations[pk], received=len(items))
        for pk, items in per_conversation.items()
    ])  # fmt: skip
    return len(rows)


def purchases_record(*, creator: Creator, platform: str, purchases: list[PurchaseIn]) -> int:
    """Record the page's purchases whose fans exist, once per platform purchase id; answers how
    many were new. Call inside a transaction."""
    fans = _fans_by_id(creator, platform, {p.platform_fan_id for p in purchases})
    for item in purchases:
        if item.kind not in SPEND_FIELD:
            raise ValueError(f"Unknown purchase kind {item.kind!r}.")
        if Decimal(item.amount) <= 0:
            raise ValueError("A purchase amount must be above zero.")
    purchases = [p for p in purchases if p.platform_fan_id in fans]
    known = set(
        Purchase.objects.order_by()
        .filter(creator_id=creator.pk, platform_purchase_id__in=[p.platform_purchase_id for p in purchases])
        .values_list("platform_purchase_id", flat=True)
    )
    rows: list[Purchase] = []
    per_fan: dict[int, list[PurchaseIn]] = {}
    for item in purchases:
        if item.platform_purchase_id:
            if item.platform_purchase_id in known:
                continue
            known.add(item.platform_purchase_id)
        fan = fans[item.platform_fan_id]
        rows.append(
            Purchase(
                agency_id=creator.agency_id, creator_id=creator.pk, fan_id=fan.pk, kind=item.kind,
                amount=Decimal(item.amount), currency=item.currency or creator.currency, purchased_at=item.at,
                platform_purchase_id=item.platform_purchase_id,
            )
        )  # fmt: skip
        per_fan.setdefault(fan.pk, []).append(item)
    if not rows:
        return 0
    Purchase.objects.bulk_create(rows, batch_size=500)
    if any(row.pk is None for row in rows):
        ids = dict(
            Purchase.objects.order_by()
            .filter(creator_id=creator.pk, platform_purchase_id__in=[row.platform_purchase_id for row in rows])
            .values_list("platform_purchase_id", "pk")
        )
        for row in rows:
            row.pk = ids.get(row.platform_purchase_id)
    spend_fields = list(SPEND_FIELD.values())
    fan_rows, totals = [], {}
    for fan_pk, items in per_fan.items():
        spend = dict.fromkeys(spend_fields, Decimal(0))  # every spend field in the one UPDATE: others add 0
        for item in items:
            spend[SPEND_FIELD[item.kind]] += Decimal(item.amount)
        totals[fan_pk] = sum(spend.values(), Decimal(0))
        latest = _at(max(item.at for item in items))
        fan_rows.append((*spend.values(), totals[fan_pk], _at(items[-1].at), latest, latest, fan_pk))
    _update_rows(
        Fan,
        ", ".join(f"{field} = {field} + %s" for field in spend_fields) + ", total_spent = total_spent + %s, "
        "last_active_at = %s, last_purchase_at = CASE WHEN last_purchase_at IS NULL OR last_purchase_at < %s "
        "THEN %s ELSE last_purchase_at END",
        fan_rows,
    )
    _update_rows(
        Conversation,
        "fan_value = fan_value + %s",
        [
            (totals[fan_id], pk)
            for fan_id, pk in Conversation.objects.order_by()
            .filter(fan_id__in=list(per_fan))
            .values_list("fan_id", "pk")
        ],
    )
    events = [
        _inbox_changed(creator.agency_id, creator_id=creator.pk, conversation_id=None, fan_id=pk) for pk in per_fan
    ]
    events += [
        NewEvent(
            "purchase.recorded", creator.agency_id,
            {
                "purchase_id": row.pk, "fan_id": row.fan_id, "creator_id": creator.pk, "kind": row.kind,
                "amount": str(row.amount), "currency": row.currency, "purchased_at": row.purchased_at.isoformat(),
            },
        )
        for row in rows
    ]  # fmt: skip
    publish_many(events)
    return len(rows)


def refresh_statistics(written: int) -> None:
    """PostgreSQL: ``ANALYZE`` the tables the ingest writes that the planner believes hold fewer
    rows than ``written`` (what a bulk load has just written), as a bulk load grows them.

    The ingest's reads (a page's fans, conversations and already known messages) and the commit's
    deferred foreign-key checks (planned once per connection, kept until the table is analysed)
    are index lookups only if the planner knows the tables are large: planned on a table it
    believes empty, each scans the whole table, once per row (a full initial sync spent most of
    its time there when autovacuum had not caught up, or was off). A database whose statistics
    already count more rows than the load wrote is left alone. ``SKIP_LOCKED``: a table another
    ANALYZE or a VACUUM holds is skipped rather than waited for; a failure is logged, never
    raised (statistics only make the load faster). SQLite needs nothing."""
    if connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in (Fan, Conversation, Message, Purchase)]
    try:
        with transaction.atomic(), connection.cursor() as cursor:  # the models' own table names
            cursor.execute(
                "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND reltuples < %s", [tables, written]
            )
            stale = [connection.ops.quote_name(name) for (name,) in cursor.fetchall()]
            if stale:
                cursor.execute(f"ANALYZE (SKIP_LOCKED) {', '.join(stale)}")
    except DatabaseError:
        logger.warning("ingest.refresh_statistics failed; the load goes on without it", exc_info=True)


# --- Helpers ------------------------------------------------------------------------------------


def _last_replies(
    per_conversation: dict[int, list[InboundMessage]],
    conversations: dict[int, int],
    last_at: dict[int, datetime | None],
) -> dict[int, datetime]:
    """Conversation id → the time of its latest reply (``services._replies``) after the earliest
    of the page's messages, for the conversations where one of them is older than the thread's
    last message; a message newer than the last one is after every reply. One query, none for a
    page of new messages (a first sync, an incremental one keeping up)."""
    late: dict[int, datetime] = {}
    for fan_pk, items in per_conversation.items():
        pk, earliest = conversations[fan_pk], min(item.at for item in items)
        if last_at.get(pk) is not None and earliest < last_at[pk]:
            late[pk] = earliest
    if not late:
        return {}
    return dict(
        _replies()
        .order_by()
        .filter(conversation_id__in=list(late), created_at__gt=min(late.values()))
        .values("conversation_id")
        .annotate(latest=Max("created_at"))
        .values_list("conversation_id", "latest")
    )


class _FanRef(NamedTuple):
    pk: int
    total_spent: Decimal


def _fans_by_id(creator: Creator, platform: str, fan_ids: Iterable[str]) -> dict[str, _FanRef]:
    fan_ids = [fan_id for fan_id in fan_ids if fan_id]
    if not fan_ids:
        return {}
    rows = (
        Fan.objects.order_by()
        .filter(creator_id=creator.pk, platform=platform, platform_fan_id__in=fan_ids)
        .values_list("platform_fan_id", "pk", "total_spent")
    )
    return {fan_id: _FanRef(pk, total_spent) for fan_id, pk, total_spent in rows}


def _at(value: datetime) -> object:
    """A datetime as the backend stores it (SQLite: UTC text in the ORM's format, comparable)."""
    return connection.ops.adapt_datetimefield_value(value)


def _db(model, name: str, value: object) -> object:
    """A value of the field ``name`` as the backend stores it, for ``_insert_rows``."""
    if isinstance(value, datetime):
        return _at(value)
    if isinstance(value, dict | list):
        return model._meta.get_field(name).get_db_prep_save(value, connection)
    return value


def _insert_rows(model, columns: tuple[str, ...], rows: list[tuple], *, ignore_conflicts: bool = False) -> None:
    """``INSERT INTO <table> (<columns>, <every other column>) VALUES (%s, …)`` for every row
    (SQLite: one ``executemany``; PostgreSQL: one ``COPY``): each row gives ``columns`` (attnames;
    values as the backend stores them, see ``_db``), every other column takes the field's default
    (``auto_now`` ones: now).

    Hand-written rather than ``bulk_create``: its compilation of every value of every row (and,
    on SQLite, a statement per 999 parameters) was half the time of a page of messages
    (bench/sync.py), more than the database's own work. Rows' ids are not read back."""
    if not rows:
        return
    now = timezone.now()
    fields = {field.attname: field for field in model._meta.concrete_fields}
    rest = [field for name, field in fields.items() if name not in columns and not field.primary_key]
    defaults = tuple(
        field.get_db_prep_save(
            now if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) else field.get_default(),
            connection,
        )
        for field in rest
    )
    defaults = tuple(str(value) if isinstance(value, str) else value for value in defaults)  # choices enums
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in [*(fields[name] for name in columns), *rest])
    marks = ", ".join(["%s"] * (len(columns) + len(rest)))
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    table = quote(model._meta.db_table)
    values = [row + defaults for row in rows]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:  # names are the model's; values are bound
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}", values)  # noqa: S608
    elif ignore_conflicts:  # COPY cannot skip a conflicting row
        with server_bound_cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}", values)  # noqa: S608
    else:
        # PostgreSQL: COPY. Django's client-side binding makes every row of an executemany a
        # different statement text the server parses and plans anew (most of a full sync's time,
        # bench/sync.py), and a multi-row INSERT's text costs psycopg more to compose than COPY.
        # Errors as Django's (a fan a webhook created meanwhile is an IntegrityError the caller handles).
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in values:
                copy.write_row(row)


def _update_rows(model, assignments: str, rows: list[tuple]) -> None:
    """``UPDATE <table> SET <assignments> WHERE id = %s`` once per row, in one ``executemany`` (on
    PostgreSQL with the values bound on the server, so psycopg does not compose a SQL text per row).

    Hand-written rather than ``bulk_update``: its CASE WHEN per row and column cost ~0.3 s of
    Python per 500-row page (bench/sync.py), more than the database's work; counters still
    add to the stored value, so a concurrent writer's change is kept."""
    if not rows:
        return
    sql = f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET {assignments} WHERE id = %s"  # noqa: S608
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:  # assignments are this module's constants; values are bound
            cursor.executemany(sql, rows)
        return
    # Bound on the server: one statement text and each row's values in one pipeline, where Django's
    # client-side binding has psycopg compose a literal SQL text per row in Python (~10% of a
    # sync's time, bench/sync.py). Not prepared: a pooler needs nothing more for it.
    with server_bound_cursor() as cursor:
        cursor.executemany(sql, rows)


def _inbox_changed(
    agency_id: int, *, creator_id: int, conversation_id: int | None, fan_id: int | None = None, received: int = 0
) -> NewEvent:
    payload = {"creator_id": creator_id, "conversation_id": conversation_id, "fan_id": fan_id, "received": received}
    return NewEvent(INBOX_CHANGED, agency_id, payload, [inbox_group(agency_id)])
