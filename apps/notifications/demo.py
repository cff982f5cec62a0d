"""Demo data for notifications: a welcome notification for each demo member."""

from __future__ import annotations

from django.urls import reverse

from apps.core.registry import DemoContext
from apps.notifications.models import Notification

ORDER = 90


def seed(ctx: DemoContext) -> None:
    Notification.objects.bulk_create(
        [
            Notification(
                agency=ctx.agency,
                user_id=membership.user_id,
                level=Notification.Level.INFO,
                title=f"Welcome to {ctx.agency.name}",
                body=f"You are {membership.get_role_display().lower()} here. Pick a creator in the top bar to start.",
                url=reverse("accounts:creator-list"),
            )
            for membership in ctx.memberships.values()
        ]
    )
    ctx.log(f"notifications: {len(ctx.memberships)} welcome notifications")
