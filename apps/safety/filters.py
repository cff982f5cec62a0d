"""The filters: the creator's do-not-say words and topics, and explicit wording on mainstream platforms.

Part of ``apps.safety``; its docstring describes the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from apps.safety.base import AVOID_TOPIC, AVOID_WORD, PLATFORM_EXPLICIT, Violation
from apps.safety.text import _category, _lead, _words

# -- filters --------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return text.casefold().replace("\u2019", "'")


def _phrase_pattern(words: list[str], last: Iterable[str] = ()) -> str:
    def esc(word: str) -> str:
        return re.sub("['\u2019]", "['\u2019]", re.escape(word))

    parts = [esc(w) for w in words]
    if last:
        parts[-1] = "(?:" + "|".join(esc(w) for w in sorted(set(last), key=len, reverse=True)) + ")"
    return r"(?<!\w)" + r"[\s\-]+".join(parts) + r"(?!\w)"


def _clean_list(items: Iterable[object] | None) -> list[str]:
    seen: dict[str, str] = {}
    for item in items or ():
        if isinstance(item, str) and item.strip():
            seen.setdefault(" ".join(item.split()).casefold(), " ".join(item.split()))
    return sorted(seen.values(), key=len, reverse=True)  # longer phrases first


@lru_cache(maxsize=256)
def _avoid_word_patterns(words: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...]:
    """(word, its parts for a quick substring pre-check, pattern)."""
    result = []
    for word in words:
        parts = word.split()
        result.append((word, tuple(_fold(p) for p in parts), re.compile(_phrase_pattern(parts), re.IGNORECASE)))
    return tuple(result)


_IRREGULAR = {
    "foot": "feet", "man": "men", "woman": "women", "child": "children", "person": "people", "tooth": "teeth",
    "mouse": "mice", "goose": "geese", "wife": "wives", "life": "lives",
}  # fmt: skip
_IRREGULAR |= {plural: singular for singular, plural in _IRREGULAR.items()}


def _number_variants(word: str) -> set[str]:
    """The word and its simple singular or plural."""
    w = word.casefold()
    if w in _IRREGULAR:
        return {w, _IRREGULAR[w]}
    if len(w) < 3 or not w.isalpha():
        return {w}
    if w.endswith("ies") and len(w) > 4:
        return {w, w[:-3] + "y"}
    if w.endswith(("sses", "xes", "zes", "ches", "shes")):
        return {w, w[:-2]}
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return {w, w[:-1]}
    if w.endswith("y") and w[-2] not in "aeiou":
        return {w, w[:-1] + "ies"}
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return {w, w + "es"}
    return {w, w + "s"}


@lru_cache(maxsize=256)
def _avoid_topic_patterns(topics: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...]:
    """(topic, the shortest spellings of its last word for a substring pre-check, pattern)."""
    patterns = []
    for topic in topics:
        words = [w for w in re.split(r"[\s\-]+", topic) if w]
        if words:
            variants = _number_variants(words[-1])
            pattern = re.compile(_phrase_pattern(words, variants), re.IGNORECASE)
            patterns.append((topic, tuple(_fold(v) for v in variants), pattern))
    return tuple(patterns)


# A sentence with its terminator and trailing spaces, a stray run of terminators, or one line break.
_SENTENCE = re.compile("[^.!?\u2026\n]+(?:[.!?\u2026]+[\"'\u201d\u2019)\\]]*)?[^\\S\n]*|[.!?\u2026]+[^\\S\n]*|\n")


def _drop_topics(text: str, topics: list[str]) -> tuple[str, list[Violation]]:
    folded = _fold(text)
    patterns = [
        (topic, pattern)
        for topic, variants, pattern in _avoid_topic_patterns(tuple(topics))
        if any(v in folded for v in variants)
    ]
    if not patterns:
        return text, []
    kept, hits = [], {}
    for m in _SENTENCE.finditer(text):
        chunk = m.group()
        topic = None if chunk == "\n" else next((t for t, p in patterns if p.search(chunk)), None)
        if topic is None:
            kept.append(chunk)
        else:
            hits.setdefault(topic, " ".join(chunk.split())[:80])
    violations = [
        Violation(AVOID_TOPIC, f"Removed a sentence about “{topic}”, a topic the creator avoids.", excerpt)
        for topic, excerpt in hits.items()
    ]
    return "".join(kept), violations


def _drop_words(text: str, words: list[str]) -> tuple[str, list[Violation]]:
    violations = []
    for word, parts, pattern in _avoid_word_patterns(tuple(words)):
        folded = _fold(text)
        if not all(part in folded for part in parts):
            continue
        text, count = pattern.subn("", text)
        if count:
            violations.append(Violation(AVOID_WORD, f"Removed “{word}”: it is on the creator's do-not-say list.", word))
    return text, violations


# (alternatives, replacement). "" removes the term. Whole words, case-insensitive, on the original text.
_EXPLICIT_TERMS: list[tuple[str, str]] = [
    (r"sex\s*tapes?", "exclusive video"),
    (r"sex\s*toys?", "toy"),
    (r"sexting", "spicy chats"),
    (r"sexts?", "spicy messages"),
    (r"oral\s+sex", ""),
    (r"full\s+frontal", "spicy"),
    (r"nudes", "spicy pics"),
    (r"nude|naked|topless|bottomless|nudity", "spicy"),
    (r"sex", "spicy"),
    (r"horny", "in the mood"),
    (r"nsfw|xxx|x-rated|uncensored|hardcore|lewd|erotic|smutty|smut", "exclusive"),
    (r"porn\s*stars?|pornographic|porno|porn", "exclusive"),
    (r"cum|cumming|cums|cumshots?|creampies?|squirt(?:s|ing)?|orgasms?", ""),
    (r"masturbat(?:e|es|ed|ing|ion)|jerk(?:s|ing|ed)?\s+off|jack(?:s|ing|ed)?\s+off", ""),
    (r"blow\s*jobs?|bjs?|hand\s*jobs?|deep\s*throat(?:s|ing)?|rimming|fingering|fisting", ""),
    (r"anal|threesomes?|gang\s*bangs?|orgy|orgies|doggy\s*style|facesitting|sixty[\s-]*nine", ""),
    (r"fuck(?:s|ed|ing|er)?|f\*ck(?:ing)?|fck(?:ing)?", ""),
    (r"pussy|pussies|cunts?|clit(?:oris|s)?|vaginas?|penis(?:es)?|dicks?|cocks?|genitals?|genitalia", ""),
    (r"boobs?|tits?|titties|nipples?|areolas?|butthole|assholes?", ""),
    (r"dildos?|vibrators?|butt\s*plugs?|strap-?ons?", ""),
    (r"strip\s*tease|stripping|lap\s*dances?|bdsm|bondage|milfs?|camgirl", "spicy"),
]
_EXPLICIT_EMOJI = ["🍆💦", "💦🍆", "🍑💦", "💦🍑", "👅💦", "💦👅", "🍆🍑", "🍑🍆", "👉👌", "🍆"]  # longest first
_EXPLICIT = _lead(
    {f"e{i}": _words(alternatives) for i, (alternatives, _) in enumerate(_EXPLICIT_TERMS)}, ignore_case=True
)


def _drop_explicit(text: str, platform: str) -> tuple[str, list[Violation]]:
    found: dict[str, None] = {}

    def replace(match: re.Match[str]) -> str:
        term = match.group()
        found.setdefault(term.casefold(), None)
        new = _EXPLICIT_TERMS[int(_category(match)[1:])][1]
        before = match.string[max(0, match.start() - 20) : match.start()].rstrip(" \t")
        starts_sentence = match.start() == 0 or (before[-1:] or "\n") in ".!?…\n"
        return new[:1].upper() + new[1:] if new and starts_sentence and term[:1].isupper() else new

    text = _EXPLICIT.sub(replace, text)
    for emoji in _EXPLICIT_EMOJI:
        if emoji in text:
            found.setdefault(emoji, None)
            text = text.replace(emoji, "")
    from apps.accounts.models import PLATFORMS  # the one list of platform names (models need Django set up)

    label = PLATFORMS.get(platform, platform or "this platform")
    violations = [
        Violation(PLATFORM_EXPLICIT, f"Replaced or removed “{term}”: explicit wording isn't allowed on {label}.", term)
        for term in list(found)[:20]
    ]
    return text, violations


_SPACES = re.compile(r"[^\S\n]+")
_SPACE_BEFORE_PUNCT = re.compile(r" (?=[,.!?;:)\]…])")
_REPEATED_COMMAS = re.compile(r"([,;:])(?: ?[,;:])+")
_COMMA_BEFORE_END = re.compile(r"[,;] ?(?=[.!?…])")
_EMPTY_BRACKETS = re.compile(r"\( ?\)|\[ ?\]|\" ?\"")
_LINE_EDGES = re.compile(r"^[ ,;:]+| +$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Spacing and punctuation left behind by removed words and sentences."""
    text = _SPACES.sub(" ", text)
    text = _EMPTY_BRACKETS.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    text = _REPEATED_COMMAS.sub(r"\1", text)
    text = _COMMA_BEFORE_END.sub("", text)
    text = _LINE_EDGES.sub("", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
