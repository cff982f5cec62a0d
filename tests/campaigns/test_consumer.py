"""The campaign progress websocket: the member sees the panel at once and again whenever the
deliveries move; nobody else connects."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.campaigns import consumers, services
from apps.campaigns.models import DELIVERY_SOURCE
from apps.delivery.models import Delivery
from huntaze.asgi import application
from tests.campaigns.conftest import make_campaign
from tests.conftest import login_client
from tests.messaging.factories import FanFactory

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_poll(monkeypatch):
    monkeypatch.setattr(consumers, "POLL_SECONDS", 0.05)


def _sending_campaign(world):
    fans = [FanFactory(creator=world.creator) for _ in range(4)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    services.campaign_start(campaign_id=campaign.pk)
    return campaign


async def _socket(membership, campaign_id):
    cookie = await sync_to_async(lambda: f"sessionid={login_client(membership).cookies['sessionid'].value}")()
    communicator = WebsocketCommunicator(
        application, f"/ws/campaigns/{campaign_id}/", headers=[ORIGIN, (b"cookie", cookie.encode())]
    )
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def test_progress_is_pushed_as_the_deliveries_are_sent():
    from tests.conftest import build_world

    world = await sync_to_async(build_world)("Velvet")
    campaign = await sync_to_async(_sending_campaign)(world)
    communicator, connected, _ = await _socket(world.owner, campaign.pk)
    assert connected
    first = await communicator.receive_from(timeout=5)
    assert 'id="campaign-progress"' in first and 'hx-swap-oob="true"' in first
    assert "<dt>Sent</dt><dd>0</dd>" in first and "<dt>Targeted</dt><dd>4</dd>" in first

    await sync_to_async(
        lambda: (
            Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk)
            .order_by("id")
            .filter(pk__in=Delivery.objects.order_by("id").values("pk")[:2])
            .update(status="sent", sent_at=timezone.now())
        )
    )()
    frame = await communicator.receive_from(timeout=5)
    assert "<dt>Sent</dt><dd>2</dd>" in frame and "50%" in frame
    await communicator.disconnect()


async def test_another_agency_or_an_unassigned_chatter_cannot_watch():
    from tests.conftest import build_world

    world = await sync_to_async(build_world)("Velvet")
    rival = await sync_to_async(build_world)("Rival")
    campaign = await sync_to_async(_sending_campaign)(world)

    def unassigned_campaign():
        fan = FanFactory(creator=world.other_creator)
        return make_campaign(world, creator=world.other_creator, fan_ids=[fan.pk])

    other = await sync_to_async(unassigned_campaign)()
    for membership, campaign_id in ((rival.owner, campaign.pk), (world.chatter, other.pk)):
        _, connected, code = await _socket(membership, campaign_id)
        assert not connected and code == 4403


async def test_the_pushed_pause_button_works_with_the_pages_csrf_cookie():
    """The panel's buttons follow the status; their form token is accepted by Django's CSRF check."""
    import re

    from django.test import Client
    from django.urls import reverse

    from apps.campaigns.models import Campaign, CampaignStatus
    from tests.conftest import build_world

    world = await sync_to_async(build_world)("Velvet")
    campaign = await sync_to_async(_sending_campaign)(world)

    def browser() -> Client:
        client = login_client(world.owner)
        client.handler.enforce_csrf_checks = True
        client.get(reverse("campaigns:detail", args=[campaign.pk]))  # sets the CSRF cookie
        return client

    client = await sync_to_async(browser)()
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())
    communicator = WebsocketCommunicator(
        application, f"/ws/campaigns/{campaign.pk}/", headers=[ORIGIN, (b"cookie", cookie.encode())]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    frame = await communicator.receive_from(timeout=5)
    assert "Pause</button>" in frame
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', frame).group(1)
    response = await sync_to_async(client.post)(
        reverse("campaigns:pause", args=[campaign.pk]), {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert (await Campaign.objects.aget(pk=campaign.pk)).status == CampaignStatus.PAUSED
    frame = await communicator.receive_from(timeout=5)
    assert "Resume</button>" in frame and "Pause</button>" not in frame
    await communicator.disconnect()


async def test_a_progress_event_redraws_the_panel_before_the_next_read(monkeypatch):
    """``campaign.progress`` on the bus reaches the panel through the campaign's group: with the
    read every 30 s, the new numbers still arrive at once."""
    from apps.campaigns.events import progress_publish
    from tests.conftest import build_world

    monkeypatch.setattr(consumers, "POLL_SECONDS", 30.0)
    world = await sync_to_async(build_world)("Velvet")
    campaign = await sync_to_async(_sending_campaign)(world)
    communicator, connected, _ = await _socket(world.owner, campaign.pk)
    assert connected
    assert "<dt>Sent</dt><dd>0</dd>" in await communicator.receive_from(timeout=5)

    def three_sent_and_announced():
        ids = (
            Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk)
            .order_by("id")
            .values_list("pk", flat=True)[:3]
        )
        Delivery.objects.filter(pk__in=list(ids)).update(status="sent", sent_at=timezone.now())
        progress_publish(campaign_id=campaign.pk)  # what the worker's task does a second after they moved

    await sync_to_async(three_sent_and_announced)()
    frame = await communicator.receive_from(timeout=5)  # well before the 30 s read
    assert "<dt>Sent</dt><dd>3</dd>" in frame and "75%" in frame
    await communicator.disconnect()
