"""Notifications reach the member's websocket through the event bus, once, even when redelivered."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from apps.core.models import OutboxEvent
from apps.core.outbox import dispatch_pending, group_message, group_messages
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


@pytest.mark.django_db(transaction=True)
async def test_events_a_sweep_sends_together_arrive_as_one_message_and_show_each_toast_once(settings):
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"  # nothing on commit: the sweep below batches them
    world = await sync_to_async(build_world)("Batch")
    cookie = await sync_to_async(_cookie)(world.owner)
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    for title in ("First payout", "Second payout", "Third payout"):
        await sync_to_async(notification_send)(membership=world.owner, title=title)
    assert await communicator.receive_nothing(timeout=0.3)  # not dispatched yet
    sent = await sync_to_async(dispatch_pending)()
    assert sent.dispatched == 3
    events = await sync_to_async(list)(OutboxEvent.objects.filter(kind="notification.created").order_by("id"))
    messages = group_messages(events)
    assert [(group, message["type"]) for group, message in messages] == [
        (user_group(world.owner.user_id), "outbox.batch")
    ]  # one group_send for the three
    frames = [await communicator.receive_from(timeout=5) for _ in range(3)]
    assert [title in frame for frame, title in zip(frames, ("First", "Second", "Third"), strict=True)] == [True] * 3
    # The same batch delivered again (a dispatcher that died before marking): no second toast.
    await get_channel_layer().group_send(*messages[0])
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
