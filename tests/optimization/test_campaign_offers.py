"""Completed PPV campaigns become the pricing engine's offers: the price, the fans reached, the
unlocks and what they paid, recounted while late unlocks still come in, never twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.campaigns import services as campaign_services
from apps.delivery.services import delivery_pump
from apps.messaging.models import Message, PurchaseKind
from apps.messaging.services import purchase_record
from apps.optimization.campaign_offers import RECOUNT_DAYS, sync_campaign_offers
from apps.optimization.models import Offer
from tests.campaigns.conftest import make_campaign
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


def finished_campaign(world, fans, capture, *, price="15.00", media=("v-1",), **extra):
    campaign = make_campaign(
        world, fan_ids=[fan.pk for fan in fans], ppv_price=Decimal(price) if price else None, media=list(media),
        **extra,
    )  # fmt: skip
    with capture():
        campaign_services.campaign_schedule(membership=world.owner, campaign=campaign)
        campaign_services.campaign_start(campaign_id=campaign.pk)
    with capture(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    for _ in range(3):
        campaign_services.campaigns_tick()
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    return campaign


def test_a_finished_ppv_campaign_is_one_offer_and_late_unlocks_are_counted(world, django_capture_on_commit_callbacks):
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(4)]
    campaign = finished_campaign(world, fans, django_capture_on_commit_callbacks)
    messages = list(Message.objects.filter(campaign_id=campaign.pk).order_by("fan_id"))
    purchase_record(fan=fans[0], kind=PurchaseKind.PPV, amount=Decimal("15.00"), message=messages[0])

    assert sync_campaign_offers(agency_id=world.agency.pk) == 1
    assert sync_campaign_offers(agency_id=world.agency.pk) == 0  # nothing new: nothing written
    offer = Offer.objects.get(campaign_id=campaign.pk)
    assert (offer.creator_id, offer.price, offer.recipients, offer.unlocks, offer.revenue, offer.source) == (
        world.creator.pk, Decimal("15.00"), 4, 1, Decimal("15.00"), "campaign",
    )  # fmt: skip

    purchase_record(fan=fans[2], kind=PurchaseKind.PPV, amount=Decimal("15.00"), message=messages[2])
    assert sync_campaign_offers(agency_id=world.agency.pk) == 1
    offer.refresh_from_db()
    assert (offer.unlocks, offer.revenue) == (2, Decimal("30.00"))
    assert Offer.objects.count() == 1


def test_an_old_offer_is_left_alone_and_campaigns_without_a_price_are_not_offers(
    world, django_capture_on_commit_callbacks
):
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(3)]
    priced = finished_campaign(world, fans, django_capture_on_commit_callbacks)
    finished_campaign(world, fans, django_capture_on_commit_callbacks, price=None, media=())
    assert sync_campaign_offers() == 1
    offer = Offer.objects.get()
    assert offer.campaign_id == priced.pk

    later = timezone.now() + timedelta(days=RECOUNT_DAYS + 1)
    message = Message.objects.filter(campaign_id=priced.pk).first()
    purchase_record(fan=message.fan, kind=PurchaseKind.PPV, amount=Decimal("15.00"), message=message)
    assert sync_campaign_offers(now=later) == 0
    offer.refresh_from_db()
    assert offer.unlocks == 0


def test_another_agencys_campaigns_are_not_synced_into_this_one(world, other_world, django_capture_on_commit_callbacks):
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(2)]
    finished_campaign(world, fans, django_capture_on_commit_callbacks)
    assert sync_campaign_offers(agency_id=other_world.agency.pk) == 0
    assert not Offer.objects.exists()


def test_explored_prices_are_offers_at_what_fans_paid_in_constant_queries(
    world, django_capture_on_commit_callbacks, django_assert_num_queries
):
    """Each price an exploring campaign asked is an offer whose revenue is what fans actually paid
    (a $3 discount on an unlock shows), and recounting more campaigns costs no more queries."""
    world.creator.ppv_price_min, world.creator.ppv_price_max = Decimal("10"), Decimal("20")
    world.creator.save(update_fields=["ppv_price_min", "ppv_price_max"])
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(30)]

    def explore():
        return finished_campaign(world, fans, django_capture_on_commit_callbacks, explore_prices=True)

    first = explore()
    messages = list(Message.objects.filter(campaign_id=first.pk).select_related("fan").order_by("ppv_price", "id"))
    cheapest, dearest = messages[0], messages[-1]
    assert cheapest.ppv_price < dearest.ppv_price
    paid = {cheapest.ppv_price: cheapest.ppv_price - 3, dearest.ppv_price: dearest.ppv_price}
    for message in (cheapest, dearest):
        purchase_record(fan=message.fan, kind=PurchaseKind.PPV, amount=paid[message.ppv_price], message=message)

    with CaptureQueriesContext(connection) as one:
        assert sync_campaign_offers(agency_id=world.agency.pk) >= 2
    offers = {offer.price: offer for offer in Offer.objects.filter(campaign_id=first.pk)}
    assert offers[cheapest.ppv_price].revenue == cheapest.ppv_price - 3  # not price x unlocks
    assert offers[dearest.ppv_price].revenue == dearest.ppv_price
    assert sum(offer.recipients for offer in offers.values()) == 30
    assert sum(offer.unlocks for offer in offers.values()) == 2

    Offer.objects.all().delete()
    explore(), explore()
    with django_assert_num_queries(len(one.captured_queries)):
        assert sync_campaign_offers(agency_id=world.agency.pk) >= 6
    assert Offer.objects.values("campaign_id").distinct().count() == 3
