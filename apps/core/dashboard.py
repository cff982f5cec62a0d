"""Core's contribution to the home dashboard: the latest unread notifications."""

from __future__ import annotations

from apps.core.registry import Card
from apps.core.selectors import notification_list


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    unread = list(notification_list(membership=membership).filter(read_at__isnull=True)[:5])
    return [Card("Notifications", "core/cards/notifications.html", {"notifications": unread}, order=90)]
