"""Performance analytics for the content studio, computed from the creator's own posts.

Every number here comes from Post rows: the creator's own (tags, categories, captions, timing,
idea scores) or the agency's (rising trends). Nothing is guessed by a model. Each function runs a
constant number of queries: it loads one bounded window (the last ``WINDOW_DAYS`` days, newest
``MAX_ROWS`` rows at most, through ``values_list``) or aggregates in the database, then works in
Python.

Shared definitions (docs/studio-data.md has the same list for the UI's "why this score"):

- engagement rate of a post = (likes + comments) / max(views, 1)
- averages are per post (each post counts once, whatever its reach)
- lift = group's average engagement rate / the creator's overall average - 1 (0.25 = 25% better)
- a group (tag, category, weekday, caption feature) needs ``MIN_SUPPORT`` posts before any
  comparison or recommendation is made from it
- revenue is the post's total earnings (tips included); money stays ``Decimal``

What this module deliberately does not do: check permissions (callers authorise and pass a
creator the member may see), write rows, or call an AI model. Its one side effect is the trends
cache (``rising_trends``/``invalidate_trends``).
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Avg, Count, F, FloatField, Value
from django.db.models.functions import Cast, ExtractMonth, Greatest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.studio.models import Post
from apps.studio.platforms import PLATFORMS

if TYPE_CHECKING:
    from apps.accounts.models import Creator

WINDOW_DAYS = 180
MAX_ROWS = 5000
MIN_SUPPORT = 3
MIN_HISTORY = 5
TRENDS_DAYS = 28
TRENDS_RECENT_DAYS = 7
TRENDS_TTL_SECONDS = 3600
MIN_EFFECT = 0.10  # a caption feature must move results by 10% before we recommend anything
CENT = Decimal("0.01")


# --- Loading --------------------------------------------------------------------------------


def tag_key(tag: str) -> str:
    """A tag as stored and compared: lowercase, no '#', no spaces or punctuation."""
    return re.sub(r"\W", "", str(tag).lower())


def normalise_hashtag(tag: str) -> str:
    """``'#Cos Play!'`` → ``'#cosplay'``; '' when nothing is left."""
    key = tag_key(tag)
    return f"#{key}" if key else ""


def _clean_tags(tags: Any) -> tuple[str, ...]:
    if not isinstance(tags, list):
        return ()
    seen: dict[str, None] = {}
    for tag in tags:
        if isinstance(tag, str) and (key := tag_key(tag)):
            seen.setdefault(key, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class PostRow:
    """The fields of one Post that analytics reads."""

    posted_at: datetime
    platform: str
    category: str
    tags: tuple[str, ...]
    caption: str
    views: int
    likes: int
    comments: int
    tips: Decimal
    ppv_unlocks: int
    revenue: Decimal

    @classmethod
    def from_post(cls, post: Post) -> PostRow:
        """An unsaved or loaded Post as a row (the demo scores ideas from posts it just built)."""
        return cls(post.posted_at, post.platform, post.category, _clean_tags(post.tags), post.caption or "",
                   post.views, post.likes, post.comments, Decimal(post.tips), post.ppv_unlocks,
                   Decimal(post.revenue))  # fmt: skip

    @property
    def engagement_rate(self) -> float:
        return (self.likes + self.comments) / max(self.views, 1)

    @property
    def comment_rate(self) -> float:
        return self.comments / max(self.views, 1)

    @property
    def unlock_rate(self) -> float:
        return self.ppv_unlocks / max(self.views, 1)


_FIELDS = (
    "posted_at", "platform", "category", "tags", "caption", "views", "likes", "comments", "tips",
    "ppv_unlocks", "revenue",
)  # fmt: skip


def _rows(queryset, limit: int = MAX_ROWS) -> list[PostRow]:
    return [
        PostRow(v[0], v[1], v[2], _clean_tags(v[3]), v[4] or "", *v[5:])
        for v in queryset.order_by("-posted_at", "-id").values_list(*_FIELDS)[:limit]
    ]


def post_history(*, creator: Creator, days: int = WINDOW_DAYS, now: datetime | None = None) -> list[PostRow]:
    """The creator's posts of the last ``days`` days (at most WINDOW_DAYS), newest first. One query."""
    now = now or timezone.now()
    since = now - timedelta(days=min(days, WINDOW_DAYS))
    return _rows(Post.objects.for_agency(creator.agency_id).filter(creator=creator, posted_at__gte=since,
                                                                   posted_at__lte=now))  # fmt: skip


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _avg_money(values: Sequence[Decimal]) -> Decimal:
    return _money(sum(values, Decimal(0)) / len(values)) if values else Decimal("0.00")


def _lift(rate: float, overall: float) -> float:
    return rate / overall - 1 if overall > 0 else 0.0


def _pct(ratio: float) -> int:
    """0.34 → 34 (a relative change shown to people)."""
    return round(ratio * 100)


def percentile_rank(value: float, population: Sequence[float]) -> float:
    """Share of the population below ``value``, ties counted half: 100 x (below + ½·equal) / n."""
    if not population:
        return 50.0
    below = sum(1 for v in population if v < value)
    equal = sum(1 for v in population if v == value)
    return 100 * (below + 0.5 * equal) / len(population)


def creator_zone(creator: Creator) -> zoneinfo.ZoneInfo:
    """The creator's time zone (UTC when the stored name is unknown)."""
    try:
        return zoneinfo.ZoneInfo(creator.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


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
    overall = _mean(r.engagement_rate for r in rows)
    groups: dict[str, list[PostRow]] = defaultdict(list)
    for row in rows:
        for tag in row.tags:
            groups[tag].append(row)
    stats = []
    for tag, items in groups.items():
        rate = _mean(r.engagement_rate for r in items)
        stats.append(TagStat(tag, len(items), rate, _avg_money([r.revenue for r in items]), _lift(rate, overall)))
    return sorted(stats, key=lambda s: (-s.lift, -s.posts, s.tag))


def category_stats(rows: Sequence[PostRow]) -> dict[str, CategoryStat]:
    overall = _mean(r.engagement_rate for r in rows)
    groups: dict[str, list[PostRow]] = defaultdict(list)
    for row in rows:
        groups[row.category].append(row)
    stats = {}
    for category, items in groups.items():
        rate = _mean(r.engagement_rate for r in items)
        revenue = sum((r.revenue for r in items), Decimal(0))
        tips = sum((r.tips for r in items), Decimal(0))
        views = sum(r.views for r in items)
        stats[category] = CategoryStat(
            category=category,
            posts=len(items),
            avg_engagement_rate=rate,
            avg_revenue=_avg_money([r.revenue for r in items]),
            total_revenue=_money(revenue),
            avg_tips=_avg_money([r.tips for r in items]),
            ppv_unlock_rate=sum(r.ppv_unlocks for r in items) / max(views, 1),
            tips_share=min(1.0, float(tips / revenue)) if revenue > 0 else 0.0,
            lift=_lift(rate, overall),
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
        recent_rate, base_rate = _mean(recent), _mean(base)
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
    rows = _rows(posts.filter(posted_at__gte=recent_start, posted_at__lte=now), half)
    rows += _rows(posts.filter(posted_at__gte=now - timedelta(days=days), posted_at__lt=recent_start), half)
    trends = trends_from_rows(rows, now=now, days=days)
    if cacheable:
        cache.set(key, trends, TRENDS_TTL_SECONDS)
    return trends


def invalidate_trends(agency_id: int) -> None:
    """Forget the cached trends of an agency and of each of its creators (one query)."""
    from apps.accounts.models import Creator

    creator_ids = Creator.objects.for_agency(agency_id).values_list("pk", flat=True)
    cache.delete_many([trends_cache_key(agency_id), *(trends_cache_key(agency_id, pk) for pk in creator_ids)])


# --- Seasonality ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonalEvent:
    """A dated moment worth planning for. ``kind``: holiday, payday, or pattern (the creator's own)."""

    key: str
    name: str
    starts: date
    ends: date
    relevance: float
    reason: str
    kind: str = "holiday"


def easter_sunday(year: int) -> date:
    """Western Easter (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def black_friday(year: int) -> date:
    """The day after US Thanksgiving (the fourth Thursday of November)."""
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=22)


def last_friday(year: int, month: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 4) % 7)


def oktoberfest(year: int) -> tuple[date, date]:
    """Ends on the first Sunday of October (October 3 when that Sunday is the 1st or 2nd) and
    opens on the Saturday 15 days before that Sunday."""
    first = date(year, 10, 1)
    sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return sunday - timedelta(days=15), max(sunday, date(year, 10, 3))


_SOUTHERN_ZONES = ("Australia/", "Pacific/Auckland", "America/Sao_Paulo", "America/Argentina", "America/Santiago",
                   "America/Montevideo", "Africa/Johannesburg")  # fmt: skip
SEMI_MONTHLY_LOCALES = {"en-US", "es-MX"}


def creator_locale(creator: Creator) -> str:
    """Language and a region guessed from the time zone: en-US, en-GB, es-ES, es-MX, pt-BR, fr-FR…"""
    language = creator.language or "en"
    tz = creator.timezone or "UTC"
    american = tz.startswith(("America/", "US/", "Canada/"))
    if language == "en":
        region = "US" if american or tz == "UTC" else "AU" if tz.startswith("Australia/") else "GB"
    elif language == "es":
        region = "MX" if american else "ES"
    elif language == "pt":
        region = "BR" if american else "PT"
    else:
        region = {"ja": "JP"}.get(language, language.upper())
    return f"{language}-{region}"


# Base relevance of each calendar event, before niche boosts and the distance from ``on``.
_NICHE_BOOSTS = {
    "halloween": ("cosplay", "gaming", "alt", "goth"),
    "valentines": ("lingerie", "fashion", "couple"),
    "summer_start": ("beach", "travel", "fitness", "bikini"),
    "new_year": ("fitness", "gym"),
    "pride": ("lgbt", "queer", "gay", "trans"),
}


def calendar_events(*, locale: str, year: int, southern: bool = False) -> list[SeasonalEvent]:
    """The dated events of one year for a locale, with their base relevance (no niche or distance
    adjustment). Payday weekends are not included: see ``payday_events``."""
    language = locale.split("-")[0]
    easter = easter_sunday(year)
    friday = black_friday(year)
    d = date

    def event(key: str, name: str, starts: date, ends: date, relevance: float, reason: str) -> SeasonalEvent:
        return SeasonalEvent(key, name, starts, ends, relevance, reason)

    events = [
        event("new_year", "New Year", d(year, 12, 30), d(year + 1, 1, 1), 0.8,
              "Fans are home and celebrating; resolutions and countdown content do well."),
        event("valentines", "Valentine's week", d(year, 2, 7), d(year, 2, 14), 0.95,
              "The biggest week of the year for romantic and PPV content."),
        event("womens_day", "International Women's Day", d(year, 3, 8), d(year, 3, 8), 0.5,
              "A day to celebrate yourself and your community."),
        event("easter", "Easter weekend", easter - timedelta(days=2), easter + timedelta(days=1), 0.5,
              f"Long weekend (Easter Sunday is {easter:%d %B}); playful themed sets."),
        event("pride", "Pride month", d(year, 6, 1), d(year, 6, 30), 0.6, "A month of visible, inclusive content."),
        event("halloween", "Halloween", d(year, 10, 25), d(year, 10, 31), 0.85,
              "Costume and themed content peaks the week before Halloween."),
        event("black_friday", "Black Friday to Cyber Monday", friday, friday + timedelta(days=3), 0.9,
              "Fans expect deals: discounted bundles and subscription offers convert best."),
        event("christmas", "Christmas", d(year, 12, 20), d(year, 12, 26), 0.9,
              "Gift-themed content and advent-style drops; fans have time off."),
    ]  # fmt: skip
    summer = (d(year, 12, 21), d(year, 12, 31)) if southern else (d(year, 6, 21), d(year, 7, 1))
    events.append(event("summer_start", "Start of summer", *summer, 0.6, "Outdoor, beach and pool content lifts."))
    if language == "es":
        events.append(event("reyes", "Día de Reyes", d(year, 1, 5), d(year, 1, 6), 0.6,
                            "Gift day in Spain and Latin America."))  # fmt: skip
    elif language == "fr":
        events.append(event("fete_nationale", "Fête nationale", d(year, 7, 13), d(year, 7, 14), 0.55,
                            "Holiday weekend in France."))  # fmt: skip
    elif language == "de":
        starts, ends = oktoberfest(year)
        events.append(event("oktoberfest", "Oktoberfest", starts, ends, 0.65,
                            "Dirndl and beer-garden themes during the Munich festival."))  # fmt: skip
    elif language == "it":
        events.append(event("ferragosto", "Ferragosto", d(year, 8, 14), d(year, 8, 16), 0.6,
                            "Italy's mid-August holiday: beach and summer content."))  # fmt: skip
    elif language == "pt":
        carnival = easter - timedelta(days=47)  # Shrove Tuesday
        events.append(event("carnival", "Carnival", carnival - timedelta(days=3), carnival, 0.85,
                            "Carnival weekend: costumes, colour and party content."))  # fmt: skip
    return events


def payday_events(*, locale: str, first: date, last: date) -> list[SeasonalEvent]:
    """Each month's payday weekend (last Friday to Sunday) and, for semi-monthly pay locales
    (SEMI_MONTHLY_LOCALES), the 15th, for months touching ``first``…``last``."""
    events = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        friday = last_friday(year, month)
        events.append(SeasonalEvent("payday", "Payday weekend", friday, friday + timedelta(days=2), 0.7,
                                    "Fans were just paid: PPV and tips convert better.", "payday"))  # fmt: skip
        if locale in SEMI_MONTHLY_LOCALES:
            mid = date(year, month, 15)
            events.append(SeasonalEvent("payday_mid", "Mid-month payday", mid, mid + timedelta(days=1), 0.5,
                                        "Semi-monthly pay lands on the 15th here.", "payday"))  # fmt: skip
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return events


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_RATE_EXPR = Cast(F("likes") + F("comments"), FloatField()) / Cast(Greatest(F("views"), Value(1)), FloatField())


def _best_group(groups: dict[int, list[float]]) -> tuple[int, float, int] | None:
    supported = {k: _mean(v) for k, v in groups.items() if len(v) >= MIN_SUPPORT}
    if len(supported) < 2:
        return None
    best = max(supported, key=lambda k: (supported[k], -k))
    return best, supported[best], len(groups[best])


def _weekly_pattern(rows: Sequence[PostRow], zone: zoneinfo.ZoneInfo, on: date) -> SeasonalEvent | None:
    """The creator's best weekday (and hour) by average engagement rate, in their time zone."""
    overall = _mean(r.engagement_rate for r in rows)
    by_day: dict[int, list[float]] = defaultdict(list)
    by_hour: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        local = row.posted_at.astimezone(zone)
        by_day[local.weekday()].append(row.engagement_rate)
        by_hour[local.hour].append(row.engagement_rate)
    best_day = _best_group(by_day)
    if best_day is None or overall <= 0:
        return None
    day, rate, n = best_day
    lift = _lift(rate, overall)
    best_hour = _best_group(by_hour)
    hour_text = f" around {best_hour[0]:02d}:00" if best_hour else ""
    reason = (f"Your {_WEEKDAYS[day]} posts average {rate:.1%} engagement against {overall:.1%} overall "
              f"({n} posts, {_pct(lift):+d}%).")  # fmt: skip
    if best_hour:
        reason += f" {best_hour[0]:02d}:00 is your best hour ({best_hour[2]} posts, {best_hour[1]:.1%})."
    starts = on + timedelta(days=(day - on.weekday()) % 7)
    return SeasonalEvent("best_weekday", f"Your best slot: {_WEEKDAYS[day]}{hour_text}", starts, starts,
                         round(max(0.0, min(1.0, 0.5 + lift)), 2), reason, "pattern")  # fmt: skip


def _yearly_pattern(creator: Creator, zone: zoneinfo.ZoneInfo, on: date) -> SeasonalEvent | None:
    """The creator's best month over the last two years (one aggregate query)."""
    since = timezone.now() - timedelta(days=730)
    months = list(
        Post.objects.for_agency(creator.agency_id)
        .filter(creator=creator, posted_at__gte=since)
        .annotate(month=ExtractMonth("posted_at", tzinfo=zone))
        .values("month")
        .annotate(n=Count("id"), rate=Avg(_RATE_EXPR))
        .order_by("month")
    )
    supported = [m for m in months if m["n"] >= MIN_SUPPORT]
    if len(supported) < 3:
        return None
    total = sum(m["n"] for m in supported)
    overall = sum(m["rate"] * m["n"] for m in supported) / total
    best = max(supported, key=lambda m: (m["rate"], -m["month"]))
    lift = _lift(best["rate"], overall)
    if lift <= 0:
        return None
    year = on.year if best["month"] >= on.month else on.year + 1
    starts = date(year, best["month"], 1)
    ends = date(year + best["month"] // 12, best["month"] % 12 + 1, 1) - timedelta(days=1)
    return SeasonalEvent(
        "best_month", f"Your best month: {_MONTHS[best['month'] - 1]}", starts, ends,
        round(max(0.0, min(1.0, 0.5 + lift)), 2),
        f"Your {_MONTHS[best['month'] - 1]} posts average {best['rate']:.1%} engagement against {overall:.1%} "
        f"over {len(supported)} months ({best['n']} posts, {_pct(lift):+d}%).",
        "pattern",
    )  # fmt: skip


def seasonality(*, creator: Creator, on: date, horizon_days: int = 60) -> list[SeasonalEvent]:
    """Events overlapping ``on``…``on + horizon_days``, soonest first: the locale's calendar
    (creator_locale), payday weekends, and the creator's own best weekday/hour and best month.

    relevance = base relevance (+0.1 when the creator's niche fits the event, capped at 1)
    x closeness, where closeness = 1 while the event runs and falls linearly to 0.5 at the
    horizon. Pattern events score 0.5 + lift, capped to 0-1. Two queries.
    """
    locale = creator_locale(creator)
    southern = (creator.timezone or "").startswith(_SOUTHERN_ZONES)
    last = on + timedelta(days=horizon_days)
    niche = (creator.niche or "").lower()
    candidates = [e for year in range(on.year - 1, last.year + 1)
                  for e in calendar_events(locale=locale, year=year, southern=southern)]  # fmt: skip
    candidates += payday_events(locale=locale, first=on - timedelta(days=7), last=last)  # a weekend may spill over
    events = []
    for event in candidates:
        if event.ends < on or event.starts > last:
            continue
        relevance, reason = event.relevance, event.reason
        if any(word in niche for word in _NICHE_BOOSTS.get(event.key, ())):
            relevance = min(1.0, relevance + 0.1)
            reason += f" Fits a {creator.niche} niche."
        days_until = (event.starts - on).days
        closeness = 1.0 if days_until <= 0 else 1 - 0.5 * days_until / max(horizon_days, 1)
        reason += " Running now." if days_until <= 0 else f" Starts in {days_until} days."
        events.append(SeasonalEvent(event.key, event.name, event.starts, event.ends,
                                    round(relevance * closeness, 2), reason, event.kind))  # fmt: skip
    zone = creator_zone(creator)
    for pattern in (_weekly_pattern(post_history(creator=creator), zone, on), _yearly_pattern(creator, zone, on)):
        if pattern is not None and pattern.starts <= last:
            events.append(pattern)
    return sorted(events, key=lambda e: (e.starts, -e.relevance, e.key))


# --- Captions -------------------------------------------------------------------------------

_PICTO = (
    "\U0001f000-\U0001f1e5\U0001f200-\U0001f3fa\U0001f400-\U0001faff\u2600-\u27bf\u2b50\u2b55\u231a\u231b\u23e9-\u23fa"
)
_MOD = "\U0001f3fb-\U0001f3ff"
EMOJI_RE = re.compile(f"[\U0001f1e6-\U0001f1ff]{{2}}|[{_PICTO}][{_MOD}]?\ufe0f?(?:\u200d[{_PICTO}][{_MOD}]?\ufe0f?)*")
HASHTAG_RE = re.compile(r"#\w+")
WORD_RE = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")

CTA_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("link in bio", "check my", "subscribe", "sub now", "dm me", "message me", "unlock", "tip me",
           "don't miss", "dont miss", "click", "tap the link", "join me", "comment below", "swipe", "see more",
           "grab it", "available now", "in your dms", "in your inbox"),
    "es": ("link en bio", "enlace en bio", "suscríbete", "escríbeme", "mándame", "desbloquea",
           "no te lo pierdas", "únete", "comenta", "dale like", "disponible ya"),
    "fr": ("lien en bio", "abonne-toi", "abonnez-vous", "écris-moi", "débloque", "ne rate pas", "rejoins-moi",
           "commente", "en dm", "dispo maintenant"),
    "de": ("link in der bio", "abonnier", "schreib mir", "freischalten", "nicht verpassen", "verpass nicht",
           "kommentier", "jetzt verfügbar"),
    "it": ("link in bio", "iscriviti", "scrivimi", "sblocca", "non perdere", "unisciti", "commenta",
           "disponibile ora"),
    "pt": ("link na bio", "inscreva-se", "assine", "me chama", "desbloqueia", "não perca", "comenta",
           "disponível agora"),
}  # fmt: skip
_ALL_CTA = sorted({p for phrases in CTA_PHRASES.values() for p in phrases}, key=len, reverse=True)
CTA_RE = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in _ALL_CTA) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class CaptionFeatures:
    chars: int
    words: int
    emoji_count: int
    cta_phrases: tuple[str, ...]
    asks_question: bool
    hashtag_count: int

    @property
    def has_cta(self) -> bool:
        return bool(self.cta_phrases)


def caption_features(caption: str) -> CaptionFeatures:
    """Counts of one caption. Words exclude hashtags; a ZWJ emoji sequence counts once."""
    text = caption or ""
    without_tags = HASHTAG_RE.sub(" ", text)
    return CaptionFeatures(
        chars=len(text),
        words=len(WORD_RE.findall(without_tags)),
        emoji_count=len(EMOJI_RE.findall(text)),
        cta_phrases=tuple(dict.fromkeys(m.lower() for m in CTA_RE.findall(text))),
        asks_question="?" in text or "¿" in text,
        hashtag_count=len(HASHTAG_RE.findall(text)),
    )


@dataclass(frozen=True)
class FeatureComparison:
    """Avg ``metric`` of the creator's posts with and without a caption feature.
    ``effect`` = with_avg / without_avg - 1 (None when either side has < MIN_SUPPORT posts)."""

    feature: str
    metric: str
    with_posts: int
    without_posts: int
    with_avg: float
    without_avg: float
    effect: float | None
    in_caption: bool


@dataclass
class CaptionReport:
    chars: int
    words: int
    emoji_count: int
    has_cta: bool
    cta_phrases: list[str]
    asks_question: bool
    hashtag_count: int
    best_length_band: tuple[int, int] | None
    length_verdict: Literal["short", "within", "long"] | None
    features: list[FeatureComparison]
    recommendations: list[str]
    warnings: list[str]
    explanation: dict[str, Any]


_FEATURES: dict[str, tuple[str, Any]] = {
    "question": ("comment_rate", lambda f: f.asks_question),
    "cta": ("engagement_rate", lambda f: f.has_cta),
    "emoji": ("engagement_rate", lambda f: f.emoji_count > 0),
    "hashtags": ("engagement_rate", lambda f: f.hashtag_count > 0),
}
_ADVICE = {  # (the feature helps and the caption lacks it, the feature hurts and the caption has it)
    "question": ("Captions with a question get {p}% more comments for you — end with one.",
                 "Captions without a question get {p}% more comments for you — try a statement."),
    "cta": ("Captions with a call to action get {p}% more engagement for you — add one (“{example}”).",
            "Captions without a call to action get {p}% more engagement for you — let this one breathe."),
    "emoji": ("Captions with emoji get {p}% more engagement for you — add one or two.",
              "Captions without emoji get {p}% more engagement for you — try dropping them."),
    "hashtags": ("Captions with hashtags get {p}% more engagement for you — add a few.",
                 "Captions without hashtags get {p}% more engagement for you — drop them."),
}  # fmt: skip


def _quantile(sorted_values: Sequence[int], q: float) -> int:
    return sorted_values[round(q * (len(sorted_values) - 1))]


def caption_analysis(*, creator: Creator, caption: str, platform: str) -> CaptionReport:
    """Compare a draft caption with what worked for this creator.

    The basis is the creator's posts on ``platform`` when there are at least 10, else all their
    posts (last WINDOW_DAYS days). For each feature (question → comment rate; call to action,
    emoji, hashtags → engagement rate) ``effect`` = avg with / avg without - 1, needing
    MIN_SUPPORT posts on each side. Best length band = 25th-75th percentile of word counts of the
    top quarter of captioned posts by engagement rate (at least 8 captioned posts); its effect =
    avg rate inside the band / outside - 1. A recommendation is made only when an effect is at
    least MIN_EFFECT (10%) and the draft goes the wrong way. Platform rules (caption length,
    hashtag limit) are ``warnings``, not recommendations. One query.
    """
    if platform not in PLATFORMS:
        raise ApplicationError(f"Unknown platform “{platform}”.", field="platform")
    draft = caption_features(caption)
    rows = post_history(creator=creator)
    same_platform = [r for r in rows if r.platform == platform]
    basis = same_platform if len(same_platform) >= 10 else rows
    features = [(r, caption_features(r.caption)) for r in basis]
    draft_flags = {name: test(draft) for name, (_, test) in _FEATURES.items()}
    comparisons, recommendations = [], []
    language = creator.language if creator.language in CTA_PHRASES else "en"
    for name, (metric, test) in _FEATURES.items():
        with_ = [getattr(r, metric) for r, f in features if test(f)]
        without = [getattr(r, metric) for r, f in features if not test(f)]
        with_avg, without_avg = _mean(with_), _mean(without)
        effect = None
        if len(with_) >= MIN_SUPPORT and len(without) >= MIN_SUPPORT:
            if without_avg > 0:
                effect = with_avg / without_avg - 1
            elif with_avg > 0:
                effect = 1.0
        comparisons.append(FeatureComparison(name, metric, len(with_), len(without), with_avg, without_avg, effect,
                                             draft_flags[name]))  # fmt: skip
        if effect is None:
            continue
        helps, hurts = _ADVICE[name]
        if effect >= MIN_EFFECT and not draft_flags[name]:
            recommendations.append(helps.format(p=_pct(effect), example=CTA_PHRASES[language][0]))
        elif with_avg > 0 and (inverse := without_avg / with_avg - 1) >= MIN_EFFECT and draft_flags[name]:
            recommendations.append(hurts.format(p=_pct(inverse)))

    band, verdict, band_effect = None, None, None
    captioned = [(r, f) for r, f in features if f.words > 0]
    if len(captioned) >= 8:
        top = sorted(captioned, key=lambda pair: -pair[0].engagement_rate)[: max(2, len(captioned) // 4)]
        words = sorted(f.words for _, f in top)
        band = (_quantile(words, 0.25), _quantile(words, 0.75))
        inside = [r.engagement_rate for r, f in captioned if band[0] <= f.words <= band[1]]
        outside = [r.engagement_rate for r, f in captioned if not band[0] <= f.words <= band[1]]
        verdict = "short" if draft.words < band[0] else "long" if draft.words > band[1] else "within"
        if len(inside) >= MIN_SUPPORT and len(outside) >= MIN_SUPPORT and _mean(outside) > 0:
            band_effect = _mean(inside) / _mean(outside) - 1
            if band_effect >= MIN_EFFECT and verdict != "within":
                action = "trim it" if verdict == "long" else "add a line"
                recommendations.append(
                    f"Your best captions run {band[0]}-{band[1]} words and get {_pct(band_effect)}% more engagement "
                    f"for you; this one has {draft.words} — {action}."
                )

    rules = PLATFORMS[platform]
    warnings = []
    if draft.chars > rules.caption_limit:
        warnings.append(f"{rules.label}: at most {rules.caption_limit:,} characters; this one has {draft.chars:,}.")
    if draft.hashtag_count > rules.max_hashtags:
        warnings.append(f"{rules.label}: at most {rules.max_hashtags} hashtags; this one has {draft.hashtag_count}.")
    return CaptionReport(
        chars=draft.chars,
        words=draft.words,
        emoji_count=draft.emoji_count,
        has_cta=draft.has_cta,
        cta_phrases=list(draft.cta_phrases),
        asks_question=draft.asks_question,
        hashtag_count=draft.hashtag_count,
        best_length_band=band,
        length_verdict=verdict,
        features=comparisons,
        recommendations=recommendations,
        warnings=warnings,
        explanation={
            "basis": f"{len(basis)} posts" + (f" on {platform}" if basis is same_platform else " on all platforms"),
            "features": {
                c.feature: {
                    "metric": c.metric,
                    "with": [c.with_posts, round(c.with_avg, 4)],
                    "without": [c.without_posts, round(c.without_avg, 4)],
                    "effect": None if c.effect is None else round(c.effect, 3),
                }
                for c in comparisons
            },
            "length_band": {"words": band, "effect": None if band_effect is None else round(band_effect, 3)},
            "formula": "effect = avg with feature / avg without - 1; recommended when ≥ 10% and "
            f"≥ {MIN_SUPPORT} posts on each side",
        },
    )


# --- Hashtags -------------------------------------------------------------------------------

# Never suggested anywhere: they signal minors, whatever the platform.
ALWAYS_FORBIDDEN_TAGS = frozenset({"teen", "teens", "underage", "schoolgirl", "barelylegal", "jailbait", "loli",
                                   "minor", "minors", "child"})  # fmt: skip
_MAINSTREAM_FORBIDDEN = frozenset({"nsfw", "nude", "nudes", "naked", "onlyfans", "fansly", "porn", "sex", "xxx",
                                   "adult", "18plus", "lewd", "nudity", "onlyfansgirl", "camgirl"})  # fmt: skip
# Tags a platform bans or shadow-bans (mainstream platforms hide adult-platform promotion).
PLATFORM_FORBIDDEN_TAGS: dict[str, frozenset[str]] = {
    "instagram": _MAINSTREAM_FORBIDDEN,
    "tiktok": _MAINSTREAM_FORBIDDEN,
    "x": frozenset(),
    "reddit": frozenset(),
    "onlyfans": frozenset(),
    "fansly": frozenset(),
}
Strategy = Literal["trending", "niche", "balanced"]


def hashtag_suggestions(
    *,
    creator: Creator,
    strategy: Strategy,
    count: int,
    platform: str,
    banned: Iterable[str] = frozenset(),
    preferred: Sequence[str] = (),
) -> list[str]:
    """Up to ``count`` hashtags (capped at the platform's limit: apps/studio/platforms.py), as
    ``#lowercase`` without spaces, no duplicates, none banned or forbidden on the platform.

    niche = the creator's tags by lift (at least 2 posts, lift ≥ 0); trending = the creator's own
    rising tags by growth, then the agency's; balanced = the two alternated. ``preferred`` (e.g. a
    model's proposals for one idea) alternate with those picks. Tags the creator's own posts show
    hurt (lift ≤ -10% over MIN_SUPPORT posts) are never suggested. One query, plus up to four for
    trends when they are not cached.
    """
    if platform not in PLATFORMS:
        raise ApplicationError(f"Unknown platform “{platform}”.", field="platform")
    if strategy not in ("trending", "niche", "balanced"):
        raise ApplicationError("Choose a hashtag strategy: balanced, trending or niche.", field="strategy")
    limit = min(count, PLATFORMS[platform].max_hashtags)
    if limit <= 0:
        return []
    stats = tag_stats(post_history(creator=creator))
    niche = [s.tag for s in stats if s.posts >= 2 and s.lift >= 0]
    hurting = {s.tag for s in stats if s.posts >= MIN_SUPPORT and s.lift <= -MIN_EFFECT}
    trending: list[str] = []
    if strategy in ("trending", "balanced"):
        own = [t.tag for t in rising_trends(agency_id=creator.agency_id, creator=creator).tags]
        trending = own + [t.tag for t in rising_trends(agency_id=creator.agency_id).tags if t.tag not in own]
    picks = {"niche": niche, "trending": trending, "balanced": _alternate(niche, trending)}[strategy]
    blocked = ALWAYS_FORBIDDEN_TAGS | PLATFORM_FORBIDDEN_TAGS.get(platform, frozenset()) | {tag_key(b) for b in banned}
    blocked |= hurting

    def usable(tags: Iterable[str]) -> list[str]:
        return [tag for tag in map(normalise_hashtag, tags) if tag and tag[1:] not in blocked]

    return list(dict.fromkeys(_alternate(usable(preferred), usable(picks))))[:limit]


def _alternate(first: Sequence[str], second: Sequence[str]) -> list[str]:
    merged = []
    for i in range(max(len(first), len(second))):
        merged += [seq[i] for seq in (first, second) if i < len(seq)]
    return merged


# --- Idea scores ----------------------------------------------------------------------------


@dataclass
class IdeaScores:
    """Scores 0-100 for one idea, with ``explanation``: the inputs and formula of each score."""

    estimated_engagement: int
    trend_score: int
    monetization: dict[str, int]
    explanation: dict[str, Any]

    @property
    def ppv_suitability(self) -> int:
        return self.monetization["ppv_suitability"]

    @property
    def subscription_value(self) -> int:
        return self.monetization["subscription_value"]

    @property
    def tip_potential(self) -> int:
        return self.monetization["tip_potential"]

    def model_fields(self) -> dict[str, Any]:
        """The ContentIdea fields these scores fill."""
        return {"estimated_engagement": self.estimated_engagement, "trend_score": self.trend_score,
                **self.monetization, "score_explanation": self.explanation}  # fmt: skip


def _score(value: float) -> int:
    """Rounded half up and clamped to 0-100."""
    return max(0, min(100, math.floor(value + 0.5)))


def _trend_part(trends: Trends, category: str, tags: Sequence[str]) -> tuple[int, dict[str, Any]]:
    growths = {f"#{tag_key(t)}": g for t in tags if (g := trends.growth(tag=t)) is not None}
    if (g := trends.growth(category=category)) is not None:
        growths[category] = g
    formula = "50 + (best growth % of the idea's tags and category) / 2, capped to 0-100"
    if not growths:
        return 50, {"score": 50, "formula": formula,
                    "inputs": {"growth": {}, "note": "none of its tags or its category had enough recent posts "
                                                     f"(≥ {MIN_SUPPORT} in each period): neutral"}}  # fmt: skip
    best = max(growths.values())
    score = _score(50 + best / 2)
    return score, {"score": score, "formula": formula, "inputs": {"growth": growths, "best_growth_pct": best}}


def score_idea(
    *,
    creator: Creator,
    category: str,
    tags: Sequence[str],
    trends: Trends | None = None,
    history: Sequence[PostRow] | None = None,
) -> IdeaScores:
    """Score an idea from the creator's posts of the last WINDOW_DAYS days (``history`` if given,
    else one query) and the agency's trends (``trends`` if given, else rising_trends, cached).

    pct(x, population) = percentile rank: 100 x (below + ½·equal) / n over the creator's posts.
    - estimated_engagement = pct(expected rate, post engagement rates), where expected rate = the
      category's avg rate (the overall avg when the category has < MIN_SUPPORT posts), averaged
      half-and-half with the mean avg rate of the idea's tags that have ≥ MIN_SUPPORT posts.
    - trend_score = 50 + best growth % of the idea's tags and category / 2, capped to 0-100.
    - ppv_suitability = 0.6 x pct(category avg unlock rate, post unlock rates)
      + 0.4 x pct(category avg revenue, post revenues).
    - subscription_value = 0.5 x pct(category avg revenue, post revenues)
      + 0.5 x pct(category avg rate, post engagement rates).
    - tip_potential = 0.7 x pct(category avg tips, post tips) + 0.3 x 100 x category tips share.
    Fewer than MIN_HISTORY posts: every creator-based score is a neutral 50; monetization is 50
    when the category has fewer than MIN_SUPPORT posts.
    """
    rows = list(history) if history is not None else post_history(creator=creator)
    if trends is None:
        trends = rising_trends(agency_id=creator.agency_id)
    trend_score, trend_why = _trend_part(trends, category, tags)
    n = len(rows)
    explanation: dict[str, Any] = {"posts": n, "window_days": WINDOW_DAYS, "trend_score": trend_why}
    if n < MIN_HISTORY:
        note = f"not enough posts yet (n < {MIN_HISTORY})"
        explanation["summary"] = note
        for name in ("estimated_engagement", "ppv_suitability", "subscription_value", "tip_potential"):
            explanation[name] = {"score": 50, "formula": "neutral", "inputs": {"posts": n, "note": note}}
        monetization = {"ppv_suitability": 50, "subscription_value": 50, "tip_potential": 50}
        return IdeaScores(50, trend_score, monetization, explanation)

    rates = [r.engagement_rate for r in rows]
    overall = _mean(rates)
    cat_rows = [r for r in rows if r.category == category]
    cat_supported = len(cat_rows) >= MIN_SUPPORT
    cat_rate = _mean(r.engagement_rate for r in cat_rows) if cat_supported else overall
    by_tag = {s.tag: s for s in tag_stats(rows)}
    tag_rates = {f"#{k}": by_tag[k].avg_engagement_rate for t in tags
                 if (k := tag_key(t)) in by_tag and by_tag[k].posts >= MIN_SUPPORT}  # fmt: skip
    expected = 0.5 * cat_rate + 0.5 * _mean(tag_rates.values()) if tag_rates else cat_rate
    engagement = _score(percentile_rank(expected, rates))
    explanation["estimated_engagement"] = {
        "score": engagement,
        "formula": "percentile rank of the expected engagement rate among your posts' rates; expected = "
        "category avg rate, averaged half-and-half with the avg rate of the idea's tags (≥ 3 posts each)",
        "inputs": {"category": category, "category_posts": len(cat_rows), "category_rate": round(cat_rate, 4),
                   "category_rate_source": "category" if cat_supported else "overall (too few category posts)",
                   "tag_rates": {t: round(r, 4) for t, r in tag_rates.items()}, "expected_rate": round(expected, 4),
                   "overall_rate": round(overall, 4)},
    }  # fmt: skip

    if not cat_supported:
        note = f"only {len(cat_rows)} {category} posts (< {MIN_SUPPORT}): neutral"
        for name in ("ppv_suitability", "subscription_value", "tip_potential"):
            explanation[name] = {"score": 50, "formula": "neutral", "inputs": {"category_posts": len(cat_rows),
                                                                               "note": note}}  # fmt: skip
        monetization = {"ppv_suitability": 50, "subscription_value": 50, "tip_potential": 50}
        return IdeaScores(engagement, trend_score, monetization, explanation)

    revenues = [float(r.revenue) for r in rows]
    unlocks = [r.unlock_rate for r in rows]
    tips = [float(r.tips) for r in rows]
    cat_revenue = _mean(float(r.revenue) for r in cat_rows)
    cat_unlock = _mean(r.unlock_rate for r in cat_rows)
    cat_tips = _mean(float(r.tips) for r in cat_rows)
    cat_revenue_sum = sum((r.revenue for r in cat_rows), Decimal(0))
    tips_share = min(1.0, float(sum((r.tips for r in cat_rows), Decimal(0)) / cat_revenue_sum)) \
        if cat_revenue_sum > 0 else 0.0  # fmt: skip
    revenue_pct = percentile_rank(cat_revenue, revenues)
    unlock_pct = percentile_rank(cat_unlock, unlocks)
    rate_pct = percentile_rank(cat_rate, rates)
    tips_pct = percentile_rank(cat_tips, tips)
    monetization = {
        "ppv_suitability": _score(0.6 * unlock_pct + 0.4 * revenue_pct),
        "subscription_value": _score(0.5 * revenue_pct + 0.5 * rate_pct),
        "tip_potential": _score(0.7 * tips_pct + 0.3 * 100 * tips_share),
    }
    revenue_in = {"category_revenue_per_post": str(_money(Decimal(cat_revenue))), "revenue_pct": round(revenue_pct, 1)}
    explanation["ppv_suitability"] = {
        "score": monetization["ppv_suitability"],
        "formula": "0.6 x pct(category unlock rate) + 0.4 x pct(category revenue per post)",
        "inputs": {"category_unlock_rate": round(cat_unlock, 4), "unlock_pct": round(unlock_pct, 1), **revenue_in},
    }
    explanation["subscription_value"] = {
        "score": monetization["subscription_value"],
        "formula": "0.5 x pct(category revenue per post) + 0.5 x pct(category engagement rate)",
        "inputs": {**revenue_in, "category_rate": round(cat_rate, 4), "rate_pct": round(rate_pct, 1)},
    }
    explanation["tip_potential"] = {
        "score": monetization["tip_potential"],
        "formula": "0.7 x pct(category tips per post) + 0.3 x 100 x category tips share of revenue",
        "inputs": {"category_tips_per_post": str(_money(Decimal(cat_tips))), "tips_pct": round(tips_pct, 1),
                   "tips_share": round(tips_share, 3)},
    }  # fmt: skip
    return IdeaScores(engagement, trend_score, monetization, explanation)


# --- Near-duplicate ideas -------------------------------------------------------------------

_STOPWORD_LINES = (
    "a an the and or but of to in on at for with by from my your our me you i we it its is are be this that these",
    "those new",
    "el la los las un una unos unas y o de del en con por para mi tu su es",  # es
    "le les une des et ou du au aux avec pour ma mon mes ton ta tes sur est",  # fr
    "der die das ein eine einen und oder von zu im mit für mein meine dein ist auf",  # de
    "il lo gli uno e di da nel con per mio mia tuo è",  # it
    "o os um uma umas do da dos das no na com meu minha seu sua é",  # pt
)


def _plain(text: str) -> str:
    """Lowercase without accents: "Séance" → "seance"."""
    decomposed = unicodedata.normalize("NFKD", (text or "").lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


STOPWORDS = frozenset(_plain(word) for line in _STOPWORD_LINES for word in line.split())


def _title_tokens(title: str) -> list[str]:
    tokens = WORD_RE.findall(_plain(title).replace("'", " ").replace("\u2019", " "))
    tokens = [t for part in tokens for t in part.split("-") if t]
    content = [t for t in tokens if t not in STOPWORDS]
    return content or tokens


def title_fingerprint(title: str) -> str:
    """Lowercased, accents, punctuation, emoji and stopwords removed, unique tokens sorted and
    joined by spaces; a hash when that is longer than 64 characters (ContentIdea.fingerprint)."""
    joined = " ".join(sorted(set(_title_tokens(title))))
    return joined if len(joined) <= 64 else "h:" + hashlib.sha256(joined.encode()).hexdigest()[:62]


def near_duplicate(title: str, existing_titles: Sequence[str]) -> str | None:
    """The existing title most like ``title`` when fingerprints are equal or the token Jaccard
    similarity (shared tokens / all tokens of both) is at least 0.6; else None."""
    tokens = set(_title_tokens(title))
    fingerprint = title_fingerprint(title)
    best, best_score = None, 0.0
    for other in existing_titles:
        if fingerprint and title_fingerprint(other) == fingerprint:
            return other
        other_tokens = set(_title_tokens(other))
        union = tokens | other_tokens
        score = len(tokens & other_tokens) / len(union) if union else 0.0
        if score >= 0.6 and score > best_score:
            best, best_score = other, score
    return best
