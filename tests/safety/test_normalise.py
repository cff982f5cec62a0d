"""Layer 1 of the safety policy: normalisation (apps/safety/text.py, apps/safety/confusables.py).

One function produces the copies every rule reads; these tests look at the copies themselves."""

from __future__ import annotations

import pytest

from apps.safety.confusables import LOOKALIKES
from apps.safety.text import normalise


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u1d1b\u1d07\u1d07\u0274", "teen"),  # small capitals
        ("\u0131", "i"),  # dotless i
        ("\u0455\u0441\u04bb\u043e\u043el", "school"),  # Cyrillic
        ("\U0001d42d\U0001d41e\U0001d41e\U0001d427", "teen"),  # mathematical bold
        ("\u13a2", "t"),  # Cherokee
        ("\u00f8", "o"),  # o with stroke: not decomposed by NFKD
    ],
)
def test_lookalike_letters_of_any_script_become_ascii(text, expected):
    assert normalise(text).plain == expected


def test_lookalike_table_comes_from_unicode_data_not_a_hand_list():
    assert len(LOOKALIKES) > 1000
    assert all(ord(c) > 127 for c in map(chr, LOOKALIKES))
    assert all(v.isascii() and v.isalnum() and not v.isupper() for v in LOOKALIKES.values())


def test_plain_copy_keeps_digits_accents_dropped_and_enye_apart():
    copy = normalise("Élodie, 16 ans; la niña y Nina")
    assert copy.plain == "elodie, 16 ans; la ninha y nina"


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("t.e.e.n", "teen"),
        ("t e e n  n u d e s", "teen nudes"),  # letters one space apart, words two
        ("s-c-h-o-o-l", "school"),
        ("t33n", "teen"),
        ("teeeeen", "teen"),
        ("te\u200ben", "teen"),
    ],
)
def test_views_undo_spacing_leetspeak_and_repeats(text, view):
    assert view in normalise(text).views


def test_separators_inside_words_are_left_for_the_lexicon():
    """ "school-girl" and "teen-porn" look alike to normalisation; only the lexicon knows which
    halves make a word (tests/safety/test_lexicon.py)."""
    assert normalise("school-girl").views == ("school-girl",)
    assert normalise("teen-porn").views == ("teen-porn",)


def test_leetspeak_gives_one_view_per_reading_of_one():
    assert normalise("l0l1").views == ("loli", "loll")
    assert normalise("no digits").views == ("no digits",)


def test_disclaimers_are_removed_before_matching():
    assert "minors" not in normalise("Strictly 18+, no minors allowed").plain
