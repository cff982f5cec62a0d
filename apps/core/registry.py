"""Hooks through which apps contribute to shared screens and commands without editing them.

Two hooks are discovered by module name in every installed ``apps.*`` app:

- ``apps/<app>/dashboard.py`` may define ``cards(request) -> list[Card]``: cards on the home
  dashboard (each with its own template), and ``creator_stats(request, creators) ->
  dict[creator_id, list[Stat]]``: key numbers shown on each creator's tile. Both must run a
  constant number of queries whatever the number of creators (tests assert the page's count).
- ``apps/<app>/demo.py`` defines ``seed(ctx: DemoContext)`` and an ``ORDER`` int; ``manage.py
  seed_demo`` runs them in order (accounts first: it creates the agency, users and creators that
  the others fill). docs/extending.md describes both.

One is named by a setting: ``ENTITLEMENTS`` (the billing app's entitlements module), asked by
accounts, the API and the gateway's callers through ``entitlement_require`` and
``entitlement_request_gate`` below, and by background work through
``entitlement_readonly_reason`` (docs/billing.md).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

from django.apps import apps as django_apps


@dataclass
class Card:
    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    order: int = 100


@dataclass
class Stat:
    label: str
    value: str
    url: str = ""


@dataclass
class DemoContext:
    """What seed_demo hands each app's demo hook. ``options`` carries --creators, --fans, …"""

    options: dict[str, Any]
    log: Callable[[str], None]
    rng: random.Random
    agency: Any = None
    memberships: dict[str, Any] = field(default_factory=dict)
    creators: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str, str]] = field(default_factory=list)


@cache
def app_modules(name: str) -> tuple[ModuleType, ...]:
    """The ``<app>.<name>`` modules of the project's apps that have one."""
    found = []
    for config in django_apps.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        module_name = f"{config.name}.{name}"
        try:
            found.append(importlib.import_module(module_name))
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    return tuple(found)


def dashboard_cards(request) -> list[Card]:
    cards: list[Card] = []
    for module in app_modules("dashboard"):
        if hasattr(module, "cards"):
            cards.extend(module.cards(request))
    return sorted(cards, key=lambda card: card.order)


def creator_stats(request, creators: list[Any]) -> dict[int, list[Stat]]:
    stats: dict[int, list[Stat]] = {creator.pk: [] for creator in creators}
    for module in app_modules("dashboard"):
        if hasattr(module, "creator_stats"):
            for creator_id, items in module.creator_stats(request, creators).items():
                stats.setdefault(creator_id, []).extend(items)
    return stats


def demo_seeders() -> list[ModuleType]:
    return sorted(app_modules("demo"), key=lambda module: getattr(module, "ORDER", 100))


# --- Entitlements ------------------------------------------------------------------------------
# Lower layers ask "may this agency do that?" without knowing who answers: settings.ENTITLEMENTS
# names a module (apps.billing.entitlements) with ``require(agency_id, *, limit, adding, feature,
# creator_id)`` and ``request_gate(request, agency_id)``, both raising an ApplicationError the
# caller shows like any other. Empty setting: everything is allowed.


def _entitlements() -> ModuleType | None:
    from django.conf import settings

    path = getattr(settings, "ENTITLEMENTS", "")
    return importlib.import_module(path) if path else None


def entitlement_require(
    agency_id: int, *, limit: str | None = None, adding: int = 1, feature: str | None = None,
    creator_id: int | None = None,
) -> None:  # fmt: skip
    """Raise when the agency's plan has no room for ``adding`` more of ``limit`` ("creators",
    "seats"), lacks ``feature``, or makes ``creator_id`` read-only."""
    module = _entitlements()
    if module is not None:
        module.require(agency_id, limit=limit, adding=adding, feature=feature, creator_id=creator_id)


def entitlement_request_gate(request, agency_id: int) -> None:
    """Raise when the request is for a part of the product the agency's plan does not include."""
    module = _entitlements()
    if module is not None:
        module.request_gate(request, agency_id)


def entitlement_readonly_reason(agency_id: int, now=None) -> str:
    """Why the agency is read-only ("trial", "payment", "canceled": billing's dunning), or "" when
    it may write. Background work that acts for an agency (automations) asks before acting."""
    module = _entitlements()
    return module.agency_readonly_reason(agency_id, now) if module is not None else ""
