"""Connections to outside platforms, their audit trail, and the webhooks they send us.

A Connection is one creator's link to one platform. OAuth platforms (TikTok, Instagram, Reddit)
hold an access token and usually a refresh token; the third-party API platforms (OnlyFans,
Fansly, reached through a configurable API provider) hold that provider's base URL, an API key,
the account id there and the secret it signs webhooks with. Every secret is an
``EncryptedTextField`` (Fernet, rotated with ``manage.py rotate_encryption_keys``).

Invariants stated in the database: one connection per creator and platform; a known platform and
status; one stored webhook per connection and event id (a replay finds the row and does nothing).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.accounts.models import Agency, Creator, TenantQuerySet
from apps.core.crypto import EncryptedTextField


class Platform(models.TextChoices):
    TIKTOK = "tiktok", "TikTok"
    INSTAGRAM = "instagram", "Instagram"
    REDDIT = "reddit", "Reddit"
    ONLYFANS = "onlyfans", "OnlyFans"
    FANSLY = "fansly", "Fansly"


OAUTH_PLATFORMS = (Platform.TIKTOK, Platform.INSTAGRAM, Platform.REDDIT)
API_PLATFORMS = (Platform.ONLYFANS, Platform.FANSLY)


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    BROKEN = "broken", "Broken"
    DISCONNECTED = "disconnected", "Disconnected"


class Connection(models.Model):
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="connections")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    status = models.CharField(max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.DISCONNECTED)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Names the webhook URL.")
    is_simulated = models.BooleanField(default=False, help_text="The demo's simulated connection: no real account.")
    external_account_id = models.CharField(max_length=128, blank=True, help_text="The account's id on the platform.")
    scopes = models.JSONField(default=list, blank=True, help_text="Scopes the platform granted.")
    access_token = EncryptedTextField(blank=True, default="")
    refresh_token = EncryptedTextField(blank=True, default="")
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    # Third-party API platforms (OnlyFans, Fansly).
    api_base_url = models.URLField(blank=True)
    api_key = EncryptedTextField(blank=True, default="")
    api_account_id = models.CharField(max_length=128, blank=True)
    webhook_secret = EncryptedTextField(blank=True, default="")
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["creator_id", "platform"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "platform"], name="integration_one_connection_per_platform"),
            models.CheckConstraint(condition=models.Q(platform__in=Platform.values), name="integration_platform_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=ConnectionStatus.values), name="integration_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "access_expires_at"], name="integration_refresh_due")]

    def __str__(self) -> str:
        return f"{self.creator} on {self.get_platform_display()} ({self.get_status_display()})"

    @property
    def uses_api(self) -> bool:
        return self.platform in API_PLATFORMS


class ConnectionEventKind(models.TextChoices):
    CONNECTED = "connected", "Connected"
    REFRESHED = "refreshed", "Token refreshed"
    REFRESH_FAILED = "refresh_failed", "Refresh failed"
    DISCONNECTED = "disconnected", "Disconnected"


class ConnectionEvent(models.Model):
    """The audit trail of a connection: who connected it, each refresh, each failure."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=ConnectionEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=ConnectionEventKind.values), name="integration_event_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} — {self.connection}"


class WebhookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (unknown type)"
    FAILED = "failed", "Failed"


class WebhookEvent(models.Model):
    """One verified inbound webhook, stored before it is processed."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_events")
    event_id = models.CharField(max_length=128)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    note = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "event_id"], name="integration_webhook_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=WebhookStatus.values), name="integration_webhook_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
