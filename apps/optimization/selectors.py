"""Reads for optimization: settings in force, performance series as NumPy arrays, the agency's
offer history, recommendations, anomalies and the track record.

Series are read in bulk (one ``values_list`` query per agency, not per creator or metric) and laid
out as NaN-filled arrays: a day with no row is a gap the engines skip, never a zero.
What this does not do: run any engine or write anything (services.py does both).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from django.db.models import Avg, Case, Count, F, FloatField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from apps.accounts.models import Creator, Membership, Role
from apps.optimization import pricing
from apps.optimization.models import (
    DAILY_METRICS,
    MONEY_METRICS,
    Anomaly,
    DailyPerformance,
    Offer,
    OptimizationSettings,
    Recommendation,
    Risk,
    Sensitivity,
    ServiceAnomaly,
    Strategy,
)

METRIC_NAMES: tuple[str, ...] = tuple(name for name, _label, _money in DAILY_METRICS)
SERIES_NAMES: tuple[str, ...] = (*METRIC_NAMES, "revenue_total", "engagement_per_post")
_MONEY_INDEX = [METRIC_NAMES.index(name) for name in MONEY_METRICS]
_ENGAGEMENT = METRIC_NAMES.index("engagement")
_POSTS = METRIC_NAMES.index("posts")


def effective_settings(creator: Creator) -> OptimizationSettings:
    """The creator's own settings, else the agency's default, else an unsaved default row
    (balanced, moderate, medium sensitivity, no price exploration)."""
    rows = OptimizationSettings.objects.for_agency(creator.agency_id).filter(
        Q(creator=creator) | Q(creator__isnull=True)
    )
    chosen = None
    for row in rows:
        if row.creator_id == creator.pk:
            return row
        chosen = row
    return chosen or OptimizationSettings(
        agency_id=creator.agency_id,
        strategy=Strategy.BALANCED,
        risk=Risk.MODERATE,
        sensitivity=Sensitivity.MEDIUM,
        explore_prices=False,
    )


def settings_for_agency(agency_id: int) -> tuple[OptimizationSettings | None, dict[int, OptimizationSettings]]:
    """The agency default (or None) and the per-creator overrides, in one query: for bulk runs."""
    default = None
    overrides: dict[int, OptimizationSettings] = {}
    for row in OptimizationSettings.objects.for_agency(agency_id):
        if row.creator_id is None:
            default = row
        else:
            overrides[row.creator_id] = row
    return default, overrides


def zone_name(name: str | None) -> str:
    """``name`` when it is a timezone this machine knows, else "UTC": a row imported or edited
    around the form's validation must not stop a page or the nightly run."""
    try:
        ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return "UTC"
    return name or "UTC"


def creator_today(creator: Creator, now: datetime | None = None) -> date:
    """Today's date on the creator's clock."""
    return (now or timezone.now()).astimezone(ZoneInfo(zone_name(creator.timezone))).date()


@dataclass(frozen=True)
class DailySeries:
    """``days`` consecutive dates; ``values[name]`` a float array per DAILY_METRICS column and
    derived series (revenue_total, engagement_per_post), NaN on days with no data."""

    days: list[date]
    values: dict[str, np.ndarray]


def series_matrix(rows: Iterable[Sequence], creator_ids: Sequence[int], start: date, n_days: int) -> np.ndarray:
    """``rows`` of (creator_id, day, *DAILY_METRICS) into an array (creators, days, series) with the
    SERIES_NAMES order: NaN where there is no row, derived series computed."""
    index = {creator_id: position for position, creator_id in enumerate(creator_ids)}
    out = np.full((len(creator_ids), n_days, len(SERIES_NAMES)), np.nan)
    who: list[int] = []
    when: list[int] = []
    values: list[Sequence] = []
    for row in rows:
        position = index.get(row[0])
        offset = (row[1] - start).days
        if position is None or not 0 <= offset < n_days:
            continue
        who.append(position)
        when.append(offset)
        values.append(row[2:])
    if values:
        stored = np.asarray(values, dtype=float)
        out[who, when, : len(METRIC_NAMES)] = stored
        out[who, when, len(METRIC_NAMES)] = stored[:, _MONEY_INDEX].sum(axis=1)
        posts = stored[:, _POSTS]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[who, when, len(METRIC_NAMES) + 1] = np.where(posts > 0, stored[:, _ENGAGEMENT] / posts, np.nan)
    return out


def daily_rows(*, agency_id: int | None, start: date, end: date) -> QuerySet:
    """(creator_id, day, *DAILY_METRICS) for every creator of the agency (or of every agency)."""
    rows = DailyPerformance.objects.filter(day__gte=start, day__lte=end)
    if agency_id is not None:
        rows = rows.for_agency(agency_id)
    return rows.order_by().values_list("creator_id", "day", *METRIC_NAMES)


def daily_series(creator: Creator, *, days: int = 90, end: date | None = None) -> DailySeries:
    """The creator's last ``days`` days up to ``end`` (default: today on the creator's clock)."""
    days = max(1, int(days))
    end = end or creator_today(creator)
    start = end - timedelta(days=days - 1)
    rows = DailyPerformance.objects.filter(creator=creator, day__gte=start, day__lte=end).order_by()
    matrix = series_matrix(rows.values_list("creator_id", "day", *METRIC_NAMES), [creator.pk], start, days)[0]
    return DailySeries(
        days=[start + timedelta(days=offset) for offset in range(days)],
        values={name: matrix[:, position] for position, name in enumerate(SERIES_NAMES)},
    )


def offer_history_for_agency(agency_id: int) -> pricing.OfferHistory | None:
    """Every offer of the agency, oldest first (so a creator's last one is their current price), in
    the pricing engine's arrays; None when there are none. Prices above the engine's ceiling are
    typos or bundles, not PPV prices, and are left out rather than failing the whole history."""
    rows = list(
        Offer.objects.for_agency(agency_id)
        .filter(price__gt=0, price__lte=pricing.MAX_PRICE, recipients__gt=0)
        .order_by("sent_at", "id")
        .values_list("price", "recipients", "unlocks", "creator_id")
    )
    if not rows:
        return None
    prices, recipients, unlocks, creators = zip(*rows, strict=True)
    return pricing.offer_history(
        price=np.asarray(prices, dtype=float),
        recipients=np.asarray(recipients, dtype=np.int64),
        unlocks=np.asarray(unlocks, dtype=np.int64),
        creator=np.asarray(creators, dtype=np.int64),
    )


def offer_list(*, agency_id: int, creator_ids: Iterable[int] | None = None) -> QuerySet[Offer]:
    offers = Offer.objects.for_agency(agency_id).select_related("creator")
    if creator_ids is not None:
        offers = offers.filter(creator_id__in=list(creator_ids))
    return offers.order_by("-sent_at", "-id")


@dataclass(frozen=True)
class TrackRecordRow:
    kind: str
    label: str
    accepted: int
    dismissed: int
    measured: int
    met: int
    missed: int
    hit_rate: float | None  # met / measured
    mean_ratio: float | None  # mean outcome_value / expected_value over measured ones


def track_record(
    *, agency_id: int, creator_id: int | None = None, creator_ids: Iterable[int] | None = None
) -> list[TrackRecordRow]:
    """How accepted recommendations turned out, one row per kind (in Recommendation.Kind order):
    for one creator, for ``creator_ids`` (the creators a member sees), or for the whole agency."""
    recommendations = Recommendation.objects.for_agency(agency_id)
    if creator_id is not None:
        recommendations = recommendations.filter(creator_id=creator_id)
    if creator_ids is not None:
        recommendations = recommendations.filter(creator_id__in=creator_ids)
    measured = Q(outcome__in=[Recommendation.Outcome.MET, Recommendation.Outcome.MISSED])
    stats = {
        row["kind"]: row
        for row in recommendations.order_by()
        .values("kind")
        .annotate(
            accepted=Count("id", filter=Q(status=Recommendation.Status.ACCEPTED)),
            dismissed=Count("id", filter=Q(status=Recommendation.Status.DISMISSED)),
            measured=Count("id", filter=measured),
            met=Count("id", filter=Q(outcome=Recommendation.Outcome.MET)),
            missed=Count("id", filter=Q(outcome=Recommendation.Outcome.MISSED)),
            mean_ratio=Avg(
                Cast(F("outcome_value"), FloatField()) / Cast(F("expected_value"), FloatField()),
                filter=measured & Q(expected_value__gt=0, outcome_value__isnull=False),
            ),
        )
    }
    rows = []
    for kind, label in Recommendation.Kind.choices:
        row = stats.get(kind, {})
        measured_count = row.get("measured", 0)
        ratio = row.get("mean_ratio")
        rows.append(
            TrackRecordRow(
                kind=kind,
                label=str(label),
                accepted=row.get("accepted", 0),
                dismissed=row.get("dismissed", 0),
                measured=measured_count,
                met=row.get("met", 0),
                missed=row.get("missed", 0),
                hit_rate=row.get("met", 0) / measured_count if measured_count else None,
                mean_ratio=float(ratio) if ratio is not None else None,
            )
        )
    return rows


def open_recommendations(*, agency_id: int, creator_ids: Iterable[int] | None = None) -> QuerySet[Recommendation]:
    recommendations = Recommendation.objects.for_agency(agency_id).filter(status=Recommendation.Status.OPEN)
    if creator_ids is not None:
        recommendations = recommendations.filter(creator_id__in=list(creator_ids))
    return recommendations.select_related("creator").order_by("-created_at", "-id")


def recommendation_list(
    *,
    agency_id: int,
    creator_ids: Iterable[int] | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> QuerySet[Recommendation]:
    recommendations = Recommendation.objects.for_agency(agency_id).select_related("creator")
    if creator_ids is not None:
        recommendations = recommendations.filter(creator_id__in=list(creator_ids))
    if status:
        recommendations = recommendations.filter(status=status)
    if kind:
        recommendations = recommendations.filter(kind=kind)
    waiting_first = Case(When(status=Recommendation.Status.OPEN, then=Value(0)), default=Value(1))
    return recommendations.order_by(waiting_first, "-created_at", "-id")


def recent_anomalies(
    *, agency_id: int, creator_ids: Iterable[int] | None = None, days: int = 30, now: datetime | None = None
) -> QuerySet[Anomaly]:
    since = (now or timezone.now()) - timedelta(days=days)
    anomalies = Anomaly.objects.for_agency(agency_id).filter(at__gte=since)
    if creator_ids is not None:
        anomalies = anomalies.filter(creator_id__in=list(creator_ids))
    return anomalies.select_related("creator", "acknowledged_by").order_by("-at", "-id")


def service_anomaly_scope(*, membership: Membership, user: Any) -> tuple[bool, bool]:
    """Which service anomalies a member (``user``, the membership's user) sees: (the agency's AI
    cost, the platform's request rate, errors and latency). They go to whom monitoring's alerts on
    them go: the agency's series to its owners and managers, the platform's to staff. The page and
    the API both ask here."""
    agency = membership.role in (Role.OWNER, Role.MANAGER)
    platform = bool(user.is_active and user.is_staff)
    return agency, platform


def service_anomaly_list(
    *, agency_id: int, include_agency: bool = True, include_platform: bool = False, days: int = 30
) -> QuerySet[ServiceAnomaly]:
    """The agency's service anomalies (its AI cost per hour) of the last ``days`` days when
    ``include_agency``, and the platform-wide ones (request rate, errors, latency) when
    ``include_platform`` (staff), newest first (``service_anomaly_scope`` says which a member gets)."""
    since = timezone.now() - timedelta(days=days)
    scope = Q(pk__in=[])
    if include_agency:
        scope |= Q(agency_id=agency_id)
    if include_platform:
        scope |= Q(agency__isnull=True)
    return ServiceAnomaly.objects.filter(scope, at__gte=since).order_by("-at", "-id")
