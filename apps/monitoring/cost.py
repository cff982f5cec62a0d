"""AI cost reports: spend from the ledger, the month-end forecast, savings advice, cost per
accepted draft and AI cost against fans' revenue per creator.

Everything reads ``AIRequestLog`` (apps/ai), the gateway's ledger, scoped to the member's agency
and, for chatters, to their assigned creators (rows without a creator are then left out). The
page's numbers come from a fixed number of queries whatever the data size: the month's ledger
grouped by day, provider, model, feature and creator in one query, the last 30 days' rows for the
advice in another, drafts and purchases through apps.messaging's selectors.

The arithmetic is in plain functions over plain data (``forecast_month``, ``savings_advice``) so
it is tested on fixed numbers; docs/ai-cost.md states each formula. Ledger days are UTC days.

``month_spend`` (a month's report and forecast) and ``budgets_progress`` (the budget gauges'
numbers) serve the page and the API (apps/monitoring/api.py) alike.

Not here: budgets and the hard stop (apps/monitoring/budgets.py), pages (cost_views.py).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import mean, median, stdev
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.permissions import sees_all_creators
from apps.accounts.selectors import creator_list
from apps.ai.models import AIRequestLog
from apps.ai.pricing import MILLION, price_for
from apps.monitoring.budgets import (
    budget_month_spend,
    budget_progress,
    counters_micro,
    month_bounds,
    month_start,
    next_month,
)
from apps.monitoring.models import Budget

ZERO = Decimal(0)
CENT = Decimal("0.01")
LOOKBACK_DAYS = 7  # the forecast's sample of recent days
Z_90 = 1.645  # the forecast band: about 90% of months end inside it if days vary independently
ADVICE_WINDOW_DAYS = 30
ADVICE_CACHE_SECONDS = 600
MIN_CALLS = 20  # a feature needs this many paid calls in the window before advice is given about it
MIN_DECIDED = 20  # drafts sent or discarded per provider before acceptance rates are compared
DRAFT_FEATURE_PREFIX = "inbox."
NO_CREATOR = "No creator"


class MonthError(ValueError):
    """A month the cost page cannot show; the message says why."""


def parse_month(value: str | None, *, today: date) -> date:
    """``YYYY-MM`` → the month's first day. Empty means the current month; a malformed month, one
    before 2000 or one after the current month is a MonthError."""
    if not value:
        return today.replace(day=1)
    try:
        year, month = (int(part) for part in value.split("-"))
        chosen = date(year, month, 1)
    except (TypeError, ValueError):
        raise MonthError(f"“{value[:20]}” is not a month: use YYYY-MM, such as {today:%Y-%m}.") from None
    if len(value) != 7 or chosen.year < 2000:
        raise MonthError(f"“{value[:20]}” is not a month: use YYYY-MM, such as {today:%Y-%m}.")
    if chosen > today.replace(day=1):
        raise MonthError(f"{chosen:%B %Y} has not started yet.")
    return chosen


def visible_creator_ids(membership: Membership) -> list[int] | None:
    """None when the member sees every creator and unattributed rows; else their creators' ids."""
    if sees_all_creators(membership):
        return None
    return list(creator_list(membership=membership, include_archived=True).values_list("pk", flat=True))


def ledger_for(membership: Membership) -> QuerySet[AIRequestLog]:
    rows = AIRequestLog.objects.for_agency(membership.agency_id)
    creator_ids = visible_creator_ids(membership)
    if creator_ids is not None:
        rows = rows.filter(creator_id__in=creator_ids)
    return rows


# --- Spend --------------------------------------------------------------------------------------------


@dataclass
class Share:
    key: Any
    label: str
    cost: Decimal = ZERO
    calls: int = 0


@dataclass
class SpendReport:
    """A month's spend: per day (and per provider within each day), and per provider, model,
    feature and creator for the month. ``before`` holds the daily totals of the days just before
    the month, for the forecast's sample."""

    month: date
    days: list[date]
    total: Decimal = ZERO
    calls: int = 0
    by_day: dict[date, Decimal] = field(default_factory=dict)
    by_day_provider: dict[date, dict[str, Decimal]] = field(default_factory=dict)
    providers: list[Share] = field(default_factory=list)
    models: list[Share] = field(default_factory=list)
    features: list[Share] = field(default_factory=list)
    creators: list[Share] = field(default_factory=list)
    before: dict[date, Decimal] = field(default_factory=dict)
    first_day: date | None = None  # the first day with any AI use in the data read

    @property
    def empty(self) -> bool:
        return self.calls == 0


def _ranked(shares: dict[Any, Share]) -> list[Share]:
    return sorted(shares.values(), key=lambda share: (-share.cost, -share.calls, share.label))


def spend_rows(*, membership: Membership, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The ledger between start and end grouped by UTC day, provider, model, feature and creator."""
    return list(
        ledger_for(membership)
        .filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "provider", "model", "feature", "creator_id")
        .annotate(cost=Sum("cost_usd"), calls=Count("id"))
    )


def spend_report(
    *, rows: Iterable[dict[str, Any]], month: date, creator_names: dict[int, str] | None = None
) -> SpendReport:
    """Fold grouped ledger rows (``spend_rows``) into the month's report."""
    creator_names = creator_names or {}
    start = month
    end = next_month(month)
    report = SpendReport(month=month, days=[start + timedelta(days=i) for i in range((end - start).days)])
    providers: dict[str, Share] = {}
    models: dict[tuple[str, str], Share] = {}
    features: dict[str, Share] = {}
    creators: dict[int | None, Share] = {}
    for row in rows:
        day = row["day"]
        cost = row["cost"] or ZERO
        calls = row["calls"]
        if report.first_day is None or day < report.first_day:
            report.first_day = day
        if day < start:
            report.before[day] = report.before.get(day, ZERO) + cost
            continue
        if day >= end:
            continue
        provider = row["provider"] or "none"
        report.total += cost
        report.calls += calls
        report.by_day[day] = report.by_day.get(day, ZERO) + cost
        per_provider = report.by_day_provider.setdefault(day, {})
        per_provider[provider] = per_provider.get(provider, ZERO) + cost
        for shares, key, label in (
            (providers, provider, provider),
            (models, (provider, row["model"]), f"{row['model'] or '—'} ({provider})"),
            (features, row["feature"], row["feature"]),
            (creators, row["creator_id"], creator_names.get(row["creator_id"], NO_CREATOR)),
        ):
            share = shares.setdefault(key, Share(key, label))
            share.cost += cost
            share.calls += calls
    report.providers = _ranked(providers)
    report.models = _ranked(models)
    report.features = _ranked(features)
    report.creators = _ranked(creators)
    return report


# --- Forecast -----------------------------------------------------------------------------------------


@dataclass
class Forecast:
    """The month's projected total with a band. ``complete`` months are what they were."""

    month: date
    spent: Decimal
    projected: Decimal
    low: Decimal
    high: Decimal
    daily_mean: Decimal = ZERO
    daily_stdev: Decimal = ZERO
    sample_days: int = 0
    days_left: int = 0  # days after today in the month
    complete: bool = False
    path: list[tuple[date, Decimal, Decimal, Decimal]] = field(default_factory=list)  # day, mid, low, high


def _q(value: float | Decimal) -> Decimal:
    return Decimal(value).quantize(Decimal("0.0001"))


def forecast_month(
    *,
    daily: dict[date, Decimal],
    month: date,
    today: date,
    first_day: date | None = None,
    lookback: int = LOOKBACK_DAYS,
    z: float = Z_90,
) -> Forecast:
    """Project the month's total from the mean daily spend of recent days.

    - sample: the ``lookback`` whole days before today (they may reach into the last month;
      ``daily`` must cover them), leaving out days before ``first_day`` (the first day of AI
      use) so a new agency's early zeros do not drag the mean down; none left: today alone;
    - projected = spent before today + max(today so far, mean) + mean * days after today;
    - band = projected +/- z * stdev * sqrt(days after today + 1) (independent days), never below
      what is already spent.
    """
    end = next_month(month)
    spent = sum((v for d, v in daily.items() if month <= d < end), ZERO)
    if today >= end:
        return Forecast(month, spent, spent, spent, spent, complete=True)
    window = [today - timedelta(days=i) for i in range(lookback, 0, -1)]
    if first_day is not None:
        window = [d for d in window if d >= first_day]
    today_spend = daily.get(today, ZERO)
    sample = [float(daily.get(d, ZERO)) for d in window] or [float(today_spend)]
    daily_mean = mean(sample)
    daily_sd = stdev(sample) if len(sample) > 1 else 0.0
    before_today = sum((v for d, v in daily.items() if month <= d < today), ZERO)
    days_left = (end - today).days - 1
    projected = float(before_today) + max(float(today_spend), daily_mean) + daily_mean * days_left
    forecast = Forecast(
        month=month,
        spent=spent,
        projected=_q(projected),
        low=_q(max(float(spent), projected - z * daily_sd * math.sqrt(days_left + 1))),
        high=_q(projected + z * daily_sd * math.sqrt(days_left + 1)),
        daily_mean=_q(daily_mean),
        daily_stdev=_q(daily_sd),
        sample_days=len(window),
        days_left=days_left,
    )
    # The cumulative path the chart draws from today to the month's last day.
    so_far = float(before_today) + max(float(today_spend), daily_mean)
    for k in range(days_left + 1):
        mid = so_far + daily_mean * k
        half = z * daily_sd * math.sqrt(k + 1)
        forecast.path.append((today + timedelta(days=k), _q(mid), _q(max(float(spent), mid - half)), _q(mid + half)))
    return forecast


# --- Savings advice -----------------------------------------------------------------------------------


@dataclass
class Advice:
    kind: str  # cache | model | prompt | retries
    title: str
    detail: str
    monthly_saving: Decimal
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class LedgerRow:
    """The columns of one ledger row the advice reads."""

    feature: str
    provider: str
    model: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost: Decimal
    cache_hit: bool = False
    coalesced: bool = False
    attempts: int = 1
    error_kind: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error_kind) and self.error_kind != "CANCELLED"

    @property
    def paid(self) -> bool:
        """A call that reached a provider and answered (not a cache hit, a follower or an error)."""
        return not (self.cache_hit or self.coalesced or self.error_kind)


ADVICE_FIELDS = (
    "feature", "provider", "model", "input_tokens", "cached_input_tokens", "output_tokens", "cost_usd",
    "cache_hit", "coalesced", "attempts", "error_kind",
)  # fmt: skip


def _money(value: float | Decimal) -> Decimal:
    return Decimal(value).quantize(CENT)


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _cache_advice(rows: list[LedgerRow], scale: float, target: float) -> list[Advice]:
    advice = []
    by_feature: dict[str, list[LedgerRow]] = defaultdict(list)
    for row in rows:
        if not row.coalesced and not row.failed:
            by_feature[row.feature].append(row)
    for feature, items in by_feature.items():
        paid = [row for row in items if row.paid]
        if len(paid) < MIN_CALLS:
            continue
        hits = sum(1 for row in items if row.cache_hit)
        hit_rate = hits / len(items)
        average = float(sum((row.cost for row in paid), ZERO)) / len(paid)
        if hit_rate >= target or average <= 0:
            continue
        extra_hits = (target - hit_rate) * len(items)
        saving = _money(extra_hits * average * scale)
        if saving <= 0:
            continue
        advice.append(
            Advice(
                "cache",
                f"Cache more answers of {feature}",
                f"{_pct(hit_rate)} of its {len(items)} answers came from the cache. At {_pct(target)} (answers "
                f"reused for repeated prompts, e.g. with temperature 0 where variety is not needed), "
                f"{extra_hits:.0f} more answers would have cost nothing instead of ${average:.4f} each.",
                saving,
                {"feature": feature, "hit_rate": hit_rate, "target": target, "calls": len(items), "average": average},
            )
        )
    return advice


def _model_advice(
    rows: list[LedgerRow], outcomes: list[dict[str, Any]], scale: float, tolerance: float
) -> list[Advice]:
    """For draft features: a provider whose drafts members accept about as often, for less."""
    decided: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (feature, provider) → sent, decided
    for outcome in outcomes:
        key = (f"{DRAFT_FEATURE_PREFIX}{outcome['kind']}", outcome["provider"])
        decided[key][0] += outcome["sent"]
        decided[key][1] += outcome["sent"] + outcome["discarded"]
    calls: dict[tuple[str, str], list] = defaultdict(lambda: [0, ZERO, defaultdict(int)])  # calls, cost, models
    for row in rows:
        if row.paid and row.feature.startswith(DRAFT_FEATURE_PREFIX):
            entry = calls[(row.feature, row.provider)]
            entry[0] += 1
            entry[1] += row.cost
            entry[2][row.model] += 1
    stats = {}
    for key, (sent, total) in decided.items():
        if total >= MIN_DECIDED and calls[key][0]:
            count, cost, models = calls[key]
            stats[key] = {
                "acceptance": sent / total,
                "decided": total,
                "calls": count,
                "average": float(cost) / count,
                "model": max(models, key=models.get),
            }
    advice = []
    for (feature, provider), dear in stats.items():
        cheaper = [
            (other, s)
            for (f, other), s in stats.items()
            if f == feature and other != provider and s["average"] < dear["average"]
            and s["acceptance"] >= dear["acceptance"] - tolerance
        ]  # fmt: skip
        if not cheaper:
            continue
        other, cheap = min(cheaper, key=lambda item: item[1]["average"])
        saving = _money(dear["calls"] * (dear["average"] - cheap["average"]) * scale)
        if saving <= 0:
            continue
        advice.append(
            Advice(
                "model",
                f"Use {cheap['model']} ({other}) for {feature}",
                f"Members sent {_pct(cheap['acceptance'])} of its drafts ({cheap['decided']} decided) against "
                f"{_pct(dear['acceptance'])} for {dear['model']} ({provider}, {dear['decided']} decided), at "
                f"${cheap['average']:.4f} a call instead of ${dear['average']:.4f}.",
                saving,
                {"feature": feature, "from": provider, "to": other, "calls": dear["calls"]},
            )
        )
    return advice


def _prompt_advice(rows: list[LedgerRow], scale: float, factor: float) -> list[Advice]:
    advice = []
    by_feature: dict[str, list[LedgerRow]] = defaultdict(list)
    for row in rows:
        if row.paid and row.input_tokens > 0:
            by_feature[row.feature].append(row)
    for feature, items in by_feature.items():
        if len(items) < MIN_CALLS:
            continue
        typical = median(row.input_tokens for row in items)
        long_rows = [row for row in items if row.input_tokens > factor * typical]
        excess_cost = ZERO
        excess_tokens = 0
        for row in long_rows:
            price = price_for(row.model)
            if price is None:
                continue
            excess = row.input_tokens - typical
            excess_tokens += excess
            excess_cost += Decimal(excess) * price.input / MILLION
        saving = _money(float(excess_cost) * scale)
        if saving <= 0:
            continue
        advice.append(
            Advice(
                "prompt",
                f"Shorten the longest prompts of {feature}",
                f"{len(long_rows)} of {len(items)} calls sent more than {factor:g} times the usual {typical:.0f} input "
                f"tokens ({excess_tokens:,} tokens above it in all). Trim the history or examples they carry.",
                saving,
                {"feature": feature, "median_tokens": typical, "long_calls": len(long_rows), "excess": excess_tokens},
            )
        )
    return advice


def _retry_advice(rows: list[LedgerRow], scale: float, min_error_rate: float) -> list[Advice]:
    advice = []
    by_provider: dict[str, list[LedgerRow]] = defaultdict(list)
    for row in rows:
        if row.provider and row.provider not in {"budget", "builtin"} and not (row.cache_hit or row.coalesced):
            by_provider[row.provider].append(row)
    for provider, items in by_provider.items():
        ok = [row for row in items if not row.error_kind]
        failed = [row for row in items if row.failed]
        error_rate = len(failed) / len(items) if items else 0.0
        wasted = sum(max(0, row.attempts - 1) for row in ok) + sum(max(1, row.attempts) for row in failed)
        if not ok or wasted == 0 or error_rate < min_error_rate:
            continue
        average = float(sum((row.cost for row in ok), ZERO)) / len(ok)
        saving = _money(wasted * average * scale)
        if saving <= 0:
            continue
        advice.append(
            Advice(
                "retries",
                f"Stop paying for retries on {provider}",
                f"{_pct(error_rate)} of its calls failed and {wasted} attempts were wasted on it; when timed-out "
                f"or cut answers are billed, each costs about a successful call (${average:.4f}). Put a steadier "
                "provider first, or lower AI_MAX_ATTEMPTS.",
                saving,
                {"provider": provider, "error_rate": error_rate, "wasted_attempts": wasted, "average": average},
            )
        )
    return advice


def savings_advice(*, rows: list[LedgerRow], outcomes: list[dict[str, Any]], window_days: float) -> list[Advice]:
    """Every piece of advice the rows support, largest monthly saving first. ``window_days``: how
    many days the rows cover (savings are scaled to a 30-day month)."""
    scale = 30 / max(1.0, window_days)
    advice = (
        _cache_advice(rows, scale, settings.AI_COST_CACHE_TARGET)
        + _model_advice(rows, outcomes, scale, settings.AI_COST_ACCEPTANCE_TOLERANCE)
        + _prompt_advice(rows, scale, settings.AI_COST_LONG_PROMPT_FACTOR)
        + _retry_advice(rows, scale, settings.AI_COST_RETRY_ERROR_RATE)
    )
    return sorted(advice, key=lambda item: -item.monthly_saving)


def savings_for(*, membership: Membership, now: datetime | None = None) -> list[Advice]:
    """Advice from the last 30 days of the member's ledger (two queries), kept ADVICE_CACHE_SECONDS
    per agency and visible creators: it reads every ledger row of the 30 days (a busy agency has
    hundreds of thousands) and barely moves in ten minutes, while the page refreshes every minute."""
    now = now or timezone.now()
    creator_ids = visible_creator_ids(membership)
    scope = "all" if creator_ids is None else ",".join(map(str, sorted(creator_ids)))
    period = int(now.timestamp() // ADVICE_CACHE_SECONDS)
    key = f"monitoring:savings:{membership.agency_id}:{hashlib.sha256(scope.encode()).hexdigest()[:16]}:{period}"
    advice = cache.get(key)
    if advice is None:
        advice = _savings(membership=membership, now=now, creator_ids=creator_ids)
        cache.set(key, advice, ADVICE_CACHE_SECONDS)
    return advice


def _savings(*, membership: Membership, now: datetime, creator_ids: list[int] | None) -> list[Advice]:
    from apps.messaging.selectors import draft_outcomes

    since = now - timedelta(days=ADVICE_WINDOW_DAYS)
    raw = list(
        ledger_for(membership)
        .filter(created_at__gte=since, created_at__lt=now)
        .values_list(*ADVICE_FIELDS, "created_at")
    )
    if not raw:
        return []
    first = min(item[-1] for item in raw)
    window_days = max(1.0, (now - first).total_seconds() / 86400)
    rows = [LedgerRow(*item[:-1]) for item in raw]
    outcomes = draft_outcomes(agency_id=membership.agency_id, since=since, until=now, creator_ids=creator_ids)
    return savings_advice(rows=rows, outcomes=outcomes, window_days=window_days)


# --- Drafts and revenue ---------------------------------------------------------------------------


@dataclass
class CreatorEconomics:
    creator_id: int | None
    name: str
    ai_cost: Decimal = ZERO
    draft_cost: Decimal = ZERO
    drafts_sent: int = 0
    drafts_discarded: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)  # currency → total
    from_ai: dict[str, Decimal] = field(default_factory=dict)  # currency → paid for AI-drafted messages

    @property
    def cost_per_accepted_draft(self) -> Decimal | None:
        return (self.draft_cost / self.drafts_sent).quantize(Decimal("0.0001")) if self.drafts_sent else None

    @property
    def cost_share_of_revenue(self) -> float | None:
        """AI cost as a share of USD revenue (other currencies are shown, not converted)."""
        usd = self.revenue.get("USD", ZERO)
        return float(self.ai_cost / usd) if usd > 0 else None

    @property
    def cost_percent_of_revenue(self) -> float | None:
        share = self.cost_share_of_revenue
        return None if share is None else share * 100


@dataclass
class Economics:
    creators: list[CreatorEconomics]
    draft_cost: Decimal = ZERO
    drafts_sent: int = 0
    drafts_discarded: int = 0

    @property
    def cost_per_accepted_draft(self) -> Decimal | None:
        return (self.draft_cost / self.drafts_sent).quantize(Decimal("0.0001")) if self.drafts_sent else None


def economics(
    *,
    rows: Iterable[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    revenue: list[dict[str, Any]],
    month: date,
    creator_names: dict[int, str],
) -> Economics:
    """Per creator for the month: AI cost, the drafts' AI cost per draft a member sent, and
    revenue (total, and paid for messages that began as AI drafts) next to the AI cost."""
    end = next_month(month)
    per: dict[int | None, CreatorEconomics] = {}

    def entry(creator_id: int | None) -> CreatorEconomics:
        if creator_id not in per:
            per[creator_id] = CreatorEconomics(creator_id, creator_names.get(creator_id, NO_CREATOR))
        return per[creator_id]

    result = Economics(creators=[])
    for row in rows:
        if not month <= row["day"] < end:
            continue
        item = entry(row["creator_id"])
        cost = row["cost"] or ZERO
        item.ai_cost += cost
        if row["feature"].startswith(DRAFT_FEATURE_PREFIX):
            item.draft_cost += cost
            result.draft_cost += cost
    for outcome in outcomes:
        item = entry(outcome["creator_id"])
        item.drafts_sent += outcome["sent"]
        item.drafts_discarded += outcome["discarded"]
        result.drafts_sent += outcome["sent"]
        result.drafts_discarded += outcome["discarded"]
    for line in revenue:
        item = entry(line["creator_id"])
        item.revenue[line["currency"]] = item.revenue.get(line["currency"], ZERO) + (line["total"] or ZERO)
        item.from_ai[line["currency"]] = item.from_ai.get(line["currency"], ZERO) + (line["from_ai"] or ZERO)
    result.creators = sorted(per.values(), key=lambda c: (-c.ai_cost, c.name))
    return result


# --- The page's data, in a fixed number of queries -------------------------------------------------


@dataclass
class MonthSpend:
    """A month's spend and its forecast: what the cost page, the budget gauges and the API share."""

    month: date
    report: SpendReport
    forecast: Forecast
    rows: list[dict[str, Any]]  # ``spend_rows`` of the month and the week before it
    creator_names: dict[int, str]
    current: bool


def month_spend(*, membership: Membership, month: date, now: datetime | None = None) -> MonthSpend:
    """The month's spend report and forecast for the member: two queries (creators, and the ledger
    for the month and the week before it)."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    creators = creator_list(membership=membership, include_archived=True)
    creator_names = dict(creators.values_list("pk", "display_name"))
    start, end = month_bounds(month)
    rows = spend_rows(membership=membership, start=start - timedelta(days=LOOKBACK_DAYS), end=end)
    report = spend_report(rows=rows, month=month, creator_names=creator_names)
    daily = {**report.before, **report.by_day}
    forecast = forecast_month(daily=daily, month=month, today=min(today, next_month(month)), first_day=report.first_day)
    return MonthSpend(month, report, forecast, rows, creator_names, current=month == month_start(now))


def budgets_progress(*, report: SpendReport, budgets: Iterable[Budget], current: bool) -> list[dict[str, Any]]:
    """Each budget's ``budget_progress`` for the report's month: the ledger's spend (for the
    current month, the shared counter when it is ahead of the ledger: calls not written yet)."""
    by_creator = {share.key: share.cost for share in report.creators}
    budgets = list(budgets)
    counters = counters_micro(budgets, report.month) if current else {}  # one shared read for the page
    result = []
    for budget in budgets:
        ledger = report.total if budget.creator_id is None else by_creator.get(budget.creator_id, ZERO)
        spent = (
            budget_month_spend(budget, ledger_usd=ledger, month=report.month, counter=counters[budget.pk])
            if current
            else ledger
        )
        result.append(budget_progress(budget, spent))
    return result


@dataclass
class CostPage:
    month: date
    report: SpendReport
    forecast: Forecast
    economics: Economics
    advice: list[Advice]
    creator_names: dict[int, str]
    current: bool


def cost_page(*, membership: Membership, month: date, now: datetime | None = None) -> CostPage:
    """Everything the cost dashboard shows for ``month``: five queries (creators, the ledger for
    the month and the week before it, drafts, purchases) plus the advice's two."""
    from apps.messaging.selectors import creator_revenue, draft_outcomes

    now = now or timezone.now()
    spend = month_spend(membership=membership, month=month, now=now)
    start, end = month_bounds(month)
    creator_ids = visible_creator_ids(membership)
    outcomes = draft_outcomes(agency_id=membership.agency_id, since=start, until=end, creator_ids=creator_ids)
    revenue = creator_revenue(agency_id=membership.agency_id, since=start, until=end, creator_ids=creator_ids)
    money = economics(
        rows=spend.rows, outcomes=outcomes, revenue=revenue, month=month, creator_names=spend.creator_names
    )
    advice = savings_for(membership=membership, now=now) if not spend.report.empty or spend.current else []
    return CostPage(month, spend.report, spend.forecast, money, advice, spend.creator_names, spend.current)
