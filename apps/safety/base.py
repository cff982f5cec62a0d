"""Rule names, messages, limits and the result types of the safety policy.

Part of ``apps.safety``; its docstring describes the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MINORS = "minors"
NON_CONSENT = "non_consent"
FABRICATED_CLAIM = "fabricated_claim"
AVOID_WORD = "avoid_word"
AVOID_TOPIC = "avoid_topic"
PLATFORM_EXPLICIT = "platform_explicit"
BLOCKING_RULES = frozenset(
    {MINORS, NON_CONSENT, FABRICATED_CLAIM, "off_platform", "meeting", "false_promise", "persona_break", "prompt_leak"}
)  # the last five: conduct.py's direct-message rules

MESSAGES = {
    MINORS: "Mentions of minors are never allowed: anything that involves or suggests someone under 18 is refused.",
    NON_CONSENT: "Non-consensual content is never allowed (force, coercion, someone asleep or drugged, "
    "hidden cameras, leaks).",
    FABRICATED_CLAIM: "This states sales, fan numbers or scarcity you didn't provide. Use your real numbers or "
    "leave the claim out.",
    "invent_request": "We can't invent sales numbers, fan counts or scarcity. Give the real numbers and we'll "
    "use them.",
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
    rule: str  # one of MINORS, NON_CONSENT, FABRICATED_CLAIM, AVOID_WORD, AVOID_TOPIC, PLATFORM_EXPLICIT, conduct.py's
    message: str  # a sentence for the member
    excerpt: str = ""  # the offending fragment (short)


@dataclass
class PolicyResult:
    text: str  # the cleaned text ("" when blocked)
    violations: list[Violation] = field(default_factory=list)
    blocked: bool = False  # minors, non_consent or fabricated_claim: the text must not be used
    needs_regeneration: bool = False  # a filter changed the meaning: regenerating is advisable
