"""The optimization demo hook: a year of daily results, hourly sends, PPV offers across the
agency, recent incidents the detector flags, and recommendations from one nightly run, quickly."""

from __future__ import annotations

import random
import time

from apps.core.registry import DemoContext
from apps.optimization import demo
from apps.optimization.models import Anomaly, DailyPerformance, HourlyPerformance, Offer, Recommendation


def _seed(world) -> float:
    ctx = DemoContext(options={"creators": 2}, log=lambda message: None, rng=random.Random(7), agency=world.agency,
                      creators=[world.creator, world.other_creator])  # fmt: skip
    started = time.perf_counter()
    demo.seed(ctx)
    return time.perf_counter() - started


def test_demo_seed_fills_every_table_and_runs_the_nightly_job(world):
    seconds = _seed(world)
    for creator in (world.creator, world.other_creator):
        days = DailyPerformance.objects.filter(creator=creator)
        assert days.count() == demo.DAYS
        assert HourlyPerformance.objects.filter(creator=creator, messages_sent__gt=0).count() > 50
        assert set(days.values_list("source", flat=True)) == {"demo"}
    offers = Offer.objects.filter(agency=world.agency)
    assert offers.count() == demo.OFFERS_MIN
    prices = set(offers.values_list("price", flat=True))
    assert len(prices) >= 6
    assert all(o.unlocks <= o.recipients and o.revenue == o.price * o.unlocks for o in offers)
    # The cheap offers sell more often than the dear ones: a falling demand curve.
    cheap = [o.unlock_rate for o in offers if o.price <= 10]
    dear = [o.unlock_rate for o in offers if o.price >= 20]
    assert sum(cheap) / len(cheap) > sum(dear) / len(dear)
    kinds = set(Recommendation.objects.filter(agency=world.agency, status="open").values_list("kind", flat=True))
    assert {"price", "message_time"} <= kinds
    # Each creator's incident is recent and caught.
    for creator in (world.creator, world.other_creator):
        assert Anomaly.objects.filter(creator=creator, metric="revenue_tips").exists()
    assert seconds < 15  # about 0.6 s on a developer laptop; make run must stay fast


def test_demo_without_creators_does_nothing(db):
    ctx = DemoContext(options={"creators": 0}, log=lambda message: None, rng=random.Random(1))
    demo.seed(ctx)
    assert not DailyPerformance.objects.exists()


def test_unlock_rate_falls_with_price():
    rates = [demo.unlock_rate(price) for price in (6, 10, 15, 20, 35)]
    assert rates == sorted(rates, reverse=True)
    assert 0.2 < rates[0] < 0.4 and rates[-1] < 0.05
