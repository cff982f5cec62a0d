"""Per-user notifications: stored first, then pushed live over the user's websocket group.

The table keeps the name it had when the model lived in apps/core (``core_notification``): the
move to this app changed only Django's migration state, not the data.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Agency, TenantQuerySet


class NotificationKind(models.TextChoices):
    """What a notification is about; a user's preferences are per kind (preferences.py)."""

    CAMPAIGNS = "campaigns", "Campaigns"
    DELIVERIES = "deliveries", "Failed deliveries"
    ALERTS = "alerts", "Service alerts"
    INSIGHTS = "insights", "Optimization insights"
    TEAM = "team", "Team"
    GENERAL = "general", "Everything else"


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        SUCCESS = "success", "Success"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    kind = models.CharField(
        max_length=24,
        choices=NotificationKind.choices,
        default=NotificationKind.GENERAL,
        help_text="What it is about; the member's preferences for it decide in app and email.",
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        db_table = "core_notification"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "agency", "read_at"], name="notification_unread_idx")]

    def __str__(self) -> str:
        return self.title


class NotificationPreference(models.Model):
    """A user's choice for one kind of notification: shown in the app, emailed, both or neither.
    Only choices that differ from the kind's default are worth a row, but any row is honoured;
    without one, ``KINDS`` in apps/notifications/preferences.py decides."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=NotificationKind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="notificationpreference_one_per_kind")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.kind}"
