"""Websockets get the member's session without channels' per-message ``send`` wrapper
(huntaze/asgi.py ``SocketSessionMiddleware``): the wrapper only ever saves on an HTTP response
start, and reading the session's state through its ``LazyObject`` at every frame cost about 3 us a
frame."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware

from huntaze.asgi import SocketSessionMiddleware, application
from tests.conftest import build_world, login_client


@pytest.mark.django_db(transaction=True)
async def test_a_socket_gets_the_members_session_and_the_servers_own_send():
    world = await sync_to_async(build_world)()
    client = await sync_to_async(login_client)(world.owner)
    session_key = client.cookies["sessionid"].value
    seen = {}

    async def inner(scope, receive, send):
        seen["send"] = send
        seen["session_key"] = scope["session"].session_key
        seen["user_id"] = await sync_to_async(lambda: scope["session"].get("_auth_user_id"))()

    async def server_send(message):
        raise AssertionError("nothing is sent here")

    scope = {"type": "websocket", "path": "/ws/studio/", "headers": [(b"cookie", f"sessionid={session_key}".encode())]}
    await CookieMiddleware(SocketSessionMiddleware(inner))(scope, None, server_send)

    assert seen["send"] is server_send  # channels' SessionMiddleware hands on its wrapper's send
    assert seen["session_key"] == session_key
    assert seen["user_id"] == str(world.owner.user_id)


def test_the_websocket_stack_uses_it():
    layers, app = [], application.application_mapping["websocket"]
    while app is not None and len(layers) < 12:
        layers.append(type(app))
        app = next((getattr(app, name) for name in ("app", "application", "inner") if hasattr(app, name)), None)
    assert SocketSessionMiddleware in layers, layers
    assert SessionMiddleware not in layers, layers  # channels' own, with the per-frame wrapper
