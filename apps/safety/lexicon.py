"""The lexicon layer: misspelled, phonetic, split or slightly altered words rewritten to the
policy's own terms, so the phrase rules (apps/safety/hard_rules.py) see "school girl" in
"skool gurl", "child" in "chi ld" and "chlid", "jailbait" in "jailbiat".

``canonical(view)`` rewrites one normalised view (apps/safety/text.py) token by token:

1. a token that is a term stays;
2. a known spelling (``SPELLINGS``: "skool", "gurl", "teeny", "lil", "drugd" …) becomes its word;
3. a token of 5+ letters whose phonetic key (see ``phonetic_key``) equals a term's becomes that
   term ("skoolgirl");
4. a token of 5+ letters at edit distance 1 from a term becomes that
   term ("jailbiat", "chlid"), unless it is a real word in ``NEAR_MISSES`` ("chill", "rapid");
5. two tokens split by one space or a separator ("-", "_", ".", "'") whose concatenation is a term
   or a known spelling (steps 1 and 2) become it ("chi ld", "school-girl", "sch.oolgirl", "barely_legal", "drug'd").

Edit distances use ``rapidfuzz`` (optimal string alignment: a swap of two letters is one edit,
as a substitution, insertion or deletion is); the candidates come from a deletion index built at import
(every term with one letter deleted), so one token costs a few dictionary look-ups, not a pass
over the lexicon. Results are memoised per token. The lexicon only rewrites words: whether a
word blocks (always, with a sexual cue anywhere, in the same sentence) is the phrase rules' job.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz.distance import OSA


def _word_list(text: str) -> list[str]:
    return text.split()


# The policy's terms, letters only, compounds joined. Each one is matched by a phrase rule.
TERMS: frozenset[str] = frozenset(
    _word_list(
        """
    loli lolis lolicon lolita lolitas shota shotacon jailbait barelylegal underage underaged pedo pedos
    pedophile pedophiles pedophilia paedophile paedophiles paedophilia pedofilo pedofila preteen preteens
    schoolgirl schoolgirls schoolboy schoolboys highschooler highschoolers prepubescent csam kiddieporn
    ecoliere ecolieres collegienne collegiennes lyceenne lyceennes colegiala colegialas preadolescente
    teen teens teenage teenaged teenager teenagers minors adolescent adolescents adolescente adolescentes
    mineure mineures jovencita jovencitas
    child children kid kids kiddie kiddies kiddo kiddos toddler toddlers infant infants youngster youngsters
    tween tweens juvenile juveniles enfant enfants gamine gamines fillette fillettes ninos ninas
    rape rapes raped raping rapist rapists noncon nonconsensual nonconsent dubcon upskirt upskirts
    downblouse creepshot creepshots sextortion drugged drugging roofie roofies roofied somnophilia
    violer violee violees violada violadas violado violador droguee droguees drogada drogadas drogado
    asleep sleeping unconscious endormie inconsciente dormida desmayada evanouie
    forced molested molesting groped groping coerced blackmailed forcee forzada forzado
        """
    )
)

# Spellings that are not one edit away (or are too short for edit distance) → the word meant.
SPELLINGS: dict[str, str] = {
    "skool": "school", "skul": "school", "skewl": "school", "schol": "school",
    "gurl": "girl", "gurls": "girls", "grl": "girl", "grls": "girls", "gurlz": "girls", "girlz": "girls",
    "boi": "boy", "bois": "boys",
    "teeny": "teen", "teenie": "teen", "teenies": "teens", "teenz": "teens", "tene": "teen", "tenn": "teen",
    "tein": "teen", "teeen": "teen", "teenaga": "teenage",
    "yung": "young", "yong": "young", "younge": "young",
    "lil": "little", "litle": "little", "lilttle": "little",
    "kidz": "kids", "kiddy": "kiddie", "kidd": "kid", "chyld": "child", "chiled": "child",
    "lolli": "loli", "loly": "loli", "lollie": "loli", "lolly": "loli", "pedoz": "pedos",
    "rayp": "rape", "raype": "rape", "rayped": "raped", "raip": "rape", "raiped": "raped",
    "drugd": "drugged", "druggd": "drugged", "drugged": "drugged", "rufied": "roofied", "ruffied": "roofied",
    "rufies": "roofies", "ruffies": "roofies", "roofy": "roofie", "rufie": "roofie",
    "noncon": "noncon", "nonkon": "noncon", "dubkon": "dubcon",
    "minr": "minors", "minrs": "minors", "minour": "minors", "minours": "minors",
    "asleap": "asleep", "aslep": "asleep", "unconcious": "unconscious",
}  # fmt: skip

# Real words one edit (or one phonetic key) away from a term: never rewritten.
NEAR_MISSES: frozenset[str] = (
    frozenset(
        _word_list(
            """
    chill chills chile chiles chili chilis chide chided childs
    rapid rated raced raked raved razed roped taped rapped reaped capes tapes napes japes grapes drapes
    races rates rakes raves roping rating raking racing raving raring rapine reaping papist
    tweet tweets tweed tweeds tweeks twins teems
    minor minos manors infanta infante slipping
    shots shotas lolas louis logis
    sleep sleeps usleep sweeping steeping sleepin
    dragged dragging drugget
    rookie rookies roofed
    force forces forcer forded forged formed forked forcer
    grouped griped grouping growing griping
    violet violets viole violeta violent
    drogue drogues
    gaming gamins
    nines ninjas nikos
    mineurs
    pesos
    extortion
    coerce coerces
    mirors tiddler toddles coddler
        """
        )
    )
    - TERMS
)

# Words a separator may have split to dodge the rules around the terms ("nu-des", "lin_gerie").
JOINABLE: frozenset[str] = frozenset(
    _word_list(
        """
        school girl girls boy boys young little nude nudes naked lingerie sexy bikini photos pics porn horny
        topless explicit thong panties uniform cosplay strip tease video videos desnuda desnudo desnudas sexo
        sexe lenceria nue nues caliente coquine coquin photo fotos tanga culotte string barely legal jail bait
        hidden camera skirt consent consensual
        """
    )
)

_FUZZY_MIN = 5  # letters: shorter words have too many real neighbours at distance 1
_MAX_TOKEN = 30
_TOKEN = re.compile(r"[a-z]+")

_PHONETIC_TABLE = str.maketrans({"q": "k", "z": "s", "y": "i"})
_HARD_C = re.compile(r"ck|c(?=[aou])")
_LONG_E = re.compile(r"e[ea]")
_R_SOUND = re.compile(r"[ue]r(?![aeiou])")
_DOUBLED = re.compile(r"(.)\1+")


def phonetic_key(word: str) -> str:
    """A rough sound-alike key: "skoolgurl" and "schoolgirl" share one (sch→sk, ph→f, ck→k,
    c→k before a/o/u, q→k, z→s, y→i, ee/ea→i, ur/er→ir, doubled letters once)."""
    word = word.translate(_PHONETIC_TABLE)
    if "c" in word:
        word = _HARD_C.sub("k", word.replace("sch", "sk"))
    if "ph" in word:
        word = word.replace("ph", "f")
    if "e" in word:
        word = _LONG_E.sub("i", word)
    if "r" in word:
        word = _R_SOUND.sub("ir", word)
    return _DOUBLED.sub(r"\1", word)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _build_index(words: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """key (a word, or a word with one letter deleted) → the terms it may be one edit from."""
    index: dict[str, list[str]] = {}
    for key, term in words.items():
        for variant in {key} | _deletions(key):
            index.setdefault(variant, []).append(term)
    return {k: tuple(dict.fromkeys(v)) for k, v in index.items()}


_LONG_TERMS = sorted(t for t in TERMS if len(t) >= _FUZZY_MIN)
_BY_KEY: dict[str, str] = {}
for _term in sorted(TERMS, key=lambda t: (len(t), t)):
    _BY_KEY.setdefault(phonetic_key(_term), _term)
_FUZZY = _build_index({t: t for t in _LONG_TERMS})
_PREFIXES = frozenset(t[:2] for t in _LONG_TERMS)
_SUFFIXES = frozenset(t[-2:] for t in _LONG_TERMS)


def _closest(word: str) -> str | None:
    # One edit leaves the first two or the last two letters of a 5+ letter word in place.
    if word[:2] not in _PREFIXES and word[-2:] not in _SUFFIXES:
        return None
    candidates: dict[str, None] = dict.fromkeys(_FUZZY.get(word, ()))
    for variant in _deletions(word):
        candidates.update(dict.fromkeys(_FUZZY.get(variant, ())))
    best, best_distance = None, 2
    for term in candidates:
        distance = OSA.distance(word, term, score_cutoff=1)
        if distance < best_distance:
            best, best_distance = term, distance
    return best


@lru_cache(maxsize=8192)
def lookup(token: str) -> str | None:
    """The word ``token`` stands for, or None when it is none of the lexicon's (steps 1 to 4)."""
    if token in TERMS:
        return token
    if token in SPELLINGS:
        return SPELLINGS[token]
    if len(token) < _FUZZY_MIN or len(token) > _MAX_TOKEN or token in NEAR_MISSES:
        return None
    key = phonetic_key(token)
    if key in _BY_KEY:
        return _BY_KEY[key]
    return _closest(token)


def _joined(left: str, right: str) -> str | None:
    """The word two tokens make together, if the lexicon knows it as such ("chi ld", "school-girl",
    "drug'd"), or if it is one of the words the rules read around a term ("nu-des", "sch ool")."""
    word = left + right
    if word in TERMS or word in JOINABLE:
        return word
    return SPELLINGS.get(word)


_SEPARATOR = re.compile(r" |[-_.'*]{1,3}")


def canonical(view: str) -> str:
    """``view`` with every token the lexicon recognises written as the term it stands for."""
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(view)]
    out: list[str] = []
    position = i = 0
    count = len(tokens)
    while i < count:
        start, end, word = tokens[i]
        if i + 1 < count:
            next_start, next_end, next_word = tokens[i + 1]
            separator = _SEPARATOR.fullmatch(view, end, next_start) if next_start - end <= 3 else None
            # A word split by a space leaves a short piece ("chi ld", "skool gurl"); a hyphen, an
            # underscore or a dot may split anywhere ("barely_legal", "schoo-lgirl").
            if separator and (separator.group() != " " or len(word) <= 4 or len(next_word) <= 4):
                joined = _joined(word, next_word)
                if joined is not None:
                    out += [view[position:start], joined]
                    position, i = next_end, i + 2
                    continue
        found = lookup(word)
        if found is not None and found != word:
            out += [view[position:start], found]
            position = end
        i += 1
    if not out:
        return view
    out.append(view[position:])
    return "".join(out)


# Words a hashtag glues to a term ("#hotteen", "#teensex", "#barelylegalteens").
_TAG_WORDS = frozenset(
    _word_list(
        """
        hot cute sex xxx babe baby love my the and of in on for new only fans onlyfans fansly content tiny small
        petite big real amateur homemade first time ass tits boobs feet cam pussy dick cock slut model selfie
        """
    )
)
_SEGMENT_VOCABULARY = TERMS | SPELLINGS.keys() | JOINABLE | _TAG_WORDS
_LONGEST_PIECE = max(map(len, _SEGMENT_VOCABULARY))


def segment(word: str) -> str:
    """A hashtag's run of letters as the words it is made of, when it is made only of words the
    policy knows and at least one term ("teensex" → "teen sex"); otherwise ``word`` unchanged
    ("canteen", "grapes", "kidding"). Tags are short: the dynamic programme is quadratic in the
    tag's length, which callers cap."""
    n = len(word)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for end in range(1, n + 1):
        for start in range(max(0, end - _LONGEST_PIECE), end):
            piece = word[start:end]
            if best[start] is not None and piece in _SEGMENT_VOCABULARY:
                best[end] = [*best[start], piece]
                break
    pieces = best[n]
    if pieces and len(pieces) > 1 and any(p in TERMS or p in SPELLINGS for p in pieces):
        return " ".join(pieces)
    return word
