"""Websockets follow the session: ending it (sessions page, log out) closes them at once, and
an agency that requires two factor admits only sockets of sessions that passed it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from apps.accounts import sessions
from apps.accounts.models import Agency, AuthenticatorDevice, Membership, UserSession
from huntaze.asgi import application
from tests.conftest import build_world, login_client

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
pytestmark = pytest.mark.django_db(transaction=True)


def _login(membership: Membership, second_factor: bool = False):
    client = login_client(membership)
    if second_factor:
        device = AuthenticatorDevice.objects.create(user=membership.user, name="phone", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


async def _connect(client, path: str) -> tuple[WebsocketCommunicator, bool, int | None]:
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, (b"cookie", cookie)])
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def _closed_code(communicator: WebsocketCommunicator) -> int:
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output["code"]


@pytest.mark.parametrize("path", ["/ws/notifications/", "/ws/studio/"])
async def test_ending_a_session_closes_its_sockets(path):
    world = await sync_to_async(build_world)("Ended")
    client = await sync_to_async(_login)(world.manager)
    communicator, connected, _ = await _connect(client, path)
    assert connected
    row = await UserSession.objects.aget(session_key=client.session.session_key)
    await sync_to_async(sessions.user_session_end)(user=world.manager.user, user_session=row)
    assert await _closed_code(communicator) == 4403
    # and the same cookie cannot open a new one
    again, connected, code = await _connect(client, path)
    assert not connected and code == 4403
    await again.disconnect()


@pytest.mark.parametrize("path", ["/ws/notifications/", "/ws/studio/"])
async def test_an_expired_session_cannot_open_a_socket(path):
    world = await sync_to_async(build_world)("Expired")
    client = await sync_to_async(_login)(world.manager)
    await Session.objects.filter(session_key=client.session.session_key).aupdate(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    communicator, connected, code = await _connect(client, path)
    assert not connected and code == 4403
    await communicator.disconnect()


async def test_logging_out_closes_the_sockets_of_that_session():
    world = await sync_to_async(build_world)("Logout")
    client = await sync_to_async(_login)(world.owner)
    communicator, connected, _ = await _connect(client, "/ws/notifications/")
    assert connected
    response = await sync_to_async(client.post)("/accounts/logout/")
    assert response.status_code in (200, 302)
    assert await _closed_code(communicator) == 4403


async def test_other_sessions_sockets_stay_open():
    world = await sync_to_async(build_world)("Two tabs")
    laptop = await sync_to_async(_login)(world.owner)
    phone = await sync_to_async(_login)(world.owner)
    kept, connected, _ = await _connect(laptop, "/ws/notifications/")
    assert connected
    ended, connected, _ = await _connect(phone, "/ws/notifications/")
    assert connected
    row = await UserSession.objects.aget(session_key=phone.session.session_key)
    await sync_to_async(sessions.user_session_end)(user=world.owner.user, user_session=row)
    assert await _closed_code(ended) == 4403
    assert await kept.receive_nothing(timeout=0.3)
    await kept.disconnect()


@pytest.mark.parametrize("path", ["/ws/notifications/", "/ws/studio/"])
async def test_agency_requiring_two_factor_admits_only_verified_sessions(path):
    world = await sync_to_async(build_world)("Strict")
    await Agency.objects.filter(pk=world.agency.pk).aupdate(require_two_factor=True)
    password_only = await sync_to_async(_login)(world.manager)
    communicator, connected, code = await _connect(password_only, path)
    assert not connected and code == 4403
    await communicator.disconnect()
    verified = await sync_to_async(_login)(world.chatter, second_factor=True)
    communicator, connected, _ = await _connect(verified, path)
    assert connected
    await communicator.disconnect()
