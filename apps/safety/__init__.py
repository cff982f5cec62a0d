"""The content policy: what may be asked for and what may be said, for every feature.

Public API (import from ``apps.safety`` only; the submodules are internal):

* ``check_request(texts)``: refuse a request (media description, goal, every fan field …);
* ``apply_policy(text, …)``: check and clean one generated text (caption, message, idea title
  and description);
* ``stream_violations(text)``: the minors and non-consent rules on text still streaming in;
* ``check_tags(tags)``: keep the tags and hashtags that pass, report the others.

The studio uses it today; the fan inbox and campaigns are next. It only decides *what may be
said*; HTML escaping of the output is the templates' and the UI's job, done separately. An
outside moderation endpoint, when an agency has one, is the AI gateway's business
(apps/ai/moderation.py): features combine its answer with this policy.

Three layers, each tested on its own (tests/safety/):

1. normalisation (``text.normalise``): one function, run once per text, producing the copies
   the rules read: ``plain`` (digits kept) and the word ``views``;
2. the lexicon (``lexicon.canonical``): misspelled, phonetic, split or slightly altered words
   rewritten to the policy's terms ("skool gurl", "chi ld", "jailbiat", "school-girl");
3. the phrase rules (``hard_rules``): word lists and phrases in English, French and Spanish,
   with their context checks, run on ``plain`` and on each rewritten view.

Pure Python, no database: callers pass the creator's lists and the platform. Every static regex is
compiled once at import and written so that matching stays linear in the input (bounded
repetitions, disjoint character classes next to each other, numbers anchored to the start of a
digit run, word lists compiled so re can skip ahead — see _lead): a 50 KB hostile string is
checked in a few tens of milliseconds (tests/safety/test_policy.py allows 100 ms). The lexicon
precomputes its look-up structures at import and memoises each token.

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

Normalisation and lexicon (hard rules only; filters work on the original text)
-----------------------------------------------------------------------------
NFKD with accents dropped ("tëen", full-width letters; "ñ" kept apart as "nh" so "niña" is not
the name "Nina"), case folding, zero-width characters and soft hyphens removed, typographic quotes
and dashes made ASCII, look-alike letters of every script mapped to ASCII from the Unicode
confusables data and character names (small capitals, dotless i, Cyrillic, Greek, mathematical
letters: apps/safety/confusables.py), spaced-out letters joined ("t.e.e.n", "t e e n  n u d e s"),
leetspeak undone inside words that contain a letter (0→o, 1→i or l, 3→e, 4→a, 5→s, 7→t, @→a,
$→s: "t33n", "l0li"), and runs of three or more of the same letter cut to two ("teeeen"). Ages
are read from a copy without leetspeak so "16yo" keeps its digits. Then the lexicon joins words
split by a space or a separator ("chi ld", "school-girl", "sch.oolgirl", "barely_legal",
"drug'd"), maps known spellings ("skool", "gurl", "teeny", "lil"), phonetic keys ("skoolgirl")
and words one edit away from a term ("jailbiat", "chlid"), except listed real words ("chill").
Excerpts of hard-rule violations come from the normalised text (lower case).

Also matched (English, French, Spanish): an age under 18 stated about anyone ("my cousin who is
16", "step-sis is 16", "elle a 15 ans", "tiene 16 años"), ages in words ("twelve", "fifteen-year-
old", "quinze ans", "doce años"), a child described without an age ("hasn't hit puberty", "lil
girl", "avant la puberté"), and non-consent described without the listed words ("said no but
kept going", "can't say no" next to a sexual act, "passed out", "spiked her drink", "dijo que no
pero", "sans son consentement").

Tags
----
``check_tags`` reads each tag as text on an adult creator's post (the context rules treat it as
sexual, so "#teen" alone is refused) and also split into the words it is made of ("#teensex" →
"teen sex", "#hotteen"); only the minors and non-consent rules apply.

``check_request`` checks all the texts of a request together (a flirty goal and "he's 16" in
the fan notes combine), except that a child word needs its cue in the same sentence.

Direct-message conduct (``apply_policy(..., direct_message=True)``; conduct.py)
-------------------------------------------------------------------------------
For messages sent in a creator's name to one fan (the inbox's AI drafts), where the fan's own
words may have steered the model. Hard rules, matched on the normalised copies like the rules
above, in English, French and Spanish:

``off_platform``
    payment or contact outside the platform: CashApp, PayPal, Venmo, Zelle, crypto and wallet
    addresses, gift cards, wire or bank transfers, Telegram, WhatsApp, Snapchat, Kik, Discord,
    "my number", "text me at", "outside OnlyFans", a $cashtag, an e-mail address, a phone number;
``meeting``
    meeting in person: "in person", "irl", "let's meet", "meet you at/for/tonight…" (not "meet me
    in my DMs/live"), "come over", "come to my place", "at your hotel", "go on a date", "se voir",
    "viens chez moi", "en persona" (not "back at my place", "je suis chez moi", "en mi casa");
``false_promise``
    refunds and free content: "refund", "money back", "for free", "free video/pics/PPV…", "on the
    house", "remboursé", "gratuit", "reembolso", "gratis" ("feel free" and "free trial" pass);
``persona_break``
    speaking as what writes the draft rather than the creator: "as an AI", "language model",
    "chatbot", "ChatGPT", "my instructions", "system prompt", "I'm her assistant/manager", "this is
    the agency", the refusal boilerplate "I'm sorry, but I can't …", "en tant qu'IA", "soy una IA".

Naming an app or a refund even to decline counts: the draft prompt tells the model to decline
without naming it. A direct message is also read as sexual by the minors rules (it goes from an
adult creator to a fan on an adult platform): an age under 18, a teen word or a child word is
refused without a flirty word next to it ("your little 16 year old stepsister is all yours").

``prompt_leak`` (``apply_policy(..., prompt=…)``): the text repeats eight or
more consecutive words of the protected prompt (the instructions alone, never the data the fan
or the creator wrote), case and punctuation ignored.

``blocked`` results carry only the hard-rule violations and ``needs_regeneration=False``: the
caller drops or refuses the item, and the filters are not run on text that is never shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from apps.safety.base import (
    _CHILD_WINDOW,
    _EXCERPT_LEN,
    _EXPLICIT_ALLOWED,
    AVOID_TOPIC,
    AVOID_WORD,
    BLOCKING_RULES,
    FABRICATED_CLAIM,
    MINORS,
    NON_CONSENT,
    PLATFORM_EXPLICIT,
    PolicyResult,
    Violation,
)
from apps.safety.conduct import (
    CONDUCT_RULES,
    FALSE_PROMISE,
    MEETING,
    OFF_PLATFORM,
    PERSONA_BREAK,
    PROMPT_LEAK,
    conduct_violations,
    prompt_leak,
)
from apps.safety.filters import _clean_list, _drop_explicit, _drop_topics, _drop_words, _tidy
from apps.safety.hard_rules import _hard_rules
from apps.safety.lexicon import segment
from apps.safety.text import normalise

__all__ = [
    "AVOID_TOPIC",
    "AVOID_WORD",
    "BLOCKING_RULES",
    "CONDUCT_RULES",
    "FABRICATED_CLAIM",
    "FALSE_PROMISE",
    "MEETING",
    "MINORS",
    "NON_CONSENT",
    "OFF_PLATFORM",
    "PERSONA_BREAK",
    "PLATFORM_EXPLICIT",
    "PROMPT_LEAK",
    "STREAM_OVERLAP",
    "PolicyResult",
    "Violation",
    "apply_policy",
    "check_request",
    "check_tags",
    "platform_allows_explicit",
    "stream_violations",
]


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
    return _hard_rules(normalise(joined), facts=None, request=True)


def stream_violations(text: str) -> list[Violation]:
    """The minors and non-consent violations in a piece of text that is still streaming in.

    Meant for a sliding window over the text so far (see ``STREAM_OVERLAP``): context rules look
    at most ``_CHILD_WINDOW`` characters around a trigger, so a window that overlaps the previous
    one by ``STREAM_OVERLAP`` catches every such pair. An age stated far away from a sexual cue
    is only caught by ``apply_policy`` on the finished text, which always runs."""
    if not text.strip():
        return []
    return [v for v in _hard_rules(normalise(text), facts=None, request=False) if v.rule in _STREAMING_RULES]


_STREAMING_RULES = frozenset({MINORS, NON_CONSENT})
STREAM_OVERLAP = _CHILD_WINDOW + 2 * _EXCERPT_LEN  # the widest trigger-and-cue pair a context rule joins


def apply_policy(
    text: str,
    *,
    avoid_words: Iterable[str] | None = (),
    avoid_topics: Iterable[str] | None = (),
    platform: str | None = None,
    facts: Mapping[str, object] | None = None,
    direct_message: bool = False,
    prompt: str | None = None,
) -> PolicyResult:
    """Check and clean one generated text: hard rules block; the do-not-say lists and the
    platform's rules filter.

    ``facts`` holds the numbers the creator supplied (e.g. ``{"unlocks": 23}``); a social-proof or
    scarcity claim is allowed only when its number is one of them. ``direct_message`` adds the
    conduct rules of a message to one fan; ``prompt`` is the instruction text the message was
    written from (a long span of it in ``text`` is a leak)."""
    text = text or ""
    normalised = normalise(text)
    hard = _hard_rules(normalised, facts=facts, request=False, adult_context=direct_message)
    if direct_message:
        hard += conduct_violations(normalised)
    if prompt:
        hard += prompt_leak(text, prompt)
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


_MAX_TAG = 60  # characters: a longer "tag" is cut before it is read (segmenting is quadratic)
_TAG_LETTERS = re.compile(r"[^\W\d_]+")


def check_tags(tags: Iterable[str | None]) -> tuple[list[str], list[Violation]]:
    """The tags (hashtags, idea tags) that may be used, in order, and one violation per tag that
    may not (its ``excerpt`` is the tag). A tag is refused by the minors and non-consent rules,
    read as sexual text, whole and split into the words it is made of."""
    kept: list[str] = []
    violations: list[Violation] = []
    for tag in tags:
        if not tag or not str(tag).strip("# "):
            continue
        raw = str(tag).strip()[:_MAX_TAG]
        name = raw.lstrip("#")
        # "#TeenSex" → "Teen Sex"; "#teensex" → "teen sex" (the lexicon's segmentation)
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
        pieces = [segment(w.casefold()) for w in _TAG_LETTERS.findall(normalise(words).plain)]
        text = f"{words}\n{name}\n{' '.join(pieces)}"
        found = [
            v
            for v in _hard_rules(normalise(text), facts=None, request=False, assume_sexual=True)
            if v.rule in _STREAMING_RULES
        ]
        if found:
            message = f"Dropped the tag “#{name}”: {found[0].message}"
            violations.append(Violation(found[0].rule, message, ("#" + name)[:_EXCERPT_LEN]))
        else:
            kept.append(str(tag))
    return kept, violations
