"""Optimization test data: performance series, offers, posts and hourly sends with known patterns."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.utils import timezone

from apps.accounts.models import Creator
from apps.optimization.models import DailyPerformance, HourlyPerformance, Offer
from apps.studio.models import Post


def yesterday(creator: Creator, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(ZoneInfo(creator.timezone)).date() - timedelta(days=1)


def add_daily(
    creator: Creator,
    *,
    days: int = 120,
    end: date | None = None,
    spike_days_ago: int | None = None,
    spike: float = 8.0,
    seed: int = 1,
    constant: bool = False,
) -> list[DailyPerformance]:
    """``days`` days of results up to ``end`` (the creator's yesterday): weekends earn more, mild
    noise; revenue_tips is multiplied by ``spike`` ``spike_days_ago`` days before ``end``."""
    rng = np.random.default_rng(seed)
    end = end or yesterday(creator)
    rows = []
    for offset in range(days):
        day = end - timedelta(days=days - 1 - offset)
        weekend = 1.3 if day.weekday() >= 4 else 1.0
        noise = 1.0 if constant else float(rng.normal(1.0, 0.04))
        tips = 40 * weekend * noise
        if spike_days_ago is not None and (end - day).days == spike_days_ago:
            tips *= spike
        rows.append(
            DailyPerformance(
                agency_id=creator.agency_id,
                creator=creator,
                day=day,
                revenue_subscriptions=Decimal(f"{100 * weekend * noise:.2f}"),
                revenue_tips=Decimal(f"{tips:.2f}"),
                revenue_ppv=Decimal(f"{60 * weekend * noise:.2f}"),
                revenue_messages=Decimal(f"{20 * noise:.2f}"),
                new_subscribers=int(10 * weekend * noise),
                churned_subscribers=int(4 * noise),
                posts=2,
                engagement=int(300 * weekend * noise),
                messages_received=int(50 * noise),
                ppv_unlocks=int(6 * noise),
            )
        )
    return DailyPerformance.objects.bulk_create(rows)


def unlock_rate(price: float) -> float:
    """A falling demand curve whose revenue per recipient peaks at $15."""
    return 0.6 * np.exp(-price / 15.0)


def add_offers(
    creator: Creator, *, prices=(8, 12, 15, 20, 25), rounds: int = 3, recipients: int = 200,
    start: datetime | None = None, seed: int = 2,
) -> list[Offer]:  # fmt: skip
    rng = np.random.default_rng(seed)
    start = start or timezone.now() - timedelta(days=60)
    rows = []
    for index in range(rounds * len(prices)):
        price = prices[index % len(prices)]
        unlocks = int(rng.binomial(recipients, unlock_rate(price)))
        rows.append(
            Offer(
                agency_id=creator.agency_id, creator=creator, sent_at=start + timedelta(hours=12 * index),
                price=Decimal(price), recipients=recipients, unlocks=unlocks, revenue=Decimal(price * unlocks),
            )
        )  # fmt: skip
    return Offer.objects.bulk_create(rows)


def add_posts(
    creator: Creator, *, best_hour: int = 21, days: int = 60, hours=(9, 13, 17, 21), end: datetime | None = None
) -> list[Post]:
    """Posts at ``hours`` local time every day; those at ``best_hour`` earn four times as much."""
    zone = ZoneInfo(creator.timezone)
    end = end or timezone.now()
    rows = []
    for offset in range(days, 0, -1):
        day = end.astimezone(zone).date() - timedelta(days=offset)
        for hour in hours:
            local = datetime(day.year, day.month, day.day, hour, 15, tzinfo=zone)
            likes = 400 if hour == best_hour else 100
            rows.append(
                Post(
                    agency_id=creator.agency_id, creator=creator, platform="onlyfans", category="photo",
                    posted_at=local.astimezone(UTC), likes=likes + offset % 7, comments=10,
                )
            )  # fmt: skip
    return Post.objects.bulk_create(rows)


def add_hourly(
    creator: Creator, *, best_hour: int = 20, days: int = 40, hours=(10, 14, 20), end: datetime | None = None
) -> list[HourlyPerformance]:
    """Mass-message hours at ``hours`` local time; ``best_hour`` draws three times the replies."""
    zone = ZoneInfo(creator.timezone)
    end = end or timezone.now()
    rows = []
    for offset in range(days, 0, -1):
        day = end.astimezone(zone).date() - timedelta(days=offset)
        for hour in hours:
            local = datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)
            sent = 100
            replies = 30 + offset % 5 if hour == best_hour else 10 + offset % 3
            rows.append(
                HourlyPerformance(
                    agency_id=creator.agency_id, creator=creator, hour=local.replace(minute=0),
                    messages_sent=sent, message_replies=replies,
                )
            )  # fmt: skip
    return HourlyPerformance.objects.bulk_create(rows)
