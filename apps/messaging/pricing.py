"""The PPV price to suggest with an upsell draft, from the fan's own purchase history, explained.

The rule, in order:

1. **Base.** The median of the fan's last ``HISTORY`` PPV unlocks. Without any: the middle of the
   creator's PPV range, or its upper quarter for a whale or high spender (they pay, just not for
   PPV yet).
2. **Buy rate.** With at least ``MIN_OFFERS`` PPVs offered: a fan who unlocked 60 % or more gets
   10 % more; one who unlocked 30 % or less gets 15 % less. Fewer offers say nothing yet.
3. **Price point.** Rounded to the nearest whole amount, minus one cent ($19.80 → $19.99,
   $27.50 → $27.99).
4. **Clamp.** Into the creator's ``ppv_price_min``..``ppv_price_max``; the reason says so.

The reason reads as a sentence the chatter can repeat ("They unlocked 4 of 6 PPVs at a median of
$18; they buy most offers, so a little more: $19.99."). A pure function: the purchase amounts
can be passed in; otherwise one query reads them.

Not here: elasticity models across fans or A/B results — that is the optimization app's job
(issue "pricing engine"); this is the per-fan rule a chatter can check by eye.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from apps.accounts.models import Creator
from apps.messaging.models import Fan, FanRules, Purchase, PurchaseKind
from apps.messaging.tiers import Tier, spend_tier

HISTORY = 20
MIN_OFFERS = 3
HIGH_RATE, LOW_RATE = 0.6, 0.3
UP, DOWN = Decimal("1.10"), Decimal("0.85")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PriceSuggestion:
    price: Decimal
    reason: str


def money(amount: Decimal, currency: str) -> str:
    """``$18`` / ``$19.99`` for dollars, ``18 EUR`` otherwise; cents only when there are some."""
    amount = Decimal(amount).quantize(CENT)
    text = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"${text}" if currency.upper() == "USD" else f"{text} {currency.upper()}"


def price_point(amount: Decimal) -> Decimal:
    """The nearest whole amount minus one cent: 19.80 → 19.99, 18.00 → 17.99, 27.50 → 27.99."""
    whole = Decimal(amount).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return max(CENT, whole - CENT)


def ppv_amounts(fan: Fan) -> list[Decimal]:
    """The fan's last PPV unlock amounts, newest first (one query)."""
    return list(
        Purchase.objects.filter(fan=fan, kind=PurchaseKind.PPV)
        .order_by("-purchased_at", "-id")
        .values_list("amount", flat=True)[:HISTORY]
    )


def ppv_price_suggestion(
    *,
    fan: Fan,
    creator: Creator,
    amounts: Sequence[Decimal] | None = None,
    rules: FanRules | None = None,
) -> PriceSuggestion:
    """The price to offer ``fan`` next and why (see the module docstring). ``amounts``: the fan's
    PPV unlock amounts, newest first (read from the database when not given)."""
    amounts = [Decimal(a) for a in (ppv_amounts(fan) if amounts is None else amounts)][:HISTORY]
    low, high = Decimal(creator.ppv_price_min), Decimal(creator.ppv_price_max)
    currency = creator.currency or "USD"
    span = f"{money(low, currency)}\u2013{money(high, currency)}"  # an en dash
    clauses: list[str] = []
    if amounts:
        base = Decimal(median(amounts))
        bought = f"{fan.ppv_bought} of {fan.ppv_offered} PPVs" if fan.ppv_offered else f"{len(amounts)} PPVs"
        clauses.append(f"They unlocked {bought} at a median of {money(base, currency)}")
        if len(amounts) > 1 and amounts[0] != base:
            clauses[-1] += f" (last {money(amounts[0], currency)})"
        target = base
        if fan.ppv_offered >= MIN_OFFERS:
            rate = fan.ppv_bought / fan.ppv_offered
            if rate >= HIGH_RATE:
                target = base * UP
                clauses.append("they buy most offers, so a little more")
            elif rate <= LOW_RATE:
                target = base * DOWN
                clauses.append("they skip most offers, so a little less")
    else:
        tier = spend_tier(fan.total_spent, rules if rules is not None else FanRules())
        if tier in (Tier.WHALE, Tier.HIGH):
            target = low + (high - low) * Decimal("0.75")
            clauses.append(
                f"No PPV unlocks yet, but a {tier.label.lower()} fan ({money(fan.total_spent, currency)} spent): "
                f"the upper quarter of {creator.display_name}'s {span} range"
            )
        else:
            target = (low + high) / 2
            clauses.append(f"No PPV unlocks yet: the middle of {creator.display_name}'s {span} range")
    price = price_point(target)
    if price > high:
        price = high
        clauses.append(f"capped at the maximum of {money(high, currency)}")
    elif price < low:
        price = low
        clauses.append(f"raised to the minimum of {money(low, currency)}")
    reason = "; ".join(clauses) + f": suggesting {money(price, currency)}."
    return PriceSuggestion(price=price.quantize(CENT), reason=reason[:300])
