"""The personalization score of a draft or a template rendering: 0-100, its factors, and what to
change.

A pure function of the text, the fan, the creator, the recent messages and (optionally) the fan's
purchases and the agency's fan rules: no query, no model call, so it can score every draft and
every template preview on the spot and be unit-tested with hand-checked numbers.

Five factors, points out of their weight (the weights sum to 100):

``uses name`` (20)
    The fan's first name (display name), or their username when they have none, appears as a
    word in the text.
``refers to history`` (25)
    25 when the text picks up a word of the fan's recent messages (three letters or more, not a
    function word or an endearment such as "babe") or the subject of something they bought (the
    PPV message they unlocked: "gym video"); 12 for a generic reference to the past ("last
    time", "you unlocked", "remember"); 0 otherwise.
``fits the tier`` (20)
    12 for the spend tier — whales and high spenders get appreciation ("thank", "special", "just
    for you" …: 4 without), a fan who never paid is not pushed with a price or "unlock" first (6
    when they are), mid and low spenders get something to answer (a question or an offer: 8
    without) — plus 8 for the lifecycle stage: a quiet, churned or expired fan is told they were
    missed (2 without), a new one is welcomed (4 without), an active one needs nothing.
``tone match`` (20)
    Against the creator's sample texts: 8 for the emoji habit (an emoji when most samples have
    one, at most one when samples rarely do), 8 for sharing at least one of the creator's
    signature words (their most frequent own words, slang included), 4 for lower case when the
    creator writes in lower case. Without sample texts the factor cannot be judged: 10.
``length`` (15)
    Over the platform's limit: 0. Against the fan's own messages (their average length in the
    recent window): up to three times their average (at least 60 characters) is right, up to six
    times is 8, longer is 0; a one-liner (< 15 characters) to a fan who writes 80+ is 8. Without
    messages from the fan, 300 characters is the comfortable length and 600 the end of it.

Suggestions are concrete ("Use their name — Jake", "Mention the gym video they bought",
"Shorter: their messages average 40 characters"), ordered by the points they would win back.

Deliberately not here: grammar, spelling or sentiment models. The factors are what a chatter can
act on in a few seconds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from apps.accounts.models import Creator
from apps.delivery.connectors import text_limit
from apps.messaging.models import Direction, Fan, FanRules, MessageTemplate, Purchase, PurchaseKind
from apps.messaging.templating import Rendered, template_render
from apps.messaging.tiers import Lifecycle, Tier, lifecycle, spend_tier

WEIGHTS = {"uses name": 20, "refers to history": 25, "fits the tier": 20, "tone match": 20, "length": 15}
MAX_SUGGESTIONS = 4
NO_FAN_TEXT_COMFORT = 300

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U0001f000-\U0001f2ff\u2600-\u27bf\u2b50\u2b55\u2764\u2763\u2665\u263a\U0001f1e6-\U0001f1ff]"
)
_PRICE = re.compile(r"(?:[$€£]\s?\d+|\d+(?:[.,]\d{1,2})?\s?(?:\$|€|£|usd|eur|dollars?|bucks))", re.I)

# Words that say nothing about a person: never a "reference" nor a signature word.
STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being below between both
    but by can cannot could did do does doing don't down during each few for from further had has have having he
    her here hers herself him himself his how i i'm if in into is it it's its itself just let's me more most my
    myself no nor not now of off on once only or other our ours out over own same she should so some such than
    that that's the their theirs them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you you're your yours yourself yeah yes ok
    okay oh hey hi hello lol haha hahaha omg really like want get got go going know think see make one much well
    still back way even need good great nice thing things something anything today tonight tomorrow im dont cant
    wont youre thats whats gonna wanna gotta u ur ya yo
    """.split()  # noqa: SIM905
)
# Endearments and chat words every fan and creator use: not a reference to anything said before.
CHAT_WORDS = frozenset(
    """
    all any new day now how who why was has had her his its our out own too lot bit try say let put use man guy
    sir hun bae xxx ily btw idk tbh wow aww hmm yay ugh did babe baby love loved sexy hot cute want miss kiss
    kisses xoxo honey darling sweet sweetie handsome beautiful gorgeous pretty naughty fun time thanks thank
    """.split()  # noqa: SIM905
)
# Sales words in a PPV caption: not the subject of what was bought.
SALES_WORDS = frozenset(
    """
    unlock unlocked new exclusive ppv tip tips sent sending send only just special price deal offer limited
    today now here full uncensored preview bundle inbox message dm dms check enjoy hope love like babe baby
    """.split()  # noqa: SIM905
)
MEDIA_WORDS = ("video", "videos", "clip", "set", "pics", "photos", "photo", "pic", "gallery", "livestream")
HISTORY_CUES = (
    "last time", "you bought", "you unlocked", "you got", "you said", "you told me", "you mentioned",
    "remember", "your tip", "the tip", "again", "since you", "you asked",
)  # fmt: skip
APPRECIATION_CUES = (
    "thank", "thanks", "appreciate", "special", "favorite", "favourite", "vip", "only you", "just for you",
    "for you", "spoil", "best", "personal", "means a lot", "grateful", "merci", "gracias",
)  # fmt: skip
MISSED_CUES = (
    "miss", "missed", "been a while", "where have you been", "where'd you go", "haven't heard", "welcome back",
    "come back", "long time", "tu m'as manqué", "te extrañ",
)  # fmt: skip
WELCOME_CUES = ("welcome", "new here", "glad you", "so happy you", "subscribing", "joining", "bienvenue", "bienvenid")
HARD_SELL_CUES = ("unlock", "buy", "ppv", "purchase", "pay ")


@dataclass(frozen=True)
class Score:
    score: int
    factors: dict[str, int]
    suggestions: list[str] = field(default_factory=list)


@dataclass
class _Factor:
    points: int
    suggestion: str = ""


def _words(text: str) -> list[str]:
    return [w.replace("\u2019", "'") for w in _WORD.findall((text or "").lower())]


def _has_word(text: str, word: str) -> bool:
    if not word:
        return False
    return re.search(r"(?<!\w)" + re.escape(word.lower()) + r"(?!\w)", (text or "").lower()) is not None


def _has_cue(lowered: str, cues: Sequence[str]) -> bool:
    return any(cue in lowered for cue in cues)


def _content_words(text: str, *, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Words that can name a subject ("gym", "Biscuit", "beach"): three letters or more, not a
    function word, not an endearment."""
    return [w for w in _words(text) if len(w) >= 3 and w not in STOPWORDS and w not in CHAT_WORDS and w not in exclude]


def _money(amount: Decimal, currency: str) -> str:
    return f"${amount:,.0f}" if currency.upper() == "USD" else f"{amount:,.0f} {currency.upper()}"


def fan_call_name(fan: Fan) -> str:
    """What the fan is called in a message: their first name, else their username."""
    return (fan.first_name or fan.username or "").strip()


def purchase_subject(purchase: Purchase) -> tuple[list[str], str]:
    """The subject words of what was bought (from the PPV message's text) and a label for it,
    ("gym", "gym video"); ([], "") when the purchase says nothing about its content."""
    message = getattr(purchase, "message", None)
    text = getattr(message, "text", "") if message is not None else ""
    words = _content_words(text, exclude=SALES_WORDS | frozenset(MEDIA_WORDS))
    if not words:
        return [], ""
    media = next((w for w in _words(text) if w in MEDIA_WORDS), "")
    label = f"{words[0]} {media}".strip() if media else words[0]
    return words, label


# --- Factors ----------------------------------------------------------------------------------


def _name_factor(text: str, fan: Fan) -> _Factor:
    weight = WEIGHTS["uses name"]
    name = fan_call_name(fan)
    if not name:
        return _Factor(weight)
    if _has_word(text, name) or (fan.username and _has_word(text, fan.username)):
        return _Factor(weight)
    return _Factor(0, f"Use their name — {name}")


def _history_factor(text: str, fan_texts: list[str], purchases: Sequence[Purchase]) -> _Factor:
    weight = WEIGHTS["refers to history"]
    draft_words = set(_words(text))
    fan_words = {w for t in fan_texts[-5:] for w in _content_words(t)}
    subjects = [purchase_subject(p) for p in purchases]
    bought_words = {w for words, _ in subjects for w in words}
    if draft_words & (fan_words | bought_words):
        return _Factor(weight)
    label = next((label for _, label in subjects if label), "")
    if label:
        advice = f"Mention the {label} they bought"
    elif purchases:
        last = purchases[0]
        advice = f"Thank them for their last {PurchaseKind(last.kind).label.lower()} ({last.amount})"
    elif fan_texts and _content_words(fan_texts[-1]):
        excerpt = fan_texts[-1].strip().replace("\n", " ")
        excerpt = excerpt if len(excerpt) <= 40 else excerpt[:39].rstrip() + "…"
        advice = f"Pick up on what they wrote: “{excerpt}”"
    else:
        advice = "Refer to something they said or bought before"
    if _has_cue(text.lower(), HISTORY_CUES):
        return _Factor(weight // 2, advice)
    return _Factor(0, advice)


def _tier_factor(text: str, fan: Fan, name: str, currency: str, rules: FanRules, now: datetime) -> _Factor:
    lowered = text.lower()
    tier = spend_tier(fan.total_spent, rules)
    stage = lifecycle(fan, rules, now)
    who = name or "them"
    points, advice = 12, ""
    if tier in (Tier.WHALE, Tier.HIGH):
        if not _has_cue(lowered, APPRECIATION_CUES):
            points = 4
            spent = _money(fan.total_spent, currency)
            advice = f"Make {who} feel special: a {tier.label.lower()} fan who has spent {spent}"
    elif tier is Tier.FREE:
        if _PRICE.search(text) or _has_cue(lowered, HARD_SELL_CUES):
            points = 6
            advice = "They have never bought: tease first, keep the price for later"
    elif "?" not in text and not _has_cue(lowered, HARD_SELL_CUES):
        points = 8
        advice = f"Give {who} a reason to answer: end with a question"
    stage_points, stage_advice = 8, ""
    if stage in (Lifecycle.AT_RISK, Lifecycle.CHURNED, Lifecycle.EXPIRED):
        if not _has_cue(lowered, MISSED_CUES):
            stage_points = 2
            if stage is Lifecycle.EXPIRED:
                stage_advice = "Their subscription expired: tell them you miss them and invite them back"
            elif fan.last_active_at is not None:
                days = max(1, (now - fan.last_active_at).days)
                stage_advice = f"They have been quiet for {days} days: tell them you missed them"
            else:
                stage_advice = "They have gone quiet: tell them you missed them"
    elif stage is Lifecycle.NEW and not _has_cue(lowered, WELCOME_CUES):
        stage_points, stage_advice = 4, "New subscriber: welcome them"
    total = points + stage_points
    # The advice worth more points goes first.
    pairs = sorted([(12 - points, advice), (8 - stage_points, stage_advice)], reverse=True)
    return _Factor(total, next((a for _, a in pairs if a), ""))


def _emoji_count(text: str) -> int:
    return len(_EMOJI.findall(text or ""))


def signature_words(samples: Sequence[str], limit: int = 8) -> list[str]:
    """The creator's most frequent own words in their sample texts (slang included)."""
    counts: Counter[str] = Counter()
    for sample in samples:
        for word in set(_words(sample)):
            if len(word) >= 3 and (word not in STOPWORDS or word in {"omg", "lol", "haha"}):
                counts[word] += 1
    return [word for word, _ in counts.most_common(limit)]


def _tone_factor(text: str, creator: Creator) -> _Factor:
    weight = WEIGHTS["tone match"]
    samples = [s for s in (creator.sample_texts or []) if isinstance(s, str) and s.strip()]
    if not samples:
        return _Factor(
            weight // 2,
            f"Add a few of {creator.display_name}'s own messages to their persona so drafts can match their voice",
        )
    advice: list[tuple[int, str]] = []
    points = 0
    with_emoji = [s for s in samples if _emoji_count(s)]
    drafted = _emoji_count(text)
    rate = len(with_emoji) / len(samples)
    if rate >= 0.5 and drafted == 0:
        top = Counter(e for s in with_emoji for e in _EMOJI.findall(s)).most_common(1)[0][0]
        advice.append((8, f"Add an emoji: {len(with_emoji)} of {len(samples)} of their messages have one ({top})"))
    elif rate <= 0.2 and drafted >= 2:
        advice.append((8, f"Fewer emoji: {creator.display_name} rarely uses them"))
    else:
        points += 8
    signature = signature_words(samples)
    if not signature or set(_words(text)) & set(signature):
        points += 8
    else:
        quoted = ", ".join(f"“{w}”" for w in signature[:3])
        advice.append((8, f"Sound like {creator.display_name}: they often say {quoted}"))
    lettered = [s for s in samples if re.search(r"[^\W\d_]", s)]
    lower = [s for s in lettered if s == s.lower()]
    if lettered and len(lower) / len(lettered) >= 0.8 and text != text.lower():
        advice.append((4, f"Write in lower case, as {creator.display_name} does"))
    else:
        points += 4
    advice.sort(key=lambda pair: -pair[0])
    return _Factor(points, advice[0][1] if advice else "")


def _length_factor(text: str, fan: Fan, fan_texts: list[str]) -> _Factor:
    weight = WEIGHTS["length"]
    length = len(text.strip())
    limit = text_limit(fan.platform)
    if length > limit:
        return _Factor(0, f"Too long for {fan.get_platform_display()}: {length} characters, the limit is {limit}")
    lengths = [len(t.strip()) for t in fan_texts if t and t.strip()]
    if not lengths:
        if length > 2 * NO_FAN_TEXT_COMFORT:
            return _Factor(0, f"Shorter: direct messages read best under {NO_FAN_TEXT_COMFORT} characters")
        if length > NO_FAN_TEXT_COMFORT:
            return _Factor(8, f"Shorter: direct messages read best under {NO_FAN_TEXT_COMFORT} characters")
        return _Factor(weight)
    average = round(sum(lengths) / len(lengths))
    comfortable = max(60, 3 * average)
    if length > 2 * comfortable:
        return _Factor(0, f"Shorter: their messages average {average} characters")
    if length > comfortable:
        return _Factor(8, f"Shorter: their messages average {average} characters")
    if length < 15 and average >= 80:
        return _Factor(8, f"Longer: they write about {average} characters a message")
    return _Factor(weight)


# --- Public -----------------------------------------------------------------------------------


def personalization_score(
    *,
    text: str,
    fan: Fan,
    creator: Creator,
    recent_messages: list,
    purchases: Sequence[Purchase] = (),
    rules: FanRules | None = None,
    now: datetime | None = None,
) -> Score:
    """Score ``text`` as a message from ``creator`` to ``fan`` (see the module docstring).

    ``recent_messages``: the conversation's recent Message rows, in any order (the fan's own are
    used); ``purchases``: the fan's recent purchases, newest first, with their ``message``
    selected (``fan_purchases_recent``); ``rules``: the agency's fan rules (defaults otherwise)."""
    text = text or ""
    now = now or timezone.now()
    rules = rules if rules is not None else FanRules()
    ordered = sorted(
        (m for m in recent_messages if getattr(m, "direction", None) == Direction.INBOUND),
        key=lambda m: (m.created_at, m.pk or 0),
    )
    fan_texts = [m.text for m in ordered if m.text]
    purchases = sorted(purchases, key=lambda p: p.purchased_at, reverse=True)
    name = fan_call_name(fan)
    factors = {
        "uses name": _name_factor(text, fan),
        "refers to history": _history_factor(text, fan_texts, purchases),
        "fits the tier": _tier_factor(text, fan, name, creator.currency or "USD", rules, now),
        "tone match": _tone_factor(text, creator),
        "length": _length_factor(text, fan, fan_texts),
    }
    if not text.strip():
        factors = {key: _Factor(0, "") for key in factors}
    points = {key: max(0, min(WEIGHTS[key], factor.points)) for key, factor in factors.items()}
    ranked = sorted(
        ((WEIGHTS[key] - points[key], factor.suggestion) for key, factor in factors.items() if factor.suggestion),
        key=lambda pair: -pair[0],
    )
    suggestions = [suggestion for _, suggestion in ranked][:MAX_SUGGESTIONS]
    return Score(score=max(0, min(100, sum(points.values()))), factors=points, suggestions=suggestions)


def template_score(
    *,
    template: MessageTemplate,
    fan: Fan,
    creator: Creator,
    recent_messages: list,
    purchases: Sequence[Purchase] = (),
    rules: FanRules | None = None,
) -> tuple[Rendered, Score]:
    """The template rendered for ``fan`` and the rendering's score. A variable that fell back
    (no first name: "babe") costs what the missing value costs: the name is not in the text."""
    rendered = template_render(template.text, fan=fan, creator=creator)
    score = personalization_score(
        text=rendered.text,
        fan=fan,
        creator=creator,
        recent_messages=recent_messages,
        purchases=purchases,
        rules=rules,
    )
    return rendered, score
