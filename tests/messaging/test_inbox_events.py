"""Inbox pushes go through the event bus: a conversation change is published once, and both the
inbox websocket and the agency's SSE stream receive that one event; a rolled-back change sends
nothing."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from apps.core.models import OutboxEvent
from apps.messaging import consumers, services
from tests.events.test_api import _frames, _read_stream, _token
from tests.messaging.test_inbox_consumer import _next, _open, _world_with_conversations

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _events_only(monkeypatch, settings):
    monkeypatch.setattr(consumers, "POLL_SECONDS", 3600)  # frames come from the bus alone
    settings.EVENTS_SSE_MAX_SECONDS = 2.0
    settings.EVENTS_SSE_POLL_SECONDS = 0.05


async def test_one_event_reaches_the_inbox_socket_and_the_sse_stream():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Bus inbox")
    token = await sync_to_async(_token)(world.owner)
    owner = await _open(world.owner)
    reading = asyncio.ensure_future(_read_stream(token))
    await asyncio.sleep(0.5)
    await sync_to_async(services.message_receive)(fan=mine.fan, text="<b>still there?</b>")
    assert await _next(owner, "changed") == {"type": "changed", "conversations": [mine.pk]}
    status, body = await reading
    published = [event async for event in OutboxEvent.objects.filter(kind="inbox.changed")]
    assert len(published) == 1 and published[0].groups == [f"inbox.agency.{world.agency.pk}"]
    streamed = [frame for frame in _frames(body) if frame["event"] == "inbox.changed"]
    assert status == 200 and [int(frame["id"]) for frame in streamed] == [published[0].pk]
    assert json.loads(streamed[0]["data"]) == {
        "creator_id": mine.creator_id, "conversation_id": mine.pk, "fan_id": None, "received": 1
    }  # fmt: skip
    assert "still there" not in body  # ids only: the fan's words stay behind the API's checks
    await owner.disconnect()


async def test_a_chatters_stream_leaves_out_conversations_of_creators_they_are_not_assigned_to():
    world, mine, other = await sync_to_async(_world_with_conversations)("Bus chatter")
    token = await sync_to_async(_token)(world.chatter)
    reading = asyncio.ensure_future(_read_stream(token))
    await asyncio.sleep(0.5)
    await sync_to_async(services.message_receive)(fan=other.fan, text="to the other creator")
    await sync_to_async(services.message_receive)(fan=mine.fan, text="to mine")
    status, body = await reading
    streamed = [json.loads(frame["data"]) for frame in _frames(body) if frame["event"] == "inbox.changed"]
    assert status == 200 and [event["conversation_id"] for event in streamed] == [mine.pk]


async def test_a_rolled_back_change_publishes_nothing():
    world, mine, _ = await sync_to_async(_world_with_conversations)("Rolled back")
    owner = await _open(world.owner)

    def receive_then_fail() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.message_receive(fan=mine.fan, text="never stored")
            raise RuntimeError("the import failed after the message")

    await sync_to_async(receive_then_fail)()
    assert await owner.receive_nothing(timeout=0.8)
    assert not await OutboxEvent.objects.filter(kind="inbox.changed").aexists()
    await owner.disconnect()
