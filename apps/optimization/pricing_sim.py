"""A PPV market with known demand curves, to measure the pricing engine against the best price.

Each run draws an agency: one demand-curve shape (``CURVES``), an agency-wide price scale, and
per-creator variation of that scale and of the unlock level. The agency's other creators come
with a past (``AGENCY_CREATORS`` x ``HISTORY_OFFERS`` offers at a few habitual prices each); a new
creator then sends ``OFFERS`` offers to ``RECIPIENTS`` fans each, priced by the policy, and fans
unlock with the true probability at that price (binomial draws). The oracle knows the creator's
curve and always asks the revenue-maximising price (searched at 1-cent steps from $1 to $200,
not only on the engine's grid, so the grid's coarseness counts against the engine). Each run
has its own random stream, so the markets drawn do not depend on the policy and two engines are
compared on the same agencies.

The policy (``explore_then_exploit``): the revenue_max recommendation on the aggressive bound for
the first ``EXPLORE_OFFERS`` offers, then on the moderate one, re-estimated after every offer.
Revenue is compared in expectation (price x true unlock rate x recipients), so the figure
measures the prices chosen rather than the luck of the binomial draws.

``evaluate_pricing`` reports revenue as a share of the oracle's and regret (the dollars the policy
left on the table over the creator's offers), per curve shape and overall. The target (95 %) is
set on that ratio: revenue summed over all OFFERS offers, exploring included, against the oracle
price asked OFFERS times. ``final_ratio`` is reported beside it and is not the target: what the
price recommended after the last offer (revenue_max, moderate) would earn if asked OFFERS times,
i.e. how well the engine learned, without the cost of learning. The seeds used to
choose EXPLORE_OFFERS and the engine's constants (TUNING_SEED, and 2025-2026 for the between-grid
prices) differ from the seeds the tests and docs report (TEST_SEED, and 99 in the docs).
``HELDOUT_CURVES`` are four more shapes (a log-logistic, two tiers of fans, flat-then-linear, and a
plateau with a power-law fall) added on 2026-12-02 and never used to choose anything: the engine's
constants were all chosen on ``CURVES``, so ``evaluate_pricing(curves=HELDOUT_CURVES)`` says
whether they carry over to shapes the engine was not tuned on.

What this deliberately does not model: fans who saw an earlier offer, segments, time of day, or
prices changing demand over time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from apps.optimization import pricing

OFFERS = 20
RECIPIENTS = 200
AGENCY_CREATORS = 5  # the new creator's colleagues, whose history the engine pools
HISTORY_OFFERS = 12  # each colleague's past offers
HABITUAL_PRICES = 3  # distinct prices each colleague has used
EXPLORE_OFFERS = 5  # offers priced on the optimistic (aggressive) bound before the moderate one
TUNING_SEED = 2024
TEST_SEED = 7

AGENCY_SCALE = (0.6, 1.6)  # the agency's price scale, log-uniform: where the best price sits on the grid
CREATOR_SCALE_SD = 0.15  # per creator, log-normal around the agency's scale
CREATOR_LEVEL_SD = 0.20  # per creator, log-normal multiplier of the unlock rate

ORACLE_PRICES = np.round(np.arange(1.0, 200.0 + 0.005, 0.01), 2)

Curve = Callable[[np.ndarray, float, float], np.ndarray]  # (prices, price scale, level) -> unlock rate


def logistic(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Smooth S-curve: most fans unlock below about $14, few above."""
    return level * 0.45 / (1 + np.exp((price - 14 * scale) / (3 * scale)))


def exponential(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Every extra dollar loses the same share of buyers; best price = the decay constant ($11)."""
    return level * 0.35 * np.exp(-price / (11 * scale))


def linear(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Buyers fall by the same number per dollar, to none at $36; best price = half of that."""
    return level * 0.30 * np.clip(1 - price / (36 * scale), 0, None)


def threshold(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """A step at about $16 (a 4 % wide edge): most buyers pay up to there, a few fading ones beyond."""
    step = 0.22 / (1 + np.exp((np.log(price) - np.log(16 * scale)) / 0.04))
    return level * (step + 0.04 * np.exp(-price / (10 * scale)))


def plateau_cliff(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Flat up to $18, then a cliff (buyers halve every $1.70): the best price is the edge."""
    edge = 18 * scale
    return level * 0.22 * np.exp(-np.clip(price - edge, 0, None) / (2.5 * scale))


def log_logistic(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Held out. Smooth with elasticity rising from 0 to 3: best price where (p / $12)^3 = 1/2, about $9.50."""
    return level * 0.40 / (1 + (price / (12 * scale)) ** 3)


def two_step(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Held out. Two tiers of fans (4 % wide edges at $9 and $22): the dearer edge earns a little more."""
    low = 0.15 / (1 + np.exp((np.log(price) - np.log(9 * scale)) / 0.04))
    high = 0.12 / (1 + np.exp((np.log(price) - np.log(22 * scale)) / 0.04))
    return level * (low + high)


def kinked_linear(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Held out. Flat to $10, then buyers fall linearly to none at $30: best price $15."""
    return level * 0.30 * np.clip((30 * scale - price) / (20 * scale), 0, 1)


def plateau_power(price: np.ndarray, scale: float, level: float) -> np.ndarray:
    """Held out. Flat to $12, then a power-law fall (elasticity 2.5): the best price is the edge."""
    return level * 0.25 * np.minimum(1.0, (price / (12 * scale)) ** -2.5)


CURVES: dict[str, Curve] = {
    "logistic": logistic,
    "exponential": exponential,
    "linear": linear,
    "threshold": threshold,
    "plateau_cliff": plateau_cliff,
}

# Shapes no part of the engine or the policy was tuned on (added 2026-12-02 before any run on them):
# evaluate_pricing(curves=HELDOUT_CURVES) says whether the engine generalises beyond CURVES.
HELDOUT_CURVES: dict[str, Curve] = {
    "log_logistic": log_logistic,
    "two_step": two_step,
    "kinked_linear": kinked_linear,
    "plateau_power": plateau_power,
}


@dataclass(frozen=True)
class RunResult:
    revenue: float  # expected revenue of the policy's prices over OFFERS offers
    oracle_revenue: float  # the oracle's over the same offers
    grid_oracle_revenue: float  # the best single grid price's, for the grid's own share of the gap
    prices: tuple[float, ...]
    # What the final recommendation (revenue_max, moderate, on all OFFERS offers) would earn if it
    # were asked for OFFERS offers: how well the engine learned, without the cost of learning.
    final_revenue: float = 0.0


@dataclass(frozen=True)
class ShapeResult:
    curve: str
    runs: int
    oracle_ratio: float  # policy revenue / oracle revenue, summed over runs
    grid_ratio: float  # best grid price's revenue / oracle revenue: the ceiling the grid allows
    regret: float  # mean dollars left on the table per run (OFFERS x RECIPIENTS fans)
    regret_per_recipient: float
    final_ratio: float = 0.0  # the final recommended price's revenue / the oracle price's (not the target)


@dataclass(frozen=True)
class PricingEvaluation:
    seed: int
    runs: int
    oracle_ratio: float  # mean of the shapes' ratios: THE measure the 95 % target is set on
    regret: float  # mean of the shapes' regrets, dollars per run
    shapes: tuple[ShapeResult, ...]
    seconds: float


def explore_then_exploit(
    history: pricing.OfferHistory | None, creator_id: int, offer: int, rng: np.random.Generator
) -> float:
    """The evaluated policy: revenue_max / aggressive for EXPLORE_OFFERS offers, then revenue_max / moderate.

    The aggressive bound (75 % quantile) is optimism under uncertainty: a band that might be better
    gets tried while its interval is wide, and stops being tried once its data says otherwise.
    Thompson sampling (``thompson_choose``) as the explorer lost more on the tuning seed, since
    with 20 bands and 20 offers it spends too many offers on unlikely prices; it is used only while
    the rules give no recommendation yet.
    """
    risk = pricing.Risk.AGGRESSIVE if offer < EXPLORE_OFFERS else pricing.Risk.MODERATE
    answer = pricing.recommend(history, creator_id, pricing.Strategy.REVENUE_MAX, risk)
    if isinstance(answer, pricing.Recommendation):
        return answer.price
    return pricing.thompson_choose(history, creator_id, rng).price


def simulate_run(
    curve: Curve,
    rng: np.random.Generator,
    *,
    policy=explore_then_exploit,
    agency_creators: int = AGENCY_CREATORS,
) -> RunResult:
    """One agency and one new creator (id 0) priced by ``policy`` for OFFERS offers."""
    grid = np.asarray(pricing.DEFAULT_PRICE_GRID, dtype=float)
    agency_scale = float(np.exp(rng.uniform(*np.log(AGENCY_SCALE))))
    scales = agency_scale * np.exp(rng.normal(0, CREATOR_SCALE_SD, agency_creators + 1))
    levels = np.exp(rng.normal(0, CREATOR_LEVEL_SD, agency_creators + 1))

    columns: dict[str, list] = {"price": [], "recipients": [], "unlocks": [], "creator": []}
    habitual = grid[(grid >= 5) & (grid <= 35)]
    for colleague in range(1, agency_creators + 1):
        prices = rng.choice(rng.choice(habitual, HABITUAL_PRICES, replace=False), HISTORY_OFFERS)
        rates = curve(prices, scales[colleague], levels[colleague])
        columns["price"].extend(prices)
        columns["recipients"].extend([RECIPIENTS] * HISTORY_OFFERS)
        columns["unlocks"].extend(rng.binomial(RECIPIENTS, rates))
        columns["creator"].extend([colleague] * HISTORY_OFFERS)

    oracle_revenue_per_fan = ORACLE_PRICES * curve(ORACLE_PRICES, scales[0], levels[0])
    grid_revenue_per_fan = grid * curve(grid, scales[0], levels[0])
    chosen = []
    for offer in range(OFFERS):
        history = pricing.offer_history(**columns) if columns["price"] else None
        price = policy(history, 0, offer, rng)
        rate = float(curve(np.array([price]), scales[0], levels[0])[0])
        chosen.append(price)
        columns["price"].append(price)
        columns["recipients"].append(RECIPIENTS)
        columns["unlocks"].append(int(rng.binomial(RECIPIENTS, rate)))
        columns["creator"].append(0)

    chosen_prices = np.array(chosen)
    revenue = float((chosen_prices * curve(chosen_prices, scales[0], levels[0])).sum() * RECIPIENTS)
    final = pricing.recommend(pricing.offer_history(**columns), 0, pricing.Strategy.REVENUE_MAX, pricing.Risk.MODERATE)
    final_price = final.price if isinstance(final, pricing.Recommendation) else chosen[-1]
    final_rate = float(curve(np.array([final_price]), scales[0], levels[0])[0])
    return RunResult(
        revenue=revenue,
        oracle_revenue=float(oracle_revenue_per_fan.max() * RECIPIENTS * OFFERS),
        grid_oracle_revenue=float(grid_revenue_per_fan.max() * RECIPIENTS * OFFERS),
        prices=tuple(chosen),
        final_revenue=final_price * final_rate * RECIPIENTS * OFFERS,
    )


def evaluate_pricing(
    seed: int = TEST_SEED,
    runs: int = 20,
    *,
    curves: dict[str, Curve] | None = None,
    policy=explore_then_exploit,
    agency_creators: int = AGENCY_CREATORS,
) -> PricingEvaluation:
    """Policy revenue as a share of the oracle's, and regret, per curve shape over ``runs`` agencies."""
    started = time.perf_counter()
    curves = CURVES if curves is None else curves
    streams = np.random.SeedSequence(seed).spawn(len(curves))
    shapes = []
    for (name, curve), stream in zip(curves.items(), streams, strict=True):
        # One stream per run: run k's agency must not depend on how many draws the policy took in
        # runs before it, or two engines would be compared on different markets.
        results = [
            simulate_run(curve, np.random.default_rng(run_stream), policy=policy, agency_creators=agency_creators)
            for run_stream in stream.spawn(runs)
        ]
        revenue = sum(result.revenue for result in results)
        oracle = sum(result.oracle_revenue for result in results)
        grid_oracle = sum(result.grid_oracle_revenue for result in results)
        final = sum(result.final_revenue for result in results)
        regret = (oracle - revenue) / runs
        shapes.append(
            ShapeResult(
                curve=name,
                runs=runs,
                oracle_ratio=revenue / oracle,
                grid_ratio=grid_oracle / oracle,
                regret=regret,
                regret_per_recipient=regret / (OFFERS * RECIPIENTS),
                final_ratio=final / oracle,
            )
        )
    return PricingEvaluation(
        seed=seed,
        runs=runs,
        oracle_ratio=float(np.mean([shape.oracle_ratio for shape in shapes])),
        regret=float(np.mean([shape.regret for shape in shapes])),
        shapes=tuple(shapes),
        seconds=time.perf_counter() - started,
    )
