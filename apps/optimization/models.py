"""Optimization data: performance series per creator, PPV offers, detected anomalies, members'
preferences, and the recommendations of the nightly run with their outcomes.

Series are stored wide (one row per creator and day, one per creator and UTC hour) rather than
one row per metric: the nightly run reads a year of ten metrics for every creator, and 182,500
wide rows load in a fraction of the time 1.8 million narrow ones take. ``DAILY_METRICS`` names the
columns the engines read; money is Decimal in the database and becomes float only inside the
NumPy engines.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Agency, Creator, TenantQuerySet


class Source(models.TextChoices):
    DEMO = "demo", "Demo data"
    IMPORT = "import", "CSV import"
    CAMPAIGN = "campaign", "Campaign"
    CONNECTOR = "connector", "Platform connection"
    MANUAL = "manual", "Entered by hand"


# Daily metric columns, in the order the nightly run and the charts read them: (field, label, is money).
DAILY_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("revenue_subscriptions", "Subscription revenue", True),
    ("revenue_tips", "Tips", True),
    ("revenue_ppv", "PPV revenue", True),
    ("revenue_messages", "Paid message revenue", True),
    ("new_subscribers", "New subscribers", False),
    ("churned_subscribers", "Churned subscribers", False),
    ("posts", "Posts", False),
    ("engagement", "Engagement (likes + comments)", False),
    ("messages_received", "Fan messages", False),
    ("ppv_unlocks", "PPV unlocks", False),
)
MONEY_METRICS = tuple(name for name, _label, money in DAILY_METRICS if money)
# Series the anomaly detector also watches that are sums or ratios of the stored columns.
DERIVED_METRICS: dict[str, str] = {"revenue_total": "Total revenue", "engagement_per_post": "Engagement per post"}
METRIC_LABELS: dict[str, str] = {name: label for name, label, _money in DAILY_METRICS} | DERIVED_METRICS
# HourlyPerformance columns the hourly anomaly detector watches (per UTC hour).
HOURLY_METRICS: dict[str, str] = {"messages_sent": "Messages sent (hourly)", "message_replies": "Fan replies (hourly)"}
# Every series an Anomaly row can name: daily columns, derived series and hourly columns.
ANOMALY_LABELS: dict[str, str] = METRIC_LABELS | HOURLY_METRICS


def _money() -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))


class DailyPerformance(models.Model):
    """One creator's results on one day (the creator's local calendar day)."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="daily_performance")
    day = models.DateField()
    revenue_subscriptions = _money()
    revenue_tips = _money()
    revenue_ppv = _money()
    revenue_messages = _money()
    new_subscribers = models.PositiveIntegerField(default=0)
    churned_subscribers = models.PositiveIntegerField(default=0)
    posts = models.PositiveIntegerField(default=0)
    engagement = models.PositiveIntegerField(default=0, help_text="Likes plus comments on the day's posts.")
    messages_received = models.PositiveIntegerField(default=0)
    ppv_unlocks = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["creator", "day"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "day"], name="daily_performance_one_per_day"),
            *(
                models.CheckConstraint(condition=Q(**{f"{name}__gte": 0}), name=f"daily_{name}_not_negative")
                for name in MONEY_METRICS
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creator} {self.day}"

    @property
    def revenue_total(self) -> Decimal:
        return sum((getattr(self, name) for name in MONEY_METRICS), Decimal("0"))


class HourlyPerformance(models.Model):
    """One creator's activity in one UTC hour: what the timing engine and hourly anomalies read."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="hourly_performance")
    hour = models.DateTimeField(help_text="Start of the hour, UTC.")
    revenue = _money()
    engagement = models.PositiveIntegerField(default=0)
    messages_sent = models.PositiveIntegerField(default=0, help_text="Messages the creator's team sent to fans.")
    message_replies = models.PositiveIntegerField(default=0, help_text="Fan replies and purchases those messages drew.")
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["creator", "hour"]
        # The hourly task first asks which creators have rows in the last hours (nightly.run_hourly).
        indexes = [models.Index(fields=["hour"], name="hourly_performance_hour")]
        constraints = [
            models.UniqueConstraint(fields=["creator", "hour"], name="hourly_performance_one_per_hour"),
            models.CheckConstraint(condition=Q(revenue__gte=0), name="hourly_revenue_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.creator} {self.hour:%Y-%m-%d %H}:00"


class Offer(models.Model):
    """A PPV price put in front of fans, with what it earned: the pricing engine's evidence."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="offers")
    sent_at = models.DateTimeField()
    price = models.DecimalField(max_digits=8, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    recipients = models.PositiveIntegerField()
    unlocks = models.PositiveIntegerField(default=0)
    revenue = _money()
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The PPV campaign that made this offer, when it came from one (one offer per price it explored).",
    )  # fmt: skip
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=128, blank=True, help_text="The row's id in an import or platform.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["agency", "sent_at"], name="offer_agency_time")]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="offer_price_positive"),
            models.CheckConstraint(
                condition=Q(unlocks__lte=models.F("recipients")), name="offer_unlocks_le_recipients"
            ),
            models.CheckConstraint(condition=Q(revenue__gte=0), name="offer_revenue_not_negative"),
            models.UniqueConstraint(
                fields=["creator", "external_id"], condition=~Q(external_id=""), name="offer_unique_external_id"
            ),
            # One offer per campaign, or per price of a campaign exploring prices (campaign_offers.py).
            models.UniqueConstraint(
                fields=["campaign", "price"], condition=Q(campaign__isnull=False), name="offer_one_per_campaign_price"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creator} ${self.price} to {self.recipients}"

    @property
    def unlock_rate(self) -> float:
        return self.unlocks / self.recipients if self.recipients else 0.0


class Strategy(models.TextChoices):
    REVENUE_MAX = "revenue_max", "Most revenue"
    BALANCED = "balanced", "Balanced"
    CONVERSION_MAX = "conversion_max", "Most unlocks"


class Risk(models.TextChoices):
    CONSERVATIVE = "conservative", "Conservative"
    MODERATE = "moderate", "Moderate"
    AGGRESSIVE = "aggressive", "Aggressive"


class Sensitivity(models.TextChoices):
    LOW = "low", "Low (fewer alerts)"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High (more alerts)"


class OptimizationSettings(models.Model):
    """How the agency wants to be advised. One row per agency, plus optional per-creator overrides."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.OneToOneField(
        Creator, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty for the agency-wide default.",
    )  # fmt: skip
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.BALANCED)
    risk = models.CharField(max_length=16, choices=Risk.choices, default=Risk.MODERATE)
    sensitivity = models.CharField(max_length=8, choices=Sensitivity.choices, default=Sensitivity.MEDIUM)
    explore_prices = models.BooleanField(
        default=False, help_text="PPV campaigns may try nearby prices (Thompson sampling) to learn faster."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "optimization settings"
        constraints = [
            models.UniqueConstraint(
                fields=["agency"], condition=Q(creator__isnull=True), name="optsettings_one_agency_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creator or self.agency}: {self.strategy}, {self.risk}, {self.sensitivity}"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class Anomaly(models.Model):
    """A value the detector found outside what the creator's history leads one to expect."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="anomalies")
    metric = models.CharField(max_length=32, help_text="A DailyPerformance column or a derived series (METRIC_LABELS).")
    granularity = models.CharField(max_length=5, choices=[("day", "Daily"), ("hour", "Hourly")], default="day")
    at = models.DateTimeField(help_text="Start of the day (creator's midnight, in UTC) or of the hour.")
    value = models.FloatField()
    expected_low = models.FloatField()
    expected_high = models.FloatField()
    score = models.FloatField(help_text="The detector's score in [0, 1].")
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "anomalies"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["agency", "status", "-at"], name="anomaly_agency_status_time")]
        constraints = [
            models.UniqueConstraint(fields=["creator", "metric", "granularity", "at"], name="anomaly_one_per_point"),
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=1), name="anomaly_score_in_unit_range"),
        ]

    def __str__(self) -> str:
        return f"{self.creator} {ANOMALY_LABELS.get(self.metric, self.metric)} {self.at:%Y-%m-%d %H:%M}"

    @property
    def is_money(self) -> bool:
        return self.metric in MONEY_METRICS or self.metric == "revenue_total"

    @property
    def direction(self) -> str:
        if self.value > self.expected_high:
            return "above"
        if self.value < self.expected_low:
            return "below"
        return "within"


# Service metrics the service-anomaly detector watches per UTC hour (service_anomalies.py): three
# platform-wide ones read from monitoring's rollups, one per agency from the AI ledger.
SERVICE_METRICS: dict[str, str] = {
    "http_requests": "Requests per hour",
    "http_error_rate": "Server error rate (5xx share)",
    "http_latency_p95": "Request latency p95 (ms)",
    "ai_cost": "AI cost per hour (USD)",
}


class ServiceAnomaly(models.Model):
    """An hour in which a service metric left the range its history leads one to expect: platform
    wide (no agency; staff hear of it) or one agency's (its AI spend; its owners and managers do)."""

    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty for a platform-wide metric (request rate, errors, latency).",
    )  # fmt: skip
    metric = models.CharField(max_length=32, help_text="A key of SERVICE_METRICS.")
    at = models.DateTimeField(help_text="Start of the UTC hour.")
    value = models.FloatField()
    expected_low = models.FloatField()
    expected_high = models.FloatField()
    score = models.FloatField(help_text="The detector's score in [0, 1].")
    severity = models.CharField(max_length=8, choices=Severity.choices)
    alert_key = models.CharField(max_length=200, blank=True, help_text="The monitoring alert it raised, if any.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "service anomalies"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["agency", "-at"], name="service_anomaly_agency_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "at"], condition=Q(agency__isnull=True), name="service_anomaly_one_platform_point"
            ),
            models.UniqueConstraint(
                fields=["agency", "metric", "at"], condition=Q(agency__isnull=False), name="service_anomaly_one_point"
            ),
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=1), name="service_anomaly_score_in_unit_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency or 'Platform'} {SERVICE_METRICS.get(self.metric, self.metric)} {self.at:%Y-%m-%d %H}:00"

    @property
    def label(self) -> str:
        return SERVICE_METRICS.get(self.metric, self.metric)

    @property
    def direction(self) -> str:
        if self.value > self.expected_high:
            return "above"
        if self.value < self.expected_low:
            return "below"
        return "within"


class Recommendation(models.Model):
    """A suggested price, time or action for a creator, and — once accepted — how it turned out."""

    class Kind(models.TextChoices):
        PRICE = "price", "PPV price"
        POST_TIME = "post_time", "Posting time"
        MESSAGE_TIME = "message_time", "Messaging time"
        ANOMALY = "anomaly", "Investigate a change"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"
        EXPIRED = "expired", "Replaced by a newer one"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Waiting for results"
        MET = "met", "Met expectations"
        MISSED = "missed", "Fell short"
        NO_DATA = "no_data", "No results to judge"

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="recommendations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # "Investigate a change" advice is daily or hourly, and one of each may be open at once (the
    # hourly task and the nightly run must not replace each other's advice); "" for other kinds.
    granularity = models.CharField(
        max_length=5, choices=[("", "—"), ("day", "Daily"), ("hour", "Hourly")], default="", blank=True
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    headline = models.CharField(
        max_length=200, help_text='Plain language, e.g. "Raise PPV to $14: +18% expected revenue".'
    )
    explanation = models.TextField(blank=True)
    strategy = models.CharField(max_length=16, choices=Strategy.choices, blank=True)
    risk = models.CharField(max_length=16, choices=Risk.choices, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The engine's answer: price, slots, curve points.")
    expected_value = models.FloatField(help_text="Revenue per recipient for a price, engagement per send for a time.")
    baseline_value = models.FloatField(
        null=True, blank=True, help_text="The same figure for what the creator does today."
    )
    confidence = models.FloatField(help_text="0..1: the engine's probability that this beats today's choice.")
    anomaly = models.ForeignKey(Anomaly, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    run_date = models.DateField(help_text="The nightly run (or the day of the request) that produced it.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    dismiss_reason = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    outcome_value = models.FloatField(null=True, blank=True, help_text="What it earned, in expected_value's unit.")
    outcome_samples = models.PositiveIntegerField(default=0, help_text="Offers or sends the outcome was measured on.")
    outcome_measured_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agency", "status", "-created_at"], name="rec_agency_status_time"),
            models.Index(fields=["agency", "kind", "outcome"], name="rec_agency_kind_outcome"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["creator", "kind", "granularity"], condition=Q(status="open"), name="rec_one_open_per_kind"
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="rec_confidence_in_unit_range"
            ),
        ]

    def __str__(self) -> str:
        return self.headline

    @property
    def outcome_ratio(self) -> float | None:
        if self.outcome_value is None or not self.expected_value:
            return None
        return self.outcome_value / self.expected_value
