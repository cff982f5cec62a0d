"""Demo data for optimization: a year of daily results per demo creator, eight weeks of hourly
activity, about thirty PPV offers across the agency, then one nightly run so the pages open on
recommendations rather than empty cards.

The series carry the patterns the engines are meant to find, so a demo shows real findings:

- daily: weekends earn more (Friday to Sunday), a slow growth over the year, log-normal noise,
  and one recent incident per creator: a PPV and tips collapse (a payout outage) for even-indexed
  creators, a tips spike (a post that went viral) for odd-indexed ones, a few days ago, where the
  anomaly detector flags it;
- hourly: posts and mass messages at scattered hours, earning most in the creator's local
  evening (20:00 to 23:00) and on weekends, so the best times differ by timezone;
- offers: prices from $6 to $35 with unlocks drawn from a falling demand curve whose revenue peaks
  near $14-$18 (each creator's level and price sensitivity differ a little).

Every random draw comes from ``ctx.rng`` (through one NumPy generator); rows are bulk-inserted.
Above ``LARGE_DEMO`` creators the hourly history is shorter so a 500-creator demo stays quick.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.utils import timezone

from apps.core.registry import DemoContext
from apps.optimization.models import DailyPerformance, HourlyPerformance, Offer, Source

ORDER = 80  # after campaigns and studio: nothing reads from them, but recommendations come last
DAYS = 365
HOURLY_WEEKS = 8
HOURLY_WEEKS_LARGE = 3
LARGE_DEMO = 100
OFFERS_MIN = 30
OFFERS_PER_CREATOR_LARGE = 6
OFFER_PRICES = (6, 8, 9, 10, 12, 14, 15, 16, 18, 20, 25, 30, 35)
# Monday first: weekends earn more.
WEEKDAY_FACTOR = np.array([0.9, 0.88, 0.92, 0.97, 1.08, 1.16, 1.1])
# Share of a day's revenue by source (subscriptions, tips, PPV, paid messages).
REVENUE_MIX = np.array([0.42, 0.16, 0.3, 0.12])
CENT = Decimal("0.01")


def _money(value: float) -> Decimal:
    return Decimal(f"{max(0.0, value):.2f}")


def seed(ctx: DemoContext) -> None:
    if ctx.agency is None or not ctx.creators:
        ctx.log("optimization: no demo creators, nothing to seed")
        return
    rng = np.random.default_rng(ctx.rng.randrange(2**32))
    now = timezone.now()
    large = len(ctx.creators) > LARGE_DEMO
    daily, hourly = [], []
    for index, creator in enumerate(ctx.creators):
        daily.extend(_daily_rows(creator, index, rng, now))
        hourly.extend(_hourly_rows(creator, rng, now, HOURLY_WEEKS_LARGE if large else HOURLY_WEEKS))
    DailyPerformance.objects.bulk_create(daily, batch_size=2000)
    HourlyPerformance.objects.bulk_create(hourly, batch_size=2000)
    offers = _offers(ctx, rng, now)
    Offer.objects.bulk_create(offers, batch_size=1000)
    ctx.log(f"optimization: {len(daily)} daily rows, {len(hourly)} hourly rows, {len(offers)} PPV offers")

    from apps.optimization import services

    services.run_nightly(agency_id=ctx.agency.pk, now=now)
    ctx.log("optimization: nightly run done (recommendations and anomalies)")


def _daily_rows(creator, index: int, rng: np.random.Generator, now: datetime) -> list[DailyPerformance]:
    zone = zoneinfo.ZoneInfo(creator.timezone or "UTC")
    last = now.astimezone(zone).date() - timedelta(days=1)
    days = [last - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    weekday = np.array([day.weekday() for day in days])
    t = np.arange(DAYS) / DAYS
    scale = 180 + 90 * (index % 5) + rng.uniform(0, 60)  # dollars a day at the start of the year
    level = scale * WEEKDAY_FACTOR[weekday] * (1 + 0.35 * t)
    noise = rng.lognormal(0, 0.12, size=(4, DAYS))
    revenue = REVENUE_MIX[:, None] * level[None, :] * noise
    posts = rng.poisson(1.8 * WEEKDAY_FACTOR[weekday])
    per_post = 240 * (1 + 0.25 * t) * rng.lognormal(0, 0.15, DAYS)
    engagement = posts * per_post
    messages = rng.poisson(70 * WEEKDAY_FACTOR[weekday] * (1 + 0.3 * t))
    new_subs = rng.poisson(level / 25)
    churned = rng.poisson(level / 32)

    # One incident a few days back, where the detector sees it.
    at = DAYS - 4 - (index % 5)
    if index % 2 == 0:
        revenue[1:3, at] *= 0.12  # tips and PPV collapse: a payout outage on the platform
        revenue[1:3, at + 1] *= 0.5
    else:
        revenue[1, at] *= 5.5  # a post went viral: tips jump, and the day's engagement with them
        engagement[at] *= 3.0
    ppv_unlocks = np.rint(revenue[2] / rng.uniform(11, 16, DAYS))

    return [
        DailyPerformance(
            agency_id=creator.agency_id,
            creator=creator,
            day=day,
            revenue_subscriptions=_money(revenue[0, i]),
            revenue_tips=_money(revenue[1, i]),
            revenue_ppv=_money(revenue[2, i]),
            revenue_messages=_money(revenue[3, i]),
            new_subscribers=int(new_subs[i]),
            churned_subscribers=int(churned[i]),
            posts=int(posts[i]),
            engagement=int(engagement[i]),
            messages_received=int(messages[i]),
            ppv_unlocks=int(ppv_unlocks[i]),
            source=Source.DEMO,
        )
        for i, day in enumerate(days)
    ]


def _hour_factor(local_hours: np.ndarray, local_weekdays: np.ndarray, peak: int) -> np.ndarray:
    """Activity earns most around the creator's local ``peak`` hour and at weekends."""
    distance = np.minimum(np.abs(local_hours - peak), 24 - np.abs(local_hours - peak))
    return (0.45 + 1.1 * np.exp(-(distance**2) / 6.0)) * WEEKDAY_FACTOR[local_weekdays]


def _hourly_rows(creator, rng: np.random.Generator, now: datetime, weeks: int) -> list[HourlyPerformance]:
    zone = zoneinfo.ZoneInfo(creator.timezone or "UTC")
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = weeks * 7 * 24
    starts = [end - timedelta(hours=hours - h) for h in range(hours)]
    local = [start.astimezone(zone) for start in starts]
    local_hours = np.array([moment.hour for moment in local])
    local_weekdays = np.array([moment.weekday() for moment in local])
    awake = (local_hours >= 9) | (local_hours <= 1)
    post_hours = awake & (rng.random(hours) < 0.11)  # about two posts a day
    message_hours = awake & ~post_hours & (rng.random(hours) < 0.08)
    post_factor = _hour_factor(local_hours, local_weekdays, peak=21)
    message_factor = _hour_factor(local_hours, local_weekdays, peak=22)
    engagement = rng.poisson(260 * post_factor) * post_hours
    sent = rng.integers(80, 400, hours) * message_hours
    replies = rng.binomial(sent, np.clip(0.06 * message_factor, 0, 1))
    revenue = replies * rng.uniform(2, 9, hours) + engagement * 0.02
    return [
        HourlyPerformance(
            agency_id=creator.agency_id,
            creator=creator,
            hour=starts[h],
            revenue=_money(revenue[h]),
            engagement=int(engagement[h]),
            messages_sent=int(sent[h]),
            message_replies=int(replies[h]),
            source=Source.DEMO,
        )
        for h in np.flatnonzero(post_hours | message_hours)
    ]


def unlock_rate(price: float, *, level: float = 1.0, sensitivity: float = 1.0) -> float:
    """The demo's demand curve: about 30 % unlock at $6, 12 % at $15, 3 % at $35."""
    return min(0.95, level * 0.55 * float(np.exp(-sensitivity * price / 10.0)))


def _offers(ctx: DemoContext, rng: np.random.Generator, now: datetime) -> list[Offer]:
    creators = ctx.creators
    total = max(OFFERS_MIN, OFFERS_PER_CREATOR_LARGE * len(creators)) if len(creators) > 4 else OFFERS_MIN
    levels = {c.pk: rng.uniform(0.8, 1.25) for c in creators}
    sensitivities = {c.pk: rng.uniform(0.85, 1.15) for c in creators}
    offers = []
    for n in range(total):
        creator = creators[n % len(creators)]
        price = float(OFFER_PRICES[int(rng.integers(len(OFFER_PRICES)))])
        recipients = int(rng.integers(150, 600))
        rate = unlock_rate(price, level=levels[creator.pk], sensitivity=sensitivities[creator.pk])
        unlocks = int(rng.binomial(recipients, rate))
        sent_at = now - timedelta(days=float(rng.uniform(2, 120)), hours=float(rng.uniform(0, 24)))
        offers.append(
            Offer(
                agency_id=creator.agency_id,
                creator=creator,
                sent_at=sent_at,
                price=Decimal(price).quantize(CENT),
                recipients=recipients,
                unlocks=unlocks,
                revenue=(Decimal(price) * unlocks).quantize(CENT),
                source=Source.DEMO,
                external_id=f"demo-{n + 1}",
            )
        )
    return offers
