"""Notifications reach the member's websocket through the event bus, once, even when redelivered."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.core.models import OutboxEvent
from apps.core.outbox import group_message
from apps.notifications.services import notification_send, user_group
from huntaze.asgi import application
from tests.conftest import build_world, login_client

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def _cookie(membership) -> bytes:
    return f"sessionid={login_client(membership).cookies['sessionid'].value}".encode()


@pytest.mark.django_db(transaction=True)
async def test_a_redelivered_notification_event_shows_one_toast():
    world = await sync_to_async(build_world)("Bus")
    cookie = await sync_to_async(_cookie)(world.owner)
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    notification = await sync_to_async(notification_send)(membership=world.owner, title="Payout <b>ready</b>")
    frame = await communicator.receive_from(timeout=5)
    assert "Payout &lt;b&gt;ready&lt;/b&gt;" in frame and 'id="toasts"' in frame
    event = await sync_to_async(OutboxEvent.objects.get)(kind="notification.created")
    assert event.dispatched_at is not None and event.user_id == world.owner.user_id
    assert event.payload["notification_id"] == notification.pk
    # A dispatcher that died after sending and before marking sends it again: no second toast.
    await get_channel_layer().group_send(user_group(world.owner.user_id), group_message(event))
    assert await communicator.receive_nothing(timeout=0.5)
    # An event in the group for someone else (or of another kind) shows nothing either.
    stray = group_message(event) | {"id": event.pk + 1000, "user_id": world.viewer.user_id}
    await get_channel_layer().group_send(user_group(world.owner.user_id), stray)
    other_kind = group_message(event) | {"id": event.pk + 1001, "kind": "campaign.progress"}
    await get_channel_layer().group_send(user_group(world.owner.user_id), other_kind)
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
