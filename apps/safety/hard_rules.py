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
from apps.safety.lexicon import canonical
from apps.safety.text import Normalised, _category, _excerpt, _lead, _prefixed, _words

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
                # French and Spanish
                r"|sexe|sexo|nue|nues|nu|nus|string|strings|desnud\w*|seins|tetas|culo|cul|chatte|bite|polla|verga|cono|follar\w*"
                r"|baise\w*|baiser|sucer|suce\w*|chupa\w*|coquin\w*|excit\w*|cachond\w*|caliente|chaud\w*"
                r"|travies[ao]s?|picante|sensuel\w*|intime|lenceria|culotte|tanga|bragas|bisous?|besos?"
                r"|deshabill\w*|desvist\w*|coquine|caline\w*|fantasme\w*|fantasia\w*"
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
                r"|sexe|sexo|baise\w*|baiser|sucer|suce\w*|follar\w*|follad\w*|follando|chupa\w*|toucher|touchee?s?"
                r"|toca(?:r|la|lo|rla|rlo|ndola|ndolo)|tocad[ao]s?|tocando|desnud\w*|deshabill\w*|desvist\w*|nue|nues|penetr\w*"
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
            r"|elle|il|fille|filles|femme|copine|quelqu'?un|ella|chica|chicas|mujer|novia|esposa|alguien"
        )
    }
)


_SENTENCE_STOP = re.compile(r"[.!?\n]")


class _Context:
    """Where the cue words of one view are, computed once and only when asked. ``always``: the
    cue is taken as present everywhere (a hashtag on an adult creator's post)."""

    def __init__(self, view: str, patterns: tuple[re.Pattern[str], ...], *, always: bool = False):
        self.view, self.patterns, self.always = view, patterns, always
        self._starts: list[int] | None = None
        self._stops: list[int] | None = None

    def starts(self) -> list[int]:
        if self._starts is None:
            self._starts = sorted(m.start() for p in self.patterns for m in p.finditer(self.view))
        return self._starts

    def anywhere(self) -> bool:
        return self.always or bool(self.starts())

    def near(self, start: int, end: int, window: int, *, same_sentence: bool = False) -> bool:
        """A cue starts within ``window`` characters of [start, end) (and in the same sentence)."""
        if self.always:
            return True
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
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
)
_AGE_WORDS = r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen)"
# "I'm ten minutes away": a number word followed by a unit is not an age.
_WORD_UNITS = (
    r"(?![\s-]*(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|inch(?:es)?|feet|foot|ft|cm|kg|pounds?|lbs?"
    r"|dollars?|bucks|euros?|times?|miles?|km|steps?|away|points?|spots?|percent|more|pics|photos|videos?"
    r"|o'?clock|am|pm|things|ways|reasons|seconds?|secs?)\b)"
)
# Someone described by a relation or a role, whose age is then stated: "my cousin who is 16",
# "step-sis is 16".
_PERSON_NOUNS = (
    "cousin|cousins|sis|sister|sisters|stepsis|stepsister|brother|bro|stepbro|stepbrother|niece|nephew|daughter"
    "|stepdaughter|son|stepson|girl|boy|gf|bf|girlfriend|boyfriend|friend|neighbou?r|student|babysitter"
    "|classmate|model|kid|child|partner|crush|who"
)
_PERSON_IS = r"(?:\s+[a-z']+){0,3}?(?:\s+is|\s+was|'s|\s+turned|\s+turns|\s+aged?)"
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
            r"|csam|kiddie\s*porn|pre[\s-]*pubescen\w*|prepubert\w*|impubere\w*|pedofil\w*"
            r"|ecolier(?:e|es|s)?|collegien(?:ne|nes|s)?|lyceen(?:ne|nes|s)?|colegial(?:a|as|es)?|pre[\s-]*ado\w*"
            r"|menor(?:es)?\s+de\s+edad|still\s+in\s+(?:diapers|nappies|elementary|primary|middle|grade)\w*"
            # a child described without an age
            r"|(?:has|have|did|does|had)\s*n'?t\s+(?:(?:even|yet)\s+)?(?:hit|reached|started|gone\s+through"
            r"|been\s+through|begun|had|finished)\s+(?:her\s+|his\s+|their\s+)?pubert\w*"
            r"|(?:hasnt|havent|didnt|doesnt|not\s+yet|never|before|yet\s+to)\s+(?:(?:hit|reached|started|gone"
            r"\s+through|been\s+through|begun|had|finished)\s+)?(?:her\s+|his\s+|their\s+)?pubert\w*"
            r"|pre[\s-]*pubert\w*|(?:pas\s+encore|avant)\s+(?:eu\s+|fait\s+|atteint\s+)?(?:sa|la)\s+puberte"
            r"|(?:antes\s+de|no\s+ha\s+(?:llegado\s+a|pasado|tenido))\s+(?:la|su)\s+pubertad"
        ),
        "minor_person": [
            *_words(
                r"teen(?:s|age|aged|ager|agers)?|minors|under[\s-]*eighteen|middle\s*school\w*|junior\s*school\w*"
                r"|elementary\s*school\w*|primary\s*school\w*|grade\s*school\w*|junior\s*high|high\s*school"
                r"|young[\s-]*looking|looks?\s+(?:so\s+|very\s+|really\s+|super\s+)?(?:young|underage"
                r"|like\s+a\s+(?:kid|child|teen))|little\s+(?:girls?|boys?)|young\s+(?:girls?|boys?)"
            ),
            *_prefixed([*_words("a|is|am|as|be|being|with|for"), *_PRONOUNS], r"\s+minor" + _MINOR_NOT_PERSON),
            *_prefixed(
                [*_PRONOUNS, r"just\s+turned", "turning", "only", "aged?"],
                _AGE_ADVERB + r"\s+" + _AGE_WORDS + _WORD_UNITS,
            ),
            *_prefixed(_words(_PERSON_NOUNS), _PERSON_IS + _AGE_ADVERB + r"\s+" + _AGE_WORDS + _WORD_UNITS),
            *_prefixed(_words(_NUMBER_WORDS), r"[\s-]*(?:yo|y/o|years?[\s-]*old|year[\s-]*old)"),
            *_words(
                r"ados?|adolescent(?:e|es|s)?|mineure?s?|jovencitas?|jovencitos?|chiquillas?|petites?\s+filles?"
                r"|jeunes?\s+filles?|(?:dix|onze|douze|treize|quatorze|quinze|seize|dix[\s-]*sept)\s+ans\b(?!\s*d'|\s+de\s)"
                r"|(?:diez|once|doce|trece|catorce|quince|dieciseis|diecisiete)\s+anh?(?:os|itos)\b(?!\s+de\s(?!edad))"
            ),
            *_prefixed(
                _words("una|es|eres|soy|sea|era|une|est|suis|etait"),
                r"\s+menor\b(?!\s+(?:precio|costo|coste|cantidad|parte|medida|problema|importancia|tamanh?o|valor"
                r"|numero|riesgo))",
            ),
            *_prefixed(
                _words("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh"),
                r"\s+grade\w*",
            ),
        ],
        "minor_child": _words(
            r"child|children|childs|kids?|kiddies?|kiddos?|toddlers?|infants?|youngsters?|tweens?|juveniles?"
            r"|girl\s*child|enfants?|gamin(?:e|es|s)?|fillettes?|bambins?|ninh?os?|ninh?itos?|ninh?itas?|ninh?as"
            r"|ninha|(?:una|la|las|unas|esta|mi|tu|su)\s+nina"
        ),
        "nc_always": _words(
            r"rap(?:e|es|ed|ing|ist|ists|ey)|non[\s-]*con(?:s?ensual|sent(?:ed|ing)?)?|noncon\w*|dub[\s-]*con\w*"
            r"|without\s+(?:(?:her|his|their|my|your|a|any|the|our)\s+)?consent"
            r"|against\s+(?:her|his|their|my|your|our)\s+will|revenge\s*porn\w*|up\s*skirts?|down\s*blouses?"
            r"|creep\s*shots?|hidden[\s-]*(?:cams?|cameras?)|secret[\s-]*(?:cams?|cameras?)|spy[\s-]*(?:cams?"
            r"|cameras?)|sextort\w*|drugged|drugging|roof(?:ie|ies|ied|ying)|somnophil\w*"
            r"|secretly\s+(?:film|record|tap)\w*|molest\w*|rape[\s-]*play\w*|spiked\s+(?:her|his|their|my|your)\s+drinks?"
            r"|slipped\s+(?:[a-z]+\s+){0,2}(?:in|into)\s+(?:her|his|their|my|your)\s+drinks?"
            r"|ignored\s+(?:her|his|their|my|your)\s+(?:no|noes|protests?|pleas?|begging|screams?|tears)"
            r"|viol|viols|violer|viole(?:e|es|s)?|violait|violad[oa]s?|violar(?:la|lo|las)?|violador(?:es)?"
            r"|sans\s+(?:(?:son|leur|mon|ton|votre|notre|le)\s+)?consentement"
            r"|contre\s+(?:son|sa|leur|mon|ma|ton|ta)\s+(?:gre|volonte)"
            r"|sin\s+(?:(?:su|el|mi|tu|nuestro)\s+)?consentimiento|contra\s+(?:su|mi|tu)\s+voluntad"
            r"|cam(?:e|a)ras?\s+(?:cachee?s?|ocultas?|escondidas?)|drogu(?:ee|ees|er)|drogad[oa]s?"
            r"|non[\s-]*consent(?:ant|ante|antes|ants|ement)|no\s+consentid[oa]s?|no\s+consensual"
            r"|(?:a|avait)\s+dit\s+non\s+mais|disait\s+non\s+mais|malgre\s+(?:son|leur|mon|ses)\s+(?:refus|non)"
            r"|(?:dijo|decia)\s+que\s+no\s+pero|a\s+pesar\s+de\s+(?:su\s+negativa|que\s+dijo\s+que\s+no)"
        ),
        "nc_always_said_no": [
            *_prefixed(
                _words(
                    r"said|says|saying|screamed|screaming|yelled|begged|begging|cried|kept\s+saying"
                    r"|(?:told|begged|asked|pleaded\s+with|screamed\s+at|yelled\s+at)\s+(?:me|him|her|them|us)\s+to"
                ),
                r"\s+(?:no|stop)\b[^.!?\n]{0,40}?\b(?:kept\s+going|kept\s+on|continued|carried\s+on|anyway"
                r"|did\s*n'?t\s+stop|would\s*n'?t\s+stop|didnt\s+stop|wouldnt\s+stop|ignored|went\s+on"
                r"|still\s+(?:went|did|took|fucked|kept|had))",
            ),
            *_prefixed(
                _words(r"kept|keep|keeps"),
                r"\s+(?:on\s+)?going\s+(?:after|when|even\s+(?:though|after|when|as)|though|while|as)"
                r"\s+(?:she|he|they|i|you)\s+(?:said|says|was\s+saying|were\s+saying|screamed|begged|cried)"
                r"\s+(?:no|stop)",
            ),
        ],
        "nc_act": [
            r"forc(?:ed|ing|ibly)" + _FORCED_NOT_SEXUAL,
            *_words(
                r"force\s+(?:her|him|them|you|u|me)|blackmail\w*|coerc\w*|extort\w*|grop(?:e|ed|es|ing)"
                r"|did\s*n'?t\s+consent\w*|does\s*n'?t\s+consent\w*|do\s*n'?t\s+consent\w*|never\s+consent\w*"
                r"|not\s+consent\w*"
                r"|can'?t\s+say\s+no|cannot\s+say\s+no|could\s*n'?t\s+say\s+no|couldnt\s+say\s+no"
                r"|unable\s+to\s+(?:say\s+no|refuse|fight\s+back)|too\s+(?:weak|drunk|scared|high)\s+to\s+(?:say"
                r"\s+no|refuse|fight\s+back|move|stop\s+(?:him|her|them|it))|can'?t\s+(?:refuse|fight\s+back)"
                r"|did\s*n'?t\s+want\s+it|(?:held|pinned)\s+(?:her|him|them|me)\s+down"
                r"|would\s*n'?t\s+take\s+no\s+for\s+an\s+answer|forcees?|forzad[oa]s?|a\s+la\s+fuerza"
                r"|(?:pas\s+pu|peut\s+pas|pouvait\s+pas|pu\s+pas)\s+dire\s+non"
                r"|(?:no\s+pudo|no\s+puede|no\s+podia)\s+decir\s+que\s+no|abusad[oa]s?|abusar\s+de"
                r"|violacion(?:es)?|abusee?s?"
            ),
        ],
        "nc_sleep": _words(
            r"asleep|sleeping|too\s+drunk"
            r"|drunk\s+(?:girls?|guys?|wom[ae]n|m[ae]n|wife|husband|gf|bf|babes?|her|him|stepsis\w*|roommates?)"
        ),
        # Words that already describe someone out of it: a sexual act nearby is enough.
        "nc_out": _words(
            r"unconscious|out\s+cold|endormie?s?|inconscient(?:e|es|s)?|evanouie?s?|dormid[oa]s?|desmayad[oa]s?"
            r"|ivre\s+morte?|borrach[oa]\s+perdid[oa]|passed[\s-]*out|blacked[\s-]*out|knocked[\s-]*out"
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
            *_prefixed(
                _words(_PERSON_NOUNS + r"|step[\s-]*(?:sis|sister|bro|brother|daughter|son)"),
                _PERSON_IS + _AGE_ADVERB + r"\s+(?:1[0-7]|[1-9])(?!['\"]\s*\d)" + _UNITS,
            ),
            *_prefixed(
                _words(_PERSON_NOUNS + r"|step[\s-]*(?:sis|sister|bro|brother|daughter|son)"),
                r"\s*[,(]\s*(?:1[0-7]|[1-9])\s*[,)]",
            ),
            *_prefixed(
                _words(r"a|ai|as|avait|avoir|de|d'|agee?\s+de|age\s+de|elle|il"),
                r"\s*(?:1[0-7]|[1-9])\s*ans\b(?!\s*(?:d'|de\s))",
            ),
            *_prefixed(
                _words(r"tiene|tengo|tienes|tenia|tenga|de|con|cumplio|cumple|cumplir"),
                r"\s+(?:1[0-7]|[1-9])\s*anh?(?:os|itos)\b(?!\s+de\s(?!edad))",
            ),
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


_KINDS = {name: name.partition("__")[0] for name in _TRIGGERS.groupindex}
_RULE_OF = {
    kind: MINORS if kind.startswith("minor") else NON_CONSENT if kind.startswith("nc") else FABRICATED_CLAIM
    for kind in _KINDS.values()
}
_ALWAYS = frozenset({"minor_always", "nc_always", "nc_always_said_no", "invent"})
_NEEDS = {
    "minor_child": "sexual",
    "nc_act": "acts",
    "nc_out": "acts",
    "nc_sleep": "acts",
    "nc_leak": "leaks",
}  # context required


def _violations(rule: str, excerpts: Iterable[str], message: str | None = None) -> list[Violation]:
    unique = list(dict.fromkeys(excerpts))[:_MAX_PER_RULE]
    return [Violation(rule, message or MESSAGES[rule], excerpt) for excerpt in unique]


def _hard_rules(
    text: Normalised,
    *,
    facts: Mapping[str, object] | None,
    request: bool,
    assume_sexual: bool = False,
    adult_context: bool = False,
) -> list[Violation]:
    """Every hard-rule violation of one text (request or output), at most _MAX_PER_RULE per rule.

    The phrase rules run on ``text.plain`` (ages, claims) and on each view rewritten by the
    lexicon (apps/safety/lexicon.py). ``assume_sexual``: context rules treat the text as sexual
    (a tag on an adult creator's post has no sentence around it to tell). ``adult_context``: only
    the minors rules do (a direct message from an adult creator to a fan: an age under 18 or a
    child word needs no flirty word next to it), while non-consent keeps its own context."""
    plain = text.plain
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

    for view in map(canonical, text.views):
        sexual = _Context(view, _SEXUAL, always=assume_sexual or adult_context)
        acts = _Context(view, _ACTS, always=assume_sexual)
        leaks = _Context(view, _LEAK_CONTEXT, always=assume_sexual)
        contexts = {"sexual": sexual, "acts": acts, "leaks": leaks}
        skip: set[str] = {"minor_always", "minor_child"} if full(MINORS) else set()
        for m in _TRIGGERS.finditer(view):
            kind = _KINDS[m.lastgroup]
            if kind in skip:
                continue
            # A kind whose context is absent from the whole view is skipped from its first match
            # on: a long text that repeats a trigger word costs one look-up per match. The cue
            # words are looked for only once a trigger needs them; most texts have no trigger.
            needed = _NEEDS.get(kind)
            if needed is not None and not contexts[needed].anywhere():
                skip.add(kind)
                continue
            if kind == "minor_person":
                if len(person) < _MAX_PER_RULE:
                    person.append(_excerpt(m))
                continue
            rule = _RULE_OF[kind]
            if full(rule) or (kind == "invent" and not request):
                skip |= {k for k, r in _RULE_OF.items() if r == rule}
                continue
            start, end = m.start(), m.end()
            if (
                kind in _ALWAYS
                or (kind == "minor_child" and sexual.near(start, end, _CHILD_WINDOW, same_sentence=True))
                or (kind in {"nc_act", "nc_out"} and acts.near(start, end, _ACT_WINDOW))
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
