"""Per-user notifications: stored first, then pushed live over the user's websocket group."""

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
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "agency", "read_at"], name="notification_unread_idx")]

    def __str__(self) -> str:
        return self.title


class SharedKey(models.Model):
    """Counters and small records shared by all processes when there is no Redis.

    See apps/core/shared.py; expired rows are ignored and deleted by ``purge_expired_shared_keys``.
    """

    key = models.CharField(max_length=200, primary_key=True)
    count = models.BigIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.key
