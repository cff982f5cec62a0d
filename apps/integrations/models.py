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
    refresh_failures = models.PositiveIntegerField(
        default=0, help_text="Token refreshes failed in a row; at INTEGRATIONS_BROKEN_AFTER_FAILURES it is broken."
    )
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


# --- Publishing (apps/integrations/publishing.py): posts scheduled to TikTok, Instagram, Reddit ---


class PostStatus(models.TextChoices):
    DRAFT = "draft", "Awaiting approval"
    SCHEDULED = "scheduled", "Scheduled"
    PUBLISHING = "publishing", "Publishing"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class PostMediaType(models.TextChoices):
    VIDEO = "video", "Video"
    PHOTO = "photo", "Photo(s)"
    TEXT = "text", "Text or link only"


PUBLISH_PLATFORMS = (Platform.TIKTOK, Platform.INSTAGRAM, Platform.REDDIT)


class ScheduledPost(models.Model):
    """One post to publish on a creator's connected platform at a time.

    ``publishing`` covers two phases: claimed and being sent (``publish_id`` empty), and accepted
    by the platform, which is still processing it (``publish_id`` set: TikTok's publish id or
    Instagram's media container); ``next_attempt_at`` is then the next status poll.

    ``draft`` is a post proposed for its time (the weekly content plan makes them) and awaiting a
    member's approval: the worker never looks at it, and it needs no connection until a member
    approves it, adding the media, which schedules it like a new post.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="scheduled_posts")
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.CASCADE, related_name="scheduled_posts",
        help_text="Set when the post is scheduled; a draft awaiting approval may have none yet.",
    )  # fmt: skip
    platform = models.CharField(max_length=16, choices=Platform.choices)
    generation = models.ForeignKey(
        "studio.Generation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The studio caption this post started from, if any.",
    )  # fmt: skip
    title = models.CharField(max_length=300, blank=True, help_text="Reddit's title; TikTok photo posts' title.")
    caption = models.TextField(blank=True)
    subreddit = models.CharField(max_length=21, blank=True)
    media_type = models.CharField(max_length=8, choices=PostMediaType.choices, default=PostMediaType.TEXT)
    media_urls = models.JSONField(default=list, blank=True, help_text="Public https URLs of the media, in order.")
    scheduled_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=PostStatus.choices, default=PostStatus.SCHEDULED)
    attempts = models.PositiveSmallIntegerField(default=0)
    polls = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the worker next looks at it: the publish time, a retry or a poll."
    )
    publish_id = models.CharField(max_length=128, blank=True, help_text="TikTok publish id or Instagram container.")
    platform_post_id = models.CharField(max_length=128, blank=True)
    platform_url = models.URLField(max_length=500, blank=True)
    last_response = models.TextField(blank=True, help_text="The platform's last answer, as it said it.")
    last_error = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PostStatus.values), name="integration_post_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(platform__in=[p.value for p in PUBLISH_PLATFORMS]),
                name="integration_post_platform_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(media_type__in=PostMediaType.values), name="integration_post_media_type_valid"
            ),
            models.CheckConstraint(condition=models.Q(attempts__lte=100), name="integration_post_attempts_bounded"),
            models.CheckConstraint(
                condition=models.Q(connection__isnull=False)
                | models.Q(status__in=[PostStatus.DRAFT, PostStatus.CANCELLED]),
                name="integration_post_connection_once_scheduled",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="integration_post_due"),
            models.Index(fields=["agency", "scheduled_at"], name="integration_post_calendar"),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} post for {self.creator} at {self.scheduled_at:%Y-%m-%d %H:%M}"

    @property
    def link(self) -> str:
        """The published post's address for a link on our pages: https only (a value stored
        before publishing.py checked the scheme, a javascript: URL, is not made a link)."""
        return self.platform_url if self.platform_url.lower().startswith("https://") else ""


# --- CRM webhooks (apps/integrations/crm.py) --------------------------------------------------------


class CRMEventKind(models.TextChoices):
    """Domain events a CRM connection can subscribe to (the bus kinds of apps/core/events.py)."""

    FAN_CREATED = "fan.created", "Fan created"
    PURCHASE_RECORDED = "purchase.recorded", "Purchase"
    CAMPAIGN_COMPLETED = "campaign.completed", "Campaign completed"
    ALERT_FIRED = "alert.fired", "Alert raised"


class CRMConnection(models.Model):
    """An agency's CRM: where its domain events are POSTed, signed, and whose webhooks it accepts."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    target_url = models.URLField(max_length=500)
    signing_secret = EncryptedTextField()
    event_kinds = models.JSONField(default=list, blank=True, help_text="CRMEventKind values sent to the CRM.")
    field_mapping = models.JSONField(default=dict, blank=True, help_text="Our fan field → the CRM's field name.")
    active = models.BooleanField(default=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, help_text="Names the inbound URL.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["agency", "name"], name="integration_crm_name_unique")]

    def __str__(self) -> str:
        return self.name


class CRMDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead (gave up)"


class CRMDelivery(models.Model):
    """One domain event on its way to one CRM (the "WebhookDelivery" of the delivery log)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    crm = models.ForeignKey(CRMConnection, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.BigIntegerField(help_text="The bus event's id; the CRM's idempotency key.")
    kind = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=CRMDeliveryStatus.choices, default=CRMDeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["crm", "event_id"], name="integration_crm_delivery_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=CRMDeliveryStatus.values), name="integration_crm_delivery_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="integration_crm_delivery_due")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.event_id} → {self.crm_id}"


class CRMInboundEvent(models.Model):
    """One verified webhook from a CRM, stored before it is processed (once per event id)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    crm = models.ForeignKey(CRMConnection, on_delete=models.CASCADE, related_name="inbound_events")
    event_id = models.CharField(max_length=128)
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    error = models.TextField(blank=True)
    note = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["crm", "event_id"], name="integration_crm_inbound_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=WebhookStatus.values), name="integration_crm_inbound_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# --- Sync (apps/integrations/sync.py): fans, messages and transactions from third-party APIs ---------


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"


class SyncTrigger(models.TextChoices):
    MANUAL = "manual", "Sync now"
    SCHEDULED = "scheduled", "Scheduled"


class SyncRun(models.Model):
    """One incremental sync of a connection: its progress, the cursor reached in each feed (saved
    after each page, so an interrupted run's successor starts there) and how it ended."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=12, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    trigger = models.CharField(max_length=10, choices=SyncTrigger.choices, default=SyncTrigger.SCHEDULED)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cursors = models.JSONField(default=dict, blank=True, help_text="Feed → the provider's cursor reached.")
    fans_synced = models.PositiveIntegerField(default=0)
    messages_synced = models.PositiveIntegerField(default=0)
    transactions_synced = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0, help_text="Items read that were already up to date.")
    pages = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"], condition=models.Q(status="running"), name="integration_one_running_sync"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=SyncStatus.values), name="integration_sync_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(trigger__in=SyncTrigger.values), name="integration_sync_trigger_valid"
            ),
        ]
        indexes = [models.Index(fields=["connection", "-started_at"], name="integration_sync_history")]

    def __str__(self) -> str:
        return f"Sync of {self.connection} ({self.get_status_display()})"

    @property
    def records(self) -> int:
        return self.fans_synced + self.messages_synced + self.transactions_synced
