"""Writes for delivery: enqueue, send (claim → connector → record), retry, dead letters, re-queue,
and the sweeper that rescues deliveries a lost worker or a lost task message left behind.

The pipeline, in order (docs/delivery.md has the numbers):

1. ``delivery_enqueue`` validates, writes a pending ``Delivery`` in the caller's transaction (one
   per agency and idempotency key, whoever calls first) and publishes the ``deliver`` task on the
   delivery's queue when that transaction commits.
2. ``delivery_send`` (the task's body) claims the delivery with one conditional UPDATE (pending or
   failed and due, or sending with an expired lease → sending, a lease, attempts + 1) and returns
   when nothing changed: another worker has it, or it is done.
3. It calls the platform's connector (apps/delivery/connectors.py) outside any transaction.
4. Success → sent. ``RetryableSendError`` (or anything unexpected) → failed with
   ``next_attempt_at`` after exponential backoff with full jitter (at least the platform's
   Retry-After) and a task published with that countdown; after ``max_attempts`` → dead.
   ``PermanentSendError`` → dead at once. Dead notifies the agency's owners and managers once
   it commits (once per platform account every ten minutes: deliveries die together).
5. ``delivery_sweep`` (beat) turns deliveries whose lease expired while sending into failed (or
   dead when their attempts are used up) and re-publishes due deliveries whose task never came.

Every transition after the claim is conditional on the claim's attempt number (a fencing token),
so a worker that lost its lease cannot overwrite a newer owner's result. Every transition sends
``delivery_status_changed`` after commit. A re-send of the same delivery is safe because the
connector passes the idempotency key to the platform.

Between the claim and the connector call, the send rate limits (limits.py: per platform account,
creator, agency and in all) admit the send or answer a wait: then the delivery is given back
(``deferred``: not an attempt, due again after the wait, its task published with that countdown).
A ``RateLimitedSendError`` (the platform's 429) also slows the account's layer down (AIMD).

A *mass* delivery (``delivery_enqueue_mass``) is one platform-side mass message: one row
carrying many fans (``MassRecipient`` rows), claimed by the pump like any bulk delivery, counted
as one send by the rate limits and the breaker, and sent with the connector's ``send_mass``;
retries, dead letters, hold/release/cancel and the sweeper treat it as any other delivery.

Rules the database cannot state and that live here: text within the platform's limit, a creator
of the same agency, only a dead delivery can be re-queued, who may re-queue. A higher layer holds
(pauses), releases and cancels its own deliveries by source (``delivery_hold`` and friends), and
has the last word on staff's re-queue of them through the re-queue rule it registers
(``delivery_requeue_rule_register``: a cancelled campaign's dead letters stay dead).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from tenacity import wait_random_exponential

from apps.accounts.models import Creator, Membership, Role, User
from apps.accounts.permissions import Perm, require
from apps.core.errors import ApplicationError, ConflictError
from apps.core.shared import shared_state
from apps.delivery import limits, metrics
from apps.delivery.breaker import breaker_record, breaker_wait
from apps.delivery.connectors import (
    MassSendResult,
    PermanentSendError,
    RateLimitedSendError,
    SendError,
    SendResult,
    connector_for,
    require_mass,
)
from apps.delivery.models import MASS_KEY_MAX, Delivery, MassRecipient
from apps.delivery.selectors import delivery_get_for_member
from apps.delivery.signals import delivery_status_changed

logger = logging.getLogger(__name__)

Status = Delivery.Status
MAX_PRICE = Decimal("999999.99")  # max_digits=8, decimal_places=2
MAX_MEDIA = 100
MAX_RETRY_AFTER_SECONDS = 6 * 3600  # a platform's Retry-After is honoured up to this
CLOCK_SKEW = timedelta(seconds=1)  # a retry task may arrive a moment before next_attempt_at
DEAD_NOTICE_SECONDS = 600  # one dead-letter notice per platform account this often at most
LEASE_EXPIRED_ERROR = "The worker sending it stopped before it finished (lease expired)."
# Read once: an enum's .values builds a new list on every call (1.7 s of a 100,000-message enqueue).
QUEUES = frozenset(Delivery.Queue.values)
RECIPIENT_ID_MAX = Delivery._meta.get_field("recipient_id").max_length
# What an attempt that the platform answered with success may record as sent (conditional on its
# attempt number): sending, failed (the sweeper took back its expired lease meanwhile), cancelled
# (its campaign was cancelled during the call). The platform took the message either way.
SENT_FROM = (Status.SENDING, Status.FAILED, Status.CANCELLED)


# --- Enqueue ---------------------------------------------------------------------------------


def _clean_price(ppv_price: Decimal | int | str | None) -> Decimal | None:
    if ppv_price is None:
        return None
    if isinstance(ppv_price, float):
        raise ApplicationError("Give the PPV price as a decimal amount, not a float.", field="ppv_price")
    try:
        price = Decimal(str(ppv_price))
    except InvalidOperation:
        raise ApplicationError(f"{ppv_price!r} is not a price.", field="ppv_price") from None
    if not price.is_finite() or price <= 0:
        raise ApplicationError("The PPV price must be more than zero.", field="ppv_price")
    if price > MAX_PRICE:
        raise ApplicationError(f"The PPV price must be at most {MAX_PRICE}.", field="ppv_price")
    if price != price.quantize(Decimal("0.01")):
        raise ApplicationError("The PPV price has at most two decimal places.", field="ppv_price")
    return price


def _validate(
    *,
    platform: str,
    recipient_id: str,
    text: str,
    media_count: int,
    idempotency_key: str,
    queue: str,
    source: str,
    limit: int | None = None,
) -> None:
    from apps.delivery.connectors import text_limit

    if limit is None:
        limit = text_limit(platform)  # UnknownPlatformError (an ApplicationError) for an unknown platform
    if not text or not text.strip():
        raise ApplicationError("The message is empty.", field="text")
    if "\x00" in text:
        raise ApplicationError("The message contains a NUL character.", field="text")
    if len(text) > limit:
        raise ApplicationError(
            f"The message is {len(text)} characters long; {platform} takes at most {limit}.",
            field="text",
            extra={"limit": limit, "length": len(text)},
        )
    if not recipient_id or len(recipient_id) > RECIPIENT_ID_MAX:
        raise ApplicationError("The fan's platform id is missing or too long.", field="recipient_id")
    if not isinstance(media_count, int) or not 0 <= media_count <= MAX_MEDIA:
        raise ApplicationError(f"A message carries 0 to {MAX_MEDIA} media.", field="media_count")
    if not idempotency_key or len(idempotency_key) > 64:
        raise ApplicationError("An idempotency key of 1 to 64 characters is required.", field="idempotency_key")
    if queue not in QUEUES:
        raise ApplicationError(f"Unknown queue {queue!r}: use {', '.join(sorted(QUEUES))}.", field="queue")
    if len(source) > 64:
        raise ApplicationError("The source name is at most 64 characters.", field="source")


def delivery_enqueue(
    *,
    agency_id: int,
    creator_id: int,
    platform: str,
    recipient_id: str,
    text: str,
    ppv_price: Decimal | None = None,
    media_count: int = 0,
    idempotency_key: str,
    queue: str = Delivery.Queue.INTERACTIVE,
    source: str = "",
    source_id: int | None = None,
) -> Delivery:
    """A pending delivery, sent by the ``deliver`` task once the caller's transaction commits.

    The same agency and idempotency key answer the delivery already made (whatever it holds; the
    first call wins), never a second row. The caller authorises the member; this checks the data.
    """
    _validate(
        platform=platform,
        recipient_id=recipient_id,
        text=text,
        media_count=media_count,
        idempotency_key=idempotency_key,
        queue=queue,
        source=source,
    )
    price = _clean_price(ppv_price)
    existing = Delivery.objects.for_agency(agency_id).filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    creator = Creator.objects.for_agency(agency_id).filter(pk=creator_id).only("pk", "currency").first()
    if creator is None:
        raise ApplicationError("No such creator in this agency.", field="creator_id")
    now = timezone.now()
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                agency_id=agency_id,
                creator_id=creator.pk,
                platform=platform,
                recipient_id=recipient_id,
                text=text,
                ppv_price=price,
                currency=creator.currency,
                media_count=media_count,
                queue=queue,
                idempotency_key=idempotency_key,
                source=source,
                source_id=source_id,
                max_attempts=settings.DELIVERY_MAX_ATTEMPTS,
                next_attempt_at=now,
            )
    except IntegrityError:  # another transaction made it between our read and our insert
        existing = Delivery.objects.for_agency(agency_id).filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    _dispatch(delivery.pk, delivery.queue)
    return delivery


@dataclass(frozen=True)
class Outbound:
    """One message of a bulk enqueue (``delivery_enqueue_many``)."""

    recipient_id: str
    text: str
    idempotency_key: str
    ppv_price: Decimal | None = None
    media_count: int = 0
    source_id: int | None = None


def delivery_enqueue_many(
    *,
    agency_id: int,
    creator_id: int,
    platform: str,
    messages: Iterable[Outbound],
    source: str = "",
    batch_size: int = 2000,
) -> int:
    """Pending ``bulk`` deliveries for one platform account, written in batches and sent by the
    account's pump (``delivery_pump``), not one task each. Every message is validated first;
    the first bad one raises ``ApplicationError`` naming its index and nothing is written. A key
    the agency used before is skipped (its delivery stays as it is). Answers how many messages
    were given (written or already there)."""
    creator = Creator.objects.for_agency(agency_id).filter(pk=creator_id).only("pk", "currency").first()
    if creator is None:
        raise ApplicationError("No such creator in this agency.", field="creator_id")
    from apps.delivery.connectors import text_limit

    limit = text_limit(platform)
    now = timezone.now()
    rows = []
    for index, message in enumerate(messages):
        try:
            _validate(
                platform=platform,
                recipient_id=message.recipient_id,
                text=message.text,
                media_count=message.media_count,
                idempotency_key=message.idempotency_key,
                queue=Delivery.Queue.BULK,
                source=source,
                limit=limit,
            )
            price = _clean_price(message.ppv_price)
        except ApplicationError as error:
            raise ApplicationError(
                f"Message {index + 1}: {error.message}", field=error.field, extra={**error.extra, "index": index}
            ) from None
        rows.append((message.recipient_id, message.text, price, message.media_count, message.idempotency_key,
                     message.source_id))  # fmt: skip
    with transaction.atomic():
        _insert_bulk(rows, agency_id=agency_id, creator=creator, platform=platform, source=source, now=now)
        _dispatch_pump(creator.pk, platform)
    return len(rows)


def _insert_bulk(rows: list[tuple], *, agency_id: int, creator: Creator, platform: str, source: str, now) -> None:
    """Write the rows, skipping a key the agency used before (the unique constraint), as
    ``delivery_enqueue`` answers the existing delivery for it. The ORM's ``bulk_create`` spent
    ~250 µs a row preparing each field of each row (100,000 rows in 25 s; docs/benchmarks.md):
    PostgreSQL gets the rows by ``COPY``: straight into the table when none of the keys exists
    yet (one indexed look-up of them all first; a concurrent writer's key makes the COPY fail
    and roll back to its savepoint), else into a temporary table and one ``INSERT … SELECT … ON
    CONFLICT DO NOTHING`` (the straight path saves that second pass, ~3 s of 100,000 rows);
    SQLite gets multi-row ``INSERT … ON CONFLICT DO NOTHING`` statements with the values
    adapted once."""
    constant = {
        "agency_id": agency_id,
        "creator_id": creator.pk,
        "platform": platform,
        "currency": creator.currency,
        "queue": Delivery.Queue.BULK.value,
        "source": source,
        "status": Status.PENDING.value,
        "attempts": 0,
        "max_attempts": settings.DELIVERY_MAX_ATTEMPTS,
        "last_error": "",
        "next_attempt_at": now,
        "platform_message_id": "",
        "created_at": now,
        "updated_at": now,
    }
    varying = ("recipient_id", "text", "ppv_price", "media_count", "idempotency_key", "source_id")
    columns = tuple(constant) + varying
    ops = connection.ops
    table = ops.quote_name(Delivery._meta.db_table)
    names = ", ".join(ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            fixed = tuple(constant.values())
            keys = [row[4] for row in rows]
            cursor.execute(
                f"SELECT 1 FROM {table} WHERE agency_id = %s AND idempotency_key = ANY(%s) LIMIT 1",  # noqa: S608
                [agency_id, keys],
            )
            if cursor.fetchone() is None:  # all new (a campaign's first start): straight in
                import psycopg

                try:
                    with transaction.atomic(), cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(fixed + row)
                    return
                except (IntegrityError, psycopg.IntegrityError):  # a key twice, or a concurrent writer's
                    pass
            cursor.execute(
                f"CREATE TEMPORARY TABLE delivery_bulk_in ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"  # noqa: S608
            )
            with cursor.cursor.copy(f"COPY delivery_bulk_in ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(fixed + row)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM delivery_bulk_in ON CONFLICT DO NOTHING"  # noqa: S608
            )
            cursor.execute("DROP TABLE delivery_bulk_in")
            return
        adapted = [
            ops.adapt_datetimefield_value(value) if isinstance(value, datetime) else value
            for value in constant.values()
        ]
        prices: dict[Decimal, object] = {}
        per_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        chunk = min(1000, (connection.features.max_query_params or 65535) // len(columns))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            params: list = []
            for recipient_id, text, price, media_count, key, source_id in part:
                if price is not None and price not in prices:
                    prices[price] = ops.adapt_decimalfield_value(price, 8, 2)
                params += adapted
                params += [recipient_id, text, prices.get(price) if price is not None else None, media_count, key,
                           source_id]  # fmt: skip
            insert = f"INSERT INTO {table} ({names}) VALUES {', '.join([per_row] * len(part))} ON CONFLICT DO NOTHING"  # noqa: S608
            cursor.execute(insert, params)


def delivery_enqueue_mass(
    *,
    agency_id: int,
    creator_id: int,
    platform: str,
    recipient_ids: Iterable[str],
    text: str,
    ppv_price: Decimal | None = None,
    media_count: int = 0,
    idempotency_key: str,
    source: str = "",
    source_id: int | None = None,
) -> Delivery:
    """A pending ``bulk`` *mass* delivery: one platform-side mass message of ``text`` to the fans
    ``recipient_ids`` (their platform ids, a repeated one once), written in the caller's
    transaction and sent by the account's pump with one connector call (``send_mass``).

    It goes through the same claim, rate limits, breaker, retries, dead letter and idempotency
    key as any delivery, and counts as **one send** against the account's limits: the platform
    takes it as one request (its own mass-message queue then reaches the fans), so pacing the
    account by requests is what keeps it within the platform's limits; a platform that answers
    429 to it slows the account down as for any send.

    Refused with ``ApplicationError`` naming the field, nothing written: a platform whose
    connector has no mass message (``MassUnsupportedError``, field ``platform``), no fans or a
    bad fan id (``recipient_ids``, with its index), a key over ``MASS_KEY_MAX`` characters (the
    fans' per-recipient keys derive from it), and everything ``delivery_enqueue`` refuses. The
    same agency and key answer the delivery already made (the first call wins)."""
    require_mass(platform)
    recipients = list(dict.fromkeys(recipient_ids))
    if not recipients:
        raise ApplicationError("A mass message needs at least one fan.", field="recipient_ids")
    for index, recipient in enumerate(recipients):
        if not isinstance(recipient, str) or not recipient or len(recipient) > RECIPIENT_ID_MAX:
            raise ApplicationError(
                f"Fan {index + 1}: the platform id is missing or too long.",
                field="recipient_ids",
                extra={"index": index},
            )
    if len(idempotency_key) > MASS_KEY_MAX:
        raise ApplicationError(
            f"A mass message's idempotency key has at most {MASS_KEY_MAX} characters.", field="idempotency_key"
        )
    _validate(
        platform=platform,
        recipient_id=recipients[0],  # every fan was checked above
        text=text,
        media_count=media_count,
        idempotency_key=idempotency_key,
        queue=Delivery.Queue.BULK,
        source=source,
    )
    price = _clean_price(ppv_price)
    existing = Delivery.objects.for_agency(agency_id).filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    creator = Creator.objects.for_agency(agency_id).filter(pk=creator_id).only("pk", "currency").first()
    if creator is None:
        raise ApplicationError("No such creator in this agency.", field="creator_id")
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                agency_id=agency_id,
                creator_id=creator.pk,
                platform=platform,
                kind=Delivery.Kind.MASS,
                recipient_id="",
                recipient_count=len(recipients),
                text=text,
                ppv_price=price,
                currency=creator.currency,
                media_count=media_count,
                queue=Delivery.Queue.BULK,
                idempotency_key=idempotency_key,
                source=source,
                source_id=source_id,
                max_attempts=settings.DELIVERY_MAX_ATTEMPTS,
                next_attempt_at=timezone.now(),
            )
            _insert_recipients(delivery, recipients)
    except IntegrityError:  # another transaction made it between our read and our insert
        existing = Delivery.objects.for_agency(agency_id).filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing
    _dispatch_pump(creator.pk, platform)
    return delivery


def _insert_recipients(delivery: Delivery, recipients: list[str]) -> None:
    """A mass delivery's fans, one row each: ``COPY`` on PostgreSQL (100,000 fans in well under
    a second), one prepared statement run for every row on SQLite (``executemany``)."""
    ops = connection.ops
    table = ops.quote_name(MassRecipient._meta.db_table)
    names = ", ".join(ops.quote_name(column) for column in ("agency_id", "delivery_id", "recipient_id", "rejected"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for recipient in recipients:
                    copy.write_row((delivery.agency_id, delivery.pk, recipient, False))
            return
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES (%s, %s, %s, %s)",  # noqa: S608
            [(delivery.agency_id, delivery.pk, recipient, False) for recipient in recipients],
        )


def _dispatch_pump(creator_id: int, platform: str, countdown: float | None = None) -> None:
    from apps.delivery.tasks import pump_deliveries

    _pump_expected(creator_id, platform, until=time.time() + (countdown or 0.0))
    options = {"countdown": countdown} if countdown else {}
    pump_deliveries.apply_async_on_commit(args=(creator_id, platform), queue=Delivery.Queue.BULK.value, **options)


def _pump_key(creator_id: int, platform: str) -> str:
    return f"delivery:pump:{creator_id}:{platform}"


def _pump_expected(creator_id: int, platform: str, *, until: float) -> None:
    """The account's heartbeat: a pump of it is at work or published to start by ``until`` (epoch
    seconds). The sweeper leaves the account's overdue deliveries to that pump until ``until``
    is more than DELIVERY_SWEEP_GRACE_SECONDS past. Never raises: a heartbeat not written costs
    one more pump at the next sweep, not a send."""
    try:
        ttl = max(0.0, until - time.time()) + settings.DELIVERY_SWEEP_GRACE_SECONDS
        shared_state().set_record_sync(_pump_key(creator_id, platform), {"until": until}, ttl)
    except Exception:
        logger.warning("could not write the pump heartbeat of %s on %s", creator_id, platform, exc_info=True)


def _pump_alive(creator_id: int, platform: str, *, now: float) -> bool:
    """A pump of the account ran or was published lately enough (``_pump_expected``); no answer
    from the shared state counts as no pump, so the sweeper rescues rather than waits."""
    try:
        record = shared_state().get_record_sync(_pump_key(creator_id, platform))
    except Exception:
        logger.warning("could not read the pump heartbeat of %s on %s", creator_id, platform, exc_info=True)
        return False
    return float(record.get("until", 0.0)) + settings.DELIVERY_SWEEP_GRACE_SECONDS > now


def _dispatch(delivery_id: int, queue: str, countdown: float | None = None) -> None:
    """Publish the send task when the current transaction commits (at once outside one)."""
    from apps.delivery.tasks import deliver

    options = {"countdown": countdown} if countdown else {}
    deliver.apply_async_on_commit(args=(delivery_id,), queue=queue, **options)


def _announce(delivery: Delivery, status: str) -> None:
    """``delivery_status_changed`` after commit; a failing receiver is logged, never raised."""
    kwargs = {
        "delivery_id": delivery.pk,
        "agency_id": delivery.agency_id,
        "status": status,
        "source": delivery.source,
        "source_id": delivery.source_id,
    }

    def send() -> None:
        for receiver, result in delivery_status_changed.send_robust(sender=Delivery, **kwargs):
            if isinstance(result, Exception):
                logger.error(
                    "delivery_status_changed receiver %r failed for delivery %s",
                    receiver,
                    delivery.pk,
                    exc_info=result,
                )

    transaction.on_commit(send)


# --- Send ------------------------------------------------------------------------------------


def retry_delay(*, attempt: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``attempt`` (1 = after the first failure): exponential
    backoff with full jitter (tenacity's ``wait_random_exponential``: uniform between 0 and
    ``min(cap, base * 2^(attempt-1))``), and never sooner than the platform's Retry-After."""
    wait = wait_random_exponential(
        multiplier=settings.DELIVERY_RETRY_BASE_SECONDS, max=settings.DELIVERY_RETRY_MAX_SECONDS
    )
    backoff = wait(SimpleNamespace(attempt_number=attempt))
    return max(backoff, min(retry_after or 0.0, MAX_RETRY_AFTER_SECONDS))


def delivery_claim(*, delivery_id: int) -> Delivery | None:
    """Take the delivery for one send attempt, or None when it is not ours to send (another
    worker holds a live lease, it is not due yet, or it is sent or dead)."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_SKEW)
    claimable = (Q(status__in=[Status.PENDING, Status.FAILED]) & due) | Q(status=Status.SENDING, lease_until__lt=now)
    claimed = Delivery.objects.filter(claimable, pk=delivery_id).update(
        status=Status.SENDING,
        lease_until=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("creator").get(pk=delivery_id)
    _announce(delivery, Status.SENDING)
    return delivery


def delivery_send(*, delivery_id: int) -> str:
    """One send attempt of a delivery; answers its status afterwards, or "skipped" when it was
    not claimable (so running the task twice sends once)."""
    delivery = delivery_claim(delivery_id=delivery_id)
    if delivery is None:
        return "skipped"
    paused, probe = breaker_wait(delivery.platform)
    if paused is not None:
        return _defer(delivery, paused)
    wait = limits.send_admit(agency_id=delivery.agency_id, creator_id=delivery.creator_id, platform=delivery.platform)
    if wait is not None:
        return _defer(delivery, wait)
    return _send_claimed(delivery, probe=probe)


def _send_claimed(delivery: Delivery, *, probe: bool = False) -> str:
    """The connector call of a claimed and admitted delivery (the breaker's ``probe`` or not),
    and its recorded outcome."""
    try:
        if delivery.kind == Delivery.Kind.MASS:
            result = _send_mass(delivery)
        else:
            result = connector_for(delivery.platform).send(delivery)
    except Exception as error:
        breaker_record(delivery.platform, sends=1, failures=int(_is_outage(error)), probe=probe)
        return _record_error(delivery, error)
    breaker_record(delivery.platform, sends=1, failures=0, probe=probe)
    return _record_sent(delivery, result)


def _send_mass(delivery: Delivery) -> MassSendResult:
    """One call to the platform's mass endpoint with every fan of the mass delivery; answers
    the result with ``rejected`` holding every fan the platform did not take (whether it listed
    the refused ones or the accepted ones)."""
    recipients = list(
        MassRecipient.objects.filter(delivery_id=delivery.pk).order_by("id").values_list("recipient_id", flat=True)
    )
    result = connector_for(delivery.platform).send_mass(delivery, recipients)
    return MassSendResult(
        platform_message_id=result.platform_message_id,
        sent_at=result.sent_at,
        rejected=tuple(sorted(result.refused(recipients))),
    )


def _is_outage(error: Exception) -> bool:
    """A failure that says the platform is down (the breaker counts it): not a refusal of this
    message, not a 429 (the account's rate limit slows down for that)."""
    if isinstance(error, RateLimitedSendError):
        return False
    return error.retryable if isinstance(error, SendError) else True


# --- The account pump: bulk deliveries, paced per platform account ------------------------------

PUMP_BATCH = 50  # deliveries claimed at once
PUMP_SECONDS = 20.0  # one pump task sends this long at most, then hands over to a new one
PUMP_SLEEP_MAX = 1.0  # a limiter wait up to this is slept in the task; a longer one reschedules it


def _claim_batch(*, creator_id: int, platform: str, limit: int) -> list[Delivery]:
    """Claim up to ``limit`` due pending bulk deliveries of one account, oldest first (a failed
    one is retried by its own task, published when it failed), in one statement that answers the
    claimed rows. PostgreSQL skips rows another pump has locked (``FOR UPDATE SKIP LOCKED``);
    SQLite runs the statement alone (one writer at a time)."""
    now = timezone.now()
    ops = connection.ops
    table = ops.quote_name(Delivery._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    claim = (
        f"UPDATE {table} SET status = %s, lease_until = %s, attempts = attempts + 1, updated_at = %s "  # noqa: S608
        f"WHERE id IN (SELECT id FROM {table} WHERE creator_id = %s AND platform = %s AND queue = %s "
        "AND status = %s AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
        f"ORDER BY id LIMIT %s{lock}) RETURNING *"
    )
    adapt = ops.adapt_datetimefield_value
    params = [
        Status.SENDING.value, adapt(now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)), adapt(now),
        creator_id, platform, Delivery.Queue.BULK.value, Status.PENDING.value, adapt(now + CLOCK_SKEW), limit,
    ]  # fmt: skip
    with transaction.atomic():
        claimed = sorted(Delivery.objects.raw(claim, params), key=lambda delivery: delivery.pk)
    for delivery in claimed:
        _announce(delivery, Status.SENDING)
    return claimed


def _admit_up_to(count: int, *, agency_id: int, creator_id: int, platform: str) -> tuple[int, float | None]:
    """Take up to ``count`` sends from the rate limits in one step when the layers' bursts allow
    it, else one: (taken, the wait when none was taken)."""
    account = {"agency_id": agency_id, "creator_id": creator_id, "platform": platform}
    size = limits.batch_size(**account, most=count)
    if size > 1 and limits.send_admit(**account, count=size) is None:
        return size, None
    wait = limits.send_admit(**account)
    return (1, None) if wait is None else (0, wait)


def pump_seconds() -> float:
    """How long one pump task sends: inside the task's time limits, which follow the lease."""
    return max(0.5, min(PUMP_SECONDS, settings.DELIVERY_LEASE_SECONDS / 2 - 6))


def delivery_pump(*, creator_id: int, platform: str, seconds: float | None = None) -> dict[str, int]:
    """Send one account's due bulk deliveries, oldest first, at the pace the send rate limits
    allow, for up to ``seconds``; then hand over to a new pump task if any are left, or come back
    when the limits say. Each round first takes as many sends from the limits as it may (up to
    ``PUMP_BATCH``), then claims that many deliveries and sends them at once, so nothing is held
    while waiting for the limits. Several pumps of one account may run at once (a second
    campaign, the sweeper): their claims never overlap and they share the account's limits, so
    they only split the work. Answers the count of each outcome."""
    deadline = time.monotonic() + (seconds if seconds is not None else pump_seconds())
    outcomes: dict[str, int] = {}
    agency_id = Creator.objects.filter(pk=creator_id).values_list("agency_id", flat=True).first()
    if agency_id is None:
        return outcomes
    account = {"agency_id": agency_id, "creator_id": creator_id, "platform": platform}
    _pump_expected(creator_id, platform, until=time.time() + (deadline - time.monotonic()))
    while time.monotonic() < deadline:
        paused, probe = breaker_wait(platform)
        if paused is not None:  # the platform is failing: come back when the breaker lets a probe through
            _dispatch_pump(creator_id, platform, countdown=paused)
            return outcomes
        taken, wait = _admit_up_to(1 if probe else PUMP_BATCH, **account)
        if not taken:
            if wait is not None:
                metrics.held(wait)
            if wait is not None and wait <= PUMP_SLEEP_MAX and time.monotonic() + wait < deadline:
                time.sleep(wait)
                continue
            _dispatch_pump(creator_id, platform, countdown=wait)
            return outcomes
        batch = _claim_batch(creator_id=creator_id, platform=platform, limit=taken)
        for outcome in _send_batch(batch, probe=probe):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if len(batch) < taken:  # nothing more is due now (retries come back by their own tasks)
            return outcomes
    _dispatch_pump(creator_id, platform)  # more may be due: a new task, so other work gets a turn
    return outcomes


def _send_batch(batch: list[Delivery], *, probe: bool = False) -> list[str]:
    """The pump's send: the connector's batch call, the sent ones recorded together, every other
    outcome as a single send would record it. ``probe``: the batch is the breaker's probe."""
    if not batch:
        return []
    # A mass delivery is a platform call of its own (send_mass), made and recorded as one send.
    outcomes = [_send_claimed(delivery, probe=probe) for delivery in batch if delivery.kind == Delivery.Kind.MASS]
    batch = [delivery for delivery in batch if delivery.kind != Delivery.Kind.MASS]
    if not batch:
        return outcomes
    try:
        results = connector_for(batch[0].platform).send_many(batch)
    except Exception as error:  # the batch call itself failed: each delivery is retried
        logger.exception("connector %s raised on a batch of %s", batch[0].platform, len(batch))
        results = [error] * len(batch)
    outages = sum(1 for result in results if isinstance(result, Exception) and _is_outage(result))
    breaker_record(batch[0].platform, sends=len(batch), failures=outages, probe=probe)
    sent = [
        (delivery, result) for delivery, result in zip(batch, results, strict=True) if isinstance(result, SendResult)
    ]
    recorded = _record_sent_many(sent)
    for delivery, result in zip(batch, results, strict=True):
        if isinstance(result, SendResult):
            outcomes.append(Status.SENT if delivery.pk in recorded else "skipped")
        else:
            outcomes.append(_record_error(delivery, result))
    return outcomes


def _record_error(delivery: Delivery, error: Exception) -> str:
    """Record a failed send by the error's kind: permanent → dead; a 429 also slows the account."""
    if isinstance(error, PermanentSendError):
        return _record_failure(delivery, error.message, permanent=True)
    if isinstance(error, RateLimitedSendError):
        limits.account_slow_down(
            creator_id=delivery.creator_id, platform=delivery.platform, retry_after=error.retry_after
        )
        return _record_failure(delivery, error.message, retry_after=error.retry_after)
    if isinstance(error, SendError):  # RetryableSendError, or a connector's own subclass: trust it
        return _record_failure(delivery, error.message, permanent=not error.retryable, retry_after=error.retry_after)
    # An unexpected error (a connector bug, a timeout) is retried: sends are idempotent by key.
    logger.error("connector %s raised on delivery %s", delivery.platform, delivery.pk, exc_info=error)
    return _record_failure(delivery, f"Unexpected error: {type(error).__name__}: {error}")


def _record_sent_many(sent: list[tuple[Delivery, SendResult]]) -> set[int]:
    """Record sent deliveries with one statement (each conditional on its claim's attempt, as
    ``_record_sent``); answers the ids recorded (a claim taken over is the new owner's to record)."""
    if not sent:
        return set()
    ops = connection.ops
    adapt = ops.adapt_datetimefield_value
    table = ops.quote_name(Delivery._meta.db_table)
    cast = "::bigint, %s::int, %s::timestamptz, %s::varchar" if connection.vendor == "postgresql" else ", %s, %s, %s"
    values = ", ".join([f"(%s{cast})"] * len(sent))
    params: list = []
    for delivery, result in sent:
        params += [delivery.pk, delivery.attempts, adapt(result.sent_at), result.platform_message_id]
    update = (
        f"UPDATE {table} SET status = %s, sent_at = v.sent_at, platform_message_id = v.message_id, "  # noqa: S608
        "lease_until = NULL, next_attempt_at = NULL, updated_at = %s "
        f"FROM (SELECT column1 AS id, column2 AS attempts, column3 AS sent_at, column4 AS message_id "
        f"FROM (VALUES {values}) AS rows) AS v "
        f"WHERE {table}.id = v.id AND {table}.attempts = v.attempts AND {table}.status IN (%s, %s, %s) "
        f"RETURNING {table}.id"
    )
    by_id = {delivery.pk: delivery for delivery, _ in sent}
    with transaction.atomic():
        with connection.cursor() as cursor:
            # VALUES names its columns column1, column2, … on both databases.
            cursor.execute(
                update, [Status.SENT.value, adapt(timezone.now()), *params, *(status.value for status in SENT_FROM)]
            )
            recorded = {row[0] for row in cursor.fetchall()}
        for pk in recorded:
            _announce(by_id[pk], Status.SENT)
    metrics.count(metrics.SENT, len(recorded))
    metrics.attempts(sent[0][0].platform, Status.SENT.value, len(recorded))
    if len(recorded) < len(sent):
        logger.warning(
            "%s sent deliveries had their claim taken over; the new owners record them", len(sent) - len(recorded)
        )
    return recorded


def _defer(delivery: Delivery, wait: float) -> str:
    """The rate limits said wait: give the claim back (not an attempt) and come back after
    ``wait``, or later in the account's line (``limits.account_turn``)."""
    wait = limits.account_turn(creator_id=delivery.creator_id, platform=delivery.platform, wait=wait)
    now = timezone.now()
    status = Status.FAILED if delivery.last_error else Status.PENDING
    with transaction.atomic():
        changed = Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts, status=Status.SENDING).update(
            status=status,
            attempts=F("attempts") - 1,
            lease_until=None,
            next_attempt_at=now + timedelta(seconds=wait),
            updated_at=now,
        )
        if not changed:
            return "skipped"
        _announce(delivery, status)
        _dispatch(delivery.pk, delivery.queue, countdown=wait)
    metrics.held(wait)
    logger.debug("delivery %s waits %.2f s for the send rate limits", delivery.pk, wait)
    return "deferred"


def _record_sent(delivery: Delivery, result: SendResult) -> str:
    """Sent, with the platform's message id; for a mass message also the fans it rejected (on
    their rows and counted on the delivery), in the same transaction."""
    rejected = result.rejected if isinstance(result, MassSendResult) else ()
    extra = {"rejected_count": len(rejected)} if isinstance(result, MassSendResult) else {}
    with transaction.atomic():
        changed = Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts, status__in=SENT_FROM).update(
            status=Status.SENT,
            sent_at=result.sent_at,
            platform_message_id=result.platform_message_id,
            lease_until=None,
            next_attempt_at=None,
            updated_at=timezone.now(),
            **extra,
        )
        if not changed:
            logger.warning("delivery %s was sent but its claim was taken over; the new owner records it", delivery.pk)
            return "skipped"
        for start in range(0, len(rejected), 500):
            part = rejected[start : start + 500]
            MassRecipient.objects.filter(delivery_id=delivery.pk, recipient_id__in=part).update(rejected=True)
        _announce(delivery, Status.SENT)
    logger.info("delivery %s sent on attempt %s", delivery.pk, delivery.attempts)
    metrics.count(metrics.SENT)
    metrics.attempts(delivery.platform, Status.SENT.value)
    return Status.SENT


def _record_failure(
    delivery: Delivery,
    message: str,
    *,
    permanent: bool = False,
    retry_after: float | None = None,
    immediate: bool = False,
    now: datetime | None = None,
) -> str:
    """Failed with a retry scheduled (at once when ``immediate``), or dead when the error is
    permanent or attempts are used up. Conditional on this attempt still owning the delivery."""
    now = now or timezone.now()
    error = message[:2000]
    owned = Delivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts, status=Status.SENDING)
    with transaction.atomic():
        if permanent or delivery.attempts >= delivery.max_attempts:
            if not owned.update(
                status=Status.DEAD, last_error=error, lease_until=None, next_attempt_at=None, updated_at=now
            ):
                return "skipped"
            delivery.last_error = error
            _announce(delivery, Status.DEAD)
            _notify_dead(delivery)
            metrics.count(metrics.FAILED)
            metrics.attempts(delivery.platform, Status.DEAD.value)
            logger.warning("delivery %s is dead after %s attempts: %s", delivery.pk, delivery.attempts, error)
            return Status.DEAD
        delay = 0.0 if immediate else retry_delay(attempt=delivery.attempts, retry_after=retry_after)
        if not owned.update(
            status=Status.FAILED,
            last_error=error,
            lease_until=None,
            next_attempt_at=now + timedelta(seconds=delay),
            updated_at=now,
        ):
            return "skipped"
        _announce(delivery, Status.FAILED)
        _dispatch(delivery.pk, delivery.queue, countdown=delay)
    metrics.count(metrics.FAILED)
    metrics.attempts(delivery.platform, Status.FAILED.value)
    logger.info("delivery %s failed on attempt %s, retry in %.1f s: %s", delivery.pk, delivery.attempts, delay, error)
    return Status.FAILED


def _notify_dead(delivery: Delivery) -> None:
    """Tell the agency's owners and managers once the transaction that made it dead commits.
    A bulk delivery is one of thousands (a campaign during a platform outage): whoever enqueued
    them in bulk reports its dead letters together (campaigns: one "failing" notification).
    Automations and replies die together too (an account that needs reconnecting kills every
    send of its tick): one notice per account every DEAD_NOTICE_SECONDS says so, not one each."""
    if delivery.queue == Delivery.Queue.BULK:
        return
    # After commit, never inside the transaction: the account's notice window lives outside the
    # database (Redis, the shared-state file), so a window taken by a transaction that is then
    # rolled back (a worker killed before its COMMIT) would silence the next dead letter for ten
    # minutes with nobody told. A rolled-back transaction now takes nothing.
    transaction.on_commit(lambda: _send_dead_notice(delivery), robust=True)


def _send_dead_notice(delivery: Delivery) -> None:
    """The dead-letter notice of a committed dead letter, unless one went out for its platform
    account in the last DEAD_NOTICE_SECONDS (a shared counter, ``delivery:dead-notice:…``). Fails
    open: no answer from the shared state tells once more, and a notice that could not be written
    gives the window back, so the account's next dead letter is announced instead."""
    notice = f"delivery:dead-notice:{delivery.agency_id}:{delivery.creator_id}:{delivery.platform}"
    try:
        told_lately = shared_state().incr_sync(notice, DEAD_NOTICE_SECONDS) > 1
    except Exception:  # no answer from the shared state: tell once more rather than lose the dead letter
        logger.warning("could not count the dead-letter notices of %s", notice, exc_info=True)
        told_lately = False
    if told_lately:
        return
    from apps.notifications.models import Notification
    from apps.notifications.services import notification_send

    name = delivery.creator.display_name
    platform = delivery.get_platform_display()
    try:
        with transaction.atomic():
            recipients = Membership.objects.for_agency(delivery.agency_id).filter(role__in=[Role.OWNER, Role.MANAGER])
            for membership in recipients:
                notification_send(
                    membership=membership,
                    title=f"A message from {name} could not be delivered",
                    body=(
                        f"Delivery {delivery.pk} to fan {delivery.recipient_id} on {platform} "
                        f"stopped after {delivery.attempts} attempt(s): {delivery.last_error} "
                        "It is kept as a dead letter; re-queue it once the cause is fixed. "
                        f"More of {name}'s messages on {platform} may have failed with it: for the next "
                        f"{DEAD_NOTICE_SECONDS // 60} minutes they are not announced one by one. Each is kept "
                        "as a dead letter too: a failed reply shows in its conversation, and staff list them "
                        "all in the admin (Deliveries, status Dead)."
                    ),
                    level=Notification.Level.ERROR,
                    kind="deliveries",  # the "Failed deliveries" preference (in the app, by email)
                )
    except Exception:
        try:
            shared_state().delete_sync(notice)
        except Exception:
            logger.warning("could not give back the dead-letter notice window %s", notice, exc_info=True)
        raise


# --- Dead letters ----------------------------------------------------------------------------
#
# The app that enqueued a delivery may have rules of its own about sending it again (a cancelled
# campaign sends nothing more, a paused one's letter waits). It registers a *re-queue rule* for its
# source in its AppConfig.ready (``delivery_requeue_rule_register``), as integrations register
# connectors: delivery asks it without importing it. Staff's re-queue (the admin action) goes
# through the rule; a member's re-queue goes through the app's own page, which applies the same rule.

REQUEUE, HOLD, REFUSE = "requeue", "hold", "refuse"


@dataclass(frozen=True)
class RequeueVerdict:
    """A re-queue rule's answer for one dead delivery: ``requeue`` (pending, sent again), ``hold``
    (re-queued but held: its source is paused, ``delivery_release`` sends it) or ``refuse`` (left
    dead); ``reason`` says why to staff, e.g. "their campaign is cancelled"."""

    action: str = REQUEUE
    reason: str = ""


# A rule gets the dead deliveries of its source that staff chose, inside the re-queue's
# transaction (it may lock and update its own rows there), and answers a verdict per delivery id;
# a delivery it does not name is re-queued.
RequeueRule = Callable[[list[Delivery]], dict[int, RequeueVerdict]]
_requeue_rules: dict[str, RequeueRule] = {}


def delivery_requeue_rule_register(*, source: str, rule: RequeueRule) -> None:
    """Make ``rule`` decide staff's re-queues of ``source``'s dead deliveries (one rule a source;
    registering again replaces it, so a reloaded app config does not stack rules)."""
    _requeue_rules[source] = rule


def _requeue(delivery: Delivery, *, hold: bool = False) -> bool:
    """Dead → pending (or held, ``hold``), with a fresh set of attempts. The attempt count keeps
    growing (it is the claim's fencing token), so the limit moves up instead of the count going
    back to zero. A held one has no task: its source's ``delivery_release`` publishes it."""
    now = timezone.now()
    status = Status.HELD if hold else Status.PENDING
    changed = Delivery.objects.filter(pk=delivery.pk, status=Status.DEAD).update(
        status=status,
        max_attempts=F("attempts") + settings.DELIVERY_MAX_ATTEMPTS,
        next_attempt_at=now,
        lease_until=None,
        updated_at=now,
    )
    if changed:
        _announce(delivery, status)
        if not hold:
            _dispatch(delivery.pk, delivery.queue)
    return bool(changed)


@transaction.atomic
def delivery_requeue(*, membership: Membership, delivery_id: int, hold: bool = False) -> Delivery:
    """Send a dead delivery again (a member with send permission for its creator); ``hold``: the
    caller's source is paused, so it waits held for ``delivery_release``."""
    require(membership, Perm.SEND_MESSAGES)
    delivery = delivery_get_for_member(membership=membership, delivery_id=delivery_id)
    require(membership, Perm.SEND_MESSAGES, creator=delivery.creator)
    if not _requeue(delivery, hold=hold):
        raise ConflictError(
            f"Only a dead delivery can be re-queued; this one is {delivery.get_status_display().lower()}."
        )
    delivery.refresh_from_db()
    return delivery


@dataclass
class StaffRequeue:
    """What staff's re-queue did: ``requeued`` sent again, ``held`` and ``refused`` by the sources'
    rules (reason → how many), ``not_dead`` left alone."""

    requeued: int = 0
    held: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    not_dead: int = 0


@transaction.atomic
def delivery_requeue_for_staff(*, user: User, delivery_ids: list[int]) -> StaffRequeue:
    """The admin action: re-queue the dead ones among ``delivery_ids`` as their sources' re-queue
    rules say (a cancelled campaign's are refused, a paused one's held); answers what it did."""
    if not (user.is_active and user.is_staff and user.has_perm("delivery.change_delivery")):
        raise PermissionDenied("Only staff who may change deliveries can re-queue them.")
    chosen = set(delivery_ids)
    dead = list(Delivery.objects.filter(pk__in=chosen, status=Status.DEAD).order_by("pk"))
    done = StaffRequeue(not_dead=Delivery.objects.filter(pk__in=chosen).count() - len(dead))
    by_source: dict[str, list[Delivery]] = {}
    for delivery in dead:
        by_source.setdefault(delivery.source, []).append(delivery)
    for source, deliveries in sorted(by_source.items()):
        rule = _requeue_rules.get(source)
        verdicts = rule(deliveries) if rule is not None else {}
        for delivery in deliveries:
            verdict = verdicts.get(delivery.pk) or RequeueVerdict()
            if verdict.action == REFUSE:
                done.refused[verdict.reason] += 1
            elif not _requeue(delivery, hold=verdict.action == HOLD):
                done.not_dead += 1  # re-queued by someone else meanwhile
            elif verdict.action == HOLD:
                done.held[verdict.reason] += 1
            else:
                done.requeued += 1
    return done


# --- Pause, resume and cancel a higher layer's deliveries ---------------------------------------
#
# A campaign (source "campaigns.campaign", source_id its id) holds, releases or cancels all of its
# deliveries in one UPDATE each. They are not announced one by one (a campaign may have 100,000):
# the caller knows what it did. A delivery already claimed (sending) finishes its attempt; if that
# attempt fails, the next hold (campaigns repeat it while paused) catches the retry.


def _by_source(agency_id: int, source: str, source_id: int | list[int]):
    if not source:
        raise ApplicationError("A source is needed to hold, release or cancel deliveries.", field="source")
    deliveries = Delivery.objects.for_agency(agency_id).filter(source=source)
    if isinstance(source_id, list):
        return deliveries.filter(source_id__in=source_id)
    return deliveries.filter(source_id=source_id)


def delivery_hold(*, agency_id: int, source: str, source_id: int | list[int]) -> int:
    """Pending and failed deliveries of the source → held: no pump or retry task takes them.
    ``source_id`` may be a list (campaigns' tick holds every paused campaign of an agency at once)."""
    now = timezone.now()
    return (
        _by_source(agency_id, source, source_id)
        .filter(status__in=[Status.PENDING, Status.FAILED])
        .update(status=Status.HELD, updated_at=now)
    )


def delivery_release(*, agency_id: int, source: str, source_id: int) -> int:
    """Held deliveries of the source → pending and due now; their accounts' pumps (bulk) or their
    own tasks (interactive) are published when the transaction commits."""
    now = timezone.now()
    with transaction.atomic():
        held = _by_source(agency_id, source, source_id).filter(status=Status.HELD)
        accounts = set(
            held.filter(queue=Delivery.Queue.BULK).order_by().values_list("creator_id", "platform").distinct()
        )
        single = list(held.exclude(queue=Delivery.Queue.BULK).values_list("pk", "queue"))
        released = held.update(status=Status.PENDING, next_attempt_at=now, lease_until=None, updated_at=now)
        for creator_id, platform in sorted(accounts):
            _dispatch_pump(creator_id, platform)
        for pk, queue in single:
            _dispatch(pk, queue)
    return released


def delivery_cancel(*, agency_id: int, source: str, source_id: int, reason: str) -> int:
    """Unsent deliveries of the source (pending, failed, held, and sending: being handed to the
    platform right now) → cancelled, with ``reason`` as their last error. Sent ones stay sent. An
    attempt in flight finishes its call: if the platform took the message, it is recorded as sent
    (``_record_sent`` accepts a cancelled row of its own attempt); if not, nothing retries it
    (a failure, a deferral and the sweeper only move a row still sending)."""
    now = timezone.now()
    return (
        _by_source(agency_id, source, source_id)
        .filter(status__in=[Status.PENDING, Status.FAILED, Status.HELD, Status.SENDING])
        .update(
            status=Status.CANCELLED, last_error=reason[:300], next_attempt_at=None, lease_until=None, updated_at=now
        )
    )


# --- Sweeper ---------------------------------------------------------------------------------


def delivery_sweep(*, limit: int = 500) -> dict[str, int]:
    """Rescue what a lost worker or a lost task message left: sending deliveries whose lease
    expired become failed (retried at once) or dead (attempts used up); pending and failed
    deliveries overdue by more than DELIVERY_SWEEP_GRACE_SECONDS get their task published again
    (pending bulk ones: their account's pump, unless one ran or was published within the grace
    period, ``_pump_alive``). Overdue rows are marked due now, so each is re-published at most
    once per grace period; ``redispatched`` counts the rows whose task or pump was published."""
    now = timezone.now()
    counts = {"lease_expired": 0, "dead": 0, "redispatched": 0}
    expired = (
        Delivery.objects.filter(status=Status.SENDING, lease_until__lt=now)
        .select_related("creator")
        .order_by("lease_until")[:limit]
    )
    for delivery in expired:
        outcome = _record_failure(delivery, LEASE_EXPIRED_ERROR, immediate=True, now=now)
        if outcome == Status.DEAD:
            counts["dead"] += 1
        elif outcome == Status.FAILED:
            counts["lease_expired"] += 1

    cutoff = now - timedelta(seconds=settings.DELIVERY_SWEEP_GRACE_SECONDS)
    overdue = Q(status__in=[Status.PENDING, Status.FAILED], next_attempt_at__lte=cutoff)
    rows = list(
        Delivery.objects.filter(overdue)
        .order_by("next_attempt_at")
        .values_list("pk", "queue", "creator_id", "platform", "status")[:limit]
    )
    if rows:
        with transaction.atomic():
            Delivery.objects.filter(overdue, pk__in=[row[0] for row in rows]).update(
                next_attempt_at=now, updated_at=now
            )
            accounts: dict[tuple[int, str], int] = {}
            for pk, queue, creator_id, platform, status in rows:
                if queue == Delivery.Queue.BULK and status == Status.PENDING:
                    # pending bulk deliveries go out through their account's pump
                    accounts[creator_id, platform] = accounts.get((creator_id, platform), 0) + 1
                else:
                    _dispatch(pk, queue)
                    counts["redispatched"] += 1
            moment = time.time()
            for (creator_id, platform), count in sorted(accounts.items()):
                # A slow account's pump chain outlives the grace period; publishing another
                # each minute would pile up chains that never end. Only a lost pump is replaced.
                if not _pump_alive(creator_id, platform, now=moment):
                    _dispatch_pump(creator_id, platform)
                    counts["redispatched"] += count
    if any(counts.values()):
        logger.info("delivery sweep: %s", counts)
    return counts
