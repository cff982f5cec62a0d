"""The personalization score (apps/messaging/personalization.py): hand-checked examples. Pure
functions on unsaved objects: no database, no model call."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from apps.accounts.models import Creator
from apps.messaging.models import Direction, Fan, MessageTemplate, Purchase
from apps.messaging.models import Message as FanMessage
from apps.messaging.personalization import WEIGHTS, personalization_score, template_score

NOW = timezone.now()


def creator(**fields) -> Creator:
    defaults = {
        "display_name": "Mia",
        "sample_texts": ["omg hiii babe 😘", "miss u babe 😘💕", "ur so sweet babe"],
        "currency": "USD",
    }
    return Creator(**{**defaults, **fields})


def fan(**fields) -> Fan:
    defaults = {
        "display_name": "Jake Miller",
        "username": "jakem",
        "platform": "onlyfans",
        "total_spent": Decimal("40"),
        "subscription_state": "active",
        "renew_on": True,
        "subscribed_since": NOW - timedelta(days=60),
        "last_active_at": NOW - timedelta(days=1),
    }
    return Fan(**{**defaults, **fields})


def said(*texts: str) -> list[FanMessage]:
    return [
        FanMessage(direction=Direction.INBOUND, text=text, created_at=NOW - timedelta(minutes=len(texts) - i))
        for i, text in enumerate(texts)
    ]


def bought(caption: str, amount: str = "18") -> Purchase:
    return Purchase(
        kind="ppv",
        amount=Decimal(amount),
        purchased_at=NOW - timedelta(days=2),
        message=FanMessage(direction=Direction.OUTBOUND, text=caption, created_at=NOW - timedelta(days=3)),
    )


def score(text: str, *, the_fan=None, the_creator=None, recent=None, purchases=()):
    return personalization_score(
        text=text,
        fan=the_fan or fan(),
        creator=the_creator or creator(),
        recent_messages=recent if recent is not None else said("did you like the gym today?"),
        purchases=purchases,
        now=NOW,
    )


def test_weights_sum_to_100():
    assert sum(WEIGHTS.values()) == 100


def test_a_draft_with_their_name_and_their_purchase_beats_a_generic_one():
    gym = [bought("New gym video 💪 unlock it")]
    personal = score("jake that gym video was all for u babe 😘 did u like it?", purchases=gym)
    generic = score(
        "Hello! Thank you for your message. I have lots of new content coming soon, stay tuned for updates.",
        purchases=gym,
    )
    assert personal.factors == {"uses name": 20, "refers to history": 25, "fits the tier": 20, "tone match": 20,
                                "length": 15}  # fmt: skip
    assert personal.score == 100 and personal.suggestions == []
    # generic: no name, no history, no question for a mid spender (8 + 8 for an active fan), no emoji,
    # none of Mia's words and capitals (0), 99 characters to a fan who writes 27 (8)
    assert generic.factors == {"uses name": 0, "refers to history": 0, "fits the tier": 16, "tone match": 0,
                               "length": 8}  # fmt: skip
    assert generic.score == 24
    assert generic.suggestions == [
        "Mention the gym video they bought",
        "Use their name — Jake",
        "Add an emoji: 2 of 3 of their messages have one (😘)",
        "Shorter: their messages average 27 characters",
    ]


def test_a_wordy_draft_to_a_fan_who_writes_five_words_is_told_to_be_shorter():
    recent = said("hey how are you babe", "u up tonight", "send me something")
    wordy = "jake babe 😘 " + "I have been thinking about you all day and I wanted to tell you everything. " * 4
    result = score(wordy, recent=recent)
    assert result.factors["length"] == 0
    assert "Shorter: their messages average 16 characters" in result.suggestions
    short = score("jake babe 😘 thinking of u, what are u up to?", recent=recent)
    assert short.factors["length"] == 15


def test_a_one_liner_to_a_fan_who_writes_paragraphs_is_told_to_write_more():
    recent = said("I had the longest day at work, my boss kept yelling and I only thought about coming home to you")
    result = score("jake babe 😘", recent=recent)
    assert result.factors["length"] == 8
    assert "Longer: they write about 95 characters a message" in result.suggestions


def test_over_the_platforms_limit_scores_no_length_points():
    result = score("jake babe 😘 " + "x" * 1200)
    assert result.factors["length"] == 0
    assert "Too long for OnlyFans: 1212 characters, the limit is 1000" in result.suggestions


def test_refers_to_what_they_wrote_or_generically_to_the_past():
    recent = said("my dog Biscuit ate my shoes lol")
    assert score("jake did Biscuit survive? 😘 babe", recent=recent).factors["refers to history"] == 25
    vague = score("jake remember last time? 😘 babe", recent=recent)
    assert vague.factors["refers to history"] == 12
    assert "Pick up on what they wrote: “my dog Biscuit ate my shoes lol”" in vague.suggestions


def test_whales_are_made_to_feel_special():
    whale = fan(total_spent=Decimal("800"))
    plain = score("jake babe 😘 new set tonight?", the_fan=whale)
    assert plain.factors["fits the tier"] == 4 + 8
    assert "Make Jake feel special: a whale fan who has spent $800" in plain.suggestions
    assert score("jake babe 😘 thank you, this one's just for you", the_fan=whale).factors["fits the tier"] == 20


def test_a_fan_who_never_paid_is_not_opened_with_a_price():
    free = fan(total_spent=Decimal("0"))
    pushy = score("jake babe 😘 unlock my new video for $25", the_fan=free)
    assert pushy.factors["fits the tier"] == 6 + 8
    assert "They have never bought: tease first, keep the price for later" in pushy.suggestions
    assert score("jake babe 😘 I made something you'd like, want a peek?", the_fan=free).factors["fits the tier"] == 20


def test_quiet_and_new_fans():
    quiet = fan(last_active_at=NOW - timedelta(days=10))
    result = score("jake babe 😘 how are you?", the_fan=quiet)
    assert result.factors["fits the tier"] == 12 + 2
    assert "They have been quiet for 10 days: tell them you missed them" in result.suggestions
    assert score("jake babe 😘 missed you! how are you?", the_fan=quiet).factors["fits the tier"] == 20
    new = fan(subscribed_since=NOW - timedelta(days=2))
    assert score("jake babe 😘 how are you?", the_fan=new).factors["fits the tier"] == 12 + 4
    assert score("jake babe 😘 welcome! how are you?", the_fan=new).factors["fits the tier"] == 20


def test_tone_follows_the_creators_samples():
    mia = creator()
    assert score("jake babe 😘 hi?", the_creator=mia).factors["tone match"] == 20
    no_emoji = score("jake babe hi?", the_creator=mia)
    assert no_emoji.factors["tone match"] == 12
    capitals = score("Jake babe 😘 hi?", the_creator=mia)
    assert capitals.factors["tone match"] == 16 and "Write in lower case, as Mia does" in capitals.suggestions
    formal = creator(sample_texts=["Good evening, darling.", "Thank you, darling.", "Sleep well, darling."])
    busy = score("Jake darling 😘😘🔥 hi?", the_creator=formal)
    assert busy.factors["tone match"] == 12 and "Fewer emoji: Mia rarely uses them" in busy.suggestions
    other_words = score("Jake hi there?", the_creator=formal)
    assert "Sound like Mia: they often say “darling”" in " ".join(other_words.suggestions)
    unknown = score("jake hi?", the_creator=creator(sample_texts=[]))
    assert unknown.factors["tone match"] == 10
    assert "Add a few of Mia's own messages to their persona so drafts can match their voice" in unknown.suggestions


def test_empty_text_scores_zero():
    assert score("   ").score == 0


def test_a_template_rendering_is_scored_and_a_missing_name_costs_the_name_points():
    template = MessageTemplate(text="Hey {fan.first_name|babe}, welcome! 😘")
    quiet = creator(sample_texts=[])  # so that the fallback "babe" is not one of Mia's own words
    rendered, named = template_score(template=template, fan=fan(), creator=quiet, recent_messages=said("hi"))
    assert rendered.text == "Hey Jake, welcome! 😘" and named.factors["uses name"] == 20
    rendered, nameless = template_score(
        template=template, fan=fan(display_name=""), creator=quiet, recent_messages=said("hi")
    )
    assert rendered.text == "Hey babe, welcome! 😘" and rendered.fallbacks_used == ["fan.first_name"]
    assert nameless.factors["uses name"] == 0 and "Use their name — jakem" in nameless.suggestions
    assert nameless.score == named.score - 20
