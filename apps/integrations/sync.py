"""Incremental sync of a third-party API connection: fans, then messages, then transactions.

Each feed is read from the cursor the previous run reached (the provider's feeds are ordered by a
change sequence, so "after my cursor" is both the next page and what changed since), one page at a
time; each page is applied and its cursor saved on the ``SyncRun`` in one transaction. So:

- a run killed mid-way (its heartbeat goes stale) is marked interrupted by the next run, which
  starts from the cursors it saved: pages already applied are not read again;
- a failed run (an outage, a 429 longer than ``INLINE_WAIT_SECONDS``) keeps its cursors the same
  way; a 429 schedules the next run after the provider's Retry-After (tasks.py);
- applying is idempotent and in bulk, a page at a time, through messaging's bulk ingest
  (apps/messaging/ingest.py, the same results as its per-record services): fans only when
  something differs, fan messages once per platform message id, transactions once per platform
  purchase id, so a re-run over the same data, even from the beginning, changes nothing;
- one run at a time per connection (a partial unique constraint on running runs);
- while delivery's breaker for the platform is open (the provider is failing sends), no run
  starts; the task comes back when the cooldown ends.

The connection's health (``last_sync_at``, ``last_error``) follows each run; a provider that
refuses the API key (401, or 403 ``forbidden``) marks the connection needs-reconnect and tells the
agency's owners. Outbound messages in the feed (sent by the creator) are counted as unchanged: the
inbox records what Huntaze sends itself. Purchases are keyed ``<kind>:<transaction id>``, as
webhooks key a subscription payment that names its transaction (webhooks.py), so a payment seen
by both is recorded once and each renewal of a subscription is a purchase of its own.

Not here: HTTP (connectors.py), scheduling (tasks.py), pages (views.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.models import Membership, Role
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import member_list
from apps.core.errors import ApplicationError, ConflictError
from apps.core.timezones import moment_in_range
from apps.delivery.breaker import breaker_status
from apps.delivery.connectors import RateLimitedSendError, SendError, connector_for
from apps.integrations.connectors import Page, PlatformConnector
from apps.integrations.models import (
    API_PLATFORMS,
    Connection,
    ConnectionEvent,
    ConnectionEventKind,
    ConnectionStatus,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from apps.messaging import ingest

logger = logging.getLogger(__name__)

FEEDS = ("fans", "messages", "transactions")
INLINE_WAIT_SECONDS = 5.0  # a 429 asking for at most this is waited out inside the run
MAX_PAGES_PER_RUN = 10_000  # a safety stop for a provider whose feed never ends
# PostgreSQL statistics during a large first sync (ingest.refresh_statistics): in each feed, after
# 2,000 records written, then each time the feed's records grow fourfold (messages: 2k, 8k, 32k and
# 128k), the tables the planner believes smaller than that are analysed, as autovacuum would if it
# kept up. Besides the page's own reads, the commit's deferred foreign-key checks are planned once
# per connection and kept until the table is analysed: planned while the conversations table was
# nearly empty, each message's check scanned it whole (400,000 scans of up to 100,000 rows in a
# full sync: most of its time).
ANALYZE_FIRST_AT = 2_000
ANALYZE_GROWTH = 4
STATES = {"active": "active", "expired": "expired", "none": "none", "follower": "none"}
KINDS = {"subscription": "subscription", "tip": "tip", "ppv": "ppv", "message": "message", "paid_message": "message"}


@dataclass
class SyncOutcome:
    run: SyncRun | None
    retry_in: float | None = None  # seconds before the next run should try (a 429)


class _Stop(Exception):
    def __init__(self, error: SendError):
        self.error = error


def connection_is_live(connection: Connection) -> bool:
    return (
        connection.platform in API_PLATFORMS
        and connection.status == ConnectionStatus.CONNECTED
        and not connection.is_simulated
        and bool(connection.api_key)
    )


# --- Starting runs ----------------------------------------------------------------------------------


def sync_request(*, membership: Membership, connection: Connection) -> None:
    """The "Sync now" button: queue a run of this connection when the transaction commits."""
    require(membership, Perm.EDIT, connection.creator)
    if not connection_is_live(connection):
        raise ApplicationError("Only a connected OnlyFans or Fansly API account (not a simulated one) can be synced.")
    fresh = timezone.now() - timedelta(seconds=settings.INTEGRATIONS_SYNC_STALE_SECONDS)
    if SyncRun.objects.filter(connection=connection, status=SyncStatus.RUNNING, heartbeat_at__gte=fresh).exists():
        raise ConflictError("A sync of this account is already running.")
    from apps.integrations.tasks import sync_connection

    sync_connection.delay_on_commit(connection.pk, SyncTrigger.MANUAL.value, membership.user_id)


def connections_due_for_sync(*, now: datetime | None = None) -> list[int]:
    """Live API connections whose last run started more than the interval ago (or never ran)."""
    now = now or timezone.now()
    recent = SyncRun.objects.filter(
        started_at__gt=now - timedelta(seconds=settings.INTEGRATIONS_SYNC_INTERVAL_SECONDS)
    ).values("connection_id")
    return list(
        Connection.objects.filter(platform__in=API_PLATFORMS, status=ConnectionStatus.CONNECTED, is_simulated=False)
        .exclude(api_key="")
        .exclude(pk__in=recent)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _claim(connection: Connection, *, trigger: str, started_by_id: int | None) -> SyncRun | None:
    """A new running run with the cursors the last finished one reached, or None while another
    run of the connection is alive. A running run whose heartbeat is stale is marked interrupted."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.INTEGRATIONS_SYNC_STALE_SECONDS)
    SyncRun.objects.filter(connection=connection, status=SyncStatus.RUNNING, heartbeat_at__lt=stale).update(
        status=SyncStatus.INTERRUPTED,
        finished_at=now,
        error="The worker running this sync stopped; the next run resumed from its cursors.",
    )
    last = SyncRun.objects.filter(connection=connection).exclude(status=SyncStatus.RUNNING).first()
    try:
        with transaction.atomic():
            return SyncRun.objects.create(
                agency_id=connection.agency_id, connection=connection, trigger=trigger,
                started_by_id=started_by_id, cursors=dict(last.cursors) if last else {}, heartbeat_at=now,
            )  # fmt: skip
    except IntegrityError:
        return None


# --- One run ----------------------------------------------------------------------------------------


def sync_run(
    *, connection_id: int, trigger: str = SyncTrigger.SCHEDULED, started_by_id: int | None = None
) -> SyncOutcome:
    """Run one sync of the connection to the end of every feed. Answers the run (None when the
    connection is not live or another run holds it) and, after a long 429, when to try again."""
    connection = Connection.objects.select_related("creator").filter(pk=connection_id).first()
    if connection is None or not connection_is_live(connection):
        return SyncOutcome(None)
    connector = connector_for(connection.platform)
    if not isinstance(connector, PlatformConnector):
        return SyncOutcome(None)
    breaker = breaker_status(connection.platform)
    if breaker["state"] == "open":  # the platform is failing delivery's sends: come back after the cooldown
        return SyncOutcome(None, retry_in=max(1.0, breaker["until"] - time.time()))
    run = _claim(connection, trigger=trigger, started_by_id=started_by_id)
    if run is None:
        return SyncOutcome(None)
    fetchers = {
        "fans": connector.fetch_fans,
        "messages": connector.fetch_messages,
        "transactions": connector.fetch_transactions,
    }
    appliers = {"fans": _apply_fans, "messages": _apply_messages, "transactions": _apply_transactions}
    cursors = dict(run.cursors)
    try:
        for feed in FEEDS:
            written, analyze_at = 0, ANALYZE_FIRST_AT
            for _ in range(MAX_PAGES_PER_RUN):
                page = _fetch(fetchers[feed], connection, cursors.get(feed, ""))
                if written >= analyze_at:  # a large first sync: keep the planner's picture of the tables true
                    ingest.refresh_statistics(written)
                    analyze_at *= ANALYZE_GROWTH
                with transaction.atomic():
                    synced, unchanged = appliers[feed](connection, page.items)
                    written += synced
                    cursors[feed] = page.next_cursor
                    alive = SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
                        cursors=cursors, pages=F("pages") + 1, unchanged=F("unchanged") + unchanged,
                        heartbeat_at=timezone.now(), **{f"{feed}_synced": F(f"{feed}_synced") + synced},
                    )  # fmt: skip
                    if not alive:  # marked interrupted by another run meanwhile: it owns the cursors now
                        transaction.set_rollback(True)
                        run.refresh_from_db()
                        return SyncOutcome(run)
                if not page.has_more:
                    break
    except _Stop as stop:
        return _finish_failed(run, connection, stop.error)
    except Exception:  # a page we could not apply: the run fails, saying so, instead of staying "running"
        logger.exception("integrations.sync.page_failed", extra={"connection_id": connection.pk, "run_id": run.pk})
        error = SendError("A page from the platform could not be applied; the next run tries it again from its cursor.")
        return _finish_failed(run, connection, error)
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
        status=SyncStatus.SUCCEEDED, finished_at=now, heartbeat_at=now, error=""
    )
    Connection.objects.filter(pk=connection.pk).update(last_sync_at=now, last_error="")
    run.refresh_from_db()
    logger.info(
        "integrations.sync.done",
        extra={"connection_id": connection.pk, "run_id": run.pk, "records": run.records, "pages": run.pages},
    )
    return SyncOutcome(run)


def _fetch(fetch, connection: Connection, cursor: str) -> Page:
    """One page; a 429 with a short Retry-After is waited out here, anything else stops the run."""
    for _ in range(3):
        try:
            return fetch(connection, cursor=cursor, limit=settings.INTEGRATIONS_SYNC_PAGE_SIZE)
        except RateLimitedSendError as error:
            if error.retry_after is not None and error.retry_after <= INLINE_WAIT_SECONDS:
                time.sleep(error.retry_after)
                continue
            raise _Stop(error) from None
        except SendError as error:
            raise _Stop(error) from None
    raise _Stop(RateLimitedSendError("The API provider kept answering 429.", retry_after=60.0))


def _finish_failed(run: SyncRun, connection: Connection, error: SendError) -> SyncOutcome:
    now = timezone.now()
    message = error.message[:2000]
    SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
        status=SyncStatus.FAILED, finished_at=now, heartbeat_at=now, error=message
    )
    Connection.objects.filter(pk=connection.pk).update(last_error=f"Sync failed: {message}"[:2000])
    if error.extra.get("auth"):
        _auth_refused(connection, message)
    run.refresh_from_db()
    logger.warning(
        "integrations.sync.failed",
        extra={"connection_id": connection.pk, "run_id": run.pk, "retryable": error.retryable},
    )
    retry_in = error.retry_after if isinstance(error, RateLimitedSendError) else None
    return SyncOutcome(run, retry_in=retry_in if retry_in is not None else (60.0 if error.retryable else None))


def _auth_refused(connection: Connection, message: str) -> None:
    """The provider refused the API key: needs reconnect, an event, and the owners are told (once)."""
    from apps.notifications.models import Notification
    from apps.notifications.services import notification_send

    text = f"The API provider refused this account's API key during a sync ({message}). Save a valid key again."
    with transaction.atomic():
        changed = Connection.objects.filter(pk=connection.pk, status=ConnectionStatus.CONNECTED).update(
            status=ConnectionStatus.NEEDS_RECONNECT, last_error=text[:2000]
        )
        if not changed:
            return
        ConnectionEvent.objects.create(
            agency_id=connection.agency_id, connection=connection, kind=ConnectionEventKind.REFRESH_FAILED,
            detail=text[:2000],
        )  # fmt: skip
        url = reverse("integrations:creator", kwargs={"creator_id": connection.creator_id})
        for owner in member_list(agency_id=connection.agency_id).filter(role=Role.OWNER):
            notification_send(
                membership=owner,
                title=f"Reconnect {connection.creator.display_name} on {connection.get_platform_display()}",
                body=text, url=url, level=Notification.Level.WARNING,
            )  # fmt: skip


# --- Applying a page (idempotent) -------------------------------------------------------------------


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value)
    except (ValueError, OverflowError):  # the right shape but not a real moment ("2026-02-30T…")
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed if parsed is not None and moment_in_range(parsed) else None  # year 1: see apps/core/timezones.py


def _fan_id(item: Any) -> str:
    fan = item.get("fan") if isinstance(item, dict) and "fan" in item else item
    if not isinstance(fan, dict):
        return ""
    return _text(fan.get("id"), 128).strip()


def _fan_fields(item: dict) -> dict:
    fields = {"username": _text(item.get("username"), 80) or _text(item.get("id"), 80)}
    name = _text(item.get("name"), 120)
    if name:
        fields["display_name"] = name
    subscription = item.get("subscription")
    if isinstance(subscription, dict):
        state = STATES.get(str(subscription.get("state") or ""))
        if state:
            fields["subscription_state"] = state
        for key, field in (("started_at", "subscribed_since"), ("expires_at", "subscription_expires_at")):
            when = _when(subscription.get(key))
            if when is not None:
                fields[field] = when
        if isinstance(subscription.get("renew"), bool):
            fields["renew_on"] = subscription["renew"]
    return fields


def _new_fans(connection: Connection, items: list[dict]) -> None:
    """Create the fans the items name that do not exist yet, from each item's ``fan`` object (the
    first one seen), when the fans feed has not brought them yet."""
    wanted: dict[str, dict] = {}
    for item in items:
        fan_id = _fan_id(item)
        if fan_id and fan_id not in wanted:
            wanted[fan_id] = _fan_fields(item["fan"] if isinstance(item.get("fan"), dict) else {"id": fan_id})
    ingest.fans_upsert(creator=connection.creator, platform=connection.platform, fans=wanted, only_new=True)


def _apply_fans(connection: Connection, items: list[dict]) -> tuple[int, int]:
    wanted = {_fan_id(item): _fan_fields(item) for item in items if _fan_id(item)}
    changed = ingest.fans_upsert(creator=connection.creator, platform=connection.platform, fans=wanted)
    return changed, len(items) - changed


def _apply_messages(connection: Connection, items: list[dict]) -> tuple[int, int]:
    inbound = [item for item in items if item.get("from_fan") is True and _fan_id(item) and item.get("id")]
    _new_fans(connection, inbound)
    messages = []
    for item in inbound:
        try:
            media_count = max(0, min(int(item.get("media_count") or 0), 100))
        except (TypeError, ValueError):
            media_count = 0
        messages.append(
            ingest.InboundMessage(
                platform_fan_id=_fan_id(item), text=_text(item.get("text"), 5000), media_count=media_count,
                platform_message_id=_text(item["id"], 128), at=_when(item.get("created_at")) or timezone.now(),
            )
        )  # fmt: skip
    synced = ingest.messages_receive(creator=connection.creator, platform=connection.platform, messages=messages)
    return synced, len(items) - synced


def _purchase_id(item: dict, kind: str) -> str:
    # Per transaction, never per subscription: each renewal is a payment of its own.
    return _text(f"{kind}:{item.get('id')}", 128)


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and Decimal(0) < amount < Decimal("100000000") else None


def _apply_transactions(connection: Connection, items: list[dict]) -> tuple[int, int]:
    usable, purchases = [], []
    for item in items:
        kind, amount = KINDS.get(str(item.get("type") or "")), _amount(item.get("amount"))
        if kind and amount is not None and item.get("id") and _fan_id(item):
            usable.append(item)
            purchases.append(
                ingest.PurchaseIn(
                    platform_fan_id=_fan_id(item), kind=kind, amount=amount.quantize(Decimal("0.01")),
                    platform_purchase_id=_purchase_id(item, kind), at=_when(item.get("created_at")) or timezone.now(),
                    currency=_text(item.get("currency"), 3).upper() or None,
                )
            )  # fmt: skip
    _new_fans(connection, usable)
    synced = ingest.purchases_record(creator=connection.creator, platform=connection.platform, purchases=purchases)
    return synced, len(items) - synced
