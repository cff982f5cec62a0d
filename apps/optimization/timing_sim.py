"""Simulated send histories with a known best slot, to measure the timing engine (timing.py).

An agency of creators, each with a true engagement-rate surface over their local week (one of
``SHAPES``), a habit of posting at some hours more than others (never tied to the best hour, so
the busiest hour is not the best one), a zone among ``TIMEZONES`` (DST zones north and south,
UTC+5:45, UTC-3:30) and a history of ``days`` days starting before the northern spring DST change.
Engagement per send is negative binomial (Gamma-Poisson, coefficient of variation
1 / sqrt(``SEND_SHAPE``) on top of Poisson), as likes per post are.

``evaluate_timing`` runs ``best_slots`` for every creator of a simulated agency and reports how
often the true best slot is among the top 3 (``timing_top3_hit_rate``), per shape and overall.

Seeds: 1-5 were used while choosing the engine's constants (tuning); 101-120 are the test seeds
whose figures docs/optimization-timing.md reports; tests/optimization/test_timing.py uses 2026.

What this deliberately does not do: model trends, holidays or one-off viral posts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from apps.optimization.timing import TimingAdvice, best_slots

SHAPES = ("evening_peak", "two_peaks", "weekend_heavy", "narrow_spike", "flat_mild")
TIMEZONES = (
    "America/New_York",
    "Europe/London",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Sydney",
    "Europe/Berlin",
)
START = datetime(2026, 1, 20, tzinfo=UTC)  # 90 days from here cross the March DST changes
SEND_SHAPE = 4.0  # Gamma shape of a send's own rate: per-post CV of 50 % before Poisson noise


@dataclass(frozen=True)
class SimulatedCreator:
    creator_id: int
    shape: str
    timezone: str
    surface: np.ndarray  # (7, 24) true engagement per unit of exposure, local weekday x hour
    best_slot: tuple[int, int]  # (weekday, hour) of the surface's maximum


@dataclass(frozen=True)
class SimulatedAgency:
    creators: tuple[SimulatedCreator, ...]
    sent_at: np.ndarray  # epoch seconds, UTC
    engagement: np.ndarray
    exposure: np.ndarray
    creator_ids: np.ndarray

    @property
    def creator_timezones(self) -> dict[int, str]:
        return {creator.creator_id: creator.timezone for creator in self.creators}


@dataclass(frozen=True)
class TimingEvaluation:
    seeds: tuple[int, ...]
    creators: int
    hit_rate: float  # share of creators whose true best slot is among the recommended top 3
    hit_rate_by_shape: dict[str, float]
    achieved: float  # mean of true rate at the top recommendation / true rate at the best slot
    achieved_by_shape: dict[str, float]
    naive_hit_rate: float  # the same for the creator's raw engagement per send in each slot
    unanswered: int  # creators answered NotEnoughData or NoBestTime (counted as misses)
    seconds: float


def true_surface(shape: str, rng: np.random.Generator) -> np.ndarray:
    """A (7, 24) relative engagement rate over the local week for one of ``SHAPES``."""
    hours = np.arange(24)
    daily = 0.6 + 0.4 * (1 + np.cos(2 * np.pi * (hours - 20) / 24)) / 2  # quiet mornings, lively evenings
    days = rng.uniform(0.92, 1.05, size=7)

    def bump(centre: int, width: float) -> np.ndarray:
        distance = (hours - centre + 12) % 24 - 12
        return np.exp(-(distance**2) / (2 * width**2))

    if shape == "evening_peak":
        days[rng.integers(7)] = 1.2
        hourly = daily * (1 + 0.5 * bump(int(rng.integers(19, 24)), 1.5))
    elif shape == "two_peaks":
        hourly = daily * (1 + 0.45 * bump(int(rng.integers(11, 14)), 1.2) + 0.55 * bump(int(rng.integers(21, 24)), 1.2))
    elif shape == "weekend_heavy":
        days[5:] = 1.4
        days[int(rng.integers(5, 7))] = 1.5
        days[:5] = rng.uniform(0.85, 0.95, size=5)
        hourly = daily * (1 + 0.4 * bump(int(rng.integers(10, 23)), 2.0))
    elif shape == "narrow_spike":
        hourly = daily
    elif shape == "flat_mild":
        hourly = np.ones(24)
        days = np.ones(7)
    else:
        raise ValueError(f"unknown shape {shape!r}; one of {SHAPES}")
    surface = days[:, None] * hourly[None, :]
    if shape == "narrow_spike":
        surface[rng.integers(7), rng.integers(18, 24)] *= 1.8
    if shape == "flat_mild":
        surface *= 1 + rng.normal(0, 0.04, size=surface.shape)
        surface[rng.integers(7), rng.integers(9, 24)] = surface.max() * 1.25
    return surface / surface.mean()


def simulate_timing(seed: int, creators: int = 10, *, days: int = 90, kind: str = "post") -> SimulatedAgency:
    """One agency of ``creators`` creators (shapes in turn, zones at random) and their sends."""
    rng = np.random.default_rng(seed)
    people, sent_at, engagement, exposure, owners = [], [], [], [], []
    for creator_id in range(creators):
        shape = SHAPES[creator_id % len(SHAPES)]
        zone_name = TIMEZONES[int(rng.integers(len(TIMEZONES)))]
        surface = true_surface(shape, rng)
        best = np.unravel_index(int(np.argmax(surface)), surface.shape)
        people.append(SimulatedCreator(creator_id, shape, zone_name, surface, (int(best[0]), int(best[1]))))

        local_times = _schedule(rng, ZoneInfo(zone_name), days, per_day=rng.uniform(2, 4) if kind == "post" else 2)
        seconds = np.array([moment.timestamp() for moment in local_times], dtype=np.int64)
        weekday = np.array([moment.weekday() for moment in local_times])
        hour = np.array([moment.hour for moment in local_times])
        if kind == "post":
            reached = np.ones(len(seconds))
            scale = float(np.exp(rng.normal(np.log(80), 0.8)))  # typical likes + comments per post
        else:
            reached = rng.integers(20, 400, size=len(seconds)).astype(float)  # fans per mass message
            scale = float(np.exp(rng.normal(np.log(0.06), 0.4)))  # replies and purchases per fan
        mean = scale * surface[weekday, hour] * reached
        sent_at.append(seconds)
        engagement.append(rng.poisson(rng.gamma(SEND_SHAPE, mean / SEND_SHAPE)).astype(float))
        exposure.append(reached)
        owners.append(np.full(len(seconds), creator_id))
    return SimulatedAgency(
        creators=tuple(people),
        sent_at=np.concatenate(sent_at),
        engagement=np.concatenate(engagement),
        exposure=np.concatenate(exposure),
        creator_ids=np.concatenate(owners),
    )


def evaluate_timing(
    seed: int | list[int] | tuple[int, ...], creators: int = 10, *, days: int = 90, kind: str = "post"
) -> TimingEvaluation:
    """``timing_top3_hit_rate`` and the share of the best slot's rate achieved, over simulated
    agencies (one per seed) of ``creators`` creators, next to the hit rate of the naive answer
    (the creator's three slots with the highest raw engagement per send)."""
    seeds = (seed,) if isinstance(seed, int) else tuple(seed)
    started = time.perf_counter()
    hits: dict[str, list[bool]] = {shape: [] for shape in SHAPES}
    achieved: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    naive_hits: list[bool] = []
    unanswered = 0
    for one_seed in seeds:
        agency = simulate_timing(one_seed, creators, days=days, kind=kind)
        for creator in agency.creators:
            naive_hits.append(creator.best_slot in _naive_top3(agency, creator))
            advice = best_slots(
                sent_at=agency.sent_at,
                engagement=agency.engagement,
                exposure=agency.exposure,
                creator_ids=agency.creator_ids,
                creator_id=creator.creator_id,
                tz=creator.timezone,
                creator_timezones=agency.creator_timezones,
                kind=kind,  # type: ignore[arg-type]
                top=3,
            )
            if not isinstance(advice, TimingAdvice):
                unanswered += 1
                hits[creator.shape].append(False)
                achieved[creator.shape].append(float(creator.surface.mean() / creator.surface.max()))
                continue
            top3 = {(slot.weekday, slot.hour) for slot in advice.slots}
            first = advice.slots[0]
            hits[creator.shape].append(creator.best_slot in top3)
            achieved[creator.shape].append(float(creator.surface[first.weekday, first.hour] / creator.surface.max()))
    every_hit = [hit for shape in SHAPES for hit in hits[shape]]
    every_achieved = [value for shape in SHAPES for value in achieved[shape]]
    return TimingEvaluation(
        seeds=seeds,
        creators=len(every_hit),
        hit_rate=float(np.mean(every_hit)),
        hit_rate_by_shape={shape: float(np.mean(hits[shape])) for shape in SHAPES if hits[shape]},
        achieved=float(np.mean(every_achieved)),
        achieved_by_shape={shape: float(np.mean(achieved[shape])) for shape in SHAPES if achieved[shape]},
        naive_hit_rate=float(np.mean(naive_hits)),
        unanswered=unanswered,
        seconds=time.perf_counter() - started,
    )


def _naive_top3(agency: SimulatedAgency, creator: SimulatedCreator) -> set[tuple[int, int]]:
    mine = agency.creator_ids == creator.creator_id
    local = [datetime.fromtimestamp(int(second), ZoneInfo(creator.timezone)) for second in agency.sent_at[mine]]
    slots = np.array([moment.weekday() * 24 + moment.hour for moment in local])
    engagement = np.bincount(slots, weights=agency.engagement[mine], minlength=168)
    exposure = np.bincount(slots, weights=agency.exposure[mine], minlength=168)
    rate = np.where(exposure > 0, engagement / np.maximum(exposure, 1e-12), -np.inf)
    return {(int(slot) // 24, int(slot) % 24) for slot in np.argsort(-rate, kind="stable")[:3]}


def _schedule(rng: np.random.Generator, zone: ZoneInfo, days: int, per_day: float) -> list[datetime]:
    """Local send times: ``per_day`` a day on average, 60 % around a habitual hour (9:00-18:00),
    the rest anywhere from 8:00 to midnight, at a random minute."""
    habit = int(rng.integers(9, 19))
    first_day = START.astimezone(zone).date()
    moments = []
    for day in range(days):
        date = first_day + timedelta(days=day)
        for _ in range(int(rng.poisson(per_day))):
            habitual = rng.random() < 0.6
            hour = int(np.clip(round(rng.normal(habit, 2)), 8, 23)) if habitual else int(rng.integers(8, 24))
            moments.append(datetime(date.year, date.month, date.day, hour, int(rng.integers(60)), tzinfo=zone))
    return moments
