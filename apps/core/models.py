"""Core's own tables: the shared state of the embedded default when there is no Redis."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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


class OutboxEvent(models.Model):
    """One domain event, written in the same transaction as the change it announces.

    The id is the event id (monotonic; SSE clients resume from it). apps/core/outbox.py claims
    undispatched rows with a lease (``claimed_until``), fans them out and marks ``dispatched_at``;
    a dispatcher that dies leaves its claim to expire, so the rows are claimed again. Core knows no
    tenant model: ``agency_id`` and ``user_id`` are plain integers (no foreign key), set by the
    publisher; ``user_id`` makes an event private to one member of the agency.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=100)
    agency_id = models.BigIntegerField(null=True, blank=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    key = models.CharField(max_length=200, null=True, blank=True, help_text="Idempotency key within the kind.")
    payload = models.JSONField(default=dict, blank=True)
    groups = models.JSONField(default=list, blank=True, help_text="Channels groups the event is sent to.")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(dispatched_at__isnull=True), name="core_outbox_pending"),
            models.Index(fields=["agency_id", "id"], name="core_outbox_agency"),
            models.Index(fields=["dispatched_at"], name="core_outbox_dispatched"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"], condition=models.Q(key__isnull=False), name="core_outbox_one_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.kind}"
