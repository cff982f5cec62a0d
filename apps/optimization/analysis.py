"""The engines' inputs read in bulk, and the anomaly detector run over a creator's daily series:
what the comprehensive answer (services.py) and the nightly run (nightly.py) share.

Timing inputs come from the studio's post history (one send per post, engagement = likes +
comments) and from HourlyPerformance (exposure = messages sent, engagement = replies), one query
per agency. What this does not do: write anything, or decide what to advise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import numpy as np

from apps.accounts.models import Creator
from apps.core.errors import ApplicationError
from apps.optimization import anomalies as anomaly_engine
from apps.optimization import selectors, timing
from apps.optimization.models import (
    HOURLY_METRICS,
    METRIC_LABELS,
    HourlyPerformance,
    Severity,
)
from apps.studio.selectors import post_engagement_history

logger = logging.getLogger(__name__)

TIMING_WINDOW_DAYS = 180  # the timing engine assumes steady rates: half a year of sends
ANOMALY_HISTORY_DAYS = 365  # a year: the detector's history before (and including) the days it reports on
ANOMALY_REPORT_DAYS = 30  # the days whose anomalies are shown and stored
ANOMALY_MIN_POINTS = 14  # fewer days with data than this: no baseline to judge against
SEVERITY_HIGH_SCORE = 0.9
SEVERITY_MEDIUM_SCORE = 0.75
HALF_HOUR = 1800


def epoch_seconds(moments: Sequence[datetime]) -> np.ndarray:
    return np.fromiter((moment.timestamp() for moment in moments), dtype=np.int64, count=len(moments))


@dataclass
class TimingEvents:
    """One agency's sends for the timing engine (posts, or hourly message sends)."""

    seconds: np.ndarray
    engagement: np.ndarray
    exposure: np.ndarray
    creator_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.seconds)


def post_events(agency_id: int, *, since: datetime) -> TimingEvents:
    """Posts from the studio's post history: one send each, engagement = likes + comments."""
    rows = list(post_engagement_history(agency_id=agency_id, since=since))
    creators = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    return TimingEvents(
        seconds=epoch_seconds([row[1] for row in rows]),
        engagement=np.fromiter((row[2] for row in rows), dtype=float, count=len(rows)),
        exposure=np.ones(len(rows)),
        creator_ids=creators,
    )


def message_events(agency_id: int, *, since: datetime) -> TimingEvents:
    """Hours in which messages were sent: exposure = messages sent, engagement = replies drawn.

    Each hour counts at its middle (hh:30 UTC): in a zone off the hour such as Kathmandu (UTC+5:45)
    a UTC hour spans two local hours, and the middle lands in the one holding most of it."""
    rows = list(
        HourlyPerformance.objects.for_agency(agency_id)
        .filter(hour__gte=since, messages_sent__gt=0)
        .order_by("hour", "id")
        .values_list("creator_id", "hour", "message_replies", "messages_sent")
    )
    return TimingEvents(
        seconds=epoch_seconds([row[1] for row in rows]) + HALF_HOUR,
        engagement=np.fromiter((row[2] for row in rows), dtype=float, count=len(rows)),
        exposure=np.fromiter((row[3] for row in rows), dtype=float, count=len(rows)),
        creator_ids=np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)),
    )


def timing_for(
    events: TimingEvents, creator: Creator, timezones: dict[int, str], kind: timing.Kind
) -> timing.TimingResult:
    if not len(events):  # the engine refuses empty arrays; for a creator this is "no data yet"
        unit = "posts" if kind == "post" else "message sends"
        return timing.NotEnoughData(
            kind=kind,
            creator_id=creator.pk,
            needed=timing.MIN_SENDS,
            have=0,
            message=f"Not enough data yet: need {timing.MIN_SENDS} more {unit} (the agency has none in the last "
            f"{TIMING_WINDOW_DAYS} days).",
        )
    return timing.best_slots(
        sent_at=events.seconds,
        engagement=events.engagement,
        exposure=events.exposure,
        creator_ids=events.creator_ids,
        creator_id=creator.pk,
        tz=selectors.zone_name(creator.timezone),
        creator_timezones=timezones,
        kind=kind,
    )


def timing_by_creator(
    events: TimingEvents, creators: list[Creator], zones: dict[int, str], kind: timing.Kind
) -> dict[int, timing.TimingResult]:
    """Every creator's slots from one agency fit (the nightly run's form); {} without sends or
    when the engine refuses the agency's data (logged: the run goes on without timing advice)."""
    if not len(events):
        return {}
    try:
        return timing.best_slots_by_creator(
            sent_at=events.seconds,
            engagement=events.engagement,
            exposure=events.exposure,
            creator_ids=events.creator_ids,
            creator_timezones=zones,
            creators=[creator.pk for creator in creators],
            kind=kind,
        )
    except ApplicationError as error:
        logger.warning("timing skipped for %s sends: %s", kind, error)
        return {}


# --- Anomalies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectedAnomaly:
    """A point the detector flagged (not stored: the comprehensive answer's view of it).
    ``granularity`` is "day" (``day`` is the creator's calendar day) or "hour" (``at`` is the UTC
    hour, ``day`` its UTC date)."""

    metric: str
    label: str
    day: date
    at: datetime
    value: float
    expected_low: float
    expected_high: float
    score: float
    severity: str
    granularity: str = "day"

    @property
    def direction(self) -> str:
        return "above" if self.value > self.expected_high else "below"

    @property
    def when(self) -> str:
        """The point in words for headlines: "Dec 01" for a day, "Dec 01 14:00 UTC" for an hour."""
        return f"{self.at:%b %d %H:00} UTC" if self.granularity == "hour" else f"{self.day:%b %d}"


def severity_for(score: float) -> str:
    if score >= SEVERITY_HIGH_SCORE:
        return Severity.HIGH
    if score >= SEVERITY_MEDIUM_SCORE:
        return Severity.MEDIUM
    return Severity.LOW


@dataclass(frozen=True)
class FlaggedPoint:
    row: int
    value: float
    low: float
    high: float
    score: float


def flag_series(
    stamps: np.ndarray, values: np.ndarray, *, report_from: int, sensitivity: str, min_points: int
) -> list[FlaggedPoint]:
    """The detector over ``log1p`` of one series (why: ``detect_daily``'s docstring): the rows from
    ``report_from`` on at or above the sensitivity's threshold, with their expected range turned
    back to the series' own scale and kept within the values seen before each row. [] for too
    little data or a series the detector refuses."""
    known = np.isfinite(values)
    if known.sum() < min_points or not known[report_from:].any():
        return []
    try:
        logged = np.log1p(np.maximum(values, 0.0))
        trace = anomaly_engine.anomaly_trace(stamps, logged)
        scores = trace.scores
        hits = anomaly_engine.detections(scores, sensitivity)
        hits = hits[(hits >= report_from) & known[hits]]
        if not len(hits):
            return []
        low, high = (np.expm1(bound) for bound in anomaly_engine.range_from_trace(trace, sensitivity))
        low = np.maximum(low, 0.0)
    except ApplicationError as error:  # a series the detector refuses (e.g. constant): nothing to say
        logger.info("anomaly detector skipped a series: %s", error)
        return []
    # The range shown is the forecaster's band within the values seen before the row: while the
    # detector's surprise is still high its band can be wider than anything ever seen, and a value
    # beyond every earlier one is itself unexpected (the detector's step 8).
    earlier_high = np.concatenate([[-np.inf], np.maximum.accumulate(np.where(known, values, -np.inf))[:-1]])
    earlier_low = np.concatenate([[np.inf], np.minimum.accumulate(np.where(known, values, np.inf))[:-1]])
    clamped_high = np.where(np.isfinite(earlier_high), np.minimum(high, earlier_high), high)
    clamped_low = np.where(np.isfinite(earlier_low), np.maximum(low, earlier_low), low)
    usable = clamped_low <= clamped_high
    low, high = np.where(usable, clamped_low, low), np.where(usable, clamped_high, high)
    return [
        FlaggedPoint(row, float(values[row]), float(low[row]), float(high[row]), float(min(1.0, max(0.0, scores[row]))))
        for row in hits.tolist()
        if math.isfinite(low[row]) and math.isfinite(high[row])
    ]


def detect_daily(
    matrix: np.ndarray, *, start: date, report_from: int, sensitivity: str, tz: str
) -> list[DetectedAnomaly]:
    """Anomalies of one creator's daily series ``matrix`` (days, SERIES_NAMES) from row
    ``report_from`` on. The detector sees each day at midnight UTC of its date, so its weekly
    profile follows the creator's calendar weekday whatever their zone or a DST change; the stored
    ``at`` is the creator's local midnight, in UTC.

    The detector reads ``log1p`` of each series: revenue and counts vary by a share of their size
    (a $2,000 day swings by hundreds, a $50 day by tens), and on the log scale that noise is even,
    so a 60 % drop over three days stands out of ordinary heavy-tailed noise (docs/optimization-
    anomalies.md measured 1 in 20 such drops caught on the raw scale at 25 % noise, 15 in 20 on
    the log scale, with as few false alerts). Values and expected ranges are turned back
    (``expm1``) before they are stored or shown: the range is then asymmetric, as it should be."""
    zone = ZoneInfo(selectors.zone_name(tz))
    n_days = matrix.shape[0]
    stamps = (np.arange(n_days, dtype=np.int64) + (start - date(1970, 1, 1)).days) * 86_400
    found: list[DetectedAnomaly] = []
    for position, metric in enumerate(selectors.SERIES_NAMES):
        hits = flag_series(
            stamps, matrix[:, position], report_from=report_from, sensitivity=sensitivity, min_points=ANOMALY_MIN_POINTS
        )
        for hit in hits:
            day = start + timedelta(days=hit.row)
            found.append(
                DetectedAnomaly(
                    metric=metric,
                    label=METRIC_LABELS.get(metric, metric),
                    day=day,
                    at=datetime.combine(day, clock(), tzinfo=zone).astimezone(UTC),
                    value=hit.value,
                    expected_low=hit.low,
                    expected_high=hit.high,
                    score=hit.score,
                    severity=severity_for(hit.score),
                )
            )
    found.sort(key=lambda anomaly: (anomaly.at, anomaly.metric))
    return found


# --- Hourly anomalies ----------------------------------------------------------------------------------

HOURLY_HISTORY_DAYS = 42  # six weeks of hours: the weekly profile needs MIN_SEASONS (3) visits per bin
HOURLY_REPORT_HOURS = 48  # the hours whose anomalies are stored (the hourly task runs every hour)
HOURLY_MIN_POINTS = 7 * 24  # fewer hours with data than a week's: no baseline
HOURLY_NAMES: tuple[str, ...] = tuple(HOURLY_METRICS)


def hourly_matrix(*, agency_id: int, creator_ids: Sequence[int], start: datetime, n_hours: int) -> np.ndarray:
    """(creators, hours, HOURLY_NAMES) from one query over the agency's HourlyPerformance: NaN where
    a creator has no row for an hour (a gap the detector skips, not a zero it would learn)."""
    index = {creator_id: position for position, creator_id in enumerate(creator_ids)}
    out = np.full((len(creator_ids), n_hours, len(HOURLY_NAMES)), np.nan)
    rows = (
        HourlyPerformance.objects.for_agency(agency_id)
        .filter(hour__gte=start, hour__lt=start + timedelta(hours=n_hours), creator_id__in=list(creator_ids))
        .order_by()
        .values_list("creator_id", "hour", *HOURLY_NAMES)
    )
    base = start.timestamp()
    for creator_id, hour, *values in rows:
        offset = int((hour.timestamp() - base) // 3600)
        if 0 <= offset < n_hours:
            out[index[creator_id], offset] = values
    return out


def detect_hourly(matrix: np.ndarray, *, start: datetime, report_from: int, sensitivity: str) -> list[DetectedAnomaly]:
    """Anomalies of one creator's hourly series ``matrix`` (hours, HOURLY_NAMES) from row
    ``report_from`` on. The detector sees each UTC hour at its start: its daily profile (15-minute
    bins) and weekly profile (30-minute bins) are then per hour of the day and of the week, so
    "Tuesday 21:00" is compared with earlier Tuesdays at 21:00. Missing hours are gaps."""
    n_hours = matrix.shape[0]
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    stamps = np.arange(n_hours, dtype=np.int64) * 3600 + int(start.timestamp())
    found: list[DetectedAnomaly] = []
    for position, metric in enumerate(HOURLY_NAMES):
        hits = flag_series(
            stamps, matrix[:, position], report_from=report_from, sensitivity=sensitivity, min_points=HOURLY_MIN_POINTS
        )
        for hit in hits:
            at = start + timedelta(hours=hit.row)
            found.append(
                DetectedAnomaly(
                    metric=metric,
                    label=HOURLY_METRICS[metric],
                    day=at.date(),
                    at=at,
                    value=hit.value,
                    expected_low=hit.low,
                    expected_high=hit.high,
                    score=hit.score,
                    severity=severity_for(hit.score),
                    granularity="hour",
                )
            )
    found.sort(key=lambda anomaly: (anomaly.at, anomaly.metric))
    return found


def creator_timezones(agency_id: int) -> dict[int, str]:
    return {
        creator_id: selectors.zone_name(name)
        for creator_id, name in Creator.objects.for_agency(agency_id).values_list("id", "timezone")
    }
