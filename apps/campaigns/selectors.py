"""Reads for campaigns. Every getter answers 404 for "missing" and "not yours" alike: a member
sees the campaigns of the creators they may see (a chatter: their assigned ones)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.campaigns.models import Campaign


def campaign_list(
    *, membership: Membership, status: str | None = None, creator_id: int | None = None
) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.for_agency(membership.agency_id).filter(
        creator__in=creator_list(membership=membership, include_archived=True)
    )
    if status:
        campaigns = campaigns.filter(status=status)
    if creator_id is not None:
        campaigns = campaigns.filter(creator_id=creator_id)
    return campaigns.select_related("creator", "segment", "created_by").order_by("-created_at", "-id")


def campaign_get_for_member(*, membership: Membership, campaign_id: int) -> Campaign:
    campaign = campaign_list(membership=membership).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign
