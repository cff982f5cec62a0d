"""CRM webhooks: an agency's CRM hears of its domain events, signed, and may update fans back.

Outbound, in order:

1. a feature publishes a domain event on the bus in its own transaction (``fan.created`` and
   ``purchase.recorded`` by messaging, ``campaign.completed`` by campaigns, ``alert.fired`` by
   monitoring; apps/core/events.py);
2. the dispatcher calls ``on_domain_event`` (subscribed in ``IntegrationsConfig.ready``), which
   writes one ``CRMDelivery`` per active CRM connection of the agency subscribed to that kind,
   with the payload built now (fan fields renamed by the connection's field mapping). The row is
   unique per connection and event id, so a re-dispatched event writes nothing twice;
3. the ``deliver_crm_webhook`` task (enqueued on commit) claims the row with a conditional
   UPDATE, POSTs the JSON body signed ``Huntaze-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
   "t.body">`` (apps/core/signing.py) with ``Huntaze-Event-Id`` for the CRM's idempotency, and
   records status, attempts and the response code. A timeout, a connection error, a 5xx or a 429
   is retried with exponential backoff and full jitter (tenacity's ``wait_random_exponential``)
   up to INTEGRATIONS_CRM_MAX_ATTEMPTS; then, or on any other answer, the delivery is dead and the
   agency's owners are told once. ``crm_deliveries_sweep`` (beat) re-enqueues rows whose task was
   lost. A member can replay any delivery (same event id, a fresh series of attempts), and send a
   signed ``test`` event (``crm_test_send``: one attempt at once, answered and not logged).

Inbound: ``POST /integrations/crm/<public id>/inbound/`` signed the same way with the same secret,
timestamp within INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS; stored first (unique per connection and
event id, so a retry changes nothing), then applied: ``fan.updated`` renames the CRM's fields back
through the mapping and writes the writable ones through messaging's services, acting as the
member who set the connection up (their role is checked like any member's).

Target URLs: https only; http to a loopback host only when INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP is
on (DEBUG, tests). Every address the host resolves to is checked by apps/ai/egress.py's policy
when saved and on every attempt (private addresses refused unless that setting is on); an
attempt resolves the name once, in ``egress.guarded_session``, and connects to the very addresses
it checked, so a DNS answer that changes after the check (rebinding) reaches nothing. Redirects
are not followed.

Not here: the pages (views.py) and what a CRM does with our events.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from tenacity import wait_random_exponential

from apps.accounts.models import Membership, Role
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import member_list
from apps.ai import egress
from apps.core import signing
from apps.core.errors import ApplicationError, ConflictError
from apps.core.models import OutboxEvent
from apps.core.shared import shared_state
from apps.integrations.models import (
    CRMConnection,
    CRMDelivery,
    CRMDeliveryStatus,
    CRMEventKind,
    CRMInboundEvent,
    WebhookStatus,
)
from apps.integrations.webhooks import event_parse, event_store_once
from apps.messaging import selectors as messaging_selectors
from apps.messaging import services as messaging
from apps.messaging.models import Fan
from apps.notifications.models import Notification
from apps.notifications.services import notification_send

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Huntaze-Signature"
EVENT_ID_HEADER = "Huntaze-Event-Id"
EVENT_HEADER = "Huntaze-Event"
MAX_INBOUND_BYTES = 256 * 1024
DELIVERIES_PER_PAGE = 25
LOST_TASK_GRACE = timedelta(minutes=2)

# Our fan fields a mapping may name (the outbound payload's keys), and those a CRM may write back.
FAN_FIELDS = (
    "id", "platform", "platform_fan_id", "username", "display_name", "subscription_state", "subscribed_since",
    "subscription_expires_at", "total_spent", "last_purchase_at", "last_active_at", "timezone", "tags",
)  # fmt: skip
WRITABLE_FAN_FIELDS = ("display_name", "timezone", "tags", "note")
MAPPABLE_FIELDS = tuple(dict.fromkeys(FAN_FIELDS + WRITABLE_FAN_FIELDS))
DEFAULT_MAPPING = {name: name for name in FAN_FIELDS}


# --- Connections: create, edit, rotate, delete ---------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def crm_check_url(url: str, *, resolve: bool = True) -> None:
    """Refuse (``ApplicationError`` on ``target_url``) a target the policy does not allow; opens
    no connection. ``resolve=False``: all but the host name's addresses, which the attempt's
    connection checks (``_post``)."""
    try:
        parts = urlsplit(url or "")
    except ValueError:  # "https://[::1": an unclosed IPv6 literal
        raise ApplicationError("Enter a valid URL.", field="target_url") from None
    if parts.scheme == "http":
        if not (settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP and _is_loopback(parts.hostname or "")):
            raise ApplicationError(
                "Use an https:// address: events about fans travel in this request.", field="target_url"
            )
    elif parts.scheme != "https":
        raise ApplicationError("Enter an https:// address.", field="target_url")
    try:
        egress.check_url(url, allow_private=settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP, resolve=resolve)
    except egress.RefusedURL as refusal:
        raise ApplicationError(refusal.message, field="target_url") from None


def _private_allowed() -> bool:
    return bool(settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP)


def mapping_validate(mapping: dict[str, str]) -> dict[str, str]:
    """Our field → the CRM's field name; refuses unknown fields of ours and unusable names."""
    if not isinstance(mapping, dict):
        raise ApplicationError("The field mapping is a list of our field = CRM field pairs.", field="field_mapping")
    unknown = sorted(set(mapping) - set(MAPPABLE_FIELDS))
    if unknown:
        raise ApplicationError(
            f"Unknown fan field {unknown[0]!r}; known fields: {', '.join(MAPPABLE_FIELDS)}.", field="field_mapping"
        )
    clean: dict[str, str] = {}
    for ours, theirs in mapping.items():
        theirs = str(theirs).strip()
        if not theirs or len(theirs) > 64 or not theirs.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise ApplicationError(
                f"The CRM field for {ours!r} must be 1 to 64 letters, digits, '_', '-' or '.'.", field="field_mapping"
            )
        clean[ours] = theirs
    if len(set(clean.values())) != len(clean):
        raise ApplicationError("Two of our fields map to the same CRM field.", field="field_mapping")
    return clean


def _kinds_validate(kinds: list[str]) -> list[str]:
    unknown = set(kinds) - set(CRMEventKind.values)
    if unknown:
        raise ApplicationError(f"Unknown event kind {sorted(unknown)[0]!r}.", field="event_kinds")
    return [kind for kind in CRMEventKind.values if kind in kinds]


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def crm_create(
    *, membership: Membership, name: str, target_url: str, event_kinds: list[str], field_mapping: dict[str, str],
    active: bool = True,
) -> tuple[CRMConnection, str]:  # fmt: skip
    """Save a CRM connection with a new signing secret; answers it and the secret (shown once)."""
    require(membership, Perm.EDIT)
    crm_check_url(target_url)
    values = {"event_kinds": _kinds_validate(event_kinds), "field_mapping": mapping_validate(field_mapping)}
    secret = new_secret()
    try:
        with transaction.atomic():
            crm = CRMConnection.objects.create(
                agency_id=membership.agency_id, name=name.strip(), target_url=target_url, signing_secret=secret,
                active=active, created_by_id=membership.user_id, **values,
            )  # fmt: skip
    except IntegrityError:
        raise ApplicationError("A CRM connection with this name exists already.", field="name") from None
    return crm, secret


def crm_update(
    *, membership: Membership, crm: CRMConnection, name: str, target_url: str, event_kinds: list[str],
    field_mapping: dict[str, str], active: bool,
) -> CRMConnection:  # fmt: skip
    require(membership, Perm.EDIT)
    crm_check_url(target_url)
    crm.event_kinds = _kinds_validate(event_kinds)
    crm.field_mapping = mapping_validate(field_mapping)
    crm.name, crm.target_url, crm.active = name.strip(), target_url, active
    try:
        with transaction.atomic():
            crm.save()
    except IntegrityError:
        raise ApplicationError("A CRM connection with this name exists already.", field="name") from None
    return crm


def crm_rotate_secret(*, membership: Membership, crm: CRMConnection) -> str:
    """A new signing secret, effective at once for both directions; answers it (shown once)."""
    require(membership, Perm.EDIT)
    secret = new_secret()
    CRMConnection.objects.filter(pk=crm.pk).update(signing_secret=secret, updated_at=timezone.now())
    return secret


def crm_delete(*, membership: Membership, crm: CRMConnection) -> None:
    """Delete the connection, its delivery log and inbound events; queued tasks find nothing."""
    require(membership, Perm.EDIT)
    crm.delete()


# --- Reads ---------------------------------------------------------------------------------------


def crm_list(*, membership: Membership) -> QuerySet[CRMConnection]:
    return CRMConnection.objects.for_agency(membership.agency_id).annotate(
        dead_count=Count("deliveries", filter=Q(deliveries__status=CRMDeliveryStatus.DEAD))
    )


def crm_get_for_member(*, membership: Membership, crm_id: int) -> CRMConnection:
    crm = CRMConnection.objects.for_agency(membership.agency_id).filter(pk=crm_id).first()
    if crm is None:
        raise Http404("No such CRM connection.")
    return crm


def crm_deliveries(*, crm: CRMConnection, status: str | None = None) -> QuerySet[CRMDelivery]:
    """The connection's delivery log, newest first (without the payloads)."""
    rows = (
        CRMDelivery.objects.for_agency(crm.agency_id)
        .filter(crm=crm)
        .only("event_id", "kind", "status", "attempts", "response_code", "last_error", "next_attempt_at",
              "delivered_at", "created_at", "crm_id")
    )  # fmt: skip
    return rows.filter(status=status) if status else rows


def crm_deliveries_page(*, crm: CRMConnection, page: str | None) -> Page:
    return Paginator(crm_deliveries(crm=crm), DELIVERIES_PER_PAGE).get_page(page)


def crm_delivery_get_for_member(*, membership: Membership, delivery_id: int) -> CRMDelivery:
    delivery = CRMDelivery.objects.for_agency(membership.agency_id).filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


def crm_inbound_recent(*, crm: CRMConnection, limit: int = 20) -> list[CRMInboundEvent]:
    return list(
        CRMInboundEvent.objects.for_agency(crm.agency_id)
        .filter(crm=crm)
        .only("event_id", "type", "status", "received_at", "error", "note")[:limit]
    )


def crm_for_inbound(*, public_id) -> CRMConnection | None:
    """The active connection an inbound URL names (no member: the URL and signature are the
    credentials)."""
    return CRMConnection.objects.filter(public_id=public_id, active=True).first()


# --- Outbound: the subscriber and the payload -------------------------------------------------------


def _fan_fields(fan: Fan) -> dict[str, Any]:
    values = {
        "id": fan.pk, "platform": fan.platform, "platform_fan_id": fan.platform_fan_id, "username": fan.username,
        "display_name": fan.display_name, "subscription_state": fan.subscription_state,
        "subscribed_since": fan.subscribed_since, "subscription_expires_at": fan.subscription_expires_at,
        "total_spent": str(fan.total_spent), "last_purchase_at": fan.last_purchase_at,
        "last_active_at": fan.last_active_at, "timezone": fan.timezone,
        "tags": sorted(tag.name for tag in fan.tags.all()),
    }  # fmt: skip
    return {key: value.isoformat() if hasattr(value, "isoformat") else value for key, value in values.items()}


def mapped_fan(fan: Fan, mapping: dict[str, str]) -> dict[str, Any]:
    """The fan as the CRM names its fields: only the mapped fields (every field when none is)."""
    mapping = {ours: theirs for ours, theirs in (mapping or DEFAULT_MAPPING).items() if ours in FAN_FIELDS}
    values = _fan_fields(fan)
    return {theirs: values[ours] for ours, theirs in mapping.items()}


def payload_for(event: OutboxEvent, crm: CRMConnection, fan: Fan | None) -> dict[str, Any]:
    data = dict(event.payload)
    if fan is not None:
        data["fan"] = mapped_fan(fan, crm.field_mapping)
    return {
        "id": f"evt_{event.pk}",
        "type": event.kind,
        "created_at": event.created_at.isoformat(),
        "data": data,
    }


def on_domain_event(event: OutboxEvent) -> None:
    """Bus subscriber: one delivery per subscribed active CRM of the event's agency (idempotent by
    the event id), each sent by its own task after commit."""
    if event.agency_id is None or event.kind not in CRMEventKind.values:
        return
    crms = [crm for crm in _active_crms(event) if event.kind in crm.event_kinds]
    if not crms:
        return
    fan = None
    fan_id = event.payload.get("fan_id")
    if isinstance(fan_id, int):
        fan = Fan.objects.for_agency(event.agency_id).filter(pk=fan_id).prefetch_related("tags").first()
    created_ids: list[int] = []
    with transaction.atomic():
        for crm in crms:
            delivery, created = CRMDelivery.objects.get_or_create(
                crm=crm, event_id=event.pk,
                defaults={"agency_id": crm.agency_id, "kind": event.kind, "payload": payload_for(event, crm, fan)},
            )  # fmt: skip
            if created:
                created_ids.append(delivery.pk)
        transaction.on_commit(lambda: _enqueue(created_ids))


_batch = threading.local()


def _active_crms(event: OutboxEvent) -> list[CRMConnection]:
    """The active CRM connections of the event's agency, read once per dispatch batch and agency:
    the events of one batch share the claim token the dispatcher gave them (apps/core/outbox.py
    ``claim``), so a bulk ingest's page of 500 ``fan.created`` costs one query, not 500 (a CRM
    connected during that batch hears from the next). An event dispatched alone has no token and
    reads them itself."""
    key = (event.claim_token, event.agency_id)
    memo = getattr(_batch, "crms", None)
    if event.claim_token and memo is not None and memo[0] == key:
        return memo[1]
    crms = list(CRMConnection.objects.for_agency(event.agency_id).filter(active=True))
    _batch.crms = (key, crms) if event.claim_token else None
    return crms


def _enqueue(delivery_ids: list[int], countdown: float | None = None) -> None:
    from apps.integrations.tasks import deliver_crm_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_crm_webhook.apply_async(args=(delivery_id,), countdown=countdown)
        except Exception:  # the sweep sends what could not be queued
            logger.warning("crm delivery %s: could not queue; the sweep will", delivery_id, exc_info=True)


# --- Outbound: one attempt -------------------------------------------------------------------------


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after ``attempt``: uniform in [0, min(cap, base x 2^(attempt-1))]."""
    wait = wait_random_exponential(
        multiplier=settings.INTEGRATIONS_CRM_RETRY_BASE_SECONDS, max=settings.INTEGRATIONS_CRM_RETRY_MAX_SECONDS
    )
    return wait(SimpleNamespace(attempt_number=attempt))


def body_of(delivery: CRMDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def _headers(crm: CRMConnection, kind: str, event_id: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Huntaze-CRM-Webhooks/1",
        EVENT_HEADER: kind,
        EVENT_ID_HEADER: event_id,
        SIGNATURE_HEADER: signing.signature_header(crm.signing_secret, body),
    }


def _post(
    crm: CRMConnection, body: bytes, headers: dict[str, str], *, even_inactive: bool = False
) -> tuple[int | None, str, bool]:
    """One POST to the CRM; answers (status code, error or "", whether worth a retry). The target
    is checked first (scheme, credentials, a literal address), then the connection resolves the
    name once and connects only to addresses the policy allows (apps/ai/egress.py)."""
    try:
        if not (crm.active or even_inactive):
            raise ApplicationError("The CRM connection is switched off.")
        crm_check_url(crm.target_url, resolve=False)
        with egress.guarded_session(egress.policy_check(_private_allowed)) as session:
            response = session.post(
                crm.target_url, data=body, headers=headers, timeout=settings.INTEGRATIONS_CRM_TIMEOUT_SECONDS,
                allow_redirects=False,
            )  # fmt: skip
    except ApplicationError as refusal:  # egress.RefusedURL included
        return None, f"Refused: {refusal.message}", False
    except requests.Timeout:
        return None, f"Timed out after {settings.INTEGRATIONS_CRM_TIMEOUT_SECONDS:g} s", True
    except requests.RequestException as exc:
        return None, type(exc).__name__, True
    if 200 <= response.status_code < 300:
        return response.status_code, "", False
    return (
        response.status_code,
        f"HTTP {response.status_code}",
        response.status_code >= 500 or response.status_code == 429,
    )


def crm_delivery_attempt(*, delivery_id: int) -> tuple[str, float | None]:
    """Claim a due delivery and make one attempt; answers (status, seconds until the retry)."""
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    claimed = CRMDelivery.objects.filter(
        due, pk=delivery_id, status__in=[CRMDeliveryStatus.PENDING, CRMDeliveryStatus.RETRYING]
    ).update(status=CRMDeliveryStatus.SENDING, next_attempt_at=now + LOST_TASK_GRACE, updated_at=now)
    if not claimed:
        return "skipped", None
    delivery = CRMDelivery.objects.select_related("crm").get(pk=delivery_id)
    crm = delivery.crm
    attempt = delivery.attempts + 1
    body = body_of(delivery)
    headers = _headers(crm, delivery.kind, delivery.payload.get("id", f"evt_{delivery.event_id}"), body)
    status_code, error, retryable = _post(crm, body, headers)
    now = timezone.now()
    retry_in = retry_delay(attempt) if retryable and attempt < settings.INTEGRATIONS_CRM_MAX_ATTEMPTS else None
    if not error:
        status = CRMDeliveryStatus.DELIVERED
    elif retry_in is not None:
        status = CRMDeliveryStatus.RETRYING
    else:
        status = CRMDeliveryStatus.DEAD
    CRMDelivery.objects.filter(pk=delivery.pk, status=CRMDeliveryStatus.SENDING).update(
        status=status, attempts=attempt, response_code=status_code, last_error=error[:500],
        next_attempt_at=None if retry_in is None else now + timedelta(seconds=retry_in),
        delivered_at=now if status == CRMDeliveryStatus.DELIVERED else None, updated_at=now,
    )  # fmt: skip
    if status == CRMDeliveryStatus.DEAD:
        _tell_owners_dead(delivery, error)
    if error:
        logger.warning(
            "crm delivery %s (%s #%s) attempt %d failed: %s", delivery.pk, delivery.kind, delivery.event_id, attempt,
            error,
        )  # fmt: skip
    return status, retry_in


DEAD_NOTICE_SECONDS = 3600  # at most one "did not take" notification per CRM in this window


def _tell_owners_dead(delivery: CRMDelivery, error: str) -> None:
    """Tell the owners a delivery was given up, once per CRM per DEAD_NOTICE_SECONDS: a CRM that
    refuses everything (a revoked key: 401 to every event) would otherwise send one notification
    per fan of an import of ten thousand. The delivery log lists every dead delivery."""
    crm = delivery.crm
    if not shared_state().swap_record_sync(f"integrations:crm-dead:{crm.pk}", None, {"delivery": delivery.pk},
                                           ttl=DEAD_NOTICE_SECONDS):  # fmt: skip
        return
    url = reverse("integrations:crm-detail", kwargs={"crm_id": crm.pk})
    for owner in member_list(agency_id=crm.agency_id).filter(role=Role.OWNER):
        notification_send(
            membership=owner,
            title=f"{crm.name} did not take a {CRMEventKind(delivery.kind).label.lower()} event",
            body=f"Gave up after {delivery.attempts + 1} attempts ({error[:200]}). Replay it from the delivery log, "
            "which lists any other event given up in the next hour without another notification.",
            url=url,
            level=Notification.Level.WARNING,
        )


@dataclass(frozen=True)
class CRMTestResult:
    """What the CRM answered a test event: not logged, nothing retried."""

    event_id: str
    delivered: bool
    status_code: int | None
    error: str
    duration_ms: float


def crm_test_send(*, membership: Membership, crm: CRMConnection) -> CRMTestResult:
    """Send one signed ``test`` event to the CRM now, as a delivery is sent (same headers, same
    address checks, no redirect), and answer how it went. A switched-off connection is sent to
    all the same: the point is to try it before switching it on."""
    require(membership, Perm.EDIT)
    event_id = f"evt_test_{secrets.token_hex(8)}"
    payload = {
        "id": event_id, "type": "test", "created_at": timezone.now().isoformat(),
        "data": {"message": "A test event from Huntaze: the signature and your endpoint work."},
    }  # fmt: skip
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    started = time.perf_counter()
    status_code, error, _ = _post(crm, body, _headers(crm, "test", event_id, body), even_inactive=True)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return CRMTestResult(event_id=event_id, delivered=not error, status_code=status_code, error=error[:500],
                    duration_ms=duration_ms)  # fmt: skip


def crm_delivery_replay(*, membership: Membership, delivery: CRMDelivery) -> CRMDelivery:
    """Send a delivery again (same event id, a fresh series of attempts)."""
    require(membership, Perm.EDIT)
    if delivery.status == CRMDeliveryStatus.SENDING:
        raise ConflictError("This delivery is being sent right now.")
    CRMDelivery.objects.filter(pk=delivery.pk).update(
        status=CRMDeliveryStatus.PENDING, attempts=0, next_attempt_at=None, last_error="", response_code=None,
        delivered_at=None, updated_at=timezone.now(),
    )  # fmt: skip
    transaction.on_commit(lambda: _enqueue([delivery.pk]))
    delivery.refresh_from_db()
    return delivery


def crm_deliveries_due(*, now=None, limit: int = 500) -> list[int]:
    """Deliveries whose task is late or lost: pending/retrying past their time, or a claim older
    than the grace (a worker died mid-attempt)."""
    now = now or timezone.now()
    stale = now - LOST_TASK_GRACE
    return list(
        CRMDelivery.objects.filter(
            Q(status=CRMDeliveryStatus.PENDING, created_at__lte=stale, next_attempt_at__isnull=True)
            | Q(status__in=[CRMDeliveryStatus.PENDING, CRMDeliveryStatus.RETRYING], next_attempt_at__lte=stale)
            | Q(status=CRMDeliveryStatus.SENDING, next_attempt_at__lte=now)
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )


def crm_deliveries_release(*, delivery_ids: list[int], now=None) -> None:
    """Put deliveries whose claim expired back to retrying, so the next task can claim them."""
    now = now or timezone.now()
    CRMDelivery.objects.filter(pk__in=delivery_ids, status=CRMDeliveryStatus.SENDING, next_attempt_at__lte=now).update(
        status=CRMDeliveryStatus.RETRYING, next_attempt_at=now
    )


# --- Inbound ----------------------------------------------------------------------------------------


class InboundRejected(ApplicationError):
    status_code = 401
    code = "bad_signature"


def crm_inbound_verify(*, crm: CRMConnection, header: str | None, body: bytes) -> None:
    if not header:
        raise InboundRejected(f"Missing the {SIGNATURE_HEADER} header.")
    if not signing.verify_header(
        crm.signing_secret, header, body, tolerance=settings.INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS
    ):
        raise InboundRejected("The signature does not match, or its timestamp is outside the replay window.")


def crm_inbound_store(*, crm: CRMConnection, body: bytes) -> tuple[CRMInboundEvent, bool]:
    payload, event_id, event_type = event_parse(body)
    return event_store_once(
        CRMInboundEvent, lookup={"crm": crm, "event_id": event_id},
        agency_id=crm.agency_id, type=event_type, payload=payload,
    )  # fmt: skip


def crm_inbound_process(*, event_id: int) -> str:
    """Apply one stored inbound event once; answers its status."""
    with transaction.atomic():
        event = (
            CRMInboundEvent.objects.select_for_update()
            .select_related("crm")
            .filter(pk=event_id, status__in=[WebhookStatus.PENDING, WebhookStatus.FAILED])
            .first()
        )
        if event is None:
            return "done"
        if event.type != "fan.updated":
            event.status, event.note = WebhookStatus.IGNORED, "Unknown event type: stored, not applied."
        else:
            try:
                with transaction.atomic():
                    event.note = _fan_updated(event.crm, event.payload.get("data"))
                event.status, event.error = WebhookStatus.PROCESSED, ""
            except PermissionDenied:
                event.status = WebhookStatus.FAILED
                event.error = (
                    "The member who set up this CRM connection may not change this fan; save it again as a manager."
                )
            except (ApplicationError, Http404, TypeError, ValueError) as error:
                message = getattr(error, "message", None) or str(error) or type(error).__name__
                event.status, event.error = WebhookStatus.FAILED, message[:500]
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "note", "error", "processed_at"])
    return event.status


def _acting_member(crm: CRMConnection) -> Membership:
    membership = Membership.objects.for_agency(crm.agency_id).filter(user_id=crm.created_by_id).first()
    if membership is None:
        raise ApplicationError("The member who set up this CRM connection has left the agency; save it again.")
    return membership


def _fan_updated(crm: CRMConnection, data: Any) -> str:
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise ApplicationError("The event's data needs `fan_id` and a `fields` object.")
    try:
        fan_id = int(data.get("fan_id"))
    except (TypeError, ValueError, OverflowError):
        raise ApplicationError("The event's data needs a numeric `fan_id`.") from None
    if not 0 < fan_id < 2**63:  # beyond the column's range the database would raise
        raise Http404("No such fan.")
    membership = _acting_member(crm)
    fan = messaging_selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    theirs_to_ours = {theirs: ours for ours, theirs in (crm.field_mapping or DEFAULT_MAPPING).items()}
    if "note" not in (crm.field_mapping or {}):
        theirs_to_ours.setdefault("note", "note")
    applied, skipped = [], []
    updates: dict[str, Any] = {}
    for theirs, value in data["fields"].items():
        ours = theirs_to_ours.get(theirs)
        if ours not in WRITABLE_FAN_FIELDS:
            skipped.append(str(theirs)[:64])
            continue
        if ours == "tags":
            if not isinstance(value, list):
                raise ApplicationError("`tags` must be a list of strings.")
            messaging.fan_tags_set(membership=membership, fan=fan, tags=[str(tag) for tag in value])
        elif ours == "note":
            messaging.fan_note_add(membership=membership, fan=fan, text=str(value or ""))
        else:
            limit = 120 if ours == "display_name" else 64
            updates[ours] = str(value or "")[:limit]
        applied.append(ours)
    if updates:
        require(membership, Perm.SEND_MESSAGES, creator=fan.creator)
        messaging.fan_upsert(creator=fan.creator, platform=fan.platform, platform_fan_id=fan.platform_fan_id, **updates)
    note = f"Updated {', '.join(applied) or 'nothing'}."
    if skipped:
        note += f" Not writable or not mapped: {', '.join(skipped)}."
    return note


def inbound_url(crm: CRMConnection) -> str:
    return settings.SITE_URL + reverse("integrations:crm-inbound", kwargs={"crm_key": crm.public_id})
