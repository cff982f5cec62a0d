"""Monitoring data: metric rollups, SLOs, alerts and where they are sent, AI budgets.

- ``MetricSample``: one series' events over a minute, an hour or a day (count, sum, min, max and a
  histogram over apps.core.metrics.BOUNDS_MS in b00…b13, so percentiles survive the rollups and
  rollups are plain ``SUM``s). The database sink writes minute rows (several per minute when
  several processes flush); the rollup job sums them into hours and days and applies retention.
- ``SLO``: an objective over recorded events; ``Alert``: a firing or resolved burn-rate or budget
  rule, one firing alert per ``key`` at a time (deduplicated by a partial unique constraint).
- ``AlertWebhook`` / ``WebhookAttempt``: signed webhook receivers and every attempt to reach them.
- ``Budget``: an agency's (or one creator's) monthly AI spending limit.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from apps.accounts.models import Agency, Creator, TenantQuerySet
from apps.core.crypto import EncryptedTextField
from apps.core.metrics import BOUNDS_MS, BUCKETS


class MetricSample(models.Model):
    class Resolution(models.TextChoices):
        MINUTE = "m", "Minute"
        HOUR = "h", "Hour"
        DAY = "d", "Day"

    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=20, default="Count")
    dims_key = models.CharField(max_length=255, blank=True)
    dimensions = models.JSONField(default=dict, blank=True)
    resolution = models.CharField(max_length=1, choices=Resolution.choices, default=Resolution.MINUTE)
    start = models.DateTimeField()
    count = models.BigIntegerField(default=0)
    sum = models.FloatField(default=0)
    min = models.FloatField(default=0)
    max = models.FloatField(default=0)
    b00 = models.BigIntegerField(default=0)
    b01 = models.BigIntegerField(default=0)
    b02 = models.BigIntegerField(default=0)
    b03 = models.BigIntegerField(default=0)
    b04 = models.BigIntegerField(default=0)
    b05 = models.BigIntegerField(default=0)
    b06 = models.BigIntegerField(default=0)
    b07 = models.BigIntegerField(default=0)
    b08 = models.BigIntegerField(default=0)
    b09 = models.BigIntegerField(default=0)
    b10 = models.BigIntegerField(default=0)
    b11 = models.BigIntegerField(default=0)
    b12 = models.BigIntegerField(default=0)
    b13 = models.BigIntegerField(default=0)

    BUCKET_FIELDS = tuple(f"b{i:02d}" for i in range(BUCKETS))

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            models.Index(fields=["name", "resolution", "start"], name="metric_name_res_start"),
            models.Index(fields=["resolution", "start"], name="metric_res_start"),
        ]
        constraints = [
            # Minutes hold a row per process and flush; an hour or a day is one row per series.
            models.UniqueConstraint(
                fields=["name", "dims_key", "resolution", "start"],
                condition=~models.Q(resolution="m"),
                name="metric_rollup_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}{{{self.dims_key}}} {self.get_resolution_display()} {self.start:%Y-%m-%d %H:%M}"

    @property
    def buckets(self) -> list[int]:
        return [getattr(self, name) for name in self.BUCKET_FIELDS]


class SLO(models.Model):
    class Indicator(models.TextChoices):
        API_AVAILABILITY = "api_availability", "API availability (answers other than 5xx)"
        AI_SUCCESS = "ai_success", "AI generation success"
        AI_LATENCY = "ai_latency", "AI latency under a threshold"
        DELIVERY_SUCCESS = "delivery_success", "Delivery success"

    class Window(models.IntegerChoices):
        DAYS_28 = 28, "28 days"
        DAYS_30 = 30, "30 days"

    name = models.CharField(max_length=100, unique=True)
    indicator = models.CharField(max_length=30, choices=Indicator.choices)
    objective = models.DecimalField(
        max_digits=7, decimal_places=4, help_text="Percent of good events, strictly between 0 and 100 (e.g. 99.9)."
    )
    window_days = models.PositiveSmallIntegerField(choices=Window.choices, default=Window.DAYS_30)
    threshold_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="AI latency only: a generation is good when it finishes within this time."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SLO"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(objective__gt=0, objective__lt=100), name="slo_objective_between_0_and_100"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.objective}% over {self.window_days} days)"

    def clean(self) -> None:
        errors = {}
        if self.objective is not None and not Decimal(0) < self.objective < Decimal(100):
            errors["objective"] = "The objective is a percentage strictly between 0 and 100, such as 99.9."
        if self.indicator and self.indicator not in self.Indicator.values:
            errors["indicator"] = f"Unknown indicator “{self.indicator}”."
        if self.indicator == self.Indicator.AI_LATENCY and not self.threshold_ms:
            errors["threshold_ms"] = "An AI latency objective needs a threshold in milliseconds."
        elif self.indicator == self.Indicator.AI_LATENCY and self.threshold_ms not in BOUNDS_MS:
            # The indicator counts good requests from the rollups' histogram buckets, so only a
            # bucket bound can be answered exactly (apps/monitoring/slo.py); no schema change needed.
            choices = ", ".join(f"{bound:g}" for bound in BOUNDS_MS)
            errors["threshold_ms"] = f"Choose one of the histogram bounds (milliseconds): {choices}."
        if errors:
            raise ValidationError(errors)


class Budget(models.Model):
    """A monthly AI spending limit for an agency (creator empty) or one of its creators."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    monthly_usd = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    thresholds = models.JSONField(default=list, blank=True, help_text="Percentages that alert, e.g. [50, 80, 100].")
    hard_stop = models.BooleanField(
        default=False, help_text="Refuse AI requests once the month's spend reaches the budget."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    DEFAULT_THRESHOLDS = (50, 80, 100)

    class Meta:
        ordering = ["agency", "creator"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "creator"], name="budget_one_per_creator"),
            models.UniqueConstraint(
                fields=["agency"], condition=models.Q(creator__isnull=True), name="budget_one_per_agency"
            ),
            models.CheckConstraint(condition=models.Q(monthly_usd__gt=0), name="budget_positive"),
        ]

    def __str__(self) -> str:
        return f"${self.monthly_usd}/month for {self.creator or self.agency}"


class Alert(models.Model):
    class Kind(models.TextChoices):
        SLO_BURN = "slo_burn", "SLO burn rate"
        BUDGET = "budget", "AI budget"
        SINK = "sink", "Metrics sink"
        ANOMALY = "anomaly", "Metric anomaly"

    class Severity(models.TextChoices):
        PAGE = "page", "Page"
        TICKET = "ticket", "Ticket"
        WARNING = "warning", "Warning"
        INFO = "info", "Info"

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty for service alerts (SLOs), which reach operators.",
    )  # fmt: skip
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=200, help_text="Deduplication key: one firing alert per key.")
    slo = models.ForeignKey(SLO, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    budget = models.ForeignKey(Budget, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FIRING)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    values = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When its firing was told to people; empty: beat's redispatch-alerts queues it again.",
    )  # fmt: skip
    resolution_dispatched_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When its resolution was told to people; empty once resolved: beat's redispatch-alerts queues it "
        "again.",
    )  # fmt: skip
    told = models.JSONField(
        default=dict, blank=True,
        help_text="Who was told of each event so far, by channel (membership ids, address digests, webhook ids), so a "
        "retry tells only the others.",
    )  # fmt: skip

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(state="firing"), name="alert_one_firing_per_key"
            ),
        ]
        indexes = [models.Index(fields=["state", "agency"], name="alert_state_agency")]

    def __str__(self) -> str:
        return f"[{self.get_severity_display()}] {self.title}"


class AlertWebhook(models.Model):
    """A receiver of alert events, each signed with its secret (docs/monitoring.md)."""

    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: receives service (SLO) alerts; set: that agency's budget alerts.",
    )  # fmt: skip
    url = models.URLField(max_length=500)
    secret = EncryptedTextField()
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class WebhookAttempt(models.Model):
    """One try at delivering one alert event to one webhook: the delivery log."""

    webhook = models.ForeignKey(AlertWebhook, on_delete=models.CASCADE, related_name="attempts")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="webhook_attempts")
    event = models.CharField(max_length=20)  # alert.fired, alert.resolved
    attempt = models.PositiveSmallIntegerField(default=1)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.FloatField(default=0)
    delivered = models.BooleanField(default=False)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook} #{self.attempt}"
