"""Message template variables: ``{fan.first_name|babe}`` puts the fan's first name, or "babe"
when the fan has none.

Deliberately tiny (no loops, no filters, no attribute access beyond the table below), so a
template written by a member can never reach anything but these values. ``{{`` and ``}}`` write
literal braces. Unknown variables are refused when the template is saved, with their name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.accounts.models import Creator
from apps.core.errors import ApplicationError
from apps.messaging.models import Fan

VARIABLES: dict[str, tuple[str, Callable[[Fan, Creator], str]]] = {
    "fan.first_name": ("The fan's first name (from the display name)", lambda fan, creator: fan.first_name),
    "fan.name": ("The fan's display name, or username", lambda fan, creator: fan.name),
    "fan.username": ("The fan's username on the platform", lambda fan, creator: fan.username),
    "creator.name": ("The creator's display name", lambda fan, creator: creator.display_name),
    "creator.first_name": (
        "The creator's first name",
        lambda fan, creator: (creator.display_name.split() or [""])[0],
    ),
}

# {name} or {name|fallback}; the fallback may hold anything but braces and newlines.
_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_.]+)(?:\|([^{}\n]*))?\}|[{}]")


@dataclass
class Rendered:
    text: str
    variables: list[str] = field(default_factory=list)
    fallbacks_used: list[str] = field(default_factory=list)


def template_variables(text: str) -> list[str]:
    """The variables a template uses, in order; ApplicationError for an unknown one or a stray brace."""
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ApplicationError(
                "A single “{” or “}” must belong to a variable such as {fan.first_name|babe}; "
                "write {{ or }} for a literal brace.",
                field="text",
            )
        if name not in VARIABLES:
            known = ", ".join(sorted(VARIABLES))
            raise ApplicationError(f"Unknown variable {{{name}}}. Known variables: {known}.", field="text")
        found.append(name)
    return found


def template_render(text: str, *, fan: Fan, creator: Creator) -> Rendered:
    """The text with each variable replaced by the fan's value, or its fallback when empty."""
    template_variables(text)
    rendered = Rendered(text="")

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name, fallback = match.group(1), match.group(2)
        rendered.variables.append(name)
        value = VARIABLES[name][1](fan, creator).strip()
        if value:
            return value
        rendered.fallbacks_used.append(name)
        return (fallback or "").strip()

    rendered.text = re.sub(r"[ \t]{2,}", " ", _TOKEN.sub(replace, text)).strip()
    return rendered
