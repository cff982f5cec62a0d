"""Writes for campaigns: create and edit drafts, schedule (with approval above the agency's
size), approve, start at the send time (resolve the audience, apply the exclusions, render each
fan's text and write the deliveries in bulk), pause, resume, cancel, and the tick that starts due
campaigns and completes finished ones.

The sending itself is the delivery pipeline's (apps/delivery): per-account pacing, rate limits,
the breaker, retries, dead letters and exactly-once delivery. A campaign only writes its
deliveries (``delivery_enqueue_many``) and holds, releases or cancels them by its source.

Rules the database cannot state and that live here (each refused with a message naming the
field): an audience of at least one fan, a send time not in the past, text within every audience
platform's limit and accepted by the safety policy, only known template variables, a PPV price
inside the creator's range and with media, who may do what (send permission for the creator;
approving needs edit permission).
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import PLATFORMS, Creator, Membership, Role
from apps.accounts.permissions import Perm, has_perm, require
from apps.campaigns.models import CANCELLABLE, DELIVERY_SOURCE, EDITABLE, Campaign, CampaignSettings, CampaignStatus
from apps.core.errors import ApplicationError, ConflictError
from apps.core.timezones import zone_or_utc
from apps.delivery import selectors as delivery_selectors
from apps.delivery import services as delivery_services
from apps.delivery.connectors import text_limit
from apps.messaging import selectors as messaging_selectors
from apps.messaging import services as messaging_services
from apps.messaging.models import Fan, Segment
from apps.messaging.templating import template_render, template_renderer, template_variables
from apps.safety import apply_policy

logger = logging.getLogger(__name__)

MAX_NAME = 120
MAX_MEDIA = 20
MAX_CHOSEN_FANS = 5000
PREVIEW_FANS = 3
START_GRACE = timedelta(minutes=1)  # a send time this far in the past still counts as "now"
MAX_AHEAD = timedelta(days=366)
PAUSED_REPLY = "Campaign paused"


# --- Validation --------------------------------------------------------------------------------


@dataclass
class CampaignInput:
    """What a member gives for a campaign (the form and the API both build one)."""

    creator: Creator
    name: str
    text: str
    segment: Segment | None = None
    fan_ids: list[int] = field(default_factory=list)
    ppv_price: Decimal | None = None
    media: list[str] = field(default_factory=list)
    send_at: datetime | None = None
    exclude_messaged_within_hours: int | None = None
    exclude_no_spend_days: int | None = None


def _clean(membership: Membership, data: CampaignInput) -> dict[str, Any]:
    require(membership, Perm.SEND_MESSAGES, creator=data.creator)
    if data.creator.is_archived:
        raise ApplicationError(f"{data.creator.display_name} is archived; restore the creator first.", field="creator")
    name = (data.name or "").strip()
    if not name:
        raise ApplicationError("Give the campaign a name.", field="name")
    if len(name) > MAX_NAME:
        raise ApplicationError(f"A name has at most {MAX_NAME} characters.", field="name")
    text = (data.text or "").strip()
    media = [str(item).strip() for item in (data.media or []) if str(item).strip()]
    if len(media) > MAX_MEDIA:
        raise ApplicationError(f"Attach at most {MAX_MEDIA} media.", field="media")
    if any(len(item) > 200 for item in media):
        raise ApplicationError("A media reference has at most 200 characters.", field="media")
    if not text:
        raise ApplicationError("Write the message: platforms need text with every message, media or not.", field="text")
    template_variables(text)  # unknown variables and stray braces, with their name
    price = data.ppv_price
    if price is not None:
        try:
            price = Decimal(price)
        except (InvalidOperation, TypeError, ValueError):
            raise ApplicationError("Enter the PPV price as a number, such as 12.99.", field="ppv_price") from None
        creator = data.creator
        if not price.is_finite() or not creator.ppv_price_min <= price <= creator.ppv_price_max:
            raise ApplicationError(
                f"{creator.display_name}'s PPV prices go from {creator.ppv_price_min} to "
                f"{creator.ppv_price_max} {creator.currency}.",
                field="ppv_price",
            )
        if not media:
            raise ApplicationError(
                "A PPV offer needs media to unlock: add at least one media reference.", field="media"
            )
    segment = data.segment
    fan_ids = sorted({int(pk) for pk in (data.fan_ids or [])})
    if segment is not None:
        if segment.agency_id != membership.agency_id or segment.creator_id not in (None, data.creator.pk):
            raise ApplicationError("That segment belongs to another creator.", field="segment")
        fan_ids = []
    elif not fan_ids:
        raise ApplicationError("Choose the audience: a segment or some fans.", field="segment")
    elif len(fan_ids) > MAX_CHOSEN_FANS:
        raise ApplicationError(
            f"Choose at most {MAX_CHOSEN_FANS} fans by hand; save a segment for a larger audience.", field="fan_ids"
        )
    elif Fan.objects.for_agency(membership.agency_id).filter(creator=data.creator, pk__in=fan_ids).count() != len(
        fan_ids
    ):
        raise ApplicationError(f"Some of the chosen fans are not {data.creator.display_name}'s fans.", field="fan_ids")
    send_at = data.send_at
    if send_at is not None:
        if timezone.is_naive(send_at):
            send_at = timezone.make_aware(send_at, creator_zone(data.creator))
        now = timezone.now()
        if send_at < now - START_GRACE:
            raise ApplicationError("That send time has passed; choose a time ahead, or send now.", field="send_at")
        if send_at > now + MAX_AHEAD:
            raise ApplicationError("Schedule at most a year ahead.", field="send_at")
    for key, top in (("exclude_messaged_within_hours", 720), ("exclude_no_spend_days", 3650)):
        value = getattr(data, key)
        if value is not None and not 1 <= int(value) <= top:
            raise ApplicationError(f"Enter a number from 1 to {top}.", field=key)
    return {
        "creator": data.creator,
        "name": name,
        "text": text,
        "segment": segment,
        "fan_ids": fan_ids,
        "ppv_price": price,
        "media": media,
        "send_at": send_at,
        "exclude_messaged_within_hours": data.exclude_messaged_within_hours,
        "exclude_no_spend_days": data.exclude_no_spend_days,
    }


def creator_zone(creator: Creator) -> zoneinfo.ZoneInfo:
    return zone_or_utc(creator.timezone)


def _check_text(campaign: Campaign, platforms: list[str]) -> None:
    """The text within each audience platform's limit (before variables: they add a name at
    most) and accepted by the safety policy there."""
    creator = campaign.creator
    for platform in platforms:
        limit = text_limit(platform)
        if len(campaign.text) > limit:
            raise ApplicationError(
                f"This message is {len(campaign.text)} characters; {PLATFORMS.get(platform, platform)} allows {limit}.",
                field="text",
            )
        policy = apply_policy(
            campaign.text,
            avoid_words=creator.avoid_words,
            avoid_topics=creator.avoid_topics,
            platform=platform,
            direct_message=True,
        )
        if policy.blocked or policy.violations:
            raise ApplicationError(f"Not sendable: {policy.violations[0].message}", field="text")


# --- Drafts --------------------------------------------------------------------------------------


def campaign_create(*, membership: Membership, data: CampaignInput) -> Campaign:
    """A new draft (nothing is sent until it is scheduled)."""
    fields = _clean(membership, data)
    campaign = Campaign(agency_id=membership.agency_id, created_by_id=membership.user_id, **fields)
    _check_text(campaign, _platforms(campaign_audience(campaign)[0]))
    campaign.save()
    return campaign


@transaction.atomic
def campaign_update(*, membership: Membership, campaign: Campaign, data: CampaignInput) -> Campaign:
    """Change a campaign that has not started. A scheduled or awaiting one goes back to draft, so
    what is sent is always what was last scheduled (and approved)."""
    _lock_in(campaign, EDITABLE, "edited")
    fields = _clean(membership, data)
    for key, value in fields.items():
        setattr(campaign, key, value)
    _check_text(campaign, _platforms(campaign_audience(campaign)[0]))
    campaign.status = CampaignStatus.DRAFT
    campaign.approved_by = None
    campaign.approved_at = None
    campaign.last_error = ""
    campaign.save()
    return campaign


def _lock_in(campaign: Campaign, states: set[str], verb: str) -> None:
    """Re-read the campaign's status under a row lock; ConflictError unless it is in ``states``."""
    current = Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("status", flat=True).first()
    if current is None or current not in states:
        label = CampaignStatus(current).label.lower() if current else "gone"
        raise ConflictError(f"This campaign is {label}; it cannot be {verb} now.")
    campaign.status = current


# --- Audience and preview ------------------------------------------------------------------------


def campaign_audience(campaign: Campaign, *, now: datetime | None = None) -> tuple[QuerySet[Fan], QuerySet[Fan]]:
    """(everyone the audience names, those left after the exclusions), both in id order."""
    now = now or timezone.now()
    named = messaging_selectors.fan_audience(
        agency_id=campaign.agency_id,
        creator_id=campaign.creator_id,
        segment=campaign.segment,
        fan_ids=campaign.fan_ids,
        now=now,
    )
    kept = named
    if campaign.exclude_messaged_within_hours:
        recent = delivery_selectors.delivery_sent_to_since(
            agency_id=campaign.agency_id,
            creator_id=campaign.creator_id,
            since=now - timedelta(hours=campaign.exclude_messaged_within_hours),
        ).filter(platform=OuterRef("platform"), recipient_id=OuterRef("platform_fan_id"))
        kept = kept.exclude(Exists(recent))
    if campaign.exclude_no_spend_days:
        kept = kept.filter(last_purchase_at__gte=now - timedelta(days=campaign.exclude_no_spend_days))
    return named, kept


def _platforms(fans: QuerySet[Fan]) -> list[str]:
    """The platforms an audience is on (each has its own text limit and rules)."""
    return sorted(set(fans.order_by().values_list("platform", flat=True).distinct()))


@dataclass
class Preview:
    audience: int
    excluded: int
    messages: list[tuple[Fan, str]]
    problems: list[str]

    @property
    def recipients(self) -> int:
        return self.audience - self.excluded


def campaign_preview(*, campaign: Campaign) -> Preview:
    """The audience count now, how many the exclusions leave out, the message as the first three
    fans would read it, and what would stop it being scheduled."""
    named, kept = campaign_audience(campaign)
    audience = named.count()
    recipients = kept.count()
    fans = list(kept.only("pk", "platform", "platform_fan_id", "username", "display_name")[:PREVIEW_FANS])
    messages = [(fan, template_render(campaign.text, fan=fan, creator=campaign.creator).text) for fan in fans]
    problems = []
    if not recipients:
        problems.append("Nobody to send to: the audience is empty" + (" after the exclusions." if audience else "."))
    try:
        _check_text(campaign, _platforms(named))
    except ApplicationError as error:
        problems.append(error.message)
    return Preview(audience=audience, excluded=audience - recipients, messages=messages, problems=problems)


# --- Schedule, approve, start --------------------------------------------------------------------


def approval_threshold(agency_id: int) -> int | None:
    return CampaignSettings.objects.filter(agency_id=agency_id).values_list("approval_above", flat=True).first()


def campaign_settings_update(*, membership: Membership, approval_above: int | None) -> CampaignSettings:
    require(membership, Perm.EDIT)
    if membership.role != Role.OWNER:
        raise ApplicationError("Only an owner sets when campaigns need approval.", field="approval_above")
    if approval_above is not None and not 1 <= int(approval_above) <= 10_000_000:
        raise ApplicationError(
            "Enter a number of fans from 1 to 10,000,000, or leave it empty.", field="approval_above"
        )
    settings_row, _ = CampaignSettings.objects.update_or_create(
        agency_id=membership.agency_id, defaults={"approval_above": approval_above}
    )
    return settings_row


@transaction.atomic
def campaign_schedule(*, membership: Membership, campaign: Campaign) -> Campaign:
    """Draft → scheduled (sent at its send time, or now), or → awaiting approval when the
    audience is larger than the agency's approval size and the member cannot approve."""
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    _lock_in(campaign, {CampaignStatus.DRAFT}, "scheduled")
    if campaign.send_at is not None and campaign.send_at < timezone.now() - START_GRACE:
        raise ApplicationError("That send time has passed; choose a time ahead, or send now.", field="send_at")
    preview = campaign_preview(campaign=campaign)
    if preview.problems:
        raise ApplicationError(preview.problems[0], field="text" if preview.recipients else "segment")
    threshold = approval_threshold(campaign.agency_id)
    needs_approval = threshold is not None and preview.recipients > threshold and not has_perm(membership, Perm.EDIT)
    campaign.status = CampaignStatus.AWAITING_APPROVAL if needs_approval else CampaignStatus.SCHEDULED
    campaign.last_error = ""
    campaign.save(update_fields=["status", "last_error", "updated_at"])
    if needs_approval:
        _tell_approvers(campaign, preview.recipients)
    else:
        _start_when_due(campaign)
    return campaign


@transaction.atomic
def campaign_approve(*, membership: Membership, campaign: Campaign) -> Campaign:
    require(membership, Perm.EDIT)
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    _lock_in(campaign, {CampaignStatus.AWAITING_APPROVAL}, "approved")
    if campaign.send_at is not None and campaign.send_at < timezone.now() - START_GRACE:
        raise ApplicationError("Its send time has passed; edit the campaign and choose a new one.", field="send_at")
    campaign.status = CampaignStatus.SCHEDULED
    campaign.approved_by_id = membership.user_id
    campaign.approved_at = timezone.now()
    campaign.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
    _start_when_due(campaign)
    return campaign


def _start_when_due(campaign: Campaign) -> None:
    from apps.campaigns.tasks import start_campaign

    wait = (campaign.send_at - timezone.now()).total_seconds() if campaign.send_at else 0
    if wait <= 60:  # later ones are started by the tick (a countdown that long would sit in the broker)
        options = {"countdown": wait} if wait > 0 else {}
        start_campaign.apply_async_on_commit(args=(campaign.pk,), queue="default", **options)


def campaign_start(*, campaign_id: int) -> str:
    """Scheduled and due → sending: resolve the audience now, apply the exclusions, render each
    fan's text and write one bulk delivery per fan (their accounts' pumps send them). Answers
    the campaign's status afterwards, or "skipped" when it was not ours to start."""
    now = timezone.now()
    due = Q(send_at__isnull=True) | Q(send_at__lte=now + timedelta(seconds=1))
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))  # the segment join is nullable: lock the row only
            .select_related("creator", "segment")
            .filter(due, pk=campaign_id, status=CampaignStatus.SCHEDULED)
            .first()
        )
        if campaign is None:
            return "skipped"
        named, kept = campaign_audience(campaign, now=now)
        fans = kept.only("pk", "platform", "platform_fan_id", "username", "display_name")
        render = template_renderer(campaign.text)  # parsed once, filled per fan
        creator = campaign.creator
        by_platform: dict[str, list[delivery_services.Outbound]] = defaultdict(list)
        for fan in fans.iterator(chunk_size=2000):
            by_platform[fan.platform].append(
                delivery_services.Outbound(
                    recipient_id=fan.platform_fan_id,
                    text=render(fan, creator),
                    idempotency_key=campaign.delivery_key(fan.pk),
                    ppv_price=campaign.ppv_price,
                    media_count=campaign.media_count,
                    source_id=campaign.pk,
                )
            )
        targeted = sum(len(messages) for messages in by_platform.values())
        try:
            for platform, messages in sorted(by_platform.items()):
                delivery_services.delivery_enqueue_many(
                    agency_id=campaign.agency_id,
                    creator_id=campaign.creator_id,
                    platform=platform,
                    messages=messages,
                    source=DELIVERY_SOURCE,
                )
        except ApplicationError as error:
            transaction.set_rollback(True)
            return _fail_start(campaign.pk, error.message)
        campaign.status = CampaignStatus.SENDING if targeted else CampaignStatus.COMPLETED
        campaign.targeted = targeted
        campaign.excluded = named.count() - targeted
        campaign.started_at = now
        campaign.finished_at = None if targeted else now
        campaign.save(update_fields=["status", "targeted", "excluded", "started_at", "finished_at", "updated_at"])
    logger.info("campaign %s started: %s deliveries", campaign.pk, targeted)
    if not targeted:
        _tell_author(campaign, f"“{campaign.name}” had nobody to send to", "Its audience was empty at the send time.")
    return campaign.status


def _fail_start(campaign_id: int, reason: str) -> str:
    """A campaign that could not start goes back to draft with the reason (nothing was written)."""
    Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SCHEDULED).update(
        status=CampaignStatus.DRAFT, last_error=f"Could not start: {reason}"[:300], updated_at=timezone.now()
    )
    campaign = Campaign.objects.select_related("creator").get(pk=campaign_id)
    _tell_author(campaign, f"“{campaign.name}” could not start", campaign.last_error, level="error")
    return CampaignStatus.DRAFT


# --- Pause, resume, cancel -----------------------------------------------------------------------


@transaction.atomic
def campaign_pause(*, membership: Membership, campaign: Campaign) -> Campaign:
    """Sending → paused: its unsent deliveries are held at once (one being handed to the platform
    right now finishes)."""
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    _lock_in(campaign, {CampaignStatus.SENDING}, "paused")
    delivery_services.delivery_hold(agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk)
    campaign.status = CampaignStatus.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


@transaction.atomic
def campaign_resume(*, membership: Membership, campaign: Campaign) -> Campaign:
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    _lock_in(campaign, {CampaignStatus.PAUSED}, "resumed")
    delivery_services.delivery_release(agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk)
    campaign.status = CampaignStatus.SENDING
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


@transaction.atomic
def campaign_cancel(*, membership: Membership, campaign: Campaign) -> Campaign:
    """Stop for good: nothing more is sent; what was sent stays sent."""
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    _lock_in(campaign, CANCELLABLE, "cancelled")
    email = getattr(membership.user, "email", "") or "a member"
    delivery_services.delivery_cancel(
        agency_id=campaign.agency_id,
        source=DELIVERY_SOURCE,
        source_id=campaign.pk,
        reason=f"The campaign was cancelled by {email}.",
    )
    campaign.status = CampaignStatus.CANCELLED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at", "updated_at"])
    return campaign


# --- The tick (beat, every few seconds) ----------------------------------------------------------


def campaigns_tick(*, limit: int = 100) -> dict[str, int]:
    """Start scheduled campaigns that are due (their own task may have been lost, or they were
    scheduled far ahead); put what sending and paused ones sent into the fans' conversations;
    complete sending ones with nothing left to send; tell the author once when one is failing;
    and hold again what a paused campaign's in-flight attempts put back."""
    from apps.campaigns.tasks import start_campaign

    now = timezone.now()
    counts = {"started": 0, "completed": 0, "held": 0, "failing": 0}
    due = list(
        Campaign.objects.filter(status=CampaignStatus.SCHEDULED)
        .filter(Q(send_at__isnull=True) | Q(send_at__lte=now))
        .order_by("send_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for campaign_id in due:
        start_campaign.apply_async(args=(campaign_id,), queue="default")
    counts["started"] = len(due)

    active = list(
        Campaign.objects.filter(status__in=[CampaignStatus.SENDING, CampaignStatus.PAUSED])
        .select_related("creator", "created_by")
        .order_by("id")[:limit]
    )
    caught_up = {campaign.pk: _record_all_messages(campaign) for campaign in active}
    stats = campaign_stats(campaigns=active)
    for campaign in active:
        if campaign.status == CampaignStatus.PAUSED:
            counts["held"] += delivery_services.delivery_hold(
                agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk
            )
            continue
        if stats[campaign.pk].unfinished == 0 and caught_up[campaign.pk] and _complete(campaign):
            counts["completed"] += 1
            _tell_completed(campaign, stats[campaign.pk])
        elif _is_failing(stats[campaign.pk]) and _mark_failing(campaign):
            counts["failing"] += 1
            _tell_failing(campaign, stats[campaign.pk])
    return counts


RECORD_BATCH = 2000
RECORD_SECONDS = 5.0  # a tick records batches of one campaign for this long at most


def _record_all_messages(campaign: Campaign) -> bool:
    """Record the campaign's sent messages batch after batch for up to RECORD_SECONDS; True when
    none is left unrecorded."""
    deadline = time.monotonic() + RECORD_SECONDS
    while True:
        if _record_messages(campaign) < RECORD_BATCH:
            return True
        if time.monotonic() >= deadline:
            return False


def _record_messages(campaign: Campaign) -> int:
    """Put up to RECORD_BATCH of the campaign's sent messages that are not in the fans'
    conversations yet into them (messaging's ``messages_record_sent``); answers how many. The
    pump never waits for this: the tick catches up in batches, and a campaign completes only once
    every sent message is recorded."""
    sent = delivery_selectors.delivery_list_by_source(
        agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk, status="sent"
    )
    rows = messaging_services.messages_unrecorded(agency_id=campaign.agency_id, rows=sent).values(
        "platform", "recipient_id", "text", "ppv_price", "media_count", "idempotency_key",
        "platform_message_id", "sent_at",
    )[:RECORD_BATCH]  # fmt: skip
    batch = [messaging_services.SentElsewhere(**row) for row in rows]
    if not batch:
        return 0
    messaging_services.messages_record_sent(
        agency_id=campaign.agency_id,
        creator_id=campaign.creator_id,
        campaign_id=campaign.pk,
        sent=batch,
        sent_by_id=campaign.created_by_id,
        sent_by_email=campaign.created_by.email if campaign.created_by else "",
    )
    return len(batch)


FAILING_MIN_DONE = 20
FAILING_SHARE = 0.2


def _is_failing(stats: CampaignStats) -> bool:
    """Enough of it has been tried, and a large share of that could not be delivered."""
    tried = stats.sent + stats.dead
    return tried >= FAILING_MIN_DONE and stats.dead >= FAILING_SHARE * tried


def _mark_failing(campaign: Campaign) -> bool:
    """True once per campaign (the author is told once, not on every tick)."""
    return bool(
        Campaign.objects.filter(pk=campaign.pk, failing_reported_at__isnull=True).update(
            failing_reported_at=timezone.now()
        )
    )


def _complete(campaign: Campaign) -> bool:
    now = timezone.now()
    return bool(
        Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SENDING).update(
            status=CampaignStatus.COMPLETED, finished_at=now, updated_at=now
        )
    )


# --- Stats ---------------------------------------------------------------------------------------

RATE_WINDOW = timedelta(seconds=60)


@dataclass
class CampaignStats:
    targeted: int
    queued: int  # pending, held or being sent
    retrying: int  # failed with a retry scheduled
    sent: int
    dead: int
    cancelled: int
    sent_last_minute: int
    unlocked: int = 0  # PPV messages of it that fans unlocked
    revenue: dict[str, Decimal] = field(default_factory=dict)  # PPV unlock revenue per currency

    @property
    def unfinished(self) -> int:
        return self.queued + self.retrying

    @property
    def done(self) -> int:
        return self.sent + self.dead + self.cancelled

    @property
    def percent(self) -> int:
        return 100 if not self.targeted else min(100, int(self.done * 100 / self.targeted))

    @property
    def rate_per_minute(self) -> int:
        return self.sent_last_minute

    def as_dict(self) -> dict[str, int]:
        return {
            "targeted": self.targeted,
            "queued": self.queued,
            "retrying": self.retrying,
            "sent": self.sent,
            "dead": self.dead,
            "cancelled": self.cancelled,
            "sent_last_minute": self.sent_last_minute,
            "percent": self.percent,
            "unlocked": self.unlocked,
            "revenue": {currency: str(amount) for currency, amount in sorted(self.revenue.items())},
        }


def campaign_stats(*, campaigns: list[Campaign]) -> dict[int, CampaignStats]:
    """Each campaign's numbers, counted from its deliveries, and its unlocks and revenue, from
    the messages it put in fans' conversations: three queries per agency present (the campaigns
    of a page are one agency's)."""
    by_agency: dict[int, list[int]] = defaultdict(list)
    for campaign in campaigns:
        by_agency[campaign.agency_id].append(campaign.pk)
    counts: dict[int, dict[str, int]] = {}
    since = timezone.now() - RATE_WINDOW
    money: dict[int, dict[str, Any]] = {}
    for agency_id, ids in by_agency.items():
        counts.update(
            delivery_selectors.delivery_counts_by_source(
                agency_id=agency_id, source=DELIVERY_SOURCE, source_ids=ids, sent_since=since
            )
        )
        money.update(messaging_selectors.campaign_message_stats(agency_id=agency_id, campaign_ids=ids))
    stats = {}
    for campaign in campaigns:
        c = counts[campaign.pk]
        stats[campaign.pk] = CampaignStats(
            targeted=campaign.targeted,
            queued=c["pending"] + c["held"] + c["sending"],
            retrying=c["failed"],
            sent=c["sent"],
            dead=c["dead"],
            cancelled=c["cancelled"],
            sent_last_minute=c["sent_recently"],
            unlocked=money[campaign.pk]["unlocked"],
            revenue=money[campaign.pk]["revenue"],
        )
    return stats


# --- Notifications -------------------------------------------------------------------------------


def _url(campaign: Campaign) -> str:
    return reverse("campaigns:detail", args=[campaign.pk])


def _tell_author(campaign: Campaign, title: str, body: str, level: str = "info") -> None:
    from apps.notifications.services import notification_send

    if campaign.created_by_id is None:
        return
    membership = Membership.objects.for_agency(campaign.agency_id).filter(user_id=campaign.created_by_id).first()
    if membership is not None:
        notification_send(membership=membership, title=title, body=body, url=_url(campaign), level=level)


def _tell_completed(campaign: Campaign, stats: CampaignStats) -> None:
    body = f"Sent to {stats.sent} of {stats.targeted} fans."
    if stats.dead:
        body += f" {stats.dead} could not be delivered (dead letters, re-queueable from the campaign page)."
    _tell_author(campaign, f"“{campaign.name}” is done", body, level="warning" if stats.dead else "success")


def _tell_failing(campaign: Campaign, stats: CampaignStats) -> None:
    last = (
        delivery_selectors.delivery_list_by_source(
            agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk, status="dead"
        )
        .order_by("-updated_at")
        .values_list("last_error", flat=True)
        .first()
    )
    body = f"{stats.dead} of {stats.sent + stats.dead} messages tried so far could not be delivered."
    if last:
        body += f" Latest error: {last[:200]}"
    body += " Pause it to look, or re-queue the dead letters once the cause is fixed."
    _tell_author(campaign, f"“{campaign.name}” is failing", body, level="error")


def _tell_approvers(campaign: Campaign, recipients: int) -> None:
    from apps.notifications.services import notification_send

    approvers = Membership.objects.for_agency(campaign.agency_id).filter(role__in=[Role.OWNER, Role.MANAGER])
    for membership in approvers:
        notification_send(
            membership=membership,
            title=f"Approve “{campaign.name}”?",
            body=f"A campaign from {campaign.creator.display_name} to {recipients} fans waits for your approval.",
            url=_url(campaign),
        )
