"""Inbound webhooks of the third-party OnlyFans/Fansly API: verify, store, then process once.

Signature scheme (docs/integrations.md has a worked example): the sender puts the Unix time in
``X-Webhook-Timestamp`` and ``hex(HMAC-SHA256(secret, timestamp + "." + raw body))`` in
``X-Webhook-Signature`` (optionally prefixed ``sha256=``). A request whose timestamp is further
than ``INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS`` from now is refused as a replay even with a good
signature; a good signature over the same event id a second time finds the stored row and changes
nothing (``WebhookEvent`` is unique on connection and event id).

The endpoint only verifies and stores (``webhook_receive``), and answers ``pending`` as soon as
the row is committed; workers apply events after the response. A request costs a signature check,
one statement to find the connection (selectors.py) and one ``INSERT … ON CONFLICT DO NOTHING``;
it queues no task of its own while its connection's *window* is open in this process:

1. the first event of a connection opens a window of ``INTEGRATIONS_WEBHOOK_COALESCE_SECONDS``
   (default 1 s) and queues two drains of the connection (``process_webhooks``): one now, so a
   lone event is applied at once, and one after the window and a margin;
2. events stored while the window is open queue nothing: the later drain reads the connection's
   pending events received since the window opened, after every one of them was committed (the
   window is checked after the INSERT commits);
3. a drain applies each pending event through ``webhook_process``, in the order received.

At least once: a task the queue lost (or a worker whose clock runs ahead of the web's by more than
the margin) leaves events pending, and beat's ``webhooks_sweep`` queues them one by one after
``PENDING_GRACE_SECONDS``; applying twice changes nothing (``webhook_process`` takes only a
pending or failed event, and messaging's ingest services are idempotent on the platform's ids).
A window of 0 queues one drain per event instead. Unknown event types are stored and
marked ignored.

Not here: finding the connection (``selectors.connection_for_webhook``), the HTTP answers (views.py).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import DataError, IntegrityError, models, transaction
from django.db import connection as db_connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core import signing
from apps.core.errors import ApplicationError
from apps.core.timezones import moment_in_range
from apps.integrations.models import Connection, WebhookEvent, WebhookStatus
from apps.integrations.selectors import WebhookTarget
from apps.messaging import services as messaging

logger = logging.getLogger(__name__)
# What the purchase and message columns hold (Purchase.amount: 10 digits, 2 after the point;
# Message.media_count: a small integer): a larger value fails the event with a clear error.
MAX_AMOUNT = Decimal("100000000")
MAX_MEDIA = 32767

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
M = TypeVar("M", bound=models.Model)

MAX_BODY_BYTES = 256 * 1024
PENDING_GRACE_SECONDS = 120  # a pending event older than this lost its task: the sweep re-queues it
DRAIN_MARGIN_SECONDS = 0.5  # the later drain runs this long after its window closes
DRAIN_LOOKBACK_SECONDS = 5  # a drain also reads events stored just before its window opened
DRAIN_BATCH = 500


class WebhookRejected(ApplicationError):
    status_code = 401
    code = "bad_signature"


def webhook_verify(*, connection: WebhookTarget, timestamp: str | None, signature: str | None, body: bytes) -> None:
    """Raise WebhookRejected unless the signature is the connection's and the timestamp is fresh."""
    if not timestamp or not signature:
        raise WebhookRejected("Missing signature headers.")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise WebhookRejected("The timestamp is not a Unix time.")
    sent_at = int(timestamp)
    if abs(time.time() - sent_at) > settings.INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected("The timestamp is outside the replay window.")
    if not signing.verify(connection.webhook_secret, timestamp, signature, body):
        raise WebhookRejected("The signature does not match.")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999
        raise ValueError(f"{text} is not a finite number")
    return number


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def event_parse(body: bytes) -> tuple[dict[str, Any], str, str]:
    """A signed event's JSON body → (payload, id, type); ApplicationError says what is wrong.
    Shared by the platforms' webhooks and the CRMs' inbound endpoint (apps/integrations/crm.py).
    Python's ``json`` reads NaN, Infinity and 1e999, which are not JSON and which PostgreSQL's
    jsonb refuses: they are refused here, before anything is stored."""
    try:
        payload = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        raise ApplicationError("The body is not JSON (NaN, Infinity and numbers beyond a float are not).") from None
    if not isinstance(payload, dict):
        raise ApplicationError("The body must be a JSON object.")
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise ApplicationError("The event needs an `id` (a string of at most 128 characters).", field="id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 64:
        raise ApplicationError("The event needs a `type` (a string of at most 64 characters).", field="type")
    return payload, event_id, event_type


def event_store_once(model: type[M], *, lookup: dict[str, Any], **fields: Any) -> tuple[M, bool]:
    """Store an event once by ``lookup`` (its source and event id); answers (row, created). A
    replay, or the same event arriving twice at once, answers the stored row."""
    existing = model.objects.filter(**lookup).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return model.objects.create(**lookup, **fields), True
    except IntegrityError:  # the same event arrived twice at once
        return model.objects.get(**lookup), False


@dataclass(frozen=True)
class StoredWebhook:
    """What the endpoint answers about a webhook it stored (or had stored before)."""

    event_id: str
    status: str
    created: bool
    pk: int | None  # known for a replay (the row found); a new row's id is not read back


def webhook_store(*, connection: WebhookTarget, body: bytes) -> StoredWebhook:
    """Store a verified webhook once; a replay answers the stored row's status."""
    payload, event_id, event_type = event_parse(body)
    created = _insert_unless_stored(
        WebhookEvent, ("connection_id", "event_id"), agency_id=connection.agency_id, connection_id=connection.pk,
        event_id=event_id, type=event_type, payload=payload, status=WebhookStatus.PENDING, received_at=timezone.now(),
    )  # fmt: skip
    if created:
        return StoredWebhook(event_id, WebhookStatus.PENDING, True, None)
    pk, status = (
        WebhookEvent.objects.filter(connection_id=connection.pk, event_id=event_id).values_list("pk", "status").get()
    )
    return StoredWebhook(event_id, status, False, pk)


def _insert_unless_stored(model: type[models.Model], unique: tuple[str, ...], **values: Any) -> bool:
    """One ``INSERT … ON CONFLICT (unique) DO NOTHING`` of a row (fields not given take their
    defaults); answers whether it was inserted. Only a row with the same ``unique`` columns is
    skipped: any other constraint still raises. The ORM's ``create`` with a savepoint, after a SELECT, cost
    several times this per webhook; values go through each field's own conversion for the database."""
    sql, fields = _insert_statement(model, unique, db_connection.vendor)
    params = [
        field.get_db_prep_save(values[field.attname] if field.attname in values else field.get_default(), db_connection)
        for field in fields
    ]
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


@cache
def _insert_statement(
    model: type[models.Model], unique: tuple[str, ...], vendor: str
) -> tuple[str, list[models.Field]]:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    q = db_connection.ops.quote_name
    columns, placeholders = ", ".join(q(field.column) for field in fields), ", ".join(["%s"] * len(fields))
    table = q(model._meta.db_table)
    target = ", ".join(q(column) for column in unique)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({target}) DO NOTHING"  # noqa: S608
    return sql, fields


def webhook_receive(*, connection: WebhookTarget, body: bytes) -> StoredWebhook:
    """Store a verified webhook and see that a worker applies it once the row is committed (the
    module docstring: a window per connection and process). A replay of a still pending event
    queues that event again (idempotent)."""
    stored = webhook_store(connection=connection, body=body)
    if stored.created:
        _queue_drains(connection)
    elif stored.status == WebhookStatus.PENDING:
        from apps.integrations.tasks import process_webhook

        process_webhook.delay_on_commit(stored.pk)
    return stored


# The window of each connection in this process: its public id → when it closes (monotonic clock).
_windows: dict[Any, float] = {}


def _queue_drains(connection: WebhookTarget) -> None:
    from apps.integrations.tasks import process_webhooks

    window = settings.INTEGRATIONS_WEBHOOK_COALESCE_SECONDS
    since = time.time() - DRAIN_LOOKBACK_SECONDS
    if window <= 0:
        process_webhooks.delay_on_commit(connection.pk, since)
        return
    now = time.monotonic()
    if _windows.get(connection.public_id, 0.0) > now:
        return
    if len(_windows) > 10_000:  # forget closed windows now and then
        for key, closes in list(_windows.items()):
            if closes <= now:
                _windows.pop(key, None)
    _windows[connection.public_id] = now + window
    process_webhooks.delay_on_commit(connection.pk, since)
    later = {"args": (connection.pk, since), "countdown": window + DRAIN_MARGIN_SECONDS}
    transaction.on_commit(lambda: process_webhooks.apply_async(**later))


def webhooks_drain(*, connection_id: int, since: float) -> int:
    """Apply a connection's events still pending that were received since ``since`` (a Unix
    time), oldest first; answers how many this call applied or marked."""
    received_after = datetime.fromtimestamp(since, tz=UTC)
    done = 0
    while True:
        batch = list(
            WebhookEvent.objects.filter(
                connection_id=connection_id, status=WebhookStatus.PENDING, received_at__gte=received_after
            )
            .order_by("received_at", "pk")
            .values_list("pk", flat=True)[:DRAIN_BATCH]
        )
        for event_id in batch:
            try:
                done += webhook_process(event_id=event_id) != "done"
            except Exception:
                # Left pending (a database outage, say): the sweep tries it again later; the
                # connection's next events are applied meanwhile.
                logger.exception("webhook event %s could not be applied; left for the sweep", event_id)
                done += 1
        if len(batch) < DRAIN_BATCH:
            return done


def webhooks_pending(*, limit: int = 1000) -> list[int]:
    """Ids of events still pending after the grace period: their task was lost (the sweep)."""
    before = timezone.now() - timedelta(seconds=PENDING_GRACE_SECONDS)
    return list(
        WebhookEvent.objects.filter(status=WebhookStatus.PENDING, received_at__lt=before)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_process(*, event_id: int) -> str:
    """Apply one stored webhook once; answers its status ("done" when another run applied it)."""
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update()
            .select_related("connection__creator")
            .filter(pk=event_id, status__in=[WebhookStatus.PENDING, WebhookStatus.FAILED])
            .first()
        )
        if event is None:
            return "done"
        handler = HANDLERS.get(event.type)
        if handler is None:
            event.status, event.note = WebhookStatus.IGNORED, "Unknown event type: stored, not applied."
        else:
            try:
                with transaction.atomic():
                    event.note = handler(event.connection, event.payload.get("data") or {}, event) or ""
                event.status, event.error = WebhookStatus.PROCESSED, ""
            except (
                ApplicationError, ArithmeticError, AttributeError, DataError, IntegrityError, KeyError, OSError,
                TypeError, ValueError,
            ) as error:  # fmt: skip
                # A value the database cannot hold (DataError, a Decimal out of range) fails this
                # event for good instead of leaving it pending to fail again on every drain.
                event.status, event.error = WebhookStatus.FAILED, _describe(error)
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "note", "error", "processed_at"])
    if event.status == WebhookStatus.PROCESSED:
        Connection.objects.filter(pk=event.connection_id).update(last_sync_at=event.processed_at)
    return event.status


def _describe(error: Exception) -> str:
    if isinstance(error, ApplicationError):
        return error.message
    if isinstance(error, KeyError):
        return f"The event's data lacks {error.args[0]!r}."
    return str(error)[:500] or type(error).__name__


# --- Handlers: data → messaging's ingest services ------------------------------------------------


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _when(value: Any) -> datetime | None:
    """A platform's moment (epoch seconds or ISO 8601), or None for a text that is unreadable or
    a moment outside the years the database holds (apps/core/timezones.py)."""
    parsed = None
    if isinstance(value, int | float):
        parsed = datetime.fromtimestamp(value, tz=UTC)  # 1e300 raises: the event fails, as a bad shape does
    elif isinstance(value, str) and value:
        try:
            parsed = parse_datetime(value)
        except (ValueError, OverflowError):
            return None
        if parsed is not None and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
    return parsed if parsed is not None and moment_in_range(parsed) else None


def _fan(connection: Connection, data: dict, **fields):
    fan = data["fan"]
    if not isinstance(fan, dict) or not str(fan.get("id") or "").strip():
        raise ValueError("The event's fan needs an id.")
    values = {"username": _text(fan.get("username"), 64), "display_name": _text(fan.get("name"), 120), **fields}
    values = {key: value for key, value in values.items() if value not in ("", None)}
    return messaging.fan_upsert(
        creator=connection.creator, platform=connection.platform, platform_fan_id=_text(fan["id"], 128), **values
    )


def _money(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount.") from None
    if not amount.is_finite() or amount >= MAX_AMOUNT:
        raise ValueError(f"{value!r} is not an amount a payment can have.")
    return amount if amount > 0 else None


def _media_count(value: Any) -> int:
    count = max(0, int(value or 0))
    if count > MAX_MEDIA:
        raise ValueError(f"A message with {count} media items is not one a platform sends.")
    return count


def on_message_received(connection: Connection, data: dict, event: WebhookEvent) -> str:
    fan, _ = _fan(connection, data)
    message = data["message"]
    messaging.message_receive(
        fan=fan,
        text=_text(message.get("text"), 5000),
        media_count=_media_count(message.get("media_count")),
        platform_message_id=_text(message.get("id"), 128),
        at=_when(message.get("created_at")),
    )
    return ""


def on_subscription(connection: Connection, data: dict, event: WebhookEvent) -> str:
    subscription = data.get("subscription") or {}
    fields = {"subscription_state": "active", "subscription_expires_at": _when(subscription.get("expires_at"))}
    started = _when(subscription.get("started_at"))
    if started is not None:
        fields["subscribed_since"] = started
    fan, created = _fan(connection, data, **fields)
    if created and "subscribed_since" not in fields:
        messaging.fan_upsert(
            creator=connection.creator, platform=connection.platform, platform_fan_id=fan.platform_fan_id,
            subscribed_since=timezone.now(),
        )  # fmt: skip
    price = _money(subscription.get("price"))
    if price is not None and subscription.get("id"):
        renewal = event.type == "subscriptions.renewed"
        messaging.purchase_record(
            fan=fan, kind="subscription", amount=price,
            at=_when(subscription.get("renewed_at")) if renewal else started,
            platform_purchase_id=_subscription_payment_id(data, event),
        )  # fmt: skip
    return ""


def _subscription_payment_id(data: dict, event: WebhookEvent) -> str:
    """One purchase per payment: each renewal of a subscription is a new one. Keyed like the sync
    keys the provider's transactions (``subscription:<transaction id>``, sync.py) when the event
    names its transaction, so a payment seen by both is recorded once; else by the event's id."""
    transaction_id = (data.get("subscription") or {}).get("transaction_id") or data.get("transaction_id")
    if transaction_id:
        return _text(f"subscription:{transaction_id}", 128)
    return _text(f"subscription:event:{event.event_id}", 128)


def on_ppv_unlocked(connection: Connection, data: dict, event: WebhookEvent) -> str:
    fan, _ = _fan(connection, data)
    price = _money(data.get("price"))
    if price is None:
        return "No price in the event: nothing to record."
    purchase_id = data.get("purchase_id") or (data.get("message") or {}).get("id")
    if not purchase_id:
        raise ValueError("The event needs a purchase_id or a message id.")
    messaging.purchase_record(
        fan=fan, kind="ppv", amount=price, at=_when(data.get("unlocked_at")),
        platform_purchase_id=_text(f"ppv:{purchase_id}", 128),
    )  # fmt: skip
    return "Recorded as a PPV purchase; the unlocked message itself is not linked in this version."


HANDLERS = {
    "messages.received": on_message_received,
    "subscriptions.new": on_subscription,
    "subscriptions.renewed": on_subscription,
    "messages.ppv.unlocked": on_ppv_unlocked,
}
