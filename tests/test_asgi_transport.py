"""daphne's TCP connections send at once (huntaze/asgi.py ``_send_at_once``): a streamed chunk's
frame leaves in the same loop turn it was written in, and only what the kernel does not take is
buffered for Twisted's usual path. Real loopback sockets and a real Twisted reactor (not
installed, not run: nothing here needs the loop to turn, which is the point)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest
from twisted.internet import error, tcp
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

import huntaze.asgi  # noqa: F401  (installs the transport)
from tests.loopback import twisted_server_connection


@pytest.fixture
def connection():
    """A server-side Twisted connection on an accepted loopback socket, and the client's socket."""
    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    server, client = twisted_server_connection(tcp.Port.transport, reactor)
    yield server, client, reactor
    client.close()
    server.socket.close()
    loop.close()


def _read(client: socket.socket, size: int) -> bytes:
    client.settimeout(2)
    data = b""
    while len(data) < size:
        received = client.recv(size - len(data))
        if not received:
            raise AssertionError(f"the connection closed after {len(data)} of {size} bytes")
        data += received
    return data


def test_the_servers_connections_are_the_ones_that_send_at_once():
    assert getattr(tcp.Port.transport, "sends_at_once", False) is True


def test_a_frame_is_on_the_wire_before_the_event_loop_turns(connection):
    server, client, reactor = connection
    server.write(b"\x81\x05hello")
    assert _read(client, 7) == b"\x81\x05hello"  # the loop never ran: the write itself sent it
    assert server not in reactor.getWriters()  # nothing to watch, nothing to un-watch
    assert server.dataBuffer == b"" and server._tempDataLen == 0


def test_what_a_slow_reader_does_not_take_is_buffered_counted_and_arrives_whole_and_in_order(connection):
    server, client, reactor = connection
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    written = []
    for index in range(64):  # distinct blocks, until the kernel stops taking them
        block = bytes([index]) * 65536
        written.append(block)
        server.write(block)
        if server._tempDataLen:
            break
    assert server._tempDataLen > 0  # the studio's slow-reader bound reads this (apps/studio/consumers.py)
    assert server in reactor.getWriters()  # Twisted sends the rest when the socket can take it
    queued = server._tempDataLen
    server.write(b"later")  # behind the buffer, never ahead of it
    written.append(b"later")
    assert server._tempDataLen == queued + 5
    expected = b"".join(written)
    received = b""
    client.settimeout(2)
    while len(received) < len(expected):  # the reader catches up; Twisted's doWrite sends the rest
        server.doWrite()
        received += client.recv(1 << 20)
    assert received == expected


def test_bytes_queued_by_write_sequence_stay_ahead_of_a_later_write(connection):
    server, client, _ = connection
    server.writeSequence([b"first "])  # Twisted's own path: buffered for the loop
    server.write(b"second")
    assert server._tempDataLen == len(b"first second")  # nothing jumped the queue
    server.doWrite()
    assert _read(client, 12) == b"first second"


def test_a_write_to_a_lost_connection_is_left_to_twisted_to_report(connection):
    server, client, reactor = connection
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, not a clean close: the next send fails
    for _ in range(50):
        server.write(b"chunk")
        if server._tempDataLen:
            break
    assert server._tempDataLen > 0  # buffered for doWrite, which reports the lost connection
    assert server in reactor.getWriters()
    assert isinstance(server.doWrite(), error.ConnectionLost)
