"""Campaigns on the home dashboard: sending now, scheduled with the next send time in the
agency's timezone, messages sent by campaigns today; scoped to the member's creators; an empty
state that offers a new campaign only to who may send; automations switched on and what they sent
today; four queries whatever the data."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.campaigns import services
from apps.campaigns.models import DELIVERY_SOURCE, CampaignStatus
from apps.delivery.models import Delivery
from apps.delivery.services import delivery_pump
from apps.delivery.tasks import deliver
from tests.accounts.factories import MembershipFactory
from tests.campaigns.conftest import make_campaign
from tests.delivery.conftest import enqueue
from tests.messaging.factories import FanFactory

ZONE = "America/New_York"


def _card(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    card = page[page.index('<section class="card" aria-label="Campaigns">') :]
    return card[: card.index("</section>")]


def _numbers(card: str) -> dict[str, int]:
    found = re.findall(r"<strong>(\d+)</strong> (sending now|scheduled|messages? sent by campaigns today)", card)
    return {label.replace("message ", "messages "): int(value) for value, label in found}


def _sending(world, creator, fans: int, name: str):
    """A campaign of ``creator`` started now, its ``fans`` deliveries sent."""
    audience = [FanFactory(creator=creator) for _ in range(fans)]
    campaign = make_campaign(world, creator=creator, name=name, fan_ids=[fan.pk for fan in audience])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    assert services.campaign_start(campaign_id=campaign.pk) == CampaignStatus.SENDING
    delivery_pump(creator_id=creator.pk, platform="onlyfans", seconds=5)
    return campaign


def _scheduled(world, creator, at: datetime, name: str):
    campaign = make_campaign(world, creator=creator, name=name, fan_ids=[FanFactory(creator=creator).pk], send_at=at)
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    assert campaign.status == CampaignStatus.SCHEDULED
    return campaign


@pytest.fixture
def busy(world, django_capture_on_commit_callbacks):
    """In New York: the first creator sending (3 sent today, 1 yesterday) with two scheduled, the
    next one the day after tomorrow at 09:30; the other creator sending (2 sent today) with one
    scheduled earlier, tomorrow at 07:15; a completed campaign and an inbox reply that count for
    nothing but the messages they sent."""
    world.agency.timezone = ZONE
    world.agency.save(update_fields=["timezone"])
    zone = ZoneInfo(ZONE)
    today = timezone.now().astimezone(zone).date()
    midnight = datetime.combine(today, time.min, tzinfo=zone)
    with django_capture_on_commit_callbacks():
        done = _sending(world, world.creator, 1, "Done")
        services.campaigns_tick()  # nothing left to send: completed
        done.refresh_from_db()
        assert done.status == CampaignStatus.COMPLETED
        first = _sending(world, world.creator, 4, "First sending")
        yesterday = Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=first.pk).order_by("id").first()
        Delivery.objects.filter(pk=yesterday.pk).update(sent_at=midnight - timedelta(minutes=1))
        _scheduled(world, world.creator, datetime.combine(today + timedelta(days=2), time(9, 30), zone), "Later")
        _scheduled(world, world.creator, datetime.combine(today + timedelta(days=3), time(20, 0), zone), "Latest")
        _sending(world, world.other_creator, 2, "Other sending")
        _scheduled(world, world.other_creator, datetime.combine(today + timedelta(days=1), time(7, 15), zone), "Soon")
        assert deliver(enqueue(world, source="messaging.message", recipient_id="fan-inbox").pk) == "sent"
    return {"today": today, "zone": zone}


def test_the_card_counts_sending_scheduled_and_sent_today_with_the_next_time_in_the_agencys_zone(
    world, busy, client_for
):
    card = _card(client_for(world.owner))
    # Sent today: 3 + 2 + the completed campaign's 1; not the delivery sent before midnight in
    # New York, nor the inbox reply.
    assert _numbers(card) == {"sending now": 2, "scheduled": 3, "messages sent by campaigns today": 6}
    soon = datetime.combine(busy["today"] + timedelta(days=1), time(7, 15), busy["zone"])
    assert soon.strftime("%a %-d %b, 07:15") in card
    assert f'datetime="{soon.astimezone(ZoneInfo("UTC")):%Y-%m-%dT%H:%M}' in card
    assert ZONE in card
    list_url = reverse("campaigns:list")
    assert f'href="{list_url}"' in card and f'href="{list_url}?status=sending"' in card
    assert f'href="{list_url}?status=scheduled"' in card
    assert "Create a campaign" not in card


def test_a_chatter_sees_only_their_creators_campaigns(world, busy, client_for):
    card = _card(client_for(world.chatter))
    assert _numbers(card) == {"sending now": 1, "scheduled": 2, "messages sent by campaigns today": 4}
    later = datetime.combine(busy["today"] + timedelta(days=2), time(9, 30), busy["zone"])
    assert later.strftime("%a %-d %b, 09:30") in card
    assert "07:15" not in card


def test_another_agencys_campaigns_count_for_nothing(world, other_world, busy, client_for):
    card = _card(client_for(other_world.owner))
    assert "No campaign is sending or scheduled" in card


def test_empty_state_offers_a_new_campaign_to_who_may_send(world, client_for):
    for member in (world.owner, world.manager, world.chatter):
        card = _card(client_for(member))
        assert "No campaign is sending or scheduled, none sent messages today, and no automation is on." in card
        assert f'href="{reverse("campaigns:create")}"' in card and "Create a campaign" in card
    viewer = _card(client_for(world.viewer))
    assert "No campaign is sending" in viewer and "Create a campaign" not in viewer
    assert f'href="{reverse("campaigns:list")}"' in viewer
    unassigned = MembershipFactory(agency=world.agency, role="chatter")  # may send, but for no creator
    assert "Create a campaign" not in _card(client_for(unassigned))


@pytest.mark.parametrize("extra", [0, 6])
def test_the_card_costs_four_queries_whatever_the_data(world, client_for, extra, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        for index in range(extra):
            creator = world.creator if index % 2 else world.other_creator
            _sending(world, creator, 2, f"Sending {index}")
            _scheduled(world, creator, timezone.now() + timedelta(days=index + 1), f"Scheduled {index}")
    client = client_for(world.owner)
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    tables = ("campaigns_campaign", "campaigns_automation", "delivery_delivery")
    ours = [q["sql"] for q in queries if any(table in q["sql"] for table in tables)]
    assert len(ours) == 4, ours


def test_the_card_counts_automations_on_and_what_they_sent_today(world, client_for):
    from apps.campaigns.automations import StepInput, automation_save, automations_tick

    for kind in ("welcome", "expired"):
        automation_save(
            membership=world.owner, creator=world.creator, kind=kind, enabled=True,
            steps=[StepInput(delay_minutes=0, text="Hi")],
        )  # fmt: skip
    FanFactory(creator=world.creator, subscribed_since=timezone.now())
    automations_tick()
    for delivery in Delivery.objects.filter(source="campaigns.automation"):
        assert deliver(delivery.pk) == "sent"
    card = _card(client_for(world.owner))
    assert "<strong>2</strong> automations on</a> · 1 message sent by them today" in card
    assert f'href="{reverse("campaigns:automations")}"' in card
