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
   ``PermanentSendError`` → dead at once. Dead notifies the agency's owners and managers.
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

Rules the database cannot state and that live here: text within the platform's limit, a creator
of the same agency, only a dead delivery can be re-queued, who may re-queue. Circuit breaking
around the connector comes with the campaigns pipeline.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from tenacity import wait_random_exponential

from apps.accounts.models import Creator, Membership, Role, User
from apps.accounts.permissions import Perm, require
from apps.core.errors import ApplicationError, ConflictError
from apps.delivery import limits
from apps.delivery.connectors import (
    PermanentSendError,
    RateLimitedSendError,
    RetryableSendError,
    SendError,
    SendResult,
    connector_for,
)
from apps.delivery.models import Delivery
from apps.delivery.selectors import delivery_get_for_member
from apps.delivery.signals import delivery_status_changed

logger = logging.getLogger(__name__)

Status = Delivery.Status
MAX_PRICE = Decimal("999999.99")  # max_digits=8, decimal_places=2
MAX_MEDIA = 100
MAX_RETRY_AFTER_SECONDS = 6 * 3600  # a platform's Retry-After is honoured up to this
CLOCK_SKEW = timedelta(seconds=1)  # a retry task may arrive a moment before next_attempt_at
LEASE_EXPIRED_ERROR = "The worker sending it stopped before it finished (lease expired)."


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
    *, platform: str, recipient_id: str, text: str, media_count: int, idempotency_key: str, queue: str, source: str
) -> None:
    from apps.delivery.connectors import text_limit

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
    if not recipient_id or len(recipient_id) > Delivery._meta.get_field("recipient_id").max_length:
        raise ApplicationError("The fan's platform id is missing or too long.", field="recipient_id")
    if not isinstance(media_count, int) or not 0 <= media_count <= MAX_MEDIA:
        raise ApplicationError(f"A message carries 0 to {MAX_MEDIA} media.", field="media_count")
    if not idempotency_key or len(idempotency_key) > 64:
        raise ApplicationError("An idempotency key of 1 to 64 characters is required.", field="idempotency_key")
    if queue not in Delivery.Queue.values:
        raise ApplicationError(f"Unknown queue {queue!r}: use interactive or bulk.", field="queue")
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
    wait = limits.send_admit(agency_id=delivery.agency_id, creator_id=delivery.creator_id, platform=delivery.platform)
    if wait is not None:
        return _defer(delivery, wait)
    try:
        result = connector_for(delivery.platform).send(delivery)
    except PermanentSendError as error:
        return _record_failure(delivery, error.message, permanent=True)
    except RateLimitedSendError as error:
        limits.account_slow_down(
            creator_id=delivery.creator_id, platform=delivery.platform, retry_after=error.retry_after
        )
        return _record_failure(delivery, error.message, retry_after=error.retry_after)
    except RetryableSendError as error:
        return _record_failure(delivery, error.message, retry_after=error.retry_after)
    except SendError as error:  # a connector's own subclass: trust what it says
        return _record_failure(delivery, error.message, permanent=not error.retryable, retry_after=error.retry_after)
    except Exception as error:
        # An unexpected error (a connector bug, a timeout) is retried: sends are idempotent by key.
        logger.exception("connector %s raised on delivery %s", delivery.platform, delivery.pk)
        return _record_failure(delivery, f"Unexpected error: {type(error).__name__}: {error}")
    return _record_sent(delivery, result)


def _defer(delivery: Delivery, wait: float) -> str:
    """The rate limits said wait: give the claim back (not an attempt) and come back after ``wait``."""
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
    logger.debug("delivery %s waits %.2f s for the send rate limits", delivery.pk, wait)
    return "deferred"


def _record_sent(delivery: Delivery, result: SendResult) -> str:
    with transaction.atomic():
        # FAILED too: the sweeper may have taken back our expired lease while the platform
        # accepted the message; this attempt (the same fencing token) did send it.
        changed = Delivery.objects.filter(
            pk=delivery.pk, attempts=delivery.attempts, status__in=[Status.SENDING, Status.FAILED]
        ).update(
            status=Status.SENT,
            sent_at=result.sent_at,
            platform_message_id=result.platform_message_id,
            lease_until=None,
            next_attempt_at=None,
            updated_at=timezone.now(),
        )
        if not changed:
            logger.warning("delivery %s was sent but its claim was taken over; the new owner records it", delivery.pk)
            return "skipped"
        _announce(delivery, Status.SENT)
    logger.info("delivery %s sent on attempt %s", delivery.pk, delivery.attempts)
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
    logger.info("delivery %s failed on attempt %s, retry in %.1f s: %s", delivery.pk, delivery.attempts, delay, error)
    return Status.FAILED


def _notify_dead(delivery: Delivery) -> None:
    """Tell the agency's owners and managers, inside the transaction that made it dead (so once)."""
    from apps.notifications.models import Notification
    from apps.notifications.services import notification_send

    name = delivery.creator.display_name
    recipients = Membership.objects.for_agency(delivery.agency_id).filter(role__in=[Role.OWNER, Role.MANAGER])
    for membership in recipients:
        notification_send(
            membership=membership,
            title=f"A message from {name} could not be delivered",
            body=(
                f"Delivery {delivery.pk} to fan {delivery.recipient_id} on {delivery.get_platform_display()} "
                f"stopped after {delivery.attempts} attempt(s): {delivery.last_error} "
                "It is kept as a dead letter; re-queue it once the cause is fixed."
            ),
            level=Notification.Level.ERROR,
        )


# --- Dead letters ----------------------------------------------------------------------------


def _requeue(delivery: Delivery) -> bool:
    """Dead → pending, with a fresh set of attempts. The attempt count keeps growing (it is the
    claim's fencing token), so the limit moves up instead of the count going back to zero."""
    now = timezone.now()
    changed = Delivery.objects.filter(pk=delivery.pk, status=Status.DEAD).update(
        status=Status.PENDING,
        max_attempts=F("attempts") + settings.DELIVERY_MAX_ATTEMPTS,
        next_attempt_at=now,
        lease_until=None,
        updated_at=now,
    )
    if changed:
        _announce(delivery, Status.PENDING)
        _dispatch(delivery.pk, delivery.queue)
    return bool(changed)


@transaction.atomic
def delivery_requeue(*, membership: Membership, delivery_id: int) -> Delivery:
    """Send a dead delivery again (a member with send permission for its creator)."""
    require(membership, Perm.SEND_MESSAGES)
    delivery = delivery_get_for_member(membership=membership, delivery_id=delivery_id)
    require(membership, Perm.SEND_MESSAGES, creator=delivery.creator)
    if not _requeue(delivery):
        raise ConflictError(
            f"Only a dead delivery can be re-queued; this one is {delivery.get_status_display().lower()}."
        )
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def delivery_requeue_for_staff(*, user: User, delivery_ids: list[int]) -> int:
    """The admin action: re-queue the dead ones among ``delivery_ids``; answers how many."""
    if not (user.is_active and user.is_staff and user.has_perm("delivery.change_delivery")):
        raise PermissionDenied("Only staff who may change deliveries can re-queue them.")
    dead = Delivery.objects.filter(pk__in=delivery_ids, status=Status.DEAD)
    return sum(_requeue(delivery) for delivery in dead)


# --- Sweeper ---------------------------------------------------------------------------------


def delivery_sweep(*, limit: int = 500) -> dict[str, int]:
    """Rescue what a lost worker or a lost task message left: sending deliveries whose lease
    expired become failed (retried at once) or dead (attempts used up); pending and failed
    deliveries overdue by more than DELIVERY_SWEEP_GRACE_SECONDS get their task published again.
    Re-published rows are marked due now, so each is re-published at most once per grace period."""
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
    rows = list(Delivery.objects.filter(overdue).order_by("next_attempt_at").values_list("pk", "queue")[:limit])
    if rows:
        with transaction.atomic():
            Delivery.objects.filter(overdue, pk__in=[pk for pk, _ in rows]).update(next_attempt_at=now, updated_at=now)
            for pk, queue in rows:
                _dispatch(pk, queue)
        counts["redispatched"] = len(rows)
    if any(counts.values()):
        logger.info("delivery sweep: %s", counts)
    return counts
