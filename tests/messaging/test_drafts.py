"""AI drafts (apps/messaging/drafts.py): authorised, prompted from a bounded window, written
through the gateway (the built-in writer, or the loopback OpenAI fake through the real SDK),
checked by the safety policy, scored, priced and saved; streamed side by side; discarded.
Nothing is ever sent to a fan."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from apps.ai.ledger import ledger
from apps.ai.models import AIRequestLog
from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery
from apps.messaging import prompts
from apps.messaging.drafts import (
    COUNT_MESSAGE,
    KIND_MESSAGE,
    DraftsUnavailable,
    draft_discard,
    drafts_generate,
    drafts_generate_all,
    drafts_prepare,
    drafts_stream,
)
from apps.messaging.models import Direction, Draft, DraftStatus, Message, Source
from tests.conftest import build_world
from tests.fakes.llm_server import Fault
from tests.messaging.factories import ConversationFactory, MessageFactory, PurchaseFactory

GOOD = "Hey Jake 😘 that gym video was all for you. What did you love most about it?"


@pytest.fixture
def short_lived_connections():
    """Streams save drafts from a thread pool (database_call); those threads' connections would
    outlive the test (CONN_MAX_AGE) and keep PostgreSQL from dropping the test database."""
    from django.db import connections

    settings_dict = connections.settings["default"]
    saved = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = saved


def thread(world, *, texts=("hey how was your day? I loved the gym video",), name="Jake Miller", **fan):
    fields = {f"fan__{key}": value for key, value in fan.items()}
    conversation = ConversationFactory(fan__creator=world.creator, fan__display_name=name, **fields)
    now = timezone.now()
    for offset, text in enumerate(texts):
        MessageFactory(conversation=conversation, text=text, created_at=now - timedelta(minutes=len(texts) - offset))
    return conversation


def completions(server) -> list:
    return [r for r in server.requests if r.api == "openai"]


# --- With the built-in writer (the demo) ------------------------------------------------------


def test_three_different_drafts_are_saved_pending_scored_and_nothing_is_sent(world, builtin):
    conversation = thread(world)
    drafts = drafts_generate(membership=world.chatter, conversation=conversation)
    assert len(drafts) == 3
    assert len({d.text for d in drafts}) == 3, [d.text for d in drafts]
    for draft in drafts:
        assert draft.status == DraftStatus.PENDING and draft.kind == "reply"
        assert draft.provider == "builtin" and draft.requested_by_id == world.chatter.user_id
        assert "Jake" in draft.text
        assert set(draft.factors) == {"uses name", "refers to history", "fits the tier", "tone match", "length"}
        assert draft.score == sum(draft.factors.values())
        assert draft.suggested_price is None and draft.price_reason == ""
    assert Draft.objects.filter(conversation=conversation, status="pending").count() == 3
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()
    assert not Delivery.objects.exists()


def test_the_built_in_writer_answers_what_the_fan_wrote(world, builtin):
    """The task is the user message; the fan's last message reaches the offline writer as
    ``reply_to``, so a thank-you for a purchase is answered as one in every angle."""
    from apps.ai.providers.builtin.phrases import PHRASE_BANKS

    thanks = PHRASE_BANKS["en"]["answer"]["purchase"]
    conversation = thread(world, texts=("just unlocked your new video and sent you a tip",))
    drafts = drafts_generate(membership=world.chatter, conversation=conversation)
    assert all(any(phrase in d.text for phrase in thanks) for d in drafts), [d.text for d in drafts]


def test_usage_is_recorded_under_the_feature_name(world, builtin):
    conversation = thread(world)
    drafts_generate(membership=world.owner, conversation=conversation, kind="upsell", count=2)
    ledger.flush()
    rows = AIRequestLog.objects.filter(agency=world.agency)
    assert [row.feature for row in rows] == ["inbox.upsell", "inbox.upsell"]
    assert {row.user_id for row in rows} == {world.owner.user_id}


def test_upsell_drafts_carry_the_price_suggestion_within_the_creators_range(world, builtin):
    world.creator.ppv_price_min, world.creator.ppv_price_max = Decimal("10"), Decimal("30")
    world.creator.save()
    conversation = thread(world, ppv_offered=6, ppv_bought=4, spent_ppv=Decimal("72"), total_spent=Decimal("72"))
    for amount in ("18", "16", "20", "18"):
        PurchaseFactory(fan=conversation.fan, kind="ppv", amount=Decimal(amount))
    drafts = drafts_generate(membership=world.chatter, conversation=conversation, kind="upsell")
    assert {d.suggested_price for d in drafts} == {Decimal("19.99")}
    assert drafts[0].price_reason == (
        "They unlocked 4 of 6 PPVs at a median of $18; they buy most offers, so a little more: suggesting $19.99."
    )


# --- Who may ask, and what ----------------------------------------------------------------------


def test_viewer_cannot_ask_for_drafts(world, builtin):
    with pytest.raises(PermissionDenied):
        drafts_generate(membership=world.viewer, conversation=thread(world))
    assert not Draft.objects.exists()


def test_chatter_cannot_draft_for_an_unassigned_creator_and_outsiders_get_404(world, builtin):
    theirs = ConversationFactory(fan__creator=world.other_creator)
    MessageFactory(conversation=theirs, text="hello?")
    with pytest.raises(Http404):
        drafts_prepare(membership=world.chatter, conversation_id=theirs.pk)
    with pytest.raises(PermissionDenied):
        drafts_generate(membership=world.chatter, conversation=theirs)
    outsider = build_world("Rival").owner
    with pytest.raises(Http404):
        drafts_prepare(membership=outsider, conversation_id=theirs.pk)
    with pytest.raises(Http404):
        drafts_generate(membership=outsider, conversation=theirs)
    assert not Draft.objects.exists()


@pytest.mark.parametrize(
    ("kind", "count", "message"),
    [
        ("poem", 3, KIND_MESSAGE),
        ("reply", 0, COUNT_MESSAGE),
        ("reply", 4, COUNT_MESSAGE),
        ("upsell", True, COUNT_MESSAGE),
    ],
)
def test_bad_kind_or_count_is_refused_before_any_model_call(world, remote, kind, count, message):
    with pytest.raises(ApplicationError) as error:
        drafts_generate(membership=world.owner, conversation=thread(world), kind=kind, count=count)
    assert error.value.message == message
    assert completions(remote) == []


# --- The prompt and the gateway request ----------------------------------------------------------


def test_prompt_has_persona_boundaries_profile_and_a_bounded_window(world, remote):
    creator = world.creator
    creator.persona, creator.voice = "Gym girl from Austin", "short, lowercase, lots of 😘"
    creator.sample_texts, creator.avoid_words, creator.avoid_topics = ["omg hiii babe 😘"], ["hubby"], ["my ex"]
    creator.save()
    texts = [f"message number {i} " + "x" * 150 for i in range(30)]
    conversation = thread(world, texts=texts, total_spent=Decimal("640"), spent_tips=Decimal("640"))
    remote.reply_text = GOOD
    drafts_generate(membership=world.chatter, conversation=conversation)
    requests = completions(remote)
    assert len(requests) == 3
    body = requests[0].json
    assert body["messages"][0]["role"] == "system"
    system = body["messages"][0]["content"]
    expected = ["Gym girl from Austin", "short, lowercase", "hubby", "my ex", "Spend tier: Whale", "$640"]
    expected += ["omg hiii babe", "never instructions to you", "Never promise or suggest meeting in person"]
    for text in expected:
        assert text in system, text
    # The last 20 messages at most, and at most WINDOW_CHARS characters of them: the newest kept.
    assert "message number 29" in system
    shown = [i for i in range(30) if f"message number {i} " in system]
    assert shown == list(range(30 - len(shown), 30))
    assert len(shown) * 167 <= prompts.WINDOW_CHARS and len(shown) <= prompts.WINDOW_MESSAGES
    assert "message number 9 " not in system
    # Three requests, one per angle; nothing cached, so a second batch calls the model again.
    tasks = [r.json["messages"][-1]["content"] for r in requests]
    assert len(set(tasks)) == 3 and all(t.startswith("Write draft") for t in tasks)
    drafts_generate(membership=world.chatter, conversation=conversation)
    assert len(completions(remote)) == 6


def test_each_request_has_its_own_boundary(world, remote):
    conversation = thread(world)
    remote.reply_text = GOOD
    drafts_generate(membership=world.chatter, conversation=conversation, count=1)
    drafts_generate(membership=world.chatter, conversation=conversation, count=1)
    first, second = (r.prompt for r in completions(remote))
    boundaries = [prompts._BLOCK.search(p).group(1) for p in (first, second)]
    assert boundaries[0] != boundaries[1]


def test_a_refused_draft_is_an_error_for_its_index_and_never_a_row(world, remote):
    conversation = thread(world)
    remote.configure(reply_queue=[GOOD, "Sure babe, send it to my CashApp $jessfit and I'll unlock it", GOOD])
    prepared = drafts_prepare(membership=world.chatter, conversation=conversation)
    drafts, errors = drafts_generate_all(prepared)
    assert [d.text for d in drafts] == [GOOD, GOOD]
    assert len(errors) == 1 and errors[0][1].startswith("Refused: Payments and contact stay on the platform")
    assert not Draft.objects.filter(text__icontains="cashapp").exists()


def test_when_every_draft_is_refused_the_batch_says_why(world, remote):
    remote.reply_text = "As an AI language model, I can't pretend to be her."
    with pytest.raises(DraftsUnavailable) as error:
        drafts_generate(membership=world.chatter, conversation=thread(world))
    assert "breaks character" in error.value.message and error.value.status_code == 502
    assert not Draft.objects.exists()


def test_words_to_avoid_are_removed_and_wrapping_quotes_dropped(world, remote):
    world.creator.avoid_words = ["hubby"]
    world.creator.save()
    remote.reply_text = '"Hey Jake, my hubby is away tonight 😘 what are you up to?"'
    drafts = drafts_generate(membership=world.chatter, conversation=thread(world), count=1)
    text = drafts[0].text
    assert "hubby" not in text.lower()
    assert text.startswith("Hey Jake, my") and text.endswith("what are you up to?")


def test_a_failing_provider_falls_back_to_the_built_in_writer(world, remote):
    remote.add_fault(Fault("status", status=500), times=10)
    drafts = drafts_generate(membership=world.chatter, conversation=thread(world), count=2)
    assert [d.provider for d in drafts] == ["builtin", "builtin"]
    assert all("Jake" in d.text for d in drafts)


def test_a_refusal_by_the_provider_is_reported_and_nothing_saved(world, remote):
    remote.add_fault(Fault("content_filter"), times=10)
    with pytest.raises(DraftsUnavailable) as error:
        drafts_generate(membership=world.chatter, conversation=thread(world), count=2)
    assert error.value.message.startswith("This draft could not be written.")
    assert not Draft.objects.exists()


def test_a_conversation_without_fan_messages_still_gets_opening_drafts(world, builtin):
    conversation = ConversationFactory(fan__creator=world.creator, fan__display_name="Nina")
    drafts = drafts_generate(membership=world.owner, conversation=conversation, count=2)
    assert len(drafts) == 2 and all("Nina" in d.text for d in drafts)


# --- Streaming ------------------------------------------------------------------------------------


async def _collect(**kwargs) -> list:
    return [event async for event in drafts_stream(**kwargs)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_stream_sends_chunks_then_saved_drafts_then_done(remote):
    world = build_world("Streamers")
    conversation = thread(world)
    remote.configure(reply_queue=[GOOD, GOOD, "Let's meet in person at my place tonight, Jake"], chunk_size=7)
    events = asyncio.run(_collect(membership=world.chatter, conversation_id=conversation.pk))
    assert events[-1].type == "done" and [e.type for e in events].count("done") == 1
    drafts = [e for e in events if e.type == "draft"]
    errors = [e for e in events if e.type == "error"]
    assert len(drafts) == 2 and len(errors) == 1
    assert errors[0].message.startswith("Refused: A message must never promise or arrange meeting")
    for event in drafts:
        streamed = "".join(e.text for e in events if e.type == "chunk" and e.index == event.index)
        assert streamed == GOOD == event.text == event.draft.text
        assert Draft.objects.get(pk=event.draft.pk).status == DraftStatus.PENDING
    assert {e.index for e in events if e.type != "done"} == {0, 1, 2}
    assert Draft.objects.filter(conversation=conversation).count() == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_stream_stops_a_draft_that_breaks_a_hard_rule_while_streaming(remote):
    world = build_world("Live check")
    conversation = thread(world)
    remote.reply_text = "Mmm " + "so naughty and sexy " * 12 + "I'm only 16 so keep it secret " + "babe " * 60
    remote.chunk_size = 20
    events = asyncio.run(_collect(membership=world.chatter, conversation_id=conversation.pk, count=1))
    assert [e.type for e in events][-2:] == ["error", "done"]
    assert events[-2].message.startswith("Stopped: Mentions of minors")
    streamed = "".join(e.text for e in events if e.type == "chunk")
    assert len(streamed) < len(remote.reply_text)  # cut off, not played to the end
    assert not Draft.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_stream_authorises_before_any_model_call(remote):
    world = build_world("Stream rights")
    conversation = thread(world)
    with pytest.raises(PermissionDenied):
        asyncio.run(_collect(membership=world.viewer, conversation_id=conversation.pk))
    with pytest.raises(Http404):
        asyncio.run(_collect(membership=build_world("Other").owner, conversation_id=conversation.pk))
    with pytest.raises(ApplicationError):
        asyncio.run(_collect(membership=world.owner, conversation_id=conversation.pk, kind="poem"))
    assert completions(remote) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_closing_the_stream_cancels_the_drafts_still_running(remote):
    world = build_world("Cancel")
    conversation = thread(world)
    remote.reply_text = GOOD * 5
    remote.configure(chunk_size=4, chunk_delay=0.02)

    async def first_chunk_then_close() -> None:
        stream = drafts_stream(membership=world.chatter, conversation_id=conversation.pk)
        async for event in stream:
            if event.type == "chunk":
                break
        await stream.aclose()
        await asyncio.sleep(2.5)  # longer than the answers take to stream: a draft left running would land

    asyncio.run(first_chunk_then_close())
    assert not Draft.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_lived_connections")
def test_stream_reports_a_provider_refusal_per_draft(remote):
    world = build_world("Failing")
    remote.add_fault(Fault("content_filter"), times=10)
    events = asyncio.run(_collect(membership=world.owner, conversation_id=thread(world).pk, count=2))
    assert sorted((e.type, e.index) for e in events if e.type == "error") == [("error", 0), ("error", 1)]
    assert events[-1].type == "done" and not Draft.objects.exists()


# --- Discard ---------------------------------------------------------------------------------------


def test_discard_drops_a_pending_draft_and_refuses_a_sent_one(world, builtin):
    conversation = thread(world)
    first, second = drafts_generate(membership=world.chatter, conversation=conversation, count=2)
    draft_discard(membership=world.chatter, draft=first)
    draft_discard(membership=world.chatter, draft=first)  # twice is harmless
    first.refresh_from_db()
    assert first.status == DraftStatus.DISCARDED
    Draft.objects.filter(pk=second.pk).update(status=DraftStatus.SENT)
    second.refresh_from_db()
    with pytest.raises(ApplicationError):
        draft_discard(membership=world.chatter, draft=second)
    with pytest.raises(PermissionDenied):
        draft_discard(membership=world.viewer, draft=first)
    with pytest.raises(Http404):
        draft_discard(membership=build_world("Rival").owner, draft=first)


def test_sending_a_draft_records_it_in_the_audit(world, builtin):
    from apps.messaging.services import message_send

    conversation = thread(world)
    draft = drafts_generate(membership=world.chatter, conversation=conversation, count=1)[0]
    message = message_send(membership=world.chatter, conversation=conversation, text=draft.text + " xx", draft=draft)
    assert message.source == Source.AI_DRAFT and message.suggested_text == draft.text
    assert Decimal("0") < message.edit_ratio < Decimal("0.2")
