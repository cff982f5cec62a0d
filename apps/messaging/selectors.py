"""Reads for the fan CRM and inbox. Every getter answers 404 for "missing" and "not yours"
alike; every list is scoped to the creators the member may see (chatters: their assigned ones).

Lists return querysets with a fixed number of queries whatever the data size: the inbox and
fan lists are one indexed query per page plus a constant number of prefetches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.messaging.models import (
    Conversation,
    Direction,
    Draft,
    DraftStatus,
    Fan,
    FanImport,
    FanRules,
    Message,
    MessageStatus,
    MessageTemplate,
    Purchase,
    PurchaseKind,
    Segment,
    Source,
    SubscriptionState,
)
from apps.messaging.segments import SegmentFilters, SegmentFiltersUnreadable, segment_filters_stored, segment_q
from apps.messaging.tiers import rules_for


def _visible_creator_ids(membership: Membership) -> QuerySet:
    return creator_list(membership=membership).values("pk")


# --- Fans -------------------------------------------------------------------------------------


def fan_list(
    *,
    membership: Membership,
    creator_id: int | None = None,
    segment: Segment | None = None,
    filters: SegmentFilters | None = None,
    search: str = "",
    rules: FanRules | None = None,
    now: datetime | None = None,
    visible_creator_ids: list[int] | None = None,
) -> QuerySet[Fan]:
    """Fans the member may see, narrowed by creator, a saved segment, ad-hoc filters and a search
    on username or display name; highest spend first. A segment whose saved filters no longer
    parse raises SegmentFiltersUnreadable (as every reader of a segment here does).

    ``visible_creator_ids``: the ids of ``creator_list(membership=membership)`` when the caller
    has them already (a page's ``request.tenant.creators``). As literal ids they let PostgreSQL
    read a tag segment's first page by walking the spend index (0.5 ms at 200,000 fans) instead
    of planning around the creators' subquery (docs/benchmarks.md, the fan CRM pages)."""
    if visible_creator_ids is None:
        visible_creator_ids = _visible_creator_ids(membership)
    fans = Fan.objects.for_agency(membership.agency_id).filter(creator__in=visible_creator_ids)
    if creator_id is not None:
        fans = fans.filter(creator_id=creator_id)
    rules = rules or rules_for(membership.agency_id)
    if segment is not None:
        if segment.creator_id is not None:
            fans = fans.filter(creator_id=segment.creator_id)
        fans = fans.filter(segment_q(segment_filters_stored(segment), rules, now))
    if filters is not None:
        fans = fans.filter(segment_q(filters, rules, now))
    search = (search or "").strip()
    if search:
        fans = fans.filter(Q(username__icontains=search) | Q(display_name__icontains=search))
    return fans.select_related("creator").order_by("-total_spent", "id")


def fan_list_at_risk(*, membership: Membership, creator_id: int, now: datetime | None = None) -> QuerySet[Fan]:
    """The creator's fans at risk of churning (lifecycle "at risk" by the agency's rules,
    tiers.py: silent for ``at_risk_days``, or renewal switched off), highest spend first."""
    return fan_list(
        membership=membership, creator_id=creator_id, filters=SegmentFilters(lifecycles=["at_risk"]), now=now
    )


def fan_audience(
    *,
    agency_id: int,
    creator_id: int,
    segment: Segment | None = None,
    fan_ids: list[int] | None = None,
    now: datetime | None = None,
) -> QuerySet[Fan]:
    """The fans of one creator that a campaign's audience names: a saved segment's live members
    (a segment of another creator selects nobody) or the given fans, in id order. For work with
    no member present (a campaign starting at its send time): the caller checked, when the
    campaign was made, that its author may see this creator and segment."""
    fans = Fan.objects.for_agency(agency_id).filter(creator_id=creator_id)
    if segment is not None:
        if segment.agency_id != agency_id or segment.creator_id not in (None, creator_id):
            return fans.none()
        fans = fans.filter(segment_q(segment_filters_stored(segment), rules_for(agency_id), now))
    else:
        fans = fans.filter(pk__in=list(fan_ids or []))
    return fans.order_by("id")


def fan_get_for_member(*, membership: Membership, fan_id: int) -> Fan:
    fan = (
        Fan.objects.for_agency(membership.agency_id)
        .filter(creator__in=_visible_creator_ids(membership), pk=fan_id)
        .select_related("creator")
        .first()
    )
    if fan is None:
        raise Http404("No such fan.")
    return fan


def fan_purchases_recent(*, fan: Fan, limit: int = 5) -> list[Purchase]:
    return list(Purchase.objects.filter(fan=fan).order_by("-purchased_at", "-id")[:limit])


# --- Conversations and messages -----------------------------------------------------------------


def conversation_list(
    *,
    membership: Membership,
    creator_id: int | None = None,
    segment: Segment | None = None,
    tag: str = "",
    search: str = "",
    waiting_only: bool = False,
    rules: FanRules | None = None,
    now: datetime | None = None,
) -> QuerySet[Conversation]:
    """The inbox: conversations the member may see, by priority: waiting for a reply first, then
    the most valuable fan, then the longest wait; answered ones by latest message."""
    conversations = Conversation.objects.for_agency(membership.agency_id).filter(
        creator__in=_visible_creator_ids(membership)
    )
    if creator_id is not None:
        conversations = conversations.filter(creator_id=creator_id)
    if waiting_only:
        conversations = conversations.filter(needs_reply=True)
    fan_filter = Q()
    if segment is not None:
        rules = rules or rules_for(membership.agency_id)
        if segment.creator_id is not None:
            conversations = conversations.filter(creator_id=segment.creator_id)
        fan_ids = Fan.objects.filter(segment_q(segment_filters_stored(segment), rules, now)).values("pk")
        fan_filter &= Q(fan_id__in=fan_ids)
    tag = (tag or "").strip().lower()
    if tag:
        fan_filter &= Q(fan__tags__name=tag)
    search = (search or "").strip()
    if search:
        fan_filter &= Q(fan__username__icontains=search) | Q(fan__display_name__icontains=search)
    if fan_filter:
        conversations = conversations.filter(fan_filter)
    return conversations.select_related("fan", "creator", "locked_by").order_by(
        "-needs_reply", "-fan_value", "waiting_since", "-last_message_at", "-id"
    )


def conversation_get_for_member(*, membership: Membership, conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.for_agency(membership.agency_id)
        .filter(creator__in=_visible_creator_ids(membership), pk=conversation_id)
        .select_related("fan", "creator", "locked_by")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def message_page(*, conversation: Conversation, before_id: int | None = None, limit: int = 30) -> list[Message]:
    """A page of the conversation's history, newest last; ``before_id`` pages back in time."""
    messages = Message.objects.filter(conversation=conversation).select_related("sent_by")
    if before_id is not None:
        anchor = messages.filter(pk=before_id).values_list("created_at", flat=True).first()
        if anchor is None:
            return []
        messages = messages.filter(Q(created_at__lt=anchor) | Q(created_at=anchor, pk__lt=before_id))
    page = list(messages.order_by("-created_at", "-id")[: max(1, min(limit, 100))])
    page.reverse()
    return page


def draft_list_pending(*, conversation: Conversation) -> list[Draft]:
    return list(Draft.objects.filter(conversation=conversation, status="pending").order_by("created_at", "id"))


def draft_get_for_member(*, membership: Membership, draft_id: int) -> Draft:
    draft = (
        Draft.objects.for_agency(membership.agency_id)
        .filter(creator__in=_visible_creator_ids(membership), pk=draft_id)
        .select_related("conversation")
        .first()
    )
    if draft is None:
        raise Http404("No such draft.")
    return draft


def audit_list(
    *,
    membership: Membership,
    creator_id: int | None = None,
    sent_by_id: int | None = None,
    source: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Message]:
    """Messages sent in the creators' names: who sent them, from what, how much was edited."""
    messages = Message.objects.for_agency(membership.agency_id).filter(
        direction=Direction.OUTBOUND, creator__in=_visible_creator_ids(membership)
    )
    if creator_id is not None:
        messages = messages.filter(creator_id=creator_id)
    if sent_by_id is not None:
        messages = messages.filter(sent_by_id=sent_by_id)
    if source:
        messages = messages.filter(source=source)
    if since is not None:
        messages = messages.filter(created_at__gte=since)
    if until is not None:
        messages = messages.filter(created_at__lt=until)
    return messages.select_related("creator", "fan", "sent_by").order_by("-created_at", "-id")


# --- Segments and templates ---------------------------------------------------------------------


def segment_list(*, membership: Membership) -> QuerySet[Segment]:
    visible = Q(creator__isnull=True) | Q(creator__in=_visible_creator_ids(membership))
    return Segment.objects.for_agency(membership.agency_id).filter(visible).select_related("creator")


def segment_get_for_member(*, membership: Membership, segment_id: int) -> Segment:
    segment = segment_list(membership=membership).filter(pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment.")
    return segment


def segment_count(*, membership: Membership, segment: Segment, now: datetime | None = None) -> int:
    """The live number of fans in the segment that the member may see."""
    return fan_list(membership=membership, segment=segment, now=now).order_by().count()


def segment_counts(
    *, membership: Membership, segments: list[Segment], now: datetime | None = None
) -> dict[int, int | None]:
    """The live count of each segment, as ``segment_count`` gives it, in one aggregate query for
    all of them (a page of the segment list costs one query, whatever its length). None for a
    segment whose filters no longer parse (``segment_filters_stored`` says why): the others are
    still counted."""
    if not segments:
        return {}
    rules = rules_for(membership.agency_id)
    fans = Fan.objects.for_agency(membership.agency_id).filter(creator__in=_visible_creator_ids(membership))
    counts = {}
    for segment in segments:
        try:
            q = segment_q(segment_filters_stored(segment), rules, now)
        except SegmentFiltersUnreadable:
            continue
        if segment.creator_id is not None:
            q &= Q(creator_id=segment.creator_id)
        counts[f"segment_{segment.pk}"] = Count("pk", filter=q)
    totals = fans.order_by().aggregate(**counts) if counts else {}
    return {segment.pk: totals.get(f"segment_{segment.pk}") for segment in segments}


def template_list(*, membership: Membership, creator_id: int | None = None) -> QuerySet[MessageTemplate]:
    visible = Q(creator__isnull=True) | Q(creator__in=_visible_creator_ids(membership))
    templates = MessageTemplate.objects.for_agency(membership.agency_id).filter(visible)
    if creator_id is not None:
        templates = templates.filter(Q(creator__isnull=True) | Q(creator_id=creator_id))
    return templates.select_related("creator")


def template_get_for_member(*, membership: Membership, template_id: int) -> MessageTemplate:
    template = template_list(membership=membership).filter(pk=template_id).first()
    if template is None:
        raise Http404("No such template.")
    return template


def fan_import_get_for_member(*, membership: Membership, import_id: int) -> FanImport:
    job = (
        FanImport.objects.for_agency(membership.agency_id)
        .filter(creator__in=_visible_creator_ids(membership), pk=import_id)
        .first()
    )
    if job is None:
        raise Http404("No such import.")
    return job


CENT = Decimal("0.01")


def campaign_message_stats(*, agency_id: int, campaign_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per campaign: how many of the PPV messages it sent were unlocked, and the PPV revenue they
    brought, per currency (``{"unlocked": n, "revenue": {"USD": Decimal}}``). Two aggregate
    queries whatever the number of campaigns."""
    stats: dict[int, dict[str, Any]] = {pk: {"unlocked": 0, "revenue": {}} for pk in campaign_ids}
    if not campaign_ids:
        return stats
    unlocked = (
        Message.objects.for_agency(agency_id)
        .filter(campaign_id__in=campaign_ids, unlocked_at__isnull=False)
        .order_by()
        .values("campaign_id")
        .annotate(count=Count("id"))
    )
    for row in unlocked:
        stats[row["campaign_id"]]["unlocked"] = row["count"]
    revenue = (
        Purchase.objects.for_agency(agency_id)
        .filter(kind=PurchaseKind.PPV, message__campaign_id__in=campaign_ids)
        .order_by()
        .values("message__campaign_id", "currency")
        .annotate(total=Sum("amount"))
    )
    for row in revenue:  # to the cent (SQLite's sum drops trailing zeros)
        stats[row["message__campaign_id"]]["revenue"][row["currency"]] = Decimal(row["total"]).quantize(CENT)
    return stats


def fans_who_unlocked(*, agency_id: int, creator_id: int, campaign_ids: list[int]) -> QuerySet[Message]:
    """The ids (``fan_id``) of the creator's fans who unlocked a PPV message that one of these
    campaigns sent them: a subquery for ``Fan`` (``pk__in=``), read through the partial
    campaign index."""
    return (
        Message.objects.for_agency(agency_id)
        .filter(creator_id=creator_id, campaign_id__in=list(campaign_ids), unlocked_at__isnull=False)
        .order_by()
        .values("fan_id")
    )


# --- What automations react to (apps/campaigns/automations.py) ----------------------------------

OFFERED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


def fans_subscribed_since(*, agency_id: int, creator_id: int, since: datetime) -> QuerySet[Fan]:
    """The creator's fans who subscribed since then and still are."""
    return Fan.objects.for_agency(agency_id).filter(
        creator_id=creator_id, subscription_state=SubscriptionState.ACTIVE, subscribed_since__gte=since
    )


def fans_renewal_off(*, agency_id: int, creator_id: int, changed_since: datetime, now: datetime) -> QuerySet[Fan]:
    """The creator's subscribed fans with renewal switched off whose record changed since then
    (the switch is one such change) and whose subscription has not run out yet."""
    return Fan.objects.for_agency(agency_id).filter(
        creator_id=creator_id,
        subscription_state=SubscriptionState.ACTIVE,
        renew_on=False,
        updated_at__gte=changed_since,
        subscription_expires_at__gt=now,
    )


def fans_expired_since(*, agency_id: int, creator_id: int, since: datetime, now: datetime) -> QuerySet[Fan]:
    """The creator's fans whose subscription ran out between then and now."""
    return Fan.objects.for_agency(agency_id).filter(
        creator_id=creator_id,
        subscription_state=SubscriptionState.EXPIRED,
        subscription_expires_at__gte=since,
        subscription_expires_at__lte=now,
    )


def ppv_unbought_since(*, agency_id: int, creator_id: int, since: datetime) -> QuerySet[Message]:
    """PPV offers the creator sent since then that are still locked, except automations' own
    (a follow-up never starts another chain of follow-ups)."""
    return Message.objects.filter(
        agency_id=agency_id,
        creator_id=creator_id,
        direction=Direction.OUTBOUND,
        ppv_price__isnull=False,
        unlocked_at__isnull=True,
        sent_at__gte=since,
        status__in=OFFERED,
    ).exclude(source=Source.AUTOMATION)


@dataclass
class FanActivity:
    """The latest of what each fan did since a time (``fans_activity_since``): by fan id."""

    wrote: dict[int, datetime]  # their latest message
    answered: dict[int, datetime]  # the latest message a member or a campaign sent them (automations aside)
    bought: dict[int, datetime]  # their latest purchase other than the subscription itself


def fans_activity_since(*, fan_ids: list[int], since: datetime) -> FanActivity:
    """What many fans did since then, in three queries whatever their number (the automations
    tick checks the runs of a batch of fans together)."""
    latest = Max("created_at")
    messages = Message.objects.filter(fan_id__in=fan_ids, created_at__gt=since).order_by().values("fan_id")
    wrote = messages.filter(direction=Direction.INBOUND).annotate(at=latest).values_list("fan_id", "at")
    answered = (
        messages.filter(direction=Direction.OUTBOUND)
        .exclude(source=Source.AUTOMATION)
        .annotate(at=latest)
        .values_list("fan_id", "at")
    )
    bought = (
        Purchase.objects.filter(fan_id__in=fan_ids, purchased_at__gt=since)
        .exclude(kind=PurchaseKind.SUBSCRIPTION)
        .order_by()
        .values("fan_id")
        .annotate(at=Max("purchased_at"))
        .values_list("fan_id", "at")
    )
    return FanActivity(wrote=dict(wrote), answered=dict(answered), bought=dict(bought))


def messages_unlocked(*, message_ids: list[int]) -> set[int]:
    return set(Message.objects.filter(pk__in=message_ids, unlocked_at__isnull=False).values_list("pk", flat=True))


# --- For the AI cost reports (apps/monitoring/cost.py) -----------------------------------------


def draft_outcomes(
    *, agency_id: int, since: datetime, until: datetime, creator_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Drafts made in [since, until) per creator, kind and provider: how many members sent
    (accepted), discarded or left pending. One query."""
    drafts = Draft.objects.for_agency(agency_id).filter(created_at__gte=since, created_at__lt=until)
    if creator_ids is not None:
        drafts = drafts.filter(creator_id__in=creator_ids)
    return list(
        drafts.order_by()
        .values("creator_id", "kind", "provider")
        .annotate(
            sent=Count("id", filter=Q(status=DraftStatus.SENT)),
            discarded=Count("id", filter=Q(status=DraftStatus.DISCARDED)),
            pending=Count("id", filter=Q(status=DraftStatus.PENDING)),
        )
    )


def creator_revenue(
    *, agency_id: int, since: datetime, until: datetime, creator_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Fans' purchases in [since, until) per creator and currency: the total, and the part paid
    for messages that began as AI drafts (revenue attributed to AI). One query."""
    purchases = Purchase.objects.for_agency(agency_id).filter(purchased_at__gte=since, purchased_at__lt=until)
    if creator_ids is not None:
        purchases = purchases.filter(creator_id__in=creator_ids)
    return list(
        purchases.order_by()
        .values("creator_id", "currency")
        .annotate(
            total=Sum("amount"),
            from_ai=Sum("amount", filter=Q(message__source=Source.AI_DRAFT)),
            purchases=Count("id"),
        )
    )
