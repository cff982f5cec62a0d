"""The nightly run: for every creator, price and timing recommendations and the last 30 days'
anomalies stored, people told about new ones, then the outcomes of accepted advice measured
(outcomes.py). Scheduled by tasks.py; ``services.run_nightly`` is its public name.

Rules the database cannot state:
- One OPEN recommendation per creator, kind and granularity (the database enforces the "one"; an
  anomaly's advice is daily or hourly, the others have none, so the hourly task and the nightly run
  never replace each other's "investigate a change"): new advice that differs from the open one
  expires it; unchanged advice keeps the row, so members never see the same advice re-issued every
  night, and a decided one is never touched.
- Anomalies are stored once per point (creator, metric, granularity, at); people are told once
  per anomaly (``notified_at``), only of medium and high ones (``_alert``).
- Queries do not grow with the number of creators: each agency's series, offers, posts, hourly
  sends, open recommendations and known anomalies are read once and written with bulk_create.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Agency, Creator, CreatorAssignment, Membership, Role
from apps.core.errors import ApplicationError
from apps.notifications.models import Notification
from apps.notifications.services import notification_send
from apps.optimization import pricing, selectors, timing
from apps.optimization.analysis import (
    ANOMALY_HISTORY_DAYS,
    ANOMALY_REPORT_DAYS,
    HOURLY_HISTORY_DAYS,
    HOURLY_REPORT_HOURS,
    TIMING_WINDOW_DAYS,
    DetectedAnomaly,
    detect_daily,
    detect_hourly,
    hourly_matrix,
    message_events,
    post_events,
    timing_by_creator,
)
from apps.optimization.campaign_offers import sync_campaign_offers
from apps.optimization.models import (
    ANOMALY_LABELS,
    Anomaly,
    HourlyPerformance,
    Recommendation,
    Risk,
    Sensitivity,
    Severity,
    Strategy,
)
from apps.optimization.outcomes import measure_outcomes

logger = logging.getLogger(__name__)

ALERT_SEVERITY = {Severity.HIGH: "ticket", Severity.MEDIUM: "warning"}
NOTIFIED_SEVERITIES = (Severity.HIGH, Severity.MEDIUM)


# --- Recommendations from engine answers -------------------------------------------------------------


@dataclass
class Advice:
    """A recommendation the nightly run wants open, and what makes it "the same advice"."""

    creator_id: int
    kind: str
    signature: Any
    fields: dict[str, Any]
    granularity: str = ""  # anomaly advice: "day" or "hour", part of the open recommendation's key


def _percent(ratio: float) -> str:
    return f"{ratio:+.0%}"


def price_advice(creator_id: int, answer: pricing.Recommendation, history: pricing.OfferHistory) -> Advice:
    own = np.flatnonzero(history.creator == creator_id)
    current = float(history.price[own[-1]]) if len(own) else None
    baseline = None
    if current is not None and answer.curve:
        nearest = min(answer.curve, key=lambda point: abs(point.price - current))
        baseline = current * nearest.mean
    price = round(answer.price, 2)
    expected = answer.expected_revenue_per_recipient
    if baseline and baseline > 0 and abs(price - (current or 0)) >= 0.01:
        verb = "Raise" if price > (current or 0) else "Lower"
        headline = f"{verb} PPV to ${price:,.2f}: {_percent(expected / baseline - 1)} expected revenue"
    elif current is not None and abs(price - current) < 0.01:
        headline = f"Keep PPV at ${price:,.2f}: it earns the most for your strategy"
    else:
        headline = f"Ask ${price:,.2f} for PPV: about ${expected:,.2f} per fan it reaches"
    headline = f"{headline}, {answer.confidence:.0%} confidence"
    return Advice(
        creator_id=creator_id,
        kind=Recommendation.Kind.PRICE,
        signature=(price, str(answer.strategy), str(answer.risk)),
        fields={
            "headline": headline[:200],
            "explanation": answer.explanation,
            "strategy": str(answer.strategy),
            "risk": str(answer.risk),
            "payload": {
                "price": price,
                "current_price": current,
                "expected_unlock_rate": answer.expected_unlock_rate,
                "planned_unlock_rate": answer.planned_unlock_rate,
                "bound": answer.bound,
                "curve": [{"price": p.price, "mean": p.mean, "lower": p.lower, "upper": p.upper} for p in answer.curve],
            },
            "expected_value": expected,
            "baseline_value": baseline,
            "confidence": min(1.0, max(0.0, answer.confidence)),
        },
    )


def _slot_words(weekday: int, hour: int) -> str:
    return f"{timing.WEEKDAYS[weekday]} at {hour:02d}:00"


def timing_advice(creator_id: int, answer: timing.TimingAdvice, strategy: str, risk: str) -> Advice | None:
    """None when the best slot does not beat what the creator does today."""
    if not answer.slots or answer.slots[0].lift <= 0:
        return None
    kind = Recommendation.Kind.POST_TIME if answer.kind == "post" else Recommendation.Kind.MESSAGE_TIME
    best = answer.slots[0]
    verb = "Post" if answer.kind == "post" else "Message fans"
    unit = "engagement per post" if answer.kind == "post" else "replies per message"
    headline = f"{verb} on {_slot_words(best.weekday, best.hour)} ({answer.timezone}): {_percent(best.lift)} {unit}"
    slots = [
        {
            "weekday": slot.weekday,
            "hour": slot.hour,
            "expected_rate": slot.expected_rate,
            "lift": slot.lift,
            "confidence": slot.confidence,
        }
        for slot in answer.slots
    ]
    return Advice(
        creator_id=creator_id,
        kind=kind,
        signature=(answer.timezone, tuple(sorted((slot.weekday, slot.hour) for slot in answer.slots))),
        fields={
            "headline": f"{headline}, {best.confidence:.0%} confidence"[:200],
            "explanation": answer.message,
            "strategy": strategy,
            "risk": risk,
            "payload": {"timezone": answer.timezone, "slots": slots},
            "expected_value": float(np.mean([slot.expected_rate for slot in answer.slots])),
            "baseline_value": answer.baseline_rate,
            "confidence": min(1.0, max(0.0, best.confidence)),
        },
    )


def anomaly_advice(creator_id: int, anomaly: DetectedAnomaly) -> Advice:
    headline = (
        f"{anomaly.label} was {anomaly.direction} the expected range on {anomaly.when}: "
        f"{anomaly.value:,.2f} vs {anomaly.expected_low:,.2f} to {anomaly.expected_high:,.2f}"
    )
    return Advice(
        creator_id=creator_id,
        kind=Recommendation.Kind.ANOMALY,
        signature=(anomaly.metric, anomaly.at.isoformat()),
        granularity=anomaly.granularity,
        fields={
            "headline": headline[:200],
            "explanation": f"Check what changed that {anomaly.granularity} (a platform issue, a missed post, "
            "a price change) before it repeats.",
            "payload": {
                "granularity": anomaly.granularity,
                "metric": anomaly.metric,
                "day": anomaly.day.isoformat(),
                "at": anomaly.at.isoformat(),
                "value": anomaly.value,
                "expected_low": anomaly.expected_low,
                "expected_high": anomaly.expected_high,
                "severity": anomaly.severity,
            },
            "expected_value": (anomaly.expected_low + anomaly.expected_high) / 2,
            "baseline_value": anomaly.value,
            "confidence": anomaly.score,
        },
    )


def _signature_of(recommendation: Recommendation) -> Any:
    payload = recommendation.payload or {}
    if recommendation.kind == Recommendation.Kind.PRICE:
        price = payload.get("price")
        return (round(float(price), 2) if price is not None else None, recommendation.strategy, recommendation.risk)
    if recommendation.kind in (Recommendation.Kind.POST_TIME, Recommendation.Kind.MESSAGE_TIME):
        slots = payload.get("slots") or []
        return (payload.get("timezone"), tuple(sorted((slot["weekday"], slot["hour"]) for slot in slots)))
    return (payload.get("metric"), payload.get("at"))


# --- The nightly run -----------------------------------------------------------------------------------


@dataclass
class NightlyReport:
    creators: int = 0
    recommendations_created: int = 0
    anomalies_stored: int = 0
    outcomes_measured: int = 0
    offers_synced: int = 0  # offers recorded or recounted from finished PPV campaigns
    seconds: float = 0.0
    agencies: int = 0
    skipped: list[str] = field(default_factory=list)


def run_nightly(*, agency_id: int | None = None, now: datetime | None = None) -> NightlyReport:
    """For every active creator (of one agency, or all): finished PPV campaigns recorded as offers
    (campaign_offers.py), price and timing recommendations, the last 30 days' anomalies stored and
    alerted, then the outcomes of accepted recommendations measured.

    Queries do not grow with the number of creators: each agency's series, offers, posts, hourly
    sends, open recommendations and known anomalies are read once and written with bulk_create.
    """
    started = time.perf_counter()
    now = now or timezone.now()
    report = NightlyReport()
    report.offers_synced = sync_campaign_offers(agency_id=agency_id, now=now)
    agencies = Agency.objects.order_by("id").values_list("id", flat=True)
    if agency_id is not None:
        agencies = agencies.filter(pk=agency_id)
    for agency in list(agencies):
        # Not one transaction per agency: an agency of hundreds of creators takes tens of seconds,
        # and on the embedded SQLite default that would hold every other writer that long. Its
        # writes are idempotent, so the next run completes what a failure left half done.
        try:
            _nightly_agency(agency, now, report)
        except Exception:  # one agency's failure must not leave every later agency without its night
            if agency_id is not None:
                raise  # one agency asked for (its workflow step): the step fails and is retried
            logger.exception("optimization nightly failed for agency %s", agency)
            report.skipped.append(f"agency {agency}: the nightly run failed (logged); the next run tries again")
            continue
        report.agencies += 1
    report.outcomes_measured = measure_outcomes(now=now, agency_id=agency_id)
    report.seconds = time.perf_counter() - started
    return report


def _nightly_agency(agency_id: int, now: datetime, report: NightlyReport) -> None:
    creators = list(
        Creator.objects.for_agency(agency_id)
        .filter(is_archived=False)
        .order_by("id")
        .only("id", "agency_id", "timezone", "display_name")
    )
    if not creators:
        return
    report.creators += len(creators)
    default, overrides = selectors.settings_for_agency(agency_id)
    history = selectors.offer_history_for_agency(agency_id)
    since = now - timedelta(days=TIMING_WINDOW_DAYS)
    zones = {creator.pk: selectors.zone_name(creator.timezone) for creator in creators}
    posts = post_events(agency_id, since=since)
    messages = message_events(agency_id, since=since)

    slot_answers = {
        "post": timing_by_creator(posts, creators, zones, "post"),
        "message": timing_by_creator(messages, creators, zones, "message"),
    }

    ends = {creator.pk: selectors.creator_today(creator, now) - timedelta(days=1) for creator in creators}
    start = min(ends.values()) - timedelta(days=ANOMALY_HISTORY_DAYS - 1)
    n_days = (max(ends.values()) - start).days + 1
    matrix = selectors.series_matrix(
        selectors.daily_rows(agency_id=agency_id, start=start, end=max(ends.values())),
        [creator.pk for creator in creators],
        start,
        n_days,
    )

    advice: list[Advice] = []
    detected: dict[int, list[DetectedAnomaly]] = {}  # hourly series: the hourly task (run_hourly)
    for position, creator in enumerate(creators):
        chosen = overrides.get(creator.pk) or default
        strategy = chosen.strategy if chosen else Strategy.BALANCED
        risk = chosen.risk if chosen else Risk.MODERATE
        sensitivity = chosen.sensitivity if chosen else Sensitivity.MEDIUM
        try:
            answer = pricing.recommend(history, creator.pk, strategy, risk)
            if isinstance(answer, pricing.Recommendation) and history is not None:
                advice.append(price_advice(creator.pk, answer, history))
            for kind in ("post", "message"):
                slots = slot_answers[kind].get(creator.pk)
                if isinstance(slots, timing.TimingAdvice):
                    found = timing_advice(creator.pk, slots, strategy, risk)
                    if found is not None:
                        advice.append(found)
            last = (ends[creator.pk] - start).days
            window = matrix[position, last - ANOMALY_HISTORY_DAYS + 1 : last + 1]
            detected.setdefault(creator.pk, []).extend(detect_daily(
                window,
                start=ends[creator.pk] - timedelta(days=ANOMALY_HISTORY_DAYS - 1),
                report_from=ANOMALY_HISTORY_DAYS - ANOMALY_REPORT_DAYS,
                sensitivity=sensitivity,
                tz=zones[creator.pk],
            ))  # fmt: skip
        except ApplicationError as error:  # one creator's unusable data must not stop the agency's run
            logger.warning("optimization skipped creator %s: %s", creator.pk, error)
            report.skipped.append(f"{creator.display_name}: {error.message}")

    run_date = now.astimezone(UTC).date()
    with transaction.atomic():
        new_anomalies = _store_anomalies(agency_id, detected, now)
        report.anomalies_stored += len(new_anomalies)
        for creator_id, anomaly in _latest_notable(new_anomalies).items():
            advice.append(anomaly_advice(creator_id, anomaly))
        report.recommendations_created += _store_advice(agency_id, advice, run_date)
        _alert(agency_id, creators, now)


def _detect_hourly_agency(
    agency_id: int, creator_ids: list[int], default: Any, overrides: dict[int, Any], now: datetime
) -> dict[int, list[DetectedAnomaly]]:
    """These creators' hourly anomalies of the last HOURLY_REPORT_HOURS closed UTC hours, from one
    query over the agency's hourly rows (analysis.hourly_matrix)."""
    end = _closed_hour(now)
    n_hours = HOURLY_HISTORY_DAYS * 24
    start = end - timedelta(hours=n_hours)
    matrix = hourly_matrix(agency_id=agency_id, creator_ids=creator_ids, start=start, n_hours=n_hours)
    found: dict[int, list[DetectedAnomaly]] = {}
    for position, creator_id in enumerate(creator_ids):
        chosen = overrides.get(creator_id) or default
        sensitivity = chosen.sensitivity if chosen else Sensitivity.MEDIUM
        try:
            found[creator_id] = detect_hourly(
                matrix[position], start=start, report_from=n_hours - HOURLY_REPORT_HOURS, sensitivity=sensitivity
            )
        except ApplicationError as error:
            logger.warning("hourly anomalies skipped creator %s: %s", creator_id, error)
    return found


def _closed_hour(now: datetime) -> datetime:
    """The start of the current UTC hour: the hours before it are over, this one is not."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def run_hourly(*, agency_id: int | None = None, now: datetime | None = None) -> NightlyReport:
    """Every hour: the hourly anomalies (messages sent, fan replies per UTC hour) of every active
    creator stored, alerted and turned into an "investigate" recommendation like the nightly daily
    ones. Each point is stored once, so a run repeated (acks_late) or overlapping stores nothing twice;
    the nightly run leaves hourly series to this task (about 0.1 s of detector time a creator
    for six weeks of two series, measured on a busy two-core machine).

    One query finds the creators with an hourly row in the hours judged (only they can have an
    anomaly there: an hour without a row is a gap); agencies without any cost nothing more, and
    ``report.agencies`` counts the agencies that had some.
    """
    started = time.perf_counter()
    now = now or timezone.now()
    report = NightlyReport()
    end = _closed_hour(now)
    recent = HourlyPerformance.objects.filter(hour__gte=end - timedelta(hours=HOURLY_REPORT_HOURS), hour__lt=end)
    if agency_id is not None:
        recent = recent.filter(agency_id=agency_id)
    with_rows: dict[int, set[int]] = defaultdict(set)
    for agency, creator_id in recent.order_by().values_list("agency_id", "creator_id").distinct():
        with_rows[agency].add(creator_id)
    for agency in sorted(with_rows):
        creators = list(
            Creator.objects.for_agency(agency)
            .filter(is_archived=False)
            .order_by("id")
            .only("id", "agency_id", "timezone", "display_name")
        )
        judged = [creator.pk for creator in creators if creator.pk in with_rows[agency]]
        if not judged:
            continue
        report.agencies += 1
        report.creators += len(judged)
        default, overrides = selectors.settings_for_agency(agency)
        detected = _detect_hourly_agency(agency, judged, default, overrides, now)
        with transaction.atomic():
            new_anomalies = _store_anomalies(agency, detected, now)
            report.anomalies_stored += len(new_anomalies)
            advice = [anomaly_advice(creator_id, found) for creator_id, found in _latest_notable(new_anomalies).items()]
            report.recommendations_created += _store_advice(agency, advice, now.astimezone(UTC).date())
            _alert(agency, creators, now)
    report.seconds = time.perf_counter() - started
    return report


def _store_anomalies(
    agency_id: int, detected: dict[int, list[DetectedAnomaly]], now: datetime
) -> list[tuple[int, DetectedAnomaly]]:
    """Store the points not stored yet; answers the new ones."""
    if not any(detected.values()):
        return []
    since = now - timedelta(days=ANOMALY_REPORT_DAYS + 2)
    known = set(
        Anomaly.objects.for_agency(agency_id)
        .filter(at__gte=since)
        .values_list("creator_id", "metric", "granularity", "at")
    )
    new = [
        (creator_id, anomaly)
        for creator_id, found in detected.items()
        for anomaly in found
        if (creator_id, anomaly.metric, anomaly.granularity, anomaly.at) not in known
    ]
    Anomaly.objects.bulk_create(
        [
            Anomaly(
                agency_id=agency_id,
                creator_id=creator_id,
                metric=anomaly.metric,
                granularity=anomaly.granularity,
                at=anomaly.at,
                value=anomaly.value,
                expected_low=anomaly.expected_low,
                expected_high=anomaly.expected_high,
                score=anomaly.score,
                severity=anomaly.severity,
            )
            for creator_id, anomaly in new
        ],
        ignore_conflicts=True,  # a concurrent run stored the same point: it is there either way
    )
    return new


def _latest_notable(new: list[tuple[int, DetectedAnomaly]]) -> dict[int, DetectedAnomaly]:
    latest: dict[int, DetectedAnomaly] = {}
    for creator_id, anomaly in new:
        if anomaly.severity not in NOTIFIED_SEVERITIES:
            continue
        current = latest.get(creator_id)
        if current is None or (anomaly.at, anomaly.score) > (current.at, current.score):
            latest[creator_id] = anomaly
    return latest


def _store_advice(agency_id: int, advice: list[Advice], run_date: date) -> int:
    """Open the new advice, expiring the open recommendation of the same creator, kind and
    granularity only when the advice changed; answers how many were created."""
    if not advice:
        return 0
    open_now = {
        (recommendation.creator_id, recommendation.kind, recommendation.granularity): recommendation
        for recommendation in Recommendation.objects.for_agency(agency_id).filter(status=Recommendation.Status.OPEN)
    }
    expire: list[int] = []
    create: list[Recommendation] = []
    for item in advice:
        current = open_now.get((item.creator_id, item.kind, item.granularity))
        if current is not None and _signature_of(current) == item.signature:
            continue
        if current is not None:
            expire.append(current.pk)
        create.append(
            Recommendation(
                agency_id=agency_id,
                creator_id=item.creator_id,
                kind=item.kind,
                granularity=item.granularity,
                run_date=run_date,
                **item.fields,
            )
        )
    if expire:
        Recommendation.objects.filter(pk__in=expire, status=Recommendation.Status.OPEN).update(
            status=Recommendation.Status.EXPIRED
        )
    # Two runs for one agency at once (the beat's and a member's workflow) may both open the same
    # advice: the one-open-per-kind constraint keeps the first, the second is skipped.
    Recommendation.objects.bulk_create(create, ignore_conflicts=True)
    return len(create)


def _alert(agency_id: int, creators: list[Creator], now: datetime) -> None:
    """Tell people about medium and high anomalies not told yet, once each.

    One monitoring alert per agency (kind "anomaly", key ``optimization.anomaly:<agency>``): when
    it opens, monitoring tells the owners and managers (in the app, by email, by webhook); while it
    is still firing, later nights' new anomalies reach them here instead, so nobody hears of the
    same night twice. Chatters hear here of their own creators' anomalies only. One summary per
    member per run: the number of notifications grows with members, not creators.
    """
    pending = list(
        Anomaly.objects.for_agency(agency_id)
        .filter(
            notified_at__isnull=True,
            severity__in=NOTIFIED_SEVERITIES,
            at__gte=now - timedelta(days=ANOMALY_REPORT_DAYS + 2),
        )
        .order_by("-at", "-id")
        .values_list("id", "creator_id", "metric", "severity")
    )
    if not pending:
        return
    names = {creator.pk: creator.display_name for creator in creators}
    by_creator: dict[int, list[tuple]] = defaultdict(list)
    for row in pending:
        by_creator[row[1]].append(row)
    high = any(row[3] == Severity.HIGH for row in pending)

    def lines(creator_ids: list[int]) -> str:
        out = []
        for creator_id in creator_ids:
            metrics = ", ".join(dict.fromkeys(ANOMALY_LABELS.get(row[2], row[2]) for row in by_creator[creator_id]))
            out.append(f"{names.get(creator_id, creator_id)}: {metrics}")
        return "\n".join(out)

    from apps.monitoring.alerts import fire  # the monitoring app's alert pipeline (notify, email, webhooks)

    opened = fire(
        f"optimization.anomaly:{agency_id}",
        kind="anomaly",
        severity=ALERT_SEVERITY[Severity.HIGH if high else Severity.MEDIUM],
        title=f"Unusual results for {len(by_creator)} creator{'s' if len(by_creator) != 1 else ''}",
        detail=lines(list(by_creator)),
        agency_id=agency_id,
        values={"anomalies": len(pending), "creators": len(by_creator)},
        now=now,
    )
    roles = [Role.CHATTER] if opened is not None else [Role.OWNER, Role.MANAGER, Role.CHATTER]
    assigned: dict[int, set[int]] = defaultdict(set)
    for membership_id, creator_id in CreatorAssignment.objects.for_agency(agency_id).values_list(
        "membership_id", "creator_id"
    ):
        assigned[membership_id].add(creator_id)
    for membership in Membership.objects.for_agency(agency_id).filter(role__in=roles, user__is_active=True):
        theirs = list(by_creator)
        if membership.role == Role.CHATTER:
            theirs = [creator_id for creator_id in theirs if creator_id in assigned[membership.pk]]
        if not theirs:
            continue
        count = sum(len(by_creator[creator_id]) for creator_id in theirs)
        notification_send(
            membership=membership,
            title=f"{count} unusual {'number' if count == 1 else 'numbers'} in your creators' results",
            body=lines(theirs),
            url=reverse("optimization:anomalies"),
            level=Notification.Level.ERROR if high else Notification.Level.WARNING,
        )
    Anomaly.objects.filter(pk__in=[row[0] for row in pending]).update(notified_at=now)
