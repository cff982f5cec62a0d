"""API: fans (list with filters, a fan's profile, tags, notes, purchases) and the agency's fan
rules (the tier thresholds and lifecycle days the badges use).

Every member reads the fans of the creators they may see (chatters: their assigned ones); another
agency's fan, or a creator a chatter does not handle, answers 404. Tags and notes need the send
permission on the fan's creator (services.fan_tags_set / fan_note_add decide), so a viewer, or a
read-scoped token, gets 403. Every member reads the fan rules; owners and managers change them
(library.fan_rules_update).
"""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where names such as TierName would not be found.
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member
from apps.core.openapi import MAX_ID, ErrorOut, Id
from apps.messaging import library, selectors, services
from apps.messaging.models import Conversation, Fan, FanNote, Purchase
from apps.messaging.schemas import (
    FanDetailOut,
    FanOut,
    FanPatchIn,
    FanRulesOut,
    FanRulesPatchIn,
    LifecycleName,
    NoteIn,
    NoteOut,
    PurchaseOut,
    TierName,
    request_rules,
)
from apps.messaging.segments import SegmentFilters
from apps.messaging.tiers import rules_for

router = Router(tags=["fans"])

NOTES_SHOWN = 50


@router.get("/fans", response={200: list[FanOut], 409: ErrorOut})
@paginate(page_size=50)
def fan_list(
    request: HttpRequest,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID),
    segment_id: int | None = Query(None, ge=1, le=MAX_ID),
    tier: TierName | None = None,
    lifecycle: LifecycleName | None = None,
    tag: str = Query("", max_length=40),
    search: str = Query("", max_length=100),
):
    """Fans the caller may see, highest spend first, with their tier and lifecycle badges, spend
    split and PPV buy rate. Filters combine (AND); ``segment_id`` applies a saved segment (409
    when its saved filters can no longer be read)."""
    membership = api_membership(request)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    segment = (
        selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
        if segment_id is not None
        else None
    )
    tag = tag.strip().lower()
    filters = SegmentFilters(
        tiers=[tier] if tier else [], lifecycles=[lifecycle] if lifecycle else [], tags=[tag] if tag else []
    )
    rules = request_rules(request, membership.agency_id)
    fans = selectors.fan_list(
        membership=membership, creator_id=creator_id, segment=segment, filters=filters, search=search, rules=rules
    )
    return fans.prefetch_related("tags")


def _fan_detail(membership, fan_id: int) -> Fan:
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    fan.latest_notes = list(FanNote.objects.filter(fan=fan).select_related("author")[:NOTES_SHOWN])
    fan.conversation_pk = Conversation.objects.filter(fan=fan).values_list("pk", flat=True).first()
    return fan


@router.get("/fans/{fan_id}", response=FanDetailOut)
def fan_detail(request: HttpRequest, fan_id: Id):
    """A fan's profile: badges, spend, tags, the latest notes and their conversation's id."""
    return _fan_detail(api_membership(request), fan_id)


@router.patch("/fans/{fan_id}", response=FanDetailOut)
def fan_update(request: HttpRequest, fan_id: Id, payload: FanPatchIn):
    """Replace the fan's tags (the only field a member changes; the rest comes from the platform)."""
    membership = api_membership(request)
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    require(membership, Perm.SEND_MESSAGES, creator=fan.creator)
    if payload.tags is not None:
        services.fan_tags_set(membership=membership, fan=fan, tags=payload.tags)
    return _fan_detail(membership, fan_id)


@router.post("/fans/{fan_id}/notes", response={201: NoteOut})
def fan_note_add(request: HttpRequest, fan_id: Id, payload: NoteIn):
    """Add a note about the fan (shown in the inbox sidebar)."""
    membership = api_membership(request)
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    return Status(201, services.fan_note_add(membership=membership, fan=fan, text=payload.text))


@router.get("/fans/{fan_id}/purchases", response=list[PurchaseOut])
@paginate(page_size=50)
def fan_purchases(request: HttpRequest, fan_id: Id):
    """What the fan paid, newest first."""
    membership = api_membership(request)
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    return Purchase.objects.for_agency(membership.agency_id).filter(fan=fan).order_by("-purchased_at", "-id")


@router.get("/fan-rules", response=FanRulesOut, tags=["fan rules"])
def fan_rules_detail(request: HttpRequest):
    """The agency's spend tier thresholds and lifecycle days (the defaults until changed)."""
    return rules_for(api_membership(request).agency_id)


@router.patch("/fan-rules", response=FanRulesOut, tags=["fan rules"])
def fan_rules_update(request: HttpRequest, payload: FanRulesPatchIn):
    """Change some of the rules (owners and managers); the others keep their values. Tiers must
    rise (low < mid < high < whale) and churned_days be above at_risk_days: a 400 names the field."""
    membership = api_membership(request)
    return library.fan_rules_update(membership=membership, **payload.model_dump(exclude_none=True))
