"""PPV price suggestions (apps/messaging/pricing.py): hand-checked prices and the reasons shown
to the chatter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.accounts.models import Creator
from apps.messaging.models import Fan
from apps.messaging.pricing import ppv_price_suggestion, price_point
from tests.messaging.factories import FanFactory, PurchaseFactory

D = Decimal


def creator(low="5", high="50", currency="USD") -> Creator:
    return Creator(display_name="Mia", ppv_price_min=D(low), ppv_price_max=D(high), currency=currency)


def fan(offered=0, bought=0, spent="0") -> Fan:
    return Fan(display_name="Jake", ppv_offered=offered, ppv_bought=bought, total_spent=D(spent))


def suggest(amounts, *, the_fan=None, the_creator=None):
    return ppv_price_suggestion(fan=the_fan or fan(), creator=the_creator or creator(), amounts=[D(a) for a in amounts])


@pytest.mark.parametrize(
    ("amount", "point"),
    [("19.80", "19.99"), ("18", "17.99"), ("27.50", "27.99"), ("18.49", "17.99"), ("0.40", "0.01")],
)
def test_price_points_are_a_cent_below_the_nearest_whole_amount(amount, point):
    assert price_point(D(amount)) == D(point)


def test_a_fan_who_buys_most_offers_is_offered_a_little_more():
    result = suggest(["18", "16", "20", "18"], the_fan=fan(offered=6, bought=4))
    assert result.price == D("19.99")
    assert result.reason == (
        "They unlocked 4 of 6 PPVs at a median of $18; they buy most offers, so a little more: suggesting $19.99."
    )


def test_a_fan_who_skips_most_offers_is_offered_a_little_less():
    result = suggest(["30", "30"], the_fan=fan(offered=10, bought=2))
    assert result.price == D("25.99")  # 30 * 0.85 = 25.50 → 26 → 25.99
    assert result.reason == (
        "They unlocked 2 of 10 PPVs at a median of $30; they skip most offers, so a little less: suggesting $25.99."
    )


def test_too_few_offers_say_nothing_about_the_buy_rate_and_the_last_price_is_named():
    result = suggest(["24", "12", "12"], the_fan=fan(offered=2, bought=2))
    assert result.price == D("11.99")
    assert result.reason == "They unlocked 2 of 2 PPVs at a median of $12 (last $24): suggesting $11.99."


def test_clamped_to_the_creators_range_with_the_reason():
    high = suggest(["40"], the_fan=fan(offered=1, bought=1), the_creator=creator("10", "15"))
    assert high.price == D("15.00")
    assert high.reason.endswith("capped at the maximum of $15: suggesting $15.")
    low = suggest(["3"], the_fan=fan(offered=1, bought=1), the_creator=creator("5", "50"))
    assert low.price == D("5.00")
    assert low.reason.endswith("raised to the minimum of $5: suggesting $5.")


def test_no_history_means_the_middle_of_the_range():
    result = suggest([])
    assert result.price == D("27.99")
    assert result.reason == "No PPV unlocks yet: the middle of Mia's $5\u2013$50 range: suggesting $27.99."


def test_a_big_spender_without_ppv_history_starts_in_the_upper_quarter():
    result = suggest([], the_fan=fan(spent="800"))
    assert result.price == D("38.99")  # 5 + 0.75 * 45 = 38.75
    assert "a whale fan ($800 spent): the upper quarter of Mia's $5\u2013$50 range" in result.reason


def test_the_creators_currency_is_named():
    result = suggest(["18"], the_fan=fan(offered=1, bought=1), the_creator=creator(currency="EUR"))
    assert result.reason == "They unlocked 1 of 1 PPVs at a median of 18 EUR: suggesting 17.99 EUR."


def test_only_ppv_unlocks_of_this_fan_count(world):
    jake = FanFactory(creator=world.creator, ppv_offered=3, ppv_bought=3)
    other = FanFactory(creator=world.creator)
    for amount in ("10", "12", "14"):
        PurchaseFactory(fan=jake, kind="ppv", amount=D(amount))
    PurchaseFactory(fan=jake, kind="tip", amount=D("200"))
    PurchaseFactory(fan=other, kind="ppv", amount=D("45"))
    result = ppv_price_suggestion(fan=jake, creator=world.creator)
    # median 12, all 3 of 3 bought → * 1.10 = 13.20 → 12.99
    assert result.price == D("12.99")
    assert result.reason.startswith("They unlocked 3 of 3 PPVs at a median of $12")
