"""Plans (what can be bought) and each agency's Subscription (what it has), with the audit trail
of every change to a subscription.

Invariants stated in the database: one subscription per agency, a known status and source, a
trial has its end date, a period ends after it starts, plan limits are not negative (``None``
means unlimited). What the limits mean and where they are enforced: apps/billing/entitlements.py.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import Agency, TenantQuerySet

FEATURES = ("inbox", "campaigns", "optimization", "integrations")


class Plan(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    position = models.PositiveSmallIntegerField(default=100, help_text="Order on the pricing page, cheapest first.")
    description = models.CharField(max_length=200, blank=True)
    monthly_price_usd = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("0.00"))
    max_creators = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    max_seats = models.PositiveIntegerField(
        null=True, blank=True, help_text="Members plus pending invitations. Empty: unlimited."
    )
    ai_credits_monthly = models.PositiveIntegerField(
        null=True, blank=True, help_text="1 credit = $0.01 of AI cost. Empty: unlimited."
    )
    feature_inbox = models.BooleanField(default=True)
    feature_campaigns = models.BooleanField(default=True)
    feature_optimization = models.BooleanField(default=True)
    feature_integrations = models.BooleanField(default=True)
    trial_days = models.PositiveSmallIntegerField(default=14)
    is_public = models.BooleanField(default=True, help_text="Shown on the pricing page.")
    stripe_price_id = models.CharField(
        max_length=100,
        blank=True,
        help_text="The Stripe price (price_…) an owner subscribes to with Checkout. Empty: not sold online.",
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_price_usd__gte=0), name="plan_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    def has_feature(self, feature: str) -> bool:
        return bool(getattr(self, f"feature_{feature}"))


class Subscription(models.Model):
    """The plan an agency is on. Manual (assigned by an admin) in the embedded default; Stripe
    comes later and writes the same row."""

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trial"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    class Source(models.TextChoices):
        MANUAL = "manual", "Manual (assigned by an admin)"
        STRIPE = "stripe", "Stripe"

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="subscription")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIALING)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    overage_allowed = models.BooleanField(
        default=False, help_text="AI use may go past the plan's monthly credits (billed as overage)."
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    # Stripe (docs/billing.md): the customer is made at the first checkout and reused after.
    stripe_customer_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, db_index=True)
    stripe_item_id = models.CharField(max_length=100, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # The moment of the newest Stripe state applied: an older one (an event redelivered late)
    # never rolls the row back.
    stripe_synced_at = models.DateTimeField(null=True, blank=True)
    # Dunning: when the payment failed, and when the grace period ends (the agency is read-only after).
    past_due_since = models.DateTimeField(null=True, blank=True)
    grace_ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~Q(stripe_customer_id=""),
                name="subscription_one_per_stripe_customer",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["trialing", "active", "past_due", "canceled"]),
                name="subscription_status_valid",
            ),
            models.CheckConstraint(condition=Q(source__in=["manual", "stripe"]), name="subscription_source_valid"),
            models.CheckConstraint(
                condition=~Q(status="trialing") | Q(trial_ends_at__isnull=False),
                name="subscription_trial_has_end",
            ),
            models.CheckConstraint(
                condition=Q(current_period_start__isnull=True)
                | Q(current_period_end__isnull=True)
                | Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agency} — {self.plan} ({self.get_status_display()})"


class SubscriptionChange(models.Model):
    """One change to a subscription: who made it, from what to what. Never deleted."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+", db_index=True)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="changes")
    from_plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    from_status = models.CharField(max_length=16, blank=True, choices=Subscription.Status.choices)
    to_status = models.CharField(max_length=16, choices=Subscription.Status.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.agency}: {self.from_plan or '—'} → {self.to_plan} ({self.to_status})"


class BillingEvent(models.Model):
    """One Stripe webhook event, stored before it is processed (never lost, processed once by its
    Stripe id). ``agency`` is empty and ``flagged`` set for an event about a customer we do not know."""

    stripe_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=80, db_index=True)
    created = models.DateTimeField(help_text="When Stripe created the event.")
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=True
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Taken by the delivery processing it (a conditional update), so Stripe is asked with no lock
    # held; a claim older than apps.billing.stripe_sync.CLAIM_TIMEOUT belonged to a lost worker.
    claimed_at = models.DateTimeField(null=True, blank=True)
    flagged = models.BooleanField(default=False, help_text="About a customer or subscription we do not know.")
    error = models.CharField(max_length=500, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class UsageReport(models.Model):
    """One report of an agency's AI overage to Stripe's meter: the credits used in ``month`` past
    the plan's monthly credits and past what earlier reports sent. Written before the call (its
    ``identifier`` is Stripe's idempotency key for the meter event), marked sent after it, so a
    crash in between re-sends the same identifier and Stripe counts it once."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+", db_index=True)
    month = models.DateField()
    sequence = models.PositiveIntegerField()
    credits = models.PositiveIntegerField()
    cumulative_credits = models.PositiveIntegerField(help_text="The month's credits reported up to this one.")
    identifier = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-month", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "month", "sequence"], name="usage_report_sequence_unique"),
            models.CheckConstraint(condition=Q(credits__gt=0), name="usage_report_credits_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.month:%Y-%m} #{self.sequence}: {self.credits}"
