"""The PPV pricing engine (apps/optimization/pricing.py) and its simulator (pricing_sim.py).

Plain functions over arrays: no database. Histories are small and built by hand so each answer
can be checked on paper; the simulator test runs seeds distinct from the tuning seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from apps.optimization import pricing_sim as simulate
from apps.optimization.pricing import (
    DEFAULT_PRICE_GRID,
    NotEnoughData,
    PricingInputError,
    Recommendation,
    _aligned_agency_curve,
    _falling,
    _fill_untried,
    band_index,
    band_posterior,
    offer_history,
    recommend,
    thompson_choose,
)

GRID = (5, 10, 15, 20)


def history_of(*offers):
    """offers: (creator, price, recipients, unlocks) tuples."""
    creator, price, recipients, unlocks = zip(*offers, strict=True)
    return offer_history(price=price, recipients=recipients, unlocks=unlocks, creator=creator)


def band(posterior, price):
    return list(posterior.prices).index(price)


# A creator whose fans clearly pay most in total at $10: 40 % at $5 ($2.00 a fan), 30 % at $10
# ($3.00), 12 % at $15 ($1.80), 4 % at $20 ($0.80), 1,000 fans per price.
CLEAR = [("ana", price, 250, unlocks) for price, unlocks in [(5, 100), (10, 75), (15, 30), (20, 10)] for _ in range(4)]


def test_a_clear_curve_recommends_its_best_price_with_the_expected_figures():
    answer = recommend(history_of(*CLEAR), "ana", "revenue_max", "moderate", grid=GRID)
    assert isinstance(answer, Recommendation)
    assert answer.price == 10
    assert answer.expected_unlock_rate == pytest.approx(0.30, abs=0.01)
    assert answer.expected_revenue_per_recipient == pytest.approx(3.00, abs=0.1)
    assert answer.confidence > 0.9
    assert answer.bound == "posterior mean"
    assert [point.price for point in answer.curve] == [5, 10, 15, 20]
    assert all(point.lower <= point.mean <= point.upper for point in answer.curve)


def test_an_offer_between_grid_prices_counts_at_its_own_price_and_can_be_recommended():
    # 28 % at $12 ($3.36 a fan) beats 30 % at $10 ($3.00); on the grid $12 would be lost to $10.
    history = history_of(*CLEAR, *[("ana", 12, 250, 70)] * 4)
    answer = recommend(history, "ana", "revenue_max", "moderate", grid=GRID)
    assert answer.price == 12
    assert answer.expected_unlock_rate == pytest.approx(0.28, abs=0.02)
    assert [point.price for point in answer.curve] == [5, 10, 12, 15, 20]
    assert answer.explanation.startswith("Keep PPV at $12")


def test_whole_dollar_prices_between_grid_prices_are_candidates_but_not_charted():
    answer = recommend(history_of(*CLEAR), "ana", "revenue_max", "aggressive", grid=GRID)
    # $7 and $12 sit halfway (on a log scale) around $10; untried, their optimistic bound wins.
    assert answer.price == 12
    assert [point.price for point in answer.curve] == [5, 10, 12, 15, 20]
    moderate = recommend(history_of(*CLEAR), "ana", "revenue_max", "moderate", grid=GRID)
    assert [point.price for point in moderate.curve] == [5, 10, 15, 20]  # the untried $12 is not charted


def test_the_explanation_says_what_to_do_with_the_numbers():
    history = history_of(*CLEAR, ("ana", 15, 250, 30))  # the last offer was at $15
    answer = recommend(history, "ana", "revenue_max", "moderate", grid=GRID)
    # $3.00 at $10 against $1.80 at $15: +67 %.
    assert answer.explanation.startswith("Lower PPV to $10: +6")
    assert "expected revenue per recipient" in answer.explanation
    assert answer.explanation.endswith(f"{answer.confidence:.0%} confidence")
    # The confidence is that the change is an improvement: $10 earning more than $15, which 1,000
    # fans at each price leave in no doubt. Against $12, never tried, it is a lean, not a verdict.
    assert answer.confidence > 0.95
    unsure = recommend(history, "ana", "revenue_max", "moderate", grid=GRID, current_price=12)
    assert unsure.explanation.startswith("Lower PPV to $10") and 0.5 < unsure.confidence < answer.confidence
    kept = recommend(history, "ana", "revenue_max", "moderate", grid=GRID, current_price=10)
    assert kept.explanation.startswith("Keep PPV at $10: $3.0")


def test_pooling_pulls_a_sparse_creator_toward_the_agency():
    agency = [(name, price, 500, int(500 * rate)) for name in ("bo", "cy", "di") for price, rate in
              [(5, 0.30), (10, 0.20), (15, 0.10), (20, 0.05)]]  # fmt: skip
    sparse = ("new", 10, 20, 10)  # 50 % of 20 fans: probably luck
    posterior = band_posterior(history_of(*agency, sparse), "new", grid=GRID)
    at_10 = posterior.mean[band(posterior, 10)]
    # Pulled below the creator's own 50 %, toward the agency's 20 %. The agency's rate at one price
    # counts as at most PRIOR_STRENGTH_MAX = 30 fans, so 20 fans at 50 % still lift the estimate.
    assert 0.20 < at_10 < 0.45

    alone = band_posterior(history_of(sparse, ("new", 20, 20, 1)), "new", grid=GRID)
    assert alone.mean[band(alone, 10)] > at_10 + 0.05  # without colleagues, the creator's own 50 % stands
    assert alone.mean[band(alone, 10)] > 0.45


def test_colleagues_are_moved_onto_one_price_scale_before_their_curve_is_pooled():
    # Three colleagues sell to 20 % of fans up to their own edge ($12.80, $16, $20) and to 2 %
    # beyond it. Pooled as they are, the drop is smeared over $12-$23; aligned, it is one step.
    prices = np.asarray(DEFAULT_PRICE_GRID, dtype=float)
    asked = np.array([10.0, 14.0, 18.0, 23.0])
    n_cb = np.zeros((3, len(prices)))
    y_cb = np.zeros((3, len(prices)))
    for colleague, scale in enumerate((0.8, 1.0, 1.25)):
        n_cb[colleague, band_index(asked, prices)] = 1000
        y_cb[colleague, band_index(asked, prices)] = 1000 * np.where(asked <= 16 * scale, 0.20, 0.02)
    tried = n_cb.sum(axis=0) > 0
    rates = y_cb.sum(axis=0) / np.maximum(n_cb.sum(axis=0), 1)
    pooled = _falling(_fill_untried(prices, rates, tried), np.where(tried, n_cb.sum(axis=0), 5.0))
    aligned = _aligned_agency_curve(prices, pooled, n_cb, y_cb)

    assert np.all(np.diff(aligned) <= 1e-12)
    steepest = np.max(-np.diff(np.log(aligned)))
    assert steepest > 1.5 * np.max(-np.diff(np.log(pooled)))  # a sharper edge than the pooled curve's
    at = dict(zip(prices, aligned, strict=True))
    assert at[14] > 0.9 * at[3]  # flat up to the middle colleague's $16 edge ...
    assert at[20] < 0.2 * at[14]  # ... and a tenth of the buyers beyond it


def test_more_offers_at_a_price_narrow_its_interval():
    few = band_posterior(history_of(("ana", 10, 100, 20), ("ana", 15, 100, 10)), "ana", grid=GRID)
    many = band_posterior(history_of(("ana", 10, 2000, 400), ("ana", 15, 100, 10)), "ana", grid=GRID)
    i = band(few, 10)
    width_few = few.quantile(0.9)[i] - few.quantile(0.1)[i]
    width_many = many.quantile(0.9)[i] - many.quantile(0.1)[i]
    assert width_many < width_few / 3  # twenty times the fans: about a fifth of the width


def test_the_estimated_curve_never_rises_with_price():
    noisy = [("ana", 5, 200, 40), ("ana", 10, 200, 50), ("ana", 15, 200, 20), ("ana", 20, 200, 25)]
    posterior = band_posterior(history_of(*noisy), "ana", grid=GRID)
    assert np.all(np.diff(posterior.mean) <= 1e-12)


# Well-known cheap prices and a barely tried high one: how much risk to take decides the price.
RISKY = [("ana", 5, 3000, 1200), ("ana", 10, 3000, 690), ("ana", 15, 60, 10)] + [("ana", 10, 200, 46)] * 6


def test_a_more_cautious_risk_tolerance_never_asks_a_higher_price():
    history = history_of(*RISKY)
    prices = {risk: recommend(history, "ana", "revenue_max", risk, grid=GRID).price for risk in
              ("conservative", "moderate", "aggressive")}  # fmt: skip
    assert prices["conservative"] <= prices["moderate"] <= prices["aggressive"]
    assert prices["conservative"] < prices["aggressive"]
    conservative = recommend(history, "ana", "revenue_max", "conservative", grid=GRID)
    assert conservative.bound == "10% quantile"
    assert conservative.planned_unlock_rate < conservative.expected_unlock_rate


def test_conversion_strategies_trade_revenue_for_unlocks_in_order():
    history = history_of(*CLEAR)
    answers = {strategy: recommend(history, "ana", strategy, "moderate", grid=(5, 7, 10, 15, 20)) for strategy in
               ("revenue_max", "balanced", "conversion_max")}  # fmt: skip
    rates = [answers[s].expected_unlock_rate for s in ("revenue_max", "balanced", "conversion_max")]
    revenues = [answers[s].expected_revenue_per_recipient for s in ("revenue_max", "balanced", "conversion_max")]
    assert rates == sorted(rates)
    assert revenues == sorted(revenues, reverse=True)
    assert answers["conversion_max"].price < answers["revenue_max"].price
    assert revenues[2] >= 0.8 * revenues[0] - 1e-9  # conversion_max keeps 80 % of the best revenue


def test_too_little_data_answers_how_many_more_offers_instead_of_a_price():
    history = history_of(("ana", 10, 200, 40), ("ana", 15, 200, 20), *[("bo", 10, 200, 30)] * 5)
    answer = recommend(history, "ana", "revenue_max", "moderate")
    # ana has 2 of 8 offers, the agency 7 of 20: six more of ana's would do.
    assert answer == NotEnoughData(6, "Not enough data yet: need 6 more offers")

    first = recommend(None, "ana", "revenue_max", "moderate")
    assert first == NotEnoughData(8, "Not enough data yet: need 8 more offers")

    one_price = recommend(history_of(*[("ana", 10, 200, 40)] * 8), "ana", "balanced", "moderate")
    assert one_price == NotEnoughData(1, "Not enough data yet: need 1 more offer at a price other than $10")


def test_colleagues_offers_are_enough_for_a_creator_with_none_yet():
    answer = recommend(history_of(*[("bo", *offer[1:]) for offer in CLEAR] * 2), "ana", grid=GRID)
    assert isinstance(answer, Recommendation)
    assert answer.price == 10
    assert answer.explanation.startswith("Start PPV at $10")


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("price", [10, math.nan, 12], "offer 1: price nan is not a price"),
        ("price", [10, 12, 0], "offer 2: price 0.0 is not a price"),
        ("price", [-5, 12, 3], "offer 0: price -5.0 is not a price"),
        (
            "price",
            [10, 250, 3],
            "offer 1: price 250.0 is not a price; prices must be finite, above $0 and at most $200",
        ),
        ("price", [10, "ten", 3], "offer 1: price 'ten' is not a number"),
        ("recipients", [200, 2.5, 200], "offer 1: recipients 2.5 must be a whole number of fans"),
        ("recipients", [200, 200, -1], "offer 2: recipients -1.0 must be a whole number of fans"),
        ("unlocks", [20, 300, 20], "offer 1: unlocks (300) exceed recipients (200)"),
    ],
)
def test_bad_offers_are_rejected_naming_the_offer_and_field(column, values, message):
    columns = {"price": [10, 12, 14], "recipients": [200, 200, 200], "unlocks": [20, 20, 20], "creator": [1, 1, 1]}
    columns[column] = values
    with pytest.raises(PricingInputError) as error:
        offer_history(**columns)
    assert str(error.value).startswith(message)
    assert error.value.field == column


def test_empty_and_ragged_histories_and_unknown_choices_are_rejected():
    with pytest.raises(PricingInputError, match="offer history is empty"):
        offer_history(price=[], recipients=[], unlocks=[], creator=[])
    with pytest.raises(PricingInputError, match="differ in length"):
        offer_history(price=[10, 12], recipients=[200], unlocks=[20], creator=[1])
    with pytest.raises(PricingInputError, match="unknown strategy 'cheapest': choose one of revenue_max"):
        recommend(history_of(*CLEAR), "ana", "cheapest", "moderate", grid=GRID)
    with pytest.raises(PricingInputError, match="unknown risk 'yolo'"):
        recommend(history_of(*CLEAR), "ana", "revenue_max", "yolo", grid=GRID)


def test_thompson_sampling_tries_every_price_when_nothing_is_known():
    rng = np.random.default_rng(5)
    picks = [thompson_choose(None, "ana", rng, grid=(5, 10, 15)).price for _ in range(2000)]
    counts = {price: picks.count(price) for price in (5, 10, 15)}
    assert all(count > 0 for count in counts.values())
    # Flat beliefs favour the dearest price (same odds of a sale, more money), the cheapest rarely.
    assert counts[15] > counts[10] > counts[5]


def test_thompson_sampling_settles_on_the_best_price_once_the_data_is_strong():
    strong = history_of(*[(name, price, 2000, unlocks) for name, price, _, unlocks in CLEAR])
    rng = np.random.default_rng(5)
    picks = [thompson_choose(strong, "ana", rng, grid=GRID).price for _ in range(500)]
    assert picks.count(10) / len(picks) > 0.95


def test_the_simulated_market_has_the_oracle_at_the_revenue_maximising_price():
    prices = simulate.ORACLE_PRICES
    revenue = prices * simulate.exponential(prices, 1.0, 1.0)
    assert prices[revenue.argmax()] == pytest.approx(11.0)  # p * exp(-p / 11) peaks at p = 11
    linear = prices * simulate.linear(prices, 1.0, 1.0)
    assert prices[linear.argmax()] == pytest.approx(18.0)


def test_the_held_out_shapes_have_their_oracle_where_their_shape_says():
    prices = simulate.ORACLE_PRICES
    best = {
        name: prices[(prices * curve(prices, 1.0, 1.0)).argmax()] for name, curve in simulate.HELDOUT_CURVES.items()
    }
    assert best["log_logistic"] == pytest.approx(12 * 2 ** (-1 / 3), abs=0.01)  # (p / 12)^3 = 1/2
    assert best["kinked_linear"] == pytest.approx(15.0)  # half of the $30 where buyers run out
    assert best["plateau_power"] == pytest.approx(12.0)  # the edge: elasticity 2.5 beyond it
    assert 18 < best["two_step"] < 22  # just under the dearer tier's soft edge, not at the cheaper $9
    assert not set(simulate.HELDOUT_CURVES) & set(simulate.CURVES)


def test_the_policy_carries_over_to_shapes_it_was_not_tuned_on():
    """HELDOUT_CURVES were added after every constant of the engine had been chosen on CURVES.
    Measured here, seed 7, 10 runs: 0.932 overall, log_logistic 0.943, two_step 0.929, kinked_linear
    0.969, plateau_power 0.889 (docs/optimization-pricing.md, "Held-out shapes"); these
    floors sit below the measured figures so that a regression shows, and are not the 95 % target."""
    evaluation = simulate.evaluate_pricing(simulate.TEST_SEED, runs=10, curves=simulate.HELDOUT_CURVES)
    ratios = {shape.curve: shape.oracle_ratio for shape in evaluation.shapes}
    assert set(ratios) == set(simulate.HELDOUT_CURVES)
    assert all(0 < ratio <= 1 for ratio in ratios.values())
    assert min(ratios["log_logistic"], ratios["kinked_linear"]) >= 0.93  # smooth: close to the oracle
    assert evaluation.oracle_ratio >= 0.90


def test_the_pricing_policy_earns_most_of_the_oracle_revenue_on_the_simulator():
    """Seed 7 (TEST_SEED), never used for tuning (TUNING_SEED is 2024); docs/optimization-pricing.md
    has the full figures over 40 runs per shape, and on more held-out seeds (99, 31337). The
    target measure is revenue over all 20 offers against the oracle's; smooth curves reach about
    96 %, steps and cliffs, where the best price sits on an edge, do not, and the 95 % target is
    not reached overall (about 0.93-0.94). Measured here, 20 runs: 0.930 overall, smooth shapes
    0.936-0.969, final price 0.954."""
    evaluation = simulate.evaluate_pricing(simulate.TEST_SEED, runs=20)
    ratios = {shape.curve: shape.oracle_ratio for shape in evaluation.shapes}
    assert set(ratios) == set(simulate.CURVES)
    # Prices between grid prices are allowed, so the policy may beat the best grid price, never the oracle.
    assert all(shape.oracle_ratio <= 1 and shape.grid_ratio <= 1 for shape in evaluation.shapes)
    assert min(ratios["logistic"], ratios["exponential"], ratios["linear"]) >= 0.93
    assert evaluation.oracle_ratio >= 0.925
    assert evaluation.regret > 0
    # The price recommended after the 20 offers, asked every time, earns more than the 20 offers
    # did (those paid for the exploring), but still no more than the oracle.
    finals = [shape.final_ratio for shape in evaluation.shapes]
    assert all(final <= 1 for final in finals)
    assert np.mean(finals) >= 0.94
    assert np.mean(finals) > evaluation.oracle_ratio
