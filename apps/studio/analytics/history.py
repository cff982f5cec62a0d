"""The creator's post history as plain rows, and the helpers every analysis shares.

Part of ``apps.studio.analytics``; the package docstring holds the shared definitions.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from apps.core.timezones import zone_or_utc
from apps.studio.models import Post

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


def load_rows(queryset, limit: int = MAX_ROWS) -> list[PostRow]:
    return [
        PostRow(v[0], v[1], v[2], _clean_tags(v[3]), v[4] or "", *v[5:])
        for v in queryset.order_by("-posted_at", "-id").values_list(*_FIELDS)[:limit]
    ]


def post_history(*, creator: Creator, days: int = WINDOW_DAYS, now: datetime | None = None) -> list[PostRow]:
    """The creator's posts of the last ``days`` days (at most WINDOW_DAYS), newest first. One query."""
    now = now or timezone.now()
    since = now - timedelta(days=min(days, WINDOW_DAYS))
    return load_rows(Post.objects.for_agency(creator.agency_id).filter(creator=creator, posted_at__gte=since,
                                                                   posted_at__lte=now))  # fmt: skip


def mean_of(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def to_money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def avg_money(values: Sequence[Decimal]) -> Decimal:
    return to_money(sum(values, Decimal(0)) / len(values)) if values else Decimal("0.00")


def lift_of(rate: float, overall: float) -> float:
    return rate / overall - 1 if overall > 0 else 0.0


def percent(ratio: float) -> int:
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
    return zone_or_utc(creator.timezone)
