"""The built-in writer's composer: replies, messages, captions, hashtags and ideas."""

# CJK punctuation is intentional:
# ruff: noqa: RUF001
from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any

from apps.ai.providers.builtin.phrases import PHRASE_BANKS
from apps.ai.providers.builtin.text import (
    _FAN_PLATFORMS,
    _HASHTAG_RE,
    _HASHTAG_SUFFIXES,
    _MY_NOUN_RE,
    _PUBLIC_PLATFORMS,
    _TAG_LIST_RE,
    _TASK_ALIASES,
    _TONE_ALIASES,
    _TOPIC_STOPWORDS,
    _WORD_RE,
    DEFAULT_HASHTAG_COUNT,
    DEFAULT_JSON_LIST_ITEMS,
    MAX_ECHO_CHARS,
    MAX_HASHTAGS,
    MAX_ITEMS,
    _as_dict,
    _avoid_matcher,
    _cap_first,
    _fan_kind,
    _float,
    _int,
    _language,
    _messages,
    _normalise_tag,
    _seed,
    _str_list,
    _text,
    _voice_profile,
)
from apps.ai.types import AIRequest


class _Composer:
    """One per request, holding the parsed context and the seeded RNG."""

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
        reply_to = ctx.get("reply_to")
        if isinstance(reply_to, str) and reply_to.strip():
            self.last_user = reply_to[:4000]  # the fan's message, when the user message is the task
        self.angle = _text(ctx.get("angle"), 20).lower()
        self.base_text = _text(ctx.get("base_text"), 4000)
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
        if self.angle in ("question", "tease", "appreciation"):
            return self._angled_reply()
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

    def _angled_reply(self) -> str:
        """An inbox draft with one angle: each of a request's drafts takes another."""
        generic = self.kind == "generic" and self.topic
        body = self._pick("topic") if generic else self._pick("answer", self.kind, niche=0.5)
        if self.angle == "question":
            end = self._pick("ask")
        elif self.angle == "tease":
            end = self._pick("react", "teasing" if self.tone != "flirty" else "flirty")
        else:
            end = self._pick("vip") if self.vip else self._pick("react", "grateful")
        if end == body:
            end = self._pick("close")
        return self._join([self.greeting(), body, end])

    def message(self) -> str:
        if self.angle in ("curiosity", "personal", "loyalty"):
            first = self._pick("react", "grateful") if self.angle == "loyalty" else self.greeting()
            middle = self._pick("tease", niche=1.0)
            if self.angle == "personal":
                end = self._pick("vip") if self.vip else self._pick("ask")
            else:
                end = self._pick("cta_fan")
            parts = [self.greeting(), first, middle, end] if self.angle == "loyalty" else [first, middle, end]
            return self._join(parts[:4])
        parts = [self.greeting(), self._pick("tease", niche=1.0)]
        if self.vip and self.rng.random() < 0.4:
            parts.append(self._pick("vip"))
        else:
            parts.append(self._pick(self.rng.choice(("cta_fan", "cta_fan", "ask"))))
        return self._join(parts[:3])

    def rewrite(self) -> str:
        """``base_text`` (a message written for this fan, such as a campaign's) made personal:
        a greeting by name when the text does not name the fan yet, and a question or a word
        for a big spender after it. The text itself is kept as written, so its offer stands."""
        if not self.base_text.strip():
            return self.message()
        named = bool(self.name) and self.name.lower() in self.base_text.lower()
        parts = [] if named or not self.name else [self.greeting()]
        parts += [self.base_text.strip(), self._pick("vip") if self.vip else self._pick("ask")]
        return self._join(parts)

    def _producer(self):
        return {
            "reply": self.reply,
            "message": self.message,
            "caption": self.caption,
            "idea": self.idea,
            "rewrite": self.rewrite,
        }[self.task]

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
        produce = self._producer()
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
            producer = self._producer()
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
