"""The notifications part of a user's data export (apps/accounts/data_export.py): their
notifications in every agency and their notification preferences."""

from __future__ import annotations

from typing import Any

from apps.notifications.models import Notification
from apps.notifications.preferences import preferences_for_user


def export_for_user(user) -> dict[str, Any]:
    rows = Notification.objects.filter(user=user).select_related("agency").order_by("created_at", "id")
    return {
        "notifications": [
            {
                "agency": n.agency.name,
                "kind": n.kind,
                "level": n.level,
                "title": n.title,
                "body": n.body,
                "url": n.url,
                "created_at": n.created_at,
                "read_at": n.read_at,
            }
            for n in rows.iterator(chunk_size=500)
        ],
        "notification_preferences": [
            {"kind": kind.key, "in_app": channels.in_app, "email": channels.email}
            for kind, channels in preferences_for_user(user_id=user.pk)
        ],
    }
