"""How the policy reads text: pattern building, normalisation and the anti-obfuscation views.

Part of ``apps.safety``; its docstring describes the policy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from apps.safety.base import _EXCERPT_LEN
from apps.safety.confusables import LOOKALIKES

# -- regex building -------------------------------------------------------------------------------
#
# Python's re scans quickly past positions that cannot start a match only when a pattern starts
# with a plain character class (or a branch of literals). A pattern that starts with \b or a
# look-behind is tried at every position — about five times slower. So word lists are compiled as
#     [first letters](?<!\w.)(?:(?P<group>(?<=t)een…|(?<=k)ids?…)|…)\b
# the class consumes the first letter, (?<!\w.) is the word boundary before it, and (?<=t)
# dispatches on it: one look-behind per first letter, then only that letter's alternatives. Group
# names carry the category (see _category).

_FIRST_TOKEN = re.compile(r"\[(?:\\.|[^\]])+\]|\\.|.", re.DOTALL)
_CUSTOM_BOUNDARY = re.compile(r"\(\?<!(\[(?:\\.|[^\]])+\])\)")


def _top_level_alternatives(pattern: str) -> list[str]:
    parts, depth, start, escaped = [], 0, 0, False
    for i, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    return [*parts, pattern[start:]]


def _expand(alternative: str) -> list[str]:
    """``(?:a|b)rest`` as ``arest``, ``brest`` (recursively), so every alternative starts with a
    literal character or a class, as _lead needs."""
    if not alternative.startswith("(?:"):
        return [alternative]
    depth, escaped = 0, False
    for i, char in enumerate(alternative):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                inner, rest = alternative[3:i], alternative[i + 1 :]
                if rest[:1] in {"?", "*", "+", "{"}:
                    raise ValueError(f"an optional group cannot lead an alternative: {alternative!r}")
                return [e for part in _top_level_alternatives(inner) for e in _expand(part + rest)]
    raise ValueError(f"unbalanced group: {alternative!r}")


def _lead(groups: Mapping[str, Iterable[str]], *, end: str = r"\b", ignore_case: bool = False) -> re.Pattern[str]:
    """Compile ``{category: [alternative, …]}`` in the fast form described above.

    Each alternative starts with a literal character or a character class; it may be preceded by
    ``(?<![…])`` to replace the default boundary (no word character before the match). Groups are
    named ``category__n``; use :func:`_category`."""
    lead: dict[str, None] = {}
    by_first: dict[str, dict[str, list[str]]] = {}  # first letter → category → rests (in order)
    custom: list[str] = []
    for name, alternatives in groups.items():
        for alternative in (e for a in alternatives for e in _expand(a)):
            boundary = _CUSTOM_BOUNDARY.match(alternative)
            if boundary:
                alternative = alternative[boundary.end() :]
            first = _FIRST_TOKEN.match(alternative).group()
            rest = alternative[len(first) :]
            if first.startswith("["):
                lead[first[1:-1]] = None
            else:
                lead[first] = None
                if ignore_case and first.isalpha():
                    lead[first.swapcase()] = None
            if boundary:
                custom.append(f"(?<={first})(?<!{boundary.group(1)}.)(?P<{name}__{len(custom)}c>{rest})")
            else:
                key = first.lower() if ignore_case else first
                by_first.setdefault(key, {}).setdefault(name, []).append(rest)
    dispatch = []
    for i, (first, categories) in enumerate(by_first.items()):
        named = [f"(?P<{name}__{i}>" + "|".join(rests) + ")" for name, rests in categories.items()]
        dispatch.append(f"(?<={first})(?:" + "|".join(named) + ")")
    branches = [r"(?<!\w.)(?:" + "|".join(dispatch) + ")"] if dispatch else []
    body = "|".join(branches + custom)
    if ignore_case:
        body = f"(?i:{body})"
    return re.compile("[" + "".join(lead) + "](?:" + body + ")" + end)


def _category(match: re.Match[str]) -> str:
    return match.lastgroup.partition("__")[0]


def _words(pattern: str) -> list[str]:
    return _top_level_alternatives(pattern)


def _prefixed(prefixes: Iterable[str], tail: str) -> list[str]:
    """``prefix + tail`` for each prefix. Prefixes that start with the same letter share one
    copy of ``tail`` ("c(?:ousin|hild)tail"), which keeps long tails from multiplying the
    pattern's size (and its compile time at import)."""
    by_letter: dict[str, list[str]] = {}
    alternatives: list[str] = []
    for prefix in prefixes:
        if prefix[:1].isalpha() and prefix[:1].islower():
            by_letter.setdefault(prefix[0], []).append(prefix[1:])
        else:
            alternatives.append(prefix + tail)
    for letter, rests in by_letter.items():
        rest = rests[0] if len(rests) == 1 else "(?:" + "|".join(rests) + ")"
        alternatives.append(letter + rest + tail)
    return alternatives


# -- normalisation --------------------------------------------------------------------------------

_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff"))
_PUNCT = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032`\u00b4", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2043", "-"),
        **dict.fromkeys("·•∙⋅・", "."),
    }
)
# Look-alike letters of every script → ASCII, from the Unicode data (apps/safety/confusables.py).
_PUNCT = {**LOOKALIKES, **_PUNCT}
_ENYE = str.maketrans({"ñ": "nh", "Ñ": "NH"})
_LEET_I = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_L = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# A token with at least one letter and at least one leet character ("t33n", "l0li", "$exy").
_LEET_TOKEN = re.compile(
    r"[a-z0-9@$](?<![a-z0-9@$].)(?:(?<=[a-z])|(?=[a-z0-9@$]*?[a-z]))"
    r"(?:(?<=[013457@$])|(?=[a-z0-9@$]*?[013457@$]))[a-z0-9@$]*"
)
# Three or more single characters separated by one to three separators: "t.e.e.n", "t e e n", "s-c-h-o-o-l".
_SPACED = re.compile(r"[a-z0-9@$](?<![a-z0-9@$].)(?:[\s.\-_*,/|~'\"+]{1,3}[a-z0-9@$](?![a-z0-9@$])){2,}")
_SEPARATORS = re.compile(r"[^a-z0-9@$]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")

_N18 = r"(?:18|eighteen|21)"
_NOT_ALLOWED = (
    r"\s+(?:are\s+|is\s+)?(?:not\s+(?:allowed|permitted|welcome)|prohibited|banned|forbidden|must\s+(?:leave|exit))"
)
# Disclaimers that name minors only to keep them out; removed before matching.
_DISCLAIMERS = _lead(
    {
        "disclaimer": [
            r"no(?:\s+one|body)\s+under[\s-]*" + _N18 + "s?",
            r"no\s+(?:minors|underage\w*|kids|children)",
            r"not\s+(?:for|suitable\s+for|intended\s+for|open\s+to)\s+(?:minors|children|kids|anyone\s+under[\s-]*"
            + _N18
            + ")",
            *_prefixed(
                [
                    *_words(r"minors|kids|children|underage\w*"),
                    r"under[\s-]*" + _N18 + "s?",
                    r"anyone\s+under[\s-]*" + _N18,
                ],
                _NOT_ALLOWED,
            ),
            r"if\s+(?:you'?re|you\s+are|u\s*r|ur)\s+(?:a\s+minor|under[\s-]*" + _N18 + "|underage)",
        ]
    }
)


def _plain(text: str) -> str:
    """Case-folded NFKD without accents (ñ kept apart as "nh": "niña" is not the name "Nina"),
    look-alike letters made ASCII, invisible characters removed, ASCII punctuation, disclaimers
    removed."""
    text = (
        _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_ENYE)))
        .translate(_INVISIBLE)
        .casefold()
        .translate(_PUNCT)
    )
    return _DISCLAIMERS.sub(" ", text)


def _join_spaced(match: re.Match[str]) -> str:
    """ "t e e n  n u d e s" → "teen nudes": the shortest separator is inside words, longer ones
    are between them."""
    text = match.group()
    shortest = min(len(run) for run in _SEPARATORS.findall(text))
    return _SEPARATORS.sub(lambda run: "" if len(run.group()) == shortest else " ", text)


def _word_views(plain: str) -> list[str]:
    """Copies of the text with spaced-out letters joined and leetspeak undone (1 read as i, then
    as l). Separators inside a word ("sch.oolgirl") are left to the lexicon, which knows whether
    the halves make one of its words (apps/safety/lexicon.py)."""
    joined = _SPACED.sub(_join_spaced, plain)
    views: list[str] = []
    for table in (_LEET_I, _LEET_L):
        view = _LEET_TOKEN.sub(lambda m, table=table: m.group().translate(table), joined)
        view = _DISCLAIMERS.sub(" ", _REPEATS.sub(r"\1\1", view))
        if view not in views:
            views.append(view)
        if "1" not in joined:
            break
    return views


def _excerpt(match: re.Match[str]) -> str:
    return " ".join(match.group().split())[:_EXCERPT_LEN]


@dataclass(frozen=True)
class Normalised:
    """The copies of one text that the rules run on.

    ``plain``: accents, case, invisible characters, look-alike letters and typographic punctuation
    normalised, disclaimers removed; digits and word boundaries kept (ages, numbers, claims).
    ``views``: ``plain`` with spaced-out letters joined, leetspeak undone and long letter runs
    cut (one view per reading of "1": i, then l)."""

    plain: str
    views: tuple[str, ...]


def normalise(text: str) -> Normalised:
    """The one normalisation step: every rule reads one of these copies, computed once per text."""
    plain = _plain(text or "")
    return Normalised(plain, tuple(_word_views(plain)))
