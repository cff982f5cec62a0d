"""The content-studio safety policy, applied server-side to every generation.

Every studio request (``check_request``: media description, goal, fan notes …) and every generated
text (``apply_policy``: each caption, message, idea title and description) goes through this
module before anything is shown or saved. It only decides *what may be said*; HTML escaping of
the output is the templates' and the UI's job, done separately.

Pure Python, no database: callers pass the creator's lists and the platform. Every static regex is
compiled once at import and written so that matching stays linear in the input (bounded
repetitions, disjoint character classes next to each other, numbers anchored to the start of a
digit run, word lists compiled so re can skip ahead — see _lead): a 50 KB hostile string is
checked in a few tens of milliseconds (tests/studio/test_safety.py allows 100 ms).

Hard rules — the text is refused (``blocked``; ``apply_policy`` returns ``text=""``)
----------------------------------------------------------------------------------
``minors``
    Three tiers, matched on a normalised copy of the text (see *Normalisation*):

    * always blocked: loli/lolicon/lolita, shota, jailbait, "barely legal", underage, pedo…,
      preteen, schoolgirl/schoolboy, "high school girl", highschooler, child porn/CSAM;
    * blocked when the text also has any sexual or flirty cue *anywhere* (sexy, nude, lingerie,
      PPV, 😈, 🍆 …): teen/teens/teenage(r), "a minor"/minors, "under 18", middle/high/junior high
      school, grade-school years, "young-looking"/"looks young", "little girl", and ages below 18
      written as numbers or words ("16 yo", "16-year-old", "15 years old", "age 17", "aged 16",
      "im 17", "she's sixteen"). Non-sexual use passes: "my teenage years were awkward" or
      "my dog is 15 years old" alone are allowed, but the same words inside a flirty caption are
      blocked — on an adult platform we err on blocking ("smells like teen spirit 😈" is refused);
    * blocked when a sexual cue is in the *same sentence* (and within 150 characters):
      child/children/kid(s)/toddler/tween. Parents on these platforms mention their kids ("divorced
      dad, 2 kids, tips well" in fan notes; "my kids are at school. Time for a naughty video"), so a
      cue in another sentence or field does not count; "kids are asleep, time for something spicy"
      is still refused.

    Not indicators: "18+", "eighteen", "nineteen", "twenties", "over 18", "adults only", any age
    of 18 or more ("I'm 25", "college student (21)"). Disclaimers that name minors only to keep
    them out ("no minors", "no underage", "not for minors", "if you're under 18 …", "under 18s are
    not allowed") are removed before matching. "18 year old teen" is still blocked: the word
    "teen" in sexual content is refused whatever age is attached.

``non_consent``
    Always blocked: rape (and forms), non-con/noncon/non-consensual/dubcon, "without her/his/their
    consent", "against her will", revenge porn, upskirt/downblouse/creepshot, hidden or spy
    camera, sextortion, drugged, roofied, somnophilia. Blocked with a sexual-act word within ±100
    characters: forced/forcing/forcibly/"force her" (not "forced perspective", "forced myself",
    "forced smile"), blackmail/coerce/extort, molest/grope, "didn't consent"; someone asleep,
    unconscious, passed or blacked out ("while she's asleep", "sleeping girl", "unconscious");
    "leaked" next to nudes/pics/videos/sex tape. Trade-off: consensual-kink vocabulary such as
    "forced orgasm" is refused too, and so is protective talk about leaks ("my pics got leaked")
    — neither belongs in generated promotional text.

``fabricated_claim``
    Invented social proof or scarcity stated as fact, in generated text:
    "N fans (already/just) unlocked/bought/subscribed …", "N people just …", "N% of my fans …",
    "only N spots/left", "N spots left", and the number-less "sold out", "everyone is buying",
    "most popular video ever". A numeric claim is allowed when its number equals a value in
    ``facts`` (matched by value, not by key, because the model phrases things freely: with
    ``facts={"unlocks": 23}`` "23 fans unlocked this" passes, "24 fans …" does not). The
    number-less claims pass only with a truthy ``facts`` key: ``sold_out``, ``everyone_buying``,
    ``most_popular``. Deadlines ("ends at midnight") are out of scope. In requests, only asks to
    *invent* such claims are refused ("make up some sales numbers", "fake scarcity", "pretend
    it's sold out"); a number the creator writes in a request is theirs to state.

Filters — the text is cleaned and ``needs_regeneration`` is set
---------------------------------------------------------------
``avoid_topic``
    Sentences (split on . ! ? … and line breaks) that mention a topic from the creator's
    ``avoid_topics`` are dropped: phrase match, case-insensitive, with simple singular/plural
    variants of the last word (feet/foot, story/stories, kiss/kisses). Runs first.
``avoid_word``
    Every word or phrase of the creator's ``avoid_words`` is removed as a whole word,
    case-insensitive ("cat" leaves "category" and "cats" alone; typographic and straight
    apostrophes count as the same), then spacing and punctuation are tidied. One violation per
    avoid word removed; its ``excerpt`` is the avoid word as configured (the caller feeds these
    back to the model).
``platform_explicit``
    On Instagram and TikTok (and any unknown platform) about 60 explicit terms — sexual acts,
    genitals, nudity words (nude, naked, nsfw, xxx, porn, cum, horny …) and emoji combinations
    (🍆💦, 🍑💦 …) — are replaced by a neutral word ("spicy", "exclusive") or removed. OnlyFans,
    Fansly, X and Reddit (NSFW subreddits) allow explicit wording, and so does "no platform".

Normalisation (hard rules only; filters work on the original text)
------------------------------------------------------------------
NFKD with accents dropped ("tëen", full-width letters), case folding, zero-width characters and
soft hyphens removed, typographic quotes and dashes made ASCII, common Cyrillic/Greek look-alike
letters mapped to Latin, spaced-out letters joined ("t.e.e.n", "t e e n", "s-c-h-o-o-l"),
leetspeak undone inside words that contain a letter (0→o, 1→i or l, 3→e, 4→a, 5→s, 7→t, @→a,
$→s: "t33n", "l0li"), and runs of three or more of the same letter cut to two ("teeeen"). Ages
are read from a copy without leetspeak so "16yo" keeps its digits. Not handled (cheap-check
trade-off): separators inside a word that is not fully spelled out ("sch.oolgirl"), number words
other than thirteen to seventeen, other languages.
Excerpts of hard-rule violations come from the normalised text (lower case).

``check_request`` checks all the texts of a request together (a flirty goal and "he's 16" in
the fan notes combine), except that a child word needs its cue in the same sentence.

``blocked`` results carry only the hard-rule violations and ``needs_regeneration=False``: the
caller drops or refuses the item, and the filters are not run on text that is never shown.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache

__all__ = [
    "AVOID_TOPIC",
    "AVOID_WORD",
    "BLOCKING_RULES",
    "FABRICATED_CLAIM",
    "MINORS",
    "NON_CONSENT",
    "PLATFORM_EXPLICIT",
    "PolicyResult",
    "Violation",
    "apply_policy",
    "check_request",
    "platform_allows_explicit",
]

MINORS = "minors"
NON_CONSENT = "non_consent"
FABRICATED_CLAIM = "fabricated_claim"
AVOID_WORD = "avoid_word"
AVOID_TOPIC = "avoid_topic"
PLATFORM_EXPLICIT = "platform_explicit"
BLOCKING_RULES = frozenset({MINORS, NON_CONSENT, FABRICATED_CLAIM})

MESSAGES = {
    MINORS: "Mentions of minors are never allowed: anything that involves or suggests someone under 18 is refused.",
    NON_CONSENT: "Non-consensual content is never allowed (force, coercion, someone asleep or drugged, "
    "hidden cameras, leaks).",
    FABRICATED_CLAIM: "This states sales, fan numbers or scarcity you didn't provide. Use your real numbers or "
    "leave the claim out.",
    "invent_request": "We can't invent sales numbers, fan counts or scarcity. Give the real numbers and we'll "
    "use them.",
}

_PLATFORM_LABELS = {
    "onlyfans": "OnlyFans",
    "fansly": "Fansly",
    "instagram": "Instagram",
    "x": "X",
    "tiktok": "TikTok",
    "reddit": "Reddit",
}
_EXPLICIT_ALLOWED = frozenset({"onlyfans", "fansly", "x", "twitter", "reddit"})

_MAX_PER_RULE = 5  # distinct excerpts reported per hard rule
_EXCERPT_LEN = 60
_CHILD_WINDOW = 150  # child words need a sexual cue this close (characters, either side, same sentence)
_ACT_WINDOW = 100  # forced / blackmail / asleep … need a sexual-act word this close
_LEAK_WINDOW = 60  # "leaked" needs nudes / pics / tape this close
_PERSON_BEFORE, _PERSON_AFTER = 40, 20  # someone asleep: a person word this close


@dataclass(frozen=True)
class Violation:
    rule: str  # one of MINORS, NON_CONSENT, FABRICATED_CLAIM, AVOID_WORD, AVOID_TOPIC, PLATFORM_EXPLICIT
    message: str  # a sentence for the member
    excerpt: str = ""  # the offending fragment (short)


@dataclass
class PolicyResult:
    text: str  # the cleaned text ("" when blocked)
    violations: list[Violation] = field(default_factory=list)
    blocked: bool = False  # minors, non_consent or fabricated_claim: the text must not be used
    needs_regeneration: bool = False  # a filter changed the meaning: regenerating is advisable


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


def _lead(groups: Mapping[str, Iterable[str]], *, end: str = r"\b", ignore_case: bool = False) -> re.Pattern[str]:
    """Compile ``{category: [alternative, …]}`` in the fast form described above.

    Each alternative starts with a literal character or a character class; it may be preceded by
    ``(?<![…])`` to replace the default boundary (no word character before the match). Groups are
    named ``category__n``; use :func:`_category`."""
    lead: dict[str, None] = {}
    by_first: dict[str, dict[str, list[str]]] = {}  # first letter → category → rests (in order)
    custom: list[str] = []
    for name, alternatives in groups.items():
        for alternative in alternatives:
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
    return [prefix + tail for prefix in prefixes]


# -- normalisation --------------------------------------------------------------------------------

_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff"))
_PUNCT = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032`\u00b4", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u2043", "-"),
        **dict.fromkeys("·•∙⋅・", "."),
        # look-alike letters (Cyrillic, Greek) → Latin
        **dict(zip("аеорсхуіјѕԁһкмтвпαεικνορτυχ", "aeopcxyijsdhkmtbnaeikvoptux", strict=True)),
    }
)
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
    """NFKC, case-folded, invisible characters removed, ASCII punctuation, disclaimers removed."""
    text = _COMBINING.sub("", unicodedata.normalize("NFKD", text)).translate(_INVISIBLE).casefold().translate(_PUNCT)
    return _DISCLAIMERS.sub(" ", text)


def _word_views(plain: str) -> list[str]:
    """Copies of the text with spacing tricks and leetspeak undone (1 read as i, then as l)."""
    joined = _SPACED.sub(lambda m: _SEPARATORS.sub("", m.group()), plain)
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


# -- context: is the text sexual or flirty? -------------------------------------------------------

_CUE_EMOJI = "\U0001f346\U0001f4a6\U0001f351\U0001f445\U0001f608\U0001f975\U0001f51e\U0001f48b\U0001f60f"
_SEXUAL = (
    _lead(
        {
            "cue": _words(
                r"sex|sexy|sexual\w*|sext\w*|nudes?|nudity|naked|nsfw|porn\w*|xxx|horny|hot|hottie|cum\w*|orgasm\w*"
                r"|fuck\w*|pussy|pussies|dick|dicks|cock|cocks|boobs?|tits?|titties|ass|booty|butt|nipples?|lingerie"
                r"|bikini|panties|thong|bra|strip\w*|undress\w*|topless|explicit|lewd|kinky|kink|fetish\w*|bdsm|spicy"
                r"|naughty|seduc\w*|flirt\w*|tease|teasing|kiss\w*|make\s+out|romantic|romance|dating|date\s+night"
                r"|on\s+a\s+date|boyfriend|girlfriend|daddy|onlyfans|fansly|ppv|unlock\w*|pics|body|bedroom|moan\w*"
                r"|suck\w*|lick\w*|blowjob|bj|anal|oral|erotic|sensual|intimate|turn(?:s|ed)?\s+(?:me\s+)?on"
                r"|sugar\s+daddy|babe|custom\s+content|feet\s+pics|cam\s*girl|camming|virgin\w*|lust\w*|penetrat\w*"
                r"|grope\w*|obey|submissive|dominat\w*|mistress|slut\w*|whore\w*|escort\w*"
            )
        }
    ),
    re.compile(f"[{_CUE_EMOJI}]|(?<!\\d)18\\+"),
)
# Narrower: words for sexual acts, used where the trigger word itself is common ("forced", "asleep").
_ACTS = (
    _lead(
        {
            "act": _words(
                r"sex|sexual\w*|fuck\w*|rap(?:e|ed|ing)|touch(?:ed|es|ing)?|grop\w*|strip\w*|undress\w*|naked"
                r"|nude\w*|penetrat\w*|cum\w*|suck\w*|lick\w*|blowjob|bj|anal|oral|pussy|dick|cock|tits|boobs"
                r"|porn\w*|xxx|nsfw|horny|orgasm\w*|moan\w*|kinky|fetish\w*|bdsm|bang\w*|screw\w*|finger\w*"
                r"|spread\w*|sleep\s*sex|obey|submit"
            )
        }
    ),
    re.compile("[\U0001f346\U0001f4a6\U0001f351\U0001f445]"),
)
_LEAK_CONTEXT = (
    _lead(
        {
            "leak": _words(
                r"nudes?|naked|sex\s*tapes?|tapes?|pics?|photos?|vids?|videos?|clips?|content|onlyfans|snaps?|private"
            )
        }
    ),
)
_PERSON = _lead(
    {
        "person": _words(
            r"she|he|they|you|her|him|them|girls?|guys?|wom[ae]n|m[ae]n|wife|husband|gf|bf|sister|stepsis\w*"
            r"|roommates?|friends?|babes?|someone|somebody"
        )
    }
)


_SENTENCE_STOP = re.compile(r"[.!?\n]")


class _Context:
    """Where the cue words of one view are, computed once and only when asked."""

    def __init__(self, view: str, patterns: tuple[re.Pattern[str], ...]):
        self.view, self.patterns = view, patterns
        self._starts: list[int] | None = None
        self._stops: list[int] | None = None

    def starts(self) -> list[int]:
        if self._starts is None:
            self._starts = sorted(m.start() for p in self.patterns for m in p.finditer(self.view))
        return self._starts

    def anywhere(self) -> bool:
        return bool(self.starts())

    def near(self, start: int, end: int, window: int, *, same_sentence: bool = False) -> bool:
        """A cue starts within ``window`` characters of [start, end) (and in the same sentence)."""
        starts = self.starts()
        if not starts:
            return False
        low, high = start - window, end + window
        if same_sentence:
            if self._stops is None:
                self._stops = [m.start() for m in _SENTENCE_STOP.finditer(self.view)]
            i = bisect_left(self._stops, start)
            low = max(low, self._stops[i - 1]) if i else low
            j = bisect_left(self._stops, end)
            high = min(high, self._stops[j]) if j < len(self._stops) else high
        k = bisect_left(starts, low)
        return k < len(starts) and starts[k] <= high


# -- triggers: minors, non-consent, invented social proof (word views) ----------------------------

_PRONOUNS = [r"i'?m", r"i\s+am", r"she'?s", r"she\s+is", r"he'?s", r"he\s+is", r"you'?re", r"you\s+are", "ur", r"u\s+r"]
_AGE_WORDS = r"(?:thirteen|fourteen|fifteen|sixteen|seventeen)"
_AGE_ADVERB = r"(?:\s+(?:only|just|barely|like|about|almost|nearly|still|now|literally))?"  # "she is only 15"
_MINOR_NOT_PERSON = (
    r"(?!\s+(?:change|changes|tweak|tweaks|edit|edits|fix|fixes|issue|issues|detail|details|thing|things|update"
    r"|updates|problem|problems|adjust\w*|bug|bugs|typo|typos|correction|corrections|note|notes|delay|delays"
    r"|injur\w*|role|roles|setback|key|chord|league|part|point|points|surgery|glitch))"
)
_FORCED_NOT_SEXUAL = (
    r"(?!\s+(?:perspective|myself|yourself|herself|himself|smile|smiles|laugh|update|updates|labou?r|march"
    r"|landing|reset|restart|air|entry|to\s+(?:reschedule|cancel|wait|move|postpone|delay|stop|pause|close"
    r"|change|leave|quit)))"
)
_INVENT_NOUNS = (
    r"(?:social\s+proof|numbers?|stats?|statistics|sales(?:\s+numbers?)?|scarcity|urgency|reviews?|testimonials?"
    r"|unlocks?|unlock\s+counts?|buyers?|purchases?|subscribers?|fan\s+(?:counts?|numbers?)|demand|popularity"
    r"|counts?|figures?|spots?|deadlines?)"
)
_TRIGGERS = _lead(
    {
        "minor_always": _words(
            r"lol(?:i|is|icon|ita|itas)|shota(?:s|con)?|jail\s*bait|barely\s*legal|under\s*aged?|paedo\w*|pedo\w*"
            r"|pre\s*-?\s*teens?|school\s*(?:girls?|boys?)|high\s*school(?:er)?s?\s*(?:girls?|boys?|students?"
            r"|cheerleaders?|freshm[ae]n|sophomores?)|highschoolers?|child\s*(?:porn\w*|sex\w*|abuse\s+material)"
            r"|csam|kiddie\s*porn"
        ),
        "minor_person": [
            *_words(
                r"teen(?:s|age|aged|ager|agers)?|minors|under[\s-]*eighteen|middle\s*school\w*|junior\s*school\w*"
                r"|elementary\s*school\w*|primary\s*school\w*|grade\s*school\w*|junior\s*high|high\s*school"
                r"|young[\s-]*looking|looks?\s+(?:so\s+|very\s+|really\s+|super\s+)?(?:young|underage"
                r"|like\s+a\s+(?:kid|child|teen))|little\s+(?:girls?|boys?)|young\s+(?:girls?|boys?)"
            ),
            *_prefixed([*_words("a|is|am|as|be|being|with|for"), *_PRONOUNS], r"\s+minor" + _MINOR_NOT_PERSON),
            *_prefixed([*_PRONOUNS, r"just\s+turned", "turning", "only", "aged?"], _AGE_ADVERB + r"\s+" + _AGE_WORDS),
            *_prefixed(
                ["thirteen", "fourteen", "fifteen", "sixteen", "seventeen"],
                r"[\s-]*(?:yo|y/o|years?[\s-]*old|year[\s-]*old)",
            ),
            *_prefixed(
                _words("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh"),
                r"\s+grade\w*",
            ),
        ],
        "minor_child": _words(
            r"child|children|childs|kids?|kiddies|kiddos?|toddlers?|infants?|youngsters?|tweens?|juveniles?"
            r"|girl\s*child"
        ),
        "nc_always": _words(
            r"rap(?:e|es|ed|ing|ist|ists|ey)|non[\s-]*con(?:s?ensual|sent(?:ed|ing)?)?|noncon\w*|dub[\s-]*con\w*"
            r"|without\s+(?:(?:her|his|their|my|your|a|any|the|our)\s+)?consent"
            r"|against\s+(?:her|his|their|my|your|our)\s+will|revenge\s*porn\w*|up\s*skirts?|down\s*blouses?"
            r"|creep\s*shots?|hidden[\s-]*(?:cams?|cameras?)|secret[\s-]*(?:cams?|cameras?)|spy[\s-]*(?:cams?"
            r"|cameras?)|sextort\w*|drugged|drugging|roof(?:ie|ies|ied|ying)|somnophil\w*"
            r"|secretly\s+(?:film|record|tap)\w*"
        ),
        "nc_act": [
            r"forc(?:ed|ing|ibly)" + _FORCED_NOT_SEXUAL,
            *_words(
                r"force\s+(?:her|him|them|you|u|me)|blackmail\w*|coerc\w*|extort\w*|molest\w*|grop(?:e|ed|es|ing)"
                r"|did\s*n'?t\s+consent\w*|does\s*n'?t\s+consent\w*|do\s*n'?t\s+consent\w*|never\s+consent\w*"
                r"|not\s+consent\w*"
            ),
        ],
        "nc_sleep": _words(
            r"asleep|sleeping|unconscious|passed[\s-]*out|blacked[\s-]*out|knocked[\s-]*out|too\s+drunk"
            r"|drunk\s+(?:girls?|guys?|wom[ae]n|m[ae]n|wife|husband|gf|bf|babes?|her|him|stepsis\w*|roommates?)"
        ),
        "nc_leak": [r"leak(?:s|ed|ing)?"],
        "invent": [
            *_prefixed(
                _words(r"make\s+up|invent|fabricate|fake|pretend|exaggerate|inflate|lie\s+about|fudge"),
                r"\s+(?:(?:some|the|a|an|my|our|fan|how\s+many|that|numbers?\s+of|big|huge)\s+){0,3}" + _INVENT_NOUNS,
            ),
            *_prefixed(
                _words(r"fake|made[\s-]*up|invented|fabricated|false|bogus|inflated|fictional|fictitious|imaginary"),
                r"\s+" + _INVENT_NOUNS,
            ),
            *_prefixed(
                ["pretend", "say", "claim", r"tell\s+(?:them|fans|everyone)"],
                r"\s+(?:that\s+)?(?:it'?s|it\s+is|we'?re|i'?m|its)\s+(?:already\s+)?(?:sold\s+out"
                r"|almost\s+(?:gone|sold\s+out)|selling\s+fast|nearly\s+gone)",
            ),
        ],
    }
)

# -- ages and claims (plain view: digits kept) ----------------------------------------------------

_UNITS = (
    r"(?![\d%.,:]\d|\d|\s*(?:\+|%|min|mins|minutes?|hours?|hrs?|h\b|days?|weeks?|months?|inch(?:es)?|cm|mm"
    r"|ft|feet|foot|kg|lbs?|pounds?|k\b|x\b|dollars?|bucks|usd|eur|euros?|am\b|pm\b|o'?clock|th\b|st\b|nd\b|rd\b"
    r"|percent|times?|miles?|km|steps?|away|points?|spots?|left|more|fans|people|videos?|pics|photos|secs?"
    r"|seconds?))"
)
_PEOPLE = (
    r"(?:fans?|people|persons|subscribers?|subs|guys|followers?|members?|buyers?|customers?|men|users|others"
    r"|babes|of\s+you)"
)
_CLAIM_VERBS = (
    r"(?:just\s+[a-z]+|(?:(?:have|has|had|already|literally|all|recently|today|also|just)\s+){0,3}"
    r"(?:unlocked|bought|purchased|subscribed|joined|signed\s+up|grabbed|got|tipped|opened|watched|claimed"
    r"|ordered|paid|downloaded|renewed|snagged|viewed|saw|rated|loved|requested|sent|spent))\b"
)
_SCARCE = r"(?:spots?|slots?|places?|seats?|copies)"
_NUMBER_START = r"(?<![\d.,])[0-9]"  # the first digit of a number that is not part of a longer one
_FACTS = _lead(
    {
        "age": [
            r"(?<![\d.,$€£])[1-9](?:(?<=1)[0-7])?(?!\d)[\s-]*(?:yo\b|y\.\s?o\b|y/o\b|(?:yrs?|years?)[\s-]*old\b)",
            r"age[ds]?[\s:=]*(?:1[0-7]|[1-9])" + _UNITS,
            *_prefixed([*_PRONOUNS, r"just\s+turned", "turning"], _AGE_ADVERB + r"\s+1[0-7]" + _UNITS),
            r"(?<![\d.,])[1-9](?:(?<=1)[0-2])?(?:st|nd|rd|th)?[\s-]*grade(?:rs?)?\b",
            r"under[\s-]*(?:1[0-7]|18)" + _UNITS,
            r"below[\s-]*(?:1[0-7]|18)" + _UNITS,
        ],
        "claim": [
            _NUMBER_START + r"(?:\d{0,2}(?:,\d{3})+|\d*(?:\.\d+)?)(?:\s?k)?\+?\s+(?:(?:happy|lucky|new|other|more"
            r"|loyal|amazing|real|sweet|of\s+(?:my|you|the|our))\s+){0,2}" + _PEOPLE + r"\s+" + _CLAIM_VERBS,
            _NUMBER_START + r"\d{0,2}(?:\.\d+)?\s*(?:%|percent|per\s+cent)\s+of\s+(?:(?:my|the|our|all|your)\s+)?"
            r"(?:fans|subscribers|subs|people|followers|you|guys|buyers|customers|members|men|users)\b",
            *_prefixed(
                ["only", "just"],
                r"\s+\d+\s+(?:(?:more|spots?|slots?|places?|seats?|copies|units?|videos?|sets?|bundles?|customs?"
                r"|of\s+these|of\s+them|pieces?|items?|left)\s+){0,2}(?:left|remaining|available)\b",
            ),
            *_prefixed(["only", "just"], r"\s+\d+\s+" + _SCARCE + r"\b"),
            _NUMBER_START + r"\d*\s+" + _SCARCE + r"\s+(?:left|remaining)\b",
        ],
        "sold_out": [r"sold[\s-]*out\b", r"selling\s+out\b"],
        "everyone_buying": _prefixed(
            [r"every\s*one", r"every\s*body"],
            r"(?:'s|\s+is|\s+are)\s+(?:already\s+)?(?:buying|unlocking|grabbing|getting|subscribing|joining"
            r"|talking\s+about)\b",
        ),
        "most_popular": [
            r"most\s+(?:popular|bought|unlocked|requested|viewed|watched|purchased|successful|liked)\s+"
            r"(?:[a-z]+\s+){0,2}(?:ever|of\s+all\s+time)\b",
            r"best[\s-]*sell(?:ing|er)\s+(?:[a-z]+\s+){0,2}(?:ever|of\s+all\s+time)\b",
        ],
    },
    end="",
)
_FIRST_NUMBER = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(\s?k\b)?")


def _violations(rule: str, excerpts: Iterable[str], message: str | None = None) -> list[Violation]:
    unique = list(dict.fromkeys(excerpts))[:_MAX_PER_RULE]
    return [Violation(rule, message or MESSAGES[rule], excerpt) for excerpt in unique]


def _hard_rules(plain: str, views: list[str], *, facts: Mapping[str, object] | None, request: bool) -> list[Violation]:
    """Every hard-rule violation of one text (request or output), at most _MAX_PER_RULE per rule."""
    found: dict[str, list[str]] = {MINORS: [], NON_CONSENT: [], FABRICATED_CLAIM: []}
    person: list[str] = []
    known = _fact_numbers(facts)

    def full(rule: str) -> bool:
        return len(found[rule]) >= _MAX_PER_RULE

    for m in _FACTS.finditer(plain):
        kind = _category(m)
        if kind == "age":
            if len(person) < _MAX_PER_RULE:
                person.append(_excerpt(m))
        elif request or full(FABRICATED_CLAIM):
            continue  # a number the creator writes in a request is theirs to state
        elif kind == "claim":
            if _claim_number(m.group()) not in known:
                found[FABRICATED_CLAIM].append(_excerpt(m))
        elif not (facts or {}).get(kind):
            found[FABRICATED_CLAIM].append(_excerpt(m))

    for view in views:
        sexual, acts, leaks = _Context(view, _SEXUAL), _Context(view, _ACTS), _Context(view, _LEAK_CONTEXT)
        for m in _TRIGGERS.finditer(view):
            kind, start, end = _category(m), m.start(), m.end()
            if kind == "minor_person":
                if len(person) < _MAX_PER_RULE:
                    person.append(_excerpt(m))
                continue
            rule = MINORS if kind.startswith("minor") else NON_CONSENT if kind.startswith("nc") else FABRICATED_CLAIM
            if full(rule) or (kind == "invent" and not request):
                continue
            if (
                kind in {"minor_always", "nc_always", "invent"}
                or (kind == "minor_child" and sexual.near(start, end, _CHILD_WINDOW, same_sentence=True))
                or (kind == "nc_act" and acts.near(start, end, _ACT_WINDOW))
                or (kind == "nc_leak" and leaks.near(start, end, _LEAK_WINDOW))
                or (
                    kind == "nc_sleep"
                    and acts.near(start, end, _ACT_WINDOW)
                    and _PERSON.search(view, max(0, start - _PERSON_BEFORE), end + _PERSON_AFTER) is not None
                )
            ):
                found[rule].append(_excerpt(m))
        if person and not full(MINORS) and sexual.anywhere():
            found[MINORS] += person
            person = []

    invent_message = MESSAGES["invent_request"] if request else None
    return [
        *_violations(MINORS, found[MINORS]),
        *_violations(NON_CONSENT, found[NON_CONSENT]),
        *_violations(FABRICATED_CLAIM, found[FABRICATED_CLAIM], invent_message),
    ]


def _claim_number(claim: str) -> Decimal | None:
    m = _FIRST_NUMBER.search(claim)
    if m is None:
        return None
    try:
        value = Decimal(m.group(1).replace(",", ""))
    except InvalidOperation:
        return None
    return value * 1000 if m.group(2) else value


def _fact_numbers(facts: Mapping[str, object] | None) -> set[Decimal]:
    numbers: set[Decimal] = set()
    for value in (facts or {}).values():
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            continue
        try:
            numbers.add(Decimal(str(value).replace(",", "").strip().rstrip("%").strip()))
        except InvalidOperation:
            continue
    return numbers


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
    label = _PLATFORM_LABELS.get(platform, platform or "this platform")
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


# -- public API -----------------------------------------------------------------------------------


def platform_allows_explicit(platform: str | None) -> bool:
    """Whether explicit wording may be used on ``platform``.

    True for OnlyFans, Fansly, X (adult content allowed) and Reddit (studio titles are for NSFW
    subreddits), and when no platform is given. False for Instagram, TikTok and any platform this
    module does not know (the safe default).
    """
    if platform is None or not str(platform).strip():
        return True
    return str(platform).strip().casefold() in _EXPLICIT_ALLOWED


def check_request(texts: Iterable[str | None]) -> list[Violation]:
    """Refuse requests (prompt, media description, goal, fan notes …) that ask for minors,
    non-consent or invented social proof. Returns the violations (empty = allowed).

    The texts are checked together, so a sexual cue in the goal and an age in the fan notes
    combine (see the module docstring for the tiers)."""
    joined = "\n".join(str(t) for t in texts if t)
    if not joined.strip():
        return []
    plain = _plain(joined)
    return _hard_rules(plain, _word_views(plain), facts=None, request=True)


def stream_violations(text: str) -> list[Violation]:
    """The minors and non-consent violations in a piece of text that is still streaming in.

    Meant for a sliding window over the text so far (see ``STREAM_OVERLAP``): context rules look
    at most ``_CHILD_WINDOW`` characters around a trigger, so a window that overlaps the previous
    one by ``STREAM_OVERLAP`` catches every such pair. An age stated far away from a sexual cue
    is only caught by ``apply_policy`` on the finished text, which always runs."""
    if not text.strip():
        return []
    plain = _plain(text)
    return [v for v in _hard_rules(plain, _word_views(plain), facts=None, request=False) if v.rule in _STREAMING_RULES]


_STREAMING_RULES = frozenset({MINORS, NON_CONSENT})
STREAM_OVERLAP = _CHILD_WINDOW + 2 * _EXCERPT_LEN  # the widest trigger-and-cue pair a context rule joins


def apply_policy(
    text: str,
    *,
    avoid_words: Iterable[str] | None = (),
    avoid_topics: Iterable[str] | None = (),
    platform: str | None = None,
    facts: Mapping[str, object] | None = None,
) -> PolicyResult:
    """Check and clean one generated text: hard rules block; the do-not-say lists and the
    platform's rules filter.

    ``facts`` holds the numbers the creator supplied (e.g. ``{"unlocks": 23}``); a social-proof or
    scarcity claim is allowed only when its number is one of them."""
    text = text or ""
    plain = _plain(text)
    hard = _hard_rules(plain, _word_views(plain), facts=facts, request=False)
    if hard:
        return PolicyResult(text="", violations=hard, blocked=True, needs_regeneration=False)

    violations: list[Violation] = []
    cleaned = text
    topics = _clean_list(avoid_topics)
    if topics:
        cleaned, found = _drop_topics(cleaned, topics)
        violations += found
    words = _clean_list(avoid_words)
    if words:
        cleaned, found = _drop_words(cleaned, words)
        violations += found
    if not platform_allows_explicit(platform):
        cleaned, found = _drop_explicit(cleaned, str(platform).strip().casefold())
        violations += found
    if violations:
        cleaned = _tidy(cleaned)
    return PolicyResult(text=cleaned, violations=violations, blocked=False, needs_regeneration=bool(violations))
