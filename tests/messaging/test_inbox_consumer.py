"""The inbox websocket: who may connect, live changes (events and the database poll), the soft
lock, drafts streamed into cards, and permissions re-checked on every action."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from apps.accounts.models import CreatorAssignment, Membership, Role
from apps.messaging import consumers, services
from apps.messaging.models import Conversation, Draft, Message, MessageStatus
from huntaze.asgi import application
from tests.accounts.factories import UserFactory
from tests.conftest import build_world, login_client
from tests.messaging.factories import ConversationFactory, FanFactory, MessageFactory

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _slow_poll(monkeypatch):
    """Events only, unless a test turns the poll on: frames stay predictable."""
    monkeypatch.setattr(consumers, "POLL_SECONDS", 3600)


async def _cookie(user_or_membership) -> bytes:
    def make() -> bytes:
        if isinstance(user_or_membership, Membership):
            client = login_client(user_or_membership)
        else:
            from django.test import Client

            client = Client()
            client.force_login(user_or_membership, backend="django.contrib.auth.backends.ModelBackend")
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    return await sync_to_async(make)()


async def _socket(who=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = [ORIGIN]
    if who is not None:
        headers.append((b"cookie", await _cookie(who)))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def _open(membership) -> WebsocketCommunicator:
    communicator, connected, _ = await _socket(membership)
    assert connected
    return communicator


async def _send(communicator, **message) -> None:
    await communicator.send_to(text_data=json.dumps(message))


async def _next(communicator, kind: str, timeout: float = 5) -> dict:
    """The next frame of this type (frames of other types are skipped)."""
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame["type"] == kind:
            return frame


async def _expect_closed_4403(communicator) -> None:
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output["code"] == 4403
            return


def _world_with_conversations(name: str):
    world = build_world(name)
    mine = ConversationFactory(fan=FanFactory(creator=world.creator, display_name="Assigned Fan"))
    other = ConversationFactory(fan=FanFactory(creator=world.other_creator, display_name="Unassigned Fan"))
    return world, mine, other


# --- Connect ------------------------------------------------------------------------------------


async def test_anonymous_and_users_without_an_agency_are_refused():
    _communicator, connected, code = await _socket(None)
    assert not connected and code == 4403
    loner = await sync_to_async(UserFactory)()
    _communicator, connected, code = await _socket(loner)
    assert not connected and code == 4403


async def test_ending_the_session_closes_the_inbox_socket():
    from apps.accounts import sessions
    from apps.accounts.models import UserSession

    world = await sync_to_async(build_world)("Session ended")
    client = await sync_to_async(login_client)(world.chatter)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=[ORIGIN, (b"cookie", cookie)])
    assert (await communicator.connect(timeout=5))[0]
    row = await UserSession.objects.aget(session_key=client.session.session_key)
    await sync_to_async(sessions.user_session_end)(user=world.chatter.user, user_session=row)
    await _expect_closed_4403(communicator)


async def test_members_of_every_role_may_listen():
    world = await sync_to_async(build_world)("Listeners")
    for role in ("owner", "manager", "chatter", "viewer"):
        communicator = await _open(world.member(role))
        await communicator.disconnect()


# --- Live changes -------------------------------------------------------------------------------


async def test_a_new_fan_message_reaches_the_members_who_may_see_it():
    world, mine, other = await sync_to_async(_world_with_conversations)("Live")
    chatter = await _open(world.chatter)
    owner = await _open(world.owner)
    await sync_to_async(services.message_receive)(fan=mine.fan, text="are you there?")
    assert await _next(chatter, "changed") == {"type": "changed", "conversations": [mine.pk]}
    assert await _next(owner, "changed") == {"type": "changed", "conversations": [mine.pk]}
    # The chatter is not assigned the other creator: the owner hears of it, the chatter does not.
    await sync_to_async(services.message_receive)(fan=other.fan, text="hello?")
    assert await _next(owner, "changed") == {"type": "changed", "conversations": [other.pk]}
    assert await chatter.receive_nothing(timeout=0.6)
    await chatter.disconnect()
    await owner.disconnect()


async def test_a_burst_of_changes_is_one_frame():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Burst")
    owner = await _open(world.owner)
    for number in range(5):
        await sync_to_async(services.message_receive)(fan=mine.fan, text=f"msg {number}")
    assert await _next(owner, "changed") == {"type": "changed", "conversations": [mine.pk]}
    assert await owner.receive_nothing(timeout=0.6)
    await owner.disconnect()


async def test_another_agencys_changes_never_reach_the_socket():
    world, _, _ = await sync_to_async(_world_with_conversations)("Quiet")
    _rival, rival_conversation, _ = await sync_to_async(_world_with_conversations)("Noisy")
    owner = await _open(world.owner)
    await sync_to_async(services.message_receive)(fan=rival_conversation.fan, text="secret")
    assert await owner.receive_nothing(timeout=0.8)
    await owner.disconnect()


async def test_the_poll_sees_changes_made_by_another_process(monkeypatch):
    """A worker's writes never reach the embedded default's in-memory layer: the poll finds them."""
    monkeypatch.setattr(consumers, "POLL_SECONDS", 0.2)
    world, mine, other = await sync_to_async(_world_with_conversations)("Poll")
    outbound = await sync_to_async(MessageFactory)(
        conversation=mine, direction="out", source="human", status=MessageStatus.QUEUED, text="on its way"
    )
    chatter = await _open(world.chatter)
    await _send(chatter, action="watch", conversation_id=mine.pk)
    await _next(chatter, "watching")
    assert await chatter.receive_nothing(timeout=0.7)  # the first polls only take a baseline
    # As the worker does: rows written without an event on this process's layer.
    await Message.objects.filter(pk=outbound.pk).aupdate(status=MessageStatus.SENT)
    assert await _next(chatter, "changed") == {"type": "changed", "conversations": [mine.pk]}
    await Conversation.objects.filter(pk=other.pk).aupdate(last_message_at=timezone.now())
    assert await chatter.receive_nothing(timeout=0.7)  # not the chatter's creator
    await Conversation.objects.filter(pk=mine.pk).aupdate(last_message_at=timezone.now() + timedelta(seconds=1))
    assert await _next(chatter, "changed") == {"type": "changed", "conversations": [mine.pk]}
    await chatter.disconnect()


async def test_a_change_right_after_watching_is_not_taken_for_the_baseline(monkeypatch):
    """A chatter who sends within one poll of opening the conversation, and whose message the
    worker delivers before that poll, still sees it turn sent: the baseline is the state when
    watching began, not whatever the first poll finds."""
    monkeypatch.setattr(consumers, "POLL_SECONDS", 0.5)
    world, mine, _ = await sync_to_async(_world_with_conversations)("Quick")
    outbound = await sync_to_async(MessageFactory)(
        conversation=mine, direction="out", source="human", status=MessageStatus.QUEUED, text="on its way"
    )
    chatter = await _open(world.chatter)
    await _send(chatter, action="watch", conversation_id=mine.pk)
    await _next(chatter, "watching")
    await Message.objects.filter(pk=outbound.pk).aupdate(status=MessageStatus.SENT)  # before any poll
    assert await _next(chatter, "changed") == {"type": "changed", "conversations": [mine.pk]}
    await chatter.disconnect()


# --- The soft lock --------------------------------------------------------------------------------


async def test_lock_unlock_and_who_holds_it():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Locks")
    world.chatter.user.full_name = "Anna Berg"
    await world.chatter.user.asave()
    chatter = await _open(world.chatter)
    manager = await _open(world.manager)
    await _send(chatter, action="lock", conversation_id=mine.pk)
    assert await _next(chatter, "lock") == {"type": "lock", "conversation_id": mine.pk, "taken": True, "holder": ""}
    conversation = await Conversation.objects.aget(pk=mine.pk)
    assert conversation.locked_by_id == world.chatter.user_id
    await _send(manager, action="lock", conversation_id=mine.pk)
    assert await _next(manager, "lock") == {
        "type": "lock",
        "conversation_id": mine.pk,
        "taken": False,
        "holder": "Anna",
    }
    await _send(chatter, action="unlock", conversation_id=mine.pk)
    await _next(chatter, "unlock")
    conversation = await Conversation.objects.aget(pk=mine.pk)
    assert conversation.locked_by_id is None
    await _send(manager, action="lock", conversation_id=str(mine.pk))
    assert (await _next(manager, "lock"))["taken"] is True
    await chatter.disconnect()
    await manager.disconnect()


async def test_closing_the_page_releases_the_lock_of_the_watched_conversation():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Release")
    chatter = await _open(world.chatter)
    await _send(chatter, action="watch", conversation_id=mine.pk)
    await _next(chatter, "watching")
    await _send(chatter, action="lock", conversation_id=mine.pk)
    await _next(chatter, "lock")
    await chatter.disconnect()
    conversation = await Conversation.objects.aget(pk=mine.pk)
    assert conversation.locked_by_id is None


@pytest.mark.parametrize("conversation_id", ["unassigned", "rival", 0, -1, "abc", None, True, 2**70, [1]])
async def test_a_conversation_the_member_may_not_see_is_no_such_conversation(conversation_id):
    world, _, unassigned = await sync_to_async(_world_with_conversations)("Scope")
    _, rival, _ = await sync_to_async(_world_with_conversations)("Elsewhere")
    named = {"unassigned": unassigned.pk, "rival": rival.pk}
    target = named.get(conversation_id, conversation_id) if isinstance(conversation_id, str) else conversation_id
    chatter = await _open(world.chatter)
    for action in ("watch", "lock", "drafts"):
        await _send(chatter, action=action, conversation_id=target)
        assert await _next(chatter, "error") == {"type": "error", "message": "No such conversation."}
    assert not await Conversation.objects.filter(locked_by__isnull=False).aexists()
    await chatter.disconnect()


async def test_unreadable_requests_are_answered_not_fatal():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Garbage")
    owner = await _open(world.owner)
    await owner.send_to(text_data="[1, 2]")
    assert (await _next(owner, "error"))["message"] == "That request could not be read."
    await _send(owner, action="explode")
    assert (await _next(owner, "error"))["message"] == "That request could not be read."
    await _send(owner, action="lock", conversation_id=mine.pk)
    assert (await _next(owner, "lock"))["taken"] is True
    await owner.disconnect()


# --- Permissions on every action --------------------------------------------------------------------


@pytest.mark.parametrize("change", ["removed", "deactivated", "demoted"])
async def test_a_member_who_lost_access_is_closed_on_the_next_action(change):
    world, mine, _ = await sync_to_async(_world_with_conversations)(f"Lost {change}")
    chatter = await _open(world.chatter)
    await _send(chatter, action="lock", conversation_id=mine.pk)
    await _next(chatter, "lock")
    if change == "removed":
        await Membership.objects.filter(pk=world.chatter.pk).adelete()
    elif change == "deactivated":
        world.chatter.user.is_active = False
        await world.chatter.user.asave()
    else:
        await Membership.objects.filter(pk=world.chatter.pk).aupdate(role=Role.VIEWER)
    await _send(chatter, action="lock", conversation_id=mine.pk)
    await _expect_closed_4403(chatter)


async def test_a_viewer_may_watch_but_not_lock():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Viewer")
    viewer = await _open(world.viewer)
    await _send(viewer, action="watch", conversation_id=mine.pk)
    assert (await _next(viewer, "watching"))["conversation_id"] == mine.pk
    await _send(viewer, action="lock", conversation_id=mine.pk)
    await _expect_closed_4403(viewer)
    assert not await Conversation.objects.filter(locked_by__isnull=False).aexists()


async def test_a_chatter_unassigned_mid_session_loses_the_conversation():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Unassigned")
    chatter = await _open(world.chatter)
    await CreatorAssignment.objects.filter(membership=world.chatter).adelete()
    await _send(chatter, action="lock", conversation_id=mine.pk)
    assert await _next(chatter, "error") == {"type": "error", "message": "No such conversation."}
    await sync_to_async(services.message_receive)(fan=mine.fan, text="hi")
    assert await chatter.receive_nothing(timeout=0.6)
    await chatter.disconnect()


async def test_a_removed_member_hears_nothing_more_and_is_closed():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Removed listener")
    owner = await _open(world.owner)
    await Membership.objects.filter(pk=world.owner.pk).adelete()
    await sync_to_async(services.message_receive)(fan=mine.fan, text="hi")
    frame = await owner.receive_json_from(timeout=5)
    assert frame["type"] == "error"
    await _expect_closed_4403(owner)


# --- Drafts ---------------------------------------------------------------------------------------


@dataclass
class FakeEvent:
    type: str
    index: int = 0
    text: str = ""
    draft: object = None
    message: str = ""


@pytest.fixture
def fake_drafts(monkeypatch):
    """A stand-in for apps/messaging/drafts.py's stream: what the consumer relays, not how drafts
    are written (tests/messaging/test_drafts*.py test that)."""
    calls = []

    async def drafts_stream(*, membership, conversation_id, kind="reply", count=3):
        calls.append({"membership": membership.pk, "conversation_id": conversation_id, "kind": kind, "count": count})
        conversation = await Conversation.objects.select_related("creator").aget(pk=conversation_id)
        for index in range(count):
            yield FakeEvent("chunk", index, text="<script>alert(1)</script>")
            yield FakeEvent("chunk", index, text=f" draft {index}")
        for index in range(count - 1):
            draft = await Draft.objects.acreate(
                agency_id=conversation.agency_id,
                creator_id=conversation.creator_id,
                conversation=conversation,
                kind=kind,
                text=f"<b>draft</b> {index}",
                score=70 + index,
                factors={"uses name": 20, "tone match": 15},
                suggestions=["Ask about <i>the weekend</i>"],
                suggested_price="12.00" if kind == "upsell" else None,
                price_reason="Bought three sets at 10-15" if kind == "upsell" else "",
            )
            yield FakeEvent("draft", index, text=draft.text, draft=draft)
        yield FakeEvent("error", count - 1, message="The AI provider timed out for this draft.")
        yield FakeEvent("done")

    from apps.messaging import drafts  # the real module stays importable (the API imports it)

    monkeypatch.setattr(drafts, "drafts_stream", drafts_stream)
    return calls


async def _collect_drafts(communicator) -> list[dict]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=10)
        frames.append(frame)
        if frame["type"] == "drafts.done":
            return frames


async def test_drafts_stream_escaped_then_become_cards_with_score_factors_and_price(fake_drafts):
    world, mine, _ = await sync_to_async(_world_with_conversations)("Drafts")
    world.creator.currency = "EUR"
    await sync_to_async(world.creator.save)(update_fields=["currency"])
    chatter = await _open(world.chatter)
    await _send(chatter, action="drafts", conversation_id=mine.pk, kind="upsell")
    frames = await _collect_drafts(chatter)
    assert fake_drafts == [{"membership": world.chatter.pk, "conversation_id": mine.pk, "kind": "upsell", "count": 3}]
    assert frames[0] == {"type": "drafts.start", "kind": "upsell", "count": 3}
    streamed = "".join(f["html"] for f in frames if f["type"] == "draft.chunk" and f["index"] == 0)
    assert streamed == "&lt;script&gt;alert(1)&lt;/script&gt; draft 0"
    cards = [f for f in frames if f["type"] == "draft"]
    assert [card["index"] for card in cards] == [0, 1]
    card = cards[1]["html"]
    assert "&lt;b&gt;draft&lt;/b&gt; 1" in card and "<b>" not in card
    assert "Personalization 71/100" in card
    assert "Uses name" in card and "Tone match" in card
    assert "Ask about &lt;i&gt;the weekend&lt;/i&gt;" in card
    assert "Suggested price: 12.00 EUR" in card and "Bought three sets at 10-15" in card
    assert "data-use-draft=" in card
    errors = [f for f in frames if f["type"] == "draft.error"]
    assert errors == [{"type": "draft.error", "index": 2, "message": "The AI provider timed out for this draft."}]
    # Nothing was sent: drafts wait for a member's Send.
    assert not await Message.objects.filter(direction="out").aexists()
    await chatter.disconnect()


async def test_drafts_need_the_right_to_send_and_a_known_kind(fake_drafts):
    world, mine, _ = await sync_to_async(_world_with_conversations)("Drafts rights")
    owner = await _open(world.owner)
    await _send(owner, action="drafts", conversation_id=mine.pk, kind="poem")
    assert (await _next(owner, "error"))["message"] == "Drafts are replies or upsells."
    await owner.disconnect()
    viewer = await _open(world.viewer)
    await _send(viewer, action="drafts", conversation_id=mine.pk)
    await _expect_closed_4403(viewer)
    assert fake_drafts == []


async def test_a_failing_drafts_stream_ends_with_an_error_not_silence(monkeypatch):
    async def drafts_stream(**kwargs):
        yield FakeEvent("chunk", 0, text="Hel")
        raise RuntimeError("provider exploded")

    from apps.messaging import drafts

    monkeypatch.setattr(drafts, "drafts_stream", drafts_stream)
    world, mine, _ = await sync_to_async(_world_with_conversations)("Drafts fail")
    owner = await _open(world.owner)
    await _send(owner, action="drafts", conversation_id=mine.pk)
    frames = await _collect_drafts(owner)
    assert {"type": "draft.error", "index": None, "message": "Drafts could not be written."} in frames
    assert "provider exploded" not in json.dumps(frames)
    await owner.disconnect()


# --- Drafts with the real writer (apps/messaging/drafts.py, the built-in offline provider) ---------


@pytest.fixture
def builtin_ai(settings):
    from apps.ai.ledger import ledger
    from apps.ai.registry import registry

    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_COMPATIBLE_BASE_URL"):
        setattr(settings, key, "")
    settings.DEFAULT_AI_PROVIDER = ""
    registry.reset()
    ledger.discard()
    yield
    ledger.discard()
    registry.reset()


@pytest.mark.parametrize("kind", ["reply", "upsell"])
async def test_real_drafts_stream_into_three_scored_cards(builtin_ai, kind):
    world, mine, _ = await sync_to_async(_world_with_conversations)(f"Real drafts {kind}")
    await sync_to_async(services.message_receive)(fan=mine.fan, text="missed you! what are you up to?")
    chatter = await _open(world.chatter)
    await _send(chatter, action="drafts", conversation_id=mine.pk, kind=kind)
    frames = await _collect_drafts(chatter)
    assert any(f["type"] == "draft.chunk" for f in frames)
    cards = [f for f in frames if f["type"] == "draft"]
    assert sorted(card["index"] for card in cards) == [0, 1, 2]
    for card in cards:
        assert "Personalization" in card["html"] and "/100" in card["html"] and "data-use-draft" in card["html"]
    drafts = [d async for d in Draft.objects.filter(conversation=mine, status="pending")]
    assert len(drafts) == 3 and {d.kind for d in drafts} == {kind}
    if kind == "upsell":
        assert all("Suggested price" in card["html"] for card in cards)
    assert not await Message.objects.filter(direction="out").aexists()
    await chatter.disconnect()
