"""The price table: names priced by prefix, and a lookup cache that provider-chosen names cannot grow."""

from __future__ import annotations

from decimal import Decimal

from apps.ai.pricing import cost_usd, price_for
from apps.ai.types import Usage


def test_invented_model_names_cost_nothing_and_cannot_grow_the_price_cache():
    # A self-hosted server may answer with a new model name on every call; the lookup cache stays bounded.
    for n in range(2000):
        assert cost_usd(f"my-finetune-{n}", Usage(input_tokens=1000, output_tokens=1000)) == Decimal(0)
    assert price_for.cache_info().currsize <= 256
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini") is not None
