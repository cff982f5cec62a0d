"""The fan CRM on the home dashboard: unanswered conversations, revenue today, creator stats."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.messaging.models import Conversation
from tests.messaging.api_helpers import waiting_conversation
from tests.messaging.factories import FanFactory, PurchaseFactory


def _page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_unanswered_card_counts_the_wait_and_links_the_top_conversations(world, client_for):
    old = waiting_conversation(world.creator, display_name="Patient Pete")
    Conversation.objects.filter(pk=old.pk).update(waiting_since=timezone.now() - timedelta(hours=3))
    rich = waiting_conversation(world.creator, display_name="Rich Rita")
    Conversation.objects.filter(pk=rich.pk).update(fan_value=Decimal(900))
    hidden = waiting_conversation(world.other_creator, display_name="Unassigned Ursula")
    owner = _page(client_for(world.owner))
    assert "<strong>3</strong> conversations waiting" in owner and "3\xa0hours" in owner
    assert owner.index("Rich Rita") < owner.index("Patient Pete")
    assert reverse("messaging:conversation", args=[rich.pk]) in owner
    chatter = _page(client_for(world.chatter))
    assert "<strong>2</strong> conversations waiting" in chatter
    assert "Unassigned Ursula" not in chatter and reverse("messaging:conversation", args=[hidden.pk]) not in chatter


def test_unanswered_card_empty_state(world, client_for):
    assert "No fan is waiting for a reply." in _page(client_for(world.viewer))


def test_revenue_today_in_the_agency_timezone_by_kind_and_currency(world, client_for):
    world.agency.timezone = "America/New_York"
    world.agency.save(update_fields=["timezone"])
    zone = timezone.zoneinfo.ZoneInfo("America/New_York")
    midnight = datetime.combine(timezone.now().astimezone(zone).date(), datetime.min.time(), tzinfo=zone)
    fan = FanFactory(creator=world.creator)
    PurchaseFactory(fan=fan, kind="tip", amount=Decimal("10.00"), purchased_at=midnight + timedelta(minutes=1))
    PurchaseFactory(fan=fan, kind="ppv", amount=Decimal("25.50"), purchased_at=midnight + timedelta(minutes=2))
    PurchaseFactory(fan=fan, kind="tip", amount=Decimal("7.00"), currency="EUR", purchased_at=midnight)
    PurchaseFactory(fan=fan, kind="tip", amount=Decimal("99.00"), purchased_at=midnight - timedelta(minutes=1))
    PurchaseFactory(
        fan=FanFactory(creator=world.other_creator), kind="tip", amount=Decimal("5.00"), purchased_at=midnight
    )
    owner = _page(client_for(world.owner))
    assert "<strong>40.50 USD</strong> today" in owner and "<strong>7.00 EUR</strong> today" in owner
    assert "Tip: 15.00 USD" in owner and "PPV unlock: 25.50 USD" in owner and "America/New_York" in owner
    chatter = _page(client_for(world.chatter))
    assert "<strong>35.50 USD</strong> today" in chatter and "Tip: 10.00 USD" in chatter


def test_creator_tiles_show_waiting_fans_and_revenue(world, client_for):
    waiting_conversation(world.creator)
    waiting_conversation(world.creator)
    FanFactory(creator=world.other_creator)
    fan = FanFactory(creator=world.creator)
    PurchaseFactory(fan=fan, amount=Decimal("1200.00"))
    PurchaseFactory(fan=fan, amount=Decimal("50.00"), purchased_at=timezone.now() - timedelta(days=31))
    page = _page(client_for(world.owner))
    star = page[page.index(f'/settings/creators/{world.creator.pk}/">') :]
    star = star[: star.index("</li>")]
    assert "<dt>Waiting</dt>" in star and f'creator={world.creator.pk}&amp;waiting=on">2</a>' in star
    assert f'creator={world.creator.pk}">3</a>' in star  # fans
    assert "<dd>1,200.00 USD</dd>" in star
    nova = page[page.index(f'/settings/creators/{world.other_creator.pk}/">') :]
    nova = nova[: nova.index("</li>")]
    assert 'waiting=on">0</a>' in nova and "<dd>0.00 USD</dd>" in nova


@pytest.mark.parametrize("extra", [0, 12])
def test_messaging_adds_six_queries_whatever_the_data(world, client_for, django_assert_num_queries, extra):
    for index in range(extra):
        waiting_conversation(world.creator if index % 2 else world.other_creator)
        PurchaseFactory(fan=FanFactory(creator=world.creator))
    client = client_for(world.owner)
    client.get("/")
    # tests/test_dashboard.py's 12, plus 3 for the cards and 3 for the stats (and 4 for campaigns'
    # card, 2 for monitoring's AI cost card, 2 for optimization's card)
    with django_assert_num_queries(26):
        assert client.get("/").status_code == 200
