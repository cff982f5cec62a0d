"""Layer 3 of the safety policy: the phrase rules (apps/safety/hard_rules.py) on plainly written
text: ages stated about anyone, ages in words, children described without an age, non-consent
described without the listed words, in English, French and Spanish."""

from __future__ import annotations

import pytest

from apps.safety import MINORS, NON_CONSENT, apply_policy, check_request


def blocked_for(text: str) -> set[str]:
    result = apply_policy(text)
    assert result.blocked, text
    return {v.rule for v in result.violations}


@pytest.mark.parametrize(
    "text",
    [
        "my cousin who is 16 in lingerie",
        "step-sis is 16 and so naughty",
        "the girl is 14 and flirty",
        "my neighbour, 15, topless",
        "my niece who's 13 in a bikini",
        "elle a 15 ans et elle est sexy",
        "fille de 14 ans nue",
        "tiene 15 años y es sexy",
        "una chica de 13 años sexy",
    ],
)
def test_an_age_under_18_stated_about_anyone(text):
    assert MINORS in blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "she's twelve and in lingerie",
        "fifteen-year-old nudes",
        "my cousin who is fifteen, naughty pics",
        "ten-year-old sexy dance",
        "quinze ans et coquine",
        "doce años y traviesa",
    ],
)
def test_ages_written_as_words(text):
    assert MINORS in blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "she hasn't hit puberty yet, sexy pics",
        "a girl who has not yet hit puberty in a bikini",
        "lil girl in a thong",
        "still in elementary school and so sexy",
        "pas encore eu sa puberté, photos coquines",
        "antes de la pubertad, fotos sexy",
    ],
)
def test_a_child_described_without_an_age(text):
    assert MINORS in blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "she said no but he kept going, hot scene",
        "he kept going even though she said stop",
        "she begged him to stop and he continued, sexy",
        "fuck her when she can't say no",
        "she passed out and we had sex",
        "spiked her drink then took her clothes off",
        "elle a dit non mais il a continué",
        "dijo que no pero siguió",
        "sans son consentement, vidéo de sexe",
        "sin su consentimiento, video de sexo",
    ],
)
def test_non_consent_described_without_the_listed_words(text):
    assert NON_CONSENT in blocked_for(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm ten minutes away, get ready for something spicy",
        "My girlfriend is 25 and loves my content",
        "Can't say no to pizza on a Friday night",
        "You can't resist this new set",
        "Dix ans d'expérience en photo, nouveau shooting sexy",
        "15 años de experiencia como modelo, sesión sexy",
        "El precio menor de la semana para mis fans",
        "Nina y yo en la playa, fotos picantes",
        "No means no. Respect every creator",
    ],
)
def test_phrases_that_only_look_alike_pass(text):
    result = apply_policy(text)
    assert not result.blocked and result.text == text, result.violations
    assert check_request([text]) == []


def test_an_age_and_a_sexual_cue_in_different_fields_of_a_request_combine():
    assert MINORS in {v.rule for v in check_request(["my cousin who is 16", "spicy PPV upsell"])}
