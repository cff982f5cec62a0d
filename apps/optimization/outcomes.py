"""Outcomes of accepted recommendations: did the accepted price or time earn what was expected?
The rule is in ``measure_outcomes``'s docstring; the nightly run calls it last. What this does not
do: judge dismissed or expired advice.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.optimization import selectors, timing
from apps.optimization.analysis import HALF_HOUR, epoch_seconds
from apps.optimization.models import (
    HOURLY_METRICS,
    HourlyPerformance,
    Offer,
    Recommendation,
)
from apps.studio.selectors import post_engagement_history

OUTCOME_WINDOW_DAYS = 30  # accepted advice without enough evidence after this long: no_data
OUTCOME_MET_RATIO = 0.9  # met when it earned at least 90 % of what was expected
PRICE_TOLERANCE = 0.10  # an offer within +-10 % of the recommended price counts
PRICE_MIN_RECIPIENTS = 50
TIMING_MIN_SENDS = 3
# An anomaly recommendation is judged on the points after it was accepted and after the flagged
# point: the first ANOMALY_WINDOW of them, once ANOMALY_MIN_POINTS (days or hours) have data.
ANOMALY_WINDOW = {"day": timedelta(days=7), "hour": timedelta(hours=48)}
ANOMALY_MIN_POINTS = {"day": 3, "hour": 6}
MEASURED_KINDS = (
    Recommendation.Kind.PRICE,
    Recommendation.Kind.POST_TIME,
    Recommendation.Kind.MESSAGE_TIME,
    Recommendation.Kind.ANOMALY,
)


def measure_outcomes(*, now: datetime | None = None, agency_id: int | None = None) -> int:
    """Judge accepted recommendations on what happened after they were accepted; answers how many
    got an outcome.

    - PRICE: the creator's offers sent after ``decided_at`` at a price within +-10 % of the
      recommended one; with at least one such offer and 50 recipients in all, ``outcome_value`` is
      their revenue per recipient.
    - POST_TIME: the creator's posts after ``decided_at`` in one of the recommended slots (weekday
      and clock hour in the recommendation's timezone); with at least 3, ``outcome_value`` is their
      mean engagement (likes + comments) per post.
    - MESSAGE_TIME: the creator's hourly message sends after ``decided_at`` in the recommended slots;
      with at least 3 such hours, ``outcome_value`` is replies per message sent.
    - ANOMALY ("investigate a change"): the flagged metric's values after both the flagged point and
      ``decided_at``, within 7 days (48 hours for an hourly anomaly) of the later of the two; with
      at least 3 days (6 hours) of data, ``outcome_value`` is their median. ``met`` when that median
      is back inside the range the detector expected at the flagged point (the member looked into
      it and the metric returned to normal), ``missed`` when it is still outside (the change
      persisted: a drop that was not fixed, or a new level).

    Price and timing advice is ``met`` when ``outcome_value`` is at least 90 % of
    ``expected_value``, else ``missed``. Still not enough evidence 30 days after acceptance:
    ``no_data``. Otherwise it stays ``pending``.
    """
    now = now or timezone.now()
    pending = Recommendation.objects.filter(
        status=Recommendation.Status.ACCEPTED,
        outcome=Recommendation.Outcome.PENDING,
        kind__in=MEASURED_KINDS,
        decided_at__isnull=False,
    )
    if agency_id is not None:
        pending = pending.for_agency(agency_id)
    pending = list(pending.select_related("creator").order_by("agency_id", "id"))
    if not pending:
        return 0
    by_agency: dict[int, list[Recommendation]] = defaultdict(list)
    for recommendation in pending:
        by_agency[recommendation.agency_id].append(recommendation)
    changed: list[Recommendation] = []
    for agency, recommendations in by_agency.items():
        changed += _measure_agency(agency, recommendations, now)
    Recommendation.objects.bulk_update(changed, ["outcome", "outcome_value", "outcome_samples", "outcome_measured_at"])
    return len(changed)


def _measure_agency(agency_id: int, recommendations: list[Recommendation], now: datetime) -> list[Recommendation]:
    since = min(recommendation.decided_at for recommendation in recommendations)
    creator_ids = {recommendation.creator_id for recommendation in recommendations}
    kinds = {recommendation.kind for recommendation in recommendations}
    offers: dict[int, list[tuple]] = defaultdict(list)
    posts: dict[int, list[tuple]] = defaultdict(list)
    sends: dict[int, list[tuple]] = defaultdict(list)
    if Recommendation.Kind.PRICE in kinds:
        for row in (
            Offer.objects.for_agency(agency_id)
            .filter(creator_id__in=creator_ids, sent_at__gt=since)
            .values_list("creator_id", "sent_at", "price", "recipients", "unlocks", "revenue")
        ):
            offers[row[0]].append(row[1:])
    if Recommendation.Kind.POST_TIME in kinds:
        for creator_id, posted_at, engagement in post_engagement_history(agency_id=agency_id, since=since):
            if creator_id in creator_ids:
                posts[creator_id].append((posted_at, float(engagement)))
    anomaly_series: dict[tuple[int, str, str], list[tuple[datetime, float]]] = {}
    if Recommendation.Kind.ANOMALY in kinds:
        anomaly_series = _anomaly_series(
            agency_id, [r for r in recommendations if r.kind == Recommendation.Kind.ANOMALY], since, now
        )
    if Recommendation.Kind.MESSAGE_TIME in kinds:
        for row in (
            HourlyPerformance.objects.for_agency(agency_id)
            .filter(creator_id__in=creator_ids, hour__gt=since, messages_sent__gt=0)
            .values_list("creator_id", "hour", "messages_sent", "message_replies")
        ):
            sends[row[0]].append((row[1] + timedelta(seconds=HALF_HOUR), *row[2:]))  # see message_events

    changed = []
    for recommendation in recommendations:
        if recommendation.kind == Recommendation.Kind.PRICE:
            value, samples = _price_outcome(recommendation, offers[recommendation.creator_id])
        elif recommendation.kind == Recommendation.Kind.ANOMALY:
            value, samples, met = _anomaly_outcome(recommendation, anomaly_series)
            if value is not None:
                recommendation.outcome = Recommendation.Outcome.MET if met else Recommendation.Outcome.MISSED
                recommendation.outcome_value = value
                recommendation.outcome_samples = samples
                recommendation.outcome_measured_at = now
                changed.append(recommendation)
                continue
        elif recommendation.kind == Recommendation.Kind.POST_TIME:
            value, samples = _slot_outcome(recommendation, [(at, e, 1.0) for at, e in posts[recommendation.creator_id]])
        else:
            value, samples = _slot_outcome(
                recommendation,
                [(at, float(replies), float(sent)) for at, sent, replies in sends[recommendation.creator_id]],
            )
        if value is not None:
            ratio_met = value >= OUTCOME_MET_RATIO * recommendation.expected_value
            recommendation.outcome = Recommendation.Outcome.MET if ratio_met else Recommendation.Outcome.MISSED
            recommendation.outcome_value = value
        elif now - recommendation.decided_at >= timedelta(days=OUTCOME_WINDOW_DAYS):
            recommendation.outcome = Recommendation.Outcome.NO_DATA
            recommendation.outcome_value = None
        else:
            continue
        recommendation.outcome_samples = samples
        recommendation.outcome_measured_at = now
        changed.append(recommendation)
    return changed


def _price_outcome(recommendation: Recommendation, offers: list[tuple]) -> tuple[float | None, int]:
    target = float((recommendation.payload or {}).get("price") or 0)
    if target <= 0:
        return None, 0
    recipients = revenue = matched = 0
    for sent_at, price, sent_to, unlocks, earned in offers:
        if sent_at <= recommendation.decided_at or abs(float(price) - target) > PRICE_TOLERANCE * target:
            continue
        matched += 1
        recipients += sent_to
        revenue += float(earned) if earned else float(price) * unlocks
    if matched < 1 or recipients < PRICE_MIN_RECIPIENTS:
        return None, matched
    return revenue / recipients, matched


def _slot_outcome(recommendation: Recommendation, events: list[tuple]) -> tuple[float | None, int]:
    payload = recommendation.payload or {}
    wanted = {slot["weekday"] * 24 + slot["hour"] for slot in payload.get("slots") or []}
    events = [event for event in events if event[0] > recommendation.decided_at]
    if not wanted or not events:
        return None, 0
    zone = ZoneInfo(selectors.zone_name(payload.get("timezone") or recommendation.creator.timezone))
    slots = timing.local_slots(epoch_seconds([event[0] for event in events]), zone)
    engagement = exposure = 0.0
    count = 0
    for slot, (_at, earned, sent) in zip(slots.tolist(), events, strict=True):
        if slot in wanted:
            count += 1
            engagement += earned
            exposure += sent
    if count < TIMING_MIN_SENDS or exposure <= 0:
        return None, count
    return engagement / exposure, count


def _anomaly_key(recommendation: Recommendation) -> tuple[int, str, str]:
    payload = recommendation.payload or {}
    return (recommendation.creator_id, str(payload.get("metric") or ""), str(payload.get("granularity") or "day"))


def _anomaly_series(
    agency_id: int, recommendations: list[Recommendation], since: datetime, now: datetime
) -> dict[tuple[int, str, str], list[tuple[datetime, float]]]:
    """Per (creator, metric, granularity) of the recommendations, the points (start, value) from a
    day before ``since`` on: one query for the daily series, one for the hourly ones."""
    wanted = {_anomaly_key(recommendation) for recommendation in recommendations}
    out: dict[tuple[int, str, str], list[tuple[datetime, float]]] = defaultdict(list)
    creators = {creator_id for creator_id, _metric, _g in wanted}
    daily = {key for key in wanted if key[2] == "day" and key[1] in selectors.SERIES_NAMES}
    if daily:
        start = (since - timedelta(days=1)).date()
        n_days = (now.date() - start).days + 1
        ids = sorted({creator_id for creator_id, _m, _g in daily})
        rows = selectors.daily_rows(agency_id=agency_id, start=start, end=now.date()).filter(creator_id__in=ids)
        matrix = selectors.series_matrix(rows, ids, start, n_days)
        for creator_id, metric, granularity in daily:
            column = matrix[ids.index(creator_id), :, selectors.SERIES_NAMES.index(metric)]
            for offset, value in enumerate(column.tolist()):
                if value == value:  # not NaN: the day has data
                    day = start + timedelta(days=offset)
                    out[(creator_id, metric, granularity)].append(
                        (datetime(day.year, day.month, day.day, tzinfo=UTC), float(value))
                    )
    hourly = {key for key in wanted if key[2] == "hour" and key[1] in HOURLY_METRICS}
    if hourly:
        for creator_id, hour, *values in (
            HourlyPerformance.objects.for_agency(agency_id)
            .filter(creator_id__in=creators, hour__gte=since - timedelta(days=1))
            .order_by("hour")
            .values_list("creator_id", "hour", *HOURLY_METRICS)
        ):
            for metric, value in zip(HOURLY_METRICS, values, strict=True):
                if (creator_id, metric, "hour") in hourly:
                    out[(creator_id, metric, "hour")].append((hour, float(value)))
    return out


def _anomaly_outcome(
    recommendation: Recommendation, series: dict[tuple[int, str, str], list[tuple[datetime, float]]]
) -> tuple[float | None, int, bool]:
    """(median after, points, back inside the expected range) or (None, points, False) while
    there are too few points. Daily points are compared by calendar date (a day counts when it
    begins after the flagged day and is not before the day of acceptance)."""
    payload = recommendation.payload or {}
    key = _anomaly_key(recommendation)
    granularity = key[2]
    try:
        at = datetime.fromisoformat(str(payload["at"]))
        low, high = float(payload["expected_low"]), float(payload["expected_high"])
    except (KeyError, TypeError, ValueError):
        return None, 0, False
    if granularity == "day":
        flagged = date.fromisoformat(str(payload.get("day") or at.date().isoformat()))  # the creator's calendar day
        first = max(flagged + timedelta(days=1), recommendation.decided_at.astimezone(UTC).date())
        begin = datetime(first.year, first.month, first.day, tzinfo=UTC)
    else:
        begin = max(at + timedelta(hours=1), recommendation.decided_at)
    end = begin + ANOMALY_WINDOW.get(granularity, ANOMALY_WINDOW["day"])
    values = [value for moment, value in series.get(key, []) if begin <= moment < end]
    if len(values) < ANOMALY_MIN_POINTS.get(granularity, 3):
        return None, len(values), False
    median = float(statistics.median(values))
    return median, len(values), low <= median <= high
