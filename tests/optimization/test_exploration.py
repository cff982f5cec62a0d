"""Price exploration: a direct PPV campaign that opts in splits its audience across nearby prices,
each fan's price drawn by Thompson sampling from the pricing posterior within the creator's PPV
range; the campaign page shows each price's results and each price becomes an Offer."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from django.urls import reverse

from apps.campaigns import services as campaign_services
from apps.campaigns.models import Campaign
from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery
from apps.delivery.services import delivery_pump
from apps.messaging.models import Message, PurchaseKind
from apps.messaging.services import purchase_record
from apps.optimization import selectors, services
from apps.optimization.exploration import candidate_prices, draw_prices
from apps.optimization.models import Offer
from tests.campaigns.conftest import make_campaign
from tests.campaigns.test_views import form_data
from tests.messaging.factories import FanFactory
from tests.optimization.factories import add_offers

pytestmark = pytest.mark.django_db


def test_bands_stay_within_the_creators_range_and_near_the_price():
    assert candidate_prices(Decimal("15"), Decimal("10"), Decimal("20")) == [12.0, 14.0, 15.0, 16.0, 18.0]
    assert candidate_prices(Decimal("15"), Decimal("15"), Decimal("15")) == [15.0]
    prices = candidate_prices(Decimal("9.99"), Decimal("5"), Decimal("50"))
    assert 9.99 in prices and len(prices) == 5 and all(5 <= p <= 19.98 for p in prices)


def test_thompson_sampling_favours_the_price_the_history_says_earns_most(world):
    add_offers(world.creator, prices=(8, 12, 15, 20, 25), rounds=6, recipients=400)  # revenue peaks at $15
    history = selectors.offer_history_for_agency(world.agency.pk)
    prices = [8.0, 15.0, 25.0]
    chosen, _posterior = draw_prices(history, world.creator.pk, prices, 2000, seed=1)
    shares = np.bincount(chosen, minlength=3) / 2000
    assert shares[1] > 0.6 and shares[1] > shares[0] and shares[1] > shares[2]
    # Without any history every band is Beta(1, 1): the draws still spread over the bands.
    chosen, _ = draw_prices(None, world.creator.pk, prices, 2000, seed=1)
    assert len(set(chosen.tolist())) == 3


def _finish(world, campaign, capture):
    with capture():
        campaign_services.campaign_schedule(membership=world.owner, campaign=campaign)
        campaign_services.campaign_start(campaign_id=campaign.pk)
    with capture(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=10)
    for _ in range(3):
        campaign_services.campaigns_tick()
    campaign.refresh_from_db()
    assert campaign.status == "completed"


def test_an_exploring_campaign_end_to_end(
    world, client_for, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    world.creator.ppv_price_min, world.creator.ppv_price_max = Decimal("10"), Decimal("20")
    world.creator.save(update_fields=["ppv_price_min", "ppv_price_max"])
    add_offers(world.other_creator, rounds=2)  # the agency's evidence the posterior pools
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(40)]
    campaign = make_campaign(
        world, fan_ids=[fan.pk for fan in fans], ppv_price=Decimal("15.00"), media=["v-1"], explore_prices=True
    )
    _finish(world, campaign, django_capture_on_commit_callbacks)

    prices = sorted(set(Delivery.objects.filter(source_id=campaign.pk).values_list("ppv_price", flat=True)))
    assert len(prices) >= 2 and all(Decimal("10") <= price <= Decimal("20") for price in prices)

    # Fans unlock: two of the cheapest arm, one of the dearest.
    messages = list(Message.objects.filter(campaign_id=campaign.pk).select_related("fan").order_by("ppv_price", "id"))
    cheapest = [m for m in messages if m.ppv_price == prices[0]]
    dearest = [m for m in messages if m.ppv_price == prices[-1]]
    for message in cheapest[:2] + dearest[:1]:
        purchase_record(fan=message.fan, kind=PurchaseKind.PPV, amount=message.ppv_price, message=message)

    services.run_nightly(agency_id=world.agency.pk)  # the nightly offer recount
    offers = {offer.price: offer for offer in Offer.objects.filter(campaign_id=campaign.pk)}
    assert sorted(offers) == prices
    assert sum(offer.recipients for offer in offers.values()) == 40
    for price, offer in offers.items():
        assert offer.recipients == sum(1 for m in messages if m.ppv_price == price)
        assert offer.source == "campaign" and offer.revenue == price * offer.unlocks
    assert offers[prices[0]].unlocks == min(2, len(cheapest)) and offers[prices[-1]].unlocks == 1
    assert services.run_nightly(agency_id=world.agency.pk).offers_synced == 0  # nothing twice

    client = client_for(world.owner)
    with django_assert_max_num_queries(40):
        page = client.get(reverse("campaigns:detail", args=[campaign.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "Prices explored" in body
    for price in prices:
        assert f"{price} USD" in body


def test_exploring_needs_a_ppv_price_and_direct_messages(world, client_for):
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(2)]
    with pytest.raises(ApplicationError) as error:
        make_campaign(world, fan_ids=[fan.pk for fan in fans], explore_prices=True)
    assert error.value.field == "explore_prices"

    client = client_for(world.owner)
    response = client.post(
        reverse("campaigns:create"),
        form_data(
            world, fan_usernames=fans[0].username, text="New set tonight", ppv_price="12.00", media="v-1",
            mode="mass", explore_prices="on",
        ),
    )  # fmt: skip
    assert response.status_code == 400  # the form again, with the reason on the field
    assert "Exploring prices needs a PPV price and direct messages" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_campaign_that_does_not_explore_is_one_offer_at_its_price(world, django_capture_on_commit_callbacks):
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(6)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans], ppv_price=Decimal("15.00"), media=["v-1"])
    _finish(world, campaign, django_capture_on_commit_callbacks)
    assert set(Delivery.objects.filter(source_id=campaign.pk).values_list("ppv_price", flat=True)) == {Decimal("15")}
    services.run_nightly(agency_id=world.agency.pk)
    assert list(Offer.objects.filter(campaign_id=campaign.pk).values_list("price", "recipients")) == [
        (Decimal("15.00"), 6)
    ]


def test_the_api_takes_and_shows_the_option(world):
    from tests.messaging.api_helpers import token_client

    fan = FanFactory(creator=world.creator, display_name="Fan")
    client = token_client(world.owner, "write")
    body = {
        "creator_id": world.creator.pk, "name": "Explore", "text": "New set tonight", "fan_ids": [fan.pk],
        "ppv_price": "12.00", "media": ["v-1"], "explore_prices": True,
    }  # fmt: skip
    created = client.post("/api/v1/campaigns", body, content_type="application/json")
    assert created.status_code == 201 and created.json()["explore_prices"] is True
    refused = client.post(
        "/api/v1/campaigns", {**body, "ppv_price": None, "media": []}, content_type="application/json"
    )
    assert refused.status_code == 400 and "explore_prices" in str(refused.json())
    assert Campaign.objects.count() == 1
