"""The optimization API's shapes (django-ninja), for apps/optimization/api.py; docs/api-optimization.md.

Engine answers are explicit about what they are: every pricing and timing answer carries a
``status`` ("recommendation" / "advice", "not_enough_data", "no_best_time"), and a field with no
figure behind it is null, never a made-up number. Floats the engines could leave non-finite are
sent as null. Money on stored offers is USD (or the offer's currency) as decimal strings.

Inputs bound what the database needs bounded; the offer body's rules (price above $0 and finite,
unlocks at most the recipients) answer 422 naming the field, like every body the schema refuses.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import field_validator
from pydantic_core.core_schema import ValidationInfo

from apps.core.openapi import Id
from apps.optimization import pricing, timing
from apps.optimization.models import Anomaly, Offer, Recommendation, Risk, Sensitivity, Strategy

StrategyName = Literal[tuple(Strategy.values)]
RiskName = Literal[tuple(Risk.values)]
SensitivityName = Literal[tuple(Sensitivity.values)]
KindName = Literal[tuple(Recommendation.Kind.values)]
RecommendationStatusName = Literal[tuple(Recommendation.Status.values)]
AnomalyStatusName = Literal[tuple(Anomaly.Status.values)]

STRATEGY = (
    "revenue_max: the price earning most per fan reached; balanced: most unlocks while keeping 95 % of the best "
    "revenue; conversion_max: most unlocks while keeping 80 %."
)
RISK = (
    "How the unlock rate is planned on: conservative (its 10 % quantile), moderate (posterior mean), "
    "aggressive (75 % quantile)."
)
SENSITIVITY = "How readily a value counts as unusual: low (fewer alerts), medium, high (more alerts)."


def finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --- Engine answers ------------------------------------------------------------------------------


class CurvePointOut(Schema):
    price: float
    mean: float = Field(description="Expected unlock rate at this price (posterior mean).")
    lower: float = Field(description="10 % quantile of the unlock rate.")
    upper: float = Field(description="90 % quantile of the unlock rate.")


class PricingOut(Schema):
    status: Literal["recommendation", "not_enough_data"]
    message: str = Field(description="The explanation, or what data is missing.")
    needed: int | None = Field(None, description="With not_enough_data: how many more offers are needed.")
    price: float | None = None
    expected_unlock_rate: float | None = None
    expected_revenue_per_recipient: float | None = None
    planned_unlock_rate: float | None = Field(None, description="The unlock rate the risk tolerance plans on.")
    bound: str | None = Field(None, description="Which bound of the unlock rate was planned on, in words.")
    confidence: float | None = Field(None, description="0..1: probability the price is within 5 % of the best.")
    strategy: StrategyName | None = None
    risk: RiskName | None = None
    curve: list[CurvePointOut] = Field(default_factory=list, description="Unlock rate against price.")

    @staticmethod
    def build(answer: pricing.Recommendation | pricing.NotEnoughData) -> dict[str, Any]:
        if isinstance(answer, pricing.NotEnoughData):
            return {"status": "not_enough_data", "needed": answer.needed, "message": answer.message}
        return {
            "status": "recommendation",
            "message": answer.explanation,
            "price": answer.price,
            "expected_unlock_rate": finite(answer.expected_unlock_rate),
            "expected_revenue_per_recipient": finite(answer.expected_revenue_per_recipient),
            "planned_unlock_rate": finite(answer.planned_unlock_rate),
            "bound": answer.bound,
            "confidence": finite(answer.confidence),
            "strategy": str(answer.strategy),
            "risk": str(answer.risk),
            "curve": [
                {"price": p.price, "mean": p.mean, "lower": p.lower, "upper": p.upper}
                for p in answer.curve
                if all(math.isfinite(v) for v in (p.price, p.mean, p.lower, p.upper))
            ],
        }


class SlotOut(Schema):
    weekday: int = Field(description="0 = Monday … 6 = Sunday, in the creator's timezone.")
    weekday_name: str
    hour: int = Field(description="Clock hour 0-23 in the creator's timezone.")
    expected_rate: float | None = Field(description="Engagement per post (or replies per message) expected.")
    lift: float | None = Field(description="Over the creator's current average: 0.23 = +23 %.")
    confidence: float | None = Field(description="0..1: probability the slot beats the current average.")


class TimingOut(Schema):
    status: Literal["advice", "not_enough_data", "no_best_time"]
    kind: Literal["post", "message"]
    message: str
    timezone: str = Field(description="The creator's IANA timezone the slots are in.")
    needed: int | None = Field(None, description="With not_enough_data: how many more sends are needed.")
    slots: list[SlotOut] = Field(default_factory=list, description="The best slots, best first.")
    heatmap: list[list[float | None]] | None = Field(
        None, description="7 rows (Monday first) x 24 hours: the expected rate of every slot of the week."
    )
    baseline_rate: float | None = None
    own_data_share: float | None = Field(None, description="0..1: how much comes from the creator's own sends.")
    creator_sends: int | None = None
    agency_sends: int | None = None

    @staticmethod
    def build(answer: timing.TimingResult, tz: str) -> dict[str, Any]:
        base = {"status": answer.status, "kind": answer.kind, "message": answer.message, "timezone": tz}
        if isinstance(answer, timing.NotEnoughData):
            return base | {"needed": answer.needed}
        if not isinstance(answer, timing.TimingAdvice):
            return base
        return base | {
            "timezone": answer.timezone,
            "slots": [
                {
                    "weekday": slot.weekday,
                    "weekday_name": timing.WEEKDAYS[slot.weekday],
                    "hour": slot.hour,
                    "expected_rate": finite(slot.expected_rate),
                    "lift": finite(slot.lift),
                    "confidence": finite(slot.confidence),
                }
                for slot in answer.slots
            ],
            "heatmap": [[finite(value) for value in row] for row in answer.rates.tolist()],
            "baseline_rate": finite(answer.baseline_rate),
            "own_data_share": finite(answer.own_data_share),
            "creator_sends": answer.creator_sends,
            "agency_sends": answer.agency_sends,
        }


class DetectedAnomalyOut(Schema):
    metric: str
    label: str
    day: date = Field(description="The creator's calendar day.")
    at: datetime = Field(description="Start of that day (the creator's midnight), UTC.")
    value: float
    expected_low: float
    expected_high: float
    score: float = Field(description="0..1: how unusual.")
    severity: Literal["low", "medium", "high"]
    direction: Literal["above", "below"]


class CreatorAnomaliesOut(Schema):
    creator_id: int
    sensitivity: SensitivityName
    days: int = Field(description="How many recent complete days were checked.")
    anomalies: list[DetectedAnomalyOut]


class ComprehensiveOut(Schema):
    creator_id: int
    creator_name: str
    strategy: StrategyName
    risk: RiskName
    sensitivity: SensitivityName
    generated_at: datetime
    pricing: PricingOut
    post_timing: TimingOut
    message_timing: TimingOut
    anomalies: list[DetectedAnomalyOut]


class CreatorTimingOut(Schema):
    creator_id: int
    timezone: str
    post_timing: TimingOut
    message_timing: TimingOut


# --- Stored objects --------------------------------------------------------------------------------


class RecommendationOut(Schema):
    id: int
    creator_id: int
    creator_name: str
    kind: KindName
    status: RecommendationStatusName
    headline: str
    explanation: str
    strategy: str
    risk: str
    payload: dict[str, Any] = Field(description="The engine's answer: price and curve, or slots and timezone.")
    expected_value: float = Field(description="Revenue per recipient for a price; engagement per send for a time.")
    baseline_value: float | None = Field(description="The same figure for what the creator does today.")
    confidence: float
    run_date: date
    created_at: datetime
    decided_at: datetime | None
    dismiss_reason: str
    outcome: str = Field(description='"" (not measured), pending, met, missed or no_data.')
    outcome_value: float | None
    outcome_samples: int
    outcome_measured_at: datetime | None

    @staticmethod
    def resolve_creator_name(obj: Recommendation) -> str:
        return obj.creator.display_name

    @staticmethod
    def resolve_expected_value(obj: Recommendation) -> float:
        return finite(obj.expected_value) or 0.0

    @staticmethod
    def resolve_baseline_value(obj: Recommendation) -> float | None:
        return finite(obj.baseline_value)

    @staticmethod
    def resolve_outcome_value(obj: Recommendation) -> float | None:
        return finite(obj.outcome_value)


class DismissIn(Schema):
    reason: str = Field("", max_length=200, description="Why, for the track record (optional).")


class AnomalyOut(Schema):
    id: int
    creator_id: int
    creator_name: str
    metric: str
    label: str
    granularity: Literal["day", "hour"]
    at: datetime
    value: float
    expected_low: float
    expected_high: float
    score: float
    severity: Literal["low", "medium", "high"]
    direction: Literal["above", "below", "within"]
    status: AnomalyStatusName
    acknowledged_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_creator_name(obj: Anomaly) -> str:
        return obj.creator.display_name

    @staticmethod
    def resolve_label(obj: Anomaly) -> str:
        from apps.optimization.models import ANOMALY_LABELS

        return ANOMALY_LABELS.get(obj.metric, obj.metric)


class ServiceAnomalyOut(Schema):
    id: int
    scope: Literal["agency", "platform"]
    metric: Literal["http_requests", "http_error_rate", "http_latency_p95", "ai_cost"]
    label: str
    at: datetime
    value: float
    expected_low: float
    expected_high: float
    score: float
    severity: Literal["low", "medium", "high"]
    direction: Literal["above", "below", "within"]
    alerted: bool

    @staticmethod
    def resolve_scope(obj) -> str:
        return "platform" if obj.agency_id is None else "agency"

    @staticmethod
    def resolve_alerted(obj) -> bool:
        return bool(obj.alert_key)


class TrackRecordOut(Schema):
    kind: KindName
    label: str
    accepted: int
    dismissed: int
    measured: int = Field(description="Accepted ones judged met or missed.")
    met: int
    missed: int
    hit_rate: float | None = Field(description="met / measured; null before any was measured.")
    mean_ratio: float | None = Field(description="Mean of what they earned over what was expected.")


class SettingsOut(Schema):
    creator_id: int | None = Field(description="null: the agency-wide default.")
    strategy: StrategyName = Field(description=STRATEGY)
    risk: RiskName = Field(description=RISK)
    sensitivity: SensitivityName = Field(description=SENSITIVITY)
    explore_prices: bool
    source: Literal["creator", "agency", "default"] = Field(
        description="Where these come from: the creator's own, the agency default, or the built-in default."
    )
    updated_at: datetime | None


class SettingsIn(Schema):
    creator_id: Id | None = Field(None, description="The creator to override; null: the agency-wide default.")
    strategy: StrategyName = Field(description=STRATEGY)
    risk: RiskName = Field(description=RISK)
    sensitivity: SensitivityName = Field(description=SENSITIVITY)
    explore_prices: bool | None = Field(
        None,
        description="PPV campaigns may try nearby prices to learn faster. Left out: unchanged (off for a new setting).",
    )


class OfferOut(Schema):
    id: int
    creator_id: int
    creator_name: str
    sent_at: datetime
    price: Decimal
    currency: str
    recipients: int
    unlocks: int
    revenue: Decimal
    unlock_rate: float
    source: str
    external_id: str
    campaign_id: int | None

    @staticmethod
    def resolve_creator_name(obj: Offer) -> str:
        return obj.creator.display_name


class OfferIn(Schema):
    creator_id: Id
    price: Annotated[Decimal, Field(gt=0, le=Decimal(str(pricing.MAX_PRICE)), allow_inf_nan=False, decimal_places=2)]
    recipients: Annotated[int, Field(ge=1, le=2_000_000_000)]
    unlocks: Annotated[int, Field(ge=0, le=2_000_000_000)] = 0
    revenue: Annotated[Decimal, Field(ge=0, lt=10_000_000_000, allow_inf_nan=False, decimal_places=2)] | None = Field(
        None, description="What the offer earned; omitted: price x unlocks."
    )
    sent_at: datetime | None = Field(None, description="When it went out (with a timezone); omitted: now.")
    currency: Annotated[str, Field(min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")] | None = Field(
        None, description="Three letters; omitted: the creator's currency."
    )
    external_id: Annotated[str, Field(max_length=128)] = ""

    @field_validator("unlocks")
    @classmethod
    def _unlocks_within_recipients(cls, unlocks: int, info: ValidationInfo) -> int:
        recipients = info.data.get("recipients")
        if recipients is not None and unlocks > recipients:
            raise ValueError(f"Unlocks ({unlocks}) cannot exceed recipients ({recipients}).")
        return unlocks
