"""Cost in USD from the versioned price table in prices.json (per million tokens).

A model is priced by its exact name, else by the longest known prefix (dated snapshots such as
``gpt-4o-mini-2024-07-18`` price as ``gpt-4o-mini``). Unknown models cost 0 and are reported by
``is_priced`` so the UI can say so; self-hosted OpenAI-compatible models usually are unknown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path

from apps.ai.types import Usage

PRICE_FILE = Path(__file__).with_name("prices.json")
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Price:
    input: Decimal
    cached_input: Decimal
    output: Decimal


@cache
def price_table() -> tuple[str, dict[str, Price]]:
    data = json.loads(PRICE_FILE.read_text())
    models = {
        name: Price(Decimal(p["input"]), Decimal(p["cached_input"]), Decimal(p["output"]))
        for name, p in data["models"].items()
    }
    return data["version"], models


# Bounded: the model name comes from the provider's answer, and a self-hosted server may name
# models however it likes (a new name per call would otherwise grow this cache forever).
@lru_cache(maxsize=256)
def price_for(model: str) -> Price | None:
    _, models = price_table()
    if model in models:
        return models[model]
    candidates = [name for name in models if model.startswith(name)]
    return models[max(candidates, key=len)] if candidates else None


def is_priced(model: str) -> bool:
    return price_for(model) is not None


def cost_usd(model: str, usage: Usage) -> Decimal:
    price = price_for(model)
    if price is None:
        return ZERO
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    fresh = usage.input_tokens - cached
    total = fresh * price.input + cached * price.cached_input + usage.output_tokens * price.output
    return (total / MILLION).quantize(Decimal("0.00000001"))


def price_version() -> str:
    return price_table()[0]
