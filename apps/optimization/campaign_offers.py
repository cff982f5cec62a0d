"""PPV campaigns become Offers: the pricing engine's evidence from the product's own sends.

A completed campaign with a PPV price is one offer: its price, the fans it reached, the PPV
messages of it that fans unlocked and what they paid (``campaigns.services.campaign_stats``, read
through the campaigns app's services and selectors, never its models). Fans keep unlocking for
days after a campaign ends, so an offer is recounted while its campaign finished less than
``RECOUNT_DAYS`` ago; after that it is left as it is (and an edit by hand is not overwritten).
A campaign that explored prices (apps/optimization/exploration.py) is one offer per price it
asked. Idempotent: one Offer per campaign and price (a unique constraint), so the nightly run can
call this as often as it likes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.campaigns import selectors as campaign_selectors
from apps.campaigns import services as campaign_services
from apps.optimization.models import Offer, Source

RECOUNT_DAYS = 14


def sync_campaign_offers(*, agency_id: int | None = None, now: datetime | None = None) -> int:
    """Record an Offer for each completed PPV campaign that has none, and recount the recent
    ones; answers how many offers were created or changed. A campaign that reached nobody is
    no evidence and is skipped. A campaign that explored prices (``explore_prices``) is one offer
    per price it asked (``campaign_price_arms_for``): each arm's fans reached, unlocks and the PPV
    purchases recorded against it. A constant number of queries, however many campaigns."""
    now = now or timezone.now()
    recent_since = now - timedelta(days=RECOUNT_DAYS)
    existing = Offer.objects.filter(campaign__isnull=False)
    if agency_id is not None:
        existing = existing.filter(agency_id=agency_id)
    offers = {
        (offer.campaign_id, offer.price): offer for offer in existing.filter(campaign__finished_at__gte=recent_since)
    }
    recent = {campaign_id for campaign_id, _price in offers}
    known = set(existing.values_list("campaign_id", flat=True))
    campaigns = [
        campaign
        for campaign in campaign_selectors.finished_ppv_campaigns(agency_id=agency_id).select_related("creator")
        if campaign.pk not in known or campaign.pk in recent
    ]
    if not campaigns:
        return 0
    stats = campaign_services.campaign_stats(campaigns=campaigns)
    explored = campaign_services.campaign_price_arms_for(campaigns=campaigns)
    created, changed = [], []
    for campaign in campaigns:
        currency = campaign.creator.currency
        if campaign.explore_prices:
            arms = [
                (arm.price, arm.sent, min(arm.unlocked, arm.sent), arm.revenue) for arm in explored.get(campaign.pk, [])
            ]
        else:
            numbers = stats[campaign.pk]
            arms = [
                (
                    campaign.ppv_price,
                    numbers.sent,
                    min(numbers.unlocked, numbers.sent),
                    numbers.revenue.get(currency, Decimal("0")),
                )
            ]
        for price, recipients, unlocks, revenue in arms:
            if recipients <= 0:
                continue
            offer = offers.get((campaign.pk, price))
            if offer is None:
                created.append(
                    Offer(
                        agency_id=campaign.agency_id, creator_id=campaign.creator_id, campaign_id=campaign.pk,
                        sent_at=campaign.started_at or campaign.finished_at, price=price, currency=currency,
                        recipients=recipients, unlocks=unlocks, revenue=revenue, source=Source.CAMPAIGN,
                    )
                )  # fmt: skip
            elif (offer.recipients, offer.unlocks, offer.revenue) != (recipients, unlocks, revenue):
                offer.recipients, offer.unlocks, offer.revenue = recipients, unlocks, revenue
                changed.append(offer)
    with transaction.atomic():
        Offer.objects.bulk_create(created, ignore_conflicts=True)  # a concurrent run made it: fine
        Offer.objects.bulk_update(changed, ["recipients", "unlocks", "revenue"])
    return len(created) + len(changed)
