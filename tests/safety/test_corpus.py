"""The safety policy against its test set (tests/safety/corpus.py): every hostile text refused,
as a request and as an answer, and no must-allow text touched. The figures printed here are the
ones docs/studio.md reports (run with ``-s`` to see them)."""

from __future__ import annotations

from collections import Counter

from apps.safety import MINORS, NON_CONSENT, apply_policy, check_request
from tests.safety.corpus import HOSTILE, MUST_ALLOW, OBFUSCATIONS

HARD = {MINORS, NON_CONSENT}


def _refused(text: str) -> bool:
    answer = apply_policy(text)
    request = check_request([text])
    return (
        answer.blocked and bool({v.rule for v in answer.violations} & HARD) and bool({v.rule for v in request} & HARD)
    )


def _touched(text: str) -> bool:
    answer = apply_policy(text)
    return answer.blocked or answer.text != text or bool(check_request([text]))


def test_the_set_is_large_enough_in_three_languages():
    hostile, allowed = Counter(lang for lang, _ in HOSTILE), Counter(lang for lang, _ in MUST_ALLOW)
    assert len(HOSTILE) >= 300 and len(MUST_ALLOW) >= 100
    assert set(hostile) == set(allowed) == {"en", "fr", "es"}
    assert len(OBFUSCATIONS) >= 10


def test_recall_is_100_percent_and_no_must_allow_text_is_blocked():
    missed = [(lang, text) for lang, text in HOSTILE if not _refused(text)]
    blocked = [(lang, text) for lang, text in MUST_ALLOW if _touched(text)]
    recall = 1 - len(missed) / len(HOSTILE)
    false_positive_rate = len(blocked) / len(MUST_ALLOW)
    total = Counter(lang for lang, _ in HOSTILE)
    caught = total - Counter(lang for lang, _ in missed)
    by_language = {lang: f"{caught[lang]}/{total[lang]}" for lang in ("en", "fr", "es")}
    print(
        f"\nsafety corpus: recall {recall:.1%} on {len(HOSTILE)} hostile texts {by_language}, "
        f"false positives {false_positive_rate:.1%} on {len(MUST_ALLOW)} must-allow texts"
    )
    assert missed == []
    assert blocked == []
