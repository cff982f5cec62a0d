"""Notifications: store, then fan out to the recipient's websocket group after commit."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import Membership
from apps.notifications.models import Notification


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def notification_send(
    *, membership: Membership, title: str, body: str = "", url: str = "", level: str = Notification.Level.INFO
) -> Notification:
    """Record a notification for one member and push it to their open tabs."""
    if level not in Notification.Level.values:
        raise ValueError(f"Unknown notification level {level!r}")
    notification = Notification.objects.create(
        agency_id=membership.agency_id, user_id=membership.user_id, title=title[:200], body=body, url=url, level=level
    )
    transaction.on_commit(lambda: _push(notification))
    return notification


def _push(notification: Notification) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    html = render_to_string("notifications/partials/toast.html", {"notification": notification})
    async_to_sync(layer.group_send)(
        user_group(notification.user_id),
        {"type": "notification.message", "agency_id": notification.agency_id, "html": html},
    )


def notifications_mark_read(*, membership: Membership, notification_id: int | None = None) -> int:
    """Mark one notification (or all) as read; answers how many changed."""
    unread = Notification.objects.for_agency(membership.agency_id).filter(
        user_id=membership.user_id, read_at__isnull=True
    )
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())
