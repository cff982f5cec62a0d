"""PPV pricing engine: how likely a fan is to unlock at each price, and which price to ask.

Plain functions over NumPy arrays; no models, no database. Later slices (offer history, pages,
the API, the nightly job) read offers from the database and call these. docs/optimization-pricing.md
gives the formulas with examples; in order, the pipeline is:

1. **History** (``offer_history``): one row per offer (price, recipients, unlocks, creator id),
   validated; a bad value raises ``PricingInputError`` naming the offer index and the field.
2. **Bands** (``band_index``): each offer counts at the grid price nearest on a log scale
   (``DEFAULT_PRICE_GRID``, $3 to $50, configurable). Offers priced more than half a step beyond
   either end of the grid are not used.
3. **Agency prior** (``band_posterior``): for each band, the pooled unlock rate of the agency's
   *other* creators, and a prior strength kappa (in recipients) estimated from how much creators
   differ, by the method of moments of the beta-binomial model, bounded to
   [PRIOR_STRENGTH_MIN, PRIOR_STRENGTH_MAX]. Bands no other creator has tried take a rate
   interpolated on log price (above the highest tried price: revenue per fan held flat), at a
   weak INTERPOLATED_STRENGTH. The agency curve is made non-increasing in price (isotonic
   regression) and sharpened by moving each colleague onto a common price scale before pooling
   again (``_aligned_agency_curve``: creators differ mostly in where their fans sit on the price
   axis, and pooling them as they are smears a step or a cliff), then moved to this creator:
   rate = level * agency(price / scale), scale and level averaged over a log-normal prior
   weighted by the creator's own offers. This two-parameter fit is how information is shared
   across prices; the per-band agency rate counts for at most PRIOR_STRENGTH_MAX = 30 fans.
4. **Creator posterior**: Beta(kappa_b * m_b + unlocks, kappa_b * (1 - m_b) + recipients - unlocks)
   per band: the creator's own rate shrunk toward the agency's, less so the more the creator sold;
   its means are again made non-increasing in price (weighted by each band's strength).
5. **Decision** (``recommend``): the credible bound of the risk tolerance (10 % quantile, mean or
   75 % quantile of the unlock rate) times the price, maximised or constrained by the strategy,
   among bands at most one step from a price someone in the agency has tried. The bands are the
   grid plus every price the creator has asked (to the cent), and, around the chosen price, the
   whole-dollar prices halfway (log scale) to its neighbours, so a price may fall between grid
   prices and is refined one halving of the gap at a time; confidence is the
   posterior probability that the chosen band is within 5 % of the best band for the strategy
   (Monte Carlo over posterior draws with a fixed seed, so answers repeat). Too little data gives
   ``NotEnoughData`` with the number of offers still needed, never a price.
6. **Exploration** (``thompson_choose``): one draw per band from the posterior, highest
   price * draw wins; for campaigns that opt into exploring prices.

What this deliberately does not do: model fans individually or by segment (a segment's offers are
passed as their own history), fit a parametric demand curve, propose untried prices finer than
whole dollars, or read or store anything.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats
from scipy.optimize import isotonic_regression

from apps.core.errors import ApplicationError

DEFAULT_PRICE_GRID: tuple[float, ...] = (3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 30, 35, 40, 45, 50)
MAX_PRICE = 200.0  # above this a "price" is a typo in cents or a bundle, not a PPV

MIN_CREATOR_OFFERS = 8  # a creator's own offers that are enough on their own
MIN_AGENCY_OFFERS = 20  # offers across the agency (this creator included) that are enough
MIN_BANDS_TRIED = 2  # prices cannot be compared from a single band

PRIOR_STRENGTH_MIN = 2.0  # creators differ wildly: the agency barely informs a creator
# The agency's rate at one price counts as at most 30 fans: creators' rates at a price differ mostly
# because their price scales do, and the scale fit (_fit_to_creator) carries what the agency knows
# across prices. 1,000 measured 0.5 points lower on the tuning seeds, 100 0.3 points lower.
PRIOR_STRENGTH_MAX = 30.0
PRIOR_STRENGTH_DEFAULT = 50.0  # too few creators per band to estimate how much they differ
INTERPOLATED_STRENGTH = 5.0  # a band nobody tried: a rate borrowed from its neighbours, held loosely
CREATOR_SCALE_SD = 0.3  # log-sd of creators' price scale around the agency's (30 %: $10 vs $13)
CREATOR_LEVEL_SD = 0.3  # log-sd of creators' unlock level around the agency's
SHIFT_CANDIDATES = 41  # candidate price scales over +-2.5 log-sd (21: 0.2 points lower on the tuning seeds)
ALIGN_ITERATIONS = 2  # rounds of moving colleagues onto a common price scale before pooling (0: off)
FLAT_RATE = 0.5  # nothing known anywhere: Beta(1, 1), a flat prior

CURVE_LOWER_Q = 0.10  # the chart's band: an 80 % credible interval
CURVE_UPPER_Q = 0.90
NEAR_BEST = 0.95  # "best" in the confidence figure means within 5 % of the best band
CONFIDENCE_DRAWS = 1000  # confidence to about +-1.5 points; a draw costs the policy loop most of its time
CONFIDENCE_SEED = 20_240_613  # fixed so the same history always gives the same confidence


class PricingInputError(ApplicationError, ValueError):
    """Offer history the engine cannot use; the message names the offer index and field."""


class Strategy(StrEnum):
    REVENUE_MAX = "revenue_max"  # highest price * unlock rate
    CONVERSION_MAX = "conversion_max"  # most unlocks while keeping 80 % of the best revenue
    BALANCED = "balanced"  # most unlocks while keeping 95 % of the best revenue


class Risk(StrEnum):
    CONSERVATIVE = "conservative"  # plan on the 10 % quantile of the unlock rate
    MODERATE = "moderate"  # plan on the posterior mean
    AGGRESSIVE = "aggressive"  # plan on the 75 % quantile


REVENUE_FLOOR = {Strategy.REVENUE_MAX: 1.0, Strategy.BALANCED: 0.95, Strategy.CONVERSION_MAX: 0.80}
RISK_QUANTILE: dict[Risk, float | None] = {Risk.CONSERVATIVE: 0.10, Risk.MODERATE: None, Risk.AGGRESSIVE: 0.75}


@dataclass(frozen=True)
class OfferHistory:
    """Offers as parallel arrays, validated by ``offer_history``; build it through that function."""

    price: np.ndarray  # float, dollars
    recipients: np.ndarray  # int
    unlocks: np.ndarray  # int
    creator: np.ndarray  # creator id per offer (any hashable: int, str, UUID)

    def __len__(self) -> int:
        return len(self.price)


@dataclass(frozen=True)
class BandPosterior:
    """A creator's Beta posterior of the unlock rate in each price band."""

    prices: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    own_offers: np.ndarray  # the creator's offers counted in each band
    prior_rate: np.ndarray  # m_b: the agency's rate (or the interpolated one)
    prior_strength: np.ndarray  # kappa_b, in recipients
    kappa: float  # the agency-wide between-creator strength before the per-band correction

    @property
    def mean(self) -> np.ndarray:
        return self.alpha / (self.alpha + self.beta)

    def quantile(self, q: float) -> np.ndarray:
        return stats.beta.ppf(q, self.alpha, self.beta)

    def draws(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` x bands unlock rates drawn from the posterior."""
        return rng.beta(self.alpha, self.beta, size=(size, len(self.prices)))


@dataclass(frozen=True)
class CurvePoint:
    price: float
    mean: float  # posterior mean unlock rate
    lower: float  # 10 % quantile
    upper: float  # 90 % quantile


@dataclass(frozen=True)
class Recommendation:
    price: float
    expected_unlock_rate: float  # posterior mean at that price
    expected_revenue_per_recipient: float  # price * expected_unlock_rate
    planned_unlock_rate: float  # the credible bound the decision used
    bound: str  # which bound, in words: "10% quantile", "posterior mean", "75% quantile"
    # Changing the price: P(the strategy prefers the new price to the current one). Keeping it, or
    # no current price: P(this band is within 5 % of the best band for the strategy).
    confidence: float
    strategy: Strategy
    risk: Risk
    explanation: str
    curve: tuple[CurvePoint, ...]


@dataclass(frozen=True)
class NotEnoughData:
    needed: int  # more offers before a price can be recommended
    message: str


@dataclass(frozen=True)
class ThompsonChoice:
    price: float
    band: int
    sampled_unlock_rate: float


def offer_history(
    *,
    price: Sequence[float] | np.ndarray,
    recipients: Sequence[int] | np.ndarray,
    unlocks: Sequence[int] | np.ndarray,
    creator: Sequence[Hashable] | np.ndarray,
) -> OfferHistory:
    """Validate offers given as parallel sequences; raise PricingInputError naming the first bad one."""
    columns = {"price": price, "recipients": recipients, "unlocks": unlocks, "creator": creator}
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise PricingInputError(f"offer columns differ in length: {lengths}", field="history")
    if lengths["price"] == 0:
        raise PricingInputError("offer history is empty: pass at least one offer (or None for no offers yet)")
    prices = _numbers(price, "price")
    bad = ~np.isfinite(prices) | (prices <= 0) | (prices > MAX_PRICE)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise PricingInputError(
            f"offer {index}: price {float(prices[index])!r} is not a price; "
            f"prices must be finite, above $0 and at most ${MAX_PRICE:.0f}",
            field="price",
            extra={"index": index},
        )
    recipient_counts = _counts(recipients, "recipients")
    unlock_counts = _counts(unlocks, "unlocks")
    over = unlock_counts > recipient_counts
    if over.any():
        index = int(np.flatnonzero(over)[0])
        raise PricingInputError(
            f"offer {index}: unlocks ({unlock_counts[index]}) exceed recipients ({recipient_counts[index]})",
            field="unlocks",
            extra={"index": index},
        )
    creators = np.asarray(creator)
    if creators.ndim != 1:
        creators = np.array(list(creator), dtype=object)
    return OfferHistory(prices, recipient_counts, unlock_counts, creators)


def _numbers(values, field: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        for index, value in enumerate(values):
            try:
                float(value)
            except (TypeError, ValueError):
                raise PricingInputError(
                    f"offer {index}: {field} {value!r} is not a number", field=field, extra={"index": index}
                )
        raise
    if array.ndim != 1:
        raise PricingInputError(f"{field} must be a flat sequence, one value per offer", field=field)
    return array


def _counts(values, field: str) -> np.ndarray:
    array = _numbers(values, field)
    bad = ~np.isfinite(array) | (array < 0) | (array != np.round(array))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise PricingInputError(
            f"offer {index}: {field} {float(array[index])!r} must be a whole number of fans, 0 or more",
            field=field,
            extra={"index": index},
        )
    return array.astype(np.int64)


def check_grid(grid: Sequence[float]) -> np.ndarray:
    """The grid as a float array; raise PricingInputError unless strictly increasing positive prices."""
    prices = np.asarray(grid, dtype=float)
    if prices.ndim != 1 or len(prices) < 2:
        raise PricingInputError("the price grid needs at least two prices", field="grid")
    if not (np.isfinite(prices).all() and (prices > 0).all() and (np.diff(prices) > 0).all()):
        raise PricingInputError("the price grid must be finite prices above $0 in increasing order", field="grid")
    return prices


def band_index(prices: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Band of each price: the nearest grid price on a log scale; -1 when beyond the grid's ends."""
    log_grid = np.log(grid)
    edges = (log_grid[1:] + log_grid[:-1]) / 2
    low = log_grid[0] - (log_grid[1] - log_grid[0]) / 2
    high = log_grid[-1] + (log_grid[-1] - log_grid[-2]) / 2
    log_prices = np.log(prices)
    bands = np.searchsorted(edges, log_prices)
    return np.where((log_prices < low) | (log_prices > high), -1, bands)


def band_posterior(
    history: OfferHistory | None, creator_id: Hashable, *, grid: Sequence[float] = DEFAULT_PRICE_GRID
) -> BandPosterior:
    """The creator's posterior unlock rate per band, pooled with the agency's other creators."""
    prices = check_grid(grid)
    n_bands = len(prices)
    if history is None:
        flat = np.ones(n_bands)
        zeros = np.zeros(n_bands)
        return BandPosterior(prices, flat, flat.copy(), zeros.astype(int), flat / 2, 2 * flat, PRIOR_STRENGTH_DEFAULT)
    bands = band_index(history.price, prices)
    used = bands >= 0
    own = used & (history.creator == creator_id)
    others = used & ~own

    own_recipients = np.bincount(bands[own], weights=history.recipients[own], minlength=n_bands)
    own_unlocks = np.bincount(bands[own], weights=history.unlocks[own], minlength=n_bands)
    own_offers = np.bincount(bands[own], minlength=n_bands)

    # Per other creator and band: the matrix the method of moments reads.
    _, creator_codes = np.unique(history.creator[others].astype(str), return_inverse=True)
    n_creators = int(creator_codes.max()) + 1 if others.any() else 0
    cells = creator_codes * n_bands + bands[others]
    shape = (n_creators, n_bands)
    n_cb = np.bincount(cells, weights=history.recipients[others], minlength=n_creators * n_bands).reshape(shape)
    y_cb = np.bincount(cells, weights=history.unlocks[others], minlength=n_creators * n_bands).reshape(shape)

    kappa, design_effect = _prior_strength(n_cb, y_cb)
    agency_n = n_cb.sum(axis=0)
    agency_y = y_cb.sum(axis=0)
    tried = agency_n > 0

    prior_rate = np.full(n_bands, FLAT_RATE)
    prior_strength = np.full(n_bands, 2.0)  # Beta(1, 1) where nothing at all is known
    precision = np.zeros(n_bands)
    if tried.any():
        reference_rate = agency_y / np.maximum(agency_n, 1)
        reference_tried = tried
        precision = agency_n / design_effect
    else:
        reference_rate = own_unlocks / np.maximum(own_recipients, 1)
        reference_tried = own_recipients > 0
    if reference_tried.any():
        prior_rate = _fill_untried(prices, reference_rate, reference_tried)
        prior_strength = np.full(n_bands, INTERPOLATED_STRENGTH)
    if tried.any():
        # The agency's band rate is itself an estimate: its variance adds to the creators' spread,
        # Var = m(1-m) (1/kappa + design_effect/N), which is a Beta of strength 1 / (1/kappa + d/N).
        prior_strength[tried] = np.maximum(1.0 / (1.0 / kappa + 1.0 / precision[tried]), INTERPOLATED_STRENGTH)
        prior_rate = _falling(prior_rate, np.where(tried, precision, INTERPOLATED_STRENGTH))
        prior_rate = _aligned_agency_curve(prices, prior_rate, n_cb, y_cb)
        prior_rate = _fit_to_creator(prices, prior_rate, own_recipients, own_unlocks)
    prior_rate = np.clip(prior_rate, 1e-3, 1 - 1e-3)

    alpha = prior_strength * prior_rate + own_unlocks
    beta = prior_strength * (1 - prior_rate) + own_recipients - own_unlocks
    if reference_tried.any():
        strength = alpha + beta
        mean = np.clip(_falling(alpha / strength, strength), 1e-4, 1 - 1e-4)
        alpha, beta = mean * strength, (1 - mean) * strength
    return BandPosterior(prices, alpha, beta, own_offers, prior_rate, prior_strength, kappa)


def _fill_untried(prices: np.ndarray, rates: np.ndarray, tried: np.ndarray) -> np.ndarray:
    """Rates for every band from the tried ones: interpolated on log price between tried bands,
    the cheapest tried band's rate below them, and above them a rate falling as 1/price (revenue
    per recipient flat: no reason to expect a higher untried price to earn more, nor less).

    Holding revenue flat below the tried prices too was measured and lost 1.3 points of oracle
    revenue on the tuning seed, so cheaper untried prices keep the cheapest tried rate."""
    log_prices = np.log(prices)
    filled = np.interp(log_prices, log_prices[tried], rates[tried])
    top = np.flatnonzero(tried)[-1]
    return np.where(np.arange(len(prices)) > top, rates[top] * prices[top] / prices, filled)


def _creator_curves(prices: np.ndarray, agency: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The agency's curve at every candidate (scale, level).

    Returns the curves (shift x level x band), the log-prior of each candidate (shift x level) and
    each candidate's level multiplier (shift x level)."""
    log_prices = np.log(prices)
    shifts = np.linspace(-2.5, 2.5, int(SHIFT_CANDIDATES)) * CREATOR_SCALE_SD
    levels = np.linspace(-2.5, 2.5, 11) * CREATOR_LEVEL_SD
    stretched = np.interp(log_prices[None, :] - shifts[:, None], log_prices, agency)  # shift x band
    beyond = log_prices[None, :] - shifts[:, None] > log_prices[-1]
    stretched = np.where(beyond, agency[-1] * np.exp(log_prices[-1] - log_prices[None, :] + shifts[:, None]), stretched)
    curves = np.clip(stretched[:, None, :] * np.exp(levels)[None, :, None], 1e-4, 1 - 1e-4)  # shift x level x band
    log_prior = -0.5 * ((shifts[:, None] / CREATOR_SCALE_SD) ** 2 + (levels[None, :] / CREATOR_LEVEL_SD) ** 2)
    return curves, log_prior, np.broadcast_to(np.exp(levels)[None, :], log_prior.shape)


def _aligned_agency_curve(prices: np.ndarray, agency: np.ndarray, n_cb: np.ndarray, y_cb: np.ndarray) -> np.ndarray:
    """The agency's curve with each colleague moved onto a common price scale before pooling.

    Pooling creators whose fans pay at different scales smears a step or a cliff over the whole
    range where their edges sit; fitted to one creator, such a smeared curve explains a single poor
    offer above the edge by moving the whole curve down, and the policy then settles far below the
    creator's edge. So each colleague's most likely (scale, level) is fitted to the pooled curve
    (same candidates and prior as ``_fit_to_creator``), its offers are moved to the price they
    correspond to at the colleagues' mean scale and divided by its level, and the curve is pooled
    again, ALIGN_ITERATIONS times.
    """
    if ALIGN_ITERATIONS == 0 or n_cb.shape[0] < 2:
        return agency
    log_prices = np.log(prices)
    present = n_cb > 0
    curve = agency
    for _ in range(int(ALIGN_ITERATIONS)):
        curves, log_prior, levels = _creator_curves(prices, curve)
        n_shift, n_level = log_prior.shape
        log_like = np.einsum("cb,slb->csl", y_cb, np.log(curves)) + np.einsum(
            "cb,slb->csl", n_cb - y_cb, np.log1p(-curves)
        )
        best = (log_like + log_prior).reshape(len(n_cb), -1).argmax(axis=1)
        shift = (np.linspace(-2.5, 2.5, n_shift) * CREATOR_SCALE_SD)[best // n_level]
        level = levels.ravel()[best]
        shift = shift - shift.mean()
        moved = band_index(np.exp(log_prices[None, :] - shift[:, None]), prices)  # colleague x band
        keep = present & (moved >= 0)
        n = np.bincount(moved[keep], weights=n_cb[keep], minlength=len(prices))
        y = np.bincount(moved[keep], weights=(y_cb / level[:, None])[keep], minlength=len(prices))
        tried = n > 0
        if tried.sum() < 2:
            return agency
        rates = np.clip(_fill_untried(prices, y / np.maximum(n, 1), tried), 1e-4, 1 - 1e-4)
        curve = _falling(rates, np.where(tried, n, INTERPOLATED_STRENGTH))
    return curve


def _fit_to_creator(prices: np.ndarray, agency: np.ndarray, recipients: np.ndarray, unlocks: np.ndarray) -> np.ndarray:
    """The agency's curve moved to where this creator's fans sit: rate = level * agency(price / scale).

    Creators differ mostly in what their fans will pay and in how many buy at all, so the agency's
    curve is stretched along the price axis and raised or lowered. Scale and level are averaged
    over a grid of candidates weighted by a log-normal prior (CREATOR_SCALE_SD, CREATOR_LEVEL_SD)
    times the binomial likelihood of the creator's own offers; with no offers this only blurs the
    agency's curve by the spread creators usually show.
    """
    curves, log_prior, _ = _creator_curves(prices, agency)
    log_like = (unlocks * np.log(curves) + (recipients - unlocks) * np.log1p(-curves)).sum(axis=-1)
    log_weight = log_like + log_prior
    weight = np.exp(log_weight - log_weight.max())
    return (weight[:, :, None] * curves).sum(axis=(0, 1)) / weight.sum()


def _falling(rates: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The closest non-increasing curve (weighted least squares): fewer fans unlock at a higher price."""
    return isotonic_regression(rates, weights=np.maximum(weights, 1e-9), increasing=False).x


def _prior_strength(n_cb: np.ndarray, y_cb: np.ndarray) -> tuple[float, np.ndarray]:
    """Between-creator prior strength kappa and each band's design effect, by the method of moments.

    For creators c in a band with recipients n_c and rates p_c around the pooled rate p, the
    beta-binomial model with intra-creator correlation rho = 1 / (kappa + 1) gives
        E[sum_c n_c (p_c - p)^2] = p(1-p) [(C - 1) + rho (N - sum_c n_c^2 / N - (C - 1))].
    Solving for rho with the observed sums, pooled over bands (sum of numerators / sum of
    denominators), gives kappa = 1/rho - 1, bounded. The design effect 1 + rho (sum n_c^2 / N - 1)
    is how much clustering by creator inflates the variance of the pooled band rate.
    """
    n_bands = n_cb.shape[1]
    present = n_cb > 0
    creators = present.sum(axis=0)
    total = n_cb.sum(axis=0)
    safe_total = np.maximum(total, 1)
    pooled = y_cb.sum(axis=0) / safe_total
    rates = np.where(present, y_cb / np.maximum(n_cb, 1), 0.0)
    spread = (n_cb * (rates - pooled) ** 2).sum(axis=0)
    usable = (creators >= 2) & (pooled > 0) & (pooled < 1)
    variance = pooled * (1 - pooled)
    sum_sq = (n_cb**2).sum(axis=0) / safe_total
    numerator = np.where(usable, spread / np.where(usable, variance, 1) - (creators - 1), 0.0)
    denominator = np.where(usable, total - sum_sq - (creators - 1), 0.0)
    if usable.any() and denominator.sum() > 0:
        rho = numerator.sum() / denominator.sum()
        rho = float(np.clip(rho, 1 / (PRIOR_STRENGTH_MAX + 1), 1 / (PRIOR_STRENGTH_MIN + 1)))
        kappa = 1 / rho - 1
    else:
        kappa = PRIOR_STRENGTH_DEFAULT
        rho = 1 / (kappa + 1)
    design_effect = np.maximum(1.0 + rho * (sum_sq - 1), 1.0) if n_bands else np.ones(0)
    return float(kappa), design_effect


def data_needed(
    history: OfferHistory | None, creator_id: Hashable, *, grid: Sequence[float] = DEFAULT_PRICE_GRID
) -> NotEnoughData | None:
    """``NotEnoughData`` unless the creator's or the agency's offers are enough to compare prices.

    Enough means (MIN_CREATOR_OFFERS of the creator's own offers, or MIN_AGENCY_OFFERS across the
    agency, this creator included) and offers in at least MIN_BANDS_TRIED price bands. ``needed`` is
    the fewest further offers that could satisfy the rule.
    """
    if history is None:
        return _not_enough(min(MIN_CREATOR_OFFERS, MIN_AGENCY_OFFERS))
    bands = band_index(history.price, check_grid(grid))
    used = bands >= 0
    own = int((used & (history.creator == creator_id)).sum())
    agency = int(used.sum())
    needed = min(MIN_CREATOR_OFFERS - own, MIN_AGENCY_OFFERS - agency)
    if needed > 0:
        return _not_enough(needed)
    if len(np.unique(bands[used])) < MIN_BANDS_TRIED:
        price = float(history.price[used][0])
        return NotEnoughData(1, f"Not enough data yet: need 1 more offer at a price other than ${price:g}")
    return None


def _not_enough(needed: int) -> NotEnoughData:
    return NotEnoughData(needed, f"Not enough data yet: need {needed} more offer{'s' if needed != 1 else ''}")


def choose_band(rates: np.ndarray, prices: np.ndarray, strategy: Strategy) -> np.ndarray:
    """The band a strategy picks, for each row of unlock rates (the last axis is the band).

    revenue_max: argmax price * rate. conversion_max and balanced: the highest rate among bands
    whose price * rate is at least REVENUE_FLOOR (80 % / 95 %) of the row's best revenue; ties
    go to the higher revenue.
    """
    revenue = rates * prices
    if strategy is Strategy.REVENUE_MAX:
        return revenue.argmax(axis=-1)
    feasible = revenue >= REVENUE_FLOOR[strategy] * revenue.max(axis=-1, keepdims=True)
    # Rates differ by far more than revenue / 1e6 between distinct bands; the small revenue term only breaks ties.
    score = np.where(feasible, rates + revenue * 1e-9, -np.inf)
    return score.argmax(axis=-1)


def recommend(
    history: OfferHistory | None,
    creator_id: Hashable,
    strategy: Strategy | str = Strategy.REVENUE_MAX,
    risk: Risk | str = Risk.MODERATE,
    *,
    grid: Sequence[float] = DEFAULT_PRICE_GRID,
    current_price: float | None = None,
) -> Recommendation | NotEnoughData:
    """The price to ask for the creator's next PPV under a strategy and risk tolerance.

    ``current_price`` is what the explanation compares with; by default the creator's last offer.
    """
    strategy = _parse(Strategy, strategy, "strategy")
    risk = _parse(Risk, risk, "risk")
    missing = data_needed(history, creator_id, grid=grid)
    if missing is not None:
        return missing
    grid_prices = check_grid(grid)
    quantile = RISK_QUANTILE[risk]
    # Never advise a price more than one band from any the agency has tried: further out the
    # curve is a guess, and an optimistic bound would happily ask $50 of fans who never saw $20.
    offered = band_index(history.price, grid_prices)
    tried = np.bincount(offered[offered >= 0], minlength=len(grid_prices)) > 0
    grid_eligible = tried | np.concatenate([[False], tried[:-1]]) | np.concatenate([tried[1:], [False]])

    own_prices = history.price[history.creator == creator_id]
    prices = _decision_prices(grid_prices, own_prices)
    posterior, planned, eligible, band = _decide(
        history, creator_id, prices, grid_prices, grid_eligible, strategy, quantile
    )
    between = _between_prices(posterior.prices, band)
    if between:
        prices = np.union1d(posterior.prices, between)
        posterior, planned, eligible, band = _decide(
            history, creator_id, prices, grid_prices, grid_eligible, strategy, quantile
        )
    prices = posterior.prices
    mean = posterior.mean
    # The chart and the confidence figure cover the grid and the prices the creator has asked; a
    # between-price nobody has offered is only a candidate, and its loose prior would otherwise
    # pull every confidence down.
    shown = np.isin(prices, _decision_prices(grid_prices, own_prices))
    shown[band] = True

    draws = posterior.draws(np.random.default_rng(CONFIDENCE_SEED), CONFIDENCE_DRAWS)
    if current_price is None:
        own = np.flatnonzero(history.creator == creator_id)
        current_price = float(history.price[own[-1]]) if len(own) else None
    current_band = band_index(np.array([current_price]), prices)[0] if current_price is not None else -1
    if current_band >= 0 and current_band != band:
        confidence = _preferred_probability(draws, prices, strategy, band, current_band)
    else:
        confidence = _near_best_probability(draws * (eligible & shown), prices, strategy, band)
    lower, upper = posterior.quantile(CURVE_LOWER_Q), posterior.quantile(CURVE_UPPER_Q)
    curve = tuple(
        CurvePoint(float(p), float(m), float(lo), float(hi))
        for p, m, lo, hi, keep in zip(prices, mean, lower, upper, shown, strict=True)
        if keep
    )
    return Recommendation(
        price=float(prices[band]),
        expected_unlock_rate=float(mean[band]),
        expected_revenue_per_recipient=float(prices[band] * mean[band]),
        planned_unlock_rate=float(planned[band]),
        bound="posterior mean" if quantile is None else f"{quantile:.0%} quantile",
        confidence=confidence,
        strategy=strategy,
        risk=risk,
        explanation=_explain(posterior, band, strategy, confidence, current_price),
        curve=curve,
    )


def _decision_prices(grid: np.ndarray, own_prices: np.ndarray) -> np.ndarray:
    """The grid plus every price the creator has asked inside the grid's range, to the cent, so an
    offer between two grid prices is counted at its own price rather than at the nearer grid one."""
    inside = np.round(own_prices[(own_prices >= grid[0]) & (own_prices <= grid[-1])], 2)
    return np.union1d(grid, inside)


def _between_prices(prices: np.ndarray, band: int) -> list[float]:
    """Whole-dollar prices halfway (on a log scale) between the chosen price and its neighbours.

    The best price often lies between two grid prices (a step or a cliff in demand sits anywhere);
    offering these as candidates, with a prior interpolated from their neighbours, lets the
    decision move toward it one halving of the gap at a time as the creator's offers there come in.
    """
    between = []
    for neighbour in (band - 1, band + 1):
        if 0 <= neighbour < len(prices):
            middle = float(np.round(np.sqrt(prices[band] * prices[neighbour])))
            if min(prices[band], prices[neighbour]) < middle < max(prices[band], prices[neighbour]):
                between.append(middle)
    return between


def _decide(
    history: OfferHistory,
    creator_id: Hashable,
    prices: np.ndarray,
    grid: np.ndarray,
    grid_eligible: np.ndarray,
    strategy: Strategy,
    quantile: float | None,
) -> tuple[BandPosterior, np.ndarray, np.ndarray, int]:
    """The posterior on ``prices``, the planned rate, which prices are eligible, and the chosen one.

    A price between two grid prices is eligible when both of them are."""
    posterior = band_posterior(history, creator_id, grid=prices)
    planned = posterior.mean if quantile is None else posterior.quantile(quantile)
    below = np.clip(np.searchsorted(grid, prices, side="right") - 1, 0, len(grid) - 1)
    above = np.clip(np.searchsorted(grid, prices, side="left"), 0, len(grid) - 1)
    eligible = grid_eligible[below] & grid_eligible[above]
    band = int(choose_band(np.where(eligible, planned, 0.0), prices, strategy))
    return posterior, planned, eligible, band


def _parse(kind, value, field: str):
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise PricingInputError(f"unknown {field} {value!r}: choose one of {choices}", field=field)


def _preferred_probability(
    draws: np.ndarray, prices: np.ndarray, strategy: Strategy, band: int, current_band: int
) -> float:
    """Share of posterior draws in which the strategy, choosing between the current price and the
    recommended one only, picks the recommended one: "the change is an improvement", which is
    what "Raise PPV to $14: +18% …, 80% confidence" promises."""
    pair = draws[:, [current_band, band]]
    return float(np.mean(choose_band(pair, prices[[current_band, band]], strategy) == 1))


def _near_best_probability(draws: np.ndarray, prices: np.ndarray, strategy: Strategy, band: int) -> float:
    """Share of posterior draws in which ``band`` scores within NEAR_BEST of the strategy's best band."""
    revenue = draws * prices
    if strategy is Strategy.REVENUE_MAX:
        score = revenue
    else:
        feasible = revenue >= REVENUE_FLOOR[strategy] * revenue.max(axis=1, keepdims=True)
        score = np.where(feasible, draws, -np.inf)
    best = score.max(axis=1)
    return float(np.mean(score[:, band] >= NEAR_BEST * best))


def _explain(posterior: BandPosterior, band: int, strategy: Strategy, confidence: float, current: float | None) -> str:
    price = posterior.prices[band]
    rate = posterior.mean[band]
    revenue = price * rate
    tail = f"{confidence:.0%} confidence"
    if current is None:
        return f"Start PPV at ${price:g}: ${revenue:.2f} expected revenue per recipient ({rate:.0%} unlock), {tail}"
    current_band = band_index(np.array([current]), posterior.prices)[0]
    if current_band < 0:
        return f"Set PPV to ${price:g}: ${revenue:.2f} expected revenue per recipient ({rate:.0%} unlock), {tail}"
    current_rate = posterior.mean[current_band]
    current_revenue = current * current_rate
    if current_band == band:
        return f"Keep PPV at ${price:g}: ${revenue:.2f} expected revenue per recipient ({rate:.0%} unlock), {tail}"
    verb = "Raise" if price > current else "Lower"
    revenue_change = _percent(revenue, current_revenue)
    rate_change = _percent(rate, current_rate)
    if strategy is Strategy.REVENUE_MAX:
        change = f"{revenue_change} expected revenue per recipient"
    else:
        change = f"{rate_change} expected unlocks, {revenue_change} expected revenue per recipient"
    return f"{verb} PPV to ${price:g}: {change}, {tail}"


def _percent(new: float, old: float) -> str:
    if old <= 0:
        return "+100%" if new > 0 else "+0%"
    return f"{(new / old - 1):+.0%}"


def thompson_choose(
    history: OfferHistory | None,
    creator_id: Hashable,
    rng: np.random.Generator,
    *,
    grid: Sequence[float] = DEFAULT_PRICE_GRID,
) -> ThompsonChoice:
    """Thompson sampling: draw an unlock rate per band from the posterior; the highest price * draw wins.

    Each band is chosen with the posterior probability that it earns the most per recipient, so a
    campaign explores prices in proportion to how plausibly they are best. Works with no history
    (``None``): every band then has a flat Beta(1, 1) posterior.
    """
    posterior = band_posterior(history, creator_id, grid=grid)
    sampled = posterior.draws(rng, 1)[0]
    band = int(np.argmax(sampled * posterior.prices))
    return ThompsonChoice(float(posterior.prices[band]), band, float(sampled[band]))
