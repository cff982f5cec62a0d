"""Price exploration for PPV campaigns: each fan's price drawn by Thompson sampling across price
bands, so a campaign that opts in ("Explore prices") tries nearby prices in proportion to how
plausibly each earns the most per fan, and the pricing engine learns from every arm.

Reached by the campaigns app through ``settings.CAMPAIGN_PRICE_EXPLORER`` (campaigns must not
import optimization: optimization reads campaigns through campaign_offers.py). For one campaign:

1. **Bands**: the pricing engine's grid prices (``pricing.DEFAULT_PRICE_GRID``) from half to twice
   the campaign's price, plus the price itself, kept within the creator's ``ppv_price_min`` ..
   ``ppv_price_max``; at most ``MAX_ARMS`` of them, the nearest to the campaign's price (log scale).
2. **Posterior**: ``pricing.band_posterior`` over the agency's offer history for those bands: the
   creator's Beta posterior of the unlock rate per band, pooled with the agency's other creators.
3. **Draws**: for each fan, one unlock rate per band from the posterior; the band with the highest
   price x draw is the fan's price (Thompson sampling). The generator is seeded with the campaign's
   id, so a start retried after a rollback splits the audience the same way.

The arms are the prices the fans got: the campaign page lists them with their results
(``campaigns.services.campaign_price_arms``) and campaign_offers.py turns each into an Offer
when the campaign finishes. What this does not do: change prices mid-campaign (all fans are
drawn when sending starts), or explore a mass message (one price per platform message).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from apps.optimization import pricing, selectors

MAX_ARMS = 5  # bands a campaign explores at most: more arms spread a small audience too thin
SPAN = 2.0  # from price / SPAN to price * SPAN
CENT = Decimal("0.01")


def candidate_prices(price: Decimal, low: Decimal, high: Decimal) -> list[float]:
    """The bands a campaign at ``price`` explores, cheapest first (step 1 of the module docstring)."""
    base = float(price)
    lo, hi = max(float(low), base / SPAN), min(float(high), base * SPAN)
    prices = {round(base, 2)} | {float(p) for p in pricing.DEFAULT_PRICE_GRID if lo <= p <= hi}
    nearest = sorted(prices, key=lambda p: (abs(math.log(p / base)), p))[:MAX_ARMS]
    return sorted(nearest)


def draw_prices(
    history: pricing.OfferHistory | None, creator_id: int, prices: list[float], n_fans: int, seed: int
) -> tuple[np.ndarray, pricing.BandPosterior]:
    """Per fan, the index of the band Thompson sampling picks (steps 2 and 3), and the posterior."""
    posterior = pricing.band_posterior(history, creator_id, grid=prices)
    rng = np.random.default_rng(seed)
    draws = posterior.draws(rng, n_fans)
    return np.argmax(draws * posterior.prices, axis=1), posterior


def campaign_prices(*, campaign: Any, fan_ids: list[int]) -> dict[int, Decimal]:
    """``{fan_id: price}`` for a campaign exploring prices (the CAMPAIGN_PRICE_EXPLORER hook).
    A creator whose range leaves one price only gets that price for everyone."""
    if not fan_ids or campaign.ppv_price is None:
        return {}
    creator = campaign.creator
    prices = candidate_prices(campaign.ppv_price, creator.ppv_price_min, creator.ppv_price_max)
    if len(prices) < 2:
        return {}
    history = selectors.offer_history_for_agency(campaign.agency_id)
    chosen, posterior = draw_prices(history, creator.pk, prices, len(fan_ids), seed=campaign.pk)
    asked = [Decimal(str(price)).quantize(CENT) for price in posterior.prices.tolist()]
    return {fan_id: asked[band] for fan_id, band in zip(fan_ids, chosen.tolist(), strict=True)}
