"""How tags and categories perform for a creator, and what is rising across the agency.

Part of ``apps.studio.analytics``; the package docstring holds the shared definitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.studio.analytics.history import (
    MAX_ROWS,
    MIN_SUPPORT,
    TRENDS_DAYS,
    TRENDS_RECENT_DAYS,
    TRENDS_TTL_SECONDS,
    WINDOW_DAYS,
    PostRow,
    avg_money,
    lift_of,
    load_rows,
    mean_of,
    post_history,
    tag_key,
    to_money,
)
from apps.studio.models import Post

if TYPE_CHECKING:
    from apps.accounts.models import Creator


# --- Tags and categories --------------------------------------------------------------------


@dataclass(frozen=True)
class TagStat:
    """How the creator's posts with one tag did. ``lift`` = tag avg rate / overall avg rate - 1."""

    tag: str
    posts: int
    avg_engagement_rate: float
    avg_revenue: Decimal
    lift: float


@dataclass(frozen=True)
class CategoryStat:
    """How the creator's posts of one category did.

    ``ppv_unlock_rate`` = Σ unlocks / Σ views; ``tips_share`` = Σ tips / Σ revenue (capped at 1).
    """

    category: str
    posts: int
    avg_engagement_rate: float
    avg_revenue: Decimal
    total_revenue: Decimal
    avg_tips: Decimal
    ppv_unlock_rate: float
    tips_share: float
    lift: float


def tag_stats(rows: Sequence[PostRow]) -> list[TagStat]:
    """Tag statistics of already loaded rows, best lift first (then most posts, then name)."""
    overall = mean_of(r.engagement_rate for r in rows)
    groups: dict[str, list[PostRow]] = defaultdict(list)
    for row in rows:
        for tag in row.tags:
            groups[tag].append(row)
    stats = []
    for tag, items in groups.items():
        rate = mean_of(r.engagement_rate for r in items)
        stats.append(TagStat(tag, len(items), rate, avg_money([r.revenue for r in items]), lift_of(rate, overall)))
    return sorted(stats, key=lambda s: (-s.lift, -s.posts, s.tag))


def category_stats(rows: Sequence[PostRow]) -> dict[str, CategoryStat]:
    overall = mean_of(r.engagement_rate for r in rows)
    groups: dict[str, list[PostRow]] = defaultdict(list)
    for row in rows:
        groups[row.category].append(row)
    stats = {}
    for category, items in groups.items():
        rate = mean_of(r.engagement_rate for r in items)
        revenue = sum((r.revenue for r in items), Decimal(0))
        tips = sum((r.tips for r in items), Decimal(0))
        views = sum(r.views for r in items)
        stats[category] = CategoryStat(
            category=category,
            posts=len(items),
            avg_engagement_rate=rate,
            avg_revenue=avg_money([r.revenue for r in items]),
            total_revenue=to_money(revenue),
            avg_tips=avg_money([r.tips for r in items]),
            ppv_unlock_rate=sum(r.ppv_unlocks for r in items) / max(views, 1),
            tips_share=min(1.0, float(tips / revenue)) if revenue > 0 else 0.0,
            lift=lift_of(rate, overall),
        )
    return stats


def tag_performance(*, creator: Creator, days: int = 90) -> list[TagStat]:
    """Each tag the creator used in the last ``days`` days: posts, avg engagement rate
    ((likes + comments) / max(views, 1), per post), avg revenue per post, and lift = tag avg rate /
    the creator's overall avg rate - 1. Best lift first. One query."""
    return tag_stats(post_history(creator=creator, days=days))


def category_performance(*, creator: Creator, days: int = 90) -> dict[str, CategoryStat]:
    """Per category of the last ``days`` days: see CategoryStat. One query."""
    return category_stats(post_history(creator=creator, days=days))


# --- Rising trends --------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendStat:
    """Average engagement rate per post in the last 7 days (recent) against the days before (base).

    ``growth_pct`` = (recent_rate / base_rate - 1) x 100 (capped at 1000 when the base is 0).
    """

    recent_posts: int
    base_posts: int
    recent_rate: float
    base_rate: float
    growth_pct: float


@dataclass(frozen=True)
class TagTrend(TrendStat):
    tag: str = ""


@dataclass(frozen=True)
class CategoryTrend(TrendStat):
    category: str = ""


@dataclass
class Trends:
    """Rising tags and categories (growth > 0), best first; ``cooling`` holds the rest that had
    enough posts (MIN_SUPPORT in both periods) to be compared."""

    tags: list[TagTrend]
    categories: list[CategoryTrend]
    cooling_tags: list[TagTrend]
    cooling_categories: list[CategoryTrend]
    computed_at: datetime
    days: int
    posts: int
    explanation: dict[str, Any] = field(default_factory=dict)

    def growth(self, *, tag: str | None = None, category: str | None = None) -> float | None:
        """The growth % of one tag or category, or None when it had too few posts to compare."""
        if tag is not None:
            key = tag_key(tag)
            return next((t.growth_pct for t in [*self.tags, *self.cooling_tags] if t.tag == key), None)
        return next((c.growth_pct for c in [*self.categories, *self.cooling_categories] if c.category == category),
                    None)  # fmt: skip


def trends_from_rows(rows: Sequence[PostRow], *, now: datetime, days: int = TRENDS_DAYS) -> Trends:
    recent_start = now - timedelta(days=TRENDS_RECENT_DAYS)
    sums: dict[tuple[str, str], list[list[float]]] = defaultdict(lambda: [[], []])
    for row in rows:
        period = 0 if row.posted_at >= recent_start else 1
        rate = row.engagement_rate
        sums[("category", row.category)][period].append(rate)
        for tag in row.tags:
            sums[("tag", tag)][period].append(rate)
    tags: list[TagTrend] = []
    categories: list[CategoryTrend] = []
    for (kind, key), (recent, base) in sums.items():
        if len(recent) < MIN_SUPPORT or len(base) < MIN_SUPPORT:
            continue
        recent_rate, base_rate = mean_of(recent), mean_of(base)
        if base_rate > 0:
            growth = min(1000.0, (recent_rate / base_rate - 1) * 100)
        else:
            growth = 1000.0 if recent_rate > 0 else 0.0
        numbers = {"recent_posts": len(recent), "base_posts": len(base), "recent_rate": recent_rate,
                   "base_rate": base_rate, "growth_pct": round(growth, 1)}  # fmt: skip
        if kind == "tag":
            tags.append(TagTrend(tag=key, **numbers))
        else:
            categories.append(CategoryTrend(category=key, **numbers))
    tags.sort(key=lambda t: (-t.growth_pct, -t.recent_posts, t.tag))
    categories.sort(key=lambda c: (-c.growth_pct, -c.recent_posts, c.category))
    return Trends(
        tags=[t for t in tags if t.growth_pct > 0],
        categories=[c for c in categories if c.growth_pct > 0],
        cooling_tags=[t for t in tags if t.growth_pct <= 0],
        cooling_categories=[c for c in categories if c.growth_pct <= 0],
        computed_at=now,
        days=days,
        posts=len(rows),
        explanation={
            "formula": "growth % = (avg engagement rate per post, last 7 days / same, the "
            f"{days - TRENDS_RECENT_DAYS} days before - 1) x 100",
            "min_posts": f"{MIN_SUPPORT} posts in each period",
            "posts": len(rows),
        },
    )


def trends_cache_key(agency_id: int, creator_id: int | None = None) -> str:
    return f"studio:trends:{agency_id}:{creator_id or 'all'}"


def rising_trends(*, agency_id: int, creator: Creator | None = None, days: int = TRENDS_DAYS) -> Trends:
    """Tags and categories whose engagement rate per post rose in the last 7 days against the
    ``days - 7`` days before, from the agency's posts (or one creator's). Each needs MIN_SUPPORT
    posts in both periods. Cached for an hour under ``trends_cache_key`` (the default window only);
    ``invalidate_trends`` drops the agency's entries. Two queries when not cached: each period loads
    its newest MAX_ROWS / 2 posts, so a busy recent week cannot crowd out the base period."""
    if creator is not None and creator.agency_id != agency_id:
        raise PermissionDenied("This creator belongs to another agency.")
    if not TRENDS_RECENT_DAYS < days <= WINDOW_DAYS:
        raise ApplicationError(f"Trends compare {TRENDS_RECENT_DAYS + 1} to {WINDOW_DAYS} days.", field="days")
    key = trends_cache_key(agency_id, creator.pk if creator else None)
    cacheable = days == TRENDS_DAYS
    if cacheable and (cached := cache.get(key)) is not None:
        return cached
    now = timezone.now()
    posts = Post.objects.for_agency(agency_id)
    if creator is not None:
        posts = posts.filter(creator=creator)
    recent_start = now - timedelta(days=TRENDS_RECENT_DAYS)
    half = MAX_ROWS // 2
    rows = load_rows(posts.filter(posted_at__gte=recent_start, posted_at__lte=now), half)
    rows += load_rows(posts.filter(posted_at__gte=now - timedelta(days=days), posted_at__lt=recent_start), half)
    trends = trends_from_rows(rows, now=now, days=days)
    if cacheable:
        cache.set(key, trends, TRENDS_TTL_SECONDS)
    return trends


def invalidate_trends(agency_id: int) -> None:
    """Forget the cached trends of an agency and of each of its creators (one query)."""
    from apps.accounts.models import Creator

    creator_ids = Creator.objects.for_agency(agency_id).values_list("pk", flat=True)
    cache.delete_many([trends_cache_key(agency_id), *(trends_cache_key(agency_id, pk) for pk in creator_ids)])
