"""The exclusion "already bought this offer": fans who unlocked an earlier PPV campaign of the same
creator with the same media are left out of the preview and of the campaign when it starts
(counted in ``excluded``); the option needs media; the form, the page and the API carry it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from apps.campaigns import services
from apps.campaigns.models import DELIVERY_SOURCE, Campaign, CampaignStatus
from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery
from apps.delivery.services import delivery_pump
from apps.messaging.models import Message, PurchaseKind
from apps.messaging.services import purchase_record
from tests.campaigns.conftest import make_campaign
from tests.messaging.api_helpers import error, token_client

pytestmark = pytest.mark.django_db

JSON = "application/json"
PRICE = Decimal("15.00")


def start(world, campaign) -> str:
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    return services.campaign_start(campaign_id=campaign.pk)


def sell(world, fans, *, media, bought, creator=None, capture=None):
    """A PPV campaign of ``media`` sent to ``fans``, in their conversations, unlocked by ``bought``."""
    creator = creator or world.creator
    campaign = make_campaign(world, creator=creator, fan_ids=[fan.pk for fan in fans], ppv_price=PRICE, media=media)
    with capture():
        start(world, campaign)
    with capture(execute=True):
        delivery_pump(creator_id=creator.pk, platform="onlyfans", seconds=5)
    services.campaigns_tick()  # puts the sent messages in the fans' conversations
    for fan in bought:
        message = Message.objects.get(campaign_id=campaign.pk, fan=fan)
        purchase_record(fan=fan, kind=PurchaseKind.PPV, amount=PRICE, message=message)
    return campaign


def recipients(campaign) -> list[str]:
    return sorted(
        Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk).values_list("recipient_id", flat=True)
    )


def test_fans_who_unlocked_the_same_media_are_left_out_of_the_preview_and_the_send(
    world, fans, django_capture_on_commit_callbacks
):
    sell(world, fans[:3], media=["vault-1", "vault-2"], bought=[fans[0]], capture=django_capture_on_commit_callbacks)
    again = make_campaign(
        world,
        fan_ids=[fan.pk for fan in fans],
        ppv_price=PRICE,
        media=["vault-2", "vault-1"],
        exclude_bought_offer=True,
    )
    preview = services.campaign_preview(campaign=again)
    assert (preview.audience, preview.excluded, preview.recipients) == (5, 1, 4)
    assert fans[0] not in [fan for fan, _ in preview.messages]

    with django_capture_on_commit_callbacks():
        assert start(world, again) == CampaignStatus.SENDING
    # fans[1] and fans[2] got the offer but did not buy it: they get it again.
    assert recipients(again) == sorted(fan.platform_fan_id for fan in fans[1:])
    again.refresh_from_db()
    assert (again.targeted, again.excluded) == (4, 1)


def test_other_media_or_the_option_off_leave_buyers_in(world, fans, django_capture_on_commit_callbacks):
    sell(world, fans[:2], media=["vault-1", "vault-2"], bought=fans[:2], capture=django_capture_on_commit_callbacks)
    audience = [fan.pk for fan in fans]
    subset = make_campaign(world, fan_ids=audience, ppv_price=PRICE, media=["vault-1"], exclude_bought_offer=True)
    more = make_campaign(
        world, fan_ids=audience, ppv_price=PRICE, media=["vault-1", "vault-2", "vault-3"], exclude_bought_offer=True
    )
    off = make_campaign(world, fan_ids=audience, ppv_price=PRICE, media=["vault-1", "vault-2"])
    for campaign in (subset, more, off):
        assert services.campaign_preview(campaign=campaign).excluded == 0, campaign.media


def test_the_option_needs_media_and_nothing_is_saved(world, fans, client_for):
    with pytest.raises(ApplicationError) as caught:
        make_campaign(world, fan_ids=[fans[0].pk], exclude_bought_offer=True)
    assert caught.value.field == "exclude_bought_offer"
    assert "add its media" in caught.value.message

    form = {
        "creator": world.creator.pk, "name": "Weekend PPV", "fan_usernames": fans[0].username,
        "text": "New set", "exclude_bought_offer": "on",
    }  # fmt: skip
    response = client_for(world.owner).post(reverse("campaigns:create"), form)
    assert response.status_code == 400
    assert "add its media" in response.content.decode()

    response = token_client(world.owner).post(
        "/api/v1/campaigns",
        {"creator_id": world.creator.pk, "name": "x", "text": "New set", "fan_ids": [fans[0].pk],
         "exclude_bought_offer": True},
        content_type=JSON,
    )  # fmt: skip
    assert response.status_code == 400
    assert "add its media" in error(response)["fields"]["exclude_bought_offer"][0]
    assert not Campaign.objects.exists()


def test_the_form_saves_it_and_the_page_lists_it_among_the_exclusions(world, fans, client_for):
    client = client_for(world.owner)
    form = {
        "creator": world.creator.pk, "name": "Weekend PPV", "fan_usernames": fans[0].username, "text": "New set",
        "ppv_price": "15", "media": "vault-1\nvault-2", "exclude_no_spend_days": "30", "exclude_bought_offer": "on",
    }  # fmt: skip
    response = client.post(reverse("campaigns:create"), form)
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and campaign.exclude_bought_offer
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "fans who spent nothing in 30 days; fans who already bought this offer" in page
    edit = client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert re.search(r'<input type="checkbox" name="exclude_bought_offer"[^>]* checked', edit)


def test_the_api_sets_shows_keeps_and_clears_it(world, fans):
    client = token_client(world.manager)
    response = client.post(
        "/api/v1/campaigns",
        {"creator_id": world.creator.pk, "name": "Again", "text": "New set", "fan_ids": [fans[0].pk],
         "ppv_price": "15.00", "media": ["vault-1"], "exclude_bought_offer": True},
        content_type=JSON,
    )  # fmt: skip
    assert response.status_code == 201, response.content
    url = f"/api/v1/campaigns/{response.json()['id']}"
    assert client.get(url).json()["exclude_bought_offer"] is True
    kept = client.patch(url, {"exclude_bought_offer": None, "name": "Renamed"}, content_type=JSON).json()
    assert (kept["name"], kept["exclude_bought_offer"]) == ("Renamed", True)
    assert client.patch(url, {"exclude_bought_offer": False}, content_type=JSON).json()["exclude_bought_offer"] is False


def test_another_agencys_member_cannot_read_or_change_it(world, other_world, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk], ppv_price=PRICE, media=["vault-1"], exclude_bought_offer=True)
    outsider = token_client(other_world.owner)
    assert outsider.get(f"/api/v1/campaigns/{campaign.pk}").status_code == 404
    response = outsider.patch(f"/api/v1/campaigns/{campaign.pk}", {"exclude_bought_offer": False}, content_type=JSON)
    assert response.status_code == 404
    campaign.refresh_from_db()
    assert campaign.exclude_bought_offer
