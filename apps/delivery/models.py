"""Deliveries: one outbound message to one fan on its way to the platform.

A ``Delivery`` is written by a higher layer (the inbox, campaigns) through
``apps.delivery.services.delivery_enqueue`` and sent by the ``deliver`` task through a platform
connector. It carries its own state machine::

    pending ──claim──▶ sending ──▶ sent
       ▲                  │
       │                  ├──retryable error, attempts left──▶ failed ──(next_attempt_at)──▶ sending …
       │                  └──permanent error / attempts used up──▶ dead
       └──────────── re-queue (a member or an admin) ◀──────────────────────────────┘

    pending, failed ──hold (pause)──▶ held ──release (resume)──▶ pending
    pending, failed, held ──cancel──▶ cancelled

The invariants the database can state are constraints here (one delivery per idempotency key and
agency, a PPV price above zero, a sent delivery has its send time). The transitions themselves are
conditional UPDATEs in services.py, so two workers never both own one delivery.

``SimulatedOutboundMessage`` is not ours but the *simulated platform's* storage: what the fake
OnlyFans/Fansly "received" from the simulated connector (apps/delivery/simulated.py). It exists
only until real connectors do and is labelled simulated wherever it shows.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.accounts.models import PLATFORMS, Agency, Creator, TenantQuerySet

PLATFORM_CHOICES = list(PLATFORMS.items())


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (retry scheduled)"
    DEAD = "dead", "Dead (needs a re-queue)"
    HELD = "held", "Held (its campaign is paused)"
    CANCELLED = "cancelled", "Cancelled"


class DeliveryQueue(models.TextChoices):
    """The Celery queue the send task goes on (huntaze/celery.py)."""

    INTERACTIVE = "interactive", "Interactive (inbox replies)"
    BULK = "bulk", "Bulk (campaigns)"


class Delivery(models.Model):
    Status = DeliveryStatus
    Queue = DeliveryQueue

    # No index of their own: the indexes below start with them (agency: the status list and the
    # idempotency key; creator: the pump's), and each index costs every bulk insert.
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES)
    recipient_id = models.CharField(max_length=128, help_text="The fan's id on the platform.")
    text = models.TextField()
    ppv_price = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, help_text="Pay-per-view price, in the currency below."
    )
    currency = models.CharField(max_length=3, default="USD", help_text="The creator's currency at enqueue time.")
    media_count = models.PositiveSmallIntegerField(default=0)
    queue = models.CharField(max_length=16, choices=DeliveryQueue.choices, default=DeliveryQueue.INTERACTIVE)
    idempotency_key = models.CharField(
        max_length=64, help_text="Unique per agency; passed to the connector so a re-send is not a second message."
    )
    source = models.CharField(max_length=64, blank=True, help_text='What created it, e.g. "messaging.message".')
    source_id = models.BigIntegerField(null=True, blank=True, help_text="The id of that row in its own app.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When a pending or failed delivery is due.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A sending worker owns it until then.")
    sent_at = models.DateTimeField(null=True, blank=True)
    platform_message_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweeper's two scans; partial, so the (many) sent rows never enter them.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]),
                name="delivery_due_idx",
            ),
            models.Index(fields=["lease_until"], condition=Q(status=DeliveryStatus.SENDING), name="delivery_lease_idx"),
            # Dead letters and status counts per agency (admin, notifications, later pages).
            models.Index(fields=["agency", "status", "-created_at"], name="delivery_agency_status_idx"),
            # The account pump's claim: one account's pending bulk deliveries, oldest first. Not
            # partial: SQLite uses a partial index only for literal values, never bound ones.
            models.Index(fields=["creator", "platform", "queue", "status", "id"], name="delivery_pump_idx"),
            # Higher layers find their row's delivery without delivery importing them, and count a
            # campaign's deliveries per status and its recent sends from the index alone.
            models.Index(fields=["source", "source_id", "status", "sent_at"], name="delivery_source_status_idx"),
            # What a fan was sent lately (a campaign's "messaged in the last N hours" exclusion,
            # one look-up per fan of the audience).
            models.Index(
                fields=["creator", "platform", "recipient_id", "status", "sent_at"], name="delivery_recipient_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["agency", "idempotency_key"], name="delivery_idempotency_key_per_agency"),
            models.CheckConstraint(
                condition=Q(ppv_price__isnull=True) | Q(ppv_price__gt=0), name="delivery_ppv_price_positive"
            ),
            models.CheckConstraint(condition=~Q(idempotency_key=""), name="delivery_idempotency_key_set"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(condition=Q(queue__in=DeliveryQueue.values), name="delivery_queue_valid"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="delivery_max_attempts_positive"),
            models.CheckConstraint(
                condition=~Q(status=DeliveryStatus.SENT) | Q(sent_at__isnull=False), name="delivery_sent_has_sent_at"
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} to {self.recipient_id} on {self.get_platform_display()} ({self.status})"


class SimulatedOutboundMessage(models.Model):
    """SIMULATED platform storage: what the fake platform received from the simulated connector.

    One row per (agency, idempotency key): a re-send of the same key answers the same platform
    message id instead of storing a second message, as real platforms' idempotent send endpoints do.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES)
    recipient_id = models.CharField(max_length=128)
    text = models.TextField()
    ppv_price = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    media_count = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64)
    platform_message_id = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "simulated outbound message (simulated platform)"
        verbose_name_plural = "simulated outbound messages (simulated platform)"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "idempotency_key"], name="simulated_message_one_per_key"),
        ]

    def __str__(self) -> str:
        return f"[simulated] {self.platform_message_id} to {self.recipient_id}"
