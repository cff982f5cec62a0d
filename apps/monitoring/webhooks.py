"""Signed alert webhooks: create and delete receivers, sign and deliver events, log each attempt.

An event is one JSON POST to one ``AlertWebhook``; the body is signed with the webhook's secret,
Stripe-like, so the receiver can tell it came from us and is fresh:

    Huntaze-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

(``verify()`` is the reference check; docs/monitoring.md has the same in a dozen lines.)

Delivery (``deliver()``, run by the ``deliver_alert_webhook`` task on the default queue) makes
one attempt and writes it to ``WebhookAttempt``, the delivery log, whatever the outcome. The
attempt as a whole (connecting, sending, reading the answer's status and headers) has
MONITORING_WEBHOOK_TIMEOUT_SECONDS: a receiver that drips its answer a byte at a time cannot hold
the worker, as a per-read timeout would let it. The answer's body is never read (only the status
counts), so neither its size nor its encoding matters. A timeout, a connection error, a 5xx or a
429 is retried with exponential backoff and full jitter (tenacity's ``wait_random_exponential``,
as deliveries are) up to MONITORING_WEBHOOK_MAX_ATTEMPTS; any other answer or HTTP error, or a
URL the egress policy refuses, is final.

Receivers are outside URLs typed by an operator, so they get apps/ai/egress.py's policy: http or
https only, and no loopback, private, link-local or metadata address (unless
MONITORING_WEBHOOK_ALLOW_PRIVATE, on in the embedded default like the AI setting). The URL is
checked when saved and again on every attempt, where the address is checked as the connection is
made (egress's ``guarded_sync_client``: the resolved address that passed is the one connected to,
so DNS rebinding gains nothing) and no redirect is followed.

The secret is generated here, shown once by the page that created it, stored encrypted, and never
logged.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx2
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from tenacity import wait_random_exponential

from apps.ai import egress
from apps.core import signing
from apps.core.signing import sign, signature_header  # noqa: F401  (the names receivers' docs use)
from apps.monitoring.models import Alert, AlertWebhook, WebhookAttempt

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Huntaze-Signature"
EVENTS = ("alert.fired", "alert.resolved")
SIGNATURE_TOLERANCE_SECONDS = 300


# -- signing (the shared scheme of apps/core/signing.py) -----------------------------------------
def verify(secret: str, header: str, body: bytes, *, tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
           now: float | None = None) -> bool:  # fmt: skip
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of now."""
    return signing.verify_header(secret, header, body, tolerance=tolerance, now=now)


def payload(alert: Alert, event: str) -> dict[str, Any]:
    """What a receiver gets: the event and the alert as it is now."""
    return {
        "id": f"{alert.pk}.{event}",  # stable across retries: receivers can drop duplicates
        "event": event,
        "alert_id": alert.pk,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "state": alert.state,
        "title": alert.title,
        "detail": alert.detail,
        "values": alert.values,
        "agency_id": alert.agency_id,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
    }


# -- receivers -----------------------------------------------------------------------------------
def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_url(url: str) -> None:
    """Refuse (``egress.RefusedURL``, on the ``url`` field) a receiver the policy does not allow."""
    try:
        egress.check_url(url, allow_private=settings.MONITORING_WEBHOOK_ALLOW_PRIVATE)
    except egress.RefusedURL as refusal:
        raise egress.RefusedURL(refusal.message, field="url") from None


def webhook_create(*, url: str, description: str = "", agency_id: int | None = None) -> tuple[AlertWebhook, str]:
    """Save a receiver with a new secret; answers it and the secret, to be shown once."""
    check_url(url)
    secret = new_secret()
    webhook = AlertWebhook.objects.create(url=url, description=description, agency_id=agency_id, secret=secret)
    return webhook, secret


def webhook_delete(*, webhook: AlertWebhook) -> None:
    """Delete a receiver and its delivery log; retries still queued for it find nothing to do."""
    webhook.delete()


def webhooks_for(alert: Alert) -> Iterable[AlertWebhook]:
    """The enabled receivers of an alert: service ones for service alerts, the agency's for its."""
    return AlertWebhook.objects.filter(enabled=True, agency_id=alert.agency_id) if alert.agency_id else (
        AlertWebhook.objects.filter(enabled=True, agency__isnull=True)
    )  # fmt: skip


# -- the guarded HTTP client ----------------------------------------------------------------------
def _private_allowed() -> bool:
    return bool(settings.MONITORING_WEBHOOK_ALLOW_PRIVATE)


def guarded_client(timeout: float) -> httpx2.Client:
    """apps/ai/egress.py's client under this app's rule for private addresses: it connects only to
    an address it resolved and checked, follows no redirect, takes no proxy, and each request
    (connecting, sending, reading the status and headers) ends ``timeout`` seconds after it began."""
    return egress.guarded_sync_client(egress.policy_check(_private_allowed), timeout=timeout)


# -- delivery ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    attempt: WebhookAttempt | None
    retry_in: float | None = None  # seconds before the next attempt, when there is one


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after ``attempt``: uniform in [0, min(cap, base x 2^(attempt-1))]."""
    wait = wait_random_exponential(
        multiplier=settings.MONITORING_WEBHOOK_RETRY_BASE_SECONDS, max=settings.MONITORING_WEBHOOK_RETRY_MAX_SECONDS
    )
    return wait(SimpleNamespace(attempt_number=attempt))


def deliver(*, webhook_id: int, alert_id: int, event: str, attempt: int = 1,
            now: datetime | None = None) -> Outcome:  # fmt: skip
    """Make one attempt to deliver ``event`` of an alert to a webhook and log it."""
    webhook = AlertWebhook.objects.filter(pk=webhook_id, enabled=True).first()
    alert = Alert.objects.filter(pk=alert_id).first()
    if webhook is None or alert is None:  # deleted or disabled since: nothing to do
        return Outcome(attempt=None)
    body = json.dumps(payload(alert, event), cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Huntaze-Alerts/1",
        "Huntaze-Event": event,
        SIGNATURE_HEADER: signature_header(webhook.secret, body),
    }
    status_code: int | None = None
    error = ""
    retryable = False
    started = time.perf_counter()
    try:
        check_url(webhook.url)  # scheme, credentials and the address, before any connection
        # Streamed and closed unread: only the status counts, whatever the body's size or encoding.
        with (
            guarded_client(settings.MONITORING_WEBHOOK_TIMEOUT_SECONDS) as client,
            client.stream("POST", webhook.url, content=body, headers=headers) as response,
        ):
            status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
            retryable = status_code >= 500 or status_code == 429
    except egress.RefusedURL as refusal:
        error = f"Refused: {refusal.message}"
    except httpx2.TimeoutException:
        error = f"Timed out after {settings.MONITORING_WEBHOOK_TIMEOUT_SECONDS:g} s"
        retryable = True
    except httpx2.TransportError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        retryable = True
    except httpx2.HTTPError as exc:  # any other failure of the exchange: logged, not retried
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    duration_ms = (time.perf_counter() - started) * 1000
    retry_in = retry_delay(attempt) if retryable and attempt < settings.MONITORING_WEBHOOK_MAX_ATTEMPTS else None
    now = now or timezone.now()
    logged = WebhookAttempt.objects.create(
        webhook=webhook, alert=alert, event=event, attempt=attempt, status_code=status_code, error=error[:300],
        duration_ms=duration_ms, delivered=not error,
        next_retry_at=None if retry_in is None else now + timedelta(seconds=retry_in),
    )  # fmt: skip
    if error:
        logger.warning(
            "alert webhook %s: %s %s attempt %d failed (%s)%s", webhook.pk, event, alert.pk, attempt, error,
            "; retrying" if retry_in is not None else "",
        )  # fmt: skip
    return Outcome(attempt=logged, retry_in=retry_in)
