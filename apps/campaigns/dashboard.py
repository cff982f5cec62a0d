"""Campaigns' contribution to the home dashboard: the "Campaigns" card, with how many campaigns
are sending now, how many are scheduled and when the next one goes out, how many messages
campaigns sent today, and how many automations are on and what they sent today.

Scoped to the creators the member may see (``request.tenant.creators``: a chatter's assigned
ones), which the dashboard has already loaded: four queries whatever the number of creators or
campaigns (one aggregate over the campaigns, one count of automations switched on, one count
over each source's deliveries). "Today" and the
next send time are the agency's, in its timezone. No per-creator tile stats: a creator's
campaigns are one click away on the campaigns page.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import Count, Min, Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.permissions import Perm, has_perm
from apps.campaigns.models import AUTOMATION_SOURCE, DELIVERY_SOURCE, Automation, Campaign, CampaignStatus
from apps.core.registry import Card
from apps.core.timezones import zone_or_utc
from apps.delivery.selectors import delivery_sent_count

CARD_ORDER = 30  # after the inbox's cards (20, 25), before the team (50)


def cards(request) -> list[Card]:
    return [Card("Campaigns", "campaigns/cards/campaigns.html", _campaigns(request), CARD_ORDER)]


def _campaigns(request) -> dict:
    membership = request.tenant.membership
    creator_ids = [creator.pk for creator in request.tenant.creators]
    scheduled = Q(status=CampaignStatus.SCHEDULED)
    totals = (
        Campaign.objects.for_agency(membership.agency_id)
        .filter(creator__in=creator_ids)
        .aggregate(
            sending=Count("id", filter=Q(status=CampaignStatus.SENDING)),
            scheduled=Count("id", filter=scheduled),
            next_send_at=Min("send_at", filter=scheduled),
        )
    )
    zone = zone_or_utc(request.tenant.agency.timezone)
    midnight = datetime.combine(timezone.now().astimezone(zone).date(), time.min, tzinfo=zone)
    sent_today = delivery_sent_count(
        agency_id=membership.agency_id,
        creator_ids=creator_ids,
        source=DELIVERY_SOURCE,
        sent_from=midnight,
        sent_before=midnight + timedelta(days=1),
    )
    automations_on = (
        Automation.objects.for_agency(membership.agency_id).filter(creator__in=creator_ids, enabled=True).count()
    )
    automated_today = delivery_sent_count(
        agency_id=membership.agency_id,
        creator_ids=creator_ids,
        source=AUTOMATION_SOURCE,
        sent_from=midnight,
        sent_before=midnight + timedelta(days=1),
    )
    list_url = reverse("campaigns:list")
    return {
        "automations_on": automations_on,
        "automated_today": automated_today,
        "automations_url": reverse("campaigns:automations"),
        "sending": totals["sending"] or 0,
        "scheduled": totals["scheduled"] or 0,
        "next_send_at": totals["next_send_at"],
        "sent_today": sent_today,
        "timezone": str(zone),
        "list_url": list_url,
        "sending_url": f"{list_url}?status={CampaignStatus.SENDING}",
        "scheduled_url": f"{list_url}?status={CampaignStatus.SCHEDULED}",
        # Only a member who may send, and has a creator to send for, is offered a new campaign.
        "create_url": reverse("campaigns:create") if creator_ids and has_perm(membership, Perm.SEND_MESSAGES) else "",
    }
