"""Tags and hashtags through the safety policy (``check_tags``): a failing tag is dropped and
reported."""

from __future__ import annotations

import pytest

from apps.safety import MINORS, NON_CONSENT, check_tags


@pytest.mark.parametrize(
    ("tag", "rule"),
    [
        ("#teen", MINORS),  # a tag on an adult creator's post is read as sexual text
        ("#teensex", MINORS),
        ("#HotTeen", MINORS),
        ("#barelylegalteens", MINORS),
        ("#sch_oolgirl", MINORS),
        ("#skoolgurl", MINORS),
        ("#16yo", MINORS),
        ("#kids", MINORS),
        ("#nonconsensual", NON_CONSENT),
        ("#drugged", NON_CONSENT),
        ("upskirt", NON_CONSENT),  # without "#" too (idea tags)
    ],
)
def test_failing_tags_are_dropped_and_reported(tag, rule):
    kept, violations = check_tags(["#lingerie", tag, "#petite"])
    assert kept == ["#lingerie", "#petite"]
    [violation] = violations
    assert violation.rule == rule
    assert violation.excerpt == "#" + tag.lstrip("#")
    assert tag.lstrip("#") in violation.message


@pytest.mark.parametrize("tag", ["#canteen", "#grapes", "#kidding", "#18plus", "#petite", "#babygirl", "#cosplay"])
def test_ordinary_tags_pass(tag):
    assert check_tags([tag]) == ([tag], [])


def test_empty_tags_are_skipped():
    assert check_tags([None, "", "#", "#bikini"]) == (["#bikini"], [])
