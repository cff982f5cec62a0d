"""Routing: the ordered chain of (provider, model) a request tries.

AI_ROUTING picks the order of the remote providers: ``priority`` (as configured: the agency's
keys by priority, then DEFAULT_AI_PROVIDER, then the other platform keys), ``cost`` (cheapest
priced model first; unpriced self-hosted models count as free) or ``latency`` (lowest recent
latency measured in this process; unmeasured providers go first so they get measured). The
built-in provider always ends the chain: it is the last resort when every remote one fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from apps.ai.pricing import price_for
from apps.ai.providers.base import Provider
from apps.ai.types import AIError, AIRequest, ErrorKind

EWMA_WEIGHT = 0.2
_latency_ms: dict[tuple[str, str], float] = {}


@dataclass(frozen=True)
class Route:
    provider: Provider
    model: str


def observe_latency(provider: str, model: str, latency_ms: float) -> None:
    key = (provider, model)
    previous = _latency_ms.get(key)
    _latency_ms[key] = latency_ms if previous is None else previous + EWMA_WEIGHT * (latency_ms - previous)


def forget_latencies() -> None:
    _latency_ms.clear()


def recent_latency(provider: str, model: str) -> float | None:
    return _latency_ms.get((provider, model))


def _model_cost(model: str) -> Decimal:
    price = price_for(model)
    return Decimal(0) if price is None else price.input + price.output


def plan(request: AIRequest, providers: list[Provider]) -> list[Route]:
    remote = [p for p in providers if p.kind != "builtin"]
    builtin = [p for p in providers if p.kind == "builtin"]
    if request.provider:
        chosen = [p for p in providers if request.provider in {p.name, p.kind}]
        if not chosen:
            raise AIError(ErrorKind.INVALID_REQUEST, f"Unknown or unconfigured AI provider “{request.provider}”.")
        # A forced remote provider still degrades to the built-in one when it fails.
        remote = [p for p in chosen if p.kind != "builtin"]
    wanted = request.model or settings.AI_FEATURE_MODELS.get(request.feature)
    routes: list[Route] = []
    if wanted:
        routes = [Route(p, wanted) for p in remote if wanted in p.models]
        if not routes and not any(wanted in p.models for p in builtin):
            if request.model:
                raise AIError(ErrorKind.INVALID_REQUEST, f"No configured provider serves the model “{wanted}”.")
            routes = []  # a per-feature default that no provider serves: fall back to defaults
    if not routes:
        routes = [Route(p, p.models[0]) for p in remote if p.models]
    if settings.AI_ROUTING == "cost":
        routes.sort(key=lambda route: _model_cost(route.model))
    elif settings.AI_ROUTING == "latency":
        routes.sort(key=lambda route: recent_latency(route.provider.name, route.model) or 0.0)
    routes.extend(Route(p, p.models[0]) for p in builtin)
    return routes
