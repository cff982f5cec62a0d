"""API: campaigns (mounted at /api/v1/ by huntaze/api.py); docs/api-campaigns.md.

Create and edit drafts, preview them, schedule, approve, pause, resume and cancel, and read a
campaign's stats and deliveries: each operation parses, looks up and calls one service of
apps/campaigns/services.py, which decides what may happen and when (a 409 for an action its
current status does not allow, a 400 naming the field for a rule its input breaks).

Every member reads the campaigns of the creators they may see (a chatter: their assigned ones);
another agency's campaign, or one of a creator a chatter does not handle, answers 404. Writes
need the send permission on the campaign's creator, approving the edit permission too, so a
viewer, or a read-scoped token, gets 403.
"""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where names such as StatusName would not be found.
from collections.abc import Callable

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member
from apps.campaigns import personalize, selectors, services
from apps.campaigns.models import DELIVERY_SOURCE, Campaign
from apps.campaigns.schemas import (
    CampaignDeliveryOut,
    CampaignDetailOut,
    CampaignIn,
    CampaignOut,
    CampaignPatchIn,
    CampaignPersonalizationOut,
    DeliveryStatusName,
    PersonalTextOut,
    PreviewOut,
    StatusName,
)
from apps.core.errors import ApplicationError, fields_renamed
from apps.core.openapi import MAX_ID, ErrorOut, Id
from apps.delivery.selectors import delivery_list_by_source
from apps.messaging.api.common import PageHookPagination
from apps.messaging.selectors import segment_get_for_member

router = Router(tags=["campaigns"])

# The services' field names → the API's.
API_FIELDS = {"creator": "creator_id", "segment": "segment_id"}
# In an edit, null for these keeps the value (they cannot be empty); for the others it clears it.
KEPT_WHEN_NULL = {
    "creator_id", "name", "text", "fan_ids", "media", "exclude_bought_offer", "explore_prices", "repeat", "mode",
}  # fmt: skip


def _with_stats(request: HttpRequest, campaigns: list[Campaign]) -> None:
    stats = services.campaign_stats(campaigns=campaigns)
    for campaign in campaigns:
        campaign.stats = stats[campaign.pk]


def _answer(request: HttpRequest, campaign: Campaign) -> Campaign:
    _with_stats(request, [campaign])
    return campaign


def _campaign(membership: Membership, campaign_id: int) -> Campaign:
    return selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)


def _input(membership: Membership, values: dict) -> services.CampaignInput:
    """The service's input from the body's values, the creator and segment looked up (404 when the
    member cannot see them)."""
    values = dict(values)
    creator_id, segment_id = values.pop("creator_id"), values.pop("segment_id")
    if segment_id is not None and values["fan_ids"]:
        raise ApplicationError("Give the audience as a segment or as fans, not both.", field="fan_ids")
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    segment = segment_get_for_member(membership=membership, segment_id=segment_id) if segment_id else None
    return services.CampaignInput(creator=creator, segment=segment, **values)


def _current_values(campaign: Campaign) -> dict:
    return {
        "creator_id": campaign.creator_id,
        "name": campaign.name,
        "text": campaign.text,
        "segment_id": campaign.segment_id,
        "fan_ids": list(campaign.fan_ids or []),
        "ppv_price": campaign.ppv_price,
        "media": list(campaign.media or []),
        "send_at": campaign.send_at,
        "exclude_messaged_within_hours": campaign.exclude_messaged_within_hours,
        "exclude_no_spend_days": campaign.exclude_no_spend_days,
        "exclude_bought_offer": campaign.exclude_bought_offer,
        "explore_prices": campaign.explore_prices,
        "repeat": campaign.repeat,
        "repeat_until": campaign.repeat_until,
        "mode": campaign.mode,
    }


@router.get("/campaigns", response=list[CampaignOut])
@paginate(PageHookPagination, complete=_with_stats, page_size=25)
def campaign_list(
    request: HttpRequest,
    status: StatusName | None = None,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID),
    series_id: int | None = Query(
        None, ge=1, le=MAX_ID, description="Only the occurrences of the recurring series this campaign belongs to."
    ),
):
    """The campaigns of the creators the caller may see, newest first, each with its stats
    (counted for the whole page at once, in a fixed number of queries)."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    if series_id is not None:
        anchor = _campaign(membership, series_id)
        series_id = anchor.repeat_of_id or anchor.pk
    campaigns = selectors.campaign_list(
        membership=membership, status=status, creator_id=creator_id, series_id=series_id
    )
    return campaigns.select_related("approved_by")


@router.post("/campaigns", response={201: CampaignDetailOut})
def campaign_create(request: HttpRequest, payload: CampaignIn):
    """A new draft; nothing is sent until it is scheduled."""
    membership = api_membership(request)
    require(membership, Perm.SEND_MESSAGES)
    with fields_renamed(API_FIELDS):
        data = _input(membership, payload.model_dump())
        campaign = services.campaign_create(membership=membership, data=data)
    return Status(201, _answer(request, campaign))


@router.get("/campaigns/{campaign_id}", response=CampaignDetailOut)
def campaign_detail(request: HttpRequest, campaign_id: Id):
    """One campaign, with its stats counted from its deliveries now."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    return _answer(request, _campaign(membership, campaign_id))


@router.patch("/campaigns/{campaign_id}", response={200: CampaignDetailOut, 409: ErrorOut})
def campaign_update(request: HttpRequest, campaign_id: Id, payload: CampaignPatchIn):
    """Change a draft, or a campaign awaiting approval or scheduled (it goes back to draft: schedule
    it again). Omitted fields keep their value; giving ``segment_id`` or ``fan_ids`` replaces the
    audience. A campaign that started is a 409."""
    membership = api_membership(request)
    require(membership, Perm.SEND_MESSAGES)
    campaign = _campaign(membership, campaign_id)
    changes = {
        name: value
        for name, value in payload.model_dump(exclude_unset=True).items()
        if value is not None or name not in KEPT_WHEN_NULL
    }
    values = _current_values(campaign)
    if "segment_id" in changes or "fan_ids" in changes:
        values["segment_id"], values["fan_ids"] = None, []
    values.update(changes)
    with fields_renamed(API_FIELDS):
        data = _input(membership, values)
        campaign = services.campaign_update(membership=membership, campaign=campaign, data=data)
    return _answer(request, campaign)


@router.get("/campaigns/{campaign_id}/preview", response=PreviewOut)
def campaign_preview(request: HttpRequest, campaign_id: Id):
    """The audience now, how many the exclusions leave out, the message as the first three
    recipients would read it, and what would stop it being scheduled."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    preview = services.campaign_preview(campaign=_campaign(membership, campaign_id))
    return {
        "audience": preview.audience,
        "excluded": preview.excluded,
        "recipients": preview.recipients,
        "messages": [
            {
                "fan_id": fan.pk,
                "username": fan.username,
                "display_name": fan.display_name,
                "text": text,
                "personalised": fan.pk in preview.personalised,
            }
            for fan, text in preview.messages
        ],
        "problems": preview.problems,
    }


def _act(request: HttpRequest, campaign_id: int, action: Callable[..., Campaign]) -> Campaign:
    membership = api_membership(request)
    require(membership, Perm.SEND_MESSAGES)
    campaign = _campaign(membership, campaign_id)
    with fields_renamed(API_FIELDS):
        return _answer(request, action(membership=membership, campaign=campaign))


ACTION_RESPONSES = {200: CampaignDetailOut, 409: ErrorOut}


@router.post("/campaigns/{campaign_id}/schedule", response=ACTION_RESPONSES)
def campaign_schedule(request: HttpRequest, campaign_id: Id):
    """Draft → scheduled: sent at its send time, or now. When the audience is larger than the
    agency's approval size and the caller cannot approve (a chatter), it awaits approval instead."""
    return _act(request, campaign_id, services.campaign_schedule)


@router.post("/campaigns/{campaign_id}/approve", response=ACTION_RESPONSES)
def campaign_approve(request: HttpRequest, campaign_id: Id):
    """Awaiting approval → scheduled (owners and managers)."""
    return _act(request, campaign_id, services.campaign_approve)


@router.post("/campaigns/{campaign_id}/pause", response=ACTION_RESPONSES)
def campaign_pause(request: HttpRequest, campaign_id: Id):
    """Sending → paused: its unsent messages are held until it is resumed."""
    return _act(request, campaign_id, services.campaign_pause)


@router.post("/campaigns/{campaign_id}/resume", response=ACTION_RESPONSES)
def campaign_resume(request: HttpRequest, campaign_id: Id):
    """Paused → sending."""
    return _act(request, campaign_id, services.campaign_resume)


@router.post("/campaigns/{campaign_id}/cancel", response=ACTION_RESPONSES)
def campaign_cancel(request: HttpRequest, campaign_id: Id):
    """Stop for good: nothing more is sent; what was sent stays sent."""
    return _act(request, campaign_id, services.campaign_cancel)


@router.post("/campaigns/{campaign_id}/personalize", response={202: CampaignPersonalizationOut, 409: ErrorOut})
def campaign_personalize(request: HttpRequest, campaign_id: Id):
    """Rewrite the message for each fan of the audience with the AI, in the creator's voice (a
    direct-mode draft, at most 1,000 fans): 202, then follow ``personalization`` on the campaign.
    400 for a mass-mode campaign, an empty audience or one too large; 409 when it is not a draft or
    is being personalised already. Editing the campaign discards the texts."""
    membership = api_membership(request)
    require(membership, Perm.SEND_MESSAGES)
    campaign = _campaign(membership, campaign_id)
    with fields_renamed(API_FIELDS):
        campaign = personalize.campaign_personalize(membership=membership, campaign=campaign)
    return Status(202, CampaignPersonalizationOut.from_campaign(campaign))


@router.get("/campaigns/{campaign_id}/personal-texts", response=list[PersonalTextOut])
@paginate(page_size=50)
def campaign_personal_texts(request: HttpRequest, campaign_id: Id):
    """The personalised message of each fan, in fan order (empty until a personalisation is done)."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    return selectors.personal_text_list(campaign=_campaign(membership, campaign_id))


@router.get("/campaigns/{campaign_id}/deliveries", response=list[CampaignDeliveryOut])
@paginate(page_size=50)
def campaign_deliveries(request: HttpRequest, campaign_id: Id, status: DeliveryStatusName | None = None):
    """The campaign's deliveries, oldest first: one per fan (direct mode), or one mass message per
    platform account carrying its fans (mass mode: ``kind`` "mass", ``recipient_count``)."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    campaign = _campaign(membership, campaign_id)
    return delivery_list_by_source(
        agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk, status=status
    )
