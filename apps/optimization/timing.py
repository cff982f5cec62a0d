"""Timing engine: the weekday and local clock hour at which a creator's posts (or messages) earn
the most engagement per send, from the agency's send history.

Pure NumPy on arrays, no models and no database, so the pages, the API and the nightly job fill
the arrays from whatever they read (``Post.posted_at`` with ``likes + comments`` and an exposure
of 1; a mass message's ``sent_at`` with the replies and purchases it drew and the fans it reached)
and call ``best_slots``. docs/optimization-timing.md has the model with its formulas and the
measured evaluation.

``best_slots`` in order:

1. **Validate** the arrays (``TimingInputError`` names the argument and the first bad row).
2. **Local slots**: every send's UTC instant becomes the weekday x clock hour of its creator's IANA
   zone (``zoneinfo``), so 20:00 in New York is 20:00 before and after the DST change and a send
   at 21:15 in Kathmandu (UTC+5:45) lands in the 21:00 slot. A week has 168 slots, Monday 00:00
   first.
3. **Enough data?** Fewer than ``MIN_SENDS`` sends across the agency (the creator's included)
   answers ``NotEnoughData`` with how many more are needed.
4. **Constant?** When every one of the creator's sends earned the same engagement per send, no
   hour can be better than another: ``NoBestTime``, never a made-up lift.
5. **Agency pattern**: a Poisson fit of ``engagement ~ exposure * level[creator] * shape[slot]``
   over every creator, each in their own zone; ``shape`` is the agency's week, smoothed over
   neighbouring hours and shrunk toward flat where the agency itself has little data.
6. **Creator prior**: the agency's week bent by the creator's own weekday and hour-of-day
   factors (each pools many sends, so ~40 posts inform a weekday where one or two inform a
   slot), each a Gamma-Poisson estimate shrunk toward 1 (``_creator_priors``).
7. **Creator posterior** (Gamma-Poisson empirical Bayes): the creator's rate in each slot has the
   prior ``Gamma(alpha, alpha / prior_mean)``; the creator's own sends, smoothed over
   neighbouring hours and divided by their dispersion ``phi`` (likes per post vary far more than
   Poisson), update it. ``alpha`` (how far a slot strays from its prior mean) and ``phi`` are
   estimated from the agency's data; ``alpha`` is bounded.
8. **Rank**: the top slots by posterior mean, each with its lift over the creator's current
   average (their own sends' mix of slots) and the posterior probability that it beats that
   average (Monte Carlo from the slot posteriors, fixed seed, so the same data gives the same
   answer).

What this deliberately does not do: read or write the database, schedule anything, or model
trends over time (a slot's rate is assumed steady over the history given; pass a recent window).
Counting slots as independent in step 8 ignores the correlation that smoothing brings, so the
confidence is a little optimistic for neighbouring hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from apps.core.errors import ApplicationError

Kind = Literal["post", "message"]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HOURS_PER_WEEK = 168
DAY_SECONDS = 86_400

# Below this many sends across the agency the 168 slots cannot be told apart, even pooled.
MIN_SENDS = 60
# Weights over the hours -1, 0, +1 of the week (circular: Sunday 23:00 neighbours Monday 00:00).
# They sum to 1 so smoothing moves data between neighbours without creating any.
SMOOTHING_KERNEL = (0.25, 0.5, 0.25)
# The agency's week is shrunk toward flat with this share of an average slot's data.
AGENCY_FLAT_PRIOR = 0.25
# Bounds on the prior strength: ALPHA_MIN keeps a single lucky post from deciding a slot;
# ALPHA_MAX keeps a creator's own clear pattern from being drowned by the agency's.
ALPHA_MIN = 2.0
ALPHA_MAX = 200.0
# Degrees of freedom of the agency's dispersion in each creator's (a few slots' worth).
DISPERSION_PRIOR_DF = 20.0
# 1,000 draws give each probability to about +-1.6 points (one standard error at 50 %); 4,000 cost the
# nightly run 27 ms a creator for a figure shown rounded to the percent anyway.
MONTE_CARLO_DRAWS = 1000
MONTE_CARLO_SEED = 20260
# Below this share of the heat map from the creator's own sends, the answer says it is mostly
# the agency's pattern.
OWN_DATA_NOTICE = 0.25

_WORDS = {
    "post": {"verb": "Post", "unit": "post", "units": "posts", "gain": "engagement per post"},
    "message": {
        "verb": "Message fans",
        "unit": "message",
        "units": "messages",
        "gain": "replies and purchases per fan messaged",
    },
}


class TimingInputError(ApplicationError, ValueError):
    """The arrays given to the timing engine cannot be used as they are (the message says why)."""


@dataclass(frozen=True)
class TimingSlot:
    """One recommended slot: a weekday (0 = Monday) and a local clock hour, with what it promises."""

    weekday: int
    hour: int
    expected_rate: float  # posterior mean engagement per unit of exposure
    lift: float  # expected_rate over the creator's current average, minus 1 (0.23 = +23 %)
    confidence: float  # posterior probability that the slot beats the creator's current average
    top_probability: float  # posterior probability that the slot is among the top ``top`` slots

    @property
    def label(self) -> str:
        return f"{WEEKDAYS[self.weekday]}s at {self.hour:02d}:00"


@dataclass(frozen=True)
class TimingAdvice:
    """The best slots for one creator, and the week heat map behind them (rows Monday..Sunday,
    columns local hours 0..23)."""

    kind: Kind
    creator_id: Any
    timezone: str
    slots: tuple[TimingSlot, ...]
    rates: np.ndarray  # (7, 24) posterior mean engagement per unit of exposure
    standard_errors: np.ndarray  # (7, 24) posterior standard deviation of the same
    baseline_rate: float  # the creator's current average: their own sends' mix of slots
    own_data_share: float  # 0..1, how much of the heat map comes from the creator's own sends
    creator_sends: int
    agency_sends: int
    message: str
    status: Literal["advice"] = "advice"


@dataclass(frozen=True)
class NotEnoughData:
    """Too few sends to compare the hours of the week; ``needed`` more would do."""

    kind: Kind
    creator_id: Any
    needed: int
    have: int
    message: str
    status: Literal["not_enough_data"] = "not_enough_data"


@dataclass(frozen=True)
class NoBestTime:
    """The data shows no difference between hours (every send earned the same per send)."""

    kind: Kind
    creator_id: Any
    message: str
    status: Literal["no_best_time"] = "no_best_time"


TimingResult = TimingAdvice | NotEnoughData | NoBestTime


def best_slots(
    *,
    sent_at: Sequence[Any] | np.ndarray,
    engagement: Sequence[float] | np.ndarray,
    creator_ids: Sequence[Any] | np.ndarray,
    creator_id: Any,
    tz: str,
    exposure: Sequence[float] | np.ndarray | None = None,
    creator_timezones: Mapping[Any, str] | None = None,
    kind: Kind = "post",
    top: int = 3,
) -> TimingResult:
    """The best weekday x local hour slots for ``creator_id`` to post or message.

    ``sent_at`` holds UTC instants (datetime64, epoch seconds, or aware datetimes), one per send
    across the agency; ``engagement`` what each send earned (likes + comments, replies +
    purchases); ``exposure`` how much was sent (1 per post, the fans reached by a mass message;
    ones when omitted); ``creator_ids`` whose send it was. ``tz`` is the creator's IANA zone;
    other creators' sends are read in their zone from ``creator_timezones`` (in ``tz`` when
    missing), since the agency's pattern is about local clock hours.
    """
    _check_kind_and_top(kind, top)
    seconds, values, exposures, owners = _validated_events(sent_at, engagement, exposure, creator_ids)
    zones = {key: _zone(zone_name, field) for key, zone_name, field in _zone_names(tz, creator_timezones)}
    target = zones[_TARGET]
    fit = _fit_agency(
        seconds, values, exposures, owners, lambda owner: target if owner == creator_id else zones.get(owner, target)
    )
    return _advise(fit, creator_id, tz, kind, top)


def best_slots_by_creator(
    *,
    sent_at: Sequence[Any] | np.ndarray,
    engagement: Sequence[float] | np.ndarray,
    creator_ids: Sequence[Any] | np.ndarray,
    creator_timezones: Mapping[Any, str],
    creators: Sequence[Any] | None = None,
    exposure: Sequence[float] | np.ndarray | None = None,
    default_tz: str = "UTC",
    kind: Kind = "post",
    top: int = 3,
) -> dict[Any, TimingResult]:
    """``best_slots`` for every creator of an agency at once (the nightly run's form).

    The agency's pattern, dispersions and priors are fitted once instead of once per creator, so
    an agency of C creators costs one fit plus C posteriors rather than C fits. Every creator's
    sends are read in their zone from ``creator_timezones`` (``default_tz`` when missing); with
    every creator's zone given, each answer equals ``best_slots`` for that creator. ``creators``
    lists whom to answer for (default: everyone with a send); a creator with no sends gets the
    agency's pattern, as in ``best_slots``.
    """
    _check_kind_and_top(kind, top)
    fit = fit_agency(
        sent_at=sent_at, engagement=engagement, creator_ids=creator_ids, creator_timezones=creator_timezones,
        exposure=exposure, default_tz=default_tz,
    )  # fmt: skip
    wanted = list(fit.creators) if creators is None else list(creators)
    return {creator: _advise(fit, creator, creator_timezones.get(creator, default_tz), kind, top) for creator in wanted}


def fit_agency(
    *,
    sent_at: Sequence[Any] | np.ndarray,
    engagement: Sequence[float] | np.ndarray,
    creator_ids: Sequence[Any] | np.ndarray,
    creator_timezones: Mapping[Any, str],
    exposure: Sequence[float] | np.ndarray | None = None,
    default_tz: str = "UTC",
) -> AgencyFit:
    """The part of every creator's answer that is the agency's (steps 1-7 of the module
    docstring but the creator's posterior): fit it once, then ``slots_for`` each creator. Small
    enough to cache (a few arrays of 168 slots per creator plus one number per send)."""
    seconds, values, exposures, owners = _validated_events(sent_at, engagement, exposure, creator_ids)
    default = _zone(default_tz, "default_tz")
    zones = {owner: _zone(name, "creator_timezones") for owner, name in creator_timezones.items()}
    return _fit_agency(seconds, values, exposures, owners, lambda owner: zones.get(owner, default))


def slots_for(fit: AgencyFit, creator_id: Any, *, tz: str, kind: Kind = "post", top: int = 3) -> TimingResult:
    """One creator's answer from an agency's ``fit_agency`` (``tz``: the zone their sends were
    read in when the fit was made)."""
    _check_kind_and_top(kind, top)
    _zone(tz, "tz")
    return _advise(fit, creator_id, tz, kind, top)


def _check_kind_and_top(kind: str, top: Any) -> None:
    if kind not in _WORDS:
        raise TimingInputError(f"kind must be 'post' or 'message', not {kind!r}.", field="kind")
    if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= HOURS_PER_WEEK:
        raise TimingInputError(f"top must be a whole number from 1 to {HOURS_PER_WEEK}, not {top!r}.", field="top")


@dataclass(frozen=True)
class AgencyFit:
    """What every creator's answer shares: the sends in local slots and the fitted priors. Row
    ``len(creators)`` of the per-creator arrays is an empty creator (no sends): the agency's
    pattern alone, for a creator who has not sent yet. An empty row changes no other row's fit:
    every sum it joins gains zeros and every moment estimate skips cells with nothing expected."""

    sends_total: int
    per_send: np.ndarray
    creators: np.ndarray
    owner_index: np.ndarray
    counts: np.ndarray | None = None
    sends: np.ndarray | None = None
    phis: np.ndarray | None = None
    prior_means: np.ndarray | None = None
    prior_strengths: np.ndarray | None = None


def _fit_agency(
    seconds: np.ndarray, values: np.ndarray, exposures: np.ndarray, owners: np.ndarray, zone_of
) -> AgencyFit:
    creators, owner_index = np.unique(owners, return_inverse=True)
    per_send = values / exposures
    if len(seconds) < MIN_SENDS:
        return AgencyFit(len(seconds), per_send, creators, owner_index)
    slots = np.empty(len(seconds), dtype=np.int64)
    for index, owner in enumerate(creators):
        theirs = owner_index == index
        slots[theirs] = local_slots(seconds[theirs], zone_of(owner))
    n_rows = len(creators) + 1
    counts = np.zeros((n_rows, HOURS_PER_WEEK))
    sends = np.zeros((n_rows, HOURS_PER_WEEK))
    np.add.at(counts, (owner_index, slots), values)
    np.add.at(sends, (owner_index, slots), exposures)
    phis = _dispersions(values, exposures, owner_index * HOURS_PER_WEEK + slots, owner_index, n_rows)
    # An agency whose every send earned nothing fits 0/0 priors; each creator's answer is then
    # NoBestTime, decided in _advise before the priors are read.
    with np.errstate(invalid="ignore", divide="ignore"):
        prior_means, prior_strengths = _creator_priors(counts, sends, phis)
    return AgencyFit(len(seconds), per_send, creators, owner_index, counts, sends, phis, prior_means, prior_strengths)


def _advise(fit: AgencyFit, creator_id: Any, tz: str, kind: Kind, top: int) -> TimingResult:
    words = _WORDS[kind]
    found = np.flatnonzero(fit.creators == creator_id) if len(fit.creators) else np.zeros(0, dtype=np.int64)
    mine = fit.owner_index == found[0] if len(found) else np.zeros(len(fit.per_send), dtype=bool)
    creator_sends = int(mine.sum())
    if fit.counts is None:
        needed = MIN_SENDS - fit.sends_total
        return NotEnoughData(
            kind=kind,
            creator_id=creator_id,
            needed=needed,
            have=fit.sends_total,
            message=(
                f"Not enough data yet: need {needed} more {words['units'] if needed > 1 else words['unit']} "
                f"(the agency has {fit.sends_total}; comparing the 168 hours of the week takes {MIN_SENDS})."
            ),
        )

    judged = fit.per_send[mine] if creator_sends >= 2 else fit.per_send
    if np.allclose(judged, judged[0], rtol=1e-9, atol=0.0):
        whose = f"your {creator_sends} {words['units']}" if creator_sends >= 2 else f"the agency's {words['units']}"
        return NoBestTime(
            kind=kind,
            creator_id=creator_id,
            message=(
                f"No best time: every one of {whose} earned the same {words['gain']} ({judged[0]:g}), "
                "so no hour of the week does better than another."
            ),
        )

    # A creator with no sends of their own yet gets the empty last row: the agency's pattern alone.
    target = int(found[0]) if creator_sends else len(fit.creators)
    sends = fit.sends
    own_counts, own_sends, phi = fit.counts[target], sends[target], fit.phis[target]
    prior_mean, alpha = fit.prior_means[target], fit.prior_strengths[target]
    data_exposure = smooth_hours(own_sends) / phi
    posterior_shape = alpha + smooth_hours(own_counts) / phi
    posterior_rate = alpha / prior_mean + data_exposure
    rates = posterior_shape / posterior_rate
    errors = np.sqrt(posterior_shape) / posterior_rate
    weights = own_sends / own_sends.sum() if own_sends.sum() > 0 else sends.sum(0) / sends.sum()
    baseline = float(rates @ weights)

    order = np.argsort(-rates, kind="stable")[:top]
    confidence, top_probability = _slot_probabilities(posterior_shape, posterior_rate, weights, top)
    chosen = tuple(
        TimingSlot(
            weekday=int(slot // 24),
            hour=int(slot % 24),
            expected_rate=float(rates[slot]),
            lift=float(rates[slot] / baseline - 1),
            confidence=float(confidence[slot]),
            top_probability=float(top_probability[slot]),
        )
        for slot in order
    )
    own_share = float(np.mean(data_exposure / (alpha / prior_mean + data_exposure)))
    return TimingAdvice(
        kind=kind,
        creator_id=creator_id,
        timezone=tz,
        slots=chosen,
        rates=rates.reshape(7, 24),
        standard_errors=errors.reshape(7, 24),
        baseline_rate=baseline,
        own_data_share=own_share,
        creator_sends=creator_sends,
        agency_sends=fit.sends_total,
        message=_explanation(chosen, tz, words, own_share, creator_sends),
    )


def local_slots(seconds: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """The week slot (weekday * 24 + local clock hour, Monday 00:00 = 0) of each UTC epoch second.

    Vectorised: the zone's UTC offset is looked up once a day over the span of the data, and
    each change of offset (DST, or a zone changing its rules) is found to the second by
    bisection, so every instant gets the offset in force at that instant.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    if len(seconds) == 0:
        return np.zeros(0, dtype=np.int64)
    local = seconds + _utc_offsets(seconds, zone)
    weekday = (np.floor_divide(local, DAY_SECONDS) + 3) % 7  # 1970-01-01 was a Thursday
    hour = np.floor_divide(np.mod(local, DAY_SECONDS), 3600)
    return weekday * 24 + hour


def smooth_hours(values: np.ndarray) -> np.ndarray:
    """``values`` over consecutive hours (last axis: the 168 of a week or the 24 of a day),
    averaged with their neighbouring hours by ``SMOOTHING_KERNEL``; circular, so Sunday 23:00
    is next to Monday 00:00 (and 23:00 to 00:00 in a day)."""
    half = len(SMOOTHING_KERNEL) // 2
    return sum(
        weight * np.roll(values, shift, axis=-1)
        for shift, weight in zip(range(-half, half + 1), SMOOTHING_KERNEL, strict=True)
    )


# -- steps --------------------------------------------------------------------------------------

_TARGET = object()  # the key of the creator's own zone among the zones


def _zone_names(tz: str, creator_timezones: Mapping[Any, str] | None) -> list[tuple[Any, str, str]]:
    names = [(_TARGET, tz, "tz")]
    names += [(owner, name, "creator_timezones") for owner, name in (creator_timezones or {}).items()]
    return names


def _zone(name: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TimingInputError(
            f"Unknown timezone {name!r}: use an IANA name such as 'Europe/Paris' or 'Asia/Kathmandu'.", field=field
        )


def _validated_events(
    sent_at: Any, engagement: Any, exposure: Any, creator_ids: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    seconds = _epoch_seconds(sent_at)
    values = _numbers(engagement, "engagement")
    exposures = np.ones(len(seconds)) if exposure is None else _numbers(exposure, "exposure")
    owners = np.asarray(creator_ids)
    if owners.ndim != 1:
        raise TimingInputError("creator_ids must be a flat list, one creator per send.", field="creator_ids")
    lengths = {
        "sent_at": len(seconds),
        "engagement": len(values),
        "exposure": len(exposures),
        "creator_ids": len(owners),
    }
    if len(set(lengths.values())) > 1:
        given = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise TimingInputError(f"One value per send in every array, but the lengths differ: {given}.")
    if len(seconds) == 0:
        raise TimingInputError("No sends given: sent_at is empty.", field="sent_at")
    _require(values >= 0, values, "engagement", "must not be negative")
    _require(exposures > 0, exposures, "exposure", "must be positive (how much was sent: 1 per post, fans reached)")
    return seconds, values, exposures, owners


def _numbers(raw: Any, field: str) -> np.ndarray:
    try:
        values = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        raise TimingInputError(f"{field} must hold numbers only.", field=field)
    if values.ndim != 1:
        raise TimingInputError(f"{field} must be a flat list, one number per send.", field=field)
    _require(np.isfinite(values), values, field, "must be a number, not NaN or infinite")
    return values


def _require(ok: np.ndarray, values: np.ndarray, field: str, rule: str) -> None:
    bad = np.flatnonzero(~ok)
    if len(bad):
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise TimingInputError(f"{field} {rule}: row {bad[0]} is {values[bad[0]]}{more}.", field=field)


def _epoch_seconds(sent_at: Any) -> np.ndarray:
    raw = np.asarray(sent_at)
    if raw.ndim != 1:
        raise TimingInputError("sent_at must be a flat list, one instant per send.", field="sent_at")
    if raw.dtype.kind == "M":
        _require(~np.isnat(raw), raw, "sent_at", "must be a time, not NaT")
        return raw.astype("datetime64[s]").astype(np.int64)
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    if raw.dtype.kind == "f":
        _require(np.isfinite(raw), raw, "sent_at", "must be a time, not NaN or infinite")
        return np.floor(raw).astype(np.int64)
    if raw.dtype.kind == "O" and all(isinstance(value, datetime) for value in raw):
        naive = [index for index, value in enumerate(raw) if value.utcoffset() is None]
        if naive:
            raise TimingInputError(
                f"sent_at row {naive[0]} is a naive datetime: give aware UTC datetimes, datetime64 in UTC, "
                "or epoch seconds.",
                field="sent_at",
            )
        return np.floor(np.array([value.timestamp() for value in raw])).astype(np.int64)
    raise TimingInputError(
        "sent_at must hold UTC instants: datetime64, epoch seconds, or aware datetimes.", field="sent_at"
    )


def _offset_at(second: int, zone: ZoneInfo) -> int:
    return int(datetime.fromtimestamp(second, zone).utcoffset().total_seconds())


def _utc_offsets(seconds: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    # One probe a UTC day; zones change offset at most once a day, so a change between two probes
    # is a single transition, found to the second by bisection.
    first = int(seconds.min()) // DAY_SECONDS * DAY_SECONDS
    probes = np.arange(first, int(seconds.max()) + DAY_SECONDS + 1, DAY_SECONDS)
    offsets = np.array([_offset_at(int(probe), zone) for probe in probes])
    starts, values = [first], [int(offsets[0])]
    for index in np.flatnonzero(np.diff(offsets)):
        before, after = int(probes[index]), int(probes[index + 1])
        while after - before > 1:
            middle = (before + after) // 2
            if _offset_at(middle, zone) == offsets[index]:
                before = middle
            else:
                after = middle
        starts.append(after)
        values.append(int(offsets[index + 1]))
    return np.asarray(values)[np.searchsorted(starts, seconds, side="right") - 1]


def _agency_pattern(counts: np.ndarray, sends: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The agency's week ``shape`` (mean 1) and each creator's ``level`` from the Poisson model
    counts[c, s] ~ sends[c, s] * level[c] * shape[s], fitted by alternating the two closed-form
    updates; the shape is smoothed over neighbouring hours and shrunk toward flat."""
    shape = np.ones(HOURS_PER_WEEK)
    totals = counts.sum(axis=0)
    for _ in range(iterations):
        levels = counts.sum(axis=1) / np.maximum((sends * shape).sum(axis=1), 1e-12)
        expected = smooth_hours((sends * levels[:, None]).sum(axis=0))
        pseudo = AGENCY_FLAT_PRIOR * expected.mean()
        shape = (smooth_hours(totals) + pseudo) / (expected + pseudo)
        shape /= shape.mean()
    levels = counts.sum(axis=1) / np.maximum((sends * shape).sum(axis=1), 1e-12)
    return shape, levels


def _dispersions(
    values: np.ndarray, exposures: np.ndarray, cells: np.ndarray, owner_index: np.ndarray, n_creators: int
) -> np.ndarray:
    """Each creator's dispersion phi (1 = Poisson) from the spread of their sends within a slot,
    where the true rate is one number, so the differences between slots cannot inflate it:
    Pearson's statistic sum (y - e * r)^2 / (e * r) over sends, with r the slot's own rate, has
    expectation phi * (sends - 1) per slot. Each creator's estimate is shrunk toward the agency's
    with DISPERSION_PRIOR_DF degrees of freedom, since phi grows with a creator's audience."""
    cell_counts = np.bincount(cells, weights=values, minlength=n_creators * HOURS_PER_WEEK)
    cell_sends = np.bincount(cells, weights=exposures, minlength=n_creators * HOURS_PER_WEEK)
    cell_size = np.bincount(cells, minlength=n_creators * HOURS_PER_WEEK)
    cell_rate = np.divide(cell_counts, cell_sends, out=np.zeros_like(cell_counts), where=cell_sends > 0)
    usable = (cell_size > 1) & (cell_rate > 0)
    expected = exposures * cell_rate[cells]
    informative = usable[cells]
    pearson = np.zeros(len(values))
    pearson[informative] = (values[informative] - expected[informative]) ** 2 / expected[informative]
    statistic = np.bincount(owner_index, weights=pearson, minlength=n_creators)
    freedom = np.bincount(
        np.arange(n_creators * HOURS_PER_WEEK) // HOURS_PER_WEEK,
        weights=np.where(usable, cell_size - 1, 0),
        minlength=n_creators,
    )
    pooled = max(1.0, float(statistic.sum() / freedom.sum())) if freedom.sum() > 0 else 1.0
    own = (statistic + DISPERSION_PRIOR_DF * pooled) / (freedom + DISPERSION_PRIOR_DF)
    return np.maximum(own, 1.0)


def _creator_priors(counts: np.ndarray, sends: np.ndarray, phis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each creator's prior over the week, (creators, 168) means and Gamma shapes.

    mean[c, s] = level[c] * shape[s] * weekday[c, d(s)] * hour[c, h(s)]: the agency's week
    (``_agency_pattern``) bent by the creator's own weekday and hour-of-day factors. Those pool
    the creator's sends over all hours of a weekday (or all weekdays of an hour), so ~40 posts
    inform each weekday and ~10 each hour when a slot has one or two; each is a Gamma-Poisson
    posterior mean shrunk toward 1 with a strength estimated from the agency (``_strength``).
    The Gamma shape ``alpha`` of the slot prior (how far a slot strays from that mean) is
    estimated the same way, and lowered by the factors' own uncertainty so a prior built from
    little data is not taken for certain: 1 / shape = 1 / alpha + 1 / a_weekday + 1 / a_hour.
    """
    shape, levels = _agency_pattern(counts, sends)
    levels = np.where(sends.sum(axis=1) > 0, levels, counts.sum() / (sends * shape).sum())
    n = len(counts)
    phi = phis[:, None, None]
    observed = counts.reshape(n, 7, 24)
    expected = (sends * levels[:, None] * shape).reshape(n, 7, 24)
    day_strength = _strength(observed.sum(axis=2), expected.sum(axis=2), phis[:, None])
    hour_strength = _strength(observed.sum(axis=1), expected.sum(axis=1), phis[:, None])
    days, hours = np.ones((n, 7)), np.ones((n, 24))
    for _ in range(5):
        day_evidence = (observed / phi).sum(axis=2) + day_strength
        days = day_evidence / ((expected * hours[:, None, :] / phi).sum(axis=2) + day_strength)
        hour_evidence = smooth_hours((observed / phi).sum(axis=1)) + hour_strength
        hours = hour_evidence / (smooth_hours((expected * days[:, :, None] / phi).sum(axis=1)) + hour_strength)
    means = (levels[:, None] * shape).reshape(n, 7, 24) * days[:, :, None] * hours[:, None, :]
    means = means.reshape(n, HOURS_PER_WEEK)
    alpha = _strength(counts, sends * means, phis[:, None])
    uncertainty = 1 / alpha + (1 / day_evidence)[:, :, None] + (1 / hour_evidence)[:, None, :]
    return means, 1 / uncertainty.reshape(n, HOURS_PER_WEEK)


def _strength(observed: np.ndarray, expected: np.ndarray, phis: np.ndarray) -> float:
    """How strongly cells hold to their expected counts, by the method of moments: the ratio
    observed / expected varies around 1 by 1 / strength (real differences between creators)
    plus phi / expected (noise); the noise is subtracted and the cells weighted by how much they
    say. Bounded to [ALPHA_MIN, ALPHA_MAX]."""
    cells = expected > 0
    phi = np.broadcast_to(phis, expected.shape)[cells]
    expected, observed = expected[cells], observed[cells]
    excess = (observed / expected - 1) ** 2 - phi / expected
    information = expected / phi
    weights = information / (1 + information)
    inverse = float((weights * excess).sum() / max(weights.sum(), 1e-12))
    return ALPHA_MAX if inverse <= 1 / ALPHA_MAX else float(np.clip(1 / inverse, ALPHA_MIN, ALPHA_MAX))


def _slot_probabilities(
    shape: np.ndarray, rate: np.ndarray, weights: np.ndarray, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, the posterior probability of beating the creator's current average and of being
    among the ``top`` slots, from draws of the independent Gamma posteriors."""
    rng = np.random.default_rng(MONTE_CARLO_SEED)
    draws = rng.gamma(shape, 1 / rate, size=(MONTE_CARLO_DRAWS, HOURS_PER_WEEK))
    beats = (draws > (draws @ weights)[:, None]).mean(axis=0)
    leaders = np.argpartition(-draws, top - 1, axis=1)[:, :top]
    in_top = np.bincount(leaders.ravel(), minlength=HOURS_PER_WEEK) / MONTE_CARLO_DRAWS
    return beats, in_top


def _explanation(slots: tuple[TimingSlot, ...], tz: str, words: dict[str, str], own_share: float, sends: int) -> str:
    best = slots[0]
    sentence = (
        f"{words['verb']} on {best.label} ({tz} time): {best.lift:+.0%} {words['gain']} over your current "
        f"average, {best.confidence:.0%} confidence."
    )
    if len(slots) > 1:
        others = ", ".join(f"{slot.label} ({slot.lift:+.0%})" for slot in slots[1:])
        sentence += f" Also good: {others}."
    if own_share < OWN_DATA_NOTICE:
        sentence += (
            f" Mostly your agency's pattern for now ({sends} {words['units']} of your own);"
            " it becomes yours as you send more."
        )
    return sentence
