"""The safety policy (apps/safety/): hard rules block, creator lists and platform
rules filter. Pure functions: no database."""

from __future__ import annotations

import dataclasses
import time

import pytest

from apps.safety import (
    AVOID_TOPIC,
    AVOID_WORD,
    BLOCKING_RULES,
    FABRICATED_CLAIM,
    MINORS,
    NON_CONSENT,
    PLATFORM_EXPLICIT,
    PolicyResult,
    Violation,
    apply_policy,
    check_request,
    platform_allows_explicit,
)


def rules(result: PolicyResult | list[Violation]) -> set[str]:
    violations = result.violations if isinstance(result, PolicyResult) else result
    return {v.rule for v in violations}


def assert_blocked(result: PolicyResult, rule: str) -> None:
    assert result.blocked, result
    assert rule in rules(result)
    assert result.text == ""
    assert result.needs_regeneration is False
    assert all(v.rule in BLOCKING_RULES for v in result.violations)
    assert all(v.message and 0 < len(v.excerpt) <= 60 for v in result.violations)


def assert_clean(result: PolicyResult, text: str) -> None:
    assert not result.blocked, result.violations
    assert result.violations == []
    assert result.text == text
    assert result.needs_regeneration is False


# -- minors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hot t33n pics",
        "s.c.h.o.o.l.g.i.r.l outfit tonight",
        "sexy sch00lg1rl roleplay",
        "sexy 16yo",
        "16 yo in lingerie",
        "my 16-year-old body 😈",
        "15 years old and naughty",
        "age 17, naughty",
        "im 17 and horny",
        "I'M 17 AND HORNY",
        "She\u2019s sixteen and flirty",
        "flirty caption, she is only 15 in this pic",
        "i am just 16 lol 😈",
        "T E E N nudes",
        "t_e_e_n nudes",
        "t-e-e-n nudes",
        "\u0405exy t\u0435\u0435n",  # Cyrillic look-alike letters
        "\uff54\uff45\uff45\uff4e lingerie",  # full-width letters
        "te\u200ben lingerie",  # zero-width space
        "tëen lingerie",
        "teeeeen nudes",
        "l0l1 cosplay",
        "1oli cosplay",
        "Barely Legal",
        "“barely legal” vibes",
        "JAILBAIT",
        "und3r4ge",
        "high school girl costume",
        "junior high crush, come flirt",
        "young-looking and naughty",
        "9th grade hottie",
        "under 18 and horny",
        "kids are asleep, time for something spicy 😈",
        # Trade-off, documented: flirty context makes any teen word a block.
        "Smells like teen spirit 😈",
        "my teenage years were awkward, now I'm naughty",
    ],
)
def test_minors_blocked(text):
    assert_blocked(apply_policy(text), MINORS)


@pytest.mark.parametrize(
    "text",
    [
        "18+ only",
        "I'm 25 and spicy 😈",
        "Strictly 18+, no minors allowed 😈",
        "college student (21) in lingerie",
        "my teenage years were awkward",
        "My dog is 15 years old today!",
        "Making minor tweaks to my sexy bio",
        "eighteen and nineteen candles, sexy",
        "Over 18s only, adults only 🔞",
        "My kids are at school. Time for a naughty video",
        "I'm 5 minutes away, get ready for something spicy",
        "I'm only 15 minutes away babe 😈",
        "She is 17 inches of trouble? No: 170 cm of sexy",
        "Under 10 minutes of nude content",
        "Canteen lunch, then a sexy shoot",
        "Just turned 21 and celebrating with you all 🥂",
        "I'm 5'4 of pure trouble 😈",
        "POV: you're my teacher and I'm late to class 😈",
    ],
)
def test_minors_false_positive_guards(text):
    assert_clean(apply_policy(text), text)


# -- non-consent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "r4pe fantasy",
        "non-con roleplay",
        "NONCON",
        "filmed without her consent",
        "against her will",
        "spy cam in the locker room",
        "hidden camera in the shower",
        "upskirt pics",
        "revenge porn of my ex",
        "drugged and used",
        "blackmail her into sex",
        "fuck her while she's passed out",
        "unconscious girl sex",
        "forced sex scene",
        "he forced me to strip",
        "my leaked nudes",
        "secretly filmed her undressing",
    ],
)
def test_non_consent_blocked(text):
    assert_blocked(apply_policy(text), NON_CONSENT)


@pytest.mark.parametrize(
    "text",
    [
        "forced perspective photo",
        "forced perspective photo of my booty",
        "Forced myself to the gym, now come reward me 😏",
        "forced to reschedule the nude shoot",
        "Sleeping in my new silk pajamas 😴",
        "grape and drape",
        "leaked news: a new set tomorrow",
    ],
)
def test_non_consent_false_positive_guards(text):
    assert_clean(apply_policy(text), text)


# -- fabricated claims ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "23 fans unlocked this",
        "Over 300 people just bought this",
        "2k subscribers already unlocked it",
        "1,200 subscribers already renewed",
        "23 of my fans have already unlocked it",
        "Only 2 slots left!",
        "only 3 spots left",
        "5 spots left",
        "40% of my fans tipped",
        "90 percent of you unlocked it",
        "SOLD OUT",
        "Everyone's buying this set",
        "my most popular video ever",
        "best-selling set of all time",
    ],
)
def test_fabricated_claims_blocked(text):
    assert_blocked(apply_policy(text), FABRICATED_CLAIM)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("23 fans unlocked this", {"unlocks": 23}),
        ("1.2k fans unlocked this", {"unlocks": 1200}),
        ("1,200 subscribers renewed", {"renewals": "1,200"}),
        ("only 3 spots left", {"spots_left": 3}),
        ("40% of my fans tipped", {"tip_rate": "40%"}),
        ("Sold out!", {"sold_out": True}),
        ("Everyone's buying this set", {"everyone_buying": True}),
    ],
)
def test_claims_backed_by_facts_are_allowed(text, facts):
    assert_clean(apply_policy(text, facts=facts), text)


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("24 fans unlocked this", {"unlocks": 23}),
        ("1 fan unlocked this", {"flag": True}),  # booleans are not numbers
        ("Sold out!", {"sold_out": False}),
    ],
)
def test_claims_not_backed_by_facts_are_blocked(text, facts):
    assert_blocked(apply_policy(text, facts=facts), FABRICATED_CLAIM)


@pytest.mark.parametrize(
    "text",
    [
        "Top 10 fans get a free video",
        "Only 3 days left to get 50% off my nudes",
        "Thank you 1000 followers! 😘",
        "save 20% on my bundle",
        "Just 2 more hours until the sexy drop!",
        "Tip me $15 for a naughty pic",
    ],
)
def test_ordinary_numbers_are_not_claims(text):
    assert_clean(apply_policy(text), text)


# -- requests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "rule"),
    [
        (["make up some sales numbers", "PPV teaser"], FABRICATED_CLAIM),
        (["", "add fake scarcity please"], FABRICATED_CLAIM),
        (["pretend it's sold out"], FABRICATED_CLAIM),
        (["invent social proof for the caption"], FABRICATED_CLAIM),
        (["fan says he is 16", "spicy PPV upsell"], MINORS),  # cue and age in different fields
        (["mirror pic in a schoolgirl skirt", None], MINORS),
        (["a rape fantasy caption"], NON_CONSENT),
        (["photos from a hidden cam"], NON_CONSENT),
    ],
)
def test_requests_refused(texts, rule):
    violations = check_request(texts)
    assert rule in rules(violations)
    assert all(v.message for v in violations)


@pytest.mark.parametrize(
    "texts",
    [
        ["I have 23 fans who unlocked it, mention that", "PPV teaser"],  # the creator's own number
        ["divorced dad, 2 kids, tips well", "flirty upsell message"],
        ["lingerie try-on, 18+ only", "tease the PPV", "loves feet pics"],
        [],
        ["", None],
    ],
)
def test_requests_allowed(texts):
    assert check_request(texts) == []


def test_request_fabricated_message_is_about_inventing():
    [violation] = check_request(["make up some sales numbers"])
    assert violation.rule == FABRICATED_CLAIM
    assert "invent" in violation.message


# -- avoid words ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "avoid", "expected", "removed"),
    [
        ("I love my cat and category pages", ["cat"], "I love my and category pages", ["cat"]),
        ("CAT lovers unite", ["cat"], "lovers unite", ["cat"]),
        ("Hey baby girl, wanna play?", ["baby girl"], "Hey, wanna play?", ["baby girl"]),
        ("Hey baby   girl", ["baby girl"], "Hey", ["baby girl"]),
        ("Don\u2019t be shy", ["don't"], "be shy", ["don't"]),
        ("Hi, daddy, come here", ["daddy"], "Hi, come here", ["daddy"]),
        ("daddy daddy honey", ["daddy", "honey"], "", ["daddy", "honey"]),
        ("I code c++ daily", ["c++"], "I code daily", ["c++"]),
        ("Cat (cat) time", [None, "", 5, " cat "], "time", ["cat"]),
    ],
)
def test_avoid_words_removed(text, avoid, expected, removed):
    result = apply_policy(text, avoid_words=avoid)
    assert not result.blocked
    assert result.text == expected
    assert result.needs_regeneration is True
    assert sorted(v.excerpt for v in result.violations if v.rule == AVOID_WORD) == sorted(removed)


@pytest.mark.parametrize(
    ("text", "avoid"),
    [
        ("concatenate the scatter category", ["cat"]),
        ("babygirl energy", ["baby girl"]),
        ("cats are cute", ["cat"]),  # whole word only: the plural is another word
        ("nothing to see", []),
    ],
)
def test_avoid_words_not_removed_inside_other_words(text, avoid):
    assert_clean(apply_policy(text, avoid_words=avoid), text)


# -- avoid topics ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topics", "expected"),
    [
        ("New set tonight. Feet pics for my fans! Subscribe now.", ["foot"], "New set tonight. Subscribe now."),
        ("Read my story. Bye.", ["stories"], "Bye."),
        ("My EX-BOYFRIEND called. Anyway, new video!", ["ex boyfriend"], "Anyway, new video!"),
        ("Gym day\nNew video tonight", ["gym"], "New video tonight"),
        ("Kisses for you. See you soon.", ["kiss"], "See you soon."),
    ],
)
def test_avoid_topics_drop_sentences(text, topics, expected):
    result = apply_policy(text, avoid_topics=topics)
    assert result.text == expected
    assert result.needs_regeneration is True
    assert rules(result) == {AVOID_TOPIC}


def test_avoid_topic_not_mentioned_changes_nothing():
    text = "Footnotes and feather boas. New set!"
    assert_clean(apply_policy(text, avoid_topics=["foot", "feathers boa"]), text)


# -- platform rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "allowed"),
    [
        ("onlyfans", True),
        ("fansly", True),
        ("x", True),
        ("reddit", True),
        (None, True),
        ("", True),
        ("instagram", False),
        ("tiktok", False),
        ("TikTok", False),
        ("youtube", False),  # unknown platform: the safe default
    ],
)
def test_platform_allows_explicit(platform, allowed):
    assert platform_allows_explicit(platform) is allowed


def test_explicit_wording_filtered_on_tiktok():
    text = "Send nudes 🍆💦 tonight, NSFW drop. So horny"
    result = apply_policy(text, platform="tiktok")
    assert not result.blocked
    assert result.needs_regeneration is True
    assert rules(result) == {PLATFORM_EXPLICIT}
    lowered = result.text.lower()
    for term in ("nudes", "🍆", "💦", "nsfw", "horny"):
        assert term not in lowered
    assert "spicy" in lowered and "exclusive" in lowered
    assert {v.excerpt for v in result.violations} == {"nudes", "🍆💦", "nsfw", "horny"}
    assert all("TikTok" in v.message for v in result.violations)


@pytest.mark.parametrize("platform", ["onlyfans", "fansly", None])
def test_explicit_wording_kept_on_adult_platforms(platform):
    text = "Send nudes 🍆💦 tonight, NSFW drop. So horny"
    assert_clean(apply_policy(text, platform=platform), text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Naked Sunday vibes", "Spicy Sunday vibes"),
        ("Cocktail class then a sexy photo", "Cocktail class then a sexy photo"),
        ("Analysis of my week", "Analysis of my week"),
        ("New sex tape out now", "New exclusive video out now"),
    ],
)
def test_explicit_filter_on_instagram(text, expected):
    assert apply_policy(text, platform="instagram").text == expected


def test_all_filters_together():
    text = "Hey daddy. Feet pics tonight! Naked yoga, unlock it."
    result = apply_policy(text, avoid_words=["daddy"], avoid_topics=["feet"], platform="instagram")
    assert result.text == "Hey. Spicy yoga, unlock it."
    assert rules(result) == {AVOID_WORD, AVOID_TOPIC, PLATFORM_EXPLICIT}
    assert result.needs_regeneration and not result.blocked


def test_hard_rules_win_over_filters():
    result = apply_policy("hot t33n, daddy", avoid_words=["daddy"], platform="tiktok")
    assert_blocked(result, MINORS)
    assert rules(result) == {MINORS}


def test_clean_text_passes_untouched():
    text = "New PPV dropping tonight 😈 unlock to see everything"
    assert_clean(apply_policy(text, avoid_words=["cat"], avoid_topics=["gym"], platform="onlyfans"), text)


def test_violation_is_frozen():
    violation = Violation(MINORS, "Mentions of minors are never allowed.", "teen")
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.rule = "other"  # type: ignore[misc]


# -- linear time ----------------------------------------------------------------------------------

_N = 50_000


def _distinct_word(i: int) -> str:
    """A different six-letter word for each i: no look-up is served from the lexicon's memo."""
    letters = []
    for _ in range(6):
        letters.append(chr(97 + i % 26))
        i //= 26
    return "".join(letters)


def _hostile(n: int) -> dict[str, str]:
    """Hostile inputs of about n characters (distinct words differ between sizes, so no size
    is served from another's memo)."""
    return {
        "letters": "a" * n,
        "spaces": " " * n,
        "digits": "1" * n,
        "spaced-out letters": "t . e . e . n " * (n // 14),
        "trigger words": "kid sexy forced asleep leaked under " * (n // 36),
        "ages and claims": "16 yo 17 only 1 1,000,000 fans just 40% of " * (n // 44),
        "leet and separators": ("$@1" + "." * 3 + "t3en! ") * (n // 12),
        "person and sleep": ("she " + " " * 40 + "x" * 20 + " asleep sex ") * (n // 76),
        "emoji": "🍆💦😈" * (n // 3),
        # the lexicon and the phrase rules added for obfuscation
        "distinct words (fuzzy look-ups)": " ".join(_distinct_word(i * 7919 + n) for i in range(n // 7)),
        "split fragments": "chi ld sch ool ki ds " * (n // 21),
        "separators": "a-b_c.d'e " * (n // 10),
        "said no": "she said no and " * (n // 16),
        "person ages": "my cousin who is is is 1 " * (n // 25),
        "look-alike letters": "\u1d1b\u0131\u0455\U0001d42d " * (n // 5),
    }


HOSTILE = _hostile(_N)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_50kb_input_is_checked_in_linear_time(name):
    """Four times the input costs about four times the time (a quadratic check would cost sixteen
    times; the bound is eight), and 50 KB stays well under a second. A ratio measured in one run
    holds on a slow or busy machine where an absolute budget in milliseconds does not."""
    text = HOSTILE[name]
    quarter = _hostile(_N // 4)[name]
    assert len(text) >= _N * 0.9 and len(quarter) >= _N * 0.2

    def cost(value: str) -> float:
        """The slower of the two entry points on the whole string, in this thread's CPU time, best
        of three (other processes delay the wall clock, not the work being measured)."""
        best = float("inf")
        for _ in range(3):
            start = time.thread_time()
            apply_policy(value, avoid_words=["cat", "x y z"], avoid_topics=["feet", "ex boyfriend"], platform="tiktok")
            middle = time.thread_time()
            check_request([value])
            best = min(best, max(middle - start, time.thread_time() - middle))
        return best

    apply_policy("warm up", avoid_words=["cat", "x y z"], avoid_topics=["feet", "ex boyfriend"])
    small, full = cost(quarter), cost(text)
    assert full < 1.0, f"{name}: {full * 1000:.0f} ms for 50 KB"
    assert full < 8.0 * max(small, 0.002), f"{name}: {small * 1000:.1f} ms for 12.5 KB, {full * 1000:.1f} ms for 50 KB"
