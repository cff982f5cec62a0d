"""Idea scores ("why this score") and near-duplicate detection.

Part of ``apps.studio.analytics``; the package docstring holds the shared definitions.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from apps.studio.analytics.captions import WORD_RE
from apps.studio.analytics.history import (
    MIN_HISTORY,
    MIN_SUPPORT,
    WINDOW_DAYS,
    PostRow,
    mean_of,
    percentile_rank,
    post_history,
    tag_key,
    to_money,
)
from apps.studio.analytics.performance import Trends, rising_trends, tag_stats

if TYPE_CHECKING:
    from apps.accounts.models import Creator


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
    overall = mean_of(rates)
    cat_rows = [r for r in rows if r.category == category]
    cat_supported = len(cat_rows) >= MIN_SUPPORT
    cat_rate = mean_of(r.engagement_rate for r in cat_rows) if cat_supported else overall
    by_tag = {s.tag: s for s in tag_stats(rows)}
    tag_rates = {f"#{k}": by_tag[k].avg_engagement_rate for t in tags
                 if (k := tag_key(t)) in by_tag and by_tag[k].posts >= MIN_SUPPORT}  # fmt: skip
    expected = 0.5 * cat_rate + 0.5 * mean_of(tag_rates.values()) if tag_rates else cat_rate
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
    cat_revenue = mean_of(float(r.revenue) for r in cat_rows)
    cat_unlock = mean_of(r.unlock_rate for r in cat_rows)
    cat_tips = mean_of(float(r.tips) for r in cat_rows)
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
    revenue_in = {
        "category_revenue_per_post": str(to_money(Decimal(cat_revenue))),
        "revenue_pct": round(revenue_pct, 1),
    }
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
        "inputs": {"category_tips_per_post": str(to_money(Decimal(cat_tips))), "tips_pct": round(tips_pct, 1),
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
