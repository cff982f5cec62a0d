"""Per-user notifications: stored first, then pushed live over the user's websocket group.

The table keeps the name it had when the model lived in apps/core (``core_notification``): the
move to this app changed only Django's migration state, not the data.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Agency, TenantQuerySet


class Notification(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "Info"
        SUCCESS = "success", "Success"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
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
