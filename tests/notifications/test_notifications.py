"""Live per-user notifications over a real websocket connection through the full ASGI stack."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.notifications.models import Notification
from apps.notifications.services import notification_send, user_group
from huntaze.asgi import application
from tests.conftest import build_world, login_client

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def _session_cookie(membership) -> bytes:
    client = login_client(membership)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(headers):
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
async def test_member_receives_own_notifications_live_and_escaped():
    world = await sync_to_async(build_world)("Live")
    cookie = await sync_to_async(_session_cookie)(world.owner)
    communicator, connected, _ = await _connect([ORIGIN, (b"cookie", cookie)])
    assert connected
    await sync_to_async(notification_send)(membership=world.owner, title="<script>alert(1)</script> Payout ready")
    frame = await communicator.receive_from(timeout=5)
    assert "Payout ready" in frame
    assert "<script>" not in frame and "&lt;script&gt;" in frame
    assert 'hx-swap-oob="beforeend"' in frame
    # Another member's notification does not reach this socket.
    await sync_to_async(notification_send)(membership=world.viewer, title="For the viewer only")
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_notifications_for_another_agency_are_not_pushed():
    world = await sync_to_async(build_world)("Home")
    other = await sync_to_async(build_world)("Away")
    from tests.accounts.factories import MembershipFactory

    second = await sync_to_async(MembershipFactory)(agency=other.agency, user=world.owner.user, role="viewer")
    cookie = await sync_to_async(_session_cookie)(world.owner)
    communicator, connected, _ = await _connect([ORIGIN, (b"cookie", cookie)])
    assert connected
    await sync_to_async(notification_send)(membership=second, title="Away news")
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_socket_is_closed_with_4403_once_the_membership_is_gone():
    world = await sync_to_async(build_world)("Leaving")
    cookie = await sync_to_async(_session_cookie)(world.manager)
    communicator, connected, _ = await _connect([ORIGIN, (b"cookie", cookie)])
    assert connected
    await sync_to_async(notification_send)(membership=world.manager, title="Still here")
    assert "Still here" in await communicator.receive_from(timeout=5)
    await sync_to_async(world.manager.delete)()
    event = {"type": "notification.message", "agency_id": world.agency.pk, "html": "<div>After removal</div>"}
    await get_channel_layer().group_send(user_group(world.manager.user_id), event)
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.wait()


@pytest.mark.django_db(transaction=True)
async def test_socket_of_a_deactivated_user_is_closed_with_4403():
    world = await sync_to_async(build_world)("Gone")
    cookie = await sync_to_async(_session_cookie)(world.viewer)
    communicator, connected, _ = await _connect([ORIGIN, (b"cookie", cookie)])
    assert connected
    user = world.viewer.user
    user.is_active = False
    await sync_to_async(user.save)(update_fields=["is_active"])
    await sync_to_async(notification_send)(membership=world.viewer, title="Not for a deactivated user")
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    await communicator.wait()


@pytest.mark.django_db(transaction=True)
async def test_anonymous_socket_is_closed_with_4403():
    _communicator, connected, code = await _connect([ORIGIN])
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
async def test_foreign_origin_is_rejected():
    world = await sync_to_async(build_world)("Origin")
    cookie = await sync_to_async(_session_cookie)(world.owner)
    _communicator, connected, _ = await _connect([(b"origin", b"https://evil.example.com"), (b"cookie", cookie)])
    assert not connected


def test_notification_pages_list_and_mark_read(world, client_for):
    notification_send(membership=world.owner, title="Invite accepted", url="/settings/members/")
    notification_send(membership=world.viewer, title="Viewer only")
    client = client_for(world.owner)
    page = client.get("/notifications/")
    assert b"Invite accepted" in page.content and b"Viewer only" not in page.content
    dashboard = client.get("/")
    assert b"Invite accepted" in dashboard.content
    notification = Notification.objects.get(title="Invite accepted")
    assert client.post(f"/notifications/{notification.pk}/read/", HTTP_HX_REQUEST="true").status_code == 200
    notification.refresh_from_db()
    assert notification.read_at is not None
    assert b"You're all caught up." in client.get("/").content


def test_notifications_api(world):
    from apps.accounts import services

    notification_send(membership=world.manager, title="API visible")
    _, secret = services.api_token_create(membership=world.manager, name="t")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    items = client.get("/api/v1/notifications").json()["items"]
    assert [item["title"] for item in items] == ["API visible"]
    read = client.post(f"/api/v1/notifications/{items[0]['id']}/read").json()
    assert read["read_at"] is not None


def test_read_notifications_are_purged_after_retention_unread_kept(world):
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from apps.notifications.tasks import purge_read_notifications

    old_read = notification_send(membership=world.owner, title="old read")
    old_unread = notification_send(membership=world.owner, title="old unread")
    recent_read = notification_send(membership=world.owner, title="recent read")
    long_ago = timezone.now() - timedelta(days=120)
    Notification.objects.filter(pk=old_read.pk).update(read_at=long_ago, created_at=long_ago)
    Notification.objects.filter(pk=old_unread.pk).update(created_at=long_ago)
    Notification.objects.filter(pk=recent_read.pk).update(read_at=timezone.now())
    assert purge_read_notifications() == 1
    assert set(Notification.objects.values_list("title", flat=True)) == {"old unread", "recent read"}
    schedule = settings.CELERY_BEAT_SCHEDULE["purge-read-notifications"]
    assert schedule["task"] == purge_read_notifications.name
