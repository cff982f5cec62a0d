"""Bulk ingest: one page of fans, fan messages or purchases of one creator and platform, in a few statements.

The same observable results as the per-record ingest services of services.py (``fan_upsert``,
``message_receive``, ``purchase_record``) applied to the page's items in order, item by item:

- fans: created with the given fields, or updated with them (other fields kept); ``fan.created``
  for each new fan;
- fan messages: stored once per (conversation, platform message id); each conversation (created
  when missing, valued at the fan's spend) then waits for a reply since the first new message
  (or keeps its earlier wait), gains the new messages in ``unread_count`` and ``message_count``,
  and shows the last one; the fan's ``last_active_at`` is the last message's time;
- purchases: stored once per (creator, platform purchase id), added to the fan's spend per kind,
  total and conversation value; ``last_active_at`` is the last purchase's time and
  ``last_purchase_at`` the latest; ``purchase.recorded`` for each.

What differs is the cost and the events: a page is a fixed number of statements (reads, bulk
INSERTs split only by the backend's parameter limit, and one prepared UPDATE per table run for
all rows with ``executemany``; counters add to the stored value, so a concurrent writer is never
overwritten), and its events are written
with one INSERT and dispatched together once the transaction commits: ``fan.created`` and
``purchase.recorded`` per record (CRM webhooks need them one by one), ``inbox.changed`` once per
conversation or fan the page touched, not per message. A page that meets a concurrent writer of
the same new fan falls back to the per-record services for that page.

Not here: PPV unlocks tied to a message (``purchase_record(message=…)`` is per record), member
actions, reading any outside API (integrations/sync.py feeds this).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Creator
from apps.core.models import OutboxEvent
from apps.messaging import services
from apps.messaging.events import INBOX_CHANGED, inbox_group
from apps.messaging.models import Conversation, Direction, Fan, Message, MessageStatus, Purchase, Source
from apps.messaging.services import FAN_FIELDS, SPEND_FIELD, _preview

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


def fans_upsert(*, creator: Creator, platform: str, fans: dict[str, dict]) -> dict[str, Fan]:
    """Create or update each fan of ``fans`` (platform fan id → fields, as ``fan_upsert`` takes
    them); answers every fan of the page by platform fan id. Call inside a transaction."""
    for fields in fans.values():
        unknown = set(fields) - set(FAN_FIELDS)
        if unknown:
            raise ValueError(f"Unknown fan fields: {sorted(unknown)}")
    if not fans:
        return {}
    try:
        with transaction.atomic():
            return _fans_upsert(creator, platform, fans)
    except IntegrityError:  # a webhook created one of these fans meanwhile: take the page one by one
        return {
            fan_id: services.fan_upsert(creator=creator, platform=platform, platform_fan_id=fan_id, **fields)[0]
            for fan_id, fields in fans.items()
        }


def _fans_upsert(creator: Creator, platform: str, fans: dict[str, dict]) -> dict[str, Fan]:
    found = {
        fan.platform_fan_id: fan
        for fan in Fan.objects.filter(creator_id=creator.pk, platform=platform, platform_fan_id__in=list(fans))
    }
    new = [
        Fan(agency_id=creator.agency_id, creator_id=creator.pk, platform=platform, platform_fan_id=fan_id, **fields)
        for fan_id, fields in fans.items()
        if fan_id not in found
    ]
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
    if new:
        Fan.objects.bulk_create(new)
        if any(fan.pk is None for fan in new):  # a backend without RETURNING for bulk inserts
            ids = dict(
                Fan.objects.filter(
                    creator_id=creator.pk, platform=platform, platform_fan_id__in=[fan.platform_fan_id for fan in new]
                ).values_list("platform_fan_id", "pk")
            )
            for fan in new:
                fan.pk = ids[fan.platform_fan_id]
        _publish(
            [
                _event(
                    "fan.created", creator.agency_id, {"fan_id": f.pk, "creator_id": creator.pk, "platform": platform}
                )
                for f in new
            ]
        )
    if changed:
        Fan.objects.bulk_update(changed, [*sorted(touched), "updated_at"])
    found.update((fan.platform_fan_id, fan) for fan in new)
    return found


def messages_receive(*, creator: Creator, platform: str, messages: list[InboundMessage]) -> int:
    """Store the page's fan messages whose fans exist (``fans_upsert`` first), once per platform
    message id; answers how many were new. Call inside a transaction."""
    fans = _fans_by_id(creator, platform, {m.platform_fan_id for m in messages})
    messages = [m for m in messages if m.platform_fan_id in fans]
    if not messages:
        return 0
    fan_pks = {fans[m.platform_fan_id].pk for m in messages}
    missing = fan_pks - set(Conversation.objects.filter(fan_id__in=fan_pks).values_list("fan_id", flat=True))
    Conversation.objects.bulk_create(
        [
            Conversation(agency_id=creator.agency_id, creator_id=creator.pk, fan_id=fan.pk, fan_value=fan.total_spent)
            for fan in fans.values()
            if fan.pk in missing
        ],
        ignore_conflicts=True,
    )
    conversations = {c.fan_id: c for c in Conversation.objects.filter(fan_id__in=fan_pks)}
    known = set(
        Message.objects.filter(
            conversation_id__in=[c.pk for c in conversations.values()],
            platform_message_id__in=[m.platform_message_id for m in messages if m.platform_message_id],
        ).values_list("conversation_id", "platform_message_id")
    )
    rows: list[Message] = []
    per_conversation: dict[int, list[InboundMessage]] = {}
    for item in messages:
        fan = fans[item.platform_fan_id]
        conversation = conversations[fan.pk]
        if item.platform_message_id:
            if (conversation.pk, item.platform_message_id) in known:
                continue
            known.add((conversation.pk, item.platform_message_id))
        rows.append(
            Message(
                agency_id=creator.agency_id, creator_id=creator.pk, conversation_id=conversation.pk, fan_id=fan.pk,
                direction=Direction.INBOUND, text=item.text, media_count=item.media_count, source=Source.FAN,
                status=MessageStatus.RECEIVED, platform_message_id=item.platform_message_id,
                created_at=item.at, sent_at=item.at,
            )
        )  # fmt: skip
        per_conversation.setdefault(fan.pk, []).append(item)
    if not rows:
        return 0
    Message.objects.bulk_create(rows, batch_size=500)
    _update_rows(
        Conversation,
        "needs_reply = %s, waiting_since = CASE WHEN needs_reply THEN waiting_since ELSE %s END, "
        "unread_count = unread_count + %s, message_count = message_count + %s, last_message_at = %s, "
        "last_message_preview = %s, last_message_direction = %s",
        [
            (True, _at(items[0].at), len(items), len(items), _at(items[-1].at),
             _preview(items[-1].text, items[-1].media_count), Direction.INBOUND.value, conversations[fan_pk].pk)
            for fan_pk, items in per_conversation.items()
        ],
    )  # fmt: skip
    _update_rows(Fan, "last_active_at = %s", [(_at(items[-1].at), pk) for pk, items in per_conversation.items()])
    _publish([_inbox_changed(creator.agency_id, conversation_id=conversations[pk].pk) for pk in per_conversation])
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
        Purchase.objects.filter(
            creator_id=creator.pk, platform_purchase_id__in=[p.platform_purchase_id for p in purchases]
        ).values_list("platform_purchase_id", flat=True)
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
            Purchase.objects.filter(
                creator_id=creator.pk, platform_purchase_id__in=[row.platform_purchase_id for row in rows]
            ).values_list("platform_purchase_id", "pk")
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
            for fan_id, pk in Conversation.objects.filter(fan_id__in=list(per_fan)).values_list("fan_id", "pk")
        ],
    )
    events = [_inbox_changed(creator.agency_id, conversation_id=None, fan_id=pk) for pk in per_fan]
    events += [
        _event(
            "purchase.recorded", creator.agency_id,
            {
                "purchase_id": row.pk, "fan_id": row.fan_id, "creator_id": creator.pk, "kind": row.kind,
                "amount": str(row.amount), "currency": row.currency, "purchased_at": row.purchased_at.isoformat(),
            },
        )
        for row in rows
    ]  # fmt: skip
    _publish(events)
    return len(rows)


# --- Helpers ------------------------------------------------------------------------------------


def _fans_by_id(creator: Creator, platform: str, fan_ids: Iterable[str]) -> dict[str, Fan]:
    fan_ids = [fan_id for fan_id in fan_ids if fan_id]
    if not fan_ids:
        return {}
    return {
        fan.platform_fan_id: fan
        for fan in Fan.objects.filter(creator_id=creator.pk, platform=platform, platform_fan_id__in=fan_ids)
    }


def _at(value: datetime) -> object:
    """A datetime as the backend stores it (SQLite: UTC text in the ORM's format, comparable)."""
    return connection.ops.adapt_datetimefield_value(value)


def _update_rows(model, assignments: str, rows: list[tuple]) -> None:
    """``UPDATE <table> SET <assignments> WHERE id = %s`` once per row, in one ``executemany``.

    Hand-written rather than ``bulk_update``: its CASE WHEN per row and column cost ~0.3 s of
    Python per 500-row page (bench/sync.py), more than the database's work; counters still
    add to the stored value, so a concurrent writer's change is kept."""
    if rows:
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:  # assignments are this module's constants; values are bound
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", rows)  # noqa: S608


def _event(kind: str, agency_id: int, payload: dict, groups: list[str] | None = None) -> OutboxEvent:
    return OutboxEvent(kind=kind, agency_id=agency_id, payload=payload, groups=groups or [])


def _inbox_changed(agency_id: int, *, conversation_id: int | None, fan_id: int | None = None) -> OutboxEvent:
    payload = {"conversation_id": conversation_id, "fan_id": fan_id}
    return _event(INBOX_CHANGED, agency_id, payload, [inbox_group(agency_id)])


def _publish(events: list[OutboxEvent]) -> None:
    """The bus's ``publish`` for many events at once: one INSERT in the caller's transaction and
    one dispatch of them all after commit (EVENTS_DISPATCH_ON_COMMIT: inline in this process, a
    ``dispatch_events`` task on a worker, or left to the sweep), instead of a kick per event."""
    if not events:
        return
    created = OutboxEvent.objects.bulk_create(events, batch_size=500)
    ids = [event.pk for event in created if event.pk is not None]
    transaction.on_commit(lambda: _dispatch(ids))


def _dispatch(ids: list[int]) -> None:
    mode = settings.EVENTS_DISPATCH_ON_COMMIT
    try:
        if mode == "inline" and ids:
            from apps.core.outbox import dispatch_ids

            for start in range(0, len(ids), settings.EVENTS_BATCH_SIZE):
                dispatch_ids(ids[start : start + settings.EVENTS_BATCH_SIZE])
        elif mode == "worker" or (mode == "inline" and not ids):
            from apps.core.tasks import dispatch_events

            dispatch_events.delay()
    except Exception:
        logger.warning("ingest: dispatch on commit failed; the sweep will", exc_info=True)
