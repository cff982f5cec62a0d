"""Optimization actions: the comprehensive answer for one creator, members' decisions on
recommendations and anomalies, settings and offers; and, under their public names, the nightly run
(nightly.py) and outcome measurement (outcomes.py).

The engines (pricing.py, timing.py, anomalies.py) are pure NumPy; analysis.py reads their inputs in
bulk and runs the detector; this module writes what members decide.

Rules the database cannot state:
- Only an OPEN recommendation can be accepted or dismissed (else 409); deciding needs ``edit`` on
  its creator; another agency's, or a creator the member does not see, is 404.
- Acknowledging an anomaly needs a role that acts on the creator (chatters of their creators,
  managers, owners), not a viewer; when none is left open, the agency's anomaly alert resolves.
- An offer's price is above $0 and at most the pricing engine's ceiling; unlocks at most recipients.

What this does not do: schedule anything (tasks.py), or change prices or schedules of campaigns:
accepted advice is the member's to apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, has_perm, require
from apps.accounts.selectors import creator_list
from apps.core.errors import ApplicationError, ConflictError
from apps.core.timezones import moment_check
from apps.optimization import pricing, selectors, timing
from apps.optimization.analysis import (
    ANOMALY_HISTORY_DAYS,
    ANOMALY_REPORT_DAYS,
    TIMING_WINDOW_DAYS,
    DetectedAnomaly,
    creator_timezones,
    detect_daily,
    message_events,
    post_events,
    timing_for,
)
from apps.optimization.models import (
    Anomaly,
    Offer,
    OptimizationSettings,
    Recommendation,
    Risk,
    Sensitivity,
    Source,
    Strategy,
)
from apps.optimization.nightly import NOTIFIED_SEVERITIES, NightlyReport, run_hourly, run_nightly  # noqa: F401 (public here)
from apps.optimization.outcomes import MEASURED_KINDS, measure_outcomes  # noqa: F401 (public here)

logger = logging.getLogger(__name__)


# --- Inputs -------------------------------------------------------------------------------------


def _choice(value: Any, choices: type, field_name: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in choices.values:
        raise ApplicationError(
            f"Unknown {field_name} {value!r}: choose one of {', '.join(choices.values)}.", field=field_name
        )
    return str(value)


# --- Comprehensive ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comprehensive:
    """Everything the engines say about one creator right now."""

    creator: Creator
    strategy: str
    risk: str
    sensitivity: str
    pricing: pricing.Recommendation | pricing.NotEnoughData
    post_timing: timing.TimingResult
    message_timing: timing.TimingResult
    anomalies: list[DetectedAnomaly]
    generated_at: datetime


def resolved_settings(
    creator: Creator, *, strategy: str | None = None, risk: str | None = None, sensitivity: str | None = None
) -> tuple[str, str, str]:
    """The strategy, risk and sensitivity to use: those given (validated: an unknown one raises
    ApplicationError naming the field), else the creator's settings in force."""
    strategy = _choice(strategy, Strategy, "strategy")
    risk = _choice(risk, Risk, "risk")
    sensitivity = _choice(sensitivity, Sensitivity, "sensitivity")
    if strategy and risk and sensitivity:
        return strategy, risk, sensitivity
    current = selectors.effective_settings(creator)
    return strategy or current.strategy, risk or current.risk, sensitivity or current.sensitivity


def creator_pricing(*, creator: Creator, strategy: str, risk: str) -> pricing.Recommendation | pricing.NotEnoughData:
    """The PPV price for the creator from the agency's offers (pooled across its creators)."""
    return pricing.recommend(selectors.offer_history_for_agency(creator.agency_id), creator.pk, strategy, risk)


TIMING_CACHE_SECONDS = 600


def creator_timing(*, creator: Creator, now: datetime | None = None) -> tuple[timing.TimingResult, timing.TimingResult]:
    """(posting, messaging) slots in the creator's timezone, from the last TIMING_WINDOW_DAYS of
    the agency's posts (studio post history) and hourly message sends.

    Every creator's slots rest on the whole agency's sends: the agency's part of the fit
    (``timing.fit_agency``) is cached per agency for TIMING_CACHE_SECONDS, so opening creator
    after creator reads and fits the agency's sends once, then costs only the creator's own
    posterior (a few milliseconds). New posts show in the slots within those ten minutes."""
    now = now or timezone.now()
    zones = creator_timezones(creator.agency_id)
    return tuple(_creator_slots(creator, kind, now, zones) for kind in ("post", "message"))  # type: ignore[return-value]


def _creator_slots(creator: Creator, kind: timing.Kind, now: datetime, zones: dict[int, str]) -> timing.TimingResult:
    since = now - timedelta(days=TIMING_WINDOW_DAYS)
    key = f"optimization:timing-fit:{creator.agency_id}:{kind}:{since.date().isoformat()}"
    fit = cache.get(key)
    if fit is None:
        events = (post_events if kind == "post" else message_events)(creator.agency_id, since=since)
        if not len(events):
            return timing_for(events, creator, zones, kind)  # "not enough data yet"
        fit = timing.fit_agency(
            sent_at=events.seconds, engagement=events.engagement, exposure=events.exposure,
            creator_ids=events.creator_ids, creator_timezones=zones,
        )  # fmt: skip
        cache.set(key, fit, TIMING_CACHE_SECONDS)
    return timing.slots_for(fit, creator.pk, tz=zones.get(creator.pk, "UTC"), kind=kind)


def creator_anomalies(*, creator: Creator, sensitivity: str, now: datetime | None = None) -> list[DetectedAnomaly]:
    """The detector's findings in the creator's last ANOMALY_REPORT_DAYS complete days (today is
    not over yet, so it is left out), judged on ANOMALY_HISTORY_DAYS of history; not stored."""
    end = selectors.creator_today(creator, now) - timedelta(days=1)
    series = selectors.daily_series(creator, days=ANOMALY_HISTORY_DAYS, end=end)
    matrix = np.column_stack([series.values[name] for name in selectors.SERIES_NAMES])
    return detect_daily(
        matrix,
        start=series.days[0],
        report_from=ANOMALY_HISTORY_DAYS - ANOMALY_REPORT_DAYS,
        sensitivity=sensitivity,
        tz=selectors.zone_name(creator.timezone),
    )


def comprehensive(
    *,
    creator: Creator,
    strategy: str | None = None,
    risk: str | None = None,
    sensitivity: str | None = None,
    now: datetime | None = None,
) -> Comprehensive:
    """Pricing, posting and messaging times and the last 30 days' anomalies for ``creator``, under
    the settings in force (``effective_settings``) unless a strategy, risk or sensitivity is given.
    An unknown choice raises ApplicationError naming the field."""
    now = now or timezone.now()
    strategy, risk, sensitivity = resolved_settings(creator, strategy=strategy, risk=risk, sensitivity=sensitivity)
    post_timing, message_timing = creator_timing(creator=creator, now=now)
    return Comprehensive(
        creator=creator,
        strategy=strategy,
        risk=risk,
        sensitivity=sensitivity,
        pricing=creator_pricing(creator=creator, strategy=strategy, risk=risk),
        post_timing=post_timing,
        message_timing=message_timing,
        anomalies=creator_anomalies(creator=creator, sensitivity=sensitivity, now=now),
        generated_at=now,
    )


# --- Members' actions ---------------------------------------------------------------------------------


def _visible_creator_ids(membership: Membership):
    return creator_list(membership=membership, include_archived=True).values("id")


def recommendation_get_for_member(*, membership: Membership, recommendation_id: int) -> Recommendation:
    """The recommendation, if it is the member's agency's and about a creator they see; else 404."""
    recommendation = (
        Recommendation.objects.for_agency(membership.agency_id)
        .filter(pk=recommendation_id, creator_id__in=_visible_creator_ids(membership))
        .select_related("creator")
        .first()
    )
    if recommendation is None:
        raise Http404("No such recommendation.")
    return recommendation


def _decide(
    *, membership: Membership, recommendation_id: int, status: str, verb: str, **changes: Any
) -> Recommendation:
    recommendation = recommendation_get_for_member(membership=membership, recommendation_id=recommendation_id)
    require(membership, Perm.EDIT, recommendation.creator)
    now = timezone.now()
    updated = Recommendation.objects.filter(pk=recommendation.pk, status=Recommendation.Status.OPEN).update(
        status=status, decided_by_id=membership.user_id, decided_at=now, **changes
    )
    if not updated:
        recommendation.refresh_from_db(fields=["status"])
        raise ConflictError(
            f"This recommendation is {recommendation.get_status_display().lower()} already: "
            f"only open recommendations can be {verb}.",
            field="status",
        )
    recommendation.refresh_from_db()
    logger.info(
        "recommendation %s %s by user %s (agency %s)",
        recommendation.pk,
        status,
        membership.user_id,
        membership.agency_id,
    )
    return recommendation


def recommendation_accept(*, membership: Membership, recommendation_id: int) -> Recommendation:
    """Accept an open recommendation; price and timing ones are then measured (``measure_outcomes``)."""
    with transaction.atomic():
        recommendation = recommendation_get_for_member(membership=membership, recommendation_id=recommendation_id)
        outcome = Recommendation.Outcome.PENDING if recommendation.kind in MEASURED_KINDS else ""
        return _decide(
            membership=membership,
            recommendation_id=recommendation_id,
            status=Recommendation.Status.ACCEPTED,
            verb="accepted",
            outcome=outcome,
        )


def recommendation_dismiss(*, membership: Membership, recommendation_id: int, reason: str = "") -> Recommendation:
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise ApplicationError("Keep the reason under 200 characters.", field="reason")
    return _decide(
        membership=membership,
        recommendation_id=recommendation_id,
        status=Recommendation.Status.DISMISSED,
        verb="dismissed",
        dismiss_reason=reason,
    )


def anomaly_get_for_member(*, membership: Membership, anomaly_id: int) -> Anomaly:
    anomaly = (
        Anomaly.objects.for_agency(membership.agency_id)
        .filter(pk=anomaly_id, creator_id__in=_visible_creator_ids(membership))
        .select_related("creator")
        .first()
    )
    if anomaly is None:
        raise Http404("No such anomaly.")
    return anomaly


def anomaly_acknowledge(*, membership: Membership, anomaly_id: int) -> Anomaly:
    """Mark an anomaly as seen (idempotent). Chatters may acknowledge their creators' anomalies:
    it changes nothing but the list they work from. When no medium or high anomaly of the agency is
    left open, its monitoring alert resolves."""
    anomaly = anomaly_get_for_member(membership=membership, anomaly_id=anomaly_id)
    if not has_perm(membership, Perm.SEND_MESSAGES, anomaly.creator):
        require(membership, Perm.EDIT, anomaly.creator)
    now = timezone.now()
    Anomaly.objects.filter(pk=anomaly.pk, status=Anomaly.Status.OPEN).update(
        status=Anomaly.Status.ACKNOWLEDGED, acknowledged_by_id=membership.user_id, acknowledged_at=now
    )
    anomaly.refresh_from_db()
    still_open = Anomaly.objects.for_agency(membership.agency_id).filter(
        status=Anomaly.Status.OPEN, severity__in=NOTIFIED_SEVERITIES, notified_at__isnull=False
    )
    if not still_open.exists():
        from apps.monitoring.alerts import resolve

        resolve(f"optimization.anomaly:{membership.agency_id}", now=now)
    return anomaly


# --- Settings and offers ---------------------------------------------------------------------------------


def settings_update(
    *,
    membership: Membership,
    creator: Creator | None = None,
    strategy: str,
    risk: str,
    sensitivity: str,
    explore_prices: bool | None = None,
) -> OptimizationSettings:
    """Set the agency's default (``creator`` None) or one creator's override. ``explore_prices``
    None (an API request that leaves it out) keeps the stored choice, off for a new row: an
    integrator changing the strategy does not stop a campaign's price exploration unawares."""
    require(membership, Perm.EDIT, creator)
    if creator is not None and creator.agency_id != membership.agency_id:
        raise Http404("No such creator.")
    values = {
        "strategy": _choice(strategy, Strategy, "strategy"),
        "risk": _choice(risk, Risk, "risk"),
        "sensitivity": _choice(sensitivity, Sensitivity, "sensitivity"),
    }
    for name, value in values.items():
        if value is None:
            raise ApplicationError(f"Choose a {name}.", field=name)
    if explore_prices is not None and not isinstance(explore_prices, bool):
        raise ApplicationError("explore_prices must be true or false.", field="explore_prices")
    with transaction.atomic():
        row, _created = OptimizationSettings.objects.select_for_update().get_or_create(
            agency_id=membership.agency_id,
            creator=creator,
            defaults={**values, "explore_prices": bool(explore_prices), "updated_by_id": membership.user_id},
        )
        for name, value in values.items():
            setattr(row, name, value)
        if explore_prices is not None:
            row.explore_prices = explore_prices
        row.updated_by_id = membership.user_id
        row.save()
    return row


def offer_record(
    *,
    membership: Membership,
    creator: Creator,
    price: Any,
    recipients: int,
    unlocks: int = 0,
    revenue: Any = None,
    sent_at: datetime | None = None,
    currency: str | None = None,
    external_id: str = "",
) -> Offer:
    """Record a PPV offer and what it earned (revenue defaults to price x unlocks, the currency
    to the creator's)."""
    require(membership, Perm.EDIT, creator)
    if creator.agency_id != membership.agency_id:
        raise Http404("No such creator.")
    price = _money(price, "price")
    if price <= 0:
        raise ApplicationError("The price must be above $0.", field="price")
    if price > Decimal(str(pricing.MAX_PRICE)):
        raise ApplicationError(f"A PPV price is at most ${pricing.MAX_PRICE:.0f}.", field="price")
    for name, count in (("recipients", recipients), ("unlocks", unlocks)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ApplicationError(f"{name} must be a whole number, 0 or more.", field=name)
        if count > 2_000_000_000:
            raise ApplicationError(f"{name} is too large.", field=name)
    if recipients < 1:
        raise ApplicationError("An offer reaches at least one fan.", field="recipients")
    if unlocks > recipients:
        raise ApplicationError(f"Unlocks ({unlocks}) cannot exceed recipients ({recipients}).", field="unlocks")
    revenue = (price * unlocks) if revenue is None else _money(revenue, "revenue")
    if revenue < 0:
        raise ApplicationError("Revenue cannot be negative.", field="revenue")
    if revenue >= Decimal("10000000000"):
        raise ApplicationError("Revenue is too large.", field="revenue")
    sent_at = sent_at or timezone.now()
    if timezone.is_naive(sent_at):
        raise ApplicationError("Give sent_at with a timezone (e.g. 2026-05-01T20:00:00Z).", field="sent_at")
    moment_check(sent_at, field="sent_at")
    if sent_at > timezone.now() + timedelta(minutes=5):
        raise ApplicationError("An offer cannot have been sent in the future.", field="sent_at")
    currency = (currency or creator.currency or "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ApplicationError("currency is a three-letter code such as USD.", field="currency")
    external_id = (external_id or "").strip()[:128]
    if external_id and Offer.objects.filter(creator=creator, external_id=external_id).exists():
        raise ConflictError("An offer with this external_id is already recorded for the creator.", field="external_id")
    try:
        with transaction.atomic():
            return Offer.objects.create(
                agency_id=membership.agency_id,
                creator=creator,
                sent_at=sent_at,
                price=price,
                currency=currency,
                recipients=recipients,
                unlocks=unlocks,
                revenue=revenue,
                source=Source.MANUAL,
                external_id=external_id,
            )
    except IntegrityError:  # the same external_id recorded a moment ago by another request
        raise ConflictError(
            "An offer with this external_id is already recorded for the creator.", field="external_id"
        ) from None


def _money(value: Any, field_name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ApplicationError(f"{field_name} must be a number.", field=field_name) from None
    if not amount.is_finite():
        raise ApplicationError(f"{field_name} must be a finite number.", field=field_name)
    if abs(amount) >= Decimal("10000000000"):
        raise ApplicationError(f"{field_name} is too large.", field=field_name)
    return amount.quantize(Decimal("0.01"))
