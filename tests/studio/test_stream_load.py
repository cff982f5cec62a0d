"""The studio websocket under load: a client that stops reading is disconnected after a bounded
buffer, and a burst of starts is admitted a few at a time."""

from __future__ import annotations

import asyncio
import json
from functools import partial

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.ai.registry import registry
from apps.studio import consumers
from apps.studio.consumers import CLOSE_TOO_SLOW, MAX_PENDING_BYTES, StudioConsumer
from apps.studio.models import Generation
from huntaze.asgi import application
from tests.conftest import build_world, login_client


class _Transport:
    def __init__(self, buffered: int) -> None:
        self.dataBuffer = b"x" * buffered
        self._tempDataLen = 0


class _Protocol:
    def __init__(self, buffered: int) -> None:
        self.transport = _Transport(buffered)


async def _handle_reply(protocol, message, sent):
    sent.append(message)


async def test_send_refuses_once_the_client_buffer_is_over_the_bound():
    """daphne hands the consumer ``partial(server.handle_reply, protocol)``; the protocol's
    transport shows what the client has not read yet."""
    consumer = StudioConsumer()
    sent: list = []
    consumer.base_send = partial(_handle_reply, _Protocol(1000), sent=sent)
    await consumer.send(text_data="fine")
    assert sent == [{"type": "websocket.send", "text": "fine"}]
    consumer.base_send = partial(_handle_reply, _Protocol(MAX_PENDING_BYTES + 1), sent=sent)
    with pytest.raises(consumers._ClientTooSlow):
        await consumer.send(text_data="too much")
    assert len(sent) == 1
    consumer.base_send = lambda message: None  # another server (or the test communicator): no bound known
    assert consumer._pending_bytes() is None


@pytest.fixture
def slow_provider(settings, fake_llm):
    fake_llm.reset()
    fake_llm.reply_text = '{"variations": [{"text": "' + "many words " * 300 + '"}]}'
    fake_llm.chunk_delay = 0.002
    settings.OPENAI_API_KEY = "sk-test-slow-0123456789"
    settings.OPENAI_BASE_URL = fake_llm.openai_base_url
    settings.OPENAI_MODELS = ["gpt-4o-mini"]
    registry.reset()
    yield fake_llm
    fake_llm.reset()


async def _socket(world):
    client = await sync_to_async(login_client)(world.manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
    )
    assert (await communicator.connect(timeout=5))[0]
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_stops_reading_is_disconnected_and_its_generation_cancelled(slow_provider, monkeypatch):
    """The client reads nothing: what waits for it grows with every frame, and once past the bound
    the socket closes with 4408 and the upstream call stops, instead of the buffer growing."""
    backlog = {"bytes": 0}

    def pending(self):
        return backlog["bytes"]

    original_send = StudioConsumer.send

    async def counting_send(self, text_data=None, bytes_data=None, close=False):
        await original_send(self, text_data=text_data, bytes_data=bytes_data, close=close)
        backlog["bytes"] += 200_000  # nothing is read: every frame stays in the buffer

    monkeypatch.setattr(StudioConsumer, "_pending_bytes", pending)
    monkeypatch.setattr(StudioConsumer, "send", counting_send)
    world = await sync_to_async(build_world)("Slow reader")
    communicator = await _socket(world)
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "message", "creator_id": world.creator.pk})
    )
    frames = 0
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            break
        frames += 1
    assert output["code"] == CLOSE_TOO_SLOW
    assert frames <= MAX_PENDING_BYTES // 200_000 + 1  # bounded: a handful of frames, not the whole answer
    generation = await Generation.objects.aget()
    for _ in range(50):  # the cancellation is written from the consumer's task
        if generation.status != "running":
            break
        await asyncio.sleep(0.05)
        await generation.arefresh_from_db()
    assert generation.status == "cancelled"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_starts_runs_a_few_at_a_time(slow_provider, monkeypatch):
    """Eight sockets start at once; no more than STARTS_AT_ONCE are in their set-up hop together,
    and every one of them still gets its answer."""
    slow_provider.reply_text = '{"variations": [{"text": "short answer"}]}'
    inside = {"now": 0, "most": 0}
    original = StudioConsumer.__dict__["_authorise_and_prepare"]  # the thread-hop descriptor itself

    async def watched(self, creator_id, data):
        inside["now"] += 1
        inside["most"] = max(inside["most"], inside["now"])
        try:
            await asyncio.sleep(0.02)
            return await original.__get__(self, StudioConsumer)(creator_id, data)
        finally:
            inside["now"] -= 1

    monkeypatch.setattr(StudioConsumer, "_authorise_and_prepare", watched)
    world = await sync_to_async(build_world)("Burst")
    sockets = [await _socket(world) for _ in range(8)]
    message = json.dumps({"action": "generate", "type": "message", "creator_id": world.creator.pk})
    await asyncio.gather(*(s.send_to(text_data=message) for s in sockets))

    async def result(communicator):
        while "Save to library" not in (frame := await communicator.receive_from(timeout=15)):
            assert 'role="alert"' not in frame, frame
        return frame

    await asyncio.gather(*(result(s) for s in sockets))
    assert inside["most"] == consumers.STARTS_AT_ONCE
    assert await Generation.objects.filter(status="done").acount() == 8
    for communicator in sockets:
        await communicator.disconnect()
