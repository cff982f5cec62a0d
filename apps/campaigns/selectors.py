"""Reads for campaigns. Every getter answers 404 for "missing" and "not yours" alike: a member
sees the campaigns of the creators they may see (a chatter: their assigned ones)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.campaigns.models import Campaign, CampaignPersonalText, CampaignStatus


def campaign_list(
    *,
    membership: Membership,
    status: str | None = None,
    creator_id: int | None = None,
    series_id: int | None = None,
) -> QuerySet[Campaign]:
    """``series_id``: only the recurring series whose first campaign it is (that one and its occurrences)."""
    campaigns = Campaign.objects.for_agency(membership.agency_id).filter(
        creator__in=creator_list(membership=membership, include_archived=True)
    )
    if status:
        campaigns = campaigns.filter(status=status)
    if creator_id is not None:
        campaigns = campaigns.filter(creator_id=creator_id)
    if series_id is not None:
        campaigns = campaigns.filter(Q(pk=series_id) | Q(repeat_of_id=series_id))
    return campaigns.select_related("creator", "segment", "created_by").order_by("-created_at", "-id")


def campaign_get_for_member(*, membership: Membership, campaign_id: int) -> Campaign:
    campaign = campaign_list(membership=membership).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


SERIES_SHOWN = 20


def campaign_series(*, membership: Membership, campaign: Campaign, limit: int = SERIES_SHOWN) -> list[Campaign]:
    """The other occurrences of the recurring series ``campaign`` belongs to (its first campaign
    and every occurrence written after it), latest send time first, at most ``limit`` + 1 (one
    more tells the page that older ones are not listed): one query whatever the length of the
    series, none for a campaign sent once."""
    if not (campaign.repeat or campaign.repeat_of_id):
        return []
    first_id = campaign.repeat_of_id or campaign.pk
    return list(
        campaign_list(membership=membership, series_id=first_id)
        .exclude(pk=campaign.pk)
        .select_related(None)
        .only("pk", "name", "status", "send_at", "started_at", "agency_id", "creator_id", "repeat_of")
        .order_by("-send_at", "-id")[: limit + 1]
    )


def personal_text_list(*, campaign: Campaign) -> QuerySet[CampaignPersonalText]:
    """A campaign's personalised texts with their fans, in fan order (the campaign is the
    member's already: fetched by ``campaign_get_for_member``)."""
    return (
        CampaignPersonalText.objects.for_agency(campaign.agency_id)
        .filter(campaign=campaign)
        .select_related("fan")
        .order_by("fan_id")
    )


def finished_ppv_campaigns(*, agency_id: int | None = None, finished_since=None) -> QuerySet[Campaign]:
    """Completed campaigns that carried a PPV price (the optimization app's offer evidence),
    oldest first; ``finished_since`` keeps the recent ones, whose unlocks may still be coming in."""
    campaigns = Campaign.objects.filter(
        status=CampaignStatus.COMPLETED, ppv_price__isnull=False, finished_at__isnull=False
    )
    if agency_id is not None:
        campaigns = campaigns.filter(agency_id=agency_id)
    if finished_since is not None:
        campaigns = campaigns.filter(finished_at__gte=finished_since)
    return campaigns.order_by("finished_at", "id")
