"""Writes for campaigns: create and edit drafts, schedule (with approval above the agency's
size), approve, start at the send time (resolve the audience, apply the exclusions, render each
fan's text and write the deliveries in bulk), pause, resume, cancel, and the tick that starts due
campaigns and completes finished ones.

The sending itself is the delivery pipeline's (apps/delivery): per-account pacing, rate limits,
the breaker, retries, dead letters and exactly-once delivery. A campaign only writes its
deliveries (``delivery_enqueue_many``) and holds, releases or cancels them by its source.

Two modes (``Campaign.mode``): *direct*, one personalised direct message per fan (one delivery
each), and *mass*, one platform-side mass message per platform account of the audience (one
delivery carrying its fans' ids, ``delivery_enqueue_mass``): one platform call, the same text for
every fan, so no per-fan variables, and only to platforms whose connector has a mass message.

Rules the database cannot state and that live here (each refused with a message naming the
field): an audience of at least one fan, a send time not in the past, text within every audience
platform's limit and accepted by the safety policy, only known template variables, a PPV price
inside the creator's range and with media, who may do what (send permission for the creator;
approving needs edit permission), "already bought this offer" only with media, and a repeating
campaign with a send time and an end after it, at most a year ahead.

A recurring campaign (``repeat`` daily or weekly) is a series of campaigns: when an occurrence
starts sending, the next one is written, scheduled a day or a week later at the same wall-clock
time in the creator's timezone, with ``repeat_of`` pointing at the series' first campaign. Each
occurrence is a campaign of its own (its audience resolved at its own send time, its own numbers;
cancelling it cancels only it, and since the next is written only when one starts, cancelling the
scheduled occurrence ends the series).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.accounts.models import PLATFORMS, Creator, Membership, Role
from apps.accounts.permissions import Perm, has_perm, require
from apps.campaigns.models import (
    CANCELLABLE,
    CAPPED_SOURCES,
    DELIVERY_SOURCE,
    EDITABLE,
    REQUEUEABLE,
    Campaign,
    CampaignMode,
    CampaignPersonalText,
    CampaignRepeat,
    CampaignSettings,
    CampaignStatus,
    PersonalizeStatus,
    PersonalTextSource,
)
from apps.campaigns.personalize import (
    PERSONALIZE_FIELDS,
    personal_texts_discard,
    personal_texts_for_start,
    running_message,
)
from apps.campaigns.personalize import is_running as personalization_running
from apps.core.errors import ApplicationError, ConflictError
from apps.core.events import publish
from apps.core.registry import entitlement_readonly_reason
from apps.core.shared import shared_state
from apps.core.timezones import zone_or_utc
from apps.delivery import selectors as delivery_selectors
from apps.delivery import services as delivery_services
from apps.delivery.connectors import mass_supported, mass_unsupported_message, text_limit
from apps.delivery.models import Delivery
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
    exclude_bought_offer: bool = False
    repeat: str = CampaignRepeat.ONCE
    repeat_until: datetime | None = None
    mode: str = CampaignMode.DIRECT
    explore_prices: bool = False


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
    mode = data.mode or CampaignMode.DIRECT
    if mode not in CampaignMode.values:
        raise ApplicationError("Send as direct messages (one per fan) or as one mass message.", field="mode")
    if mode == CampaignMode.MASS:
        check_mass_text(text)
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
    if data.exclude_bought_offer and not media:
        raise ApplicationError(
            "To leave out fans who already bought this offer, add its media: that is how the offer is recognised.",
            field="exclude_bought_offer",
        )
    if data.explore_prices and (price is None or mode != CampaignMode.DIRECT):
        raise ApplicationError(
            "Exploring prices needs a PPV price and direct messages: each fan gets a price of their own.",
            field="explore_prices",
        )
    repeat, repeat_until = _clean_repeat(data, send_at)
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
        "exclude_bought_offer": bool(data.exclude_bought_offer),
        "repeat": repeat,
        "repeat_until": repeat_until,
        "mode": mode,
        "explore_prices": bool(data.explore_prices),
    }


def _clean_repeat(data: CampaignInput, send_at: datetime | None) -> tuple[str, datetime | None]:
    """(repeat, repeat_until): a series starts at its send time and ends, if it ends, after it and
    at most a year ahead. A campaign sent once has no end date (one given is dropped)."""
    repeat = data.repeat or CampaignRepeat.ONCE
    if repeat not in CampaignRepeat.values:
        raise ApplicationError("Repeat every day, every week, or send once.", field="repeat")
    if repeat == CampaignRepeat.ONCE:
        return repeat, None
    if send_at is None:
        raise ApplicationError(
            "A repeating campaign needs a send time: the time of its first message.", field="send_at"
        )
    until = data.repeat_until
    if until is None:
        return repeat, None
    if timezone.is_naive(until):
        until = timezone.make_aware(until, creator_zone(data.creator))
    if until <= send_at:
        raise ApplicationError("Let the repeats end after the first send time.", field="repeat_until")
    if until > timezone.now() + MAX_AHEAD:
        raise ApplicationError("Let the repeats end at most a year ahead.", field="repeat_until")
    return repeat, until


def creator_zone(creator: Creator) -> zoneinfo.ZoneInfo:
    return zone_or_utc(creator.timezone)


def _check_text(campaign: Campaign, platforms: list[str]) -> None:
    check_message_text(creator=campaign.creator, text=campaign.text, platforms=platforms)
    if campaign.mode == CampaignMode.MASS:
        for platform in platforms:
            if not mass_supported(platform):
                raise ApplicationError(mass_unsupported_message(platform), field="mode")


def per_fan_variables(text: str) -> list[str]:
    """The variables of ``text`` filled differently for each fan (the creator's are the same
    for every fan), in order, once each."""
    return list(dict.fromkeys(name for name in template_variables(text) if name.startswith("fan.")))


def check_mass_text(text: str) -> None:
    """A mass message is one text for every fan: refuse variables filled per fan, naming them."""
    varying = per_fan_variables(text)
    if varying:
        names = ", ".join(f"{{{name}}}" for name in varying)
        raise ApplicationError(
            f"A mass message is one text for every fan, so {names} cannot be filled per fan: remove "
            f"{'it' if len(varying) == 1 else 'them'}, or send direct messages (one per fan).",
            field="text",
        )


def check_message_text(*, creator: Creator, text: str, platforms: list[str], field: str = "text") -> None:
    """The text within each platform's limit (before variables: they add a name at most) and
    accepted by the safety policy there (campaigns and automations alike)."""
    for platform in platforms:
        limit = text_limit(platform)
        if len(text) > limit:
            raise ApplicationError(
                f"This message is {len(text)} characters; {PLATFORMS.get(platform, platform)} allows {limit}.",
                field=field,
            )
        policy = apply_policy(
            text,
            avoid_words=creator.avoid_words,
            avoid_topics=creator.avoid_topics,
            platform=platform,
            direct_message=True,
        )
        if policy.blocked or policy.violations:
            raise ApplicationError(f"Not sendable: {policy.violations[0].message}", field=field)


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
    # The personalised texts were written from the old text and audience: drop them, and stop a
    # run still writing (personalize.py checks its run number before it writes).
    personal_texts_discard(campaign=campaign)
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
        since = now - timedelta(hours=campaign.exclude_messaged_within_hours)
        account = {"agency_id": campaign.agency_id, "creator_id": campaign.creator_id, "since": since}
        same_fan = {"platform": OuterRef("platform"), "recipient_id": OuterRef("platform_fan_id")}
        recent = delivery_selectors.delivery_sent_to_since(**account).filter(**same_fan)
        recent_mass = delivery_selectors.mass_recipients_sent_since(**account).filter(**same_fan)
        kept = kept.exclude(Exists(recent)).exclude(Exists(recent_mass))
    if campaign.exclude_no_spend_days:
        kept = kept.filter(last_purchase_at__gte=now - timedelta(days=campaign.exclude_no_spend_days))
    if campaign.exclude_bought_offer and campaign.media:
        earlier = _earlier_same_offer(campaign, now=now)
        if earlier:
            kept = kept.exclude(
                pk__in=messaging_selectors.fans_who_unlocked(
                    agency_id=campaign.agency_id, creator_id=campaign.creator_id, campaign_ids=earlier
                )
            )
    kept = exclude_capped(kept, agency_id=campaign.agency_id, creator_id=campaign.creator_id, now=now)
    return named, kept


def _earlier_same_offer(campaign: Campaign, *, now: datetime) -> list[int]:
    """The ids of the creator's PPV campaigns that started before ``now`` with the same media as
    this one (the same set of references, in any order). Compared here, not in SQL: JSON
    containment is not portable to SQLite, and a creator's PPV campaigns are one short query."""
    offer = set(campaign.media)
    started = (
        Campaign.objects.for_agency(campaign.agency_id)
        .filter(creator_id=campaign.creator_id, ppv_price__isnull=False, started_at__lte=now)
        .exclude(pk=campaign.pk)
        .order_by()
        .values_list("pk", "media")
    )
    return [pk for pk, media in started if set(media or []) == offer]


CAP_WINDOW = timedelta(hours=24)


def fan_cap(agency_id: int) -> int | None:
    """How many campaign and automation messages one fan may get in 24 hours (None: no cap);
    the model's default when the agency never saved its settings."""
    row = CampaignSettings.objects.filter(agency_id=agency_id).values_list("fan_cap_per_day", flat=True)
    values = list(row)
    return values[0] if values else CampaignSettings._meta.get_field("fan_cap_per_day").default


def exclude_capped(fans: QuerySet[Fan], *, agency_id: int, creator_id: int, now: datetime) -> QuerySet[Fan]:
    """``fans`` without those who already got (or are about to get) the agency's cap of campaign
    and automation messages in the last 24 hours. Inbox replies never count: a person answered.
    (The automations tick checks a batch of fans with ``delivery_counts_to`` instead.)"""
    cap = fan_cap(agency_id)
    if not cap:
        return fans
    scope = {"agency_id": agency_id, "creator_id": creator_id, "sources": CAPPED_SOURCES, "since": now - CAP_WINDOW}
    per_fan = {"platform": OuterRef("platform"), "recipient_id": OuterRef("platform_fan_id")}
    direct = delivery_selectors.delivery_counting_since(**scope).filter(**per_fan).order_by().values("recipient_id")
    reached = delivery_selectors.mass_recipients_counting_since(**scope)
    if not reached.exists():  # the usual case: one index look-up per fan
        return fans.exclude(Exists(direct.annotate(count=Count("pk")).filter(count__gte=cap)))
    reached = reached.filter(**per_fan).order_by().values("recipient_id")
    counts = [Coalesce(Subquery(rows.annotate(count=Count("pk")).values("count")), 0) for rows in (direct, reached)]
    return fans.alias(capped_count=counts[0] + counts[1]).exclude(capped_count__gte=cap)


def _platforms(fans: QuerySet[Fan]) -> list[str]:
    """The platforms an audience is on (each has its own text limit and rules)."""
    return sorted(set(fans.order_by().values_list("platform", flat=True).distinct()))


@dataclass
class Preview:
    audience: int
    excluded: int
    messages: list[tuple[Fan, str]]
    problems: list[str]
    personalised: set[int] = field(default_factory=set)  # ids of the fans whose message the AI wrote

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
    personal = {}
    if campaign.personalize_status == PersonalizeStatus.DONE and fans:
        personal = dict(
            CampaignPersonalText.objects.filter(
                campaign=campaign, source=PersonalTextSource.AI, fan_id__in=[fan.pk for fan in fans]
            ).values_list("fan_id", "text")
        )
    messages = [
        (fan, personal.get(fan.pk) or template_render(campaign.text, fan=fan, creator=campaign.creator).text)
        for fan in fans
    ]
    problems = []
    if not recipients:
        problems.append("Nobody to send to: the audience is empty" + (" after the exclusions." if audience else "."))
    try:
        _check_text(campaign, _platforms(named))
    except ApplicationError as error:
        problems.append(error.message)
    return Preview(
        audience=audience,
        excluded=audience - recipients,
        messages=messages,
        problems=problems,
        personalised=set(personal),
    )


# --- Schedule, approve, start --------------------------------------------------------------------


def approval_threshold(agency_id: int) -> int | None:
    return CampaignSettings.objects.filter(agency_id=agency_id).values_list("approval_above", flat=True).first()


def campaign_settings_get(agency_id: int) -> CampaignSettings:
    """The agency's campaign rules (unsaved defaults when it never saved them)."""
    return CampaignSettings.objects.filter(agency_id=agency_id).first() or CampaignSettings(agency_id=agency_id)


def campaign_settings_update(
    *, membership: Membership, approval_above: int | None, fan_cap_per_day: int | None
) -> CampaignSettings:
    require(membership, Perm.EDIT)
    if membership.role != Role.OWNER:
        raise ApplicationError("Only an owner changes the campaign rules.", field="approval_above")
    if approval_above is not None and not 1 <= int(approval_above) <= 10_000_000:
        raise ApplicationError(
            "Enter a number of fans from 1 to 10,000,000, or leave it empty.", field="approval_above"
        )
    if fan_cap_per_day is not None and not 1 <= int(fan_cap_per_day) <= 50:
        raise ApplicationError("Enter a number of messages from 1 to 50, or leave it empty.", field="fan_cap_per_day")
    settings_row, _ = CampaignSettings.objects.update_or_create(
        agency_id=membership.agency_id,
        defaults={"approval_above": approval_above, "fan_cap_per_day": fan_cap_per_day},
    )
    return settings_row


@transaction.atomic
def campaign_schedule(*, membership: Membership, campaign: Campaign) -> Campaign:
    """Draft → scheduled (sent at its send time, or now), or → awaiting approval when the
    audience is larger than the agency's approval size and the member cannot approve."""
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    _lock_in(campaign, {CampaignStatus.DRAFT}, "scheduled")
    campaign.refresh_from_db(fields=PERSONALIZE_FIELDS)
    if personalization_running(campaign):
        raise ConflictError(running_message(campaign))
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
        if entitlement_readonly_reason(campaign.agency_id, now):
            # A read-only agency (billing: trial over, payment past due, canceled) sends nothing;
            # the campaign stays scheduled and the first tick after it pays starts it.
            logger.info("campaign %s waits: its agency is read-only", campaign.pk)
            return "skipped"
        named, kept = campaign_audience(campaign, now=now)
        try:
            # A savepoint: a refused delivery leaves none written, and the transaction usable to
            # record why (a rollback of the whole block would refuse that UPDATE too).
            with transaction.atomic():
                if campaign.mode == CampaignMode.MASS:
                    targeted = _enqueue_mass(campaign, kept)
                else:
                    targeted = _enqueue_direct(campaign, kept)
        except ApplicationError as error:
            return _fail_start(campaign.pk, error.message)
        campaign.status = CampaignStatus.SENDING if targeted else CampaignStatus.COMPLETED
        campaign.targeted = targeted
        campaign.excluded = named.count() - targeted
        campaign.started_at = now
        campaign.finished_at = None if targeted else now
        campaign.save(update_fields=["status", "targeted", "excluded", "started_at", "finished_at", "updated_at"])
        _schedule_next(campaign, now=now)  # under this occurrence's row lock, in its transaction: once
    logger.info("campaign %s started (%s): %s fans targeted", campaign.pk, campaign.mode, targeted)
    if not targeted:
        _tell_author(campaign, f"“{campaign.name}” had nobody to send to", "Its audience was empty at the send time.")
    return campaign.status


def _enqueue_direct(campaign: Campaign, fans: QuerySet[Fan]) -> int:
    """Direct mode: one bulk delivery per fan with the text filled for that fan, or the text the
    AI personalised for them (read in one query; fans who joined the audience since get the
    template text). Answers how many."""
    fans = fans.only("pk", "platform", "platform_fan_id", "username", "display_name")
    render = template_renderer(campaign.text)  # parsed once, filled per fan
    personal = personal_texts_for_start(campaign)
    creator = campaign.creator
    prices = _explored_prices(campaign, fans)
    by_platform: dict[str, list[delivery_services.Outbound]] = defaultdict(list)
    for fan in fans.iterator(chunk_size=2000):
        by_platform[fan.platform].append(
            delivery_services.Outbound(
                recipient_id=fan.platform_fan_id,
                text=personal.get(fan.pk) or render(fan, creator),
                idempotency_key=campaign.delivery_key(fan.pk),
                ppv_price=prices.get(fan.pk, campaign.ppv_price),
                media_count=campaign.media_count,
                source_id=campaign.pk,
            )
        )
    for platform, messages in sorted(by_platform.items()):
        delivery_services.delivery_enqueue_many(
            agency_id=campaign.agency_id,
            creator_id=campaign.creator_id,
            platform=platform,
            messages=messages,
            source=DELIVERY_SOURCE,
        )
    return sum(len(messages) for messages in by_platform.values())


def _explored_prices(campaign: Campaign, fans: QuerySet[Fan]) -> dict[int, Decimal]:
    """Each fan's price for a campaign exploring prices: the callable named by
    settings.CAMPAIGN_PRICE_EXPLORER (the optimization app's Thompson sampling, reached through the
    setting because campaigns must not import it) answers ``{fan_id: price}`` within the creator's
    PPV range and records the arms. {} when the campaign does not explore (everyone pays its price)."""
    if not (campaign.explore_prices and campaign.ppv_price is not None and settings.CAMPAIGN_PRICE_EXPLORER):
        return {}
    explorer = import_string(settings.CAMPAIGN_PRICE_EXPLORER)
    return explorer(campaign=campaign, fan_ids=list(fans.order_by("pk").values_list("pk", flat=True)))


def mass_delivery_key(campaign: Campaign, platform: str) -> str:
    """The idempotency key of a mass campaign's one delivery to a platform account (within the
    delivery pipeline's 40 characters for a mass key; each fan's message derives its own)."""
    return f"campaign-{campaign.pk}-mass-{platform}"


def _enqueue_mass(campaign: Campaign, fans: QuerySet[Fan]) -> int:
    """Mass mode: one mass delivery per platform account of the audience (the creator on each
    platform), carrying its fans' platform ids and the one text, the creator's variables filled
    (per-fan ones were refused when it was saved; checked again here, as a platform without a
    mass message is by the pipeline). Answers how many fans it targets."""
    check_mass_text(campaign.text)
    text = template_renderer(campaign.text)(Fan(), campaign.creator)  # no per-fan variable: any fan reads it
    by_platform: dict[str, dict[str, None]] = defaultdict(dict)
    for platform, recipient_id in fans.order_by("pk").values_list("platform", "platform_fan_id").iterator(5000):
        by_platform[platform][recipient_id] = None
    for platform, recipients in sorted(by_platform.items()):
        delivery_services.delivery_enqueue_mass(
            agency_id=campaign.agency_id,
            creator_id=campaign.creator_id,
            platform=platform,
            recipient_ids=list(recipients),
            text=text,
            ppv_price=campaign.ppv_price,
            media_count=campaign.media_count,
            idempotency_key=mass_delivery_key(campaign, platform),
            source=DELIVERY_SOURCE,
            source_id=campaign.pk,
        )
    return sum(len(recipients) for recipients in by_platform.values())


REPEAT_STEP = {CampaignRepeat.DAILY: timedelta(days=1), CampaignRepeat.WEEKLY: timedelta(days=7)}
# What the next occurrence of a recurring campaign takes from the one that just started.
SERIES_FIELDS = (
    "agency_id", "creator_id", "name", "segment_id", "fan_ids", "text", "ppv_price", "media", "mode",
    "exclude_messaged_within_hours", "exclude_no_spend_days", "exclude_bought_offer", "repeat", "repeat_until",
    "explore_prices",
    "created_by_id", "approved_by_id", "approved_at",
)  # fmt: skip


def occurrence_after(send_at: datetime, *, repeat: str, zone: zoneinfo.ZoneInfo, now: datetime) -> datetime:
    """The send time of the occurrence after one sent at ``send_at``: a day or a week later at the
    same wall-clock time in ``zone`` (20:00 stays 20:00 across a DST change: aware arithmetic in
    a ZoneInfo keeps the wall time and takes the offset of the new date), skipping occurrences
    already past, so a start that ran late is followed by one occurrence, not a burst."""
    step = REPEAT_STEP[CampaignRepeat(repeat)]
    upcoming = send_at.astimezone(zone) + step
    while upcoming <= now:
        upcoming += step
    return upcoming.astimezone(UTC)


def _schedule_next(campaign: Campaign, *, now: datetime) -> Campaign | None:
    """Write the next occurrence of a recurring campaign that just started, scheduled, unless it
    would fall after ``repeat_until``. It keeps the approval of the occurrence before (the same
    message, audience and exclusions, approved once for the series). campaign_start calls it
    under the started occurrence's row lock, so a second start (skipped) never writes a second;
    the look-up by series and send time guards any other path."""
    if not campaign.repeat:
        return None
    send_at = occurrence_after(
        campaign.send_at or now, repeat=campaign.repeat, zone=creator_zone(campaign.creator), now=now
    )
    if campaign.repeat_until is not None and send_at > campaign.repeat_until:
        return None
    first_id = campaign.repeat_of_id or campaign.pk
    series = Campaign.objects.for_agency(campaign.agency_id).filter(Q(pk=first_id) | Q(repeat_of_id=first_id))
    if series.filter(send_at=send_at).exists():
        return None
    upcoming = Campaign(
        **{name: getattr(campaign, name) for name in SERIES_FIELDS},
        send_at=send_at,
        repeat_of_id=first_id,
        status=CampaignStatus.SCHEDULED,
    )
    upcoming.save()
    logger.info("campaign %s: next occurrence %s at %s", campaign.pk, upcoming.pk, send_at.isoformat())
    return upcoming


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


def _requeue_verdict(campaign: Campaign) -> delivery_services.RequeueVerdict:
    """What re-queueing one of the campaign's dead letters does, by its state (read under its row
    lock): refused when cancelled (nothing more is sent), held while paused (sent when it
    resumes), sent again otherwise; a completed campaign then goes back to sending
    (``_reopen``). The campaign page and staff's re-queue (the delivery admin) both ask this."""
    if campaign.status == CampaignStatus.CANCELLED:
        return delivery_services.RequeueVerdict(delivery_services.REFUSE, "their campaign is cancelled")
    if campaign.status == CampaignStatus.PAUSED:
        return delivery_services.RequeueVerdict(
            delivery_services.HOLD, "their campaign is paused (sent when it resumes)"
        )
    return delivery_services.RequeueVerdict(delivery_services.REQUEUE)


def _reopen(campaign: Campaign) -> None:
    """A completed campaign whose dead letter is sent again goes back to sending: the tick records
    the re-sent message in the fan's conversation (it records only what sending, paused and lately
    cancelled campaigns sent) and completes it again once nothing is left to send."""
    if campaign.status == CampaignStatus.COMPLETED:
        campaign.status = CampaignStatus.SENDING
        campaign.finished_at = None
        campaign.save(update_fields=["status", "finished_at", "updated_at"])


@transaction.atomic
def campaign_delivery_requeue(*, membership: Membership, campaign: Campaign, delivery_id: int) -> Campaign:
    """Send one of the campaign's dead letters again, under the campaign's row lock, as
    ``_requeue_verdict`` says: refused for a cancelled campaign, held while paused, and a
    completed campaign goes back to sending."""
    require(membership, Perm.SEND_MESSAGES, creator=campaign.creator)
    owned = delivery_selectors.delivery_list_by_source(
        agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk
    ).filter(pk=delivery_id)
    if not owned.exists():
        raise ApplicationError("That delivery is not this campaign's.")
    _lock_in(campaign, REQUEUEABLE | {CampaignStatus.CANCELLED}, "re-queued")  # the others have no deliveries
    verdict = _requeue_verdict(campaign)
    if verdict.action == delivery_services.REFUSE:
        raise ConflictError(
            "This campaign is cancelled: nothing more is sent, so its dead letters cannot be re-queued."
        )
    delivery_services.delivery_requeue(
        membership=membership, delivery_id=delivery_id, hold=verdict.action == delivery_services.HOLD
    )
    _reopen(campaign)
    return campaign


def campaign_requeue_rule(deliveries: list[Delivery]) -> dict[int, delivery_services.RequeueVerdict]:
    """Delivery's re-queue rule for campaign deliveries (registered in ``CampaignsConfig.ready``):
    staff re-queueing dead letters in the delivery admin get the campaign page's answer for each
    (``_requeue_verdict``), under the campaigns' row locks and in staff's transaction, and a
    completed campaign with a letter sent again goes back to sending. A letter whose campaign is
    gone is refused."""
    wanted = {(delivery.agency_id, delivery.source_id) for delivery in deliveries}
    campaigns = {
        (campaign.agency_id, campaign.pk): campaign
        for campaign in Campaign.objects.select_for_update()
        .filter(pk__in=sorted({pk for _, pk in wanted if pk is not None}))
        .order_by("pk")  # one lock order with every other re-queue
    }
    verdicts: dict[tuple[int, int], delivery_services.RequeueVerdict] = {}
    for key, campaign in campaigns.items():
        if key in wanted:
            verdicts[key] = _requeue_verdict(campaign)
            if verdicts[key].action == delivery_services.REQUEUE:
                _reopen(campaign)
    gone = delivery_services.RequeueVerdict(delivery_services.REFUSE, "their campaign no longer exists")
    return {delivery.pk: verdicts.get((delivery.agency_id, delivery.source_id), gone) for delivery in deliveries}


# --- The tick (beat, every few seconds) ----------------------------------------------------------


def campaigns_tick(*, limit: int = 100) -> dict[str, int]:
    """Start scheduled campaigns that are due (their own task may have been lost, or they were
    scheduled far ahead); hold again what every paused campaign's in-flight attempts put back;
    put what sending, paused and lately cancelled ones sent into the fans' conversations;
    complete sending ones with nothing left to send; and tell the author once when one is
    failing. Up to ``limit`` campaigns are recorded and checked a tick, taking turns."""
    from apps.campaigns.tasks import start_campaign

    now = timezone.now()
    counts = {"started": 0, "completed": 0, "held": 0, "failing": 0}
    scheduled = Campaign.objects.filter(status=CampaignStatus.SCHEDULED).filter(
        Q(send_at__isnull=True) | Q(send_at__lte=now)
    )
    # A read-only agency's campaigns wait until it pays; left out before the limit, so however
    # many of them wait they never take the places of other agencies' campaigns.
    agencies = scheduled.order_by().values_list("agency_id", flat=True).distinct()
    readonly = [agency_id for agency_id in agencies if entitlement_readonly_reason(agency_id, now)]
    due = list(scheduled.exclude(agency_id__in=readonly).order_by("send_at", "id").values_list("pk", flat=True)[:limit])
    for campaign_id in due:
        start_campaign.apply_async(args=(campaign_id,), queue="default")
    counts["started"] = len(due)

    counts["held"] = _hold_paused()
    active = _in_turn(now, limit)
    sending = [campaign for campaign in active if campaign.status == CampaignStatus.SENDING]
    # Counted before recording: a campaign completes only while its deliveries still stand as
    # counted here (``_complete``), so every message counted as sent has been recorded.
    stats = campaign_stats(campaigns=sending)
    caught_up = {campaign.pk: _record_all_messages(campaign) for campaign in active}
    for campaign in sending:
        judged = stats[campaign.pk]
        finished = judged.unfinished == 0 and caught_up[campaign.pk]
        completed = _complete(campaign, judged=judged) if finished else None
        if completed is not None:
            counts["completed"] += 1
            _tell_completed(campaign, completed)
        elif _is_failing(judged) and _mark_failing(campaign):
            counts["failing"] += 1
            _tell_failing(campaign, judged)
    return counts


# A cancelled campaign's attempt in flight may still be taken by the platform (recorded as sent)
# until its lease runs out; the tick keeps recording what such a campaign sent for this long.
RECORD_AFTER_CANCEL = timedelta(hours=1)
TURN_KEY = "campaigns:tick:after"  # shared state: the last campaign id the previous tick handled


def _hold_paused() -> int:
    """Hold again the deliveries a paused campaign's in-flight attempts put back (a failure's
    retry, the sweeper), for every paused campaign however many: one UPDATE per agency, under
    the campaigns' row locks, so a resume in between is never undone. Answers how many."""
    held = 0
    agencies = Campaign.objects.filter(status=CampaignStatus.PAUSED).order_by().values_list("agency_id", flat=True)
    for agency_id in sorted(set(agencies)):
        with transaction.atomic():
            paused = list(
                Campaign.objects.select_for_update()
                .filter(agency_id=agency_id, status=CampaignStatus.PAUSED)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            for start in range(0, len(paused), 1000):
                held += delivery_services.delivery_hold(
                    agency_id=agency_id, source=DELIVERY_SOURCE, source_id=paused[start : start + 1000]
                )
    return held


def _in_turn(now: datetime, limit: int) -> list[Campaign]:
    """Up to ``limit`` of the campaigns whose sent messages may still need recording (sending,
    paused, cancelled within RECORD_AFTER_CANCEL), in id order from after the last one the
    previous tick handled, wrapping around: campaigns paused for days never keep others out."""
    candidates = (
        Campaign.objects.filter(
            Q(status__in=[CampaignStatus.SENDING, CampaignStatus.PAUSED])
            | Q(status=CampaignStatus.CANCELLED, finished_at__gte=now - RECORD_AFTER_CANCEL)
        )
        .select_related("creator", "created_by")
        .order_by("id")
    )
    state = shared_state()
    after = int(state.get_record_sync(TURN_KEY).get("after") or 0)
    batch = list(candidates.filter(pk__gt=after)[:limit])
    if len(batch) < limit:
        batch += list(candidates.filter(pk__lte=after)[: limit - len(batch)])
    if batch:
        state.set_record_sync(TURN_KEY, {"after": batch[-1].pk}, ttl=24 * 3600)
    return batch


RECORD_BATCH = 2000
RECORD_SECONDS = 5.0  # a tick records batches of one campaign for this long at most


def _record_all_messages(campaign: Campaign) -> bool:
    """Record the campaign's sent messages batch after batch for up to RECORD_SECONDS; True when
    none is left unrecorded. False too when an overlapping tick recorded the same messages
    between this one's read and its insert (the message key is unique): the next tick goes on."""
    deadline = time.monotonic() + RECORD_SECONDS
    while True:
        try:
            if _record_messages(campaign) < RECORD_BATCH:
                return True
        except IntegrityError:
            logger.info("campaign %s: its messages were recorded by another tick", campaign.pk)
            return False
        if time.monotonic() >= deadline:
            return False


def _record_messages(campaign: Campaign) -> int:
    """Put up to RECORD_BATCH of the campaign's sent messages that are not in the fans'
    conversations yet into them (messaging's ``messages_record_sent``); answers how many. The
    pump never waits for this: the tick catches up in batches, and a campaign completes only once
    every sent message is recorded. A mass message is recorded for each fan it reached (not the
    ones the platform rejected), under a key of its own derived from the mass message's."""
    if campaign.mode == CampaignMode.MASS:
        sent = delivery_selectors.mass_recipients_sent(
            agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk
        )
    else:
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
    failed = stats.dead + stats.rejected
    tried = stats.sent + failed
    return tried >= FAILING_MIN_DONE and failed >= FAILING_SHARE * tried


def _mark_failing(campaign: Campaign) -> bool:
    """True once per campaign (the author is told once, not on every tick)."""
    return bool(
        Campaign.objects.filter(pk=campaign.pk, failing_reported_at__isnull=True).update(
            failing_reported_at=timezone.now()
        )
    )


def _complete(campaign: Campaign, *, judged: CampaignStats) -> CampaignStats | None:
    """Sending → completed, in one transition that tells the author once: under the campaign's row
    lock (a re-queue takes it too), only while it is still sending and its deliveries still stand
    as the tick ``judged`` them (nothing left to send, nothing sent or dead since). A tick that
    counted before an overlapping tick completed the campaign and a member re-queued one of its
    dead letters (sending again, the letter pending) thus neither completes it early nor tells
    the author a second time for the same completion; the next tick judges again. A campaign that
    completes again after a re-queue (a new transition) tells its author again, with the new
    numbers. Answers the numbers to tell, or None when this call did not complete it."""
    now = timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk, status=CampaignStatus.SENDING).first()
        if locked is None:  # completed by an overlapping tick, paused or cancelled meanwhile
            return None
        fresh = campaign_stats(campaigns=[locked])[locked.pk]
        counted = (judged.sent, judged.dead, judged.rejected, judged.cancelled)
        if fresh.unfinished or (fresh.sent, fresh.dead, fresh.rejected, fresh.cancelled) != counted:
            return None
        Campaign.objects.filter(pk=locked.pk, status=CampaignStatus.SENDING).update(
            status=CampaignStatus.COMPLETED, finished_at=now, updated_at=now
        )
        # for subscribers such as CRM webhooks (docs/events.md)
        publish(
            "campaign.completed",
            agency_id=campaign.agency_id,
            payload={"campaign_id": campaign.pk, "creator_id": campaign.creator_id, "name": campaign.name,
                     "mode": campaign.mode, "finished_at": now.isoformat()},
        )  # fmt: skip
    return fresh


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
    rejected: int = 0  # fans a platform refused in a mass message it took (mass mode only)

    @property
    def unfinished(self) -> int:
        return self.queued + self.retrying

    @property
    def done(self) -> int:
        return self.sent + self.dead + self.cancelled + self.rejected

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
            "rejected": self.rejected,
            "cancelled": self.cancelled,
            "sent_last_minute": self.sent_last_minute,
            "percent": self.percent,
            "unlocked": self.unlocked,
            "revenue": {currency: str(amount) for currency, amount in sorted(self.revenue.items())},
        }


def campaign_stats(*, campaigns: list[Campaign]) -> dict[int, CampaignStats]:
    """Each campaign's numbers, counted from its deliveries, and its unlocks and revenue, from
    the messages it put in fans' conversations: three queries per agency present (the campaigns
    of a page are one agency's), one more when some are mass campaigns. Every number counts fans:
    a direct campaign's deliveries one each, a mass campaign's the fans each mass message carries
    (``sent``: those it reached; ``rejected``: those the platform refused)."""
    by_agency: dict[int, list[int]] = defaultdict(list)
    mass_by_agency: dict[int, list[int]] = defaultdict(list)
    for campaign in campaigns:
        mass = campaign.mode == CampaignMode.MASS
        (mass_by_agency if mass else by_agency)[campaign.agency_id].append(campaign.pk)
    counts: dict[int, dict[str, int]] = {}
    since = timezone.now() - RATE_WINDOW
    money: dict[int, dict[str, Any]] = {}
    for agency_id in set(by_agency) | set(mass_by_agency):
        ids, mass_ids = by_agency[agency_id], mass_by_agency[agency_id]
        source = {"agency_id": agency_id, "source": DELIVERY_SOURCE, "sent_since": since}
        counts.update(delivery_selectors.delivery_counts_by_source(source_ids=ids, **source))
        counts.update(delivery_selectors.delivery_recipient_counts_by_source(source_ids=mass_ids, **source))
        money.update(messaging_selectors.campaign_message_stats(agency_id=agency_id, campaign_ids=ids + mass_ids))
    stats = {}
    for campaign in campaigns:
        c = counts[campaign.pk]
        rejected = c.get("rejected", 0)
        stats[campaign.pk] = CampaignStats(
            targeted=campaign.targeted,
            queued=c["pending"] + c["held"] + c["sending"],
            retrying=c["failed"],
            sent=c["sent"] - rejected,
            dead=c["dead"],
            cancelled=c["cancelled"],
            sent_last_minute=c["sent_recently"],
            unlocked=money[campaign.pk]["unlocked"],
            revenue=money[campaign.pk]["revenue"],
            rejected=rejected,
        )
    return stats


@dataclass
class PriceArm:
    """One price of a campaign exploring prices: the fans given it and what they did."""

    price: Decimal
    targeted: int
    sent: int
    unlocked: int
    # What fans paid for this price's messages (the recorded PPV purchases), in the creator's
    # currency: not price x unlocks, which a discount, a refund or a late import would falsify.
    revenue: Decimal = Decimal("0.00")

    @property
    def unlock_rate(self) -> float:
        return self.unlocked / self.sent if self.sent else 0.0

    @property
    def revenue_per_fan(self) -> Decimal:
        return (self.revenue / self.sent).quantize(Decimal("0.01")) if self.sent else Decimal("0")


def campaign_price_arms(*, campaign: Campaign) -> list[PriceArm]:
    """A campaign exploring prices, per price it asked (cheapest first): fans targeted, messages
    sent, unlocks of the messages it put in fans' conversations and what fans paid for them.
    [] for a campaign that does not explore (``campaign_price_arms_for``)."""
    return campaign_price_arms_for(campaigns=[campaign]).get(campaign.pk, [])


def campaign_price_arms_for(*, campaigns: list[Campaign]) -> dict[int, list[PriceArm]]:
    """``campaign_price_arms`` of many campaigns at once (the nightly offer recount): three aggregate
    queries whatever their number (none when none explores). Revenue is the PPV purchases recorded
    against each price's messages, in the campaign's creator's currency."""
    from apps.delivery.models import Delivery, DeliveryStatus
    from apps.messaging.models import Message, Purchase, PurchaseKind

    exploring = {campaign.pk: campaign for campaign in campaigns if campaign.explore_prices}
    if not exploring:
        return {}
    agencies = {campaign.agency_id for campaign in exploring.values()}
    cent = Decimal("0.01")
    counts = (
        Delivery.objects.filter(
            agency_id__in=agencies, source=DELIVERY_SOURCE, source_id__in=list(exploring), ppv_price__isnull=False
        )
        .order_by()
        .values("source_id", "ppv_price")
        .annotate(targeted=Count("id"), sent=Count("id", filter=Q(status=DeliveryStatus.SENT)))
    )
    unlocked = {
        (row["campaign_id"], Decimal(row["ppv_price"]).quantize(cent)): row["count"]
        for row in Message.objects.filter(
            agency_id__in=agencies, campaign_id__in=list(exploring), unlocked_at__isnull=False
        )
        .order_by()
        .values("campaign_id", "ppv_price")
        .annotate(count=Count("id"))
    }
    paid: dict[tuple[int, Decimal], Decimal] = defaultdict(lambda: Decimal("0.00"))
    for row in (
        Purchase.objects.filter(agency_id__in=agencies, kind=PurchaseKind.PPV, message__campaign_id__in=list(exploring))
        .order_by()
        .values("message__campaign_id", "message__ppv_price", "currency")
        .annotate(total=Sum("amount"))
    ):
        campaign = exploring[row["message__campaign_id"]]
        if row["message__ppv_price"] is not None and row["currency"] == campaign.creator.currency:
            paid[(campaign.pk, Decimal(row["message__ppv_price"]).quantize(cent))] += Decimal(row["total"])
    arms: dict[int, list[PriceArm]] = {pk: [] for pk in exploring}
    for row in counts:
        key = (row["source_id"], Decimal(row["ppv_price"]).quantize(cent))
        arms[key[0]].append(
            PriceArm(
                price=key[1], targeted=row["targeted"], sent=row["sent"], unlocked=unlocked.get(key, 0),
                revenue=paid[key].quantize(cent),
            )
        )  # fmt: skip
    for found in arms.values():
        found.sort(key=lambda arm: arm.price)
    return arms


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
    if stats.rejected:
        body += f" The platform refused {stats.rejected} of them (blocked or gone)."
    if stats.dead:
        body += f" {stats.dead} could not be delivered (dead letters, re-queueable from the campaign page)."
    level = "warning" if stats.dead or stats.rejected else "success"
    _tell_author(campaign, f"“{campaign.name}” is done", body, level=level)


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


# --- Proposed by a workflow (apps/workflows' re-engagement) --------------------------------------

PROPOSE_SECONDS = 240.0  # past this, fans not yet written keep the template text


@dataclass(frozen=True)
class PersonalText:
    """One fan's message of a proposed campaign: the AI's rewrite (``source`` "ai"), or the
    campaign text rendered for the fan ("fallback") with ``note`` saying why; ``degraded`` when
    the AI provider gave no real answer (down, or the built-in writer stood in)."""

    fan_id: int
    text: str
    source: str
    note: str = ""
    degraded: bool = False


def personal_texts_write(
    *,
    membership: Membership,
    creator: Creator,
    text: str,
    fan_ids: list[int],
    feature: str = "campaigns.personalize",
    seconds: float = PROPOSE_SECONDS,
) -> list[PersonalText]:
    """``text`` rewritten by the AI gateway for each of ``creator``'s fans ``fan_ids`` (fans that
    are gone are left out), before any campaign exists, with personalize.py's prompt, checks and
    fallbacks: the creator's voice, what fans wrote in escaped data blocks, the safety policy and
    the platform's limit. An error, a refusal or a degraded answer keeps the template text
    rendered for the fan, with the reason. Nothing is saved or sent."""
    from dataclasses import replace

    from apps.campaigns import personalize

    require(membership, Perm.SEND_MESSAGES, creator=creator)
    template_variables(text)
    fans = personalize._fans_with_last_purchase(
        Fan.objects.for_agency(membership.agency_id).filter(creator=creator, pk__in=list(fan_ids))
    )
    draft = Campaign(agency_id=membership.agency_id, creator=creator, text=text)
    jobs, boundary, protected = personalize._jobs(draft, fans, user_id=membership.user_id)
    for job in jobs:
        job.request = replace(job.request, feature=feature)
    return async_to_sync(_write_all)(jobs, boundary, protected, creator, time.monotonic() + seconds)


async def _write_all(
    jobs: list, boundary: str, protected: str, creator: Creator, deadline: float
) -> list[PersonalText]:
    from apps.campaigns import personalize

    semaphore = asyncio.Semaphore(personalize.CONCURRENCY)

    async def one(job) -> PersonalText:
        async with semaphore:
            text, note, degraded = await _write_one(job, boundary, protected, creator, deadline)
        if text:
            return PersonalText(job.fan.pk, text, PersonalTextSource.AI)
        return PersonalText(job.fan.pk, job.base, PersonalTextSource.FALLBACK, note, degraded)

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def _write_one(job, boundary: str, protected: str, creator: Creator, deadline: float) -> tuple[str, str, bool]:
    """(the fan's text, "", False), or ("", why the template text is kept, whether the provider failed)."""
    from apps.ai import gateway
    from apps.ai.types import AIError, ErrorKind
    from apps.campaigns import personalize

    while True:
        try:
            answer = await gateway.generate(job.request)
        except AIError as error:
            wait = min(error.retry_after or 1.0, personalize.RATE_LIMIT_WAIT)
            if error.kind == ErrorKind.RATE_LIMIT and error.retryable and time.monotonic() + wait < deadline:
                await asyncio.sleep(wait)  # the agency's AI rate limit paces a large audience
                continue
            return "", f"The AI did not answer ({error.message})"[:300], error.kind != ErrorKind.CONTENT_FILTER
        except Exception:
            logger.exception("proposed text failed for fan %s", job.fan.pk)
            return "", "The AI did not answer.", True
        if answer.degraded:
            return "", "The AI provider was down: the template text is kept; check it before approving.", True
        text = personalize.rewrite_check(answer, fan=job.fan, creator=creator, boundary=boundary, protected=protected)
        if not text:
            return "", "The AI's answer was refused (content rules, words to avoid, or too long).", False
        return text, "", False


@transaction.atomic
def campaign_propose(*, membership: Membership, data: CampaignInput, texts: list[PersonalText]) -> Campaign:
    """A direct campaign to the fans of ``texts`` with their messages already written
    (``personal_texts_write``), waiting for an owner's or manager's approval whoever proposed
    it; the owners and managers are told. Nothing is sent before someone approves it; approving
    sends each fan the text shown (a fallback row: the template text, rendered at the send
    time). Fans that are gone are left out; none left is refused."""
    wanted = {item.fan_id: item for item in texts}
    existing = Fan.objects.for_agency(membership.agency_id).filter(creator=data.creator, pk__in=list(wanted))
    kept = [wanted[pk] for pk in sorted(existing.values_list("pk", flat=True))]
    if not kept:
        raise ApplicationError("Nobody to send to: none of these fans is the creator's any more.", field="fan_ids")
    data.segment, data.fan_ids, data.mode = None, [item.fan_id for item in kept], CampaignMode.DIRECT
    fields = _clean(membership, data)
    campaign = Campaign(
        agency_id=membership.agency_id,
        created_by_id=membership.user_id,
        **fields,
        status=CampaignStatus.AWAITING_APPROVAL,
        personalize_status=PersonalizeStatus.DONE,
        personalize_total=len(kept),
        personalize_done=len(kept),
        personalize_fallbacks=sum(1 for item in kept if item.source != PersonalTextSource.AI),
        personalize_at=timezone.now(),
    )
    _check_text(campaign, _platforms(campaign_audience(campaign)[0]))
    campaign.save()
    CampaignPersonalText.objects.bulk_create(
        [
            CampaignPersonalText(
                agency_id=campaign.agency_id, campaign=campaign, fan_id=item.fan_id, text=item.text, source=item.source
            )
            for item in kept
            if item.text.strip()
        ]
    )
    _tell_approvers(campaign, len(kept))
    return campaign
