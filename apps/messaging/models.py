"""Fan CRM and chatter inbox data: fans, their conversations, messages and purchases, message
templates, saved segments, AI drafts and the per-agency rules that tier fans.

A Fan belongs to one creator on one platform. Money is Decimal in the creator's currency; the
four spend buckets and their total are kept together by ``purchase_record`` (services) and the
database checks that the total is their sum. Conversation carries the few denormalised columns the
inbox sorts and filters on (needs reply, waiting since, fan value, last message), written only by
the messaging services, so the inbox list is one indexed query whatever the number of messages.

Tiers and lifecycle are not stored on the fan: they are computed from spend and activity in one
place, ``apps/messaging/tiers.py``, against the agency's ``FanRules``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import Exact

from apps.accounts.models import PLATFORMS, Agency, Creator, TenantQuerySet

Platform = models.TextChoices("Platform", [(key.upper(), (key, label)) for key, label in PLATFORMS.items()])
ZERO = Decimal("0")


class FanRules(models.Model):
    """An agency's thresholds for spend tiers and lifecycle stages (defaults in tiers.py)."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="fan_rules")
    whale_min = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("500.00"))
    high_min = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("100.00"))
    mid_min = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("25.00"))
    low_min = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.01"))
    new_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)], help_text="Subscribed less than this."
    )
    at_risk_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)], help_text="Silent at least this long."
    )
    churned_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(2), MaxValueValidator(730)], help_text="Silent at least this long."
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "fan rules"
        verbose_name_plural = "fan rules"
        constraints = [
            models.CheckConstraint(
                condition=Q(low_min__gt=0)
                & Q(mid_min__gt=F("low_min"))
                & Q(high_min__gt=F("mid_min"))
                & Q(whale_min__gt=F("high_min")),
                name="fanrules_tiers_ordered",
            ),
            models.CheckConstraint(condition=Q(churned_days__gt=F("at_risk_days")), name="fanrules_lifecycle_ordered"),
        ]

    def __str__(self) -> str:
        return f"Fan rules of {self.agency}"


class SubscriptionState(models.TextChoices):
    ACTIVE = "active", "Subscribed"
    EXPIRED = "expired", "Expired"
    NONE = "none", "Follower (never subscribed)"


class Fan(models.Model):
    """A subscriber or follower of one creator on one platform."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="fans")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    platform_fan_id = models.CharField(max_length=128, help_text="The fan's id on the platform.")
    username = models.CharField(max_length=80)
    display_name = models.CharField(max_length=120, blank=True)
    subscribed_since = models.DateTimeField(null=True, blank=True)
    subscription_state = models.CharField(
        max_length=8, choices=SubscriptionState.choices, default=SubscriptionState.ACTIVE
    )
    renew_on = models.BooleanField(default=True, help_text="Auto-renewal switched on by the fan.")
    subscription_expires_at = models.DateTimeField(null=True, blank=True)
    spent_subscriptions = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    spent_tips = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    spent_ppv = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    spent_messages = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    total_spent = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    ppv_offered = models.PositiveIntegerField(default=0, help_text="PPV messages sent to the fan.")
    ppv_bought = models.PositiveIntegerField(default=0, help_text="PPV messages the fan unlocked.")
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    last_active_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-total_spent", "id"]
        indexes = [
            models.Index(fields=["creator", "-total_spent"], name="fan_creator_spent"),
            models.Index(fields=["agency", "-total_spent"], name="fan_agency_spent"),
            models.Index(fields=["creator", "last_active_at"], name="fan_creator_active"),
            models.Index(fields=["creator", "last_purchase_at"], name="fan_creator_purchase"),
            models.Index(fields=["creator", "username"], name="fan_creator_username"),
            # Segment counts and the fan list's paginator count: every column a segment filter
            # reads (tags aside), so PostgreSQL counts with an index-only scan instead of reading
            # the wide fan rows. docs/explain/messaging.md has the plans.
            models.Index(
                fields=[
                    "agency",
                    "creator",
                    "subscription_state",
                    "last_active_at",
                    "subscribed_since",
                    "renew_on",
                    "total_spent",
                    "last_purchase_at",
                    "platform",
                    "id",
                ],
                name="fan_segment_filters",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["creator", "platform", "platform_fan_id"], name="fan_unique_per_platform"),
            models.CheckConstraint(
                condition=Q(spent_subscriptions__gte=0)
                & Q(spent_tips__gte=0)
                & Q(spent_ppv__gte=0)
                & Q(spent_messages__gte=0),
                name="fan_spend_not_negative",
            ),
            # Compared to the cent: SQLite keeps decimals as binary floats, where 9.99 + 12.50 is
            # not 22.49 and an ordinary purchase failed the check; numeric is exact on PostgreSQL.
            models.CheckConstraint(
                condition=Exact(
                    Round(F("total_spent"), 2),
                    Round(F("spent_subscriptions") + F("spent_tips") + F("spent_ppv") + F("spent_messages"), 2),
                ),
                name="fan_total_is_sum",
            ),
            models.CheckConstraint(condition=Q(ppv_bought__lte=F("ppv_offered")), name="fan_ppv_bought_le_offered"),
            models.CheckConstraint(
                condition=Q(subscription_state__in=SubscriptionState.values), name="fan_subscription_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def first_name(self) -> str:
        return (self.display_name.split() or [""])[0]

    @property
    def ppv_buy_rate(self) -> float | None:
        return self.ppv_bought / self.ppv_offered if self.ppv_offered else None


class FanTag(models.Model):
    """A label on a fan ("vip", "likes feet"). Its own table so segments filter it on every database."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=40)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["creator", "name"], name="fantag_creator_name"),
            # The segments' tag filter, fan ids by tag name read from the index: PostgreSQL's
            # (name only) and SQLite's (the agency's); segments._tagged_q says why they differ ...
            models.Index(fields=["name", "fan"], name="fantag_name_fan"),
            models.Index(fields=["agency", "name", "fan"], name="fantag_agency_name_fan"),
            # ... and the inbox's list of an agency's tag names, read in name order.
            models.Index(fields=["agency", "name", "creator"], name="fantag_agency_name"),
        ]
        constraints = [models.UniqueConstraint(fields=["fan", "name"], name="fantag_unique_per_fan")]

    def __str__(self) -> str:
        return self.name


class FanNote(models.Model):
    """A member's note about a fan, shown in the inbox sidebar."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["fan", "-created_at"], name="fannote_fan_time")]

    def __str__(self) -> str:
        return self.text[:40]


class Conversation(models.Model):
    """The direct-message thread between a creator and one fan (one per fan).

    ``needs_reply`` and ``waiting_since`` say whether the last word is the fan's and since when;
    ``fan_value`` mirrors the fan's total spend so the inbox sorts by value without a join. The
    soft lock (``locked_by`` until ``locked_until``) tells other chatters who is answering.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="conversations")
    fan = models.OneToOneField(Fan, on_delete=models.CASCADE, related_name="conversation")
    needs_reply = models.BooleanField(default=False)
    waiting_since = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    fan_value = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=140, blank=True)
    last_message_direction = models.CharField(max_length=3, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-needs_reply", "-fan_value", "waiting_since", "-last_message_at"]
        indexes = [
            models.Index(fields=["agency", "-needs_reply", "-fan_value", "waiting_since"], name="conv_agency_priority"),
            models.Index(
                fields=["creator", "-needs_reply", "-fan_value", "waiting_since"], name="conv_creator_priority"
            ),
            models.Index(fields=["creator", "-last_message_at"], name="conv_creator_recent"),
            # The inbox's count of visible conversations, as an index-only scan.
            models.Index(fields=["agency", "creator"], name="conv_agency_creator"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(needs_reply=False) | Q(waiting_since__isnull=False), name="conv_waiting_since_when_needed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.creator} ↔ {self.fan}"


class Direction(models.TextChoices):
    INBOUND = "in", "From the fan"
    OUTBOUND = "out", "To the fan"


class Source(models.TextChoices):
    FAN = "fan", "Fan"
    HUMAN = "human", "Typed by a member"
    AI_DRAFT = "ai_draft", "AI draft"
    TEMPLATE = "template", "Template"
    AUTOMATION = "automation", "Automation"
    CAMPAIGN = "campaign", "Campaign"


class MessageStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


class Message(models.Model):
    """One message in a conversation, from the fan or sent in the creator's name.

    An outbound message records who sent it, where its text came from and, when it started as an
    AI draft or a template, how much the member changed it (``edit_ratio``, 0 = sent as suggested,
    1 = rewritten): that is the audit log owners read. It reaches the platform as a Delivery
    (apps/delivery) with the same ``idempotency_key``.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    text = models.TextField(blank=True)
    media_count = models.PositiveSmallIntegerField(default=0)
    ppv_price = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    unlocked_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_by_email = models.EmailField(blank=True, help_text="Kept for the audit log if the user is deleted.")
    draft = models.ForeignKey("Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template = models.ForeignKey("MessageTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    suggested_text = models.TextField(blank=True, help_text="The draft or template text before the member's edits.")
    edit_ratio = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    idempotency_key = models.CharField(max_length=64, blank=True)
    platform_message_id = models.CharField(max_length=128, blank=True)
    error = models.CharField(max_length=300, blank=True)
    campaign_id = models.BigIntegerField(
        null=True, blank=True, help_text="The campaign (apps.campaigns) that sent it, if one did: an id, not a key."
    )
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["conversation", "-created_at", "-id"], name="message_conv_time"),
            models.Index(fields=["agency", "direction", "-created_at"], name="message_agency_audit"),
            # A campaign's unlocks and revenue (campaign pages); partial: most messages have none.
            models.Index(fields=["campaign_id"], condition=Q(campaign_id__isnull=False), name="message_campaign_idx"),
            # PPV offers still locked, newest first per creator: what the PPV follow-up automation
            # scans every tick; partial, so the many plain messages stay out of it.
            models.Index(
                fields=["creator", "sent_at"],
                condition=Q(ppv_price__isnull=False, unlocked_at__isnull=True),
                name="message_ppv_locked_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(direction__in=Direction.values), name="message_direction_valid"),
            models.CheckConstraint(condition=Q(source__in=Source.values), name="message_source_valid"),
            models.CheckConstraint(
                condition=Q(ppv_price__isnull=True) | Q(ppv_price__gt=0), name="message_ppv_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(direction=Direction.INBOUND, source=Source.FAN)
                | (Q(direction=Direction.OUTBOUND) & ~Q(source=Source.FAN)),
                name="message_source_matches_direction",
            ),
            models.CheckConstraint(
                condition=Q(edit_ratio__isnull=True) | (Q(edit_ratio__gte=0) & Q(edit_ratio__lte=1)),
                name="message_edit_ratio_range",
            ),
            models.UniqueConstraint(
                fields=["agency", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="message_idempotency_key_unique",
            ),
            models.UniqueConstraint(
                fields=["conversation", "platform_message_id"],
                condition=~Q(platform_message_id=""),
                name="message_platform_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()}: {self.text[:40]}"


class PurchaseKind(models.TextChoices):
    SUBSCRIPTION = "subscription", "Subscription"
    TIP = "tip", "Tip"
    PPV = "ppv", "PPV unlock"
    MESSAGE = "message", "Paid message"


class Purchase(models.Model):
    """Money a fan paid: a subscription, a tip, a PPV unlock or a paid message."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="purchases")
    kind = models.CharField(max_length=12, choices=PurchaseKind.choices)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    purchased_at = models.DateTimeField()
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="purchases")
    platform_purchase_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-purchased_at", "-id"]
        indexes = [
            models.Index(fields=["fan", "-purchased_at"], name="purchase_fan_time"),
            models.Index(fields=["creator", "purchased_at"], name="purchase_creator_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(condition=Q(kind__in=PurchaseKind.values), name="purchase_kind_valid"),
            models.UniqueConstraint(
                fields=["creator", "platform_purchase_id"],
                condition=~Q(platform_purchase_id=""),
                name="purchase_platform_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency}"


class TemplateCategory(models.TextChoices):
    WELCOME = "welcome", "Welcome"
    REENGAGEMENT = "reengagement", "Re-engagement"
    PPV_UPSELL = "ppv_upsell", "PPV upsell"
    THANK_YOU = "thank_you", "Thank-you"
    BIRTHDAY = "birthday", "Birthday or anniversary"
    RENEWAL = "renewal", "Renewal reminder"
    CUSTOM = "custom", "Custom"


class MessageTemplate(models.Model):
    """Reusable message text with variables such as ``{fan.first_name|babe}`` (see templating.py).

    A template without a creator is shared by all of the agency's creators.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    category = models.CharField(max_length=16, choices=TemplateCategory.choices, default=TemplateCategory.CUSTOM)
    text = models.TextField(max_length=2000)
    use_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["category", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "name"], name="template_unique_name_per_agency"),
            models.CheckConstraint(condition=Q(category__in=TemplateCategory.values), name="template_category_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Segment(models.Model):
    """A saved, live filter over fans (see segments.py for the filter keys). Without a creator it
    spans every creator the member may see."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    filters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["agency", "name"], name="segment_unique_name_per_agency")]

    def __str__(self) -> str:
        return self.name


class DraftKind(models.TextChoices):
    REPLY = "reply", "Reply"
    UPSELL = "upsell", "PPV upsell"


class DraftStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a member"
    SENT = "sent", "Sent"
    DISCARDED = "discarded", "Discarded"


class Draft(models.Model):
    """An AI-suggested message waiting for a member's decision, with its personalization score."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="drafts")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=DraftKind.choices, default=DraftKind.REPLY)
    text = models.TextField()
    score = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    factors = models.JSONField(default=dict, blank=True)
    suggestions = models.JSONField(default=list, blank=True)
    suggested_price = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    price_reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=DraftStatus.choices, default=DraftStatus.PENDING)
    provider = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["conversation", "-created_at"], name="draft_conv_time")]
        constraints = [
            models.CheckConstraint(condition=Q(score__lte=100), name="draft_score_range"),
            models.CheckConstraint(
                condition=Q(suggested_price__isnull=True) | Q(suggested_price__gt=0), name="draft_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:40]


class ImportKind(models.TextChoices):
    FANS = "fans", "Fans"
    MESSAGES = "messages", "Messages"
    PURCHASES = "purchases", "Purchases"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed, nothing imported"


class FanImport(models.Model):
    """One CSV import of fans, messages or purchases for a creator: its progress and row report."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ImportKind.choices)
    filename = models.CharField(max_length=200)
    content = models.TextField(help_text="The uploaded CSV, kept until the import has run.")
    status = models.CharField(max_length=8, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_rows = models.PositiveIntegerField(default=0)
    updated_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{row, field, message}] for the report.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(processed_rows__lte=F("total_rows")), name="fanimport_progress_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.filename}"

    @property
    def percent(self) -> int:
        return round(100 * self.processed_rows / self.total_rows) if self.total_rows else 0
