"""AI credits: 1 credit = $0.01 of AI cost in the gateway's ledger. At the plan's monthly credits
the gateway refuses (unless overage is on) on every path: a direct call, the studio websocket,
and the campaign personalisation task (which falls back to the template text)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.ai import gateway
from apps.ai.models import AIRequestLog
from apps.ai.types import AIError, AIRequest, ErrorKind, Message
from apps.billing import entitlements
from apps.billing.services import plan_catalogue_ensure
from apps.campaigns.models import PersonalizeStatus
from huntaze.asgi import application
from tests.billing.conftest import put_on_plan
from tests.campaigns.test_personalize import personalise, segment_campaign
from tests.conftest import build_world, login_client

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def spend(agency, usd: str, creator=None) -> None:
    AIRequestLog.objects.create(agency=agency, creator=creator, feature="studio.caption", cost_usd=Decimal(usd),
                                created_at=timezone.now())  # fmt: skip


def ask(world, creator=None) -> AIRequest:
    creator = creator or world.creator
    return AIRequest(
        feature="studio.caption", messages=[Message("user", "A caption for tonight's set")],
        agency_id=world.agency.pk, creator_id=creator.pk, user_id=world.owner.user_id,
    )  # fmt: skip


@pytest.mark.django_db
def test_credits_are_cents_of_ledger_cost_rounded_up(world):
    spend(world.agency, "0.001")
    spend(world.agency, "1.50")
    assert entitlements.credits_used(world.agency.pk) == 151


@pytest.mark.django_db
def test_the_gateway_refuses_once_the_months_credits_are_used(world, builtin):
    put_on_plan(world.agency, "creator")  # 2,000 credits = $20
    gateway.generate_sync(ask(world))
    spend(world.agency, "20.00")
    from django.core.cache import cache

    cache.clear()  # the ledger is compared with the counter again (as it is every few minutes)
    from apps.core.shared import shared_state

    shared_state().delete_sync(entitlements._seeded_key(world.agency.pk, entitlements.month_start()))
    with pytest.raises(AIError) as caught:
        gateway.generate_sync(ask(world))
    assert caught.value.kind == ErrorKind.RATE_LIMIT and not caught.value.retryable
    assert "AI credits for" in caught.value.message and "/pricing/" in caught.value.message


@pytest.mark.django_db
def test_overage_lets_calls_through_past_the_credits(world, builtin):
    put_on_plan(world.agency, "creator", overage_allowed=True)
    spend(world.agency, "25.00")
    assert gateway.generate_sync(ask(world)).text


@pytest.mark.django_db
def test_another_agencys_spend_does_not_count(world, other_world, builtin):
    put_on_plan(world.agency, "creator")
    spend(other_world.agency, "50.00")
    assert gateway.generate_sync(ask(world)).text


@pytest.mark.django_db
def test_each_calls_cost_is_counted_when_it_settles(world, remote):
    put_on_plan(world.agency, "agency")
    assert entitlements.credits_used(world.agency.pk) == 0
    gateway.generate_sync(ask(world))
    assert entitlements.credits_used(world.agency.pk) >= 1  # before the ledger row is even written


@pytest.mark.django_db
def test_ai_for_a_read_only_creator_is_refused(world, builtin):
    put_on_plan(world.agency, "creator")  # one creator: the second is read-only
    with pytest.raises(AIError, match="read-only"):
        gateway.generate_sync(ask(world, world.other_creator))
    assert gateway.generate_sync(ask(world, world.creator)).text


@pytest.mark.django_db
def test_the_personalisation_task_falls_back_to_the_template_when_credits_are_used(
    world,
    fans,
    builtin,
    django_capture_on_commit_callbacks,
):
    put_on_plan(world.agency, "creator")
    spend(world.agency, "20.00")
    campaign = segment_campaign(world)
    assert personalise(campaign, world.owner, django_capture_on_commit_callbacks) == PersonalizeStatus.DONE
    campaign.refresh_from_db()
    assert (campaign.personalize_done, campaign.personalize_fallbacks) == (5, 5)


@pytest.mark.django_db(transaction=True)
async def test_the_studio_websocket_refuses_generation_when_credits_are_used(builtin, settings):
    settings.BILLING_TRIAL_PLAN = "agency"
    await sync_to_async(plan_catalogue_ensure)()
    world = await sync_to_async(build_world)("Socket credits")
    await sync_to_async(put_on_plan)(world.agency, "creator")
    await sync_to_async(spend)(world.agency, "20.00")
    client = await sync_to_async(login_client)(world.manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(application, "/ws/studio/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "caption", "creator_id": world.creator.pk})
    )
    frames = []
    while not any("AI credits" in frame for frame in frames):
        frame = await communicator.receive_from(timeout=10)
        assert "Save to library" not in frame
        frames.append(frame)
    assert any("/pricing/" in frame for frame in frames)
    await communicator.disconnect()
