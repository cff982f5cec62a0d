"""The Notifications card on the home dashboard: the latest unread notifications."""

from __future__ import annotations

from apps.core.registry import Card
from apps.notifications.selectors import notification_list


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    unread = list(notification_list(membership=membership).filter(read_at__isnull=True)[:5])
    return [Card("Notifications", "notifications/cards/unread.html", {"notifications": unread}, order=90)]
