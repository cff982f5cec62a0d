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
_SPACES = re.compile(r"[ \t]{2,}")


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

    rendered.text = _SPACES.sub(" ", _TOKEN.sub(replace, text)).strip()
    return rendered


def template_renderer(text: str) -> Callable[[Fan, Creator], str]:
    """``template_render(text, …).text`` as a function of the fan, with the template parsed once:
    for one text sent to many fans (a campaign's 100,000), where parsing it again for each fan
    was most of the rendering time. Same output as ``template_render`` (tests compare them)."""
    template_variables(text)
    parts: list[str | tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        literal = "{" if token == "{{" else "}" if token == "}}" else None
        parts.append(literal if literal is not None else (match.group(1), (match.group(2) or "").strip()))
    literals = _TOKEN.split(text)[::3]  # split() yields text, group 1, group 2, text, …
    if not parts:
        static = _SPACES.sub(" ", text).strip()
        return lambda fan, creator: static
    getters = [(VARIABLES[part[0]][1], part[1]) if isinstance(part, tuple) else part for part in parts]

    def render(fan: Fan, creator: Creator) -> str:
        out = [literals[0]]
        for index, part in enumerate(getters):
            if isinstance(part, str):
                out.append(part)
            else:
                value = part[0](fan, creator).strip()
                out.append(value or part[1])
            out.append(literals[index + 1])
        return _SPACES.sub(" ", "".join(out)).strip()

    return render
