"""Inbound webhooks of the third-party OnlyFans/Fansly API: verify, store, then process once.

Signature scheme (docs/integrations.md has a worked example): the sender puts the Unix time in
``X-Webhook-Timestamp`` and ``hex(HMAC-SHA256(secret, timestamp + "." + raw body))`` in
``X-Webhook-Signature`` (optionally prefixed ``sha256=``). A request whose timestamp is further
than ``INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS`` from now is refused as a replay even with a good
signature; a good signature over the same event id a second time finds the stored row and changes
nothing (``WebhookEvent`` is unique on connection and event id).

The endpoint only verifies and stores (``webhook_receive``): it answers ``pending`` as soon as the
row is committed, and the ``process_webhook`` task applies the event after the response, so a
burst from the provider costs the endpoint a signature check and one INSERT each. At least once:
a task the queue lost is re-queued by beat's ``webhooks_sweep`` (events still pending after
``PENDING_GRACE_SECONDS``); applying twice changes nothing (``webhook_process`` takes only a
pending or failed event, and messaging's ingest services are idempotent on the platform's ids).
Unknown event types are stored and marked ignored.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core import signing
from apps.core.errors import ApplicationError
from apps.integrations.models import Connection, WebhookEvent, WebhookStatus
from apps.messaging import services as messaging

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"
M = TypeVar("M", bound=models.Model)

MAX_BODY_BYTES = 256 * 1024
PENDING_GRACE_SECONDS = 120  # a pending event older than this lost its task: the sweep re-queues it


class WebhookRejected(ApplicationError):
    status_code = 401
    code = "bad_signature"


def webhook_verify(*, connection: Connection, timestamp: str | None, signature: str | None, body: bytes) -> None:
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


def event_parse(body: bytes) -> tuple[dict[str, Any], str, str]:
    """A signed event's JSON body → (payload, id, type); ApplicationError says what is wrong.
    Shared by the platforms' webhooks and the CRMs' inbound endpoint (apps/integrations/crm.py)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ApplicationError("The body is not JSON.") from None
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


def webhook_store(*, connection: Connection, body: bytes) -> tuple[WebhookEvent, bool]:
    """Store a verified webhook; answers (event, created). A replay answers the stored row."""
    payload, event_id, event_type = event_parse(body)
    return event_store_once(
        WebhookEvent, lookup={"connection": connection, "event_id": event_id},
        agency_id=connection.agency_id, type=event_type, payload=payload,
    )  # fmt: skip


def webhook_receive(*, connection: Connection, body: bytes) -> tuple[WebhookEvent, bool]:
    """Store a verified webhook and queue its processing once the row is committed; answers
    (event, created). A replay of a still pending event queues it again (idempotent)."""
    event, created = webhook_store(connection=connection, body=body)
    if created or event.status == WebhookStatus.PENDING:
        from apps.integrations.tasks import process_webhook

        process_webhook.delay_on_commit(event.pk)
    return event, created


def webhooks_pending(*, limit: int = 1000) -> list[int]:
    """Ids of events still pending after the grace period: their task was lost (the sweep)."""
    before = timezone.now() - timedelta(seconds=PENDING_GRACE_SECONDS)
    return list(
        WebhookEvent.objects.filter(status=WebhookStatus.PENDING, received_at__lt=before)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_process(*, event_id: int) -> str:
    """Apply one stored webhook once; answers its status. A processed event is left alone."""
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
                    event.note = handler(event.connection, event.payload.get("data") or {}) or ""
                event.status, event.error = WebhookStatus.PROCESSED, ""
            except (ApplicationError, AttributeError, KeyError, OverflowError, OSError, TypeError, ValueError) as error:
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
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str) and value:
        parsed = parse_datetime(value)
        if parsed is not None and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, UTC)
        return parsed
    return None


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
    return amount if amount > 0 else None


def on_message_received(connection: Connection, data: dict) -> str:
    fan, _ = _fan(connection, data)
    message = data["message"]
    messaging.message_receive(
        fan=fan,
        text=_text(message.get("text"), 5000),
        media_count=max(0, int(message.get("media_count") or 0)),
        platform_message_id=_text(message.get("id"), 128),
        at=_when(message.get("created_at")),
    )
    return ""


def on_subscription(connection: Connection, data: dict) -> str:
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
        messaging.purchase_record(
            fan=fan, kind="subscription", amount=price, at=started,
            platform_purchase_id=_text(f"sub:{subscription['id']}", 128),
        )  # fmt: skip
    return ""


def on_ppv_unlocked(connection: Connection, data: dict) -> str:
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
