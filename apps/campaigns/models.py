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
from django.db.models import F, Q

from apps.accounts.models import Agency, Creator, TenantQuerySet

DELIVERY_SOURCE = "campaigns.campaign"
AUTOMATION_SOURCE = "campaigns.automation"
# Deliveries that count toward a fan's frequency cap (CampaignSettings.fan_cap_per_day).
CAPPED_SOURCES = (DELIVERY_SOURCE, AUTOMATION_SOURCE)


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
# Its dead letters may be sent again (a cancelled campaign sends nothing more).
REQUEUEABLE = {CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.COMPLETED}


class CampaignMode(models.TextChoices):
    DIRECT = "direct", "Direct messages (one per fan, personal text)"
    MASS = "mass", "Platform mass message (one call, same text for all)"


class CampaignRepeat(models.TextChoices):
    ONCE = "", "Once"
    DAILY = "daily", "Every day"
    WEEKLY = "weekly", "Every week"


class PersonalizeStatus(models.TextChoices):
    """Where the AI personalisation of a draft stands (personalize.py); "" when never asked."""

    NONE = "", "Not personalised"
    QUEUED = "queued", "Waiting for a worker"
    RUNNING = "running", "Personalising"
    DONE = "done", "Personalised"
    FAILED = "failed", "Could not personalise"


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
    explore_prices = models.BooleanField(
        default=False,
        help_text="Direct PPV campaigns: each fan's price drawn by Thompson sampling across price bands "
        "(settings.CAMPAIGN_PRICE_EXPLORER), within the creator's PPV range.",
    )
    media = models.JSONField(default=list, blank=True, help_text="References of the media attached (vault ids).")
    send_at = models.DateTimeField(null=True, blank=True, help_text="When to send (UTC); empty: as soon as scheduled.")
    exclude_messaged_within_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(720)]
    )
    exclude_no_spend_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    exclude_bought_offer = models.BooleanField(
        default=False, help_text="Leave out fans who already unlocked these media from an earlier campaign."
    )
    mode = models.CharField(max_length=8, choices=CampaignMode.choices, default=CampaignMode.DIRECT)
    repeat = models.CharField(max_length=8, choices=CampaignRepeat.choices, default=CampaignRepeat.ONCE, blank=True)
    repeat_until = models.DateTimeField(null=True, blank=True, help_text="No occurrence is scheduled after this.")
    repeat_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="repeats",
        help_text="The first campaign of a recurring series.",
    )
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    targeted = models.PositiveIntegerField(default=0, help_text="Fans messaged, counted when sending started.")
    excluded = models.PositiveIntegerField(default=0, help_text="Fans of the audience left out by the exclusions.")
    last_error = models.CharField(max_length=300, blank=True)
    failing_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When its author was told that many of its messages could not be delivered."
    )
    # AI personalisation per fan (personalize.py): its progress, counted by the task as it goes.
    # ``personalize_run`` names the current run: a new request or an edit moves it on, so a run
    # still in flight for an older text writes nothing.
    personalize_status = models.CharField(
        max_length=8, choices=PersonalizeStatus.choices, default=PersonalizeStatus.NONE, blank=True
    )
    personalize_run = models.PositiveIntegerField(default=0)
    personalize_total = models.PositiveIntegerField(default=0, help_text="Fans being personalised.")
    personalize_done = models.PositiveIntegerField(default=0, help_text="Of those, written so far.")
    personalize_fallbacks = models.PositiveIntegerField(
        default=0, help_text="Of those written, the ones that kept the template text (refused, failed, too long)."
    )
    personalize_at = models.DateTimeField(
        null=True, blank=True, help_text="When personalisation was asked for, last made progress, or finished."
    )
    personalize_error = models.CharField(max_length=300, blank=True)
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
            models.CheckConstraint(condition=Q(mode__in=CampaignMode.values), name="campaign_mode_valid"),
            models.CheckConstraint(condition=Q(repeat__in=CampaignRepeat.values), name="campaign_repeat_valid"),
            models.CheckConstraint(
                condition=Q(personalize_status__in=PersonalizeStatus.values), name="campaign_personalize_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(personalize_done__lte=F("personalize_total"))
                & Q(personalize_fallbacks__lte=F("personalize_done")),
                name="campaign_personalize_counts",
            ),
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

    @property
    def is_requeueable(self) -> bool:
        return self.status in REQUEUEABLE

    def delivery_key(self, fan_id: int) -> str:
        return f"campaign-{self.pk}-fan-{fan_id}"


class PersonalTextSource(models.TextChoices):
    AI = "ai", "AI-personalised"
    FALLBACK = "fallback", "Template text (the AI's answer was refused, failed or too long)"


class CampaignPersonalText(models.Model):
    """The message one fan of a draft campaign gets instead of the template text: the campaign's
    text rendered for the fan and rewritten by the AI gateway (``source`` "ai"), or the rendered
    text itself where the rewrite was refused, failed or too long ("fallback", kept so the list
    shows every fan). One per campaign and fan; editing the campaign deletes them all. Only "ai"
    rows are read when the campaign starts (a fallback is rendered again, as for any fan)."""

    Source = PersonalTextSource

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="personal_texts")
    fan = models.ForeignKey("messaging.Fan", on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    source = models.CharField(max_length=8, choices=PersonalTextSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["campaign_id", "fan_id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "fan"], name="campaign_personal_text_one_per_fan"),
            models.CheckConstraint(
                condition=Q(source__in=PersonalTextSource.values), name="campaign_personal_text_source_valid"
            ),
            models.CheckConstraint(condition=~Q(text=""), name="campaign_personal_text_set"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → fan {self.fan_id} ({self.source})"


class CampaignSettings(models.Model):
    """An agency's campaign rules: above how many fans a campaign from a member who cannot
    approve (a chatter) waits for an owner's or manager's approval, and how many campaign and
    automation messages one fan may get in 24 hours."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="campaign_settings")
    approval_above = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Campaigns to more fans than this need an owner's or manager's approval; empty: never.",
    )
    fan_cap_per_day = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="At most this many campaign and automation messages reach one fan in 24 hours; empty: no cap.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "campaign settings"

    def __str__(self) -> str:
        return f"Campaign settings of {self.agency}"


class AutomationKind(models.TextChoices):
    WELCOME = "welcome", "Welcome a new subscriber"
    RENEWAL_OFF = "renewal_off", "Renewal switched off"
    EXPIRED = "expired", "Win back an expired subscriber"
    PPV_FOLLOWUP = "ppv_followup", "Follow up an unbought PPV"


class Automation(models.Model):
    """Messages a creator sends by themselves when a fan does something: subscribes, switches
    renewal off, lets the subscription expire, or leaves a PPV unbought. One per creator and
    kind; ``steps`` is the sequence sent after the event (each ``{"delay_minutes", "text",
    "ppv_price", "media"}``, the delay counted from the previous step, the first from the event).
    Only events from ``enabled_at`` on start runs: switching one on never messages the past."""

    Kind = AutomationKind

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="automations")
    kind = models.CharField(max_length=16, choices=AutomationKind.choices)
    enabled = models.BooleanField(default=False)
    enabled_at = models.DateTimeField(null=True, blank=True, help_text="Events from this time on start runs.")
    steps = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["creator_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "kind"], name="automation_one_per_creator_kind"),
            models.CheckConstraint(condition=Q(kind__in=AutomationKind.values), name="automation_kind_valid"),
            models.CheckConstraint(
                condition=Q(enabled=False) | Q(enabled_at__isnull=False), name="automation_enabled_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.creator}"

    @property
    def schedule_summary(self) -> str:
        """Its messages' waits as a member reads them: "after 6 h, then 1 day (PPV 9.00)"."""
        parts = []
        for step in self.steps or []:
            part = wait_label(int(step.get("delay_minutes") or 0))
            if step.get("ppv_price"):
                part += f" (PPV {step['ppv_price']})"
            parts.append(part)
        return ("after " + ", then ".join(parts)) if parts else "no messages"


def wait_label(minutes: int) -> str:
    """5 → "5 min", 90 → "1 h 30 min", 1440 → "1 day", 4320 → "3 days"; 0 → "at once"."""
    if minutes <= 0:
        return "at once"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    pieces = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    pieces += [f"{hours} h"] if hours else []
    pieces += [f"{mins} min"] if mins else []
    return " ".join(pieces)


class AutomationRunStatus(models.TextChoices):
    ACTIVE = "active", "Waiting for its next step"
    DONE = "done", "All steps sent"
    STOPPED = "stopped", "Stopped"


class AutomationRun(models.Model):
    """One fan going through one automation after one event (``trigger``: the subscription, the
    billing period or the PPV message it answers), so an event starts at most one run. ``step``
    is the next step to send, due at ``next_at``; the run stops when the fan replies or buys,
    when the event no longer holds (renewal back on, subscribed again) or when the automation is
    switched off. Its deliveries carry ``source="campaigns.automation"``, the run's id and the
    key ``auto-<run>-step-<n>``."""

    Status = AutomationRunStatus

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs")
    fan = models.ForeignKey("messaging.Fan", on_delete=models.CASCADE, related_name="+")
    trigger = models.CharField(max_length=64, help_text="The event this run answers (one run per event).")
    event_at = models.DateTimeField(help_text="When the event happened (or was first seen).")
    ref_at = models.DateTimeField(
        help_text="The time that names the event on the fan: the subscription's start, the period's end, the "
        "offer's send time. The tick skips events that already have a run by it."
    )
    step = models.PositiveSmallIntegerField(default=0, help_text="The next step to send (0 = the first).")
    next_at = models.DateTimeField(null=True, blank=True, help_text="When the next step is due.")
    status = models.CharField(max_length=8, choices=AutomationRunStatus.choices, default=AutomationRunStatus.ACTIVE)
    stop_reason = models.CharField(max_length=200, blank=True)
    sent = models.PositiveSmallIntegerField(default=0, help_text="Steps handed to the delivery pipeline.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The tick's scan: active runs due.
            models.Index(fields=["status", "next_at"], name="automation_run_due_idx"),
            models.Index(fields=["automation", "-created_at"], name="automation_run_recent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["automation", "fan", "trigger"], name="automation_run_one_per_event"),
            models.CheckConstraint(
                condition=Q(status__in=AutomationRunStatus.values), name="automation_run_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.automation} → fan {self.fan_id} ({self.status})"

    def delivery_key(self, step: int) -> str:
        return f"auto-{self.pk}-step-{step}"
