"""The studio websocket under load: a client that stops reading is disconnected after a bounded
buffer (under a real daphne, with a client that really stops reading), and a burst of starts is
admitted a few at a time. A provider that stalls mid-stream ends its own stream alone:
tests/ai/test_hot_path.py."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from functools import partial

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.ai.registry import registry
from apps.studio import consumers
from apps.studio.consumers import MAX_PENDING_BYTES, StudioConsumer
from apps.studio.models import Generation
from huntaze.asgi import application
from tests.conftest import build_world, login_client
from tests.processes import daphne_args, free_port, running, wait_for_http


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

    def middleware(send):  # as apps/monitoring/asgi.py wraps daphne's send
        async def send_recorded(message):
            await send(message)

        return send_recorded

    consumer.base_send = middleware(partial(_handle_reply, _Protocol(MAX_PENDING_BYTES + 1), sent=sent))
    with pytest.raises(consumers._ClientTooSlow):
        await consumer.send(text_data="still too much")
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


def _handshake(port: int, cookie: str) -> socket.socket:
    """A browser-like websocket handshake on a raw socket that will stop reading. Its receive
    buffer and segment size are small, so the kernel holds little of what the server sends (on
    loopback, with 64 KB segments, it would hold megabytes): the rest piles up in daphne."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: they shape the connection
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/studio/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing after the handshake is read
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _text_frame(text: str) -> bytes:
    """A client's (masked) text frame."""
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.django_db(transaction=True)
def test_under_daphne_a_client_that_stops_reading_is_dropped_and_its_generation_cancelled(slow_provider):
    """A real daphne and a client that reads nothing after its generate message: the frames wait
    in daphne's send buffer; once past MAX_PENDING_BYTES the socket is closed and the generation
    cancelled long before the answer ends (the finished answer's moderation call never comes)."""
    answer = "sunny words " * 500_000  # 6 MB of text: several times the bound
    slow_provider.configure(reply_text='{"variations": [{"text": "' + answer + '"}]}', chunk_size=4000, chunk_delay=0)
    world = build_world("Stops reading")
    cookie = login_client(world.manager).cookies["sessionid"].value
    port = free_port()
    env = {"OPENAI_API_KEY": "sk-test-slow-0123456789", "OPENAI_BASE_URL": slow_provider.openai_base_url,
           "OPENAI_MODELS": "gpt-4o-mini", "ANTHROPIC_API_KEY": "", "AZURE_OPENAI_API_KEY": "",
           "OPENAI_COMPATIBLE_BASE_URL": ""}  # fmt: skip
    with running(daphne_args(port), env=env) as daphne:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/health", timeout=120)  # slow to start on a loaded machine
        sock = _handshake(port, cookie)
        try:
            message = {"action": "generate", "type": "message", "creator_id": world.creator.pk}
            sock.sendall(_text_frame(json.dumps(message)))
            deadline = time.monotonic() + 120
            generation = None
            while time.monotonic() < deadline and (generation is None or generation.status == "running"):
                time.sleep(0.2)
                generation = Generation.objects.filter(creator=world.creator).first()
            time.sleep(1)  # anything still on its way would land now
        finally:
            sock.close()
    generation.refresh_from_db()
    assert generation.status == "cancelled", daphne.output[-2000:]
    assert 0 < len(generation.text) < len(answer) // 2  # the text streamed so far is kept, not the whole answer
    assert slow_provider.count("moderation") == 0  # the answer never finished


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
