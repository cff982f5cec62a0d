"""The campaigns API's shapes (django-ninja), for apps/campaigns/api.py; docs/api-campaigns.md.

Inputs state the bounds services.py also holds (a name of 120 characters, 20 media references of
200, 5,000 fans chosen by hand, the exclusions' ranges) so a client, and the fuzz gate, can tell a
valid request from a 422. The rules against stored data stay in services.py and answer 400 naming
the field: the creator's PPV range, the audience platforms' text limits and the safety policy,
known template variables, a send time ahead and at most a year away, "already bought this offer"
only with media, a repeat only with a send time and its end after it, at most a year away.

The edit body (``CampaignPatchIn``) has no required field, so a request for another agency's
campaign reaches the lookup and answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Field, Schema

from apps.campaigns.models import (
    Campaign,
    CampaignMode,
    CampaignRepeat,
    CampaignStatus,
    PersonalizeStatus,
    PersonalTextSource,
)
from apps.campaigns.personalize import is_running
from apps.campaigns.services import MAX_CHOSEN_FANS, MAX_MEDIA, MAX_NAME
from apps.core.openapi import Id
from apps.delivery.models import DeliveryKind, DeliveryStatus

StatusName = Literal[tuple(CampaignStatus.values)]
DeliveryStatusName = Literal[tuple(DeliveryStatus.values)]
RepeatName = Literal[tuple(CampaignRepeat.values)]
ModeName = Literal[tuple(CampaignMode.values)]
DeliveryKindName = Literal[tuple(DeliveryKind.values)]
PersonalizeStatusName = Literal[tuple(PersonalizeStatus.values)]
PersonalTextSourceName = Literal[tuple(PersonalTextSource.values)]
MediaRef = Annotated[str, Field(min_length=1, max_length=200, description="A vault media id.")]
PpvPrice = Annotated[Decimal, Field(gt=0, max_digits=8, decimal_places=2)]
MessagedWithinHours = Annotated[int, Field(ge=1, le=720)]
NoSpendDays = Annotated[int, Field(ge=1, le=3650)]

CENTS = Decimal("0.01")
SEND_AT = (
    "When to send: an ISO 8601 time with an offset, or without one in the creator's timezone; "
    "null: as soon as it is scheduled. Not in the past, at most a year ahead."
)
AUDIENCE = "The audience: a saved segment (resolved live at the send time) or fans chosen by hand, not both."
MODE = (
    '"direct": one message per fan, template variables filled per fan (the default). "mass": one platform-side '
    "mass message per platform account of the audience (one call, the same text for every fan): no {fan.…} "
    "variables, and every audience platform must have mass messages."
)
EXPLORE = (
    "Direct PPV campaigns only: each fan's price is drawn by Thompson sampling across nearby prices in the "
    "creator's PPV range; each price becomes its own offer when the campaign finishes."
)
BOUGHT_OFFER = (
    "Leave out fans who unlocked an earlier PPV campaign of this creator with the same media (the same "
    "references, in any order). Needs media."
)
REPEAT = (
    '"" (once), "daily" or "weekly": when an occurrence starts sending, the next is scheduled a day or a week '
    "later at the same local time in the creator's timezone. Needs send_at."
)
REPEAT_UNTIL = (
    "No occurrence is scheduled after this time (with an offset, or in the creator's timezone without one); "
    "after send_at, at most a year ahead. null: no end. Ignored for a campaign sent once."
)


# --- Output -------------------------------------------------------------------------------------


class CampaignStatsOut(Schema):
    targeted: int = Field(description="Fans messaged, counted when sending started.")
    queued: int = Field(description="Deliveries waiting, held (paused) or being sent (mass mode: their fans).")
    retrying: int = Field(description="Deliveries that failed with a retry scheduled (mass mode: their fans).")
    sent: int = Field(description="Fans reached (mass mode: of mass messages sent, those the platform took).")
    dead: int = Field(description="Deliveries given up on (dead letters); mass mode: the fans they carried.")
    rejected: int = Field(description="Mass mode: fans the platform refused in a mass message it took; else 0.")
    cancelled: int
    sent_last_minute: int
    percent: int = Field(
        ge=0, le=100, description="Sent, rejected, dead and cancelled ÷ targeted; 100 while none is targeted."
    )
    unlocked: int = Field(description="Its PPV messages that fans unlocked.")
    revenue: dict[str, Decimal] = Field(description="What those unlocks paid, per currency.")


class CampaignPersonalizationOut(Schema):
    status: PersonalizeStatusName = Field(
        description='"" (never asked), "queued", "running", "done" or "failed" (see ``error``).'
    )
    running: bool = Field(
        description="Queued or running and heard from in the last 5 minutes; scheduling answers 409 meanwhile."
    )
    total: int = Field(description="Fans being personalised (the audience when it was asked for).")
    done: int = Field(description="Of those, written so far.")
    personalised: int = Field(description="Of those written, the messages the AI wrote.")
    fallbacks: int = Field(description="Of those written, the ones that kept the template text.")
    error: str = Field(description='Why it failed, when ``status`` is "failed".')
    updated_at: datetime | None = Field(description="When it was asked for, last made progress, or finished.")

    @staticmethod
    def from_campaign(campaign: Campaign) -> dict:
        return {
            "status": campaign.personalize_status,
            "running": is_running(campaign),
            "total": campaign.personalize_total,
            "done": campaign.personalize_done,
            "personalised": campaign.personalize_done - campaign.personalize_fallbacks,
            "fallbacks": campaign.personalize_fallbacks,
            "error": campaign.personalize_error,
            "updated_at": campaign.personalize_at,
        }


class PersonalTextOut(Schema):
    fan_id: int
    username: str
    display_name: str
    text: str = Field(description="What this fan gets when the campaign starts.")
    source: PersonalTextSourceName = Field(
        description='"ai": written by the AI; "fallback": the template text (the answer was refused, failed or too '
        "long)."
    )
    created_at: datetime

    @staticmethod
    def resolve_username(obj) -> str:
        return obj.fan.username

    @staticmethod
    def resolve_display_name(obj) -> str:
        return obj.fan.display_name


class CampaignOut(Schema):
    id: int
    creator_id: int
    name: str
    status: StatusName
    text: str
    segment_id: int | None
    fan_count: int = Field(description="Fans chosen by hand (0 with a segment); their ids in the campaign's detail.")
    ppv_price: Decimal | None
    media: list[str]
    send_at: datetime | None = Field(description="UTC; null: as soon as it was scheduled.")
    exclude_messaged_within_hours: int | None
    exclude_no_spend_days: int | None
    exclude_bought_offer: bool = Field(description="Fans who already bought this offer are left out.")
    explore_prices: bool = Field(description=EXPLORE)
    mode: ModeName = Field(description=MODE)
    repeat: RepeatName = Field(description='"" (once), "daily" or "weekly".')
    repeat_until: datetime | None = Field(description="UTC; no occurrence is scheduled after it. null: no end.")
    repeat_of_id: int | None = Field(
        description="The first campaign of the recurring series this occurrence belongs to (null for the first): "
        "GET /campaigns?series_id= lists them all."
    )
    targeted: int
    excluded: int = Field(description="Fans of the audience the exclusions left out at the send time.")
    last_error: str = Field(description="Why it could not start (it went back to draft), if so.")
    created_by_email: str | None
    approved_by_email: str | None
    approved_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    stats: CampaignStatsOut = Field(description="Counted now, from its deliveries and its messages' unlocks.")
    personalization: CampaignPersonalizationOut = Field(
        description="Its AI personalisation per fan (direct-mode drafts): POST /campaigns/{id}/personalize."
    )

    @staticmethod
    def resolve_personalization(obj: Campaign) -> dict:
        return CampaignPersonalizationOut.from_campaign(obj)

    @staticmethod
    def resolve_fan_count(obj: Campaign) -> int:
        return len(obj.fan_ids or [])

    @staticmethod
    def resolve_ppv_price(obj: Campaign) -> Decimal | None:
        # A campaign just saved holds the price as given (1E+1); read back, to the cent.
        return obj.ppv_price.quantize(CENTS) if obj.ppv_price is not None else None

    @staticmethod
    def resolve_send_at(obj: Campaign) -> datetime | None:
        # A campaign just saved holds the time as given (in the creator's timezone); read back, UTC.
        return obj.send_at.astimezone(UTC) if obj.send_at else None

    @staticmethod
    def resolve_repeat_until(obj: Campaign) -> datetime | None:
        return obj.repeat_until.astimezone(UTC) if obj.repeat_until else None

    @staticmethod
    def resolve_created_by_email(obj: Campaign) -> str | None:
        return obj.created_by.email if obj.created_by_id else None

    @staticmethod
    def resolve_approved_by_email(obj: Campaign) -> str | None:
        return obj.approved_by.email if obj.approved_by_id else None

    @staticmethod
    def resolve_stats(obj: Campaign) -> dict:
        stats = obj.stats  # set by the operations, for a whole page at once
        # To the cent on every database (SQLite's SUM drops trailing zeros: 12.00 → 12).
        revenue = {currency: amount.quantize(CENTS) for currency, amount in sorted(stats.revenue.items())}
        return {**stats.as_dict(), "revenue": revenue}


class CampaignDetailOut(CampaignOut):
    fan_ids: list[int] = Field(description="The fans chosen by hand, when there is no segment.")


class PreviewMessageOut(Schema):
    fan_id: int
    username: str
    display_name: str
    text: str = Field(description="The message as this fan would read it, variables filled.")
    personalised: bool = Field(description="The AI personalised this fan's message.")


class PreviewOut(Schema):
    audience: int = Field(description="Fans the audience names now.")
    excluded: int = Field(description="Of those, left out by the exclusions.")
    recipients: int = Field(description="Fans it would be sent to now.")
    messages: list[PreviewMessageOut] = Field(description="The first three recipients' messages.")
    problems: list[str] = Field(description="What would stop it being scheduled; empty when it can be.")


class CampaignDeliveryOut(Schema):
    id: int
    kind: DeliveryKindName = Field(description='"direct" (one fan) or "mass" (one mass message, many fans).')
    recipient_id: str = Field(description="The fan's id on the platform; empty for a mass message.")
    recipient_count: int = Field(description="Fans it goes to: 1, or a mass message's fans.")
    rejected_count: int = Field(description="Fans of a sent mass message the platform refused.")
    platform: str
    status: DeliveryStatusName
    attempts: int
    last_error: str
    sent_at: datetime | None


# --- Input --------------------------------------------------------------------------------------


class CampaignIn(Schema):
    creator_id: Id
    name: str = Field(max_length=MAX_NAME, examples=["Friday drop"])
    text: str = Field(
        "",
        max_length=10_000,
        description="May use template variables such as {fan.first_name|babe}, filled per fan.",
        examples=["Hey {fan.first_name|babe}, new set tonight!"],
    )
    segment_id: Id | None = Field(None, description=AUDIENCE)
    fan_ids: list[Id] = Field(default_factory=list, max_length=MAX_CHOSEN_FANS, description=AUDIENCE)
    ppv_price: PpvPrice | None = Field(None, description="Within the creator's PPV range; needs media.")
    media: list[MediaRef] = Field(default_factory=list, max_length=MAX_MEDIA)
    send_at: datetime | None = Field(None, description=SEND_AT)
    exclude_messaged_within_hours: MessagedWithinHours | None = Field(
        None, description="Leave out fans the creator messaged (any way) in the last N hours."
    )
    exclude_no_spend_days: NoSpendDays | None = Field(
        None, description="Leave out fans who bought nothing in the last N days."
    )
    exclude_bought_offer: bool = Field(False, description=BOUGHT_OFFER)
    explore_prices: bool = Field(False, description=EXPLORE)
    mode: ModeName = Field(CampaignMode.DIRECT.value, description=MODE)
    repeat: RepeatName = Field(CampaignRepeat.ONCE.value, description=REPEAT)
    repeat_until: datetime | None = Field(None, description=REPEAT_UNTIL)


class CampaignPatchIn(Schema):
    """Omitted fields keep their value; so does null for creator_id, name, text, fan_ids, media,
    exclude_bought_offer, explore_prices, mode and repeat. Null clears segment_id, ppv_price,
    send_at, repeat_until and the other exclusions."""

    creator_id: Id | None = None
    name: str | None = Field(None, max_length=MAX_NAME)
    text: str | None = Field(None, max_length=10_000)
    segment_id: Id | None = Field(None, description=AUDIENCE + " Giving either replaces the audience.")
    fan_ids: list[Id] | None = Field(None, max_length=MAX_CHOSEN_FANS, description=AUDIENCE)
    ppv_price: PpvPrice | None = None
    media: list[MediaRef] | None = Field(None, max_length=MAX_MEDIA)
    send_at: datetime | None = Field(None, description=SEND_AT)
    exclude_messaged_within_hours: MessagedWithinHours | None = None
    exclude_no_spend_days: NoSpendDays | None = None
    exclude_bought_offer: bool | None = Field(None, description=BOUGHT_OFFER)
    explore_prices: bool | None = Field(None, description=EXPLORE)
    mode: ModeName | None = Field(None, description=MODE)
    repeat: RepeatName | None = Field(None, description=REPEAT)
    repeat_until: datetime | None = Field(None, description=REPEAT_UNTIL)
