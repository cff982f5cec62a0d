"""Caption analysis against the creator's results, and hashtag suggestions.

Part of ``apps.studio.analytics``; the package docstring holds the shared definitions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from apps import safety
from apps.core.errors import ApplicationError
from apps.studio.analytics.history import (
    MIN_EFFECT,
    MIN_SUPPORT,
    PostRow,
    mean_of,
    normalise_hashtag,
    percent,
    post_history,
    tag_key,
)
from apps.studio.analytics.performance import rising_trends, tag_stats
from apps.studio.platforms import PLATFORMS

if TYPE_CHECKING:
    from apps.accounts.models import Creator


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
        with_avg, without_avg = mean_of(with_), mean_of(without)
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
            recommendations.append(helps.format(p=percent(effect), example=CTA_PHRASES[language][0]))
        elif with_avg > 0 and (inverse := without_avg / with_avg - 1) >= MIN_EFFECT and draft_flags[name]:
            recommendations.append(hurts.format(p=percent(inverse)))

    band, verdict, band_effect = None, None, None
    captioned = [(r, f) for r, f in features if f.words > 0]
    if len(captioned) >= 8:
        top = sorted(captioned, key=lambda pair: -pair[0].engagement_rate)[: max(2, len(captioned) // 4)]
        words = sorted(f.words for _, f in top)
        band = (_quantile(words, 0.25), _quantile(words, 0.75))
        inside = [r.engagement_rate for r, f in captioned if band[0] <= f.words <= band[1]]
        outside = [r.engagement_rate for r, f in captioned if not band[0] <= f.words <= band[1]]
        verdict = "short" if draft.words < band[0] else "long" if draft.words > band[1] else "within"
        if len(inside) >= MIN_SUPPORT and len(outside) >= MIN_SUPPORT and mean_of(outside) > 0:
            band_effect = mean_of(inside) / mean_of(outside) - 1
            if band_effect >= MIN_EFFECT and verdict != "within":
                action = "trim it" if verdict == "long" else "add a line"
                recommendations.append(
                    f"Your best captions run {band[0]}-{band[1]} words and get {percent(band_effect)}% more engagement "
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
    history: Sequence[PostRow] | None = None,
) -> list[str]:
    """Up to ``count`` hashtags (capped at the platform's limit: apps/studio/platforms.py), as
    ``#lowercase`` without spaces, no duplicates, none banned or forbidden on the platform.

    niche = the creator's tags by lift (at least 2 posts, lift ≥ 0); trending = the creator's own
    rising tags by growth, then the agency's; balanced = the two alternated. ``preferred`` (e.g. a
    model's proposals for one idea) alternate with those picks. Tags the creator's own posts show
    hurt (lift ≤ -10% over MIN_SUPPORT posts) are never suggested, nor are tags the safety policy
    refuses (``apps.safety.check_tags``: minors, non-consent, whatever the platform). One query
    (none when ``history``, the creator's post_history, is given: a caller suggesting for several
    ideas loads it once), plus up to four for trends when they are not cached.
    """
    if platform not in PLATFORMS:
        raise ApplicationError(f"Unknown platform “{platform}”.", field="platform")
    if strategy not in ("trending", "niche", "balanced"):
        raise ApplicationError("Choose a hashtag strategy: balanced, trending or niche.", field="strategy")
    limit = min(count, PLATFORMS[platform].max_hashtags)
    if limit <= 0:
        return []
    stats = tag_stats(list(history) if history is not None else post_history(creator=creator))
    niche = [s.tag for s in stats if s.posts >= 2 and s.lift >= 0]
    hurting = {s.tag for s in stats if s.posts >= MIN_SUPPORT and s.lift <= -MIN_EFFECT}
    trending: list[str] = []
    if strategy in ("trending", "balanced"):
        own = [t.tag for t in rising_trends(agency_id=creator.agency_id, creator=creator).tags]
        trending = own + [t.tag for t in rising_trends(agency_id=creator.agency_id).tags if t.tag not in own]
    picks = {"niche": niche, "trending": trending, "balanced": _alternate(niche, trending)}[strategy]
    blocked = PLATFORM_FORBIDDEN_TAGS.get(platform, frozenset()) | {tag_key(b) for b in banned}
    blocked |= hurting

    def usable(tags: Iterable[str]) -> list[str]:
        return [tag for tag in map(normalise_hashtag, tags) if tag and tag[1:] not in blocked]

    suggestions: list[str] = []
    for tag in dict.fromkeys(_alternate(usable(preferred), usable(picks))):  # checked only until enough pass
        if len(suggestions) >= limit:
            break
        if safety.check_tags([tag])[0]:
            suggestions.append(tag)
    return suggestions


def _alternate(first: Sequence[str], second: Sequence[str]) -> list[str]:
    merged = []
    for i in range(max(len(first), len(second))):
        merged += [seq[i] for seq in (first, second) if i < len(seq)]
    return merged
