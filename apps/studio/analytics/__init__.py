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

from apps.studio.analytics.captions import (  # noqa: F401
    CTA_PHRASES,
    CTA_RE,
    EMOJI_RE,
    HASHTAG_RE,
    PLATFORM_FORBIDDEN_TAGS,
    WORD_RE,
    CaptionFeatures,
    CaptionReport,
    FeatureComparison,
    Strategy,
    caption_analysis,
    caption_features,
    hashtag_suggestions,
)
from apps.studio.analytics.history import (  # noqa: F401
    CENT,
    MAX_ROWS,
    MIN_EFFECT,
    MIN_HISTORY,
    MIN_SUPPORT,
    TRENDS_DAYS,
    TRENDS_RECENT_DAYS,
    TRENDS_TTL_SECONDS,
    WINDOW_DAYS,
    PostRow,
    creator_zone,
    normalise_hashtag,
    percentile_rank,
    post_history,
    tag_key,
)
from apps.studio.analytics.ideas import (  # noqa: F401
    STOPWORDS,
    IdeaScores,
    near_duplicate,
    score_idea,
    title_fingerprint,
)
from apps.studio.analytics.performance import (  # noqa: F401
    CategoryStat,
    CategoryTrend,
    TagStat,
    TagTrend,
    Trends,
    TrendStat,
    category_performance,
    category_stats,
    invalidate_trends,
    rising_trends,
    tag_performance,
    tag_stats,
    trends_cache_key,
    trends_from_rows,
)
from apps.studio.analytics.seasonality import (  # noqa: F401
    SEMI_MONTHLY_LOCALES,
    SeasonalEvent,
    black_friday,
    calendar_events,
    creator_locale,
    easter_sunday,
    last_friday,
    oktoberfest,
    payday_events,
    seasonality,
)
