"""The AI cost API's shapes (django-ninja), for apps/monitoring/api.py; docs/api-monitoring.md.

Money is USD, sent as decimal strings: spend to the micro-dollar (six places, the unit the budget
counters count in; one AI call often costs a fraction of a cent), budget limits to the cent as
they are stored.

Inputs bound only what the database needs bounded (12 digits with 2 decimals for a limit, ids);
the rules stay in apps/monitoring/budgets.py and answer 400 naming the field, as the budget form
shows them: a limit of $0 or less, thresholds outside 1-1000 or more than ten of them, a second
budget for the same scope. The edit body (``BudgetPatchIn``) has no required field, so a request
for another agency's budget reaches the lookup and answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema

from apps.core.openapi import Id
from apps.monitoring import cost
from apps.monitoring.budgets import month_label
from apps.monitoring.models import Alert, Budget

MICRO_USD = Decimal("0.000001")
CENTS = Decimal("0.01")

SeverityName = Literal[tuple(Alert.Severity.values)]
AlertStateName = Literal[tuple(Alert.State.values)]
Limit = Annotated[
    Decimal,
    Field(
        max_digits=12,
        decimal_places=2,
        description="USD a calendar month (UTC) may cost; more than 0.",
        examples=["50.00"],
    ),
]
THRESHOLDS = (
    "Whole percentages of the limit, 1 to 1000, at most ten: owners and managers are told once a month as "
    "each is reached. [] for no alerts."
)
CREATOR = "The creator whose AI calls it counts; null: the whole agency (every AI call)."
HARD_STOP = "Refuse the scope's AI requests once the month's spend reaches the limit; false: only the alerts fire."


def usd(value: Decimal) -> Decimal:
    return Decimal(value).quantize(MICRO_USD)


# --- Spend --------------------------------------------------------------------------------------


class DayOut(Schema):
    date: date
    cost_usd: Decimal
    providers: dict[str, Decimal] = Field(description="The day's spend per provider.")


class ProviderShareOut(Schema):
    provider: str = Field(description='"none" for calls no provider answered (refused by a budget, failed early).')
    cost_usd: Decimal
    calls: int


class ModelShareOut(Schema):
    provider: str
    model: str
    cost_usd: Decimal
    calls: int


class FeatureShareOut(Schema):
    feature: str = Field(description="What asked for the call: studio.caption, inbox.reply, …")
    cost_usd: Decimal
    calls: int


class CreatorShareOut(Schema):
    creator_id: int | None = Field(description="null: calls made for no creator.")
    name: str
    cost_usd: Decimal
    calls: int


class ForecastOut(Schema):
    projected_usd: Decimal = Field(description="The month's expected total.")
    low_usd: Decimal = Field(description="The band's low end (about 90%), never below what is spent.")
    high_usd: Decimal = Field(description="The band's high end.")
    daily_mean_usd: Decimal = Field(description="The mean daily spend of the sample days.")
    daily_stdev_usd: Decimal
    sample_days: int = Field(description="Whole days before today the mean is taken from (at most 7).")
    days_left: int = Field(description="Days of the month after today.")


class CostReportOut(Schema):
    month: str = Field(description="YYYY-MM (UTC).")
    current: bool = Field(description="The month is the current one (it has a forecast).")
    currency: Literal["USD"] = "USD"
    total_usd: Decimal
    calls: int = Field(description="AI calls, cache hits and failed calls included (they cost 0).")
    days: list[DayOut] = Field(description="Days with AI use, in order; days without are left out.")
    providers: list[ProviderShareOut] = Field(description="Dearest first, as are the lists below.")
    models: list[ModelShareOut]
    features: list[FeatureShareOut]
    creators: list[CreatorShareOut]
    forecast: ForecastOut | None = Field(description="The month-end forecast; null for a past month.")

    @staticmethod
    def from_spend(spend: cost.MonthSpend) -> dict[str, Any]:
        report, forecast = spend.report, spend.forecast
        return {
            "month": month_label(spend.month),
            "current": spend.current,
            "total_usd": usd(report.total),
            "calls": report.calls,
            "days": [
                {
                    "date": day,
                    "cost_usd": usd(total),
                    "providers": {name: usd(value) for name, value in report.by_day_provider[day].items()},
                }
                for day, total in sorted(report.by_day.items())
            ],
            "providers": [
                {"provider": share.key, "cost_usd": usd(share.cost), "calls": share.calls} for share in report.providers
            ],
            "models": [
                {
                    "provider": share.key[0],
                    "model": share.key[1] or "",
                    "cost_usd": usd(share.cost),
                    "calls": share.calls,
                }
                for share in report.models
            ],
            "features": [
                {"feature": share.key, "cost_usd": usd(share.cost), "calls": share.calls} for share in report.features
            ],
            "creators": [
                {"creator_id": share.key, "name": share.label, "cost_usd": usd(share.cost), "calls": share.calls}
                for share in report.creators
            ],
            "forecast": None
            if not spend.current
            else {
                "projected_usd": usd(forecast.projected),
                "low_usd": usd(forecast.low),
                "high_usd": usd(forecast.high),
                "daily_mean_usd": usd(forecast.daily_mean),
                "daily_stdev_usd": usd(forecast.daily_stdev),
                "sample_days": forecast.sample_days,
                "days_left": forecast.days_left,
            },
        }


# --- Budgets ------------------------------------------------------------------------------------


class BudgetOut(Schema):
    id: int
    creator_id: int | None = Field(description=CREATOR)
    creator_name: str | None
    monthly_usd: Decimal = Field(description="The limit, USD a month.")
    thresholds: list[int] = Field(description=THRESHOLDS)
    hard_stop: bool = Field(description=HARD_STOP)
    month: str = Field(description="The month the spend below is of: the current one, YYYY-MM (UTC).")
    spent_usd: Decimal = Field(
        description="Spent this month in the budget's scope: the ledger's total, or the live counter when it is "
        "ahead (calls whose ledger rows are not written yet)."
    )
    left_usd: Decimal = Field(description="The limit less the spend, never below 0.")
    percent: float = Field(description="The spend as a percentage of the limit, not capped at 100.")
    used_up: bool = Field(description="The spend reached the limit.")
    warning: bool = Field(description="A threshold is reached and the limit is not.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_creator_name(obj: Budget) -> str | None:
        return obj.creator.display_name if obj.creator_id else None

    @staticmethod
    def resolve_monthly_usd(obj: Budget) -> Decimal:
        # A budget just saved holds the limit as given (5E+1); read back, to the cent.
        return obj.monthly_usd.quantize(CENTS)

    @staticmethod
    def resolve_thresholds(obj: Budget) -> list[int]:
        return list(obj.thresholds or [])

    # ``progress`` is set by the operations: cost.budgets_progress for the current month.
    @staticmethod
    def resolve_month(obj: Budget) -> str:
        return obj.progress["month"]

    @staticmethod
    def resolve_spent_usd(obj: Budget) -> Decimal:
        return usd(obj.progress["spent"])

    @staticmethod
    def resolve_left_usd(obj: Budget) -> Decimal:
        return usd(obj.progress["left"])

    @staticmethod
    def resolve_percent(obj: Budget) -> float:
        return round(obj.progress["percent"], 2)

    @staticmethod
    def resolve_used_up(obj: Budget) -> bool:
        return obj.progress["over"]

    @staticmethod
    def resolve_warning(obj: Budget) -> bool:
        return obj.progress["warn"]


class BudgetIn(Schema):
    creator_id: Id | None = Field(None, description=CREATOR)
    monthly_usd: Limit
    thresholds: list[int] = Field(default_factory=lambda: list(Budget.DEFAULT_THRESHOLDS), description=THRESHOLDS)
    hard_stop: bool = Field(False, description=HARD_STOP)


class BudgetPatchIn(Schema):
    """Omitted fields keep their value; so does null, except for ``creator_id`` (null: agency-wide)."""

    creator_id: Id | None = Field(None, description=CREATOR)
    monthly_usd: Limit | None = None
    thresholds: list[int] | None = Field(None, description=THRESHOLDS)
    hard_stop: bool | None = Field(None, description=HARD_STOP)


# --- Alerts -------------------------------------------------------------------------------------


class AlertOut(Schema):
    id: int
    budget_id: int | None = Field(description="The budget whose threshold it is about.")
    severity: SeverityName = Field(description='"page" when the limit is reached, "warning" before.')
    state: AlertStateName = Field(
        description='"firing", or "resolved" once the spend is under the threshold again (the limit was raised) '
        "or the month is over."
    )
    title: str
    detail: str
    values: dict[str, Any] = Field(
        description="The numbers it fired (or last resolved) with: spent_usd, budget_usd, percent, month."
    )
    fired_at: datetime
    resolved_at: datetime | None
