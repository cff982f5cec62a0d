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

A delivery is *direct* (one message to one fan, ``recipient_id``) or *mass* (one platform-side
mass message: one call carrying many fans' ids, one text). A mass delivery's fans are
``MassRecipient`` rows, not a list on the delivery: at 100,000 fans a JSON list is a ~2.5 MB
value that every read of the row would carry (the pump's claim answers whole rows, the admin
lists them), and that no index can look into portably, while the campaigns ask per fan ("was
this fan messaged in the last N hours?", "which fans has this been recorded for?") and the
platform answers per fan (accepted or rejected). One narrow row per fan is written in one
``COPY`` on PostgreSQL (multi-row INSERTs on SQLite), as bulk deliveries are, and is looked up
per fan through an index. The delivery itself keeps ``recipient_count`` and, once sent,
``rejected_count``, so progress is summed from the deliveries alone.

``SimulatedOutboundMessage`` and ``SimulatedMassMessage`` are not ours but the *simulated
platform's* storage: what the fake OnlyFans/Fansly "received" from the simulated connector
(apps/delivery/simulated.py). They exist only until real connectors do and are labelled simulated
wherever they show.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

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
    AUTOMATED = "default", "Automated (welcome, win-back and follow-up messages)"
    BULK = "bulk", "Bulk (campaigns)"


class DeliveryKind(models.TextChoices):
    DIRECT = "direct", "Direct message (one fan)"
    MASS = "mass", "Mass message (one platform call for many fans)"


class Delivery(models.Model):
    Status = DeliveryStatus
    Queue = DeliveryQueue
    Kind = DeliveryKind

    # No index of their own: the indexes below start with them (agency: the status list and the
    # idempotency key; creator: the pump's), and each index costs every bulk insert.
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES)
    # db_default too: bulk inserts (services._insert_bulk) name their columns and leave these out.
    kind = models.CharField(
        max_length=8, choices=DeliveryKind.choices, default=DeliveryKind.DIRECT, db_default=DeliveryKind.DIRECT.value
    )
    recipient_id = models.CharField(
        max_length=128, help_text="The fan's id on the platform (empty for a mass message: see its recipients)."
    )
    recipient_count = models.PositiveIntegerField(
        default=1, db_default=1, help_text="Fans it goes to: 1, or a mass message's recipients."
    )
    rejected_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Recipients of a sent mass message that the platform refused."
    )
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
            # A direct delivery is one fan; a mass one names none itself and rejects at most its own.
            models.CheckConstraint(
                condition=Q(kind=DeliveryKind.DIRECT, recipient_count=1, rejected_count=0)
                | Q(
                    kind=DeliveryKind.MASS,
                    recipient_id="",
                    recipient_count__gte=1,
                    rejected_count__lte=F("recipient_count"),
                ),
                name="delivery_kind_recipients",
            ),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="delivery_max_attempts_positive"),
            models.CheckConstraint(
                condition=~Q(status=DeliveryStatus.SENT) | Q(sent_at__isnull=False), name="delivery_sent_has_sent_at"
            ),
        ]

    def __str__(self) -> str:
        to = f"{self.recipient_count} fans (mass)" if self.kind == DeliveryKind.MASS else self.recipient_id
        return f"Delivery {self.pk} to {to} on {self.get_platform_display()} ({self.status})"


class MassRecipient(models.Model):
    """One fan of a mass delivery (``Delivery.kind == "mass"``): why rows and not a list, see the
    module docstring. ``rejected``: the platform refused this fan when it took the mass message
    (blocked, unsubscribed), so nothing reached them. What the fan's conversation records for it
    is keyed ``<the delivery's key>:<this row's id>`` (``mass_message_key``)."""

    # No index of their own: the two below start with them.
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+", db_index=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="mass_recipients", db_index=False)
    recipient_id = models.CharField(max_length=128, help_text="The fan's id on the platform.")
    rejected = models.BooleanField(default=False, db_default=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # Per fan: "was this fan sent a mass message lately?" (a campaign's exclusion).
            models.Index(fields=["agency", "recipient_id"], name="mass_recipient_fan_idx"),
        ]
        constraints = [
            # Also the index that finds one delivery's recipients.
            models.UniqueConstraint(fields=["delivery", "recipient_id"], name="mass_recipient_once"),
            models.CheckConstraint(condition=~Q(recipient_id=""), name="mass_recipient_id_set"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id} of mass delivery {self.delivery_id}"


def mass_message_key(delivery_key: str, recipient_row_id: int) -> str:
    """The per-fan idempotency key of one recipient of a mass message (at most 64 characters:
    a mass delivery's key is at most ``MASS_KEY_MAX``)."""
    return f"{delivery_key}:{recipient_row_id}"


MASS_KEY_MAX = 40  # + ":" + a row id of up to 19 digits stays within the 64 of a message key


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


class SimulatedMassMessage(models.Model):
    """SIMULATED platform storage: the mass messages the fake platform received (one row per
    call, whatever the number of fans), one per (agency, idempotency key): a re-send of the same
    key answers the first one's id and stores nothing new. The fans' ids are a list here: this
    is the fake platform's storage, read whole, never per fan."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES)
    recipient_ids = models.JSONField(default=list)
    rejected_ids = models.JSONField(default=list, help_text="The fans it refused (blocked the creator).")
    text = models.TextField()
    ppv_price = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    media_count = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=64)
    platform_message_id = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "simulated mass message (simulated platform)"
        verbose_name_plural = "simulated mass messages (simulated platform)"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "idempotency_key"], name="simulated_mass_one_per_key"),
        ]

    def __str__(self) -> str:
        return f"[simulated] mass {self.platform_message_id} to {len(self.recipient_ids)} fans"
