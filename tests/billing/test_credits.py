"""AI credits: 1 credit = $0.01 of AI cost in the gateway's ledger. At the plan's monthly credits
the gateway refuses (unless overage is on) on every path: a direct call, the studio websocket,
and the campaign personalisation task (which falls back to the template text)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.ai import gateway
from apps.ai.ledger import ledger
from apps.ai.models import AIRequestLog
from apps.ai.types import AIError, AIRequest, AIResponse, ErrorKind, Message
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


# --- The last credits: calls in flight and dear calls cannot overshoot -----------------------------

# gpt-4o-mini at $0.15 / $0.60 per million tokens: 100 tokens in and 1,000 out cost $0.000615. The
# prompt below is over 100 bytes, so the gateway's bound of a call (every prompt byte a token, the
# whole max_tokens answer) is at least what it costs.
CALL_COST = Decimal("0.000615")
LONG_PROMPT = "A playful caption for tonight's set, for the fans who stayed up late with us once again, number {:03d}."


def long_ask(world, number: int, max_tokens: int = 1000) -> AIRequest:
    return AIRequest(
        feature="studio.caption", messages=[Message("user", LONG_PROMPT.format(number))], agency_id=world.agency.pk,
        creator_id=world.creator.pk, user_id=world.owner.user_id, max_tokens=max_tokens,
    )  # fmt: skip


async def month_spend(world) -> Decimal:
    await ledger.aflush()
    return await sync_to_async(
        lambda: sum(AIRequestLog.objects.filter(agency=world.agency).values_list("cost_usd", flat=True), Decimal(0))
    )()


@pytest.mark.django_db(transaction=True)
async def test_concurrent_calls_cannot_spend_past_the_plans_credits(world, remote):
    """Thirty generations at once on a plan with one credit ($0.01) left for the month: before,
    every one was admitted on the balance (none had been charged yet) and the month ended at
    $0.018; now each call holds its bound until it settles, the month stays within its credit,
    and the calls that do not fit are told so instead of running."""
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000}, latency=0.3)
    await sync_to_async(put_on_plan)(world.agency, "creator", ai_credits_monthly=1)
    assert len(LONG_PROMPT.format(0).encode()) >= 100

    results = await asyncio.gather(*(gateway.generate(long_ask(world, i)) for i in range(30)), return_exceptions=True)

    answered = [r for r in results if isinstance(r, AIResponse)]
    refused = [r for r in results if isinstance(r, AIError)]
    assert len(answered) + len(refused) == 30, results
    assert answered and refused
    for error in refused:
        assert error.message.startswith("AI credit used up:"), error.message
        assert error.kind == ErrorKind.RATE_LIMIT and "/pricing/" in error.message
    assert remote.count("openai") == len(answered)
    assert await month_spend(world) <= Decimal("0.01")
    assert await sync_to_async(entitlements.credits_used)(world.agency.pk) <= 1


@pytest.mark.django_db
def test_one_dear_call_cannot_spend_more_than_the_credits_left(world, remote, settings):
    """One credit ($0.01) left and a call on gpt-4o that may write 2,000 tokens ($0.02): before, it
    ran and took the month to three credits of two; now it is refused with what it could cost and
    what is left, and a shorter answer that fits still runs."""
    from apps.ai.registry import registry

    settings.OPENAI_MODELS = ["gpt-4o"]  # $2.50 / $10.00 per million tokens
    registry.reset()
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 2000})
    put_on_plan(world.agency, "creator", ai_credits_monthly=2)
    spend(world.agency, "0.01")

    with pytest.raises(AIError) as caught:
        gateway.generate_sync(long_ask(world, 1, max_tokens=2000))
    message = caught.value.message
    assert message.startswith("AI credit used up:") and "up to 3 credits" in message and "1 of" in message
    assert remote.count("openai") == 0

    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 500})
    assert gateway.generate_sync(long_ask(world, 2, max_tokens=500)).cost_usd == Decimal("0.00525")
    ledger.flush()
    assert entitlements.credits_used(world.agency.pk) == 2


@pytest.mark.django_db
def test_a_call_that_fails_gives_back_the_credits_it_held(world, remote, settings):
    """A provider error costs nothing and holds nothing afterwards: the next call that fits runs."""
    from apps.ai.registry import registry
    from tests.fakes.llm_server import Fault

    settings.OPENAI_MODELS = ["gpt-4o"]
    registry.reset()
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 800})
    put_on_plan(world.agency, "creator", ai_credits_monthly=2)
    spend(world.agency, "0.01")
    remote.add_fault(Fault("status", status=400))
    with pytest.raises(AIError) as caught:
        gateway.generate_sync(long_ask(world, 1, max_tokens=800))
    assert not caught.value.message.startswith("AI credit used up")
    # $0.0083 of bound: with the failed call's hold still counted, this one would not fit.
    assert gateway.generate_sync(long_ask(world, 2, max_tokens=800)).text
