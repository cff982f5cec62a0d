"""Campaigns: a mass message or PPV offer from one creator to an audience of fans, now or at a
time, sent as one direct message per fan through the delivery pipeline (apps/delivery).

A campaign's life::

    draft ──schedule──▶ scheduled ──(send time; campaigns_tick)──▶ sending ──(nothing left)──▶ completed
      │                     │                                      │  ▲
      └─(audience above the agency's approval size, by a member who cannot approve)──▶ awaiting approval
                            │                                  pause│  │resume
                            │                                      ▼  │
                            │                                     paused
      draft, awaiting approval, scheduled, sending, paused ──cancel──▶ cancelled

Its deliveries carry ``source="campaigns.campaign"`` and the campaign's id, and the idempotency
key ``campaign-<id>-fan-<fan id>``: starting a campaign twice (two ticks, a retried task) never
writes a second delivery for a fan. The stats (sent, failed, dead, …) are counted from those
deliveries, never kept as counters that could drift; ``targeted`` and ``excluded`` are written
once, when the audience is resolved at the send time.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.accounts.models import Agency, Creator, TenantQuerySet

DELIVERY_SOURCE = "campaigns.campaign"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting", "Awaiting approval"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


# What a member may do from each state (services.py checks it; pages show only these buttons).
EDITABLE = {CampaignStatus.DRAFT, CampaignStatus.AWAITING_APPROVAL, CampaignStatus.SCHEDULED}
CANCELLABLE = {
    CampaignStatus.DRAFT,
    CampaignStatus.AWAITING_APPROVAL,
    CampaignStatus.SCHEDULED,
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
}
FINISHED = {CampaignStatus.COMPLETED, CampaignStatus.CANCELLED}


class Campaign(models.Model):
    Status = CampaignStatus

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    # Audience: a saved segment (resolved live at the send time) or fans chosen by hand.
    segment = models.ForeignKey("messaging.Segment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    fan_ids = models.JSONField(default=list, blank=True, help_text="Fans chosen by hand (when no segment).")
    text = models.TextField(
        max_length=10_000, help_text="May use template variables such as {fan.first_name|babe}, filled per fan."
    )
    ppv_price = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    media = models.JSONField(default=list, blank=True, help_text="References of the media attached (vault ids).")
    send_at = models.DateTimeField(null=True, blank=True, help_text="When to send (UTC); empty: as soon as scheduled.")
    exclude_messaged_within_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(720)]
    )
    exclude_no_spend_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    targeted = models.PositiveIntegerField(default=0, help_text="Fans messaged, counted when sending started.")
    excluded = models.PositiveIntegerField(default=0, help_text="Fans of the audience left out by the exclusions.")
    last_error = models.CharField(max_length=300, blank=True)
    failing_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When its author was told that many of its messages could not be delivered."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agency", "-created_at"], name="campaign_agency_recent_idx"),
            # The tick's scans: scheduled ones due, and sending/paused ones to finish or re-hold.
            models.Index(fields=["status", "send_at"], name="campaign_status_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
            models.CheckConstraint(
                condition=Q(ppv_price__isnull=True) | Q(ppv_price__gt=0), name="campaign_ppv_price_positive"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="campaign_name_set"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"

    @property
    def media_count(self) -> int:
        return len(self.media or [])

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE

    @property
    def is_cancellable(self) -> bool:
        return self.status in CANCELLABLE

    def delivery_key(self, fan_id: int) -> str:
        return f"campaign-{self.pk}-fan-{fan_id}"


class CampaignSettings(models.Model):
    """An agency's campaign rules: above how many fans a campaign from a member who cannot
    approve (a chatter) waits for an owner's or manager's approval."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="campaign_settings")
    approval_above = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Campaigns to more fans than this need an owner's or manager's approval; empty: never.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "campaign settings"

    def __str__(self) -> str:
        return f"Campaign settings of {self.agency}"
