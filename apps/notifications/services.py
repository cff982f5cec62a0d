"""Notifications: store, and publish a ``notification.created`` event in the same transaction.

The event bus (apps/core/events.py) sends it after commit to the recipient's websocket group,
where the consumer renders the toast, and to the agency's SSE stream for that member only.
"""

from __future__ import annotations

from django.utils import timezone

from apps.accounts.models import Membership
from apps.core.events import publish
from apps.notifications import preferences
from apps.notifications.models import Notification


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def notification_send(
    *,
    membership: Membership,
    title: str,
    body: str = "",
    url: str = "",
    level: str = Notification.Level.INFO,
    kind: str | None = None,
    email: bool = True,
) -> Notification | None:
    """Record a notification for one member and push it to their open tabs, and email it, as the
    member's preferences for its ``kind`` say (apps/notifications/preferences.py; a caller that
    names no kind is classed by ``url``). None when the member turned the in-app copy off.
    ``email=False``: the caller sends its own email (monitoring's alerts, with their own wording,
    to the addresses ``preferences.email_wanted`` leaves), so this one sends none."""
    if level not in Notification.Level.values:
        raise ValueError(f"Unknown notification level {level!r}")
    kind = kind or preferences.kind_for_url(url)
    if kind not in preferences.KIND_KEYS:
        raise ValueError(f"Unknown notification kind {kind!r}")
    channels = preferences.channels_for(user_id=membership.user_id, kind=kind)
    if email and channels.email:
        from apps.notifications.tasks import send_notification_email

        send_notification_email.delay_on_commit(membership.user_id, membership.agency_id, title[:200], body, url)
    if not channels.in_app:
        return None
    notification = Notification.objects.create(
        agency_id=membership.agency_id,
        user_id=membership.user_id,
        title=title[:200],
        body=body,
        url=url,
        level=level,
        kind=kind,
    )
    publish(
        "notification.created",
        agency_id=notification.agency_id,
        user_id=notification.user_id,
        groups=[user_group(notification.user_id)],
        payload=notification_event_payload(notification),
    )
    return notification


def notification_event_payload(notification: Notification) -> dict:
    """What the ``notification.created`` event carries: all the toast shows, nothing more."""
    return {
        "notification_id": notification.pk,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "level": notification.level,
        "kind": notification.kind,
    }


def notifications_mark_read(*, membership: Membership, notification_id: int | None = None) -> int:
    """Mark one notification (or all) as read; answers how many changed."""
    unread = Notification.objects.for_agency(membership.agency_id).filter(
        user_id=membership.user_id, read_at__isnull=True
    )
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())
