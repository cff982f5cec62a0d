"""The hard rules: minors, non-consent and invented social proof, with their context checks.

Part of ``apps.safety``; its docstring describes the policy.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from apps.safety.base import (
    _ACT_WINDOW,
    _CHILD_WINDOW,
    _LEAK_WINDOW,
    _MAX_PER_RULE,
    _PERSON_AFTER,
    _PERSON_BEFORE,
    FABRICATED_CLAIM,
    MESSAGES,
    MINORS,
    NON_CONSENT,
    Violation,
)
from apps.safety.text import _category, _excerpt, _lead, _prefixed, _words

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
