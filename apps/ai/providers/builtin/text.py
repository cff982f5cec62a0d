"""Constants, input parsing and text helpers of the built-in writer."""

# CJK punctuation is intentional:
# ruff: noqa: RUF001
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from apps.ai.providers.builtin.phrases import PHRASE_BANKS
from apps.ai.types import AIRequest

BUILTIN_MODEL = "huntaze-builtin-1"

TASKS = ("reply", "message", "caption", "hashtags", "idea")
TONES = ("flirty", "friendly", "playful", "grateful", "teasing")
DEFAULT_HASHTAG_COUNT = 8
MAX_HASHTAGS = 30
MAX_ITEMS = 20  # JSON list items and repeated text blocks
DEFAULT_JSON_LIST_ITEMS = 3
MAX_ECHO_CHARS = 60
_SEED_KEYS = (
    "creator",
    "fan",
    "platform",
    "tone",
    "task",
    "count",
    "json_example",
    "language",
    "niche",
    "persona",
    "voice",
    "sample_texts",
    "avoid_words",
    "avoid_topics",
    "display_name",
    "reply_to",
    "angle",
    "base_text",
)


def estimate_tokens(text: str) -> int:
    """Rough token count: ceil(len / 4), at least 1 for non-empty text, 0 for empty."""
    if not text:
        return 0
    return max(1, -(-len(text) // 4))


_HASHTAG_SUFFIXES = ("life", "lover", "daily", "vibes", "creator", "inspo", "community", "goals")
_PUBLIC_PLATFORMS = frozenset(
    {"instagram", "tiktok", "twitter", "x", "reddit", "threads", "snapchat", "youtube", "facebook", "bluesky"}
)
_FAN_PLATFORMS = frozenset(
    {"onlyfans", "fansly", "fanvue", "patreon", "mym", "loyalfans", "manyvids", "fancentro", "justforfans"}
)
_TASK_ALIASES = {
    "reply": "reply",
    "replies": "reply",
    "chat": "reply",
    "answer": "reply",
    "message": "message",
    "messages": "message",
    "dm": "message",
    "mass_message": "message",
    "ppv": "message",
    "caption": "caption",
    "captions": "caption",
    "hashtags": "hashtags",
    "hashtag": "hashtags",
    "tags": "hashtags",
    "idea": "idea",
    "ideas": "idea",
    "rewrite": "rewrite",
}
_TONE_ALIASES = {
    "flirty": "flirty",
    "flirt": "flirty",
    "flirtatious": "flirty",
    "romantic": "flirty",
    "sexy": "flirty",
    "seductive": "flirty",
    "sultry": "flirty",
    "friendly": "friendly",
    "sweet": "friendly",
    "warm": "friendly",
    "casual": "friendly",
    "kind": "friendly",
    "professional": "friendly",
    "playful": "playful",
    "fun": "playful",
    "funny": "playful",
    "silly": "playful",
    "bubbly": "playful",
    "goofy": "playful",
    "grateful": "grateful",
    "thankful": "grateful",
    "appreciative": "grateful",
    "teasing": "teasing",
    "tease": "teasing",
    "bratty": "teasing",
    "brat": "teasing",
    "cheeky": "teasing",
    "mysterious": "teasing",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Fan-message categories: whole lowercase tokens, plus substrings for scripts without spaces.
_KIND_WORDS = {
    "purchase": _words(
        "tip tipped bought unlocked purchased paid ppv propina compré pagué pourboire acheté payé "
        "trinkgeld gekauft bezahlt mancia comprato pagato gorjeta comprei paguei fooi gekocht betaald napiwek "
        "kupiłem kupiłam zapłaciłem"
    ),
    "compliment": _words(
        "beautiful gorgeous hot sexy cute pretty stunning amazing lovely perfect guapa hermosa linda preciosa bonita "
        "belle magnifique jolie sublime canon schön hübsch wunderschön heiß süß bella bellissima stupenda carina "
        "gostosa maravilhosa mooi prachtig knap piękna śliczna cudowna"
    ),
    "greeting": _words(
        "hi hey hello heya hiya yo morning evening hola buenas salut bonjour bonsoir coucou hallo moin servus ciao "
        "salve olá oi hoi hee cześć hej siema"
    ),
}
_KIND_SUBSTRINGS = {
    "purchase": ("チップ", "買った", "購入"),
    "compliment": ("かわいい", "可愛い", "きれい", "綺麗", "素敵"),
    "greeting": ("こんにちは", "こんばんは", "おはよう", "やっほー"),
}
_QUESTION_STARTS = _words(
    "what when where why how who which do does did are is can could would will wanna "
    "qué cómo cuándo dónde por quoi comment quand où est wie wann wo warum kannst bist cosa quando "
    "dove perché o como quando onde wat hoe waar waarom co jak kiedy gdzie dlaczego"
)
_TOPIC_STOPWORDS = _words(
    "day life time self own way mind head heart phone name god bad best first last new old life's friend "
    "the a an it this that these those"
)

_EMOJI_RE = re.compile(
    "(?:[\U0001f1e6-\U0001f1ff]{2})"
    "|(?:[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55\u2763\u2764\u2665]"
    "\ufe0f?[\U0001f3fb-\U0001f3ff]?"
    "(?:\u200d[\U0001f300-\U0001faff\u2600-\u27bf\u2640\u2642\u2764]\ufe0f?[\U0001f3fb-\U0001f3ff]?)*)"
)
_CONTROL_RE = re.compile("[\x00-\x1f\x7f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SPACES_RE = re.compile(r"\s+")
_HASHTAG_RE = re.compile(r"#(\w{2,40})")
_TAG_LIST_RE = re.compile(r"(?i)\b(?:tags|hashtags|keywords|topics)\s*[:=]\s*([^\n]{1,300})")
_MY_NOUN_RE = re.compile(r"(?i)\bmy\s+([a-z]{3,20})\b")
_WORD_RE = re.compile(r"\w+")
_DELTA_RE = re.compile(r"\S+?(?:[。、！？]+|\s+|$)|\s+")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any, limit: int = 200) -> str:
    """A one-line, control-free string from any scalar (other types give "")."""
    if value is None or isinstance(value, bool):
        return ""
    if not isinstance(value, str):
        if isinstance(value, int | float | Decimal):
            value = str(value)
        else:
            return ""
    value = _SPACES_RE.sub(" ", _CONTROL_RE.sub(" ", value[: limit * 4])).strip()
    if len(value) > limit:
        cut = value[:limit]
        space = cut.rfind(" ")
        value = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-")
    return value


def _str_list(value: Any, *, limit: int = 50, item_limit: int = 1000, split_commas: bool = False) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = value.split(",") if split_commas else [value]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        return []
    out = []
    for item in items[:limit]:
        if isinstance(item, str):
            text = _CONTROL_RE.sub(" ", item[:item_limit]).strip()
            if text:
                out.append(text)
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip()[:9])
    return None


def _float(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return result if result == result and abs(result) != float("inf") else 0.0


def _cap_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def _language(value: Any) -> str:
    code = _text(value, 20).lower().replace("_", "-").split("-")[0]
    return code if code in PHRASE_BANKS else "en"


def _seed(request: AIRequest, ctx: Mapping[str, Any]) -> int:
    messages = [[str(role), str(content)] for role, content in _messages(request)]
    payload = {
        "f": str(request.feature),
        "j": bool(request.json_mode),
        "m": messages,
        "c": {key: ctx[key] for key in _SEED_KEYS if key in ctx},
    }
    try:
        blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # non-string keys of mixed types, cycles
        blob = repr(payload)
    digest = hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _messages(request: AIRequest) -> list[tuple[str, str]]:
    out = []
    for message in request.messages or ():
        if isinstance(message, Mapping):
            role, content = message.get("role", ""), message.get("content", "")
        else:
            role, content = getattr(message, "role", ""), getattr(message, "content", "")
        out.append((str(role), content if isinstance(content, str) else str(content or "")))
    return out


class _Avoid:
    """Whole-word, case-insensitive removal of avoided words and topic phrases."""

    def __init__(self, terms: tuple[str, ...]) -> None:
        # hashtags are compound words, so terms of 3+ characters are also refused inside them
        self.compact = tuple(c for c in (re.sub(r"\W", "", t.lower()) for t in terms) if len(c) >= 3)
        if terms:
            parts = sorted({r"\s+".join(re.escape(piece) for piece in t.split()) for t in terms}, key=len, reverse=True)
            self.regex: re.Pattern[str] | None = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.I)
        else:
            self.regex = None

    def hits(self, text: str) -> bool:
        return bool(self.regex and self.regex.search(text))

    def tag_ok(self, tag: str) -> bool:
        return not any(term in tag for term in self.compact) and not self.hits(tag)

    def scrub(self, text: str) -> str:
        if not self.regex:
            return text
        for _ in range(4):
            cleaned = self.regex.sub("", text)
            if cleaned == text:
                break
            text = _tidy(cleaned)
        return text


@lru_cache(maxsize=512)
def _avoid_matcher(terms: tuple[str, ...]) -> _Avoid:
    return _Avoid(terms)


def _tidy(text: str) -> str:
    """Repair spacing and punctuation left behind after removing words."""
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+([,.!?;:…。、！？])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r",\s*([.!?])", r"\1", text)
    text = re.sub(r"(^|[.!?]\s+)[,;:]\s*", r"\1", text)
    text = re.sub(r"[“\"]\s*[”\"]", "", text)
    text = re.sub(r"(?m)^[ \t]+|[ \t]+$", "", text)
    return text.strip()


@lru_cache(maxsize=512)
def _voice_profile(samples: tuple[str, ...], voice: str) -> tuple[tuple[str, ...], bool, bool]:
    """(emoji by frequency, lowercase-only, avoids exclamation marks) from the creator's samples."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    position = 0
    for text in (*samples, voice):
        for match in _EMOJI_RE.finditer(text[:2000]):
            emoji = match.group(0)
            counts[emoji] += 1
            first.setdefault(emoji, position)
            position += 1
    emoji = tuple(sorted(counts, key=lambda e: (-counts[e], first[e]))[:6])
    cased = [s for s in samples if s.lower() != s.upper()]
    lowercase = bool(cased) and all(s == s.lower() for s in cased)
    no_exclaim = bool(cased) and not any("!" in s or "！" in s for s in samples)
    return emoji, lowercase, no_exclaim


def _fan_kind(message: str) -> str:
    lowered = message.lower()[:2000]
    tokens = _WORD_RE.findall(lowered)
    token_set = set(tokens)
    for kind in ("purchase", "compliment"):
        if token_set & _KIND_WORDS[kind] or any(s in lowered for s in _KIND_SUBSTRINGS[kind]):
            return kind
    if "?" in lowered or "？" in lowered or (tokens and tokens[0] in _QUESTION_STARTS and len(tokens) > 2):
        return "question"
    if tokens and (tokens[0] in _KIND_WORDS["greeting"] and len(tokens) <= 5):
        return "greeting"
    if any(s in lowered for s in _KIND_SUBSTRINGS["greeting"]):
        return "greeting"
    return "generic"


def _normalise_tag(raw: str) -> str:
    tag = re.sub(r"\W+", "", raw.lower()).strip("_")
    if len(tag) < 2 or len(tag) > 40 or tag.isdigit():
        return ""
    return tag
