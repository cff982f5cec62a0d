"""The fan CRM's and inbox's API shapes (django-ninja), shared by the modules of apps/messaging/api.

Inputs state their choices and bounds (``Literal``, ``Field(ge=…, le=…)``) so a client, and the
fuzz gate, can tell a valid request from a 422; rules across fields or against stored data (a
platform's text limit, a creator's PPV range, a template's variables) stay in the services and
answer 400 naming the field. Write bodies carry no required field that a lookup depends on, so a
request for another agency's object reaches the lookup and answers 404.

Tiers and lifecycle come from tiers.py against the agency's rules, loaded once per request
(``request_rules``), never stored on the fan.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Schema

from apps.core.openapi import Id
from apps.messaging.models import (
    Conversation,
    Fan,
    FanRules,
    Message,
    MessageStatus,
    PurchaseKind,
    Source,
    SubscriptionState,
    TemplateCategory,
)
from apps.messaging.tiers import Lifecycle, Tier, badges, rules_for

TierName = Literal[tuple(t.value for t in Tier)]
LifecycleName = Literal[tuple(stage.value for stage in Lifecycle)]
CategoryName = Literal[tuple(TemplateCategory.values)]
SourceName = Literal[tuple(value for value in Source.values if value != Source.FAN)]
TagName = Annotated[str, Field(min_length=1, max_length=40)]
Count32 = Annotated[int, Field(ge=0, le=2**31 - 1)]


def request_rules(request: HttpRequest, agency_id: int) -> FanRules:
    """The agency's fan rules, read once per request (every fan on a page shares them)."""
    rules = getattr(request, "_messaging_fan_rules", None)
    if rules is None or rules.agency_id != agency_id:
        rules = rules_for(agency_id)
        request._messaging_fan_rules = rules
        request._messaging_now = timezone.now()
    return rules


def _badges(fan: Fan, context: Any):
    request = (context or {}).get("request")
    rules = request_rules(request, fan.agency_id) if request is not None else rules_for(fan.agency_id)
    return badges(fan, rules, getattr(request, "_messaging_now", None))


# --- Fans ---------------------------------------------------------------------------------------


class SpendOut(Schema):
    subscriptions: Decimal
    tips: Decimal
    ppv: Decimal
    messages: Decimal
    total: Decimal
    currency: str = Field(description="The creator's currency.")


class FanOut(Schema):
    id: int
    creator_id: int
    platform: str
    platform_fan_id: str
    username: str
    display_name: str
    subscription_state: SubscriptionState
    renew_on: bool
    subscribed_since: datetime | None
    subscription_expires_at: datetime | None
    last_purchase_at: datetime | None
    last_active_at: datetime | None
    timezone: str
    tier: TierName = Field(description="Spend tier from the agency's fan rules (docs/messaging.md).")
    lifecycle: LifecycleName
    spend: SpendOut
    ppv_offered: int
    ppv_bought: int
    ppv_buy_rate: float | None = Field(description="PPV unlocked ÷ PPV offered; null when none was offered.")
    tags: list[str]
    created_at: datetime

    @staticmethod
    def resolve_tier(obj: Fan, context) -> str:
        return _badges(obj, context).tier.value

    @staticmethod
    def resolve_lifecycle(obj: Fan, context) -> str:
        return _badges(obj, context).lifecycle.value

    @staticmethod
    def resolve_spend(obj: Fan) -> dict:
        return {
            "subscriptions": obj.spent_subscriptions,
            "tips": obj.spent_tips,
            "ppv": obj.spent_ppv,
            "messages": obj.spent_messages,
            "total": obj.total_spent,
            "currency": obj.creator.currency,
        }

    @staticmethod
    def resolve_tags(obj: Fan) -> list[str]:
        return sorted(tag.name for tag in obj.tags.all())  # prefetched by the operations


class NoteOut(Schema):
    id: int
    text: str
    author_email: str | None
    created_at: datetime

    @staticmethod
    def resolve_author_email(obj) -> str | None:
        return obj.author.email if obj.author_id else None


class FanDetailOut(FanOut):
    custom_fields: dict[str, Any]
    conversation_id: int | None
    notes: list[NoteOut] = Field(description="The latest notes, newest first.")

    @staticmethod
    def resolve_conversation_id(obj: Fan) -> int | None:
        return getattr(obj, "conversation_pk", None)

    @staticmethod
    def resolve_notes(obj: Fan) -> list:
        return getattr(obj, "latest_notes", [])


class FanPatchIn(Schema):
    tags: list[TagName] | None = Field(
        None, max_length=50, description="Replaces the fan's tags (lower-cased); omit to leave them."
    )


class NoteIn(Schema):
    text: str = Field("", max_length=2000)


class PurchaseOut(Schema):
    id: int
    kind: PurchaseKind
    amount: Decimal
    currency: str
    purchased_at: datetime
    message_id: int | None
    platform_purchase_id: str


# --- Fan rules ----------------------------------------------------------------------------------

Threshold = Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)]


class FanRulesOut(Schema):
    whale_min: Decimal
    high_min: Decimal
    mid_min: Decimal
    low_min: Decimal
    new_days: int
    at_risk_days: int
    churned_days: int
    updated_at: datetime | None = Field(description="null while the agency uses the defaults.")

    @staticmethod
    def resolve_updated_at(obj: FanRules) -> datetime | None:
        return obj.updated_at if obj.pk else None


class FanRulesPatchIn(Schema):
    whale_min: Threshold | None = None
    high_min: Threshold | None = None
    mid_min: Threshold | None = None
    low_min: Threshold | None = None
    new_days: int | None = Field(None, ge=1, le=365)
    at_risk_days: int | None = Field(None, ge=1, le=365)
    churned_days: int | None = Field(None, ge=2, le=730)


# --- Segments -----------------------------------------------------------------------------------


class SegmentOut(Schema):
    id: int
    name: str
    creator_id: int | None = Field(description="null: spans every creator the reader may see.")
    filters: dict[str, Any]
    fan_count: int | None = Field(
        description="Fans in the segment now, among the creators the caller may see; null when its saved filters "
        "can no longer be read (filters_error says which)."
    )
    filters_error: str | None = Field(
        None, description="Why the saved filters can no longer be read, naming the filter; null when they can."
    )
    created_by_email: str | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_filters(obj) -> dict[str, Any]:
        # Saved as something else than an object (written around the services): filters_error says so.
        return obj.filters if isinstance(obj.filters, dict) else {}

    @staticmethod
    def resolve_created_by_email(obj) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


class SegmentIn(Schema):
    name: str = Field(max_length=200)
    creator_id: Id | None = None
    filters: dict[str, Any] = Field(default_factory=dict, description="Filter keys: docs/api-messaging.md.")


class SegmentPatchIn(Schema):
    name: str | None = Field(None, max_length=200)
    creator_id: Id | None = Field(None, description="Send null to make it span all creators; omit to keep.")
    filters: dict[str, Any] | None = Field(None, description="Replaces the filters ({}: every fan); omit to keep.")


class CountOut(Schema):
    fan_count: int


# --- Templates ----------------------------------------------------------------------------------


class TemplateOut(Schema):
    id: int
    name: str
    category: CategoryName
    text: str
    creator_id: int | None = Field(description="null: shared by all of the agency's creators.")
    use_count: int
    created_by_email: str | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_created_by_email(obj) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


class TemplateIn(Schema):
    name: str = Field(max_length=200)
    text: str = Field(max_length=5000)
    category: CategoryName = TemplateCategory.CUSTOM.value
    creator_id: Id | None = None


class TemplatePatchIn(Schema):
    name: str | None = Field(None, max_length=200)
    text: str | None = Field(None, max_length=5000)
    category: CategoryName | None = None
    creator_id: Id | None = Field(None, description="Send null to share it with all creators; omit to keep.")


class PersonalizationOut(Schema):
    score: int = Field(ge=0, le=100)
    factors: dict[str, int] = Field(description="Points per factor: uses name, refers to history, fits the tier, …")
    suggestions: list[str]


class RenderOut(Schema):
    text: str
    variables: list[str]
    fallbacks_used: list[str] = Field(description="Variables the fan had no value for: their fallback was used.")
    personalization: PersonalizationOut = Field(description="apps/messaging/personalization.py explains the factors.")


# --- Conversations and messages -----------------------------------------------------------------


class FanBriefOut(Schema):
    id: int
    username: str
    display_name: str
    platform: str
    total_spent: Decimal
    tier: TierName
    lifecycle: LifecycleName

    @staticmethod
    def resolve_tier(obj: Fan, context) -> str:
        return _badges(obj, context).tier.value

    @staticmethod
    def resolve_lifecycle(obj: Fan, context) -> str:
        return _badges(obj, context).lifecycle.value


class ConversationOut(Schema):
    id: int
    creator_id: int
    fan: FanBriefOut
    needs_reply: bool
    waiting_since: datetime | None
    unread_count: int
    fan_value: Decimal
    message_count: int = Field(description="Send it back as seen_message_count to detect a colleague's answer.")
    last_message_at: datetime | None
    last_message_preview: str
    last_message_direction: str
    locked_by_email: str | None = Field(description="Who is answering now (the soft lock), if anyone.")
    locked_until: datetime | None

    @staticmethod
    def resolve_locked_by_email(obj: Conversation) -> str | None:
        live = obj.locked_by_id and obj.locked_until and obj.locked_until > timezone.now()
        return obj.locked_by.email if live else None

    @staticmethod
    def resolve_locked_until(obj: Conversation) -> datetime | None:
        live = obj.locked_by_id and obj.locked_until and obj.locked_until > timezone.now()
        return obj.locked_until if live else None


class MessageOut(Schema):
    id: int
    conversation_id: int
    direction: Literal["in", "out"]
    text: str
    media_count: int
    ppv_price: Decimal | None
    unlocked_at: datetime | None
    source: Source
    status: MessageStatus
    sent_by_email: str
    draft_id: int | None
    template_id: int | None
    edit_ratio: Decimal | None = Field(description="0 = sent as suggested, 1 = rewritten; null when typed.")
    idempotency_key: str
    platform_message_id: str
    error: str
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None


class MessagePageOut(Schema):
    items: list[MessageOut] = Field(description="Oldest first.")
    has_more: bool = Field(description="Older messages exist: ask again with before_id = the first item's id.")
    before_id: int | None = Field(description="The before_id for the next (older) page, when has_more.")


class SendIn(Schema):
    text: str = Field(
        "", max_length=20000, description="Checked against the platform's own limit.", examples=["Missed you! 💕"]
    )
    ppv_price: Decimal | None = Field(None, gt=0, max_digits=8, decimal_places=2)
    media_count: int = Field(0, ge=0, le=100)
    draft_id: Id | None = None
    template_id: Id | None = None
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=64, description="Or the Idempotency-Key header; a repeat answers 200."
    )
    seen_message_count: Count32 | None = Field(
        None, description="The conversation's message_count you answered; a different one now is a 409."
    )


class AuditOut(Schema):
    id: int
    creator_id: int
    conversation_id: int
    fan_id: int
    fan_username: str
    text: str
    ppv_price: Decimal | None
    source: Source
    status: MessageStatus
    sent_by_email: str
    suggested_text: str
    edit_ratio: Decimal | None
    draft_id: int | None
    template_id: int | None
    created_at: datetime

    @staticmethod
    def resolve_fan_username(obj: Message) -> str:
        return obj.fan.username
