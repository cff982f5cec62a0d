"""Anomaly detector: a causal score in [0, 1] for every point of a metric series (revenue,
engagement, service latency...), so a dashboard can flag the moment a metric leaves its usual
range, live, with the same decision it would have made looking back.

Pure NumPy and one Python pass over the rows, no models and no database: the later slices read
the series, call ``anomaly_scores`` and store the detections with ``expected_range``.
docs/optimization-anomalies.md has the formulas and the measured NAB evaluation.

``anomaly_scores`` in order, at every row ``t`` using rows ``<= t`` only:

1. **Validate** the arrays (``AnomalyInputError`` names the argument and the first bad row);
   NaN values are gaps: they get score 0 and change no state.
2. **Four forecasters** predict ``x_t`` before seeing it: a robust level (EWMA whose updates are
   Huber-clipped at ``HUBER_K`` scales), the level plus a daily profile (96 bins of 15 minutes of
   the clock), the level plus a weekly profile (336 bins of 30 minutes), and the last value
   (persistence: what a smooth, wandering series such as a temperature does best). Bins are found
   from the timestamp, so irregular steps and gaps just skip bins. A profile bin is the robust EWMA
   of ``x - level`` in that bin (Holt-Winters additive, Huber-clipped).
3. **Model choice by time of day and week**: each forecaster keeps an EWMA of its absolute error
   per weekly bin and per daily bin (and over all rows, used until a bin has one); the row uses the
   forecaster with the smallest mean of the two bin errors, a seasonal one only once its bin has
   been seen ``MIN_SEASONS`` times (so a daily square wave is forecast by the daily profile at its
   edges and by the last value in between, weekends by the weekly profile, and a wandering series
   by its last value).
4. **Residual scale**: ``s`` is an EWMA of ``|r|`` (clipped at ``HUBER_K s``), floored at
   ``SCALE_FLOOR_SHARE`` of a slow (~500-row) EWMA of ``|r|``, so long stretches of exact forecasts
   (a mostly-zero series forecast by its last value) cannot shrink it toward zero and make the next
   ordinary spike look infinite, and at a tiny share of the series' size, so a constant series
   cannot divide by zero; ``z_point = |r| / (1.25 s)`` (1.25 turns a mean absolute deviation into
   a Gaussian sigma). During the ``WARMUP_ROWS`` unscored rows both scales are the plain mean of
   ``|r|`` so far, unclipped: started from one (possibly ~0) residual and clipped at a multiple of
   themselves they grew ~1.3-fold a row, the first scored rows looked 100 scales out, and the
   surprise they set (step 6) hid a real incident for the rest of a year. The slow scale then stays
   a running mean (of clipped ``|r|``) until it has seen its ~500-row memory, instead of creeping
   up from 0 at ``SLOW_SCALE_BETA`` a row.
5. **Sustained shift**: ``z_run`` is the EWMA of the signed ``r / (1.25 s)`` normalised by its
   own spread ``sqrt(b / (2 - b))``, so a run of small same-signed residuals scores like a spike;
   ``z_sum`` is the sum of the last ``SUM_ROWS`` (3) signed ``r / (1.25 s)`` over ``sqrt(3)``, so
   three days 4 scales below the forecast count like one 7-scale spike.
6. **Surprise**: ``z = max(z_point, z_run, z_sum)`` is compared with ``M``, the largest ``z`` seen so
   far, decaying toward ``Z_FLOOR`` by ``SURPRISE_DECAY`` a row (and never raised more than
   ``SURPRISE_CAP``-fold by one row). ``score = q^2 / (1 + q^2)`` with ``q = z / M``: 0.5 is "as
   unusual as the worst recent row", so a spiky series must outdo its own spikes to alert and one
   incident does not alert again on its echoes.
7. **Adaptation**: after ``SHIFT_ROWS`` consecutive residuals beyond ``HUBER_K`` scales of the
   same sign, the level jumps to the new values (a level shift is news once, not forever).
   ``AnomalyTrace.point`` keeps this forecaster score.
8. **Outside the range seen so far**: once ``RANGE_MIN_ROWS`` rows have been scored, a value
   beyond the minimum or maximum of all earlier values by more than ``RANGE_TOL`` of their span
   scores at least ``RANGE_SCORE`` (0.65, above the medium threshold), rising to 1 at
   ``RANGE_SPAN`` of the span beyond (a slow drift to a new level, which the forecaster follows,
   still gets flagged when it leaves everything seen before).
9. **Repeats damped**: a row whose score is not higher than the highest of the ``REPEAT_ROWS``
   scored rows before it scores 0: at any threshold it could only be a second alert for the
   same incident (the first one already fired). The alert is the news, not its echo.

Cost: one pass, O(1) work per row (amortised for step 9; ~11 us a row in CPython, the 114,000
rows of the NAB dev set take about 1.2-1.5 s of CPU).

What this deliberately does not do: learn from labels, store anything, model trends or holidays,
or look ahead (the score of row ``t`` never changes when rows after ``t`` change).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from apps.core.errors import ApplicationError

Sensitivity = Literal["low", "medium", "high"]

# One configuration for every series (the docs page says which values were chosen how).
LEVEL_ALPHA = 0.05  # per row, a ~20-row memory for the level
SEASON_GAMMA = 0.25  # per visit of a bin: a profile forgets over ~4 days (or weeks)
SCALE_BETA = 0.02  # per row, a ~50-row memory for the residual scale
SLOW_SCALE_BETA = 0.002  # per row, a ~500-row memory of the residual size ...
SCALE_FLOOR_SHARE = 0.25  # ... a quarter of which floors the scale
ERROR_BETA = 0.01  # per row, model-choice error memory
BIN_ERROR_GAMMA = 0.1  # per visit of a weekly (daily) bin: model-choice error at that time of the week (day)
FORECASTERS = 4  # plain level, level + daily profile, level + weekly profile, last value
RUN_BETA = 0.15  # sustained-shift EWMA
SUM_ROWS = 3  # short run: the sum of the last SUM_ROWS normalised residuals / sqrt(SUM_ROWS)
SUM_NORM = math.sqrt(SUM_ROWS)
HUBER_K = 3.0
SHIFT_ROWS = 8
MIN_SEASONS = 3
WARMUP_ROWS = 12
Z_FLOOR = 4.0
SURPRISE_DECAY = 0.999
SURPRISE_CAP = 3.0
# Outside the range of the values seen so far (once RANGE_MIN_ROWS rows have been scored) by more
# than RANGE_TOL of that range: at least RANGE_SCORE, rising to 1 at RANGE_SPAN of it beyond.
RANGE_MIN_ROWS = 500
RANGE_TOL = 0.01
RANGE_SCORE = 0.65
RANGE_SPAN = 0.3
# A row scoring no higher than one of the REPEAT_ROWS scored rows before it scores 0.
REPEAT_ROWS = 100
DAY_BINS = 96
WEEK_BINS = 336
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
# Monday 00:00 UTC: 1970-01-05 is a Monday, so weekly bins start on Mondays.
MONDAY_EPOCH = 4 * DAY_SECONDS
# Score thresholds per sensitivity. For the forecaster's point score, as q = z / M: high alerts
# at the recent worst row (q >= 1), medium at 1.22 times it (NAB's standard-profile optimum swept
# on the training folders of each leave-one-folder-out split: 0.573-0.594 for the previous version,
# 0.619-0.633 for this one; kept, not re-tuned), low at 1.73 times it.
SENSITIVITY_THRESHOLDS: dict[str, float] = {"low": 0.75, "medium": 0.6, "high": 0.5}


class AnomalyInputError(ApplicationError, ValueError):
    """The arrays given to the anomaly detector cannot be used as they are (the message says why)."""


@dataclass(frozen=True)
class AnomalyTrace:
    """Per row: the score, the forecast used, the residual scale and surprise (for expected
    ranges), the combined deviation ``z`` (NaN for gaps and warm-up rows) and the forecaster's
    own score ``point`` (step 7, before steps 8-9)."""

    scores: np.ndarray
    forecast: np.ndarray
    scale: np.ndarray
    surprise: np.ndarray
    z: np.ndarray | None = None
    point: np.ndarray | None = None


def _seconds(timestamps: np.ndarray) -> np.ndarray:
    ts = np.asarray(timestamps)
    if np.issubdtype(ts.dtype, np.datetime64):
        return ts.astype("datetime64[s]").astype(np.int64).astype(float)
    try:
        return ts.astype(float)
    except (TypeError, ValueError):
        raise AnomalyInputError("timestamps must be datetime64 or seconds since the epoch", field="timestamps")


def _validate(timestamps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seconds = _seconds(timestamps)
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise AnomalyInputError("values must be numbers", field="values")
    if seconds.ndim != 1 or x.ndim != 1 or len(seconds) != len(x):
        raise AnomalyInputError("timestamps and values must be 1-D arrays of the same length", field="values")
    if np.isinf(x).any():
        raise AnomalyInputError(f"values row {int(np.flatnonzero(np.isinf(x))[0])} is infinite", field="values")
    return seconds, x


def anomaly_trace(timestamps: np.ndarray, values: np.ndarray) -> AnomalyTrace:
    """Run the detector (module docstring, steps 1-9) and keep its per-row state."""
    seconds, x = _validate(timestamps, values)
    n = len(x)
    scores = np.zeros(n)
    forecast = np.full(n, np.nan)
    scale_out = np.full(n, np.nan)
    surprise_out = np.full(n, np.nan)
    z_out = np.full(n, np.nan)
    if n == 0:
        return AnomalyTrace(scores, forecast, scale_out, surprise_out, z_out, scores.copy())
    day_bin = ((seconds % DAY_SECONDS) // (DAY_SECONDS / DAY_BINS)).astype(np.int64).tolist()
    week_bin = (((seconds - MONDAY_EPOCH) % WEEK_SECONDS) // (WEEK_SECONDS / WEEK_BINS)).astype(np.int64).tolist()
    xs = x.tolist()

    day = [0.0] * DAY_BINS
    day_seen = [0] * DAY_BINS
    week = [0.0] * WEEK_BINS
    week_seen = [0] * WEEK_BINS
    levels = [math.nan, math.nan, math.nan]  # one per forecaster: plain, daily, weekly
    scale = 0.0
    slow_scale = 0.0  # a ~500-row memory of |r|: the floor that keeps `scale` from collapsing
    spread = 0.0  # mean |x - level|: the series' own size, for the scale floor
    # Model-choice errors per forecaster (plain, daily, weekly, last value): overall, per weekly
    # bin and per daily bin (NaN: not yet usable there).
    err = [0.0] * FORECASTERS
    err_week = [[math.nan] * WEEK_BINS for _ in range(FORECASTERS)]
    err_day = [[math.nan] * DAY_BINS for _ in range(FORECASTERS)]
    last = math.nan  # the previous value (gaps skipped): the persistence forecast
    run = 0.0
    recent: deque[float] = deque(maxlen=SUM_ROWS)  # the last SUM_ROWS normalised residuals
    run_norm = math.sqrt(RUN_BETA / (2.0 - RUN_BETA))
    streak = 0
    seen = 0
    surprise = Z_FLOOR

    for i in range(n):
        xi = xs[i]
        if xi != xi:  # NaN: a gap in the data
            continue
        if seen == 0:
            levels = [xi, xi, xi]
            last = xi
            seen = 1
            forecast[i] = xi
            continue
        d, w = day_bin[i], week_bin[i]
        seasons = (0.0, day[d], week[w])
        preds = (levels[0], levels[1] + day[d], levels[2] + week[w], last)
        usable = (True, day_seen[d] >= MIN_SEASONS, week_seen[w] >= MIN_SEASONS, True)
        # Model choice: the smallest error at this time of the week, else of the day, else overall
        # (a seasonal forecaster once its bin has been seen MIN_SEASONS times).
        best = 0
        best_cost = _cost(err[0], err_week[0][w], err_day[0][d])
        for m in range(1, FORECASTERS):
            if usable[m]:
                cost = _cost(err[m], err_week[m][w], err_day[m][d])
                if cost < best_cost:
                    best, best_cost = m, cost
        pred = preds[best]
        r = xi - pred
        floor = max(1e-3 * spread + 1e-9 * (1.0 + abs(levels[0])), SCALE_FLOOR_SHARE * slow_scale)
        s = max(scale, floor)
        forecast[i] = pred
        scale_out[i] = 1.25 * s

        z_point = abs(r) / (1.25 * s)
        clipped = max(-HUBER_K * 1.25 * s, min(HUBER_K * 1.25 * s, r)) / (1.25 * s)
        run = (1.0 - RUN_BETA) * run + RUN_BETA * clipped
        z_run = abs(run) / run_norm
        recent.append(r / (1.25 * s))
        z_sum = abs(sum(recent)) / SUM_NORM if len(recent) == SUM_ROWS else 0.0
        z = max(z_point, z_run, z_sum)
        if seen >= WARMUP_ROWS:
            z_out[i] = z
            ratio = z / surprise
            score = ratio * ratio / (1.0 + ratio * ratio)
            scores[i] = score
        surprise_out[i] = surprise

        # Learn from the row (after scoring it).
        if seen >= WARMUP_ROWS:
            surprise = max(Z_FLOOR + (surprise - Z_FLOOR) * SURPRISE_DECAY, min(z, SURPRISE_CAP * surprise))
        for m in range(FORECASTERS):
            e_m = min(abs(xi - preds[m]), HUBER_K * 1.25 * s)
            err[m] = (1.0 - ERROR_BETA) * err[m] + ERROR_BETA * e_m
            if usable[m]:
                err_week[m][w] = _bin_error_update(err_week[m][w], e_m)
                err_day[m][d] = _bin_error_update(err_day[m][d], e_m)
        if z_point <= HUBER_K:
            streak = 0
        elif r > 0:
            streak = max(streak, 0) + 1
        else:
            streak = min(streak, 0) - 1
        if abs(streak) >= SHIFT_ROWS:
            # A level shift: take the new level as it is, re-learn the scale from here.
            levels = [xi - seasons[m] for m in range(3)]
            run = 0.0
            recent.clear()
            streak = 0
            scale = max(scale, abs(r) / HUBER_K)
        else:
            bound = HUBER_K * 1.25 * s
            for m in range(3):
                levels[m] += LEVEL_ALPHA * max(-bound, min(bound, xi - seasons[m] - levels[m]))
            if seen < WARMUP_ROWS:  # the mean |r| so far, unclipped: a scale started at one residual
                scale += (abs(r) - scale) / seen  # and clipped by itself cannot grow to the real one
            else:
                scale = (1.0 - SCALE_BETA) * scale + SCALE_BETA * min(abs(r), bound)
        slow_r = abs(r) if seen < WARMUP_ROWS else min(abs(r), HUBER_K * 1.25 * max(s, slow_scale))
        slow_scale += max(SLOW_SCALE_BETA, 1.0 / seen) * (slow_r - slow_scale)
        day[d] = _season_update(day[d], day_seen[d], xi - levels[1], s)
        day_seen[d] += 1
        week[w] = _season_update(week[w], week_seen[w], xi - levels[2], s)
        week_seen[w] += 1
        spread = spread + (abs(xi - levels[0]) - spread) / min(seen + 1, 1000)
        last = xi
        seen += 1
    point = scores
    scores = _alert_scores(x, z_out, point)
    return AnomalyTrace(scores, forecast, scale_out, surprise_out, z_out, point)


def _alert_scores(x: np.ndarray, z: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Steps 8-9 of the module docstring: the point score raised by the outside-the-range score,
    then repeats damped. Causal: row ``t`` reads rows ``<= t`` only (running extrema, and the
    running maximum of the previous ``REPEAT_ROWS`` scored rows)."""
    out = np.zeros(len(x))
    rows = np.flatnonzero(~np.isnan(z))  # scored rows: not gaps, past the warm-up
    if rows.size == 0:
        return out
    xv = x[rows]
    hi = np.concatenate([[xv[0]], np.maximum.accumulate(xv)[:-1]])  # extrema of earlier rows
    lo = np.concatenate([[xv[0]], np.minimum.accumulate(xv)[:-1]])
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.maximum(xv - hi, lo - xv) / span
    outside = (np.arange(rows.size) >= RANGE_MIN_ROWS) & (span > 0) & (excess > RANGE_TOL)
    graded = RANGE_SCORE + (1.0 - RANGE_SCORE) * np.minimum(1.0, np.where(outside, excess, 0.0) / RANGE_SPAN)
    raw = np.where(outside, np.maximum(point[rows], graded), point[rows])
    out[rows] = _damp_repeats(raw, REPEAT_ROWS)
    return out


def _damp_repeats(raw: np.ndarray, window: int) -> np.ndarray:
    """0 for a row whose score does not exceed the largest of the ``window`` rows before it (a
    monotonic deque keeps that maximum: O(1) amortised a row)."""
    out = raw.copy()
    queue: deque[tuple[int, float]] = deque()  # (row, score), scores decreasing
    for j, v in enumerate(raw.tolist()):
        while queue and queue[0][0] < j - window:
            queue.popleft()
        if queue and v <= queue[0][1]:
            out[j] = 0.0
        while queue and queue[-1][1] <= v:
            queue.pop()
        queue.append((j, v))
    return out


def _cost(overall: float, at_week_bin: float, at_day_bin: float) -> float:
    """A forecaster's model-choice cost: the mean of its recent errors at this time of the week and
    at this time of the day (either alone where the other is not usable yet), else its overall error."""
    if at_week_bin == at_week_bin:
        return 0.5 * (at_week_bin + at_day_bin) if at_day_bin == at_day_bin else at_week_bin
    if at_day_bin == at_day_bin:
        return at_day_bin
    return overall


def _bin_error_update(current: float, error: float) -> float:
    """A bin's model-choice error: the first usable visit sets it, later ones move it by
    ``BIN_ERROR_GAMMA``."""
    return error if current != current else current + BIN_ERROR_GAMMA * (error - current)


def _season_update(current: float, visits: int, target: float, s: float) -> float:
    """A profile bin's robust EWMA: the first visit sets it, later ones move it by a Huber-clipped
    step toward ``x - level``."""
    if not visits:
        return target
    bound = HUBER_K * 1.25 * s
    return current + SEASON_GAMMA * max(-bound, min(bound, target - current))


def anomaly_scores(timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A score in [0, 1] per row from that row and earlier ones only (1 = surely anomalous)."""
    return anomaly_trace(timestamps, values).scores


def threshold_for(sensitivity: Sensitivity) -> float:
    try:
        return SENSITIVITY_THRESHOLDS[sensitivity]
    except KeyError:
        raise AnomalyInputError(f"sensitivity must be one of {', '.join(SENSITIVITY_THRESHOLDS)}", field="sensitivity")


def detections(scores: np.ndarray, sensitivity: Sensitivity = "medium") -> np.ndarray:
    """Indices of the rows flagged at the sensitivity's threshold."""
    return np.flatnonzero(np.asarray(scores, dtype=float) >= threshold_for(sensitivity))


def expected_range(
    timestamps: np.ndarray, values: np.ndarray, sensitivity: Sensitivity = "medium"
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the (lower, upper) range the detector expected before seeing the row (NaN before
    the first forecast): a value outside it has a forecaster score (``AnomalyTrace.point``) at or
    above the sensitivity's threshold, so it is flagged unless a higher score in the
    ``REPEAT_ROWS`` rows before already flagged the same incident (step 9). Inside it, a run of
    residuals (``z_run``, ``z_sum``) or a value beyond the range seen so far can still flag."""
    return range_from_trace(anomaly_trace(timestamps, values), sensitivity)


def range_from_trace(trace: AnomalyTrace, sensitivity: Sensitivity = "medium") -> tuple[np.ndarray, np.ndarray]:
    """``expected_range`` from a trace already computed (the nightly run scores and draws from one pass)."""
    threshold = threshold_for(sensitivity)
    ratio = math.sqrt(threshold / (1.0 - threshold))
    half_width = ratio * trace.surprise * trace.scale
    return trace.forecast - half_width, trace.forecast + half_width
