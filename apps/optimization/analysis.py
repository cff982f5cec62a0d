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
    """A point the detector flagged (not stored: the comprehensive answer's view of it)."""

    metric: str
    label: str
    day: date
    at: datetime
    value: float
    expected_low: float
    expected_high: float
    score: float
    severity: str

    @property
    def direction(self) -> str:
        return "above" if self.value > self.expected_high else "below"


def severity_for(score: float) -> str:
    if score >= SEVERITY_HIGH_SCORE:
        return Severity.HIGH
    if score >= SEVERITY_MEDIUM_SCORE:
        return Severity.MEDIUM
    return Severity.LOW


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
        values = matrix[:, position]
        known = np.isfinite(values)
        if known.sum() < ANOMALY_MIN_POINTS or not known[report_from:].any():
            continue
        try:
            logged = np.log1p(np.maximum(values, 0.0))
            trace = anomaly_engine.anomaly_trace(stamps, logged)
            scores = trace.scores
            hits = anomaly_engine.detections(scores, sensitivity)
            hits = hits[(hits >= report_from) & known[hits]]
            if not len(hits):
                continue
            low, high = (np.expm1(bound) for bound in anomaly_engine.range_from_trace(trace, sensitivity))
            low = np.maximum(low, 0.0)
        except ApplicationError as error:  # a series the detector refuses (e.g. constant): nothing to say
            logger.info("anomaly detector skipped %s: %s", metric, error)
            continue
        for row in hits.tolist():
            if not (math.isfinite(low[row]) and math.isfinite(high[row])):
                continue
            day = start + timedelta(days=row)
            score = float(min(1.0, max(0.0, scores[row])))
            found.append(
                DetectedAnomaly(
                    metric=metric,
                    label=METRIC_LABELS.get(metric, metric),
                    day=day,
                    at=datetime.combine(day, clock(), tzinfo=zone).astimezone(UTC),
                    value=float(values[row]),
                    expected_low=float(low[row]),
                    expected_high=float(high[row]),
                    score=score,
                    severity=severity_for(score),
                )
            )
    found.sort(key=lambda anomaly: (anomaly.at, anomaly.metric))
    return found


def creator_timezones(agency_id: int) -> dict[int, str]:
    return {
        creator_id: selectors.zone_name(name)
        for creator_id, name in Creator.objects.for_agency(agency_id).values_list("id", "timezone")
    }
