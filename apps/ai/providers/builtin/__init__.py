"""The built-in offline provider: deterministic, persona-aware text with no API key and no I/O.

Every AI feature must work on a fresh machine, so this provider writes short chat replies,
outbound messages, captions, hashtags and content ideas from small per-language phrase banks and
the creator's own data in ``request.context``. It is pure Python and takes tens of microseconds.

Rules another developer can rely on:

- Output is a pure function of ``feature``, ``json_mode``, the messages and the recognised
  context keys (see ``_SEED_KEYS``); ``system``, ``temperature`` and unknown context keys do not
  change it. The RNG is seeded from blake2b, never ``hash()``, so it is stable across processes.
- Context (all optional, wrong types are ignored): ``creator`` {display_name, niche, persona,
  voice, sample_texts, avoid_words, avoid_topics, language}; top-level ``fan`` {display_name,
  notes, total_spent}, ``platform``, ``tone``, ``task``, ``count``, ``json_example``. Any of the
  creator keys may also be given top-level (top-level wins; avoid lists are merged).
- Words from ``avoid_words`` (whole word, case-insensitive) and phrases from ``avoid_topics`` are
  removed from every generated string, and hashtags containing them are never produced.
- Message content is untrusted: it only picks a reply category and, in English, echoes at most
  one short noun ("my dog" -> "your dog"); it never changes the task or the output format.
- ``builtin_generate`` never raises: an unexpected bug is logged and a minimal safe text (still
  valid JSON in JSON mode) is returned instead.
"""

# CJK punctuation is intentional:
# ruff: noqa: RUF001
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from apps.ai.providers.base import Provider
from apps.ai.providers.builtin.phrases import PHRASE_BANKS
from apps.ai.types import AIRequest, ProviderResult, Usage

__all__ = ["BUILTIN_MODEL", "PHRASE_BANKS", "BuiltinProvider", "builtin_generate", "estimate_tokens"]

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------------------------
# The composer: one per request, holding the parsed context and the seeded RNG.
# --------------------------------------------------------------------------------------------


class _Composer:
    def __init__(self, request: AIRequest) -> None:
        ctx = request.context if isinstance(request.context, Mapping) else {}
        creator = _as_dict(ctx.get("creator"))

        def option(key: str) -> Any:
            value = ctx.get(key)
            return value if value is not None else creator.get(key)

        self.rng = random.Random(_seed(request, ctx))
        self.lang = _language(option("language"))
        self.bank = PHRASE_BANKS[self.lang]
        self.sep = self.bank.get("sep", " ")

        terms = _str_list(creator.get("avoid_words"), limit=200, item_limit=100, split_commas=True)
        terms += _str_list(ctx.get("avoid_words"), limit=200, item_limit=100, split_commas=True)
        terms += _str_list(creator.get("avoid_topics"), limit=100, item_limit=100, split_commas=True)
        terms += _str_list(ctx.get("avoid_topics"), limit=100, item_limit=100, split_commas=True)
        self.avoid = _avoid_matcher(tuple(sorted({t.strip() for t in terms if t.strip()})))

        samples = _str_list(option("sample_texts"), limit=30, item_limit=2000)
        voice = _text(option("voice"), 500)
        persona = _text(option("persona"), 500)
        self.emoji, self.lowercase, self.no_exclaim = _voice_profile(tuple(samples), voice)
        self.emoji = tuple(e for e in self.emoji if not self.avoid.hits(e))

        self.tone = self._tone(option("tone"), f"{voice} {persona}")
        niche = option("niche")
        if isinstance(niche, list | tuple):
            niche = next((n for n in niche if isinstance(n, str) and n.strip()), "")
        self.niche = self._clean_dynamic(_text(niche, 40))

        fan = _as_dict(ctx.get("fan")) or _as_dict(creator.get("fan"))
        self.name = self._clean_dynamic(_text(fan.get("display_name"), 40))
        self.vip = _float(fan.get("total_spent")) >= 100
        self.platform = _text(option("platform"), 40).lower()
        self.count = _int(ctx.get("count"))
        self.task = self._task(ctx.get("task"), request.feature)

        messages = _messages(request)
        user_texts = [content for role, content in messages if role == "user"]
        self.last_user = user_texts[-1][:4000] if user_texts else ""
        self.prompt = "\n".join(text[:4000] for text in user_texts[-3:])
        self.kind = _fan_kind(self.last_user) if self.last_user.strip() else "greeting"
        self.topic = self._topic(self.last_user) if self.lang == "en" else ""
        self._idea: tuple[str, str] | None = None

    # -- context parsing ---------------------------------------------------------------------

    def _clean_dynamic(self, value: str) -> str:
        return "" if not value or self.avoid.hits(value) else value

    @staticmethod
    def _tone(value: Any, description: str) -> str:
        tone = _TONE_ALIASES.get(_text(value, 30).lower())
        if tone:
            return tone
        best = None
        lowered = description.lower()
        for word in _WORD_RE.findall(lowered):
            if word in _TONE_ALIASES:
                best = _TONE_ALIASES[word]
                break
        return best or "friendly"

    @staticmethod
    def _task(value: Any, feature: Any) -> str:
        task = _TASK_ALIASES.get(_text(value, 30).lower().replace("-", "_").replace(" ", "_"))
        if task:
            return task
        name = str(feature or "").lower()
        for needle, inferred in (
            ("hashtag", "hashtags"),
            ("idea", "idea"),
            ("caption", "caption"),
            ("message", "message"),
            ("reply", "reply"),
        ):
            if needle in name:
                return inferred
        return "reply"

    def _topic(self, message: str) -> str:
        for match in _MY_NOUN_RE.finditer(message[:1000]):
            noun = match.group(1).lower()
            if noun not in _TOPIC_STOPWORDS and not self.avoid.hits(noun):
                return f"your {noun}"[:MAX_ECHO_CHARS]
        return ""

    # -- phrase picking ----------------------------------------------------------------------

    def _options(self, key: str, sub: str | None = None) -> list[Any]:
        value = self.bank.get(key)
        if value is None:
            value = PHRASE_BANKS["en"][key]
        if sub is not None:
            table = value
            value = table.get(sub) or table.get("default")
            if not value:
                fallback = PHRASE_BANKS["en"][key]
                value = fallback.get(sub) or fallback["default"]
        return list(value)

    def _pick(self, key: str, sub: str | None = None, *, niche: float = 0.0) -> str:
        """A formatted phrase; with a niche, ``niche`` is the chance of forcing one that names it."""
        options = self._options(key, sub)
        with_niche = [o for o in options if "{niche}" in str(o)]
        without = [o for o in options if "{niche}" not in str(o)]
        if not self.niche:
            options = without or options
        elif with_niche and self.rng.random() < niche:
            options = with_niche
        clean = [o for o in options if not self.avoid.hits(str(o))]
        template = self.rng.choice(clean or options)
        return self._fill(template)

    def _fill(self, template: str) -> str:
        pets = self._options("pet", self.tone)
        pet = self.rng.choice([p for p in pets if not self.avoid.hits(p)] or pets)
        return template.format(name=self.name, pet=pet, niche=self.niche or "", topic=self.topic or "")

    def _join(self, parts: list[str], *, emoji: bool = True) -> str:
        parts = [p for p in parts if p]
        if emoji and self.emoji and parts:
            top = list(self.emoji[:4])
            # the creator's most frequent emoji is the likeliest; a second one is optional
            first = self.rng.choices(top, weights=(4, 2, 1, 1)[: len(top)])[0]
            chosen = [first]
            if len(top) > 1 and self.rng.random() < 0.35:
                chosen.append(self.rng.choice([e for e in top if e != first]))
            for index, symbol in enumerate(chosen):
                target = len(parts) - 1 if index == 0 else self.rng.randrange(len(parts))
                parts[target] = f"{parts[target]} {symbol}"
        return self.sep.join(parts)

    # -- generators (raw text; ``finish`` applies voice and avoid rules) ---------------------

    def greeting(self) -> str:
        return self._pick("greet_named") if self.name else self._pick("greet_pet")

    def reply(self) -> str:
        parts = []
        if self.name or self.rng.random() < 0.5:
            parts.append(self.greeting())
        kind = self.kind
        if kind == "generic" and self.topic and self.rng.random() < 0.6:
            body = self._pick("topic")
        elif kind in ("generic", "greeting") and self.rng.random() < 0.5:
            body = self._pick("react", self.tone)
        else:
            body = self._pick("answer", kind, niche=0.5)
        parts.append(body)
        if self.vip and len(parts) < 3 and self.rng.random() < 0.4:
            parts.append(self._pick("vip"))
        if len(parts) < 3 and self.rng.random() < 0.7:
            asked = body.rstrip().endswith(("?", "？"))
            parts.append(self._pick("close" if asked else self.rng.choice(("ask", "ask", "close"))))
        return self._join(parts[:3])

    def message(self) -> str:
        parts = [self.greeting(), self._pick("tease", niche=1.0)]
        if self.vip and self.rng.random() < 0.4:
            parts.append(self._pick("vip"))
        else:
            parts.append(self._pick(self.rng.choice(("cta_fan", "cta_fan", "ask"))))
        return self._join(parts[:3])

    def cta(self) -> str:
        if self.platform in _PUBLIC_PLATFORMS:
            return self._pick("cta_public")
        if self.platform in _FAN_PLATFORMS or self.task == "message":
            return self._pick("cta_fan")
        return self._pick(self.rng.choice(("cta_public", "cta_fan")))

    def caption(self) -> str:
        parts = []
        if self.rng.random() < 0.6:
            parts.append(self._pick("hook"))
        parts.append(self._pick("caption", niche=1.0))
        parts.append(self.cta())
        return self._join(parts)

    def question(self) -> str:
        return self._pick("ask")

    def _pick_idea(self) -> tuple[str, str]:
        options = self._options("ideas")
        with_niche = [o for o in options if "{niche}" in o[0] + o[1]]
        without = [o for o in options if "{niche}" not in o[0] + o[1]]
        if not self.niche:
            options = without or options
        elif with_niche and self.rng.random() < 0.8:
            options = with_niche
        clean = [o for o in options if not self.avoid.hits(o[0] + " " + o[1])]
        title, description = self.rng.choice(clean or options)
        return _cap_first(self._fill(title)), self._fill(description)

    def object_idea(self) -> tuple[str, str]:
        if self._idea is None:
            self._idea = self._pick_idea()
        return self._idea

    def idea(self) -> str:
        title, description = self._pick_idea()
        return f"{title}\n{description}"

    def hashtag_list(self, n: int) -> list[str]:
        n = max(1, min(MAX_HASHTAGS, n))
        candidates: list[str] = []
        prompt_tags = _HASHTAG_RE.findall(self.prompt)[:15]
        for match in _TAG_LIST_RE.finditer(self.prompt):
            prompt_tags += [t for t in re.split(r"[,;/|#]+", match.group(1)) if t.strip()][:15]
        candidates += prompt_tags[:20]
        words = [w for w in _WORD_RE.findall(self.niche.lower()) if len(w) >= 3]
        compact = "".join(_WORD_RE.findall(self.niche.lower()))
        pool: list[str] = []
        if compact:
            candidates.append(compact)
            candidates += words[:3]
            bases = [compact] if len(words) <= 1 else [compact, *words[:2]]
            pool += [base + suffix for base in bases for suffix in _HASHTAG_SUFFIXES]
        pool += list(self.bank.get("hashtags", ())) + (
            [] if self.lang == "en" else list(PHRASE_BANKS["en"]["hashtags"])
        )
        self.rng.shuffle(pool)
        candidates += pool
        out: list[str] = []
        seen: set[str] = set()
        for raw in candidates:
            tag = _normalise_tag(raw)
            if tag and tag not in seen and self.avoid.tag_ok(tag):
                seen.add(tag)
                out.append(f"#{tag}")
                if len(out) == n:
                    return out
        bases = [b for b in (compact, "post", "creator", "daily", "new", "tag") if b and self.avoid.tag_ok(b)] or ["n"]
        index = 1
        while len(out) < n and index < 10_000:
            tag = f"{bases[index % len(bases)]}{index}"
            if tag not in seen and self.avoid.tag_ok(tag):
                seen.add(tag)
                out.append(f"#{tag}")
            index += 1
        return out

    def hashtags(self, n: int | None = None) -> str:
        return " ".join(self.hashtag_list(n if n is not None else (self.count or DEFAULT_HASHTAG_COUNT)))

    def main(self) -> str:
        if self.task == "hashtags":
            return self.hashtags()
        produce = {"reply": self.reply, "message": self.message, "caption": self.caption, "idea": self.idea}[self.task]
        blocks = max(1, min(MAX_ITEMS, self.count or 1))
        return "\n\n".join(self.finish(produce()) for _ in range(blocks))

    # -- voice and safety --------------------------------------------------------------------

    def finish(self, text: str) -> str:
        if self.no_exclaim:
            text = re.sub(r"\?!+", "?", text)
            text = re.sub(r"!+", ".", text).replace("！", "。").replace("¡", "")
        if self.lowercase:
            text = text.lower()
        text = self.avoid.scrub(text)
        return text if text.strip() else ""

    # -- JSON ------------------------------------------------------------------------------

    def json_text(self, example: Any) -> str:
        if isinstance(example, str):
            try:
                example = json.loads(example)
            except ValueError:
                example = None
        if isinstance(example, Mapping):
            value = self._json_object(example, 0)
        else:
            value = {"text": self.main() or self._safe_phrase()}
        return json.dumps(value, ensure_ascii=False)

    def _json_object(self, example: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        saved, self._idea = self._idea, None
        try:
            return {
                key if isinstance(key, str | int | float | bool) or key is None else str(key): self._json_value(
                    str(key), value, depth + 1
                )
                for key, value in example.items()
            }
        finally:
            self._idea = saved

    def _json_value(self, key: str, example: Any, depth: int) -> Any:
        if depth > 8:
            return example if isinstance(example, str | int | float | bool) or example is None else None
        if isinstance(example, bool):
            return self.rng.random() < 0.5
        if isinstance(example, int):
            return self._json_int(key, example)
        if isinstance(example, float):
            return self._json_float(key, example)
        if isinstance(example, Mapping):
            return self._json_object(example, depth)
        if isinstance(example, list | tuple):
            n = max(1, min(MAX_ITEMS, self.count or DEFAULT_JSON_LIST_ITEMS))
            element = example[0] if example else ""
            if isinstance(element, str):
                return self._string_items(key, n)
            return [self._json_value(key, element, depth + 1) for _ in range(n)]
        if example is None:
            return None
        return self._string_for(key) or self._safe_phrase()

    def _json_int(self, key: str, example: int) -> int:
        lowered = key.lower()
        if "count" in lowered and self.count:
            return self.count
        if "score" in lowered or "rating" in lowered:
            top = 10 if abs(example) <= 10 else 100
            return self.rng.randint(max(1, top // 2), top)
        if any(w in lowered for w in ("price", "amount", "usd", "cost", "tip")):
            return self.rng.randint(5, 50)
        top = max(10, abs(example) * 2)
        return self.rng.randint(0 if example >= 0 else -top, top)

    def _json_float(self, key: str, example: float) -> float:
        if 0.0 <= example <= 1.0:
            return round(self.rng.uniform(0.55, 0.95), 2)
        top = max(10.0, abs(example) * 2)
        value = round(self.rng.uniform(0.0 if example >= 0 else -top, top), 2)
        return float(value)

    def _key_kind(self, key: str) -> str:
        lowered = key.lower()
        for needles, kind in (
            (("hashtag", "tags"), "hashtags"),
            (("caption",), "caption"),
            (("title", "headline"), "title"),
            (("description", "desc", "summary", "explanation", "rationale", "why"), "description"),
            (("idea", "concept"), "idea"),
            (("question",), "question"),
            (("cta", "call_to_action", "action"), "cta"),
            (("greeting", "opener", "hello"), "greeting"),
            (("emoji",), "emoji"),
            (("tone", "mood"), "tone"),
            (("language", "lang", "locale"), "language"),
        ):
            if any(n in lowered for n in needles):
                return kind
        return "main"

    def _string_for(self, key: str, *, item: bool = False) -> str:
        kind = self._key_kind(key)
        if kind == "hashtags":
            return self.hashtags(1 if item else None)
        if kind == "title":
            return self.finish(self._pick_idea()[0] if item else self.object_idea()[0])
        if kind == "description":
            return self.finish(self._pick_idea()[1] if item else self.object_idea()[1])
        if kind == "idea":
            title, description = self._pick_idea()
            return self.finish(title if item else f"{title}: {description}")
        if kind == "emoji":
            symbols = list(self.emoji) or [e for e in self._options("emoji", self.tone) if not self.avoid.hits(e)]
            return self.rng.choice(symbols) if item or len(symbols) < 2 else " ".join(self.rng.sample(symbols, 2))
        if kind == "tone":
            return self.tone
        if kind == "language":
            return self.lang
        producer = {
            "caption": self.caption,
            "question": self.question,
            "cta": self.cta,
            "greeting": self.greeting,
        }.get(kind)
        if producer is None:
            if self.task == "hashtags":
                return self.hashtags()
            producer = {"reply": self.reply, "message": self.message, "caption": self.caption, "idea": self.idea}[
                self.task
            ]
        return self.finish(producer())

    def _string_items(self, key: str, n: int) -> list[str]:
        if self._key_kind(key) == "hashtags":
            return self.hashtag_list(n)
        items: list[str] = []
        for _ in range(n * 4):
            text = self._string_for(key, item=True) or self._safe_phrase()
            if text not in items:
                items.append(text)
                if len(items) == n:
                    break
        while len(items) < n:
            items.append(items[len(items) % max(1, len(items))] if items else self._safe_phrase())
        return items

    def _safe_phrase(self) -> str:
        for key in ("close", "ask"):
            for phrase in self._options(key):
                text = self.finish(phrase)
                if text:
                    return text
        return "…"

    def generate(self, json_mode: bool, example: Any) -> str:
        if json_mode:
            return self.json_text(example)
        return self.main() or self._safe_phrase()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def builtin_generate(request: AIRequest) -> str:
    """The deterministic text for ``request`` (valid JSON text when ``request.json_mode``)."""
    try:
        composer = _Composer(request)
        ctx = request.context if isinstance(request.context, Mapping) else {}
        return composer.generate(bool(request.json_mode), ctx.get("json_example"))
    except Exception:  # a bug must never break the last-resort provider
        logger.exception("builtin provider failed for feature %r; returning the safe fallback", request.feature)
        return _emergency_text(request)


def _emergency_text(request: AIRequest) -> str:
    text = "Thank you for your message, talk soon."
    try:
        ctx = request.context if isinstance(request.context, Mapping) else {}
        if not request.json_mode:
            return text
        example = ctx.get("json_example")
        if isinstance(example, Mapping):
            defaults = {bool: False, int: 0, float: 0.0, str: text}
            value = {
                str(k): defaults.get(type(v), [] if isinstance(v, list | tuple) else None) for k, v in example.items()
            }
            return json.dumps(value, ensure_ascii=False)
    except Exception:
        logger.exception("builtin provider fallback failed")
    return json.dumps({"text": text}) if request.json_mode else text


def _input_tokens(request: AIRequest) -> int:
    contents = [content for _role, content in _messages(request)]
    return estimate_tokens((request.system or "") + "".join(contents))


def _deltas(text: str) -> list[str]:
    """Word-sized pieces (trailing whitespace attached) whose concatenation is exactly ``text``."""
    pieces = _DELTA_RE.findall(text)
    return pieces if "".join(pieces) == text else [text]


class BuiltinProvider(Provider):
    """Offline, deterministic provider; always available, never raises on valid input."""

    name = "builtin"
    kind = "builtin"
    models = (BUILTIN_MODEL,)

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name

    def _result(self, request: AIRequest, text: str, model: str) -> ProviderResult:
        usage = Usage(input_tokens=_input_tokens(request), output_tokens=estimate_tokens(text), cached_input_tokens=0)
        return ProviderResult(text=text, model=model or BUILTIN_MODEL, usage=usage, finish_reason="stop")

    async def complete(self, request: AIRequest, model: str, timeout: float) -> ProviderResult:
        return self._result(request, builtin_generate(request), model)

    async def stream(self, request: AIRequest, model: str, timeout: float) -> AsyncIterator[str | ProviderResult]:
        text = builtin_generate(request)
        for index, piece in enumerate(_deltas(text)):
            yield piece
            if index % 16 == 15:
                await asyncio.sleep(0)  # let other tasks (and cancellation) in on long outputs
        yield self._result(request, text, model)
